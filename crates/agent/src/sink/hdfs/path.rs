//! `hdfs.path`, `hdfs.filePrefix` and `hdfs.fileSuffix` escapes (Flume's `BucketPath`) and the
//! time they are expanded at (`hdfs.round*`, `hdfs.timeZone`, `hdfs.useLocalTimeStamp`).
//!
//! The escapes are Flume's, found the way Flume's pattern finds them
//! (`%(\w|%)|%\{([\w.-]+)\}|%\[(\w+)\]`, ASCII `\w`): `%{header}` (empty when absent), the
//! time escapes `%a %A %b %B %c %d %e %D %H %I %j %k %l %m %n %M %p %s %S %y %Y %z` formatted
//! as Java's `SimpleDateFormat` does in an English locale, `%t` (the timestamp as given, not
//! rounded), `%%`, other `%x` letters (empty, as in Flume), and `%[localhost]`, `%[IP]`,
//! `%[FQDN]` (resolved once, when the template is parsed). A `%` that starts none of these is
//! kept as written.
//!
//! Time escapes use the event's `timestamp` header (epoch milliseconds, as Java's
//! `Long.valueOf` reads it) or, with `hdfs.useLocalTimeStamp`, the sink's clock; a missing or
//! unparseable header is an [`ExpandError`] naming the header and the key (Flume throws). Two
//! deliberate differences from Flume: `%%` and unknown letters need no timestamp (Flume asks
//! for one even there), and an unknown `%[name]` or `hdfs.timeZone` is a configuration error
//! (Flume fails at the first event, or silently uses GMT for an unknown zone).

use crate::config::context::Ctx;
use file_channel::Event;
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ZonedDateTime};

/// The header time escapes read.
pub const TIMESTAMP_HEADER: &str = "timestamp";

/// The unit `hdfs.roundUnit` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundUnit {
    /// `second`.
    Second,
    /// `minute`.
    Minute,
    /// `hour`.
    Hour,
}

/// `hdfs.round = true`: the time is rounded down to a multiple of `value` `unit`s within the
/// next larger field, in the configured zone (Flume's `TimestampRoundDownUtil`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rounding {
    /// `hdfs.roundUnit` (second).
    pub unit: RoundUnit,
    /// `hdfs.roundValue` (1): 1..=60 for seconds and minutes, 1..=24 for hours.
    pub value: u8,
}

/// How an event's time is found and rounded for escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeSettings {
    /// `hdfs.useLocalTimeStamp` (false): the sink's clock instead of the `timestamp` header.
    pub use_local_timestamp: bool,
    /// `hdfs.round` with `hdfs.roundUnit` and `hdfs.roundValue`; None when not rounding.
    pub rounding: Option<Rounding>,
    /// `hdfs.timeZone` (the machine's zone): the zone time escapes are written in.
    pub time_zone: TimeZone,
}

impl Default for TimeSettings {
    fn default() -> Self {
        Self {
            use_local_timestamp: false,
            rounding: None,
            time_zone: TimeZone::system(),
        }
    }
}

impl TimeSettings {
    /// Reads `hdfs.round`, `hdfs.roundValue`, `hdfs.roundUnit`, `hdfs.timeZone`,
    /// `hdfs.useLocalTimeStamp`; problems go to `ctx`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let use_local_timestamp = ctx.bool("hdfs.useLocalTimeStamp", false);
        let time_zone = match ctx.string("hdfs.timeZone") {
            None => TimeZone::system(),
            Some(id) => java_time_zone(id.trim()).unwrap_or_else(|| {
                ctx.error(
                    "hdfs.timeZone",
                    format!(
                        "unknown time zone `{id}`: use an IANA zone id (Europe/Berlin, \
                         America/New_York), UTC, GMT or GMT+hh:mm"
                    ),
                );
                TimeZone::UTC
            }),
        };
        let round = ctx.bool("hdfs.round", false);
        // Read (and mark used) even when rounding is off, as Flume's users often leave them.
        let unit_text = ctx.string_or("hdfs.roundUnit", "second");
        let unit = match unit_text.trim().to_ascii_lowercase().as_str() {
            "second" => Some(RoundUnit::Second),
            "minute" => Some(RoundUnit::Minute),
            "hour" => Some(RoundUnit::Hour),
            _ => {
                ctx.error(
                    "hdfs.roundUnit",
                    format!("`{unit_text}` is not a rounding unit: use second, minute or hour"),
                );
                None
            }
        };
        let max = if unit == Some(RoundUnit::Hour) {
            24
        } else {
            60
        };
        let value = ctx.u64_in("hdfs.roundValue", 1, 1..=max) as u8;
        let rounding = match (round, unit) {
            (true, Some(unit)) => Some(Rounding { unit, value }),
            _ => None,
        };
        Self {
            use_local_timestamp,
            rounding,
            time_zone,
        }
    }

    /// The time an event's escapes are written at, in epoch milliseconds, before rounding:
    /// `now_ms` with `useLocalTimeStamp`, else the `timestamp` header.
    fn event_time_ms(&self, event: &Event, now_ms: i64) -> Result<i64, TimeProblem> {
        if self.use_local_timestamp {
            return Ok(now_ms);
        }
        let text = event.header(TIMESTAMP_HEADER).ok_or(TimeProblem::Missing)?;
        parse_java_long(text).ok_or_else(|| TimeProblem::Unparseable(text.to_owned()))
    }

    /// `ms` rounded down as Flume's `TimestampRoundDownUtil` does, in the configured zone.
    fn round_ms(&self, ms: i64) -> Result<i64, String> {
        let Some(rounding) = self.rounding else {
            return Ok(ms);
        };
        if ms <= 0 {
            return Err(format!(
                "cannot round timestamp {ms}: hdfs.round needs a positive timestamp"
            ));
        }
        let zoned = self.zoned(ms)?;
        let step = i8::try_from(rounding.value).unwrap_or(1);
        let with = zoned.with().subsec_nanosecond(0);
        let with = match rounding.unit {
            RoundUnit::Second => with.second(zoned.second() - zoned.second() % step),
            RoundUnit::Minute => with
                .second(0)
                .minute(zoned.minute() - zoned.minute() % step),
            RoundUnit::Hour => with
                .second(0)
                .minute(0)
                .hour(zoned.hour() - zoned.hour() % step),
        };
        with.build()
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| format!("cannot round timestamp {ms}: {e}"))
    }

    fn zoned(&self, ms: i64) -> Result<ZonedDateTime, String> {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned_datetime(self.time_zone.clone()))
            .map_err(|e| format!("timestamp {ms} is out of range: {e}"))
    }
}

/// Why an event has no usable time.
enum TimeProblem {
    Missing,
    Unparseable(String),
}

/// A zone as Java's `TimeZone.getTimeZone` names it: an IANA id, `UTC`, `GMT`, or a custom
/// `GMT±h`, `GMT±hh`, `GMT±hhmm`, `GMT±h:mm`, `GMT±hh:mm`.
pub fn java_time_zone(id: &str) -> Option<TimeZone> {
    if let Some(rest) = id.strip_prefix("GMT").filter(|r| !r.is_empty()) {
        let (sign, digits) = match rest.as_bytes()[0] {
            b'+' => (1, &rest[1..]),
            b'-' => (-1, &rest[1..]),
            _ => return None,
        };
        let (hours, minutes) = match digits.split_once(':') {
            Some((h, m)) if (1..=2).contains(&h.len()) && m.len() == 2 => (h, m),
            Some(_) => return None,
            None if (1..=2).contains(&digits.len()) => (digits, "0"),
            None if digits.len() == 4 => digits.split_at(2),
            None => return None,
        };
        if !hours
            .bytes()
            .chain(minutes.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (h, m): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
        if h > 23 || m > 59 {
            return None;
        }
        return Offset::from_seconds(sign * (h * 3600 + m * 60))
            .ok()
            .map(TimeZone::fixed);
    }
    TimeZone::get(id).ok()
}

/// Java's `Long.valueOf`: an optional sign and ASCII digits, nothing else.
fn parse_java_long(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Why a template could not be expanded for an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Text kept as written (also `%%` and `%[...]`, resolved at parse time).
    Literal(String),
    /// `%{name}`: the header's value, or empty.
    Header(String),
    /// `%x` for a letter that reads the event's time (including `t`, `s`).
    Time(char),
}

/// The letters whose escapes read the event's time.
const TIME_LETTERS: &str = "aAbBcdeDHIjklmnMpsStyYz";

/// A parsed template with escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    /// The key it came from, for errors (empty for literals).
    key: String,
    pieces: Vec<Piece>,
}

impl PathTemplate {
    /// Parses the template in key `key` of `ctx` (None and an error in `ctx` when invalid or
    /// missing).
    pub fn parse(ctx: &Ctx<'_>, key: &str) -> Option<Self> {
        let text = ctx.string(key)?;
        match parse_pieces(&text, &HostFacts::lookup) {
            Ok(pieces) => Some(Self {
                text,
                key: ctx.full_key(key),
                pieces,
            }),
            Err(message) => {
                ctx.error(key, message);
                None
            }
        }
    }

    /// A template from text (tests, defaults such as `FlumeData`); an unknown `%[name]` is
    /// kept as written.
    pub fn literal(text: &str) -> Self {
        let pieces = parse_pieces(text, &HostFacts::lookup)
            .unwrap_or_else(|_| vec![Piece::Literal(text.to_owned())]);
        Self {
            text: text.to_owned(),
            key: String::new(),
            pieces,
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when expanding reads the event's time (a time escape), so events without a
    /// `timestamp` header fail unless `hdfs.useLocalTimeStamp` is set.
    pub fn needs_timestamp(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Time(_)))
    }

    /// True when the template has no escapes that vary per event (it expands to the same text
    /// for every event).
    pub fn is_constant(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Literal(_)))
    }

    /// Expands the template for `event` (`now_ms`: the sink's clock, used with
    /// `useLocalTimeStamp`).
    pub fn expand(
        &self,
        event: &Event,
        time: &TimeSettings,
        now_ms: i64,
    ) -> Result<String, ExpandError> {
        let mut out = String::with_capacity(self.text.len() + 16);
        // The event's time, found and formatted once per expansion.
        let mut moment: Option<(i64, i64, ZonedDateTime)> = None;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Header(name) => out.push_str(event.header(name).unwrap_or("")),
                Piece::Time(letter) => {
                    if moment.is_none() {
                        moment = Some(self.moment(event, time, now_ms)?);
                    }
                    let Some((raw_ms, rounded_ms, zoned)) = &moment else {
                        continue;
                    };
                    write_time_escape(&mut out, *letter, *raw_ms, *rounded_ms, zoned);
                }
            }
        }
        Ok(out)
    }

    /// The event's raw time, rounded time, and the rounded time in the zone.
    fn moment(
        &self,
        event: &Event,
        time: &TimeSettings,
        now_ms: i64,
    ) -> Result<(i64, i64, ZonedDateTime), ExpandError> {
        let key = if self.key.is_empty() {
            format!("`{}`", self.text)
        } else {
            self.key.clone()
        };
        let raw = time.event_time_ms(event, now_ms).map_err(|p| match p {
            TimeProblem::Missing => ExpandError(format!(
                "{key}: the event has no `{TIMESTAMP_HEADER}` header, which the time escapes \
                 need (add a timestamp interceptor or set hdfs.useLocalTimeStamp = true)"
            )),
            TimeProblem::Unparseable(v) => ExpandError(format!(
                "{key}: the event's `{TIMESTAMP_HEADER}` header `{v}` is not a number of \
                 milliseconds, which the time escapes need"
            )),
        })?;
        let rounded = time
            .round_ms(raw)
            .map_err(|e| ExpandError(format!("{key}: {e}")))?;
        let zoned = time
            .zoned(rounded)
            .map_err(|e| ExpandError(format!("{key}: {e}")))?;
        Ok((raw, rounded, zoned))
    }
}

/// The host facts `%[...]` escapes name.
struct HostFacts;

impl HostFacts {
    /// `name` (case-insensitive `localhost`, `IP`, `FQDN`) looked up on this machine, as Java's
    /// `InetAddress.getLocalHost()` gives them; None for another name.
    fn lookup(name: &str) -> Option<String> {
        let host = crate::interceptor::host::host_name();
        match name.to_ascii_lowercase().as_str() {
            "localhost" => Some(host),
            "ip" => Some(crate::interceptor::host::host_ip(&host)),
            "fqdn" => {
                let ip_text = crate::interceptor::host::host_ip(&host);
                let canonical = ip_text
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .and_then(|ip| dns_lookup::lookup_addr(&ip).ok());
                Some(canonical.unwrap_or(ip_text))
            }
            _ => None,
        }
    }
}

/// Splits `text` into pieces; `host` resolves `%[name]` (None: unknown name, an error).
fn parse_pieces(text: &str, host: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Piece>, String> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let Some(after) = rest.strip_prefix('%') else {
            let next = rest.find('%').map_or(text.len(), |n| i + n);
            literal.push_str(&text[i..next]);
            i = next;
            continue;
        };
        let ab = after.as_bytes();
        match ab.first() {
            Some(&b'%') => {
                literal.push('%');
                i += 2;
            }
            Some(&c) if is_word(c) => {
                let letter = char::from(c);
                if TIME_LETTERS.contains(letter) {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Time(letter));
                }
                // Other letters expand to nothing, as in Flume.
                i += 2;
            }
            Some(&b'{') => {
                let name_len = ab[1..]
                    .iter()
                    .take_while(|&&b| is_word(b) || b == b'.' || b == b'-')
                    .count();
                if name_len > 0 && ab.get(1 + name_len) == Some(&b'}') {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Header(after[1..1 + name_len].to_owned()));
                    i += 3 + name_len;
                } else {
                    literal.push('%');
                    i += 1;
                }
            }
            Some(&b'[') => {
                let name_len = ab[1..].iter().take_while(|&&b| is_word(b)).count();
                if name_len > 0 && ab.get(1 + name_len) == Some(&b']') {
                    let name = &after[1..1 + name_len];
                    let value = host(name).ok_or_else(|| {
                        format!(
                            "`%[{name}]` is not a host escape: use %[localhost], %[IP] or %[FQDN]"
                        )
                    })?;
                    literal.push_str(&value);
                    i += 3 + name_len;
                } else {
                    literal.push('%');
                    i += 1;
                }
            }
            _ => {
                literal.push('%');
                i += 1;
            }
        }
    }
    flush(&mut literal, &mut pieces);
    Ok(pieces)
}

fn flush(literal: &mut String, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal)));
    }
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Appends one time escape as Java's `SimpleDateFormat` writes its pattern in English.
fn write_time_escape(
    out: &mut String,
    letter: char,
    raw_ms: i64,
    rounded_ms: i64,
    z: &ZonedDateTime,
) {
    use std::fmt::Write as _;
    let weekday = WEEKDAYS[z.weekday().to_monday_zero_offset() as usize];
    let month = MONTHS[(z.month() - 1) as usize];
    let hour12 = match z.hour() % 12 {
        0 => 12,
        h => h,
    };
    // Java's "yyyy" pads to four digits; "yy" is the last two.
    let year = i32::from(z.year());
    let _ = match letter {
        'a' => write!(out, "{}", &weekday[..3]),
        'A' => write!(out, "{weekday}"),
        'b' => write!(out, "{}", &month[..3]),
        'B' => write!(out, "{month}"),
        'c' => write!(
            out,
            "{} {} {} {:02}:{:02}:{:02} {:04}",
            &weekday[..3],
            &month[..3],
            z.day(),
            z.hour(),
            z.minute(),
            z.second(),
            year
        ),
        'd' => write!(out, "{:02}", z.day()),
        'e' => write!(out, "{}", z.day()),
        'D' => write!(
            out,
            "{:02}/{:02}/{:02}",
            z.month(),
            z.day(),
            year.rem_euclid(100)
        ),
        'H' => write!(out, "{:02}", z.hour()),
        'I' => write!(out, "{hour12:02}"),
        'j' => write!(out, "{:03}", z.day_of_year()),
        'k' => write!(out, "{}", z.hour()),
        'l' => write!(out, "{hour12}"),
        'm' => write!(out, "{:02}", z.month()),
        'n' => write!(out, "{}", z.month()),
        'M' => write!(out, "{:02}", z.minute()),
        'p' => write!(out, "{}", if z.hour() < 12 { "AM" } else { "PM" }),
        's' => write!(out, "{}", rounded_ms / 1000),
        'S' => write!(out, "{:02}", z.second()),
        't' => write!(out, "{raw_ms}"),
        'y' => write!(out, "{:02}", year.rem_euclid(100)),
        'Y' => write!(out, "{year:04}"),
        'z' => {
            let secs = z.offset().seconds();
            let sign = if secs < 0 { '-' } else { '+' };
            let abs = secs.unsigned_abs() / 60;
            write!(out, "{sign}{:02}{:02}", abs / 60, abs % 60)
        }
        _ => Ok(()),
    };
}

#[cfg(test)]
mod tests;
