//! The same queries through all three front ends give the same values.

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use mysql_async::prelude::*;

use crate::demo_daemon;

/// Queries every front end accepts as written and whose meaning is the same
/// in every dialect (`7 / 2` is not: 3 in PostgreSQL, 3.5 in MySQL, and each
/// front end gives its own dialect's answer).
const QUERIES: &[&str] = &[
    "SELECT count(*), sum(passengers), min(trip_id), max(trip_id) FROM demo.trips",
    "SELECT zone_id, name, borough FROM demo.zones ORDER BY zone_id LIMIT 25",
    "SELECT borough, count(*) AS n FROM demo.zones GROUP BY borough ORDER BY borough",
    "SELECT payment, count(*), sum(fare) FROM demo.trips GROUP BY payment ORDER BY payment",
    "SELECT trip_id, pickup_date, distance_km FROM demo.trips WHERE trip_id < 20 ORDER BY trip_id",
    "SELECT 15 / 3, 7 % 3, concat('a', 'b'), NULL, CAST(2.5 AS DOUBLE) * 2",
];

pub(crate) type Table = Vec<Vec<Option<String>>>;

/// One spelling per value: booleans as 0/1, numbers without trailing zeros
/// after the point.
pub(crate) fn canonical(value: Option<String>) -> Option<String> {
    value.map(|v| match v.as_str() {
        "t" | "true" => "1".to_owned(),
        "f" | "false" => "0".to_owned(),
        _ if v.contains('.') && v.parse::<f64>().is_ok() => {
            v.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        _ => v,
    })
}

async fn postgres(daemon: &floe_conformance::Daemon, sql: &str) -> Table {
    let client = daemon.connect().await;
    let messages = client.simple_query(sql).await.expect(sql);
    crate::text_rows(&messages)
        .into_iter()
        .map(|row| row.into_iter().map(canonical).collect())
        .collect()
}

pub(crate) async fn mysql(conn: &mut mysql_async::Conn, sql: &str) -> Table {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.expect(sql);
    rows.into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    canonical(match row.as_ref(i) {
                        Some(mysql_async::Value::NULL) | None => None,
                        Some(mysql_async::Value::Bytes(b)) => {
                            Some(String::from_utf8_lossy(b).into_owned())
                        }
                        Some(other) => Some(other.as_sql(true)),
                    })
                })
                .collect()
        })
        .collect()
}

async fn flight(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> Table {
    let batches = crate::flight::query(client, sql).await;
    let options = FormatOptions::default();
    let mut table = Vec::new();
    for batch in &batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            table.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(column, f)| {
                        let null = column.is_null(row)
                            || column.data_type() == &arrow::datatypes::DataType::Null;
                        canonical((!null).then(|| f.value(row).to_string()))
                    })
                    .collect(),
            );
        }
    }
    table
}

#[tokio::test]
async fn three_front_ends_return_identical_values() {
    let daemon = demo_daemon();
    let mut my = crate::mysql::connect(daemon).await;
    let mut fl = crate::flight::client(daemon).await;
    for sql in QUERIES {
        let pg = postgres(daemon, sql).await;
        assert!(!pg.is_empty(), "{sql}");
        assert_eq!(mysql(&mut my, sql).await, pg, "MySQL vs PostgreSQL: {sql}");
        assert_eq!(
            flight(&mut fl, sql).await,
            pg,
            "Flight SQL vs PostgreSQL: {sql}"
        );
    }
}
