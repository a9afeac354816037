//! TLS on the PostgreSQL front end, with a self-signed certificate made here.

use floe_conformance::{Daemon, DaemonOptions, floe_bin};

use crate::success;

/// The daemon, and the directory holding its certificate.
fn tls_daemon(required: bool) -> (Daemon, tempfile::TempDir) {
    let certs = tempfile::tempdir().expect("temp dir");
    let dir = certs.path();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("self-signed certificate");
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let daemon = Daemon::start(DaemonOptions::new(floe_bin()).config(&format!(
        "[postgres]\ntls_cert = {cert_path:?}\ntls_key = {key_path:?}\ntls_required = {required}\n"
    )));
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
