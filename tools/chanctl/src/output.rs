//! Output helpers: a buffered stdout whose broken pipe ends the program quietly, errors on one
//! line with each cause once, human-readable sizes and durations, and JSON conversions shared
//! by the commands.

use file_channel::inspect::json::Json;
use file_channel::inspect::InspectError;
use serde_json::{json, Value};
use std::io::{self, BufWriter, StdoutLock, Write};
use std::time::Duration;

/// Buffered standard output.
pub type Out = BufWriter<StdoutLock<'static>>;

/// A buffered, locked stdout.
pub fn stdout() -> Out {
    BufWriter::with_capacity(64 << 10, io::stdout().lock())
}

/// Whether an error is (or was caused by) a broken pipe on our output.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return io.kind() == io::ErrorKind::BrokenPipe;
        }
        if let Some(InspectError::Output(io)) = c.downcast_ref::<InspectError>() {
            return io.kind() == io::ErrorKind::BrokenPipe;
        }
        false
    })
}

/// An error and its causes on one line, leaving out a cause whose text the message before it
/// already contains: the library's errors say their cause in their own message, so anyhow's
/// `{:#}` would print each I/O cause twice.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    let mut previous = line.clone();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !previous.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        previous = text;
    }
    line
}

/// Writes one JSON value on one line and flushes.
pub fn print_json(out: &mut Out, v: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Bytes in binary units: `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration for people: `850 µs`, `12.3 ms`, `4.56 s`, `3 min 20 s`, `2 h 5 min`.
pub fn duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else if d.as_secs() < 120 {
        format!("{:.2} s", d.as_secs_f64())
    } else if d.as_secs() < 7200 {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{} h {} min", d.as_secs() / 3600, (d.as_secs() / 60) % 60)
    }
}

/// Microseconds for people.
pub fn micros(us: u64) -> String {
    duration(Duration::from_micros(us))
}

/// The library's JSON value as a serde_json value.
pub fn from_lib(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => json!(b),
        Json::U64(n) => json!(n),
        Json::F64(x) => json!(x),
        Json::Str(s) => json!(s),
        Json::Arr(v) => Value::Array(v.iter().map(from_lib).collect()),
        Json::Obj(v) => Value::Object(v.iter().map(|(k, x)| (k.clone(), from_lib(x))).collect()),
    }
}

/// A channel id as hex.
pub fn channel_id(id: Option<u64>) -> Value {
    id.map_or(Value::Null, |id| json!(format!("{id:#018x}")))
}
