//! `qonto-onedrive <command> --help` lists what the command uses and nothing else, with
//! the defaults stated; bad `--tz` and `--since` values are refused with a way out.
#![cfg(feature = "testkit")]

mod cli_support;

/// Runs the example with a clean environment: exit code, stdout, stderr.
async fn run(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(cli_support::binary().await)
        .args(args)
        .env_clear()
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const QONTO: &[&str] = &[
    "QONTO_LOGIN",
    "QONTO_SECRET_KEY",
    "QONTO_API_BASE",
    "QONTO_STAGING_TOKEN",
];
const SIGN_IN: &[&str] = &["MS_CLIENT_ID", "MS_APP_NAME", "MS_TENANT", "MS_LOGIN_BASE"];
const GRAPH: &[&str] = &["GRAPH_API_BASE", "ONEDRIVE_REFRESH_TOKEN"];
const ARCHIVE: &[&str] = &["--local"];
const PASS: &[&str] = &["--since", "--concurrency"];

/// Each command: what its help must show, and what it must not.
fn table() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    let all = |groups: &[&[&'static str]]| groups.concat();
    vec![
        (
            "login",
            all(&[
                SIGN_IN,
                &["GRAPH_API_BASE", "--device-code", "--grant-files-readwrite"],
            ]),
            all(&[QONTO, &["ONEDRIVE_REFRESH_TOKEN"], ARCHIVE, PASS]),
        ),
        (
            "sync",
            all(&[QONTO, SIGN_IN, GRAPH, ARCHIVE, PASS, &["--rebind"]]),
            vec![],
        ),
        (
            "daemon",
            all(&[QONTO, SIGN_IN, GRAPH, ARCHIVE, PASS, &["--at", "--tz"]]),
            vec!["--rebind"],
        ),
        (
            "plan",
            all(&[QONTO, SIGN_IN, GRAPH, ARCHIVE, &["--since"]]),
            vec!["--concurrency", "--rebind"],
        ),
        (
            "status",
            all(&[SIGN_IN, GRAPH, ARCHIVE]),
            all(&[QONTO, PASS]),
        ),
        (
            "reset",
            all(&[QONTO, ARCHIVE, &["--yes", "--since"]]),
            vec!["--concurrency", "--rebind"],
        ),
        (
            "share",
            all(&[SIGN_IN, GRAPH, ARCHIVE, &["--email"]]),
            all(&[QONTO, PASS]),
        ),
        (
            "disconnect",
            vec![],
            all(&[QONTO, SIGN_IN, GRAPH, ARCHIVE, PASS]),
        ),
    ]
}

#[tokio::test]
async fn each_command_lists_only_the_options_it_uses() {
    for (command, shown, hidden) in table() {
        let (code, help, _) = run(&[command, "--help"]).await;
        assert_eq!(code, 0, "{command} --help");
        for word in shown
            .iter()
            .chain(&["--json", "RECEIPT_SYNC_HOME", "--home"])
        {
            assert!(
                help.contains(word),
                "{command} --help shows {word}:\n{help}"
            );
        }
        for word in hidden {
            assert!(
                !help.contains(word),
                "{command} --help does not show {word}:\n{help}"
            );
        }
    }
}

#[tokio::test]
async fn the_defaults_are_stated() {
    let (_, sync, _) = run(&["sync", "--help"]).await;
    assert!(
        sync.contains("When omitted: the start date stored by the first sync, or, on a first sync, the whole history"),
        "{sync}"
    );
    assert!(sync.contains("[default: 8]"), "{sync}");
    assert!(
        sync.contains("[default: https://thirdparty.qonto.com]"),
        "{sync}"
    );
    let (_, daemon, _) = run(&["daemon", "--help"]).await;
    assert!(daemon.contains("[default: 23:30]"), "{daemon}");
    assert!(daemon.contains("[default: Europe/Paris]"), "{daemon}");
    let (_, login, _) = run(&["login", "--help"]).await;
    assert!(
        login.contains("receipt-sync"),
        "the home's default: {login}"
    );
}

/// The variables table of the getting-started guide: each variable that has a flag is
/// read by at least one command under that flag.
#[tokio::test]
async fn every_variable_of_the_guide_has_the_flag_it_names() {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/getting-started.md"),
    )
    .unwrap();
    let mut helps = String::new();
    for (command, _, _) in table() {
        helps.push_str(&run(&[command, "--help"]).await.1);
    }
    let mut checked = 0;
    for row in guide.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
        let (variable, flag) = (cells[1], cells[2]);
        if flag.starts_with("--") {
            assert!(
                helps.contains(&format!("{flag} ")) && helps.contains(&format!("[env: {variable}")),
                "{variable} is read as {flag}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "the table has a flag column ({checked} flags)"
    );
}

#[tokio::test]
async fn a_wrong_time_zone_gets_its_iana_name() {
    let (code, _, stderr) = run(&["daemon", "--tz", "paris"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("did you mean Europe/Paris?"), "{stderr}");
    let (code, _, stderr) = run(&["daemon", "--tz", "new york"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("America/New_York"), "{stderr}");
    let (code, _, stderr) = run(&["daemon", "--tz", "Nowhere/Atall"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("IANA name"), "{stderr}");
}

#[tokio::test]
async fn a_start_date_in_the_future_is_refused() {
    let later = (chrono::Local::now().date_naive() + chrono::TimeDelta::days(2)).to_string();
    for command in ["sync", "plan", "reset", "daemon"] {
        let (code, stdout, stderr) = run(&[command, "--since", &later]).await;
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(stderr.contains("is in the future"), "{command}: {stderr}");
        assert!(stdout.is_empty());
    }
}
