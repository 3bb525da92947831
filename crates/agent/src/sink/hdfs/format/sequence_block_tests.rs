//! Block-compressed SequenceFiles (`hdfs.fileType = SequenceFile` with `hdfs.codeC`): golden
//! bytes written from Hadoop's specification, a reader that walks the blocks and decodes each
//! buffer with the codec's own crate (not [`Codec::next_unit`]) to give back every
//! (key, value), and a cut at every byte offset recovering whole blocks.

use std::io::Read;

use super::sequence::read_vlong;
use super::sequence_block::BlockSequenceEncoder;
use super::tests::{batches, check_every_cut, events, hex, ok, write_file};
use super::*;

const SYNC: [u8; 16] = *b"0123456789abcdef";

fn block_file(codec: Codec, write_format: WriteFormat) -> FormatConfig {
    FormatConfig {
        file_type: FileType::SequenceFile,
        codec: Some(codec),
        write_format,
        ..FormatConfig::default()
    }
}

/// A Hadoop `Text` string: a vint length (one byte below 128) and the bytes.
fn text(s: &str) -> Vec<u8> {
    assert!(s.len() < 128);
    let mut out = vec![s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// The header Hadoop's `BlockCompressWriter` writes, spelled out from the format.
fn golden_block_header(value_class: &str, codec_class: &str) -> Vec<u8> {
    let mut h = b"SEQ\x06".to_vec();
    h.extend(text("org.apache.hadoop.io.LongWritable"));
    h.extend(text(value_class));
    h.extend_from_slice(&[1, 1]); // compressed, block-compressed
    h.extend(text(codec_class));
    h.extend_from_slice(&[0, 0, 0, 0]); // no metadata
    h.extend_from_slice(&SYNC);
    h
}

/// One buffer of a block, decoded with the codec's crate; panics unless `stream` is exactly
/// one stream of the codec as Hadoop writes it.
fn decode(codec: Codec, stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let rest = match codec {
        Codec::Gzip => {
            assert_eq!(&stream[..2], &[0x1f, 0x8b], "gzip magic");
            let mut d = flate2::bufread::GzDecoder::new(stream);
            d.read_to_end(&mut out).expect("gzip");
            d.into_inner().len()
        }
        Codec::Deflate => {
            assert_eq!(stream[0] & 0x0f, 8, "zlib header: deflate");
            let mut d = flate2::bufread::ZlibDecoder::new(stream);
            d.read_to_end(&mut out).expect("zlib");
            d.into_inner().len()
        }
        Codec::Bzip2 => {
            assert_eq!(&stream[..3], b"BZh", "bzip2 magic");
            let mut d = bzip2::bufread::BzDecoder::new(stream);
            d.read_to_end(&mut out).expect("bzip2");
            d.into_inner().len()
        }
        Codec::Zstd => {
            assert_eq!(&stream[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
            out = zstd::stream::decode_all(stream).expect("zstd");
            0
        }
        Codec::Snappy | Codec::Lz4 => {
            // BlockCompressorStream: the uncompressed length, then (length, raw block) chunks.
            let be = |at: usize| {
                u32::from_be_bytes(stream[at..at + 4].try_into().expect("4 bytes")) as usize
            };
            let raw_len = be(0);
            let mut pos = 4;
            while out.len() < raw_len {
                let clen = be(pos);
                let chunk = &stream[pos + 4..pos + 4 + clen];
                let plain = match codec {
                    Codec::Snappy => snap::raw::Decoder::new()
                        .decompress_vec(chunk)
                        .expect("snappy"),
                    _ => lz4_flex::block::decompress(chunk, raw_len - out.len()).expect("lz4"),
                };
                out.extend_from_slice(&plain);
                pos += 4 + clen;
            }
            assert_eq!(out.len(), raw_len);
            stream.len() - pos
        }
    };
    assert_eq!(rest, 0, "{codec:?}: bytes after the buffer's stream");
    out
}

fn vint(bytes: &[u8], pos: &mut usize) -> usize {
    usize::try_from(read_vlong(bytes, pos).expect("vint")).expect("non-negative")
}

/// Reads a whole block-compressed file the way Hadoop's `SequenceFile.Reader` does: the
/// header, then blocks of sync, count and four buffers. Returns the (key, value body) pairs
/// and the number of blocks.
fn read_pairs(file: &[u8], codec: Codec, format: WriteFormat) -> (Vec<(i64, Vec<u8>)>, usize) {
    let header = golden_block_header(format.value_class(), codec.hadoop_class());
    let sync = &file[header.len() - 16..header.len()];
    assert_eq!(
        hex(&file[..header.len() - 16]),
        hex(&header[..header.len() - 16])
    );
    let mut pos = header.len();
    let mut pairs = Vec::new();
    let mut blocks = 0;
    while pos < file.len() {
        assert_eq!(&file[pos..pos + 4], &[0xff; 4], "sync escape at {pos}");
        assert_eq!(&file[pos + 4..pos + 20], sync, "sync marker at {pos}");
        pos += 20;
        let count = vint(file, &mut pos);
        let mut buffers = Vec::new();
        for _ in 0..4 {
            let len = vint(file, &mut pos);
            buffers.push(decode(codec, &file[pos..pos + len]));
            pos += len;
        }
        let (mut kl, mut k, mut vl, mut v) = (0, 0, 0, 0);
        for _ in 0..count {
            assert_eq!(vint(&buffers[0], &mut kl), 8, "LongWritable key length");
            let key = i64::from_be_bytes(buffers[1][k..k + 8].try_into().expect("8 bytes"));
            k += 8;
            let value_len = vint(&buffers[2], &mut vl);
            let value = &buffers[3][v..v + value_len];
            v += value_len;
            let body = match format {
                WriteFormat::Writable => {
                    let n = u32::from_be_bytes(value[..4].try_into().expect("4")) as usize;
                    assert_eq!(n + 4, value.len());
                    value[4..].to_vec()
                }
                WriteFormat::Text => {
                    let mut p = 0;
                    let n = vint(value, &mut p);
                    assert_eq!(n + p, value.len());
                    value[p..].to_vec()
                }
            };
            pairs.push((key, body));
        }
        let lens: Vec<_> = buffers.iter().map(Vec::len).collect();
        assert_eq!(vec![kl, k, vl, v], lens, "every buffer used up");
        blocks += 1;
    }
    (pairs, blocks)
}

#[test]
fn golden_block_with_default_codec_and_gzip() {
    for (codec, format, magic) in [
        (Codec::Deflate, WriteFormat::Writable, vec![0x78]),
        (Codec::Gzip, WriteFormat::Text, vec![0x1f, 0x8b]),
    ] {
        let mut enc = BlockSequenceEncoder::with_sync(format, codec, SYNC);
        let mut file = Vec::new();
        enc.begin(&mut file).expect("begin");
        let header = golden_block_header(format.value_class(), codec.hadoop_class());
        assert_eq!(hex(&file), hex(&header), "{codec:?}");
        enc.encode_batch(
            &[
                Event::new("hi").with_header("timestamp", "5"),
                Event::new("yo"), // no header: the sink's clock
            ],
            0x0102_0304_0506_0708,
            &mut file,
        )
        .expect("encode");
        let mut pos = header.len();
        let mut want_start = vec![0xff, 0xff, 0xff, 0xff];
        want_start.extend_from_slice(&SYNC);
        want_start.push(2); // records
        assert_eq!(hex(&file[pos..pos + 21]), hex(&want_start), "{codec:?}");
        pos += 21;
        let values: &[u8] = match format {
            WriteFormat::Writable => &[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 2, b'y', b'o'],
            WriteFormat::Text => &[2, b'h', b'i', 2, b'y', b'o'],
        };
        let value_lengths: &[u8] = match format {
            WriteFormat::Writable => &[6, 6],
            WriteFormat::Text => &[3, 3],
        };
        let want_buffers: [&[u8]; 4] = [
            &[8, 8],
            &[0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8],
            value_lengths,
            values,
        ];
        for want in want_buffers {
            let len = file[pos] as usize; // a one-byte vint: these streams are short
            assert!(len < 128, "{codec:?}");
            let stream = &file[pos + 1..pos + 1 + len];
            assert!(stream.starts_with(&magic), "{codec:?}");
            assert_eq!(hex(&decode(codec, stream)), hex(want), "{codec:?}");
            pos += 1 + len;
        }
        assert_eq!(pos, file.len(), "{codec:?}: one block, nothing after it");
    }
}

#[test]
fn every_codec_reads_back_every_pair_one_block_per_batch() {
    for codec in Codec::ALL {
        for format in [WriteFormat::Writable, WriteFormat::Text] {
            let cfg = block_file(codec, format);
            let all = batches();
            let (file, bounds) = write_file(&cfg, &all);
            let (pairs, blocks) = read_pairs(&file, codec, format);
            assert_eq!(blocks, all.len(), "{codec:?} {format:?}");
            let want: Vec<_> = all
                .iter()
                .flatten()
                .map(|e| {
                    let ts = e.header("timestamp").expect("timestamp");
                    (ts.parse::<i64>().expect("number"), e.body.clone())
                })
                .collect();
            assert_eq!(pairs, want, "{codec:?} {format:?}");
            let whole = complete_prefix(&cfg, &file);
            assert_eq!(
                (whole.len, whole.events),
                (
                    file.len() as u64,
                    *bounds.last().map(|(_, n)| n).expect("bounds")
                ),
                "{codec:?} {format:?}"
            );
        }
    }
}

#[test]
fn large_batches_read_back() {
    // Bodies past one snappy/lz4 chunk and values past a one-byte vint length.
    let big: Vec<Event> = (0..3)
        .map(|i| {
            Event::new(vec![b'a' + i as u8; 70_000 + i * 1000])
                .with_header("timestamp", i.to_string())
        })
        .collect();
    for codec in Codec::ALL {
        let cfg = block_file(codec, WriteFormat::Writable);
        let (file, _) = write_file(&cfg, std::slice::from_ref(&big));
        let (pairs, blocks) = read_pairs(&file, codec, WriteFormat::Writable);
        assert_eq!(blocks, 1, "{codec:?}");
        let bodies: Vec<_> = pairs.into_iter().map(|(_, b)| b).collect();
        let want: Vec<_> = big.iter().map(|e| e.body.clone()).collect();
        assert!(bodies == want, "{codec:?}");
    }
}

#[test]
fn every_cut_recovers_whole_blocks() {
    for codec in Codec::ALL {
        for format in [WriteFormat::Writable, WriteFormat::Text] {
            let cfg = block_file(codec, format);
            let (file, bounds) = write_file(&cfg, &batches());
            check_every_cut(&cfg, &file, &bounds);
        }
    }
}

#[test]
fn garbage_and_damage_after_whole_blocks_are_cut_off() {
    for codec in Codec::ALL {
        let cfg = block_file(codec, WriteFormat::Writable);
        let (file, bounds) = write_file(&cfg, &batches());
        let whole = Recovered {
            len: file.len() as u64,
            events: bounds[bounds.len() - 1].1,
        };
        // Garbage after the last block, a sync escape with a foreign marker, a zero count.
        for tail in [
            vec![0x5a; 300],
            vec![0xff; 64],
            [&[0xff; 4][..], &[0x11; 16][..], &[1, 0, 0, 0, 0]].concat(),
            [&[0xff; 4][..], &SYNC[..], &[0]].concat(),
        ] {
            let mut bad = file.clone();
            bad.extend_from_slice(&tail);
            assert_eq!(complete_prefix(&cfg, &bad), whole, "{codec:?} {tail:?}");
        }
        // A byte flipped in the last block's record count, and near the end of its values.
        let (last_start, events_before) = bounds[bounds.len() - 2];
        for at in [last_start + 20, file.len() - 8] {
            let mut bad = file.clone();
            bad[at] ^= 0x40;
            let r = complete_prefix(&cfg, &bad);
            if at == file.len() - 8 && matches!(codec, Codec::Snappy | Codec::Lz4) {
                // No checksum: a flipped literal may still decode to well-formed records.
                assert!(r.len == last_start as u64 || r == whole, "{codec:?}");
            } else {
                assert_eq!(
                    r,
                    Recovered {
                        len: last_start as u64,
                        events: events_before
                    },
                    "{codec:?} flipped at {at}"
                );
            }
        }
    }
}

#[test]
fn sequence_file_with_codec_is_configured_block_compressed() {
    for (name, codec) in [
        ("snappy", Codec::Snappy),
        ("org.apache.hadoop.io.compress.GzipCodec", Codec::Gzip),
        ("DefaultCodec", Codec::Deflate),
        ("bzip2", Codec::Bzip2),
        ("lz4", Codec::Lz4),
        ("zstd", Codec::Zstd),
    ] {
        let cfg = ok(&[("hdfs.fileType", "SequenceFile"), ("hdfs.codeC", name)]);
        assert_eq!(cfg.codec, Some(codec), "{name}");
        assert_eq!(cfg.extension(), codec.extension(), "{name}");
        let (file, _) = write_file(&cfg, &[events(2, "z")]);
        let (pairs, blocks) = read_pairs(&file, codec, WriteFormat::Writable);
        assert_eq!((pairs.len(), blocks), (2, 1), "{name}");
    }
    // `none` keeps the uncompressed SequenceFile.
    let cfg = ok(&[("hdfs.codeC", "none")]);
    assert_eq!(cfg.codec, None);
    let (file, _) = write_file(&cfg, &[events(1, "n")]);
    assert_eq!(&file[..4], b"SEQ\x06");
    assert!(!file.windows(11).any(|w| w == b"compress.Gz"));
}

#[test]
fn a_file_is_scanned_by_its_own_header_whatever_the_configuration() {
    // Written with gzip, recovered after a restart that configures snappy, or no codec.
    let (file, bounds) = write_file(&block_file(Codec::Gzip, WriteFormat::Writable), &batches());
    let want = Recovered {
        len: file.len() as u64,
        events: bounds[bounds.len() - 1].1,
    };
    for cfg in [
        block_file(Codec::Snappy, WriteFormat::Writable),
        FormatConfig::default(),
    ] {
        assert_eq!(complete_prefix(&cfg, &file), want, "{cfg:?}");
    }
}
