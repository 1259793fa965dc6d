//! Fuzz target `socketio_packet`: see `tickstream_fuzz_checks::socketio_packet` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tickstream_fuzz_checks::socketio_packet(data);
});
