//! The extended query protocol: Parse/Bind/Describe/Execute/Sync, parameters in
//! text and binary, named statements reused.

use tokio_postgres::types::{ToSql, Type};

use crate::demo_daemon;

#[tokio::test]
async fn describe_reports_parameter_and_column_types() {
    let client = demo_daemon().connect().await;
    let statement = client
        .prepare("SELECT trip_id, fare, payment, pickup_at FROM demo.trips WHERE trip_id = $1 AND payment = $2")
        .await
        .expect("prepare");
    assert_eq!(statement.params(), &[Type::INT8, Type::TEXT]);
    let columns: Vec<(&str, &Type)> = statement
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_()))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("trip_id", &Type::INT8),
            ("fare", &Type::NUMERIC),
            ("payment", &Type::TEXT),
            ("pickup_at", &Type::TIMESTAMP),
        ]
    );
}

#[tokio::test]
async fn prepared_statement_is_reused_with_binary_parameters() {
    let client = demo_daemon().connect().await;
    let statement = client
        .prepare("SELECT trip_id, passengers FROM demo.trips WHERE trip_id = $1")
        .await
        .expect("prepare");
    for id in [1i64, 2, 3, 999_999] {
        let row = client.query_one(&statement, &[&id]).await.expect("execute");
        assert_eq!(row.get::<_, i64>(0), id);
        // passengers = 1 + (n * 31) % 5, see demo.rs.
        assert_eq!(row.get::<_, i32>(1) as i64, 1 + (id * 31) % 5);
    }
}

#[tokio::test]
async fn text_format_parameters_with_explicit_types_work() {
    let client = demo_daemon().connect().await;
    // typed_query sends parameter types in Parse; tokio-postgres encodes in binary,
    // so text parameters are exercised through the simple `query` path of psql and
    // psycopg (conformance); here the client-declared types must win.
    let statement = client
        .prepare_typed("SELECT $1 || '-' || $2", &[Type::TEXT, Type::TEXT])
        .await
        .expect("prepare typed");
    let row = client
        .query_one(&statement, &[&"a", &"b"])
        .await
        .expect("execute");
    assert_eq!(row.get::<_, String>(0), "a-b");
}

#[tokio::test]
async fn null_and_typed_parameters_round_trip() {
    let client = demo_daemon().connect().await;
    let statement = client
        .prepare(
            "SELECT $1::BIGINT AS a, $2::DOUBLE PRECISION AS b, $3::TEXT AS c, $4::BOOLEAN AS d",
        )
        .await
        .expect("prepare");
    let params: [&(dyn ToSql + Sync); 4] = [&Some(7i64), &None::<f64>, &Some("x"), &Some(true)];
    let row = client
        .query_one(&statement, &params)
        .await
        .expect("execute");
    assert_eq!(row.get::<_, Option<i64>>(0), Some(7));
    assert_eq!(row.get::<_, Option<f64>>(1), None);
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("x"));
    assert_eq!(row.get::<_, Option<bool>>(3), Some(true));
}

#[tokio::test]
async fn unnamed_statements_and_portals_work_through_query() {
    let client = demo_daemon().connect().await;
    // `query` with a string uses the unnamed statement and portal.
    for n in 0..5i64 {
        let rows = client
            .query(
                "SELECT zone_id FROM demo.zones WHERE zone_id <= $1 ORDER BY zone_id",
                &[&(n as i32)],
            )
            .await
            .expect("query");
        assert_eq!(rows.len() as i64, n);
    }
}

#[tokio::test]
async fn multiple_statements_in_parse_are_rejected() {
    let client = demo_daemon().connect().await;
    let err = client
        .prepare("SELECT 1; SELECT 2")
        .await
        .expect_err("two statements");
    assert_eq!(err.code().map(|c| c.code()), Some("42601"));
    client
        .query_one("SELECT 1", &[])
        .await
        .expect("connection still works");
}

/// `Parse` messages the daemon answered from a connection's parse cache.
fn parses_reused(daemon: &floe_conformance::Daemon) -> f64 {
    daemon.metric("floe_pg_parse_reused_total")
}

/// An unnamed statement sent again with the same text reuses the previous
/// plan; a DDL statement through Floe (from any connection) or a change of
/// the session's routing state makes the next `Parse` plan afresh, so a
/// description never outlives the table it describes.
#[tokio::test]
async fn a_repeated_unnamed_parse_reuses_its_plan_until_the_schema_changes() {
    let daemon = crate::plain_daemon("");
    let client = daemon.connect().await;
    let other = daemon.connect().await;
    client
        .batch_execute(
            "CREATE TABLE public.reparsed (a BIGINT); INSERT INTO public.reparsed VALUES (1)",
        )
        .await
        .expect("create");
    let sql = "SELECT * FROM public.reparsed";
    // `query_typed` sends Parse (unnamed), Bind, Describe, Execute, Sync.
    let rows = client.query_typed(sql, &[]).await.expect("first");
    assert_eq!(rows[0].columns().len(), 1);
    let before = parses_reused(&daemon);
    for _ in 0..5 {
        let rows = client.query_typed(sql, &[]).await.expect("again");
        assert_eq!(rows[0].get::<_, i64>(0), 1);
    }
    assert_eq!(parses_reused(&daemon) - before, 5.0, "the plan was reused");

    // Another connection replaces the table with a wider one.
    other
        .batch_execute(
            "DROP TABLE public.reparsed; CREATE TABLE public.reparsed (a BIGINT, b VARCHAR); \
             INSERT INTO public.reparsed VALUES (2, 'two')",
        )
        .await
        .expect("replace");
    let rows = client.query_typed(sql, &[]).await.expect("after DDL");
    assert_eq!(rows[0].columns().len(), 2, "planned afresh after DDL");
    assert_eq!(rows[0].get::<_, String>(1), "two");

    // Routing state is part of the key: a SET plans afresh.
    let reused = parses_reused(&daemon);
    client
        .batch_execute("SET floe.strategy = 'latency'")
        .await
        .expect("set");
    client.query_typed(sql, &[]).await.expect("after SET");
    assert_eq!(parses_reused(&daemon), reused, "a SET plans afresh");
}
