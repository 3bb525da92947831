//! Fuzzes the record, segment-header and encryption-envelope decoders, and opening encrypted
//! put records (body: `file_channel_testkit::fuzzing::record_decoder`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| file_channel_testkit::fuzzing::record_decoder(data));
