//! Every Graph answer decoder on arbitrary bytes: an error, never a panic. The first
//! byte picks the decoder (and the status of an error answer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use receipt_sync::testkit::decode;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, body)) = data.split_first() {
        decode::any_graph_answer(selector, body);
    }
});
