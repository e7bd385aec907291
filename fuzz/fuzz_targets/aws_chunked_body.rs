#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bleepstore::fuzzing::aws_chunked_body(data));
