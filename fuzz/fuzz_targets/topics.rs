//! Fuzz target `topics`: see `outpost::fuzzing::topic_patterns`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outpost::fuzzing::topic_patterns(data));
