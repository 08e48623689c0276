//! With `--json`, every `qonto-onedrive` command prints exactly one JSON document on
//! stdout, success or failure, in the envelope of docs/command-line.md: `version`,
//! `command`, `exit_code`, then the command's own fields or `error`.
//!
//! One line per command: a new command's shape is a new row.
#![cfg(feature = "testkit")]

mod cli_support;

use cli_support::{Env, World};
use serde_json::Value;

/// The keys of `sync`'s document (and of each of `daemon`'s), docs/command-line.md.
const PASS_KEYS: &[&str] = &[
    "complete",
    "reason",
    "receipts_read",
    "planned",
    "done",
    "bytes_written",
    "failures",
    "unread_accounts",
    "duration_ms",
    "start_date",
    "settings_change",
    "error",
];

/// Commands that succeed against the fakes: the arguments, the exit code, the keys.
/// In this order: `sync` first (the others read what it archived), `disconnect` last.
const SUCCESSES: &[(&str, &[&str], u8, &[&str])] = &[
    ("sync", &["sync"], 0, PASS_KEYS),
    (
        "plan",
        &["plan"],
        0,
        &[
            "start_date",
            "settings_change",
            "added_by_start_date",
            "counts",
            "bytes",
            "actions",
            "excluded",
        ],
    ),
    (
        "status",
        &["status"],
        0,
        &[
            "archive",
            "start_date",
            "archived",
            "tombstoned",
            "pending",
            "to_adopt",
            "to_upload",
            "last_run",
            "space_left",
        ],
    ),
    ("doctor", &["doctor"], 0, &["ok", "checks"]),
    (
        "reset",
        &["reset", "--yes"],
        0,
        &["start_date", "to_adopt", "to_upload", "message"],
    ),
    (
        "disconnect",
        &["disconnect"],
        0,
        &["forgotten", "refresh_token_variable_set", "message"],
    ),
];

/// Every command, made to fail on its configuration (an unusable home).
const FAILURES: &[(&str, &[&str])] = &[
    ("login", &["login", "--device-code"]),
    ("sync", &["sync"]),
    ("daemon", &["daemon"]),
    ("plan", &["plan"]),
    ("status", &["status"]),
    ("reset", &["reset", "--yes"]),
    ("share", &["share", "Main"]),
    ("disconnect", &["disconnect"]),
    ("doctor", &["doctor"]),
];

/// Runs the example; stdout must be exactly one JSON document.
async fn document(env: &Env<'_>, args: &[&str]) -> (i32, Value, String) {
    let mut args = args.to_vec();
    args.push("--json");
    let out = env.command(&args).await.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut documents = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let doc = documents
        .next()
        .unwrap_or_else(|| panic!("{args:?}: no document; stderr: {stderr}"))
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"));
    assert!(
        documents.next().is_none(),
        "{args:?}: one document: {stdout}"
    );
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "{args:?}: one line: {stdout}"
    );
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn assert_envelope(doc: &Value, command: &str, code: i32) {
    assert_eq!(doc["version"], 1, "{doc}");
    assert_eq!(doc["command"], command, "{doc}");
    assert_eq!(doc["exit_code"], code, "{doc}");
}

#[tokio::test]
async fn each_command_prints_one_documented_document() {
    let world = World::start().await;
    for (command, args, code, keys) in SUCCESSES {
        let (exit, doc, stderr) = document(&world.env(), args).await;
        assert_eq!(exit, i32::from(*code), "{args:?}: {stderr}");
        assert_envelope(&doc, command, exit);
        for key in *keys {
            assert!(doc.get(key).is_some(), "{command}: {key} in {doc}");
        }
        assert!(doc["error"].is_null(), "{doc}");
    }
}

#[tokio::test]
async fn each_command_that_fails_prints_its_error_as_a_document() {
    let world = World::start().await;
    let file = world.home.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let env = Env {
        home: &file,
        ..world.env()
    };
    for (command, args) in FAILURES {
        let (exit, doc, stderr) = document(&env, args).await;
        assert_eq!(exit, 2, "{args:?}: {stderr}");
        assert_envelope(&doc, command, exit);
        assert_eq!(doc["error"]["kind"], "Config", "{doc}");
        assert!(
            doc["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("RECEIPT_SYNC_HOME")),
            "{doc}"
        );
    }
}

#[tokio::test]
async fn a_pass_that_stops_prints_its_error_in_its_document() {
    let world = World::start().await;
    let env = world.env();
    // The OneDrive sign-in is refused: no refresh token is valid.
    let env = Env {
        refresh_token: "not-a-token",
        ..env
    };
    let (exit, doc, stderr) = document(&env, &["sync"]).await;
    assert_ne!(exit, 0, "{stderr}");
    assert_envelope(&doc, "sync", exit);
    assert!(doc["error"]["kind"].is_string(), "{doc}");
    assert!(doc["error"]["message"].is_string(), "{doc}");
}

#[tokio::test]
async fn a_refused_command_line_is_a_document_too() {
    let world = World::start().await;
    let later = (chrono::Local::now().date_naive() + chrono::TimeDelta::days(3)).to_string();
    for (command, args) in [
        ("sync", vec!["sync", "--no-such-flag"]),
        ("sync", vec!["sync", "--since", later.as_str()]),
        ("daemon", vec!["daemon", "--tz", "paris"]),
        ("qonto-onedrive", vec!["no-such-command"]),
        ("reset", vec!["reset"]),
    ] {
        let (exit, doc, _) = document(&world.env(), &args).await;
        assert_eq!(exit, 2, "{args:?}");
        assert_envelope(&doc, command, 2);
        assert_eq!(doc["error"]["kind"], "Config", "{doc}");
        assert!(
            doc["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}
