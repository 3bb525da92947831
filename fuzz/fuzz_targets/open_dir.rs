//! Fuzzes opening an arbitrary directory of segment/checkpoint files, with no keys, the test
//! key, a wrong key or a key not active (body: `file_channel_testkit::fuzzing::open_dir`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::open_dir(data));
