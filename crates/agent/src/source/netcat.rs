//! `netcat`: a TCP server turning each newline-terminated line into an event (Flume's
//! `NetcatSource`).
//!
//! Keys and Flume's defaults: `bind` and `port` (required), `max-line-length` (512, counting
//! the newline), `ack-every-event` (true). Ours: `batch-size` (1), and against hostile clients
//! (see [`super::net`]) `maxConnections` (1000: more are closed at once and counted in
//! `ConnectionRejectedCount`) and `readTimeout` (30,000 ms: a line started and not finished
//! within it closes the connection, counted in `ReadTimeoutCount`; a connection idle between
//! lines stays open). A connection holds at most `max-line-length` bytes plus one read of an
//! unfinished line, the lines received and not yet handed to the channels (at most
//! `batch-size`, for at most `batch-linger-ms`), and up to [`COMMITS_IN_FLIGHT_MAX`] batches
//! whose commits are in flight.
//!
//! Protocol, as in Flume: the body is the line without its `\n` (a `\r` before it is kept). For
//! every line the server answers `OK\n` once the event is committed to every required channel
//! (with a file channel: durable), or `FAILED: <reason>\n` if a put failed; with
//! `ack-every-event = false` only failures are answered. A line of `max-line-length` bytes or
//! more (without its newline) is answered `FAILED: Event exceeds the maximum length (N bytes,
//! including newline)` and the connection is closed, after the lines before it were processed.
//!
//! Batching mode (ours, `batch-size` > 1): lines are committed `batch-size` at a time in one
//! transaction, or fewer once `batch-linger-ms` (5) has passed since the oldest of them arrived,
//! whichever comes first; then each of them is answered `OK` (or each `FAILED`). The next
//! batch is read and put while earlier ones wait for their fsync (up to
//! [`COMMITS_IN_FLIGHT_MAX`] in flight, handed to the channels in order, so they land in order
//! and a file channel's fsync covers several); answers go out in order, each after the commit
//! that covers its line. A transaction
//! per socket read would not be a batch: a fast client's read returns some tens of lines, so
//! every few tens of lines would cost an fsync. A client that sends lines without waiting for
//! answers gets them committed `batch-size` at a time; one that waits for each answer gets it
//! after the linger. With `batch-size = 1` nothing lingers.
//!
//! Differences from Flume: lengths are counted in bytes, not UTF-16 characters, and bodies are
//! kept byte for byte (Flume decodes and re-encodes UTF-8, replacing invalid bytes); a last
//! line without a newline before the client closes its side is an event and is answered
//! (Flume drops it silently).
//!
//! Shutdown: the listener closes, connections stop reading, lines already received are
//! committed and answered, then connections close.

use super::commit::{submit_counted, Call, CommitFailure, InFlight};
use super::net::{self, ConnectionLimits, Guard, PartialDeadline};
use super::{BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::config::context::Ctx;
use crate::stop::Stop;
use file_channel::Event;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

/// Configuration of a netcat source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetcatConfig {
    /// Address to listen on. `bind`.
    pub bind: String,
    /// Port. `port`.
    pub port: u16,
    /// Longest line, newline included. `max-line-length`. Default: 512.
    pub max_line_length: usize,
    /// Answer `OK` for every committed line. `ack-every-event`. Default: true.
    pub ack_every_event: bool,
    /// Most lines per transaction. `batch-size`. Default: 1.
    pub batch_size: u32,
    /// Longest a received line waits for its batch to fill before a smaller batch is
    /// committed. `batch-linger-ms`. Default: 5.
    pub batch_linger_ms: u64,
    /// `maxConnections` and `readTimeout`.
    pub limits: ConnectionLimits,
}

impl NetcatConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let bind = ctx.required("bind").unwrap_or_default();
        let port = match ctx.get("port") {
            Some(_) => ctx.u64_in("port", 0, 0..=65_535) as u16,
            None => {
                ctx.required("port");
                0
            }
        };
        Self {
            bind,
            port,
            max_line_length: ctx.u64_in(
                "max-line-length",
                512,
                2..=file_channel::limits::MAX_EVENT_BYTES,
            ) as usize,
            ack_every_event: ctx.bool("ack-every-event", true),
            batch_size: ctx.u32_in(
                "batch-size",
                1,
                1..=file_channel::limits::MAX_EVENTS_PER_TXN,
            ),
            batch_linger_ms: ctx.u64_in("batch-linger-ms", DEFAULT_BATCH_LINGER_MS, 0..=60_000),
            limits: ConnectionLimits::parse(ctx),
        }
    }

    /// How long lines may wait for their batch to fill: nothing with `batch-size = 1`.
    fn linger(&self) -> std::time::Duration {
        if self.batch_size <= 1 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_millis(self.batch_linger_ms)
        }
    }
}

/// Default `batch-linger-ms`: long enough for a streaming client to fill a batch of a few
/// hundred lines, short enough to be lost in a round trip for one that waits for answers.
pub const DEFAULT_BATCH_LINGER_MS: u64 = 5;

/// The netcat source.
#[derive(Debug)]
pub struct NetcatSource {
    config: Arc<NetcatConfig>,
    ctx: SourceContext,
}

impl NetcatSource {
    /// A netcat source; nothing is bound before `start`.
    pub fn new(config: NetcatConfig, ctx: SourceContext) -> Self {
        Self {
            config: Arc::new(config),
            ctx,
        }
    }
}

impl EventDrivenSource for NetcatSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let (listener, local) = self
                .ctx
                .bind_tcp(&self.config.bind, self.config.port)
                .await?;
            tracing::info!(source = %self.ctx.name, addr = %local, "netcat source listening");
            self.ctx.counters.lifetime.started();
            let serve: BoxFuture<()> = Box::pin(serve(listener, self.config, self.ctx, stop));
            Ok(serve)
        })
    }
}

async fn serve(listener: TcpListener, config: Arc<NetcatConfig>, ctx: SourceContext, stop: Stop) {
    let guard = Guard::new(&ctx, config.limits);
    net::accept_loop(listener, &guard, &ctx.name, &stop, |socket, peer| {
        handle(
            socket,
            peer,
            config.clone(),
            ctx.clone(),
            guard.clone(),
            stop.clone(),
        )
    })
    .await;
    ctx.counters.lifetime.stopped();
    tracing::info!(source = %ctx.name, "netcat source stopped");
}

/// Most batches of one connection whose commits are in flight at once. The next batch is read
/// and put while earlier ones wait for their fsync, so one fsync can cover several batches (a
/// file channel's group commit); answers still go out in order, each after the commit that
/// covers its line.
pub const COMMITS_IN_FLIGHT_MAX: usize = 4;

/// Lines received and not yet committed, with when the oldest arrived, and the batches whose
/// commits are in flight, oldest first.
#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    since: Option<tokio::time::Instant>,
    in_flight: VecDeque<InFlight>,
}

impl Pending {
    fn push(&mut self, line: Vec<u8>) {
        self.since.get_or_insert_with(tokio::time::Instant::now);
        self.events.push(Event::new(line));
    }

    /// Hands what is pending to the channels; once more than [`COMMITS_IN_FLIGHT_MAX`]
    /// batches are in flight, waits for the oldest and answers it. `Err` if an answer could
    /// not be written.
    async fn submit(
        &mut self,
        config: &NetcatConfig,
        ctx: &SourceContext,
        writer: &mut OwnedWriteHalf,
    ) -> std::io::Result<()> {
        self.since = None;
        let events = std::mem::take(&mut self.events);
        if events.is_empty() {
            return Ok(());
        }
        // A single line counts as an event only, a group also as a batch.
        let call = if events.len() > 1 {
            Call::Batch
        } else {
            Call::Events
        };
        self.in_flight
            .push_back(submit_counted(ctx, events, call).await);
        while self.in_flight.len() > COMMITS_IN_FLIGHT_MAX
            || self.in_flight.front().is_some_and(InFlight::is_finished)
        {
            self.answer_oldest(config, ctx, writer).await?;
        }
        Ok(())
    }

    /// Submits what is pending and answers every batch in flight, in order.
    async fn commit_all(
        &mut self,
        config: &NetcatConfig,
        ctx: &SourceContext,
        writer: &mut OwnedWriteHalf,
    ) -> std::io::Result<()> {
        self.submit(config, ctx, writer).await?;
        while !self.in_flight.is_empty() {
            self.answer_oldest(config, ctx, writer).await?;
        }
        Ok(())
    }

    /// Waits for the oldest batch in flight and answers its lines.
    async fn answer_oldest(
        &mut self,
        config: &NetcatConfig,
        ctx: &SourceContext,
        writer: &mut OwnedWriteHalf,
    ) -> std::io::Result<()> {
        let Some(flight) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let n = flight.len();
        let result = flight.finish().await;
        answer(result, n, config, ctx, writer).await
    }

    /// Waits until the oldest batch in flight has ended (forever if none is in flight).
    async fn oldest_ended(&mut self) {
        match self.in_flight.front_mut() {
            Some(flight) => flight.ended().await,
            None => std::future::pending().await,
        }
    }

    /// When the oldest pending line has waited the linger out.
    fn due(&self, linger: std::time::Duration) -> Option<tokio::time::Instant> {
        self.since.map(|since| since + linger)
    }
}

async fn handle(
    socket: TcpStream,
    peer: std::net::SocketAddr,
    config: Arc<NetcatConfig>,
    ctx: SourceContext,
    guard: Arc<Guard>,
    stop: Stop,
) {
    let counters = ctx.counters.clone();
    counters.open_connection_count.fetch_add(1, Relaxed);
    let (reader, mut writer) = socket.into_split();
    let mut buf: Vec<u8> = Vec::new();
    let mut deadline = PartialDeadline::new(config.limits.read_timeout());
    let linger = config.linger();
    let batch_size = config.batch_size as usize;
    let mut pending = Pending::default();
    let mut eof = false;
    'connection: loop {
        let mut start = 0;
        let mut too_long = false;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + pos];
            start += pos + 1;
            if line.len() >= config.max_line_length {
                too_long = true;
                break;
            }
            pending.push(line.to_vec());
            if pending.events.len() >= batch_size
                && pending.submit(&config, &ctx, &mut writer).await.is_err()
            {
                break 'connection;
            }
        }
        buf.drain(..start);
        let completed_a_line = start > 0;
        if buf.is_empty() {
            // An idle connection keeps no buffer from its last burst.
            buf = Vec::new();
        }
        if eof && !too_long && !buf.is_empty() {
            let last = std::mem::take(&mut buf);
            if last.len() >= config.max_line_length {
                too_long = true;
            } else {
                pending.push(last);
            }
        }
        let too_long = too_long || (!eof && buf.len() >= config.max_line_length);
        let lingered = pending
            .due(linger)
            .is_some_and(|d| d <= tokio::time::Instant::now());
        // Before a too-long line's answer or the end, every earlier line is answered.
        let answered = if too_long || eof {
            pending.commit_all(&config, &ctx, &mut writer).await
        } else if lingered {
            pending.submit(&config, &ctx, &mut writer).await
        } else {
            Ok(())
        };
        if answered.is_err() {
            break;
        }
        if too_long {
            reply_too_long(&config, &ctx, &mut writer).await;
            break;
        }
        if eof {
            break;
        }
        // What is left in `buf` is the start of a line: it must be finished in time.
        deadline.update(completed_a_line, !buf.is_empty());
        let due = pending.due(linger);
        let linger_over = async {
            match due {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.wait() => break,
            () = pending.oldest_ended() => {
                if pending.answer_oldest(&config, &ctx, &mut writer).await.is_err() {
                    break;
                }
            }
            () = linger_over => {}
            read = deadline.run(net::read_available(&reader)) => match read {
                None => {
                    guard.timed_out(&peer, "line", buf.len());
                    break;
                }
                Some(Ok(chunk)) if chunk.is_empty() => eof = true,
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    tracing::debug!(source = %ctx.name, error = %e, "read failed; closing");
                    break;
                }
            },
        }
    }
    // Lines received whole are committed (and answered, if the client still listens) before
    // the connection closes, whatever closed it.
    if pending
        .commit_all(&config, &ctx, &mut writer)
        .await
        .is_err()
    {
        // The client is gone: what is in flight is still committed (and counted), only not
        // answered. (`submit` took the pending lines before anything could fail.)
        while let Some(flight) = pending.in_flight.pop_front() {
            let _ = flight.finish().await;
        }
    }
    let _ = writer.shutdown().await;
    counters.open_connection_count.fetch_sub(1, Relaxed);
}

async fn reply_too_long(config: &NetcatConfig, ctx: &SourceContext, writer: &mut OwnedWriteHalf) {
    ctx.counters.event_read_fail.fetch_add(1, Relaxed);
    tracing::warn!(source = %ctx.name, "client sent a line exceeding max-line-length; closing the connection");
    let msg = format!(
        "FAILED: Event exceeds the maximum length ({} bytes, including newline)\n",
        config.max_line_length
    );
    let _ = writer.write_all(msg.as_bytes()).await;
}

/// Answers each line of a batch whose commit ended with `result`.
async fn answer(
    result: Result<(), CommitFailure>,
    n: usize,
    config: &NetcatConfig,
    ctx: &SourceContext,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let reply = match result {
        Ok(()) => {
            if !config.ack_every_event {
                return Ok(());
            }
            "OK\n".repeat(n)
        }
        Err(CommitFailure::Channel(e)) => {
            tracing::warn!(source = %ctx.name, error = %e, "error processing event");
            format!("FAILED: {e}\n").repeat(n)
        }
        Err(CommitFailure::Task(join)) => {
            tracing::error!(source = %ctx.name, error = %join, "put task failed");
            format!("FAILED: {join}\n").repeat(n)
        }
    };
    writer.write_all(reply.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Channel, MemoryChannelConfig};
    use crate::channel_processor::ChannelProcessor;
    use crate::selector::Selector;
    use tokio::io::{AsyncBufReadExt, BufReader};

    struct Harness {
        addr: std::net::SocketAddr,
        channel: Channel,
        stop: Stop,
        task: tokio::task::JoinHandle<()>,
        counters: Arc<crate::metrics::SourceCounters>,
    }

    async fn start(config: NetcatConfig, capacity: u64) -> Harness {
        let channel = Channel::memory(
            "c1",
            MemoryChannelConfig {
                capacity,
                transaction_capacity: capacity as u32,
                keep_alive_ms: 10,
                ..MemoryChannelConfig::default()
            },
        );
        start_on(config, channel).await
    }

    async fn start_on(config: NetcatConfig, channel: Channel) -> Harness {
        let processor = ChannelProcessor::new(
            "r1",
            vec![],
            Selector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![channel.clone()],
        );
        let counters: Arc<crate::metrics::SourceCounters> = Arc::default();
        let ctx = SourceContext {
            name: "r1".into(),
            processor: Arc::new(processor),
            counters: counters.clone(),
        };
        let stop = Stop::new();
        let (port, serve) = crate::test_net::start_on_free_port(
            |port| {
                let cfg = NetcatConfig {
                    port,
                    ..config.clone()
                };
                Box::new(NetcatSource::new(cfg, ctx.clone()))
            },
            &stop,
        )
        .await;
        let task = tokio::spawn(serve);
        Harness {
            addr: ([127, 0, 0, 1], port).into(),
            channel,
            stop,
            task,
            counters,
        }
    }

    fn config(batch_size: u32, ack: bool) -> NetcatConfig {
        NetcatConfig {
            bind: "127.0.0.1".into(),
            port: 0,
            max_line_length: 16,
            ack_every_event: ack,
            batch_size,
            batch_linger_ms: DEFAULT_BATCH_LINGER_MS,
            limits: ConnectionLimits::default(),
        }
    }

    fn bodies(ch: &Channel) -> Vec<String> {
        let mut tx = ch.transaction();
        let mut v = Vec::new();
        while tx.len() < ch.transaction_capacity() as usize {
            let Some(e) = tx.take().expect("take") else {
                break;
            };
            v.push(String::from_utf8_lossy(&e.body).into_owned());
        }
        tx.commit().expect("commit");
        v
    }

    async fn exchange(addr: std::net::SocketAddr, send: &[u8]) -> Vec<String> {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(send).await.expect("send");
        s.shutdown().await.expect("half close");
        let mut lines = BufReader::new(s).lines();
        let mut v = Vec::new();
        while let Some(l) = lines.next_line().await.expect("read") {
            v.push(l);
        }
        v
    }

    #[tokio::test]
    async fn acks_each_line_and_keeps_cr_and_an_unterminated_last_line() {
        let h = start(config(1, true), 100).await;
        let replies = exchange(h.addr, b"one\ntwo\r\n\nlast").await;
        assert_eq!(replies, vec!["OK", "OK", "OK", "OK"]);
        assert_eq!(bodies(&h.channel), vec!["one", "two\r", "", "last"]);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    #[tokio::test]
    async fn batching_mode_commits_pipelined_lines_together() {
        let h = start(config(100, true), 100).await;
        let replies = exchange(h.addr, b"a\nb\nc\n").await;
        assert_eq!(replies, vec!["OK", "OK", "OK"]);
        assert_eq!(bodies(&h.channel), vec!["a", "b", "c"]);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    /// A harness with `batch-size` `batch` and `batch-linger-ms` `linger_ms`, and a client
    /// connection to it, split into the answers' lines and the write half.
    async fn lingering(
        batch: u32,
        linger_ms: u64,
    ) -> (
        Harness,
        tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
        OwnedWriteHalf,
    ) {
        let h = start(
            NetcatConfig {
                batch_linger_ms: linger_ms,
                ..config(batch, true)
            },
            100,
        )
        .await;
        let (r, w) = TcpStream::connect(h.addr)
            .await
            .expect("connect")
            .into_split();
        (h, BufReader::new(r).lines(), w)
    }

    #[tokio::test]
    async fn a_batch_fills_across_reads_within_the_linger() {
        let (h, mut lines, mut w) = lingering(4, 60_000).await;
        // Four lines in four writes, each read on its own: still one transaction.
        for line in [&b"a\n"[..], b"b\n", b"c\n", b"d\n"] {
            w.write_all(line).await.expect("send");
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        for _ in 0..4 {
            let l = lines.next_line().await.expect("read").expect("a line");
            assert_eq!(l, "OK");
        }
        assert_eq!(h.counters.append_batch_accepted_count.load(Relaxed), 1);
        assert_eq!(h.counters.event_accepted_count.load(Relaxed), 4);
        assert_eq!(bodies(&h.channel), vec!["a", "b", "c", "d"]);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    #[tokio::test]
    async fn a_partial_batch_is_committed_once_the_linger_is_over() {
        let (h, mut lines, mut w) = lingering(100, 50).await;
        w.write_all(b"alone\n").await.expect("send");
        // The client keeps the connection open and waits for its answer.
        let l = lines.next_line().await.expect("read").expect("a line");
        assert_eq!(l, "OK");
        assert_eq!(bodies(&h.channel), vec!["alone"]);
        drop(w);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    #[tokio::test]
    async fn lines_pending_at_stop_are_committed_and_answered() {
        let (h, mut lines, mut w) = lingering(100, 60_000).await;
        w.write_all(b"x\ny\n").await.expect("send");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            bodies(&h.channel).is_empty(),
            "nothing committed before the linger"
        );
        h.stop.trigger();
        assert_eq!(
            lines.next_line().await.expect("read").as_deref(),
            Some("OK")
        );
        assert_eq!(
            lines.next_line().await.expect("read").as_deref(),
            Some("OK")
        );
        h.task.await.expect("stopped");
        assert_eq!(bodies(&h.channel), vec!["x", "y"]);
        drop(w);
    }

    #[tokio::test]
    async fn too_long_lines_fail_and_close_after_earlier_lines() {
        let h = start(config(1, true), 100).await;
        let replies = exchange(h.addr, b"ok\n0123456789abcdef\nnever\n").await;
        assert_eq!(
            replies,
            vec![
                "OK",
                "FAILED: Event exceeds the maximum length (16 bytes, including newline)"
            ]
        );
        assert_eq!(bodies(&h.channel), vec!["ok"]);
        // 15 bytes plus the newline fit exactly.
        let replies = exchange(h.addr, b"0123456789abcde\n").await;
        assert_eq!(replies, vec!["OK"]);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    #[tokio::test]
    async fn a_full_channel_is_answered_failed_and_without_acks_only_failures_are() {
        let h = start(config(1, false), 1).await;
        let replies = exchange(h.addr, b"fits\nno room\n").await;
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert!(
            replies[0].starts_with(
                "FAILED: unable to put batch on required channel c1: Space for commit"
            ),
            "{replies:?}"
        );
        assert_eq!(bodies(&h.channel), vec!["fits"]);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }
    /// Batches that wait for room in the channel reach it, and their lines their answers, in the
    /// order the lines were sent; a batch that fails is answered FAILED in its place between the
    /// others.
    #[tokio::test]
    async fn batches_waiting_for_room_land_and_are_answered_in_order() {
        let h = start(
            NetcatConfig {
                batch_linger_ms: 60_000,
                ..config(2, true)
            },
            2,
        )
        .await;
        let (r, mut w) = TcpStream::connect(h.addr)
            .await
            .expect("connect")
            .into_split();
        let mut answers = BufReader::new(r).lines();
        w.write_all(b"a\nb\nc\nd\ne\nf\n").await.expect("send");
        // a, b fill the channel; c, d wait for room (keep-alive 10 ms) and fail; e, f follow.
        let mut replies = Vec::new();
        for _ in 0..2 {
            replies.push(answers.next_line().await.expect("read").expect("an answer"));
        }
        assert_eq!(replies, vec!["OK", "OK"]);
        for _ in 0..2 {
            let l = answers.next_line().await.expect("read").expect("an answer");
            assert!(l.starts_with("FAILED: "), "{l}");
        }
        assert_eq!(bodies(&h.channel), vec!["a", "b"]);
        // Room again: e, f (committing or failed meanwhile) — send g, h and drain in order.
        w.write_all(b"g\nh\n").await.expect("send");
        w.shutdown().await.expect("half close");
        let mut rest = Vec::new();
        let mut landed = Vec::new();
        while let Some(l) = answers.next_line().await.expect("read") {
            rest.push(l);
            landed.extend(bodies(&h.channel));
        }
        landed.extend(bodies(&h.channel));
        assert_eq!(rest.len(), 4, "{rest:?}");
        // Whatever failed for lack of room was answered FAILED; what landed is in order.
        let ok: Vec<bool> = rest.iter().map(|l| l == "OK").collect();
        let expected: Vec<&str> = ["e", "f", "g", "h"]
            .iter()
            .zip(&ok)
            .filter(|(_, ok)| **ok)
            .map(|(b, _)| *b)
            .collect();
        assert_eq!(landed, expected, "{rest:?}");
        h.stop.trigger();
        h.task.await.expect("stopped");
    }

    /// A simulated disk whose segment fsyncs take `SLOW_FSYNC` each, counting them.
    #[derive(Debug)]
    struct SlowFsyncs {
        inner: file_channel_testkit::SimStorage,
        segment_syncs: Arc<std::sync::atomic::AtomicU64>,
    }

    const SLOW_FSYNC: std::time::Duration = std::time::Duration::from_millis(40);

    #[derive(Debug)]
    struct SlowFile {
        inner: file_channel::storage::DynFile,
        segment_syncs: Option<Arc<std::sync::atomic::AtomicU64>>,
    }

    impl file_channel::storage::StorageFile for SlowFile {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            self.inner.read_at(buf, offset)
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
            self.inner.write_at(buf, offset)
        }
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            if let Some(n) = &self.segment_syncs {
                std::thread::sleep(SLOW_FSYNC);
                n.fetch_add(1, Relaxed);
            }
            self.inner.sync_data()
        }
    }

    impl SlowFsyncs {
        fn wrap(
            &self,
            path: &std::path::Path,
            file: file_channel::storage::DynFile,
        ) -> file_channel::storage::DynFile {
            let segment = path.extension().is_some_and(|e| e == "seg");
            Arc::new(SlowFile {
                inner: file,
                segment_syncs: segment.then(|| self.segment_syncs.clone()),
            })
        }
    }

    impl file_channel::storage::Storage for SlowFsyncs {
        fn create(
            &self,
            path: &std::path::Path,
        ) -> std::io::Result<file_channel::storage::DynFile> {
            Ok(self.wrap(path, self.inner.create(path)?))
        }
        fn open(
            &self,
            path: &std::path::Path,
            writable: bool,
        ) -> std::io::Result<file_channel::storage::DynFile> {
            Ok(self.wrap(path, self.inner.open(path, writable)?))
        }
        fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
            self.inner.rename(from, to)
        }
        fn remove(&self, path: &std::path::Path) -> std::io::Result<()> {
            self.inner.remove(path)
        }
        fn list(&self, dir: &std::path::Path) -> std::io::Result<Vec<String>> {
            self.inner.list(dir)
        }
        fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
            self.inner.sync_dir(dir)
        }
        fn create_dir_all(&self, dir: &std::path::Path) -> std::io::Result<()> {
            self.inner.create_dir_all(dir)
        }
        fn exists(&self, path: &std::path::Path) -> bool {
            self.inner.exists(path)
        }
        fn available_space(&self, dir: &std::path::Path) -> std::io::Result<u64> {
            self.inner.available_space(dir)
        }
        fn lock(
            &self,
            path: &std::path::Path,
            owner: &str,
        ) -> Result<Box<dyn file_channel::storage::LockGuard>, file_channel::storage::LockError>
        {
            self.inner.lock(path, owner)
        }
    }

    /// A client streaming lines without waiting gets several batches in flight: the file
    /// channel's fsyncs (40 ms each here) cover several of them, where committing one batch at
    /// a time costs one fsync per batch. Every line is answered OK, in order, and lands in
    /// order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_in_flight_share_fsyncs_and_are_answered_in_order() {
        let segment_syncs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let storage = Arc::new(SlowFsyncs {
            inner: file_channel_testkit::SimStorage::new(),
            segment_syncs: segment_syncs.clone(),
        });
        let mut cfg = file_channel::ChannelConfig::new("/chan");
        cfg.prefill_ahead_bytes = 0;
        cfg.minimum_required_space = 0;
        let file = file_channel::FileChannel::open_with(cfg, storage).expect("open");
        let channel = Channel::from_file("c1", file);
        let h = start_on(
            NetcatConfig {
                batch_linger_ms: 60_000,
                ..config(4, true)
            },
            channel,
        )
        .await;
        let batches = 12;
        let sent: Vec<String> = (0..batches * 4).map(|i| format!("l{i:02}")).collect();
        let before = segment_syncs.load(Relaxed);
        let (r, mut w) = TcpStream::connect(h.addr)
            .await
            .expect("connect")
            .into_split();
        w.write_all(format!("{}\n", sent.join("\n")).as_bytes())
            .await
            .expect("send");
        let mut lines = BufReader::new(r).lines();
        for i in 0..sent.len() {
            let line = lines.next_line().await.expect("read").expect("an answer");
            assert_eq!(line, "OK", "answer {i}");
        }
        let syncs = segment_syncs.load(Relaxed) - before;
        assert!(
            syncs < batches as u64 / 2,
            "{batches} batches took {syncs} fsyncs: batches were not in flight together"
        );
        assert_eq!(bodies(&h.channel), sent);
        h.stop.trigger();
        h.task.await.expect("stopped");
    }
}
