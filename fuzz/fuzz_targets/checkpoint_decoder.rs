//! Fuzzes the checkpoint decoder (body: `file_channel_testkit::fuzzing::checkpoint_decoder`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::checkpoint_decoder(data));
