//! The `hdfs` sink on `s3://` through the real `sluice` binary, against moto's S3 server on
//! 127.0.0.1 (behind the harness's gate, which can refuse connections to stage an outage while
//! moto keeps its objects), every object read back by boto3, an independent client:
//!
//! - N events in, N out, in objects whose keys follow the bucketed path;
//! - kill -9 mid-stream, then a restart: every acknowledged event is in the objects, no in-use
//!   object or staged file is left, duplicates are counted;
//! - the server unreachable for 30 s mid-stream: the agent keeps accepting into the channel,
//!   publishes once the server is back, and loses nothing.
//!
//! Skipped with a printed reason without python3 and pip (moto's server and boto3), a failure
//! under `SLUICE_REQUIRE_INTEROP=1`.

mod common;

use common::s3::{moto_available, Moto, ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use common::{free_port, stream_lines, wait_until, write_conf, AgentProcess, Pace};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUCKET: &str = "flume";

/// The agent's environment: moto's endpoint and the test's credentials, the AWS way.
fn aws_env(moto: &Moto, home: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", home.display().to_string()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
    ]
}

fn start(dir: &Path, conf: &Path, env: &[(&'static str, String)]) -> AgentProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut agent = AgentProcess::start_with_env(dir, conf, "a1", true, &env);
    agent.wait_started();
    agent
}

/// Every object under `events/` as (key, its lines).
fn objects(moto: &Moto) -> Vec<(String, Vec<String>)> {
    moto.dump(BUCKET, "events/")
        .into_iter()
        .map(|(key, body)| {
            let text = String::from_utf8(body).expect("utf-8 lines");
            let lines = text.lines().map(str::to_owned).collect();
            (key, lines)
        })
        .collect()
}

fn all_lines(objs: &[(String, Vec<String>)]) -> Vec<String> {
    objs.iter().flat_map(|(_, l)| l.iter().cloned()).collect()
}

/// Staged files left in the sink's staging directory.
fn staged_left(state: &Path) -> Vec<String> {
    std::fs::read_dir(state.join("staged"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sink_keys(state: &Path, extra: &str) -> String {
    format!(
        "a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = s3://{BUCKET}/events/d=%{{digit}}
a1.sinks.k1.hdfs.s3.pathStyle = true
a1.sinks.k1.hdfs.stagingDir = {}
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.batchSize = 100
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollInterval = 0
{extra}",
        state.display()
    )
}

/// The last digit of the body as header `digit`, for the bucketed path.
const DIGIT_INTERCEPTOR: &str = "a1.sources.r1.interceptors = i1
a1.sources.r1.interceptors.i1.type = regex_extractor
a1.sources.r1.interceptors.i1.regex = (\\\\d)$
a1.sources.r1.interceptors.i1.serializers = s1
a1.sources.r1.interceptors.i1.serializers.s1.name = digit
";

const FILE_CHANNEL: &str = "a1.channels.c1.type = file
a1.channels.c1.checkpointDir = channel/checkpoint
a1.channels.c1.dataDirs = channel/data
a1.channels.c1.transactionCapacity = 1000
";

#[test]
fn every_event_reaches_objects_under_the_bucketed_keys() {
    if !moto_available() {
        return;
    }
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    let total = 3000u64;
    let conf = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {total}
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
{DIGIT_INTERCEPTOR}{FILE_CHANNEL}{}",
        sink_keys(&state, "a1.sinks.k1.hdfs.rollCount = 120\n")
    );
    let c = write_conf(tmp.path(), "a.conf", &conf);
    let agent = start(tmp.path(), &c, &aws_env(&moto, tmp.path()));
    assert!(
        wait_until(Duration::from_secs(90), || agent
            .counter("SINK.k1", "EventDrainSuccessCount")
            >= total),
        "{}",
        agent.log()
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");

    let objs = objects(&moto);
    let mut seen = BTreeSet::new();
    for (key, lines) in &objs {
        // events/d=<digit>/FlumeData.<counter>: the bucketed path, then Flume's file name.
        let rest = key.strip_prefix("events/d=").expect("bucketed key");
        let (digit, name) = rest.split_once('/').expect("d=<digit>/<file>");
        let counter = name
            .strip_prefix("FlumeData.")
            .expect("FlumeData.<counter>");
        counter.parse::<u64>().expect("a counter");
        assert!(!name.ends_with(".tmp"), "an in-use object: {key}");
        for l in lines {
            assert!(l.ends_with(digit), "{l} under {key}");
            assert!(
                seen.insert(l.parse::<u64>().expect("a number")),
                "{l} twice"
            );
        }
    }
    assert_eq!(seen, (0..total).collect::<BTreeSet<u64>>(), "N in, N out");
    let buckets: BTreeSet<&str> = objs
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("events/")?.split('/').next())
        .collect();
    assert_eq!(buckets.len(), 10, "one prefix per digit: {buckets:?}");
    assert_eq!(
        moto.open_uploads(BUCKET),
        0,
        "no multipart upload left open"
    );
    assert!(
        staged_left(&state).is_empty(),
        "staged: {:?}",
        staged_left(&state)
    );
}

fn netcat_conf(port: u16, state: &Path, extra: &str) -> String {
    format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.batch-size = 50
a1.sources.r1.channels = c1
{DIGIT_INTERCEPTOR}{FILE_CHANNEL}{}",
        sink_keys(state, extra)
    )
}

/// About 2,000 lines a second: enough to be mid-stream, little enough for moto.
const PACE: Pace = Pace {
    every: 20,
    pause: Duration::from_millis(10),
};

#[test]
fn kill_9_mid_stream_then_restart_publishes_every_acknowledged_event_and_leaves_nothing_in_use() {
    if !moto_available() {
        return;
    }
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    let port = free_port();
    let c = write_conf(
        tmp.path(),
        "a.conf",
        &netcat_conf(port, &state, "a1.sinks.k1.hdfs.rollCount = 500\n"),
    );
    let env = aws_env(&moto, tmp.path());
    let agent = start(tmp.path(), &c, &env);
    let acked = Arc::new(AtomicUsize::new(0));
    let client = stream_lines(port, 0, acked.clone(), PACE, None);
    assert!(
        wait_until(Duration::from_secs(60), || acked.load(SeqCst) >= 3000
            && !moto.list(BUCKET, "events/").is_empty()),
        "{}",
        agent.log()
    );
    agent.kill9();
    let sent = client.join().expect("client");
    let n_acked = acked.load(SeqCst);
    let acked_lines: BTreeSet<String> = (0..n_acked).map(|n| format!("line-0-{n:07}")).collect();
    let sent_lines: BTreeSet<String> = (0..sent).map(|n| format!("line-0-{n:07}")).collect();
    let staged_after_kill = staged_left(&state).len();

    let agent = start(tmp.path(), &c, &env);
    // The channel drained (then a clean stop finishes, publishes, the files still open), and
    // the sink made at least one call: its recovery runs at the start of its first call, which
    // may come after the channel reads empty.
    let drained = wait_until(Duration::from_secs(90), || {
        let calls = [
            "BatchEmptyCount",
            "BatchUnderflowCount",
            "BatchCompleteCount",
        ]
        .iter()
        .map(|name| agent.counter("SINK.k1", name))
        .sum::<u64>();
        agent.counter("CHANNEL.c1", "ChannelSize") == 0 && calls > 0
    });
    let counted = agent.counter("SINK.k1", "EventDuplicateCount");
    let recovered = agent.counter("SINK.k1", "FilesRecoveredCount");
    let (status, log) = agent.terminate();
    assert!(drained && status.success(), "{log}");
    let have: BTreeSet<String> = all_lines(&objects(&moto)).into_iter().collect();
    let missing: Vec<&String> = acked_lines.iter().filter(|l| !have.contains(*l)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the objects: {missing:?}\n{log}"
    );

    let objs = objects(&moto);
    let got = all_lines(&objs);
    for l in &got {
        assert!(
            sent_lines.contains(l),
            "object line {l:?} was never sent (torn?)"
        );
    }
    for (key, _) in &objs {
        assert!(!key.ends_with(".tmp"), "an in-use object: {key}");
    }
    assert!(
        staged_left(&state).is_empty(),
        "staged: {:?}",
        staged_left(&state)
    );
    assert_eq!(
        moto.open_uploads(BUCKET),
        0,
        "no multipart upload left open"
    );
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for l in &got {
        *counts.entry(l).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "sent {sent}, acknowledged {n_acked}, in objects {}, duplicates {duplicates}, counted \
         {counted}, staged after the kill {staged_after_kill}, recovered files {recovered}",
        got.len()
    );
    assert!(
        recovered >= 1,
        "the killed run left a staged file to recover and publish"
    );
    assert_eq!(
        counted, duplicates as u64,
        "EventDuplicateCount must be the duplicates in the objects"
    );
}

#[test]
fn a_30_second_outage_mid_stream_loses_nothing_and_the_agent_keeps_accepting() {
    if !moto_available() {
        return;
    }
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    let port = free_port();
    let c = write_conf(
        tmp.path(),
        "a.conf",
        &netcat_conf(
            port,
            &state,
            "a1.sinks.k1.hdfs.rollCount = 300\na1.sinks.k1.hdfs.retryInterval = 1\n",
        ),
    );
    let agent = start(tmp.path(), &c, &aws_env(&moto, tmp.path()));
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = stream_lines(port, 0, acked.clone(), PACE, Some(stop.clone()));
    assert!(
        wait_until(Duration::from_secs(60), || !moto
            .list(BUCKET, "events/")
            .is_empty()),
        "{}",
        agent.log()
    );

    moto.suspend();
    let down = Instant::now();
    let acked_at_outage = acked.load(SeqCst);
    std::thread::sleep(Duration::from_secs(30));
    let acked_during = acked.load(SeqCst) - acked_at_outage;
    let failures = agent.counter("SINK.k1", "PublishFailureCount");
    moto.resume();
    eprintln!(
        "outage of {:.1} s: {acked_during} lines acknowledged meanwhile, {failures} failed publishes",
        down.elapsed().as_secs_f64()
    );
    assert!(
        acked_during >= 10_000,
        "the agent kept accepting into the channel during the outage"
    );
    assert!(failures >= 1, "publishes failed while the server was away");

    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, SeqCst);
    let sent = client.join().expect("client");
    let n_acked = acked.load(SeqCst);
    let acked_lines: BTreeSet<String> = (0..n_acked).map(|n| format!("line-0-{n:07}")).collect();
    // The channel drained, then a clean stop finishes (publishes) the files still open.
    let drained = wait_until(Duration::from_secs(120), || {
        agent.counter("CHANNEL.c1", "ChannelSize") == 0
    });
    let published = agent.counter("SINK.k1", "FilesPublishedCount");
    let (status, log) = agent.terminate();
    assert!(drained && status.success(), "{log}");
    let got = all_lines(&objects(&moto));
    let have: BTreeSet<&String> = got.iter().collect();
    let missing: Vec<&String> = acked_lines.iter().filter(|l| !have.contains(l)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the objects after the outage: {} lines, first {:?}\n{log}",
        missing.len(),
        missing.first()
    );
    let sent_lines: BTreeSet<String> = (0..sent).map(|n| format!("line-0-{n:07}")).collect();
    for l in &got {
        assert!(sent_lines.contains(l), "object line {l:?} was never sent");
    }
    assert!(
        staged_left(&state).is_empty(),
        "staged: {:?}",
        staged_left(&state)
    );
    eprintln!(
        "sent {sent}, acknowledged {n_acked}, in objects {}, files published {published}",
        got.len()
    );
}
