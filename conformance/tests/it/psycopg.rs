//! psycopg 3 from a venv made by the test command.

use std::path::Path;

use crate::{DEMO_ROWS, demo_daemon, python, run, success};

#[test]
fn psycopg_suite_passes() {
    let daemon = demo_daemon();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/psycopg_suite.py");
    let python = python();
    let output = run(
        python.to_str().expect("utf-8 path"),
        &[
            script.to_str().expect("utf-8 path"),
            &daemon.pg_url("floe"),
            &DEMO_ROWS.to_string(),
        ],
        &[],
    );
    let out = success(&output, "psycopg suite");
    assert!(out.contains("psycopg suite: ok"), "{out}");
}
