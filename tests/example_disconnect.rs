//! `qonto-onedrive disconnect`, run as a process: it says whether a sign-in was saved,
//! and that `ONEDRIVE_REFRESH_TOKEN`, while set, still grants access.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::World;

struct Run {
    code: i32,
    stdout: String,
}

async fn disconnect(world: &World, args: &[&str], variable: bool) -> Run {
    let mut command = world.env().command(args).await;
    if !variable {
        command.env_remove("ONEDRIVE_REFRESH_TOKEN");
    }
    let out = command.output().await.unwrap();
    // Shown with `--nocapture`: what a person sees.
    println!(
        "$ qonto-onedrive {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&world.refresh_token),
        "a secret was printed"
    );
    assert!(stderr.is_empty(), "{stderr}");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_with_the_variable_set_says_it_still_grants_access_then_nothing_to_forget() {
    let world = World::start().await;
    let (code, _, stderr) = world.sync().await;
    assert_eq!(code, 0, "{stderr}");
    let saved = world.home.path().join("onedrive-tokens.json");
    assert!(saved.exists(), "a sync saves the sign-in it refreshed");

    let first = disconnect(&world, &["disconnect"], true).await;
    assert_eq!(first.code, 0);
    assert!(!saved.exists());
    assert!(first.stdout.starts_with("Signed out:"), "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("Unset ONEDRIVE_REFRESH_TOKEN: it is still set, and still grants access"),
        "{}",
        first.stdout
    );

    let second = disconnect(&world, &["disconnect"], true).await;
    assert_eq!(second.code, 0);
    assert!(
        second
            .stdout
            .starts_with("Nothing to forget: no OneDrive sign-in is saved."),
        "{}",
        second.stdout
    );
    assert!(!second.stdout.contains("Signed out"), "{}", second.stdout);
    assert!(
        second.stdout.contains("Unset ONEDRIVE_REFRESH_TOKEN"),
        "{}",
        second.stdout
    );

    // Without the variable, nothing is said about it.
    let plain = disconnect(&world, &["disconnect"], false).await;
    assert!(
        !plain.stdout.contains("ONEDRIVE_REFRESH_TOKEN"),
        "{}",
        plain.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_one_document_in_the_envelope() {
    let world = World::start().await;
    let run = disconnect(&world, &["disconnect", "--json"], true).await;
    assert_eq!(run.code, 0);
    let doc: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(doc["command"], "disconnect");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["forgotten"], false);
    assert_eq!(doc["refresh_token_variable_set"], true);
}
