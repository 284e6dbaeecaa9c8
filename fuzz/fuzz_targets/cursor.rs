//! Fuzz target `cursor`: see `outpost::fuzzing::cursors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost::fuzzing::cursors(data));
