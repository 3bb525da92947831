//! Syslog message parsing and TCP framing, with Flume's `SyslogUtils` semantics.
//!
//! A message is `<PRI>` followed by an RFC 5424 header (`VERSION SP TIMESTAMP SP HOSTNAME SP
//! rest`) or an RFC 3164 one (`Mmm dd hh:mm:ss SP HOSTNAME SP rest`). The event gets Flume's
//! headers `Facility` and `Severity` (PRI / 8 and PRI % 8), `timestamp` (milliseconds since the
//! epoch, when the timestamp parsed) and `host` (when the hostname is not `-`). The body is the
//! `rest` (for RFC 5424: app-name, procid, msgid, structured data and message, as Flume keeps
//! them), prefixed by the parts `keepFields` asks to keep, in Flume's order:
//! `<PRI>VERSION TIMESTAMP HOSTNAME rest`; `keepFields = all` keeps the message as received.
//!
//! - No valid `<PRI>` (missing, not 1–3 digits, above 191): header `flume.syslog.status =
//!   Invalid`, `Facility` and `Severity` 0, the whole message as body (Flume keeps such
//!   messages too instead of dropping them).
//! - A valid PRI but a header matching neither RFC: `Facility`/`Severity` only, the whole
//!   message as body (Flume: no format matched).
//! - A message cut at `eventSize`: parsed as far as it goes, plus
//!   `flume.syslog.status = Incomplete`.
//!
//! RFC 3164 timestamps carry no year and no zone: the current year is assumed (the previous one
//! if that puts the time more than 31 days ahead) and the time is read as UTC (Flume: the JVM's
//! default zone).
//!
//! TCP framing ([`Framer`]), RFC 6587: a frame starting with a digit is octet-counted
//! (`LEN SP MSG`), any other is newline-terminated (a `\r` before the `\n` is removed, empty
//! lines are skipped). A frame longer than `eventSize` bytes is cut there and the rest of it
//! discarded.

use file_channel::Event;

/// Flume's header with the facility.
pub const FACILITY_HEADER: &str = "Facility";
/// Flume's header with the severity.
pub const SEVERITY_HEADER: &str = "Severity";
/// Flume's header with the timestamp in milliseconds since the epoch.
pub const TIMESTAMP_HEADER: &str = "timestamp";
/// Flume's header with the sender's hostname.
pub const HOST_HEADER: &str = "host";
/// Flume's header marking invalid or incomplete messages.
pub const STATUS_HEADER: &str = "flume.syslog.status";

/// Most digits of an octet count (RFC 6587 allows any, 10 covers every frame we accept).
const MAX_OCTET_COUNT_DIGITS: usize = 10;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Which parsed parts stay in the body (`keepFields`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepFields {
    /// `priority`: `<PRI>`.
    pub priority: bool,
    /// `version` (RFC 5424 only).
    pub version: bool,
    /// `timestamp`, as received.
    pub timestamp: bool,
    /// `hostname`, as received.
    pub hostname: bool,
}

impl KeepFields {
    /// Every part: the message as received (`all` or `true`).
    pub const ALL: Self = Self {
        priority: true,
        version: true,
        timestamp: true,
        hostname: true,
    };

    /// Parses `none`/`false`, `all`/`true`, or a space-separated subset of `timestamp hostname
    /// priority version`; the unknown word on error.
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        match v.to_ascii_lowercase().as_str() {
            "" | "none" | "false" => return Ok(Self::default()),
            "all" | "true" => return Ok(Self::ALL),
            _ => {}
        }
        let mut k = Self::default();
        for word in v.split_whitespace() {
            match word.to_ascii_lowercase().as_str() {
                "timestamp" => k.timestamp = true,
                "hostname" => k.hostname = true,
                "priority" => k.priority = true,
                "version" => k.version = true,
                _ => return Err(word.to_owned()),
            }
        }
        Ok(k)
    }
}

/// The parts of a parsed header.
#[derive(Debug, PartialEq, Eq)]
struct Header<'a> {
    version: Option<&'a [u8]>,
    timestamp_raw: &'a [u8],
    timestamp_ms: Option<i64>,
    host: &'a [u8],
    rest: &'a [u8],
}

/// Builds the event of one message. `incomplete`: it was cut at `eventSize`. `now_ms` decides
/// the year of RFC 3164 timestamps.
pub fn build_event(msg: &[u8], incomplete: bool, keep: KeepFields, now_ms: i64) -> Event {
    let Some((pri, after)) = parse_pri(msg) else {
        return Event::new(msg.to_vec())
            .with_header(FACILITY_HEADER, "0")
            .with_header(SEVERITY_HEADER, "0")
            .with_header(STATUS_HEADER, "Invalid");
    };
    let mut e = Event::new(Vec::new())
        .with_header(FACILITY_HEADER, (pri / 8).to_string())
        .with_header(SEVERITY_HEADER, (pri % 8).to_string());
    let header = parse_5424(after).or_else(|| parse_3164(after, now_ms));
    match header {
        Some(h) => {
            if let Some(ms) = h.timestamp_ms {
                e = e.with_header(TIMESTAMP_HEADER, ms.to_string());
            }
            if h.host != b"-" {
                e = e.with_header(HOST_HEADER, String::from_utf8_lossy(h.host));
            }
            e.body = if keep == KeepFields::ALL {
                msg.to_vec()
            } else {
                let mut b = Vec::with_capacity(msg.len());
                if keep.priority {
                    b.extend_from_slice(&msg[..msg.len() - after.len()]);
                }
                if keep.version {
                    if let Some(v) = h.version {
                        b.extend_from_slice(v);
                        b.push(b' ');
                    }
                }
                if keep.timestamp {
                    b.extend_from_slice(h.timestamp_raw);
                    b.push(b' ');
                }
                if keep.hostname {
                    b.extend_from_slice(h.host);
                    b.push(b' ');
                }
                b.extend_from_slice(h.rest);
                b
            };
        }
        None => e.body = msg.to_vec(),
    }
    if incomplete {
        e = e.with_header(STATUS_HEADER, "Incomplete");
    }
    e
}

/// `<PRI>`: 1–3 digits, at most 191. Returns PRI and what follows.
fn parse_pri(msg: &[u8]) -> Option<(u32, &[u8])> {
    let rest = msg.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pri = digits
        .iter()
        .fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
    (pri <= 191).then_some((pri, &rest[close + 1..]))
}

/// Splits at the first space: (token, rest after the space).
fn token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = s.iter().position(|&b| b == b' ')?;
    Some((&s[..sp], &s[sp + 1..]))
}

/// Flume's hostname pattern: a word character, then word characters, `.`, `@`, `-`.
fn valid_host(h: &[u8]) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    h.first().is_some_and(word) && h.iter().all(|b| word(b) || b".@-".contains(b))
}

fn parse_5424(s: &[u8]) -> Option<Header<'_>> {
    let (version, rest) = token(s)?;
    if version.is_empty()
        || version.len() > 3
        || version[0] == b'0'
        || !version.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let (ts, rest) = token(rest)?;
    let timestamp_ms = if ts == b"-" {
        None
    } else {
        Some(parse_rfc3339(ts)?)
    };
    let (host, rest) = token(rest)?;
    if host != b"-" && !valid_host(host) {
        return None;
    }
    Some(Header {
        version: Some(version),
        timestamp_raw: ts,
        timestamp_ms,
        host,
        rest,
    })
}

fn parse_3164(s: &[u8], now_ms: i64) -> Option<Header<'_>> {
    // "Mmm dd hh:mm:ss", "Mmm  d hh:mm:ss" or "Mmm d hh:mm:ss" (Flume: `\s{1,2}\d{1,2}`).
    let month = MONTHS
        .iter()
        .position(|m| s.get(..3) == Some(m.as_bytes()))? as u32
        + 1;
    let mut i = 3;
    let spaces = s[i..].iter().take(3).take_while(|&&b| b == b' ').count();
    if !(1..=2).contains(&spaces) {
        return None;
    }
    i += spaces;
    let day_len = s[i..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=2).contains(&day_len) {
        return None;
    }
    let day = digits(&s[i..i + day_len])?;
    i += day_len;
    let time = s.get(i..i + 9)?;
    if time[0] != b' ' || time[3] != b':' || time[6] != b':' {
        return None;
    }
    let (h, mi, sec) = (
        digits(&time[1..3])?,
        digits(&time[4..6])?,
        digits(&time[7..9])?,
    );
    let ts = &s[..i + 9];
    let rest = s[i + 9..].strip_prefix(b" ")?;
    let (host, rest) = token(rest)?;
    if !valid_host(host) {
        return None;
    }
    let year = civil_from_days(now_ms.div_euclid(DAY_MS)).0;
    let mut ms = to_epoch_ms(year, month, day, h, mi, sec, 0)?;
    if ms > now_ms + 31 * DAY_MS {
        ms = to_epoch_ms(year - 1, month, day, h, mi, sec, 0)?;
    }
    Some(Header {
        version: None,
        timestamp_raw: ts,
        timestamp_ms: Some(ms),
        host,
        rest,
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |a, &d| a * 10 + u32::from(d - b'0')))
}

/// `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)` to milliseconds (fraction truncated to ms).
pub fn parse_rfc3339(s: &[u8]) -> Option<i64> {
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b'T'
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let year = digits(&s[0..4])? as i64;
    let (mo, d) = (digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, sec) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let mut f = frac[..n.min(3)].to_vec();
        f.resize(3, b'0');
        millis = digits(&f)?;
        rest = &frac[n..];
    }
    let offset_min: i64 = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let m = i64::from(oh * 60 + om);
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    Some(to_epoch_ms(year, mo, d, h, mi, sec, millis)? - offset_min * 60_000)
}

/// A UTC civil time to milliseconds since the epoch; `None` when a field is out of range.
fn to_epoch_ms(year: i64, month: u32, day: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in[month as usize - 1]
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * DAY_MS + i64::from(h * 3_600_000 + mi * 60_000 + s * 1000 + ms))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// One message cut from a TCP stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message (at most `eventSize` bytes).
    pub bytes: Vec<u8>,
    /// It was longer than `eventSize` and was cut.
    pub truncated: bool,
}

/// What the framer is discarding.
#[derive(Debug, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of an over-long line, up to and including its `\n`.
    Line,
    /// The rest of an over-long octet-counted frame.
    Bytes(u64),
}

/// Cuts a TCP byte stream into syslog messages (RFC 6587 octet counting or newline framing).
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    event_size: usize,
    skip: Skip,
}

impl Framer {
    /// A framer cutting messages at `event_size` bytes.
    pub fn new(event_size: usize) -> Self {
        assert!(event_size > 0);
        Self {
            buf: Vec::new(),
            event_size,
            skip: Skip::Nothing,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that are not yet a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// A message is partly received: bytes are held that are not yet a frame, or the rest of an
    /// over-long message is still being discarded.
    pub fn mid_message(&self) -> bool {
        !self.buf.is_empty() || self.skip != Skip::Nothing
    }

    /// Frees the buffer if it holds nothing (an idle connection keeps no buffer from its last
    /// burst).
    pub fn release_if_empty(&mut self) {
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        match self.skip {
            Skip::Nothing => {}
            Skip::Line => match self.buf.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.buf.drain(..=p);
                    self.skip = Skip::Nothing;
                }
                None => {
                    self.buf.clear();
                    return None;
                }
            },
            Skip::Bytes(n) => {
                let k = (n.min(self.buf.len() as u64)) as usize;
                self.buf.drain(..k);
                if n > k as u64 {
                    self.skip = Skip::Bytes(n - k as u64);
                    return None;
                }
                self.skip = Skip::Nothing;
            }
        }
        // Empty lines between frames.
        let blank = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        self.buf.drain(..blank);
        let first = *self.buf.first()?;
        if first.is_ascii_digit() {
            match self.octet_counted() {
                Counted::Frame(f) => return Some(f),
                Counted::NeedMore => return None,
                Counted::Plain => {}
            }
        }
        self.line()
    }

    /// At end of stream: what is left, as a last message.
    pub fn finish(&mut self) -> Option<Frame> {
        if let Some(f) = self.next_frame() {
            return Some(f);
        }
        if self.skip != Skip::Nothing || self.buf.is_empty() {
            return None;
        }
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Some(Frame {
            bytes,
            truncated: false,
        })
    }

    fn octet_counted(&mut self) -> Counted {
        let n_digits = self.buf.iter().take_while(|b| b.is_ascii_digit()).count();
        if n_digits > MAX_OCTET_COUNT_DIGITS {
            return Counted::Plain;
        }
        let Some(&after) = self.buf.get(n_digits) else {
            return Counted::NeedMore;
        };
        if after != b' ' {
            return Counted::Plain;
        }
        let Some(len) = digits(&self.buf[..n_digits]).map(u64::from) else {
            return Counted::Plain;
        };
        let start = n_digits + 1;
        let keep = (len as usize).min(self.event_size);
        if self.buf.len() < start + keep {
            return Counted::NeedMore;
        }
        let bytes = self.buf[start..start + keep].to_vec();
        self.buf.drain(..start + keep);
        let truncated = len > keep as u64;
        if truncated {
            self.skip = Skip::Bytes(len - keep as u64);
        }
        Counted::Frame(Frame { bytes, truncated })
    }

    fn line(&mut self) -> Option<Frame> {
        let limit = self.buf.len().min(self.event_size + 2);
        match self.buf[..limit].iter().position(|&b| b == b'\n') {
            Some(p) => {
                let mut bytes: Vec<u8> = self.buf.drain(..=p).take(p).collect();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
                if bytes.len() > self.event_size {
                    bytes.truncate(self.event_size);
                    return Some(Frame {
                        bytes,
                        truncated: true,
                    });
                }
                Some(Frame {
                    bytes,
                    truncated: false,
                })
            }
            None if self.buf.len() > self.event_size + 1 => {
                let bytes = self.buf[..self.event_size].to_vec();
                self.buf.drain(..self.event_size);
                self.skip = Skip::Line;
                Some(Frame {
                    bytes,
                    truncated: true,
                })
            }
            None => None,
        }
    }
}

/// What an octet-counted frame attempt found.
enum Counted {
    /// A whole frame.
    Frame(Frame),
    /// The count or the frame is not complete yet.
    NeedMore,
    /// Not an octet count: a newline-terminated frame.
    Plain,
}

#[cfg(test)]
mod tests;
