//! Fuzzes scanning and read-only replay of a segment file of format 1, 2 or 3, encrypted put
//! records opened with the test key (body: `file_channel_testkit::fuzzing::segment_scan`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::segment_scan(data));
