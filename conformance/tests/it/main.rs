//! Conformance suites: real client programs (psql, psycopg, the mysql CLI,
//! PyMySQL, mysql-connector-python, ADBC Flight SQL) against the real
//! daemon. The test command (`scripts/test`) installs the clients; a suite whose
//! client is missing fails and says how to install it.

mod adbc;
mod corpus;
mod mysql_cli;
mod mysql_engine;
mod mysql_python;
mod psql;
mod psycopg;
mod tls;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use floe_conformance::{Daemon, DaemonOptions};

/// Rows of demo data in the shared daemon.
pub const DEMO_ROWS: u64 = 200_000;

/// A daemon with demo data, shared by the suites that only read it.
pub fn demo_daemon() -> &'static Daemon {
    static DAEMON: OnceLock<Daemon> = OnceLock::new();
    DAEMON.get_or_init(|| {
        Daemon::start(DaemonOptions::new(floe_conformance::floe_bin()).demo(DEMO_ROWS))
    })
}

/// Runs a client program, failing with a clear message if it is not installed.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(program);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap_or_else(|e| {
        panic!("cannot run {program}: {e}. Install the test clients with `bash scripts/test` (it runs apt-get and pip)")
    })
}

/// Runs psql against `daemon` as user `floe`, with `PGSSLMODE=sslmode` and
/// `args` after the connection options.
pub fn psql(daemon: &Daemon, sslmode: &str, args: &[&str]) -> Output {
    let port = daemon.postgres.port().to_string();
    let mut all = vec![
        "-X",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "floe",
        "-d",
        "floe",
    ];
    all.extend_from_slice(args);
    run("psql", &all, &[("PGSSLMODE", sslmode)])
}

/// The Python interpreter of the test venv (`FLOE_PYTHON`, set by `scripts/test`).
pub fn python() -> PathBuf {
    match std::env::var_os("FLOE_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => panic!(
            "FLOE_PYTHON is not set: run the tests with `bash scripts/test`, which creates the venv with psycopg"
        ),
    }
}

/// stdout as text, panicking with stderr when the program failed.
pub fn success(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
