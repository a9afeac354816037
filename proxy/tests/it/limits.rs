//! The connection limit answers "too many connections": 53300 to a
//! PostgreSQL client, 1040 to a MySQL one.

use floe_conformance::Daemon;
use mysql_async::prelude::Queryable;

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

#[tokio::test]
async fn a_mysql_client_over_the_limit_gets_1040_too_many_connections() {
    let daemon = Daemon::start(options().env("FLOE_SERVER_MAX_CONNECTIONS", "1"));
    let mut first = crate::mysql::connect(&daemon).await;
    let refused = mysql_async::Conn::new(crate::mysql::opts(&daemon)).await;
    match refused {
        // Sent in place of the greeting, as MySQL does: a code and a
        // message, no SQLSTATE (the client's capabilities are not known yet).
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!((e.code, e.message.as_str()), (1040, "Too many connections"));
        }
        other => panic!("expected error 1040, got {other:?}"),
    }
    first
        .query_drop("SELECT 1")
        .await
        .expect("the first client still works");
}
