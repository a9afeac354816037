//! PyMySQL and mysql-connector-python from the test venv.

use std::path::Path;

use crate::{demo_daemon, python, run, success};

#[test]
fn python_mysql_connectors_pass() {
    let daemon = demo_daemon();
    let addr = daemon.mysql.expect("the daemon listens for MySQL");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/mysql_suite.py");
    let python = python();
    let output = run(
        python.to_str().expect("utf-8 path"),
        &[
            script.to_str().expect("utf-8 path"),
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ],
        &[],
    );
    let out = success(&output, "MySQL Python suite");
    assert!(out.contains("pymysql: ok"), "{out}");
    assert!(out.contains("mysql.connector: ok"), "{out}");
}
