//! End to end: the seq source through a replicating selector into a memory and a file
//! channel, and netcat through interceptors and a multiplexing selector; file_roll output
//! checked line by line.

mod common;

use common::{free_port, read_dir_lines, wait_until, write_conf, AgentProcess, Netcat};
use std::time::Duration;

#[test]
fn seq_is_replicated_into_a_memory_and_a_file_channel() {
    let tmp = tempfile::tempdir().expect("tmp");
    let c = write_conf(
        tmp.path(),
        "a.conf",
        "\
a1.sources = r1
a1.channels = mem disk
a1.sinks = k1 k2
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 50
a1.sources.r1.totalEvents = 500
a1.sources.r1.channels = mem disk
a1.channels.mem.type = memory
a1.channels.mem.capacity = 1000
a1.channels.mem.transactionCapacity = 100
a1.channels.disk.type = file
a1.channels.disk.checkpointDir = disk/checkpoint
a1.channels.disk.dataDirs = disk/data
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = mem
a1.sinks.k1.sink.directory = out-mem
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = disk
a1.sinks.k2.sink.directory = out-disk
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.batchSize = 33
",
    );
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();
    let expected: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    for dir in ["out-mem", "out-disk"] {
        let d = tmp.path().join(dir);
        assert!(
            wait_until(Duration::from_secs(20), || read_dir_lines(&d).len() >= 500),
            "{dir}: {} lines\n{}",
            read_dir_lines(&d).len(),
            agent.log()
        );
        assert_eq!(read_dir_lines(&d), expected, "{dir}");
    }
    assert_eq!(agent.counter("SOURCE.r1", "EventAcceptedCount"), 500);
    assert_eq!(agent.counter("SOURCE.r1", "AppendBatchAcceptedCount"), 10);
    assert_eq!(agent.counter("SINK.k2", "EventDrainSuccessCount"), 500);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn interceptors_and_a_multiplexing_selector_route_netcat_lines() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let conf = format!(
        "\
a1.sources = r1
a1.channels = cz us other
a1.sinks = kcz kus kother
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = cz us other
a1.sources.r1.interceptors = drop state mask
a1.sources.r1.interceptors.drop.type = regex_filter
a1.sources.r1.interceptors.drop.regex = ^DEBUG
a1.sources.r1.interceptors.drop.excludeEvents = true
a1.sources.r1.interceptors.state.type = regex_extractor
a1.sources.r1.interceptors.state.regex = ^([A-Z]{{2}}) (\\\\w+)
a1.sources.r1.interceptors.state.serializers = s1 s2
a1.sources.r1.interceptors.state.serializers.s1.name = state
a1.sources.r1.interceptors.state.serializers.s2.name = word
a1.sources.r1.interceptors.mask.type = search_replace
a1.sources.r1.interceptors.mask.searchPattern = \\\\d+
a1.sources.r1.interceptors.mask.replaceString = #
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = state
a1.sources.r1.selector.mapping.CZ = cz
a1.sources.r1.selector.mapping.US = us
a1.sources.r1.selector.default = other
a1.channels.cz.type = memory
a1.channels.us.type = memory
a1.channels.other.type = memory
a1.sinks.kcz.type = file_roll
a1.sinks.kcz.channel = cz
a1.sinks.kcz.sink.directory = cz
a1.sinks.kcz.sink.rollInterval = 0
a1.sinks.kcz.sink.serializer = header_and_text
a1.sinks.kus.type = file_roll
a1.sinks.kus.channel = us
a1.sinks.kus.sink.directory = us
a1.sinks.kus.sink.rollInterval = 0
a1.sinks.kother.type = file_roll
a1.sinks.kother.channel = other
a1.sinks.kother.sink.directory = other
a1.sinks.kother.sink.rollInterval = 0
"
    );
    let c = write_conf(tmp.path(), "a.conf", &conf);
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", false);
    agent.wait_started();
    let mut nc = Netcat::connect(port);
    for line in [
        "CZ praha 110 00",
        "US boston 02101",
        "DEBUG CZ dropped",
        "fr paris 75001",
        "CZ brno 602 00",
    ] {
        assert_eq!(nc.send(line), "OK", "{line}");
    }
    let dir = |d: &str| tmp.path().join(d);
    assert!(wait_until(Duration::from_secs(20), || {
        read_dir_lines(&dir("cz")).len() == 2
            && read_dir_lines(&dir("us")).len() == 1
            && read_dir_lines(&dir("other")).len() == 1
    }));
    assert_eq!(
        read_dir_lines(&dir("cz")),
        vec![
            "{state=CZ, word=praha} CZ praha # #",
            "{state=CZ, word=brno} CZ brno # #"
        ]
    );
    assert_eq!(read_dir_lines(&dir("us")), vec!["US boston #"]);
    assert_eq!(read_dir_lines(&dir("other")), vec!["fr paris #"]);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
}
