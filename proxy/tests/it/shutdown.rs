//! SIGTERM drains: running statements finish, new connections are refused.

use std::time::Duration;

use floe_conformance::Daemon;

use crate::options;

#[tokio::test]
async fn sigterm_lets_the_running_query_finish_and_refuses_new_connections() {
    let mut daemon = Daemon::start(options());
    let client = daemon.connect().await;
    // About a second of work on the embedded engine.
    let running = tokio::spawn(async move {
        client
            .query_one(
                "SELECT count(*) FROM generate_series(1, 3000) a, generate_series(1, 3000) b WHERE a.value + b.value > 0",
                &[],
            )
            .await
            .map(|row| row.get::<_, i64>(0))
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    daemon.terminate();
    let count = running
        .await
        .expect("task")
        .expect("the running query completes during the drain");
    assert_eq!(count, 9_000_000);
    let refused = floe_conformance::eventually(Duration::from_secs(10), || async {
        daemon.try_connect(&daemon.pg_config("floe")).await.is_err()
    })
    .await;
    assert!(refused, "new connections are refused while draining");
    let status = daemon
        .wait(Duration::from_secs(20))
        .expect("the daemon exits after the drain");
    assert!(status.success(), "clean exit: {status}");
}
