//! `cargo run --example custom_sink` passes the conformance suite and syncs into its sink.

#[test]
fn the_custom_sink_example_passes_the_suite_and_syncs() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "custom_sink"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Conformance suite"), "{stdout}");
    assert!(stdout.contains("First sync: Sync complete"), "{stdout}");
    assert!(stdout.contains("Second sync: Sync complete"), "{stdout}");
}
