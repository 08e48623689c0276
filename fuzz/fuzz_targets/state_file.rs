//! The state store loading arbitrary `state.bin` and `state.journal` files: an error
//! or a state (which the planner then plans), never a panic, never a changed file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use receipt_sync::testkit::decode;

fuzz_target!(|data: &[u8]| {
    // `state.bin`, then after a 0xFF byte `state.journal`; a leading 0xFE drops the state.
    let (state, journal) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let state = (state.first() != Some(&0xFE)).then_some(state);
    if let Err(receipt_sync::Error::State { detail, .. }) = decode::state_files(state, journal) {
        assert!(
            detail != "loading changed the file",
            "loading changed a file"
        );
    }
});
