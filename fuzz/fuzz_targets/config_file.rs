#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bleepstore::fuzzing::config_file(data));
