//! Arrow → PostgreSQL type mapping, with NULLs, in text (simple protocol) and
//! binary (extended protocol) result formats.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use tokio_postgres::types::Type;

use crate::demo_daemon;

/// One value of every mapped type, then a row of NULLs of the same types.
const ALL_TYPES: &str = "SELECT * FROM (VALUES \
    (true, CAST(1 AS SMALLINT), CAST(2 AS INT), CAST(3 AS BIGINT), CAST(1.5 AS REAL), CAST(2.25 AS DOUBLE), \
     CAST(12345.67 AS DECIMAL(10, 2)), CAST('text' AS VARCHAR), CAST(X'DEADBEEF' AS BYTEA), \
     CAST('2024-02-29' AS DATE), CAST('13:14:15' AS TIME), CAST('2024-02-29 13:14:15.123456' AS TIMESTAMP), \
     CAST('2024-02-29T13:14:15Z' AS TIMESTAMP WITH TIME ZONE), INTERVAL '1 day 2 hours', \
     make_array(1, 2, 3), make_array('a', 'b')), \
    (CAST(NULL AS BOOLEAN), CAST(NULL AS SMALLINT), CAST(NULL AS INT), CAST(NULL AS BIGINT), CAST(NULL AS REAL), \
     CAST(NULL AS DOUBLE), CAST(NULL AS DECIMAL(10, 2)), CAST(NULL AS VARCHAR), CAST(NULL AS BYTEA), \
     CAST(NULL AS DATE), CAST(NULL AS TIME), CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP WITH TIME ZONE), \
     CAST(NULL AS INTERVAL), CAST(NULL AS INT[]), CAST(NULL AS VARCHAR[])) \
    ) AS t(b, i2, i4, i8, f4, f8, num, txt, bin, d, tm, ts, tstz, iv, ints, strs)";

#[tokio::test]
async fn every_mapped_type_and_null_in_binary_format() {
    let client = demo_daemon().connect().await;
    let statement = client.prepare(ALL_TYPES).await.expect("prepare");
    let types: Vec<Type> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            Type::BOOL,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::NUMERIC,
            Type::TEXT,
            Type::BYTEA,
            Type::DATE,
            Type::TIME,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ,
            Type::INTERVAL,
            Type::INT8_ARRAY,
            Type::TEXT_ARRAY,
        ]
    );
    let rows = client.query(&statement, &[]).await.expect("execute");
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert!(r.get::<_, bool>(0));
    assert_eq!(r.get::<_, i16>(1), 1);
    assert_eq!(r.get::<_, i32>(2), 2);
    assert_eq!(r.get::<_, i64>(3), 3);
    assert_eq!(r.get::<_, f32>(4), 1.5);
    assert_eq!(r.get::<_, f64>(5), 2.25);
    assert_eq!(r.get::<_, String>(7), "text");
    assert_eq!(r.get::<_, Vec<u8>>(8), vec![0xde, 0xad, 0xbe, 0xef]);
    let date = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
    assert_eq!(r.get::<_, NaiveDate>(9), date);
    assert_eq!(
        r.get::<_, NaiveTime>(10),
        NaiveTime::from_hms_opt(13, 14, 15).expect("time")
    );
    assert_eq!(
        r.get::<_, NaiveDateTime>(11),
        date.and_hms_micro_opt(13, 14, 15, 123_456)
            .expect("timestamp")
    );
    assert_eq!(
        r.get::<_, DateTime<Utc>>(12),
        date.and_hms_opt(13, 14, 15).expect("timestamp").and_utc()
    );
    assert_eq!(r.get::<_, Vec<i64>>(14), vec![1, 2, 3]);
    assert_eq!(r.get::<_, Vec<String>>(15), vec!["a", "b"]);
    let nulls = &rows[1];
    for i in 0..nulls.len() {
        let raw: Option<RawValue> = nulls.get(i);
        assert!(raw.is_none(), "column {i} of the NULL row is not NULL");
    }
}

#[tokio::test]
async fn every_mapped_type_and_null_in_text_format() {
    let client = demo_daemon().connect().await;
    let messages = client.simple_query(ALL_TYPES).await.expect("query");
    let rows = crate::text_rows(&messages);
    assert_eq!(rows.len(), 2);
    let text: Vec<&str> = rows[0]
        .iter()
        .map(|v| v.as_deref().unwrap_or("NULL"))
        .collect();
    assert_eq!(
        text,
        vec![
            "t",
            "1",
            "2",
            "3",
            "1.5",
            "2.25",
            "12345.67",
            "text",
            "\\xdeadbeef",
            "2024-02-29",
            // arrow-pg always prints six fractional digits: valid PostgreSQL
            // input, though PostgreSQL itself omits a zero fraction.
            "13:14:15.000000",
            "2024-02-29 13:14:15.123456",
            "2024-02-29 13:14:15.000000+00",
            "1 day 02:00:00",
            "{1,2,3}",
            "{a,b}",
        ]
    );
    assert!(rows[1].iter().all(Option::is_none), "{:?}", rows[1]);
}

/// Accepts any type and keeps nothing: only whether the value was NULL.
struct RawValue;

impl<'a> tokio_postgres::types::FromSql<'a> for RawValue {
    fn from_sql(_: &Type, _: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
