//! Cancel requests stop the running statement with 57014.

use std::time::Duration;

use futures::StreamExt;

use crate::demo_daemon;

#[tokio::test]
async fn cancel_request_stops_a_running_query() {
    let daemon = demo_daemon();
    let client = daemon.connect().await;
    let token = client.cancel_token();
    // A cross join of the demo table with itself runs for far longer than the test.
    let query = tokio::spawn(async move {
        client
            .simple_query(
                "SELECT count(*) FROM demo.trips a, demo.trips b WHERE a.fare + b.fare < 0",
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("send cancel request");
    let result = tokio::time::timeout(Duration::from_secs(30), query)
        .await
        .expect("the query stops soon after the cancel")
        .expect("task");
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
