//! Format keys, every codec's units, SequenceFile golden bytes from Hadoop's specification,
//! Avro containers read back by apache-avro, and a cut at every byte offset recovering a
//! whole-unit prefix with its event count.

use super::*;
use crate::sink::test_support::{ctx, entries};

fn parse(pairs: &[(&str, &str)]) -> (FormatConfig, Vec<String>) {
    let list = entries(pairs);
    let c = ctx(&list);
    let cfg = FormatConfig::parse(&c);
    let errors = c
        .finish("sink")
        .errors
        .iter()
        .map(|p| p.display(std::path::Path::new("f")).to_string())
        .collect();
    (cfg, errors)
}

pub(super) fn ok(pairs: &[(&str, &str)]) -> FormatConfig {
    let (cfg, errors) = parse(pairs);
    assert!(errors.is_empty(), "{pairs:?}: {errors:?}");
    cfg
}

fn stream(codec: &str) -> FormatConfig {
    ok(&[("hdfs.fileType", "CompressedStream"), ("hdfs.codeC", codec)])
}

pub(super) fn events(n: usize, tag: &str) -> Vec<Event> {
    (0..n)
        .map(|i| {
            Event::new(format!("{tag} event {i} {}", "x".repeat(i * 37)))
                .with_header("timestamp", (1_700_000_000_000 + i as i64).to_string())
                .with_header("host", "h1")
        })
        .collect()
}

/// A file of `batches`, and the (end, events so far) after the header and after each batch.
pub(super) fn write_file(
    cfg: &FormatConfig,
    batches: &[Vec<Event>],
) -> (Vec<u8>, Vec<(usize, u64)>) {
    let mut enc = cfg.encoder();
    let mut file = Vec::new();
    enc.begin(&mut file).expect("begin");
    let mut bounds = vec![(file.len(), 0)];
    let mut total = 0;
    for b in batches {
        enc.encode_batch(b, 42, &mut file).expect("batch");
        total += b.len() as u64;
        bounds.push((file.len(), total));
    }
    enc.end(&mut file).expect("end");
    (file, bounds)
}

/// Every cut of `file` recovers exactly the largest boundary at or before it.
pub(super) fn check_every_cut(cfg: &FormatConfig, file: &[u8], bounds: &[(usize, u64)]) {
    for cut in 0..=file.len() {
        let want = bounds.iter().rev().find(|(end, _)| *end <= cut).map_or(
            Recovered::default(),
            |&(len, events)| Recovered {
                len: len as u64,
                events,
            },
        );
        assert_eq!(
            complete_prefix(cfg, &file[..cut]),
            want,
            "cut at {cut} of {} ({cfg:?})",
            file.len()
        );
    }
}

pub(super) fn batches() -> Vec<Vec<Event>> {
    vec![events(3, "a"), events(1, "b"), events(5, "c")]
}

fn text_of(batches: &[Vec<Event>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in batches.iter().flatten() {
        out.extend_from_slice(&e.body);
        out.push(b'\n');
    }
    out
}

#[test]
fn flume_defaults_and_codec_names() {
    let cfg = ok(&[]);
    assert_eq!(cfg.file_type, FileType::SequenceFile);
    assert_eq!(cfg.write_format, WriteFormat::Writable);
    assert_eq!(cfg.codec, None);
    assert_eq!(cfg.extension(), "");
    for (name, codec, ext) in [
        ("gzip", Codec::Gzip, ".gz"),
        ("GzipCodec", Codec::Gzip, ".gz"),
        (
            "org.apache.hadoop.io.compress.GzipCodec",
            Codec::Gzip,
            ".gz",
        ),
        ("default", Codec::Deflate, ".deflate"),
        ("DefaultCodec", Codec::Deflate, ".deflate"),
        (
            "org.apache.hadoop.io.compress.DefaultCodec",
            Codec::Deflate,
            ".deflate",
        ),
        ("bzip2", Codec::Bzip2, ".bz2"),
        ("BZip2Codec", Codec::Bzip2, ".bz2"),
        ("zstd", Codec::Zstd, ".zst"),
        ("ZStandard", Codec::Zstd, ".zst"),
        (
            "org.apache.hadoop.io.compress.ZStandardCodec",
            Codec::Zstd,
            ".zst",
        ),
        ("snappy", Codec::Snappy, ".snappy"),
        ("SnappyCodec", Codec::Snappy, ".snappy"),
        ("lz4", Codec::Lz4, ".lz4"),
        ("Lz4Codec", Codec::Lz4, ".lz4"),
    ] {
        let cfg = stream(name);
        assert_eq!(cfg.codec, Some(codec), "{name}");
        assert_eq!(cfg.extension(), ext, "{name}");
    }
    let cfg = ok(&[
        ("hdfs.fileType", "DataStream"),
        ("serializer", "header_and_text"),
        ("serializer.appendNewline", "false"),
    ]);
    assert_eq!(
        cfg.serializer,
        StreamSerializer::Text(Serializer::HeaderAndText {
            append_newline: false
        })
    );
    assert_eq!(
        ok(&[("hdfs.writeFormat", "Text")]).write_format,
        WriteFormat::Text
    );
}

#[test]
fn refusals_name_their_keys() {
    for (pairs, want) in [
        (
            vec![("hdfs.fileType", "DataStream"), ("hdfs.codeC", "gzip")],
            "hdfs.codeC: fileType DataStream does not compress",
        ),
        (
            vec![("hdfs.fileType", "CompressedStream")],
            "hdfs.fileType: CompressedStream needs hdfs.codeC",
        ),
        (
            vec![("hdfs.fileType", "CompressedStream"), ("hdfs.codeC", "lzo")],
            "hdfs.codeC: unsupported compression codec `lzo`",
        ),
        (
            vec![("hdfs.codeC", "lzo")],
            "hdfs.codeC: unsupported compression codec `lzo`",
        ),
        (
            vec![("hdfs.fileType", "Parquet")],
            "hdfs.fileType: unknown file type",
        ),
        (
            vec![("hdfs.writeFormat", "Json")],
            "hdfs.writeFormat: unknown write format",
        ),
        (
            vec![
                ("hdfs.fileType", "DataStream"),
                ("serializer", "avro_event"),
                ("serializer.compressionCodec", "xz"),
            ],
            "serializer.compressionCodec: unsupported Avro codec",
        ),
        (
            vec![("hdfs.fileType", "DataStream"), ("serializer", "json")],
            "serializer:",
        ),
    ] {
        let (_, errors) = parse(&pairs);
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{pairs:?}: {errors:?}"
        );
    }
}

#[test]
fn plain_text_streams_and_every_cut() {
    let cfg = ok(&[("hdfs.fileType", "DataStream")]);
    let all = batches();
    let (file, _) = write_file(&cfg, &all);
    assert_eq!(file, text_of(&all));
    // Every line is whole on its own: the boundaries are every event's end.
    let mut bounds = vec![(0, 0)];
    let mut end = 0;
    for (i, e) in all.iter().flatten().enumerate() {
        end += e.body.len() + 1;
        bounds.push((end, i as u64 + 1));
    }
    check_every_cut(&cfg, &file, &bounds);

    let cfg = ok(&[
        ("hdfs.fileType", "DataStream"),
        ("serializer", "header_and_text"),
    ]);
    let (file, _) = write_file(&cfg, &[vec![Event::new("b").with_header("k", "v")]]);
    assert_eq!(file, b"{k=v} b\n");
}

#[test]
fn every_codec_writes_one_unit_per_batch_and_recovers_whole_batches() {
    for codec in Codec::ALL {
        let cfg = stream(codec.hadoop_class());
        let all = batches();
        let (file, bounds) = write_file(&cfg, &all);
        // Walking the units gives back the text, one unit per batch.
        let mut pos = 0;
        let mut text = Vec::new();
        let mut units = 0;
        while let Some((len, payload)) = codec.next_unit(&file[pos..]) {
            pos += len;
            text.extend_from_slice(&payload);
            units += 1;
        }
        assert_eq!(pos, file.len(), "{codec:?}");
        assert_eq!(units, all.len(), "{codec:?}");
        assert_eq!(text, text_of(&all), "{codec:?}");
        check_every_cut(&cfg, &file, &bounds);
    }
}

#[test]
fn hadoop_block_framing_for_snappy_and_lz4() {
    // A batch larger than one chunk: one uncompressed length, then several chunks.
    let body = (0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>();
    for codec in [Codec::Snappy, Codec::Lz4] {
        let mut unit = Vec::new();
        codec.compress_unit(&body, &mut unit).expect("compress");
        assert_eq!(&unit[..4], &(body.len() as u32).to_be_bytes(), "{codec:?}");
        let mut pos = 4;
        let mut plain = Vec::new();
        while pos < unit.len() {
            let clen = u32::from_be_bytes(unit[pos..pos + 4].try_into().expect("4")) as usize;
            let chunk = &unit[pos + 4..pos + 4 + clen];
            let decoded = match codec {
                Codec::Snappy => snap::raw::Decoder::new()
                    .decompress_vec(chunk)
                    .expect("raw snappy"),
                _ => lz4_flex::block::decompress(chunk, 64 * 1024).expect("raw lz4"),
            };
            assert!(decoded.len() <= 64 * 1024);
            plain.extend_from_slice(&decoded);
            pos += 4 + clen;
        }
        assert_eq!(plain, body, "{codec:?}");
    }
}

#[test]
fn damaged_units_are_not_kept() {
    for codec in [Codec::Gzip, Codec::Deflate, Codec::Zstd, Codec::Bzip2] {
        let cfg = stream(codec.hadoop_class());
        let (mut file, bounds) = write_file(&cfg, &batches());
        // Flip a byte inside the last unit: its checksum no longer matches.
        let (last_start, _) = bounds[bounds.len() - 2];
        let at = last_start + (file.len() - last_start) / 2;
        file[at] ^= 0x55;
        let r = complete_prefix(&cfg, &file);
        assert_eq!(r.len, last_start as u64, "{codec:?}");
        assert_eq!(r.events, bounds[bounds.len() - 2].1, "{codec:?}");
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header Hadoop's SequenceFile.Writer writes, spelled out from the format.
fn golden_header(value_class: &str, sync: &[u8; 16]) -> Vec<u8> {
    let mut h = b"SEQ".to_vec();
    h.push(6); // version with metadata
    h.push(33); // vint length of the key class name
    h.extend_from_slice(b"org.apache.hadoop.io.LongWritable");
    h.push(value_class.len() as u8);
    h.extend_from_slice(value_class.as_bytes());
    h.extend_from_slice(&[0, 0]); // not compressed, not block-compressed
    h.extend_from_slice(&[0, 0, 0, 0]); // no metadata
    h.extend_from_slice(sync);
    h
}

#[test]
fn sequence_file_golden_bytes_with_sync_escapes() {
    let sync: [u8; 16] = *b"0123456789abcdef";
    let evs = vec![
        Event::new("hi").with_header("timestamp", "5"),
        Event::new("yo"),
        Event::new("ok").with_header("timestamp", "-2"),
    ];
    // BytesWritable values; a sync interval of 100 puts one escape before the second record.
    let mut enc = sequence::SequenceEncoder::with_sync(WriteFormat::Writable, sync, 100);
    let mut file = Vec::new();
    enc.begin(&mut file);
    enc.encode_batch(&evs, 0x0102_0304_0506_0708, &mut file)
        .expect("encode");
    let mut want = golden_header("org.apache.hadoop.io.BytesWritable", &sync);
    assert_eq!(want.len(), 95);
    let record = |key: [u8; 8], body: &[u8]| {
        let mut r = vec![0, 0, 0, 14, 0, 0, 0, 8];
        r.extend_from_slice(&key);
        r.extend_from_slice(&[0, 0, 0, 2]);
        r.extend_from_slice(body);
        r
    };
    want.extend(record([0, 0, 0, 0, 0, 0, 0, 5], b"hi")); // ends at 117 >= 100
    want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    want.extend_from_slice(&sync);
    want.extend(record([1, 2, 3, 4, 5, 6, 7, 8], b"yo")); // no header: the sink's clock
    want.extend(record((-2i64).to_be_bytes(), b"ok"));
    assert_eq!(hex(&file), hex(&want));

    // Text values: a Hadoop vint length (one byte to 127, then a marker byte and the length).
    let long_body = vec![b'z'; 200];
    let mut enc =
        sequence::SequenceEncoder::with_sync(WriteFormat::Text, sync, SYNC_INTERVAL_BYTES);
    let mut file = Vec::new();
    enc.begin(&mut file);
    enc.encode_batch(
        &[
            Event::new("hi").with_header("timestamp", "5"),
            Event::new(long_body.clone()).with_header("timestamp", "6"),
        ],
        0,
        &mut file,
    )
    .expect("encode");
    let mut want = golden_header("org.apache.hadoop.io.Text", &sync);
    want.extend_from_slice(&[
        0, 0, 0, 11, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5, 2, b'h', b'i',
    ]);
    want.extend_from_slice(&[0, 0, 0, 210, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 6, 0x8f, 200]);
    want.extend_from_slice(&long_body);
    assert_eq!(hex(&file), hex(&want));

    // A timestamp that is not a number is an error naming the header.
    let err = enc
        .encode_batch(
            &[Event::new("x").with_header("timestamp", "soon")],
            0,
            &mut file,
        )
        .expect_err("bad timestamp");
    assert!(err.0.contains("`timestamp` header `soon`"), "{err}");
}

#[test]
fn hadoop_vlongs() {
    for (value, want) in [
        (0i64, vec![0x00]),
        (127, vec![0x7f]),
        (-112, vec![0x90]),
        (128, vec![0x8f, 0x80]),
        (255, vec![0x8f, 0xff]),
        (256, vec![0x8e, 0x01, 0x00]),
        (-113, vec![0x87, 0x70]),
        (
            i64::MAX,
            vec![0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ] {
        let mut out = Vec::new();
        sequence::write_vlong(&mut out, value);
        assert_eq!(out, want, "{value}");
    }
}

#[test]
fn sequence_files_recover_whole_records_at_every_cut() {
    let sync = *b"fedcba9876543210";
    for format in [WriteFormat::Writable, WriteFormat::Text] {
        let cfg = FormatConfig {
            write_format: format,
            ..FormatConfig::default()
        };
        // Record by record, so every record's end is known; a small interval adds escapes.
        let mut enc = sequence::SequenceEncoder::with_sync(format, sync, 150);
        let mut file = Vec::new();
        enc.begin(&mut file);
        let mut bounds = vec![(file.len(), 0)];
        for (i, e) in batches().into_iter().flatten().enumerate() {
            let before = file.len();
            enc.encode_batch(std::slice::from_ref(&e), 7, &mut file)
                .expect("encode");
            if file[before..before + 4] == [0xff; 4] {
                bounds.push((before + 20, i as u64)); // a sync escape alone is whole
            }
            bounds.push((file.len(), i as u64 + 1));
        }
        assert!(file.windows(16).filter(|w| *w == sync).count() > 2);
        check_every_cut(&cfg, &file, &bounds);
    }
    // The production encoder's file scans whole.
    let cfg = FormatConfig::default();
    let (file, bounds) = write_file(&cfg, &batches());
    assert_eq!(
        complete_prefix(&cfg, &file),
        Recovered {
            len: file.len() as u64,
            events: bounds.last().expect("bounds").1
        }
    );
}

/// An Avro record as (sorted headers, body).
type Record = (Vec<(String, String)>, Vec<u8>);

fn read_avro(file: &[u8]) -> Vec<Record> {
    use apache_avro::types::Value;
    let reader = apache_avro::Reader::new(file).expect("avro container");
    let mut out = Vec::new();
    for value in reader {
        let Value::Record(fields) = value.expect("record") else {
            panic!("not a record");
        };
        let mut headers = Vec::new();
        let mut body = Vec::new();
        for (name, v) in fields {
            match (name.as_str(), v) {
                ("headers", Value::Map(m)) => {
                    for (k, v) in m {
                        let Value::String(s) = v else {
                            panic!("header value")
                        };
                        headers.push((k, s));
                    }
                }
                ("body", Value::Bytes(b)) => body = b,
                other => panic!("unexpected field {other:?}"),
            }
        }
        headers.sort();
        out.push((headers, body));
    }
    out
}

#[test]
fn avro_event_containers_read_back_and_recover_whole_blocks() {
    for (codec, avro_codec) in [("null", "null"), ("null", "deflate"), ("gzip", "null")] {
        let mut pairs = vec![
            ("serializer", "avro_event"),
            ("serializer.compressionCodec", avro_codec),
        ];
        if codec == "null" {
            pairs.push(("hdfs.fileType", "DataStream"));
        } else {
            pairs.push(("hdfs.fileType", "CompressedStream"));
            pairs.push(("hdfs.codeC", codec));
        }
        let cfg = ok(&pairs);
        let all = batches();
        let (file, bounds) = write_file(&cfg, &all);
        let plain = match cfg.codec {
            None => file.clone(),
            Some(c) => {
                let mut pos = 0;
                let mut plain = Vec::new();
                while let Some((len, p)) = c.next_unit(&file[pos..]) {
                    pos += len;
                    plain.extend_from_slice(&p);
                }
                plain
            }
        };
        let got = read_avro(&plain);
        let want: Vec<_> = all
            .iter()
            .flatten()
            .map(|e| {
                let mut h = e.headers.clone();
                h.sort();
                (h, e.body.clone())
            })
            .collect();
        assert_eq!(got, want, "{pairs:?}");
        check_every_cut(&cfg, &file, &bounds);
    }
}
