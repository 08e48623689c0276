//! The service files of docs/running-daily.md work as written: their command lines parse
//! with the command's own parser, the exit codes kept from restarting are exactly the
//! daemon's stops that need a person, `systemd-analyze verify` accepts the units (when it
//! is installed), and the launchd plist is well-formed.
#![cfg(all(feature = "testkit", unix))]

mod cli_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const DOC: &str = include_str!("../docs/running-daily.md");

/// The fenced blocks whose info string names a file (```` ```ini name.service ````).
fn files() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in DOC.lines() {
        match &mut current {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    if let (Some(_lang), Some(name)) = (words.next(), words.next()) {
                        current = Some((name.to_owned(), String::new()));
                    }
                }
            }
            Some((name, body)) => {
                if line.starts_with("```") {
                    files.insert(std::mem::take(name), std::mem::take(body));
                    current = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    files
}

/// The value of `key=` in a unit file.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"))
}

/// Runs the command line's arguments through the built command, with no credentials: the
/// parser accepts them, and the command stops on a missing variable (exit 2 with its own
/// message, not a usage error).
async fn assert_parses(args: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(cli_support::binary().await)
        .args(args)
        .env_clear()
        .env("RECEIPT_SYNC_HOME", home.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Usage:") && !stderr.starts_with("error:"),
        "{args:?} does not parse: {stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    // The command's own message about a missing variable (QONTO_LOGIN, MS_CLIENT_ID).
    assert!(
        stderr.starts_with("qonto-onedrive: ") && stderr.contains("set "),
        "{args:?}: {stderr}"
    );
}

/// `pub const NAME: u8 = N;` of the command's report module.
fn exit_codes() -> BTreeMap<String, u8> {
    let report = include_str!("../examples/qonto_onedrive/report.rs");
    report
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": u8 = ")?;
            Some((name.to_owned(), value.trim_end_matches(';').parse().ok()?))
        })
        .collect()
}

/// The codes of the daemon's `NEEDS_A_PERSON`, resolved through the report module.
fn needs_a_person() -> BTreeSet<u8> {
    let daemon = include_str!("../examples/qonto_onedrive/daemon.rs");
    let start = daemon
        .find("pub const NEEDS_A_PERSON")
        .expect("the daemon lists its stops");
    let list = &daemon[start..];
    let list = &list[list.find("= [").unwrap()..list.find("];").unwrap()];
    let codes = exit_codes();
    list.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter_map(|word| word.strip_prefix("report::"))
        .map(|name| codes[name])
        .collect()
}

#[tokio::test]
async fn the_command_lines_of_the_units_and_the_plist_parse() {
    let files = files();
    for name in [
        "qonto-onedrive.service",
        "qonto-onedrive-sync.service",
        "qonto-onedrive-sync.timer",
        "com.receipt-sync.qonto-onedrive.plist",
    ] {
        assert!(files.contains_key(name), "{name} is in the doc");
    }
    for unit in ["qonto-onedrive.service", "qonto-onedrive-sync.service"] {
        let exec = unit_value(&files[unit], "ExecStart");
        let mut words = exec.split_whitespace();
        assert!(words.next().unwrap().ends_with("/qonto-onedrive"));
        assert_parses(&words.collect::<Vec<_>>()).await;
    }
    let plist = &files["com.receipt-sync.qonto-onedrive.plist"];
    let arguments = &plist[plist.find("<array>").unwrap()..plist.find("</array>").unwrap()];
    let words: Vec<&str> = arguments
        .split("<string>")
        .skip(1)
        .map(|s| s.split("</string>").next().unwrap())
        .collect();
    assert!(words[0].ends_with("/qonto-onedrive"), "{words:?}");
    assert_parses(&words[1..]).await;
}

#[test]
fn the_daemon_unit_keeps_from_restarting_exactly_the_stops_that_need_a_person() {
    let files = files();
    let unit = &files["qonto-onedrive.service"];
    let prevented: BTreeSet<u8> = unit_value(unit, "RestartPreventExitStatus")
        .split_whitespace()
        .map(|code| code.parse().unwrap())
        .collect();
    let expected = needs_a_person();
    assert_eq!(prevented, expected);
    // The codes the doc names, and what they mean, are the command's.
    let codes = exit_codes();
    assert_eq!(
        expected,
        [
            "CONFIG",
            "BAD_CREDENTIALS",
            "CONSENT_REVOKED",
            "DRIVE_FULL",
            "DISK_FULL"
        ]
        .iter()
        .map(|name| codes[*name])
        .collect()
    );
    assert_eq!(unit_value(unit, "Restart"), "on-failure");
    assert!(
        DOC.contains("2 configuration")
            && DOC.contains("3 Qonto refused the API key")
            && DOC.contains("4 the OneDrive sign-in is missing")
            && DOC.contains("5 drive full")
            && DOC.contains("8 local disk full"),
        "the doc's list of stops matches the unit"
    );
}

#[tokio::test]
async fn systemd_analyze_verify_accepts_the_units() {
    let Ok(version) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed; the units were checked only by parsing"
        );
        return;
    };
    assert!(version.status.success());
    let binary = cli_support::binary().await;
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, body) in files() {
        if name.starts_with("qonto-onedrive") {
            // The installed path of the doc, here the command just built.
            let body = body.replace("%h/.cargo/bin/qonto-onedrive", binary.to_str().unwrap());
            let path = dir.path().join(&name);
            std::fs::write(&path, body).unwrap();
            paths.push(path);
        }
    }
    assert_eq!(paths.len(), 3);
    // The system manager's view: a user manager needs a login session to start.
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys are only warned about: any remark is a defect of the doc.
    let remarks: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            paths
                .iter()
                .any(|p| l.contains(&*p.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(remarks.is_empty(), "{stderr}");
}

#[test]
fn the_launchd_plist_is_well_formed() {
    let files = files();
    let plist = &files["com.receipt-sync.qonto-onedrive.plist"];
    assert_balanced(plist);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.plist");
    std::fs::write(&path, plist).unwrap();
    let script = "import plistlib, sys\n\
                  p = plistlib.load(open(sys.argv[1], 'rb'))\n\
                  assert p['Label'] == 'com.receipt-sync.qonto-onedrive'\n\
                  assert p['StartCalendarInterval'] == {'Hour': 23, 'Minute': 30}\n\
                  assert p['ProgramArguments'][1:] == ['sync']\n";
    match std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "plistlib refuses the plist: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("SKIPPED: python3 is not installed; only the tags were checked"),
    }
}

/// Every element closed in order, with nothing but the prolog and doctype outside.
fn assert_balanced(xml: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>').expect("a tag ends");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        match tag.strip_prefix('/') {
            Some(name) => assert_eq!(open.pop(), Some(name), "</{name}> closes the last open tag"),
            None => open.push(tag.split_whitespace().next().unwrap()),
        }
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
}

#[test]
fn the_doc_names_its_files_under_the_paths_it_tells() {
    // A guard against a renamed block that the tests above would silently stop reading.
    let names: BTreeSet<String> = files().into_keys().collect();
    for name in &names {
        assert!(
            DOC.contains(&format!("/{name}`")),
            "{name} has its install path"
        );
    }
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/running-daily.md")
            .exists()
    );
}
