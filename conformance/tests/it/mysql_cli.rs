//! The `mysql` command-line client (Debian's mariadb-client).

use crate::{demo_daemon, run, success};

fn mysql(args: &[&str]) -> std::process::Output {
    let daemon = demo_daemon();
    let addr = daemon.mysql.expect("the daemon listens for MySQL");
    let port = addr.port().to_string();
    let mut all = vec![
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        "floe",
    ];
    all.extend_from_slice(args);
    run("mysql", &all, &[])
}

#[test]
fn mysql_cli_runs_queries_and_lists_tables() {
    let out = success(
        &mysql(&["-N", "-B", "-e", "SHOW TABLES FROM demo"]),
        "SHOW TABLES",
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["trips", "zones"]);
    let out = success(
        &mysql(&[
            "-N",
            "-B",
            "demo",
            "-e",
            "SELECT count(*) FROM zones; SELECT 1 + 1",
        ]),
        "queries in a database",
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["263", "2"]);
    let out = success(
        &mysql(&["-B", "-e", "SELECT @@version_comment AS c, NULL AS n"]),
        "variables",
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["c\tn", "Floe\tNULL"]);
}

#[test]
fn mysql_cli_shows_the_error_code() {
    let output = mysql(&["-e", "SELECT * FROM demo.nowhere"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ERROR 1146 (42S02)"), "{stderr}");
}
