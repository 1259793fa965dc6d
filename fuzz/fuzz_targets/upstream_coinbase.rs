//! Fuzz target `upstream_coinbase`: see `tickstream_fuzz_checks::upstream_coinbase` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tickstream_fuzz_checks::upstream_coinbase(data);
});
