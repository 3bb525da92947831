//! Escapes at fixed times and zones, rounding, and the errors of a missing time.

use super::*;
use crate::sink::test_support::{ctx, entries};

/// 2023-11-14T22:13:20.123Z, a Tuesday.
const TUESDAY_MS: i64 = 1_700_000_000_123;
/// 2024-01-01T03:04:05Z, a Monday.
const NEW_YEAR_MS: i64 = 1_704_078_245_000;

fn at(ms: i64) -> Event {
    Event::new("x").with_header("timestamp", ms.to_string())
}

fn settings(pairs: &[(&str, &str)]) -> TimeSettings {
    let list = entries(pairs);
    let c = ctx(&list);
    let s = TimeSettings::parse(&c);
    assert!(!c.has_errors(), "{pairs:?}");
    s
}

fn utc() -> TimeSettings {
    settings(&[("hdfs.timeZone", "UTC")])
}

fn expand(template: &str, event: &Event, time: &TimeSettings) -> String {
    PathTemplate::literal(template)
        .expand(event, time, 0)
        .expect("expands")
}

#[test]
fn every_time_escape_in_utc() {
    let all = "%a|%A|%b|%B|%c|%d|%e|%D|%H|%I|%j|%k|%l|%m|%n|%M|%p|%s|%S|%y|%Y|%z|%t";
    assert_eq!(
        expand(all, &at(TUESDAY_MS), &utc()),
        "Tue|Tuesday|Nov|November|Tue Nov 14 22:13:20 2023|14|14|11/14/23|22|10|318|22|10|11|11|\
         13|PM|1700000000|20|23|2023|+0000|1700000000123"
    );
    assert_eq!(
        expand(all, &at(NEW_YEAR_MS), &utc()),
        "Mon|Monday|Jan|January|Mon Jan 1 03:04:05 2024|01|1|01/01/24|03|03|001|3|3|01|1|\
         04|AM|1704078245|05|24|2024|+0000|1704078245000"
    );
    // Half past midnight is 12 on the twelve-hour clock, AM.
    assert_eq!(
        expand("%I %l %p %k", &at(1_704_069_000_000), &utc()),
        "12 12 AM 0"
    );
}

#[test]
fn zones_move_the_fields_and_the_offset() {
    let ny = settings(&[("hdfs.timeZone", "America/New_York")]);
    assert_eq!(
        expand("%Y-%m-%d %H:%M %z %A", &at(TUESDAY_MS), &ny),
        "2023-11-14 17:13 -0500 Tuesday"
    );
    let kolkata = settings(&[("hdfs.timeZone", "Asia/Kolkata")]);
    assert_eq!(
        expand("%Y-%m-%d %H:%M %z %a", &at(TUESDAY_MS), &kolkata),
        "2023-11-15 03:43 +0530 Wed"
    );
    // Java's custom ids.
    for (id, want) in [
        ("GMT+05:30", "+0530"),
        ("GMT-3", "-0300"),
        ("GMT+0100", "+0100"),
        ("GMT", "+0000"),
    ] {
        let s = settings(&[("hdfs.timeZone", id)]);
        assert_eq!(expand("%z", &at(TUESDAY_MS), &s), want, "{id}");
    }
    // Summer time in New York.
    assert_eq!(expand("%z", &at(1_688_000_000_000), &ny), "-0400");
}

#[test]
fn unknown_zone_and_round_settings_are_errors_on_their_keys() {
    for (pairs, key) in [
        (vec![("hdfs.timeZone", "Mars/Olympus")], "hdfs.timeZone"),
        (vec![("hdfs.timeZone", "GMT+25")], "hdfs.timeZone"),
        (vec![("hdfs.roundUnit", "day")], "hdfs.roundUnit"),
        (
            vec![("hdfs.roundUnit", "hour"), ("hdfs.roundValue", "25")],
            "hdfs.roundValue",
        ),
        (vec![("hdfs.roundValue", "0")], "hdfs.roundValue"),
    ] {
        let list = entries(&pairs);
        let c = ctx(&list);
        TimeSettings::parse(&c);
        assert!(c.has_error_for(key), "{pairs:?}");
    }
}

#[test]
fn rounding_down_in_the_zone() {
    let round = |unit: &str, value: &str, zone: &str| {
        settings(&[
            ("hdfs.round", "true"),
            ("hdfs.roundUnit", unit),
            ("hdfs.roundValue", value),
            ("hdfs.timeZone", zone),
        ])
    };
    let e = at(TUESDAY_MS);
    assert_eq!(
        expand("%H:%M:%S %s", &e, &round("minute", "10", "UTC")),
        "22:10:00 1699999800"
    );
    assert_eq!(
        expand("%H:%M:%S %s", &e, &round("second", "15", "UTC")),
        "22:13:15 1699999995"
    );
    assert_eq!(
        expand("%H:%M:%S %s", &e, &round("hour", "5", "UTC")),
        "20:00:00 1699992000"
    );
    // An hour in Kolkata starts at half past in UTC.
    assert_eq!(
        expand("%H:%M %s", &e, &round("hour", "1", "Asia/Kolkata")),
        "03:00 1699997400"
    );
    // %t is the timestamp as given, never rounded (as in Flume).
    assert_eq!(
        expand("%t", &e, &round("hour", "1", "UTC")),
        "1700000000123"
    );
    // hdfs.round = false ignores the unit and value.
    let off = settings(&[("hdfs.roundUnit", "hour"), ("hdfs.roundValue", "6")]);
    assert_eq!(off.rounding, None);
    assert_eq!(
        expand("%H:%M", &e, &{
            let mut o = off;
            o.time_zone = TimeZone::UTC;
            o
        }),
        "22:13"
    );
}

#[test]
fn headers_literals_and_odd_escapes() {
    let e = at(TUESDAY_MS)
        .with_header("host", "web-1")
        .with_header("a.b-c_d", "$x\\y");
    let t = utc();
    assert_eq!(
        expand("/logs/%{host}/%{a.b-c_d}/%{missing}/x", &e, &t),
        "/logs/web-1/$x\\y//x"
    );
    // %% is a percent sign, unknown letters vanish, anything else is kept as written.
    assert_eq!(expand("100%%", &e, &t), "100%");
    assert_eq!(expand("a%qb%1c%_d", &e, &t), "abcd");
    assert_eq!(expand("%{bad key}%{}%[]%-%", &e, &t), "%{bad key}%{}%[]%-%");
    assert_eq!(expand("Fl%éume", &e, &t), "Fl%éume");
    // None of these need a timestamp.
    let no_time = Event::new("x").with_header("host", "h");
    for text in ["%{host}%%%q", "plain", "%[localhost]"] {
        let template = PathTemplate::literal(text);
        assert!(!template.needs_timestamp(), "{text}");
        template.expand(&no_time, &t, 0).expect(text);
    }
    assert!(PathTemplate::literal("x%Y").needs_timestamp());
    assert!(PathTemplate::literal("x%t").needs_timestamp());
    assert!(PathTemplate::literal("%%").is_constant());
    assert!(!PathTemplate::literal("%{h}").is_constant());
}

#[test]
fn host_escapes_resolve_once_and_unknown_names_are_errors() {
    let list = entries(&[
        ("hdfs.path", "file:///d/%[localhost]/%[IP]/%[fqdn]"),
        ("hdfs.filePrefix", "%[hostname]"),
    ]);
    let c = ctx(&list);
    let path = PathTemplate::parse(&c, "hdfs.path").expect("parses");
    assert!(PathTemplate::parse(&c, "hdfs.filePrefix").is_none());
    assert!(c.has_error_for("hdfs.filePrefix"));
    assert!(!c.has_error_for("hdfs.path"));
    let host = crate::interceptor::host::host_name();
    let out = path.expand(&Event::new("x"), &utc(), 0).expect("expands");
    assert!(out.starts_with(&format!("file:///d/{host}/")), "{out}");
    let ip = out.split('/').nth(5).expect("ip part");
    assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{out}");
    assert!(path.is_constant());
}

#[test]
fn a_missing_or_bad_timestamp_names_the_header_and_key() {
    let list = entries(&[("hdfs.path", "file:///d/%Y")]);
    let c = ctx(&list);
    let path = PathTemplate::parse(&c, "hdfs.path").expect("parses");
    let t = utc();
    let err = path.expand(&Event::new("x"), &t, 0).expect_err("no header");
    assert!(err.0.contains("a1.sinks.k1.hdfs.path"), "{err}");
    assert!(err.0.contains("`timestamp` header"), "{err}");
    for bad in ["abc", "", "12 ", "1.5", "99999999999999999999"] {
        let e = Event::new("x").with_header("timestamp", bad);
        let err = path.expand(&e, &t, 0).expect_err(bad);
        assert!(err.0.contains("a1.sinks.k1.hdfs.path"), "{err}");
        assert!(err.0.contains(&format!("`{bad}`")), "{err}");
    }
    // Java's Long.valueOf takes a sign.
    let e = Event::new("x").with_header("timestamp", "+1700000000123");
    assert_eq!(path.expand(&e, &t, 0).expect("signed"), "file:///d/2023");
    // Rounding needs a positive time, as in Flume.
    let round = settings(&[("hdfs.round", "true"), ("hdfs.timeZone", "UTC")]);
    let e = Event::new("x").with_header("timestamp", "-5");
    assert!(path.expand(&e, &round, 0).is_err());
}

#[test]
fn local_timestamp_uses_the_sinks_clock() {
    let t = settings(&[("hdfs.useLocalTimeStamp", "true"), ("hdfs.timeZone", "UTC")]);
    let template = PathTemplate::literal("%Y-%m-%d/%t");
    // The header is ignored.
    let e = at(NEW_YEAR_MS);
    assert_eq!(
        template.expand(&e, &t, TUESDAY_MS).expect("expands"),
        "2023-11-14/1700000000123"
    );
    assert_eq!(
        template
            .expand(&Event::new("x"), &t, TUESDAY_MS)
            .expect("expands"),
        "2023-11-14/1700000000123"
    );
}
