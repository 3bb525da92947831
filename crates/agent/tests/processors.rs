//! Failover and load_balance with a sink that really fails: a file_roll sink whose directory
//! cannot be created (its parent becomes a regular file once the agent has started). The failing sink's attempts are seen as
//! `ConnectionFailedCount` steps on the metrics endpoint; their spacing must follow Flume's
//! back-off (2000 ms, then min(3000, 4000) ms with a 3000 ms cap). Then the directory is
//! repaired, the sink comes back, and no event is lost or duplicated.

mod common;

use common::{free_port, read_dir_lines, wait_until, write_conf, AgentProcess, Netcat};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Slack for scheduling on a loaded 2-core machine: a retry happens at the first
/// `process` call after its time, and traffic comes every 20 ms.
const TOLERANCE_MS: i64 = 400;

fn conf(port: u16, group: &str) -> String {
    format!(
        "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sinkgroups = g1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = blocked/k1
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 10
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c1
a1.sinks.k2.sink.directory = k2
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.batchSize = 10
a1.sinkgroups.g1.sinks = k1 k2
{group}"
    )
}

struct Run {
    tmp: tempfile::TempDir,
    agent: AgentProcess,
    sender: std::thread::JoinHandle<Vec<String>>,
    go: Arc<AtomicBool>,
    stop_sending: Arc<AtomicBool>,
}

/// Starts the agent with k1 broken and a client sending one acknowledged line every 20 ms.
fn start(group: &str) -> Run {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let c = write_conf(tmp.path(), "a.conf", &conf(port, group));
    let mut agent = AgentProcess::start(tmp.path(), &c, "a1", true);
    agent.wait_started();
    // Blocked only once the agent runs: a directory that cannot be created at start is refused
    // (see config_inputs.rs); what is tested here is a sink that breaks while running. k1
    // creates its directory with its first file, when the first event comes.
    std::fs::write(
        tmp.path().join("blocked"),
        "a file where k1's parent directory should be",
    )
    .expect("write");
    let stop_sending = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let (stop, start_sending) = (stop_sending.clone(), go.clone());
    let sender = std::thread::spawn(move || {
        let mut nc = Netcat::connect(port);
        while !start_sending.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut sent = Vec::new();
        for i in 0.. {
            if stop.load(SeqCst) {
                break;
            }
            let line = format!("event-{i:05}");
            assert_eq!(nc.send(&line), "OK");
            sent.push(line);
            std::thread::sleep(Duration::from_millis(20));
        }
        sent
    });
    Run {
        tmp,
        agent,
        sender,
        go,
        stop_sending,
    }
}

/// Lets the client start sending, then watches `SINK.k1 ConnectionFailedCount` until it has
/// stepped `steps` times; returns the times (ms since the first step) of each step. (file_roll
/// opens its file only when it has events, so the first failure comes with the first event.)
fn failure_times(run: &Run, steps: usize) -> Vec<i64> {
    let agent = &run.agent;
    let started = Instant::now();
    let mut last = agent.counter("SINK.k1", "ConnectionFailedCount");
    assert_eq!(last, 0, "no attempt before the first event");
    run.go.store(true, SeqCst);
    let mut times: Vec<Instant> = Vec::new();
    while times.len() < steps {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {} failures seen",
            times.len()
        );
        let n = agent.counter("SINK.k1", "ConnectionFailedCount");
        if n > last {
            assert_eq!(n, last + 1, "one failure per attempt");
            times.push(Instant::now());
            last = n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let ms: Vec<i64> = times
        .iter()
        .map(|t| t.duration_since(times[0]).as_millis() as i64)
        .collect();
    eprintln!("k1 failures at {ms:?} ms");
    ms
}

fn assert_gap(times: &[i64], i: usize, expected_ms: i64) {
    let gap = times[i + 1] - times[i];
    assert!(
        (gap - expected_ms).abs() <= TOLERANCE_MS,
        "gap {i} was {gap} ms, expected {expected_ms} ± {TOLERANCE_MS} (times {times:?})"
    );
}

/// Repairs k1's directory, waits for k1 to deliver, stops, and checks every line arrived once.
fn repair_and_check(run: Run) -> (usize, usize) {
    let root = run.tmp.path().to_owned();
    std::fs::remove_file(root.join("blocked")).expect("unblock");
    let agent = run.agent;
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .counter("SINK.k1", "EventDrainSuccessCount")
            >= 5),
        "k1 did not come back\n{}",
        agent.log()
    );
    run.stop_sending.store(true, SeqCst);
    let sent = run.sender.join().expect("sender");
    assert!(wait_until(Duration::from_secs(10), || {
        read_dir_lines(&root.join("blocked/k1")).len() + read_dir_lines(&root.join("k2")).len()
            >= sent.len()
    }));
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let k1 = read_dir_lines(&root.join("blocked/k1"));
    let k2 = read_dir_lines(&root.join("k2"));
    let mut all: Vec<&String> = k1.iter().chain(k2.iter()).collect();
    all.sort();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "duplicates delivered");
    let sent_set: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(
        unique, sent_set,
        "every acknowledged event delivered exactly once"
    );
    (k1.len(), k2.len())
}

#[test]
fn failover_cools_a_failing_sink_down_for_2_then_3_seconds_and_fails_back() {
    let run = start(
        "\
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
a1.sinkgroups.g1.processor.priority.k2 = 5
a1.sinkgroups.g1.processor.maxpenalty = 3000
",
    );
    // k1 (higher priority) fails at the first call; then it is retried after
    // min(3000, 1000·2^1) = 2000 ms, then after min(3000, 1000·2^2) = 3000 ms, then 3000 ms.
    let times = failure_times(&run, 4);
    assert_gap(&times, 0, 2000);
    assert_gap(&times, 1, 3000);
    assert_gap(&times, 2, 3000);
    assert_eq!(run.agent.counter("SINK.k2", "ConnectionFailedCount"), 0);
    let (k1, k2) = repair_and_check(run);
    // While k1 was down everything went to k2; once back, k1 (priority 10) takes over.
    assert!(k1 >= 5 && k2 > 0, "k1 {k1}, k2 {k2}");
}

#[test]
fn load_balance_backs_a_failing_sink_off_for_2_then_3_seconds_and_shares_again() {
    let run = start(
        "\
a1.sinkgroups.g1.processor.type = load_balance
a1.sinkgroups.g1.processor.selector = round_robin
a1.sinkgroups.g1.processor.backoff = true
a1.sinkgroups.g1.processor.selector.maxTimeOut = 3000
",
    );
    // Back-off after the n-th consecutive failure: min(3000, 1000·2^n) ms.
    let times = failure_times(&run, 4);
    assert_gap(&times, 0, 2000);
    assert_gap(&times, 1, 3000);
    assert_gap(&times, 2, 3000);
    let (k1, k2) = repair_and_check(run);
    assert!(k1 >= 5 && k2 > 0, "k1 {k1}, k2 {k2}");
}
