//! The connection limit answers "too many connections" with 53300.

use floe_conformance::Daemon;

use crate::options;

#[tokio::test]
async fn connection_over_the_limit_gets_53300_and_a_freed_slot_is_reused() {
    let daemon = Daemon::start(options().env("FLOE_SERVER_MAX_CONNECTIONS", "2"));
    let first = daemon.connect().await;
    let second = daemon.connect().await;
    let err = daemon
        .try_connect(&daemon.pg_config("floe"))
        .await
        .expect_err("over the limit");
    assert_eq!(err.code().map(|c| c.code()), Some("53300"), "{err}");
    first
        .simple_query("SELECT 1")
        .await
        .expect("first still works");
    drop(first);
    let ok = floe_conformance::eventually(std::time::Duration::from_secs(10), || async {
        daemon.try_connect(&daemon.pg_config("floe")).await.is_ok()
    })
    .await;
    assert!(ok, "a freed slot is given to the next client");
    second
        .simple_query("SELECT 1")
        .await
        .expect("second still works");
}
