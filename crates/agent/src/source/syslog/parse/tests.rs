//! Tests of the syslog message parser.

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
