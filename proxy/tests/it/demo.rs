//! The demo dataset: deterministic content, many data files, many snapshots.

use crate::{DEMO_ROWS, demo_daemon};

/// The aggregates of `demo.trips` computed here from the documented formulas,
/// independently of any engine.
fn expected() -> (i64, i64, i64, i64) {
    let (mut zones, mut passengers, mut fare_cents, mut cash) = (0i64, 0i64, 0i64, 0i64);
    for n in 1..=DEMO_ROWS as i64 {
        zones += 1 + (n * 2_654_435_761) % 263;
        passengers += 1 + (n * 31) % 5;
        fare_cents += 250 + ((n * 7919) % 40_000) * 2;
        if n % 4 == 1 {
            cash += 1;
        }
    }
    (zones, passengers, fare_cents, cash)
}

#[tokio::test]
async fn demo_trips_content_matches_its_checksum() {
    let client = demo_daemon().connect().await;
    let row = client
        .query_one(
            "SELECT count(*), sum(zone_id), sum(passengers), CAST(sum(fare) * 100 AS BIGINT), \
                    sum(CASE WHEN payment = 'cash' THEN 1 ELSE 0 END), min(trip_id), max(trip_id) \
             FROM demo.trips",
            &[],
        )
        .await
        .expect("aggregate");
    let (zones, passengers, fare_cents, cash) = expected();
    assert_eq!(row.get::<_, i64>(0), DEMO_ROWS as i64);
    assert_eq!(row.get::<_, i64>(1), zones);
    assert_eq!(row.get::<_, i64>(2), passengers);
    assert_eq!(row.get::<_, i64>(3), fare_cents);
    assert_eq!(row.get::<_, i64>(4), cash);
    assert_eq!(
        (row.get::<_, i64>(5), row.get::<_, i64>(6)),
        (1, DEMO_ROWS as i64)
    );
    let zones: i64 = client
        .query_one("SELECT count(*) FROM demo.zones", &[])
        .await
        .expect("zones")
        .get(0);
    assert_eq!(zones, 263);
}

#[tokio::test]
async fn demo_trips_has_many_small_files_and_many_snapshots() {
    let daemon = demo_daemon();
    let (status, body) = daemon.admin_get("/api/tables");
    assert_eq!(status, 200, "{body}");
    let inventory: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let trips = inventory[0]["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["namespace"] == "demo" && t["name"] == "trips")
        .expect("demo.trips in the inventory")
        .clone();
    assert_eq!(trips["records"], DEMO_ROWS);
    assert!(
        trips["snapshots"].as_u64().expect("snapshots") >= 100,
        "{trips}"
    );
    assert!(
        trips["data_files"].as_u64().expect("files") >= 100,
        "{trips}"
    );
    // The same through SQL, from Iceberg's own metadata table.
    let client = daemon.connect().await;
    let snapshots: i64 = client
        .query_one(
            "SELECT count(snapshot_id) FROM demo.\"trips$snapshots\"",
            &[],
        )
        .await
        .expect("snapshots metadata table")
        .get(0);
    assert!(snapshots >= 100);
}
