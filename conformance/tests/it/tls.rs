//! TLS on the PostgreSQL, MySQL and Flight SQL front ends, with a self-signed
//! certificate made here.

use floe_conformance::{Daemon, DaemonOptions, floe_bin};

use crate::success;

/// The daemon, and the directory holding its certificate (`server.crt`).
fn tls_daemon(required: bool) -> (Daemon, tempfile::TempDir) {
    tls_daemon_with(|cert, key| {
        format!(
            "[postgres]\ntls_cert = {cert:?}\ntls_key = {key:?}\ntls_required = {required}\n\n\
             [mysql]\ntls_cert = {cert:?}\ntls_key = {key:?}\ntls_required = {required}\n"
        )
    })
}

/// A daemon whose configuration `config` writes from the certificate and key paths.
fn tls_daemon_with(
    config: impl Fn(&std::path::Path, &std::path::Path) -> String,
) -> (Daemon, tempfile::TempDir) {
    let certs = tempfile::tempdir().expect("temp dir");
    let dir = certs.path();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("self-signed certificate");
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let daemon =
        Daemon::start(DaemonOptions::new(floe_bin()).config(&config(&cert_path, &key_path)));
    (daemon, certs)
}

fn psql(daemon: &Daemon, sslmode: &str, sql: &str) -> std::process::Output {
    crate::psql(daemon, sslmode, &["-At", "-c", sql])
}

#[test]
fn sslmode_require_connects_over_tls() {
    let (daemon, _certs) = tls_daemon(false);
    let out = success(
        &psql(&daemon, "require", "SELECT 'secure'"),
        "psql sslmode=require",
    );
    assert_eq!(out.trim(), "secure");
    // `sslmode=disable` is still allowed unless TLS is required.
    let out = success(
        &psql(&daemon, "disable", "SELECT 'plain'"),
        "psql sslmode=disable",
    );
    assert_eq!(out.trim(), "plain");
}

#[test]
fn tls_required_refuses_plain_connections() {
    let (daemon, _certs) = tls_daemon(true);
    let output = psql(&daemon, "disable", "SELECT 1");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SSL"), "{stderr}");
    let out = success(
        &psql(&daemon, "require", "SELECT 2"),
        "psql sslmode=require",
    );
    assert_eq!(out.trim(), "2");
}

/// The mysql CLI against the daemon, with `tls` options.
fn mysql(daemon: &Daemon, tls: &[&str], sql: &str) -> std::process::Output {
    let port = daemon.mysql.expect("mysql listener").port().to_string();
    let mut args = vec![
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        "floe",
        "-N",
        "-B",
    ];
    args.extend_from_slice(tls);
    args.extend_from_slice(&["-e", sql]);
    crate::run("mysql", &args, &[])
}

#[test]
fn mysql_clients_switch_to_tls_and_verify_the_certificate() {
    let (daemon, certs) = tls_daemon(false);
    let ca = certs.path().join("server.crt");
    let ca_arg = format!("--ssl-ca={}", ca.display());
    let out = success(
        &mysql(
            &daemon,
            &["--ssl", &ca_arg, "--ssl-verify-server-cert"],
            "SELECT 'secure'",
        ),
        "mysql --ssl",
    );
    assert_eq!(out.trim(), "secure");
    let out = success(
        &mysql(&daemon, &["--skip-ssl"], "SELECT 'plain'"),
        "mysql --skip-ssl",
    );
    assert_eq!(out.trim(), "plain");
}

#[test]
fn mysql_tls_required_refuses_plain_logins() {
    let (daemon, _certs) = tls_daemon(true);
    let output = mysql(&daemon, &["--skip-ssl"], "SELECT 1");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1045"), "{stderr}");
    let out = success(&mysql(&daemon, &["--ssl"], "SELECT 2"), "mysql --ssl");
    assert_eq!(out.trim(), "2");
}

#[test]
fn flight_sql_serves_grpc_over_tls() {
    let (daemon, certs) = tls_daemon_with(|cert, key| {
        format!("[flight_sql]\ntls_cert = {cert:?}\ntls_key = {key:?}\n")
    });
    let addr = daemon.flight_sql.expect("flight listener");
    let ca = certs.path().join("server.crt");
    let script = r#"
import sys, warnings
warnings.simplefilter("ignore")
import adbc_driver_flightsql as fs
import adbc_driver_flightsql.dbapi as flightsql
uri, ca = sys.argv[1], sys.argv[2]
kwargs = {fs.DatabaseOptions.TLS_ROOT_CERTS.value: open(ca).read()} if ca else {}
with flightsql.connect(uri, db_kwargs=kwargs) as conn, conn.cursor() as cur:
    cur.execute("SELECT 'secure' AS s")
    print(cur.fetchone()[0])
"#;
    let python = crate::python();
    let python = python.to_str().expect("utf-8 path");
    let out = success(
        &crate::run(
            python,
            &[
                "-c",
                script,
                &format!("grpc+tls://{addr}"),
                ca.to_str().expect("utf-8 path"),
            ],
            &[],
        ),
        "ADBC over TLS",
    );
    assert_eq!(out.trim(), "secure");
    // A plain-text client cannot talk to the TLS listener.
    let plain = crate::run(python, &["-c", script, &format!("grpc://{addr}"), ""], &[]);
    assert!(
        !plain.status.success(),
        "plain gRPC must fail against the TLS listener"
    );
}
