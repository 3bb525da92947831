//! The golden bytes of `ThriftSourceProtocol` calls and replies in both protocols, written
//! out from the compact and binary protocol specifications, and hostile frames.

use super::*;
use crate::frame;
use crate::Protocol;

fn event() -> ThriftFlumeEvent {
    ThriftFlumeEvent::new("hi").with_header("k", "v")
}

/// `appendBatch([{headers: {k: v}, body: "hi"}])`, sequence id 1, compact protocol,
/// written out from the compact protocol spec.
const COMPACT_CALL: &[u8] = &[
    0x00, 0x00, 0x00, 0x1E, // frame length 30
    0x82, // compact protocol id
    0x21, // version 1, message type CALL (1) << 5
    0x01, // sequence id 1 (varint)
    0x0B, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a', b't', b'c', b'h', // name
    0x19, // field 1 (delta 1), type LIST (9)
    0x1C, // list of 1 element, element type STRUCT (12)
    0x1B, // field 1 (delta 1), type MAP (11)
    0x01, // map size 1 (varint)
    0x88, // key type BINARY (8), value type BINARY (8)
    0x01, b'k', // key "k"
    0x01, b'v', // value "v"
    0x18, // field 2 (delta 1), type BINARY (8)
    0x02, b'h', b'i', // body "hi"
    0x00, // stop: end of ThriftFlumeEvent
    0x00, // stop: end of appendBatch_args
];

/// The same call in the (strict) binary protocol, from the binary protocol spec.
const BINARY_CALL: &[u8] = &[
    0x00, 0x00, 0x00, 0x3D, // frame length 61
    0x80, 0x01, 0x00, 0x01, // version 1, message type CALL
    0x00, 0x00, 0x00, 0x0B, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a', b't', b'c',
    b'h', // name
    0x00, 0x00, 0x00, 0x01, // sequence id 1
    0x0F, 0x00, 0x01, // field type LIST (15), id 1
    0x0C, 0x00, 0x00, 0x00, 0x01, // element type STRUCT (12), size 1
    0x0D, 0x00, 0x01, // field type MAP (13), id 1
    0x0B, 0x0B, 0x00, 0x00, 0x00, 0x01, // STRING to STRING, size 1
    0x00, 0x00, 0x00, 0x01, b'k', // key "k"
    0x00, 0x00, 0x00, 0x01, b'v', // value "v"
    0x0B, 0x00, 0x02, // field type STRING (11), id 2
    0x00, 0x00, 0x00, 0x02, b'h', b'i', // body "hi"
    0x00, // stop: end of ThriftFlumeEvent
    0x00, // stop: end of appendBatch_args
];

/// The reply `OK` to that call, compact: REPLY (2) << 5, field 0 of type I32 (5) in the
/// long form (delta 0 is not allowed), zigzag varint 0.
const COMPACT_REPLY_OK: &[u8] = &[
    0x00, 0x00, 0x00, 0x13, 0x82, 0x41, 0x01, 0x0B, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a',
    b't', b'c', b'h', 0x05, 0x00, 0x00, 0x00,
];

/// The reply `FAILED` to that call, binary: field type I32 (8), id 0, value 1.
const BINARY_REPLY_FAILED: &[u8] = &[
    0x00, 0x00, 0x00, 0x1F, 0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0B, b'a', b'p', b'p', b'e',
    b'n', b'd', b'B', b'a', b't', b'c', b'h', 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00,
];

/// One appendBatch call encodes to `golden` in `protocol`, and `golden` decodes back.
fn assert_golden_append_batch(protocol: Protocol, golden: &[u8]) {
    let got = encode_call(
        protocol,
        Method::AppendBatch,
        1,
        &[EventRef::from(&event())],
        frame::MAX_FRAME_BYTES,
    )
    .expect("encode");
    assert_eq!(got, golden);
    let req = decode_request(&golden[4..], protocol).expect("decode");
    assert_eq!(
        req,
        Request::Call {
            method: Method::AppendBatch,
            seqid: 1,
            events: vec![event()]
        }
    );
}

#[test]
fn golden_append_batch_compact() {
    assert_golden_append_batch(Protocol::Compact, COMPACT_CALL);
}

#[test]
fn golden_append_batch_binary() {
    assert_golden_append_batch(Protocol::Binary, BINARY_CALL);
}

#[test]
fn golden_replies() {
    let ok = encode_reply(Protocol::Compact, "appendBatch", 1, Status::Ok).expect("enc");
    assert_eq!(ok, COMPACT_REPLY_OK);
    let failed = encode_reply(Protocol::Binary, "appendBatch", 1, Status::Failed).expect("enc");
    assert_eq!(failed, BINARY_REPLY_FAILED);
    assert_eq!(
        decode_reply(&ok[4..], Protocol::Compact, Method::AppendBatch, 1).expect("dec"),
        Status::Ok
    );
    assert_eq!(
        decode_reply(&failed[4..], Protocol::Binary, Method::AppendBatch, 1).expect("dec"),
        Status::Failed
    );
    let e =
        decode_reply(&ok[4..], Protocol::Compact, Method::AppendBatch, 2).expect_err("wrong seqid");
    assert!(
        e.to_string().contains("#1 where one to appendBatch #2"),
        "{e}"
    );
}

#[test]
fn append_and_empty_headers_round_trip_in_both_protocols() {
    for p in [Protocol::Compact, Protocol::Binary] {
        let e = ThriftFlumeEvent::new(vec![0u8, 255, 10]);
        let call = encode_call(p, Method::Append, 7, &[EventRef::from(&e)], 1000).expect("enc");
        assert_eq!(
            decode_request(&call[4..], p).expect("dec"),
            Request::Call {
                method: Method::Append,
                seqid: 7,
                events: vec![e]
            }
        );
        let many: Vec<ThriftFlumeEvent> = (0..50)
            .map(|i| ThriftFlumeEvent::new(format!("b{i}")).with_header("i", i.to_string()))
            .collect();
        let refs: Vec<EventRef<'_>> = many.iter().map(EventRef::from).collect();
        let call = encode_call(p, Method::AppendBatch, 8, &refs, 100_000).expect("enc");
        let Request::Call { events, .. } = decode_request(&call[4..], p).expect("dec") else {
            panic!("not a call");
        };
        assert_eq!(events, many);
    }
}

#[test]
fn unknown_methods_get_an_application_exception() {
    let mut call = encode_call(
        Protocol::Compact,
        Method::Append,
        3,
        &[EventRef::from(&event())],
        1000,
    )
    .expect("enc");
    // Rename "append" to "appenX".
    let pos = call.windows(6).position(|w| w == b"append").expect("name");
    call[pos + 5] = b'X';
    let req = decode_request(&call[4..], Protocol::Compact).expect("dec");
    assert_eq!(
        req,
        Request::UnknownMethod {
            name: "appenX".into(),
            seqid: 3
        }
    );
    let reply = encode_unknown_method(Protocol::Compact, "appenX", 3).expect("enc");
    let e = decode_reply(&reply[4..], Protocol::Compact, Method::Append, 3).expect_err("exception");
    assert_eq!(
        e.to_string(),
        "the server answered with an exception: UnknownMethod: Invalid method name: 'appenX'"
    );
}

#[test]
fn foreign_and_hostile_frames_are_typed_errors() {
    let e = decode_request(&BINARY_CALL[4..], Protocol::Compact).expect_err("binary");
    assert!(e.to_string().contains("set protocol = binary"), "{e}");
    let e = decode_request(&COMPACT_CALL[4..], Protocol::Binary).expect_err("compact");
    assert!(e.to_string().contains("set protocol = compact"), "{e}");
    let e = decode_request(b"{\"json\": 1}", Protocol::Compact).expect_err("json");
    assert!(e.to_string().starts_with("not a Thrift compact"), "{e}");
    // A body claiming 2^31 - 1 bytes in a 30-byte frame: refused, not allocated.
    let mut lying = COMPACT_CALL[4..].to_vec();
    let body_len = lying.len() - 5;
    lying.splice(body_len..body_len + 1, [0xFF, 0xFF, 0xFF, 0xFF, 0x07]);
    let e = decode_request(&lying, Protocol::Compact).expect_err("lying length");
    assert!(e.to_string().starts_with("malformed event body"), "{e}");
    // A list claiming 2^31 - 1 events.
    let mut lying = COMPACT_CALL[4..].to_vec();
    let list = 16; // the list header, after the name
    lying.splice(list..list + 1, [0xFC, 0xFF, 0xFF, 0xFF, 0xFF, 0x07]);
    assert!(decode_request(&lying, Protocol::Compact).is_err());
    // Every truncation of a valid call is an error, never a panic.
    for p in [
        (Protocol::Compact, COMPACT_CALL),
        (Protocol::Binary, BINARY_CALL),
    ] {
        for n in 0..p.1.len() - 4 {
            assert!(decode_request(&p.1[4..4 + n], p.0).is_err(), "{n}");
        }
    }
}
