//! ADBC's Flight SQL driver (`adbc-driver-flightsql` + pyarrow) from the test venv.

use std::path::Path;

use crate::{DEMO_ROWS, demo_daemon, python, run, success};

#[test]
fn adbc_flight_sql_suite_passes() {
    let daemon = demo_daemon();
    let addr = daemon
        .flight_sql
        .expect("the daemon listens for Flight SQL");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/adbc_suite.py");
    let python = python();
    let output = run(
        python.to_str().expect("utf-8 path"),
        &[
            script.to_str().expect("utf-8 path"),
            &format!("grpc://{addr}"),
            &DEMO_ROWS.to_string(),
        ],
        &[],
    );
    let out = success(&output, "ADBC suite");
    assert!(out.contains("adbc suite: ok"), "{out}");
}
