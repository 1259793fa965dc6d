//! Fuzz target `native_protocol`: see `tickstream_fuzz_checks::native_protocol` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tickstream_fuzz_checks::native_protocol(data);
});
