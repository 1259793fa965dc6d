//! Fuzz target `model_tick_symbol`: see `tickstream_fuzz_checks::model_tick_symbol` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tickstream_fuzz_checks::model_tick_symbol(data);
});
