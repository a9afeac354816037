//! Cancel requests stop the running statement with 57014.

use std::time::Duration;

use futures::StreamExt;

use crate::demo_daemon;

#[tokio::test]
async fn cancel_request_stops_a_running_query() {
    // Its own daemon: on the shared one, the other tests' heavy queries compete
    // for the same two runtime threads (see the note in ARCHITECTURE.md).
    let daemon = crate::plain_daemon("");
    let client = daemon.connect().await;
    let token = client.cancel_token();
    // 10^10 pairs: runs for far longer than the test.
    let query = tokio::spawn(async move {
        client
            .simple_query(
                "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b \
                 WHERE a.value + b.value < 0",
            )
            .await
    });
    // As with PostgreSQL, a cancel request that arrives before the server has
    // started the statement is ignored; clients send it again, and so does this.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !query.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the query did not stop after cancel requests"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        token
            .cancel_query(tokio_postgres::NoTls)
            .await
            .expect("send cancel request");
    }
    let result = query.await.expect("task");
    let err = result.expect_err("cancelled query fails");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
}

#[tokio::test]
async fn cancel_request_stops_a_streaming_result() {
    let daemon = demo_daemon();
    let client = daemon.connect().await;
    let token = client.cancel_token();
    // 263 M rows: minutes of streaming unless the cancel stops it.
    let statement = client
        .prepare("SELECT a.trip_id FROM demo.trips a, demo.zones b")
        .await
        .expect("prepare");
    let stream = client
        .query_raw(&statement, Vec::<i64>::new())
        .await
        .expect("start streaming");
    let mut stream = std::pin::pin!(stream);
    let mut rows = 0u64;
    let err = loop {
        match stream.next().await {
            Some(Ok(_)) => {
                rows += 1;
                if rows == 1000 {
                    token
                        .cancel_query(tokio_postgres::NoTls)
                        .await
                        .expect("send cancel");
                }
            }
            Some(Err(e)) => break e,
            None => panic!("the result ended without being cancelled after {rows} rows"),
        }
    };
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(rows >= 1000);
}

#[tokio::test]
async fn ten_million_row_result_streams_without_being_held_in_memory() {
    let daemon = demo_daemon();
    let client = daemon.connect().await;
    let before = crate::peak_rss_kib(daemon.pid());
    // 1 M trips × 10 zones: 10 M rows, about 200 MB as PostgreSQL data rows.
    let statement = client
        .prepare(
            "SELECT a.trip_id, b.zone_id FROM demo.trips a, demo.zones b WHERE b.zone_id <= 10",
        )
        .await
        .expect("prepare");
    let stream = client
        .query_raw(&statement, Vec::<i64>::new())
        .await
        .expect("start streaming");
    let mut stream = std::pin::pin!(stream);
    let (mut rows, mut sum) = (0u64, 0i64);
    while let Some(row) = stream.next().await {
        let row = row.expect("row");
        rows += 1;
        sum += row.get::<_, i64>(0);
    }
    assert_eq!(rows, 10 * crate::DEMO_ROWS);
    assert_eq!(
        sum,
        10 * (crate::DEMO_ROWS as i64) * (crate::DEMO_ROWS as i64 + 1) / 2
    );
    let grown_mib = crate::peak_rss_kib(daemon.pid()).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 128,
        "the daemon's peak memory grew by {grown_mib} MiB while streaming"
    );
}

#[tokio::test]
async fn session_statement_timeout_cancels_a_long_query() {
    // Its own daemon, for the reason given in cancel_request_stops_a_running_query.
    let daemon = crate::plain_daemon("");
    let client = daemon.connect().await;
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .expect("SET");
    let err = client
        .simple_query(
            "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b \
             WHERE a.value + b.value < 0",
        )
        .await
        .expect_err("times out");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    let message = err
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(message.contains("statement timeout"), "{message}");
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .expect("reset");
    client.simple_query("SELECT 1").await.expect("usable");
    let err = client
        .batch_execute("SET statement_timeout = 'soon'")
        .await
        .expect_err("bad value");
    assert_eq!(err.code().map(|c| c.code()), Some("22023"), "{err}");
}
