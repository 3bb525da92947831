//! Fuzzes random channel operations with crashes and faults against the model (body: `file_channel_testkit::fuzzing::channel_ops`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::channel_ops(data));
