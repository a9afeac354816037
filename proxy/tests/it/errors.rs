//! Errors carry the right SQLSTATE and leave the connection usable.

use crate::demo_daemon;

async fn code_of(client: &tokio_postgres::Client, sql: &str) -> String {
    let err = client.simple_query(sql).await.expect_err(sql);
    err.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| panic!("no SQLSTATE for {sql}: {err}"))
}

#[tokio::test]
async fn simple_query_errors_have_their_sqlstate_and_the_connection_survives() {
    let client = demo_daemon().connect().await;
    let cases = [
        ("SELEC 1", "42601"),
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM demo.zones", "42703"),
        ("SELECT 1 / 0", "22012"),
        ("SELECT CAST('abc' AS INT)", "22P02"),
        ("SHOW no_such_setting", "42704"),
        ("SET no_such_setting = 1", "42704"),
    ];
    for (sql, code) in cases {
        assert_eq!(code_of(&client, sql).await, code, "{sql}");
        let one: i64 = client
            .query_one("SELECT 1::BIGINT", &[])
            .await
            .expect("usable")
            .get(0);
        assert_eq!(one, 1);
    }
}

#[tokio::test]
async fn error_messages_name_the_object() {
    let client = demo_daemon().connect().await;
    let err = client
        .simple_query("SELECT * FROM demo.nope")
        .await
        .expect_err("missing table");
    let message = err
        .as_db_error()
        .expect("server error")
        .message()
        .to_owned();
    assert!(message.contains("nope"), "{message}");
}

#[tokio::test]
async fn extended_protocol_error_skips_to_sync_and_the_connection_survives() {
    let client = demo_daemon().connect().await;
    let err = client
        .prepare("SELECT * FROM no_such_table WHERE x = $1")
        .await
        .expect_err("missing");
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"));
    let statement = client
        .prepare("SELECT 10 / $1::BIGINT")
        .await
        .expect("prepare");
    let err = client
        .query_one(&statement, &[&0i64])
        .await
        .expect_err("division by zero");
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    let row = client
        .query_one(&statement, &[&5i64])
        .await
        .expect("same statement works again");
    assert_eq!(row.get::<_, i64>(0), 2);
}

#[tokio::test]
async fn error_in_the_middle_of_a_multi_statement_query_stops_the_rest() {
    let client = demo_daemon().connect().await;
    client
        .batch_execute("CREATE TABLE public.errors_stop (id BIGINT)")
        .await
        .expect("create");
    let err = client
        .batch_execute(
            "INSERT INTO errors_stop VALUES (1); SELECT 1 / 0; INSERT INTO errors_stop VALUES (2)",
        )
        .await
        .expect_err("second statement fails");
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    let n: i64 = client
        .query_one("SELECT count(*) FROM errors_stop", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1, "the statement after the error must not run");
}
