//! The admin listener: metrics, health, readiness, inventory.

use crate::demo_daemon;

#[tokio::test]
async fn metrics_count_queries_by_protocol_and_outcome() {
    let daemon = demo_daemon();
    let client = daemon.connect().await;
    client.simple_query("SELECT 1").await.expect("query");
    let _ = client.simple_query("SELECT * FROM nope").await;
    let (status, body) = daemon.admin_get("/metrics");
    assert_eq!(status, 200);
    for needle in [
        "floe_queries_total{protocol=\"postgres\",kind=\"read\",outcome=\"ok\"}",
        "floe_connections_total{protocol=\"postgres\"}",
        "floe_connections_active{protocol=\"postgres\"}",
        "floe_query_duration_seconds_bucket",
        "floe_rows_returned_total{protocol=\"postgres\"}",
    ] {
        assert!(body.contains(needle), "/metrics lacks {needle}:\n{body}");
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let daemon = demo_daemon();
    assert_eq!(daemon.admin_get("/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(daemon.admin_get("/readyz"), (200, "ready\n".to_owned()));
}
