//! Fuzzes opening an arbitrary directory of segment/checkpoint files (body: `file_channel_testkit::fuzzing::open_dir`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::open_dir(data));
