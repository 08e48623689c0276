//! The whole story in a few seconds, with no account and no network: a fake Qonto and a
//! fake OneDrive (Microsoft Graph) on loopback, the real `QontoSource` and `OneDriveSink`
//! between them, and the state in a temporary folder.
//!
//! 1. The first sync exports every receipt: PDF, JPEG and PNG files, one over 4 MiB
//!    (an upload session), names with accents, `:` `/` `?`, an emoji, a very long label
//!    and the reserved name `CON`.
//! 2. The user deletes one file and one month's folder in OneDrive; the next sync puts
//!    the file back and leaves the folder's receipts out (deletion rules 1 and 2).
//! 3. A sync with nothing new writes nothing.
//!
//! It prints the plan (each receipt's fate and why) and the archive at each step, and
//! leaves a copy of the archive in `./demo-archive/` (cleared first).
//!
//! ```sh
//! cargo run --example demo
//! ```

#[path = "demo/org.rs"]
mod org;
#[path = "demo/scenario.rs"]
mod scenario;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut out = std::io::stdout().lock();
    match scenario::run(std::path::Path::new("demo-archive"), &mut out).await {
        Ok(outcome) if outcome.complete => {
            println!(
                "\n{} receipts seeded; {} files archived ({} through an upload session); \
                 put back: {}; left out with their folder {}/: {}",
                outcome.receipts,
                outcome.archive.len(),
                outcome.upload_sessions,
                outcome.put_back,
                outcome.deleted_folder,
                outcome.tombstoned
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("demo: a sync did not complete (see above)");
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("demo: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
