//! `logger`: logs each event at INFO, in Flume's format:
//! `Event: { headers:{k=v} body: 68 65 6C 6C 6F                                  hello }`.
//! The body is hex-dumped as Apache Commons IO's `HexDump` does (16 bytes per line, then the
//! printable characters, `.` for the rest), at most `maxBytesToLog` bytes (16), with the first
//! line's offset removed, exactly as Flume's `EventHelper.dumpEvent`. One event per
//! transaction, as Flume's `LoggerSink`.

use super::{Deliver, SinkContext, SinkError};
use crate::config::context::Ctx;
use crate::event::headers_java_string;
use file_channel::Event;
use std::fmt::Write;

/// Configuration of a logger sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggerConfig {
    /// Body bytes shown. `maxBytesToLog`. Default: 16.
    pub max_bytes_to_log: usize,
}

impl LoggerConfig {
    /// Reads `maxBytesToLog`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            max_bytes_to_log: ctx.u64_in("maxBytesToLog", 16, 0..=1 << 20) as usize,
        }
    }
}

/// Flume's `EventHelper.dumpEvent(event, max_bytes)`.
pub fn dump_event(event: &Event, max_bytes: usize) -> String {
    let data = &event.body[..event.body.len().min(max_bytes)];
    let mut dump = hex_dump(data);
    if let Some(rest) = dump.strip_prefix("00000000") {
        dump = rest.to_owned();
    }
    if dump.ends_with('\n') && dump.len() > 1 {
        dump.pop();
    }
    format!("{{ headers:{} body:{dump} }}", headers_java_string(event))
}

/// Commons IO `HexDump.dump(data, 0, out, 0)`: lines of an 8-digit hex offset, 16 hex bytes
/// (blank-padded), and the printable characters.
fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08X} ", i * 16);
        for k in 0..16 {
            match chunk.get(k) {
                Some(b) => {
                    let _ = write!(out, "{b:02X} ");
                }
                None => out.push_str("   "),
            }
        }
        for &b in chunk {
            out.push(if (b' '..127).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        out.push('\n');
    }
    out
}

/// The logger sink.
#[derive(Debug)]
pub struct LoggerSink {
    config: LoggerConfig,
    ctx: SinkContext,
}

impl LoggerSink {
    /// A logger sink.
    pub fn new(config: LoggerConfig, ctx: SinkContext) -> Self {
        ctx.counters.lifetime.started();
        Self { config, ctx }
    }
}

impl Deliver for LoggerSink {
    fn context(&self) -> &SinkContext {
        &self.ctx
    }

    /// One event per transaction, as Flume's `LoggerSink`.
    fn batch_size(&self) -> usize {
        1
    }

    fn deliver(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        for e in &events {
            tracing::info!(target: "sluice::sink::logger", sink = %self.ctx.name, "Event: {}", dump_event(e, self.config.max_bytes_to_log));
        }
        Ok(())
    }

    fn on_stop(&mut self) {
        self.ctx.counters.lifetime.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Status;
    use crate::sink::test_support::sink_ctx;
    use crate::sink::Sink;

    #[test]
    fn flumes_format() {
        let e = Event::new("Hello world!\r");
        assert_eq!(
            dump_event(&e, 16),
            "{ headers:{} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D          Hello world!. }"
        );
        let e = Event::new("hello").with_header("host", "web-1");
        assert_eq!(
            dump_event(&e, 16),
            "{ headers:{host=web-1} body: 68 65 6C 6C 6F                                  hello }"
        );
        assert_eq!(dump_event(&Event::new(""), 16), "{ headers:{} body: }");
    }

    #[test]
    fn long_bodies_are_cut_and_wrapped_like_commons_io() {
        let e = Event::new("0123456789abcdefXYZ");
        assert_eq!(
            dump_event(&e, 16),
            "{ headers:{} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 0123456789abcdef }"
        );
        assert_eq!(
            dump_event(&e, 32),
            "{ headers:{} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 0123456789abcdef\n00000010 58 59 5A                                        XYZ }"
        );
    }

    #[test]
    fn takes_one_event_per_call() {
        let ctx = sink_ctx(&["a", "b"]);
        let channel = ctx.channel.clone();
        let mut s = LoggerSink::new(
            LoggerConfig {
                max_bytes_to_log: 16,
            },
            ctx,
        );
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(channel.len(), 1);
        assert_eq!(s.process().expect("ok"), Status::Ready);
        assert_eq!(s.process().expect("ok"), Status::Backoff);
    }
}
