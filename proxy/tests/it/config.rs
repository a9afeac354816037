//! Configuration errors stop start-up with the key's name and a reason.

use std::process::{Command, Output};

/// Runs `floe <args> <file>` with `toml` written to the file.
fn floe_with_file(args: &[&str], toml: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("floe.toml");
    std::fs::write(&path, toml).expect("write config");
    Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(args)
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .expect("run floe")
}

#[test]
fn config_check_reports_the_unknown_key_and_its_line() {
    let output = floe_with_file(
        &["config", "check"],
        "[listen]\npostgres = \"127.0.0.1:15432\"\nadmn = \"127.0.0.1:1\"\n",
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admn"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn config_check_accepts_a_valid_file() {
    let output = floe_with_file(
        &["config", "check"],
        "[listen]\npostgres = \"127.0.0.1:15432\"\n\n[server]\nmax_connections = 10\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn serve_with_a_bad_value_exits_with_the_key_and_reason() {
    let output = floe_with_file(
        &["serve", "--config"],
        "[server]\nshutdown_timeout = \"whenever\"\n",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("shutdown_timeout"), "{stderr}");
}

/// Runs `floe config show <args>` with `env` set; its stdout, or a panic with its stderr.
fn config_show(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floe"));
    command.args(["config", "show"]).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run floe");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn environment_overrides_reach_the_daemon() {
    let stdout = config_show(
        &[],
        &[
            ("FLOE_SERVER_MAX_CONNECTIONS", "17"),
            ("FLOE_LISTEN_POSTGRES", "127.0.0.1:25432"),
        ],
    );
    assert!(stdout.contains("max_connections = 17"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:25432"), "{stdout}");
}

#[test]
fn data_dir_flag_beats_file_and_environment() {
    let stdout = config_show(
        &["--data-dir", "/srv/lake"],
        &[("FLOE_SERVER_DATA_DIR", "/elsewhere")],
    );
    assert!(stdout.contains("data_dir = \"/srv/lake\""), "{stdout}");
    assert!(stdout.contains("sqlite:///srv/lake/catalog.db"), "{stdout}");
}
