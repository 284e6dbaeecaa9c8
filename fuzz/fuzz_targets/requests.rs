//! Fuzz target `requests`: see `outpost::fuzzing::request_bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost::fuzzing::request_bodies(data));
