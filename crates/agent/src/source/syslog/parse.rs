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
mod tests {
    use super::*;

    /// 2026-11-22T04:00:00Z.
    const NOW_MS: i64 = 1_795_320_000_000;

    fn ev(msg: &str, keep: KeepFields) -> (Vec<(String, String)>, String) {
        let e = build_event(msg.as_bytes(), false, keep, NOW_MS);
        (e.headers, String::from_utf8(e.body).expect("utf8"))
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(NOW_MS / DAY_MS), (2026, 11, 22));
        assert_eq!(to_epoch_ms(2000, 2, 29, 0, 0, 0, 0), Some(951_782_400_000));
        assert_eq!(to_epoch_ms(2001, 2, 29, 0, 0, 0, 0), None);
        assert_eq!(to_epoch_ms(2001, 13, 1, 0, 0, 0, 0), None);
        assert_eq!(to_epoch_ms(2001, 1, 1, 24, 0, 0, 0), None);
    }

    #[test]
    fn rfc3339_timestamps() {
        assert_eq!(
            parse_rfc3339(b"2003-10-11T22:14:15.003Z"),
            Some(1_065_910_455_003)
        );
        assert_eq!(
            parse_rfc3339(b"2003-10-11T22:14:15Z"),
            Some(1_065_910_455_000)
        );
        assert_eq!(
            parse_rfc3339(b"2003-10-11T22:14:15.123456Z"),
            Some(1_065_910_455_123)
        );
        // 15:14:15.000003-07:00 is 22:14:15 UTC.
        assert_eq!(
            parse_rfc3339(b"2003-08-24T05:14:15.000003-07:00"),
            Some(1_061_727_255_000)
        );
        assert_eq!(
            parse_rfc3339(b"2003-08-24T05:14:15+01:30"),
            Some(1_061_696_655_000)
        );
        for bad in [
            &b"2003-08-24T05:14:15"[..],
            b"2003-08-24 05:14:15Z",
            b"2003-08-24T05:14:15.Z",
            b"2003-08-24T05:14:15+1:00",
            b"2003-13-24T05:14:15Z",
            b"2003-08-24T05:14:15+24:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn rfc5424_headers_and_body() {
        let msg =
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed";
        let (hs, body) = ev(msg, KeepFields::default());
        assert_eq!(
            hs,
            h(&[
                ("Facility", "4"),
                ("Severity", "2"),
                ("timestamp", "1065910455003"),
                ("host", "mymachine.example.com")
            ])
        );
        assert_eq!(body, "su - ID47 - BOM'su root' failed");
        // Nil timestamp and hostname: no headers.
        let (hs, body) = ev("<165>1 - - app 1 - - hi", KeepFields::default());
        assert_eq!(hs, h(&[("Facility", "20"), ("Severity", "5")]));
        assert_eq!(body, "app 1 - - hi");
    }

    #[test]
    fn rfc3164_headers_year_and_padding() {
        let (hs, body) = ev(
            "<13>Nov  2 10:00:00 web-1 sshd[1]: hello",
            KeepFields::default(),
        );
        let nov2 = to_epoch_ms(2026, 11, 2, 10, 0, 0, 0)
            .expect("date")
            .to_string();
        assert_eq!(
            hs,
            h(&[
                ("Facility", "1"),
                ("Severity", "5"),
                ("timestamp", &nov2),
                ("host", "web-1")
            ])
        );
        assert_eq!(body, "sshd[1]: hello");
        // December is more than a month ahead of November 22: last year.
        let (hs, _) = ev("<13>Dec 31 23:59:59 h m", KeepFields::default());
        let dec = to_epoch_ms(2025, 12, 31, 23, 59, 59, 0)
            .expect("date")
            .to_string();
        assert_eq!(hs[2], ("timestamp".to_owned(), dec));
        // A two-digit day, and a one-digit day after one space (Flume accepts both).
        let (hs, _) = ev("<13>Nov 21 01:02:03 h m", KeepFields::default());
        assert_eq!(hs.len(), 4);
        let (hs, body) = ev("<13>Nov 2 10:00:00 h m", KeepFields::ALL);
        assert_eq!(hs[2], ("timestamp".to_owned(), nov2.clone()));
        assert_eq!(body, "<13>Nov 2 10:00:00 h m");
        let k = KeepFields::parse("timestamp").expect("keep");
        assert_eq!(ev("<13>Nov  2 10:00:00 h m", k).1, "Nov  2 10:00:00 m");
    }

    #[test]
    fn keep_fields_in_flumes_order() {
        let msg5424 = "<34>1 2003-10-11T22:14:15.003Z host1 app - - - text";
        let msg3164 = "<13>Nov 21 01:02:03 host2 text";
        let all = |m: &str| ev(m, KeepFields::ALL).1;
        assert_eq!(all(msg5424), msg5424);
        assert_eq!(all(msg3164), msg3164);
        let k = KeepFields::parse("timestamp hostname").expect("keep");
        assert_eq!(
            ev(msg5424, k).1,
            "2003-10-11T22:14:15.003Z host1 app - - - text"
        );
        assert_eq!(ev(msg3164, k).1, "Nov 21 01:02:03 host2 text");
        let k = KeepFields::parse("priority version").expect("keep");
        assert_eq!(ev(msg5424, k).1, "<34>1 app - - - text");
        assert_eq!(ev(msg3164, k).1, "<13>text");
        let k = KeepFields::parse("hostname").expect("keep");
        assert_eq!(ev(msg5424, k).1, "host1 app - - - text");
    }

    #[test]
    fn keep_fields_values() {
        assert_eq!(KeepFields::parse("none"), Ok(KeepFields::default()));
        assert_eq!(KeepFields::parse("false"), Ok(KeepFields::default()));
        assert_eq!(KeepFields::parse("true"), Ok(KeepFields::ALL));
        assert_eq!(KeepFields::parse("All"), Ok(KeepFields::ALL));
        assert_eq!(
            KeepFields::parse("priority  Timestamp"),
            Ok(KeepFields {
                priority: true,
                timestamp: true,
                ..KeepFields::default()
            })
        );
        assert_eq!(KeepFields::parse("timestamp host"), Err("host".to_owned()));
    }

    #[test]
    fn invalid_priority_is_kept_whole_and_marked() {
        for msg in [
            "no priority",
            "<>x",
            "<1234>x",
            "<192>x",
            "<1a>x",
            "<13",
            "",
        ] {
            let (hs, body) = ev(msg, KeepFields::default());
            assert_eq!(
                hs,
                h(&[
                    ("Facility", "0"),
                    ("Severity", "0"),
                    ("flume.syslog.status", "Invalid")
                ]),
                "{msg}"
            );
            assert_eq!(body, msg);
        }
        assert_eq!(ev("<191>x", KeepFields::default()).0[0].1, "23");
        assert_eq!(ev("<0>x", KeepFields::default()).0[1].1, "0");
    }

    #[test]
    fn unmatched_header_keeps_priority_and_whole_body() {
        for msg in [
            "<13>just text",
            "<13>1 2003-10-11 host app",
            "<13>1 2003-10-11T22:14:15Z bad/host app",
            "<13>Foo 21 01:02:03 host text",
            "<13>Nov 21 01:02:03 :bad text",
            "<13>Nov 21 01:02:03 hostonly",
            "<13>Nov 31 01:02:03 h text",
            "<13>Nov   2 01:02:03 h text",
            "<13>Nov 123 01:02:03 h text",
            "<13>Nov 21 1:02:03 h text",
            "<13>Nov 21 01:02:03",
            "<13>01 2003-10-11T22:14:15Z h text",
        ] {
            let (hs, body) = ev(msg, KeepFields::default());
            assert_eq!(hs, h(&[("Facility", "1"), ("Severity", "5")]), "{msg}");
            assert_eq!(body, msg);
        }
    }

    #[test]
    fn incomplete_messages_are_parsed_and_marked() {
        let e = build_event(
            b"<13>Nov 21 01:02:03 h tex",
            true,
            KeepFields::default(),
            NOW_MS,
        );
        assert_eq!(e.header("host"), Some("h"));
        assert_eq!(e.header(STATUS_HEADER), Some("Incomplete"));
        assert_eq!(e.body, b"tex");
    }

    fn frames(f: &mut Framer) -> Vec<(String, bool)> {
        std::iter::from_fn(|| f.next_frame())
            .map(|f| (String::from_utf8(f.bytes).expect("utf8"), f.truncated))
            .collect()
    }

    fn s(v: &[(&str, bool)]) -> Vec<(String, bool)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), *b)).collect()
    }

    #[test]
    fn newline_framing_strips_cr_and_skips_blank_lines() {
        let mut f = Framer::new(100);
        f.push(b"<1>a\r\n\n\r\n<2>b\n<3>c");
        assert_eq!(frames(&mut f), s(&[("<1>a", false), ("<2>b", false)]));
        assert_eq!(f.pending(), 4);
        f.push(b"d\n");
        assert_eq!(frames(&mut f), s(&[("<3>cd", false)]));
        f.push(b"<4>tail\r");
        assert_eq!(frames(&mut f), s(&[]));
        assert_eq!(
            f.finish(),
            Some(Frame {
                bytes: b"<4>tail".to_vec(),
                truncated: false
            })
        );
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn octet_counting_across_reads_and_mixed_with_lines() {
        let mut f = Framer::new(100);
        f.push(b"11 <1>a\nb c de");
        // 11 bytes: "<1>a\nb c de" — a newline inside a counted frame is data.
        assert_eq!(frames(&mut f), s(&[("<1>a\nb c de", false)]));
        f.push(b"5 <2>");
        assert_eq!(frames(&mut f), s(&[]));
        f.push(b"xy<3>line\n12");
        assert_eq!(frames(&mut f), s(&[("<2>xy", false), ("<3>line", false)]));
        f.push(b"x not counted\n");
        assert_eq!(frames(&mut f), s(&[("12x not counted", false)]));
        // Too many digits: a line.
        f.push(b"12345678901 x\n");
        assert_eq!(frames(&mut f), s(&[("12345678901 x", false)]));
    }

    #[test]
    fn over_long_frames_are_cut_and_the_rest_skipped() {
        let mut f = Framer::new(4);
        f.push(b"<1>abcdef\n<2>x\n");
        assert_eq!(frames(&mut f), s(&[("<1>a", true), ("<2>x", false)]));
        // Exactly event_size fits, with or without \r.
        f.push(b"<1>a\n<1>b\r\n");
        assert_eq!(frames(&mut f), s(&[("<1>a", false), ("<1>b", false)]));
        // The rest of a long line arriving later is skipped.
        f.push(b"<1>abcdefgh");
        assert_eq!(frames(&mut f), s(&[("<1>a", true)]));
        f.push(b"ijk");
        assert_eq!(frames(&mut f), s(&[]));
        f.push(b"lm\n<2>y\n");
        assert_eq!(frames(&mut f), s(&[("<2>y", false)]));
        // A counted frame over the limit: cut, its rest skipped across reads.
        f.push(b"10 <3>abc");
        assert_eq!(frames(&mut f), s(&[("<3>a", true)]));
        f.push(b"defg<4>z\n");
        assert_eq!(frames(&mut f), s(&[("<4>z", false)]));
        // A line one byte longer, with \r\n.
        f.push(b"<1>ab\r\n");
        assert_eq!(frames(&mut f), s(&[("<1>a", true)]));
        assert_eq!(f.pending(), 0);
    }
}
