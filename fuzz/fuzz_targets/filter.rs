//! Fuzz target `filter`: see `outpost::fuzzing::filter_language`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost::fuzzing::filter_language(data));
