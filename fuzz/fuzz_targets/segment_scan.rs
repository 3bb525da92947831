//! Fuzzes scanning and read-only replay of a segment file (body: `file_channel_testkit::fuzzing::segment_scan`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::segment_scan(data));
