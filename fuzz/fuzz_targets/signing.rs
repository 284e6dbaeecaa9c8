//! Fuzz target `signing`: see `outpost::fuzzing::signatures`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost::fuzzing::signatures(data));
