//! Every Graph answer decoder on arbitrary bytes: an error, never a panic. The first
//! byte picks the decoder (and the status of an error answer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use receipt_sync::testkit::decode;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => drop(decode::graph_drive_item(body)),
        1 => drop(decode::graph_delta_page(body)),
        2 => drop(decode::graph_upload_session(body)),
        3 => drop(decode::graph_drive(body)),
        _ => {
            // The Retry-After value runs to the first newline.
            let split = body.iter().position(|&b| b == b'\n').unwrap_or(0);
            let (retry_after, rest) = body.split_at(split);
            let status = 400 + u16::from(which) % 200;
            let error = decode::graph_error(status, retry_after, rest);
            let _ = (error.to_string(), error.kind(), error.retry_after());
        }
    }
});
