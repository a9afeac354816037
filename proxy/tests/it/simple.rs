//! The simple query protocol and the statements clients send in passing.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio_postgres::SimpleQueryMessage;

use crate::{DEMO_ZONES, demo_daemon};

use crate::text_rows as rows;

fn command_tags(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn multi_statement_simple_query_returns_every_result_in_order() {
    let client = demo_daemon().connect().await;
    let messages = client
        .simple_query("SELECT 1 AS a; SELECT 'two' AS b, NULL AS c; SELECT 3")
        .await
        .expect("query");
    assert_eq!(
        rows(&messages),
        vec![
            vec![Some("1".to_owned())],
            vec![Some("two".to_owned()), None],
            vec![Some("3".to_owned())]
        ]
    );
    assert_eq!(command_tags(&messages), vec![1, 1, 1]);
}

#[tokio::test]
async fn output_columns_are_named_as_postgresql_names_them() {
    let client = demo_daemon().connect().await;
    let statement = client
        .prepare("SELECT count(*), sum(z.zone_id), z.borough, 1, CAST('7' AS INT), max(zone_id) AS top FROM demo.zones z GROUP BY z.borough")
        .await
        .expect("prepare");
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        vec!["count", "sum", "borough", "?column?", "int4", "top"]
    );
}

#[tokio::test]
async fn empty_query_is_answered() {
    let client = demo_daemon().connect().await;
    let messages = client.simple_query(" ; ").await.expect("empty query");
    assert!(rows(&messages).is_empty());
    let messages = client
        .simple_query("-- only a comment")
        .await
        .expect("comment only");
    assert!(rows(&messages).is_empty());
}

#[tokio::test]
async fn connect_time_statements_work() {
    let client = demo_daemon().connect().await;
    let version: String = client
        .query_one("SELECT version()", &[])
        .await
        .expect("version")
        .get(0);
    assert!(version.starts_with("PostgreSQL 16"), "{version}");
    assert!(version.contains("Floe"), "{version}");
    let db: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .expect("db")
        .get(0);
    assert!(!db.is_empty());
    let schema: String = client
        .query_one("SELECT current_schema()", &[])
        .await
        .expect("schema")
        .get(0);
    assert_eq!(schema, "public");
    client
        .batch_execute(
            "SET application_name = 'floe-test'; SET extra_float_digits = 3; SET TIME ZONE 'UTC'",
        )
        .await
        .expect("SET");
    let messages = client
        .simple_query("SHOW application_name")
        .await
        .expect("SHOW");
    assert_eq!(rows(&messages), vec![vec![Some("floe-test".to_owned())]]);
    let messages = client
        .simple_query("SHOW server_version")
        .await
        .expect("SHOW");
    assert_eq!(rows(&messages), vec![vec![Some("16.6".to_owned())]]);
    let messages = client.simple_query("SHOW ALL").await.expect("SHOW ALL");
    assert!(rows(&messages).len() > 10);
}

#[tokio::test]
async fn transaction_statements_are_accepted_for_reads() {
    let mut client = demo_daemon().connect().await;
    let tx = client.transaction().await.expect("BEGIN");
    let n: i64 = tx
        .query_one("SELECT count(*) FROM demo.zones", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(n, 263);
    tx.commit().await.expect("COMMIT");
    client
        .batch_execute("BEGIN; SELECT 1; ROLLBACK")
        .await
        .expect("rollback");
    client
        .batch_execute("START TRANSACTION; COMMIT")
        .await
        .expect("start transaction");
}

/// A client whose connection keeps the notices it receives (severity,
/// SQLSTATE, message).
async fn noticed(config: &str) -> (tokio_postgres::Client, Arc<Mutex<Vec<[String; 3]>>>) {
    let (client, mut connection) = tokio_postgres::connect(config, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {config}: {e}"));
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    tokio::spawn(async move {
        // Read in order: a notice is kept before the response after it
        // reaches the client.
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notice(n) = message {
                let notice = [n.severity(), n.code().code(), n.message()].map(str::to_owned);
                sink.lock().expect("notices").push(notice);
            }
        }
    });
    (client, notices)
}

/// PostgreSQL's warnings for transaction statements that do nothing reach
/// the client as PostgreSQL sends them, over both protocols.
#[tokio::test]
async fn transaction_statements_that_do_nothing_warn_as_postgresql_does() {
    let daemon = demo_daemon();
    let (floe, through_floe) = noticed(&daemon.pg_config("floe")).await;
    let (direct, from_postgres) = noticed(&crate::routing::postgres_conninfo()).await;
    let steps: &[(&str, bool)] = &[
        ("COMMIT", false),
        ("ROLLBACK", true),
        ("BEGIN; BEGIN; COMMIT", false),
        ("SET LOCAL TimeZone = 'UTC'", false),
        ("BEGIN; SET LOCAL TimeZone = 'UTC'; COMMIT", false),
        ("SELECT 1", true),
    ];
    for &(sql, extended) in steps {
        for (client, notices) in [(&floe, &through_floe), (&direct, &from_postgres)] {
            notices.lock().expect("notices").clear();
            if extended {
                client.execute(sql, &[]).await.expect(sql);
            } else {
                client.batch_execute(sql).await.expect(sql);
            }
        }
        let expected = from_postgres.lock().expect("notices").clone();
        assert_eq!(*through_floe.lock().expect("notices"), expected, "{sql}");
    }
    assert_eq!(
        from_postgres.lock().expect("notices").len(),
        0,
        "SELECT warns of nothing"
    );
}

#[tokio::test]
async fn failed_transaction_rejects_statements_until_rollback() {
    let client = demo_daemon().connect().await;
    client.batch_execute("BEGIN").await.expect("BEGIN");
    let err = client
        .simple_query("SELECT * FROM no_such_table")
        .await
        .expect_err("fails");
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"));
    let err = client
        .simple_query("SELECT 1")
        .await
        .expect_err("aborted block");
    assert_eq!(err.code().map(|c| c.code()), Some("25P02"));
    client.batch_execute("ROLLBACK").await.expect("ROLLBACK");
    client
        .simple_query("SELECT 1")
        .await
        .expect("usable after ROLLBACK");
}

#[tokio::test]
async fn create_table_insert_and_information_schema_work() {
    let client = demo_daemon().connect().await;
    client
        .batch_execute("CREATE TABLE public.simple_notes (id BIGINT, body VARCHAR, score DOUBLE)")
        .await
        .expect("CREATE TABLE");
    let inserted = client
        .execute(
            "INSERT INTO public.simple_notes VALUES (1, 'one', 1.5), (2, 'two', NULL), (3, NULL, 3.25)",
            &[],
        )
        .await
        .expect("INSERT");
    assert_eq!(inserted, 3);
    let again = client
        .execute(
            "INSERT INTO simple_notes SELECT id + 10, body, score FROM simple_notes",
            &[],
        )
        .await
        .expect("INSERT ... SELECT");
    assert_eq!(again, 3);
    let rows = client
        .query("SELECT id, body, score FROM simple_notes ORDER BY id", &[])
        .await
        .expect("SELECT");
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, vec![1, 2, 3, 11, 12, 13]);
    assert_eq!(rows[1].get::<_, Option<f64>>(2), None);
    assert_eq!(rows[2].get::<_, Option<String>>(1), None);
    let columns = client
        .query(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'simple_notes' ORDER BY ordinal_position",
            &[],
        )
        .await
        .expect("information_schema");
    let names: Vec<String> = columns.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, vec!["id", "body", "score"]);
    let tables = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'demo' ORDER BY table_name",
            &[],
        )
        .await
        .expect("information_schema.tables");
    let names: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, vec!["trips", "zones"]);
}

#[tokio::test]
async fn fifty_concurrent_clients_each_run_a_hundred_queries_correctly() {
    let daemon = demo_daemon();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..50i64 {
        let client = daemon.connect().await;
        tasks.spawn(async move {
            let statement = client
                .prepare("SELECT $1::BIGINT * 2 + 1")
                .await
                .expect("prepare");
            for q in 0..100i64 {
                let n = c * 1000 + q;
                let zone = n % DEMO_ZONES + 1;
                let (got, expected): (i64, i64) = if q % 2 == 0 {
                    let got = client
                        .query_one(&statement, &[&n])
                        .await
                        .expect("extended")
                        .get(0);
                    (got, n * 2 + 1)
                } else {
                    // Every other simple query is one shape whatever its
                    // constants: analysed from the shape's tree with this
                    // text's constants put in.
                    let sql = if q % 4 == 1 {
                        format!("SELECT {n} * 2 + 1")
                    } else {
                        format!(
                            "SELECT zone_id * 2 + 1 FROM demo.zones WHERE zone_id = {zone} AND 'z' <> '{n}'"
                        )
                    };
                    let messages = client.simple_query(&sql).await.expect("simple");
                    let got = rows(&messages)[0][0]
                        .as_deref()
                        .expect("value")
                        .parse()
                        .expect("number");
                    (got, if q % 4 == 1 { n * 2 + 1 } else { zone * 2 + 1 })
                };
                assert_eq!(got, expected, "client {c} query {q}");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("client task");
    }
}
