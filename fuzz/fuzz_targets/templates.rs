//! Fuzz target `templates`: see `outpost::fuzzing::templates`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost::fuzzing::templates(data));
