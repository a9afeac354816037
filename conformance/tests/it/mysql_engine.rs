//! Real MySQL clients reading a MySQL engine through Floe's pass-through:
//! the mysql CLI (Debian's mariadb-client), PyMySQL and
//! mysql-connector-python get the same rows and column types as from the
//! server itself. PyMySQL ends results with EOF packets (no
//! `CLIENT_DEPRECATE_EOF`), mysql_async (in the proxy's tests) with OK ones.
//!
//! Server: `FLOE_TEST_MYSQL` (default `mysql://root@127.0.0.1:3306/test`).

use std::path::Path;

use floe_conformance::{Daemon, DaemonOptions};

use crate::{python, run, success};

/// The test server's host, port, user and database, from its URL.
fn server() -> (String, String, String, String) {
    let url = std::env::var("FLOE_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let rest = url
        .strip_prefix("mysql://")
        .unwrap_or_else(|| panic!("FLOE_TEST_MYSQL is not a mysql:// URL: {url}"));
    let (user, rest) = rest.split_once('@').unwrap_or(("root", rest));
    let (address, db) = rest.split_once('/').unwrap_or((rest, "test"));
    let (host, port) = address.split_once(':').unwrap_or((address, "3306"));
    (
        host.to_owned(),
        port.to_owned(),
        user.to_owned(),
        db.to_owned(),
    )
}

fn mysql_cli(host: &str, port: &str, user: &str, sql: &str) -> String {
    let output = run(
        "mysql",
        &[
            "--protocol=TCP",
            "-h",
            host,
            "-P",
            port,
            "-u",
            user,
            "-B",
            "-e",
            sql,
        ],
        &[],
    );
    success(&output, sql)
}

#[test]
fn mysql_clients_read_a_mysql_engine_as_they_read_the_server() {
    let (host, port, user, db) = server();
    let daemon = Daemon::start(DaemonOptions::new(floe_conformance::floe_bin()).config(&format!(
        "[[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"mysql://{user}@{host}:{port}/{db}\"\n"
    )));
    let floe = daemon.mysql.expect("the daemon listens for MySQL");
    let floe_host = floe.ip().to_string();
    let floe_port = floe.port().to_string();

    // The Python suite creates its table on the server first.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/mysql_engine_suite.py");
    let python = python();
    let output = run(
        python.to_str().expect("utf-8 path"),
        &[
            script.to_str().expect("utf-8 path"),
            &floe_host,
            &floe_port,
            &host,
            &port,
            &user,
            &db,
        ],
        &[],
    );
    let out = success(&output, "MySQL engine Python suite");
    for driver in ["pymysql", "mysql.connector", "mysql.connector prepared"] {
        assert!(out.contains(&format!("{driver}: ok")), "{out}");
    }

    // The CLI prints what it was sent: the same text both ways.
    for sql in [
        format!("SELECT * FROM {db}.pass_py ORDER BY id"),
        format!("SELECT seq, seq / 7 FROM {db}.seq_1_to_500"),
    ] {
        let direct = mysql_cli(&host, &port, &user, &sql);
        let through = mysql_cli(&floe_host, &floe_port, "floe", &sql);
        assert_eq!(through, direct, "{sql}");
    }
    assert!(
        daemon.metric("floe_engine_passthrough_statements_total{engine=\"maria\"}") >= 8.0,
        "the reads passed through"
    );
}
