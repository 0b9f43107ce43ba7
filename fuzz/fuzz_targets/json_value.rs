#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionware::fuzz::json_value(data));
