//! Fuzzes random channel operations with crashes and faults against the model, encryption at
//! rest off or on (bit 3 of the first byte) (body: `file_channel_testkit::fuzzing::channel_ops`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::channel_ops(data));
