//! Every Qonto answer decoder on arbitrary bytes: an error, never a panic. The first
//! byte picks the decoder (and the status of an error answer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use receipt_sync::testkit::decode;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => drop(decode::qonto_organization(body)),
        1 => drop(decode::qonto_transactions_page(body)),
        2 => drop(decode::qonto_attachment(body)),
        _ => {
            let status = 400 + u16::from(which) % 200;
            let error = decode::qonto_error(status, body);
            // Every error can be shown and classified.
            let _ = (error.to_string(), error.kind(), error.is_retryable());
        }
    }
});
