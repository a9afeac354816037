//! The MySQL front end through `mysql_async` (text and binary protocols) and
//! raw sockets (greeting, malformed packets).

use std::io::{Read, Write};
use std::time::Duration;

use futures::StreamExt;
use mysql_async::prelude::*;
use mysql_async::{Conn, Error as MyError, OptsBuilder, Row, Value};

use crate::demo_daemon;
use floe_conformance::Daemon;

/// Connection options for user `floe` on a daemon's MySQL listener.
pub fn opts(daemon: &Daemon) -> OptsBuilder {
    let addr = daemon.mysql.expect("the daemon listens for MySQL");
    OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some("floe"))
        .prefer_socket(false)
}

/// A connection as user `floe`.
pub async fn connect(daemon: &Daemon) -> Conn {
    Conn::new(opts(daemon)).await.expect("connect over MySQL")
}

/// The MySQL error code and SQLSTATE of a failed call.
fn server_error<T: std::fmt::Debug>(result: Result<T, MyError>) -> (u16, String) {
    match result {
        Err(MyError::Server(e)) => (e.code, e.state),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn connector_handshake_queries_are_answered() {
    let daemon = demo_daemon();
    let mut conn = connect(daemon).await;
    let comment: Option<String> = conn
        .query_first("SELECT @@version_comment LIMIT 1")
        .await
        .expect("version comment");
    assert_eq!(comment.as_deref(), Some("Floe"));
    let packet: Option<u64> = conn
        .query_first("SELECT @@max_allowed_packet")
        .await
        .expect("max_allowed_packet");
    assert_eq!(packet, Some(67_108_864));
    let row: Option<(i64, String, String)> = conn
        .query_first(
            "SELECT @@session.auto_increment_increment AS auto_increment_increment, \
             @@character_set_client, @@transaction_isolation",
        )
        .await
        .expect("session variables");
    assert_eq!(
        row,
        Some((1, "utf8mb4".to_owned(), "READ-COMMITTED".to_owned()))
    );
    conn.query_drop("SET NAMES utf8mb4")
        .await
        .expect("SET NAMES");
    conn.query_drop("SET autocommit=1")
        .await
        .expect("SET autocommit");
    conn.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .expect("SET sql_mode");
    let mode: Option<String> = conn
        .query_first("SELECT @@sql_mode")
        .await
        .expect("read back");
    assert_eq!(mode.as_deref(), Some("ANSI_QUOTES"));
    let vars: Vec<(String, String)> = conn
        .query("SHOW VARIABLES LIKE 'max_allowed%'")
        .await
        .expect("SHOW VARIABLES");
    assert_eq!(
        vars,
        vec![("max_allowed_packet".to_owned(), "67108864".to_owned())]
    );
    let (code, state) = server_error(conn.query_drop("SET no_such_variable = 1").await);
    assert_eq!((code, state.as_str()), (1193, "HY000"));
    conn.ping().await.expect("COM_PING");
    conn.disconnect().await.expect("COM_QUIT");
}

#[tokio::test]
async fn a_client_connects_and_reads_its_settings_while_every_engine_is_down() {
    // The one engine: a MySQL server on a port nothing listens on.
    let port = floe_conformance::free_port();
    let daemon = crate::plain_daemon(&format!(
        "[[engines]]\nname = \"gone\"\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{port}/test\"\n"
    ));
    // mysql_async reads `@@max_allowed_packet, @@wait_timeout` as it
    // connects: answered by Floe itself, as the mysql CLI's banner query is.
    let mut conn = connect(&daemon).await;
    let comment: Option<String> = conn
        .query_first("SELECT @@version_comment LIMIT 1")
        .await
        .expect("version comment without an engine");
    assert_eq!(comment.as_deref(), Some("Floe"));
    let (id, db): (u32, Option<String>) = conn
        .query_first("SELECT CONNECTION_ID(), DATABASE()")
        .await
        .expect("connection functions without an engine")
        .expect("one row");
    assert_eq!((id, db), (conn.id(), None));
    // A query needs the engine: a clear error, and the connection stays.
    let error = conn
        .query_drop("SELECT 1 + @@max_allowed_packet")
        .await
        .expect_err("no engine to run it");
    assert!(matches!(error, MyError::Server(_)), "{error:?}");
    conn.ping().await.expect("the connection stays");
}

#[tokio::test]
async fn databases_tables_and_columns_are_listed() {
    let daemon = demo_daemon();
    let mut conn = connect(daemon).await;
    let databases: Vec<String> = conn.query("SHOW DATABASES").await.expect("SHOW DATABASES");
    assert!(databases.contains(&"demo".to_owned()), "{databases:?}");
    assert!(databases.contains(&"public".to_owned()), "{databases:?}");
    let (code, _) = server_error(conn.query_drop("SHOW TABLES").await);
    assert_eq!(code, 1046, "no database selected yet");
    conn.query_drop("USE demo").await.expect("USE");
    let tables: Vec<String> = conn.query("SHOW TABLES").await.expect("SHOW TABLES");
    assert_eq!(tables, vec!["trips".to_owned(), "zones".to_owned()]);
    let db: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .await
        .expect("DATABASE()");
    assert_eq!(db.as_deref(), Some("demo"));
    // Unqualified names resolve in the current database.
    let zones: Option<i64> = conn
        .query_first("SELECT count(*) FROM zones")
        .await
        .expect("count");
    assert_eq!(zones, Some(263));
    let columns: Vec<Row> = conn.query("DESCRIBE zones").await.expect("DESCRIBE");
    let names: Vec<String> = columns
        .iter()
        .map(|r| r.get::<String, _>(0).unwrap_or_default())
        .collect();
    assert!(names.contains(&"zone_id".to_owned()), "{names:?}");
    let show: Vec<Row> = conn
        .query("SHOW COLUMNS FROM trips")
        .await
        .expect("SHOW COLUMNS");
    assert!(show.len() > 3);
    let (code, state) = server_error(conn.query_drop("USE no_such_db").await);
    assert_eq!((code, state.as_str()), (1049, "42000"));
    // COM_INIT_DB, as connectors send for a database in the URL.
    let mut conn = Conn::new(opts(daemon).db_name(Some("demo")))
        .await
        .expect("connect with a database");
    let n: Option<i64> = conn
        .query_first("SELECT count(*) FROM zones")
        .await
        .expect("count");
    assert_eq!(n, Some(263));
}

#[tokio::test]
async fn every_mapped_type_round_trips_in_text_and_binary() {
    let daemon = demo_daemon();
    let mut conn = connect(daemon).await;
    let sql = "SELECT CAST(-7 AS TINYINT) AS i8, CAST(-300 AS SMALLINT) AS i16, \
               CAST(-70000 AS INT) AS i32, CAST(-5000000000 AS BIGINT) AS i64, \
               CAST(200 AS TINYINT UNSIGNED) AS u8, CAST(4000000000 AS INT UNSIGNED) AS u32, \
               CAST(18446744073709551615 AS BIGINT UNSIGNED) AS u64, \
               CAST(1.5 AS FLOAT) AS f32, CAST(2.25 AS DOUBLE) AS f64, \
               CAST(123.45 AS DECIMAL(10,2)) AS dec, 'héllo' AS txt, X'00FF10' AS bin, \
               CAST('2024-02-29' AS DATE) AS d, CAST('13:14:15.5' AS TIME) AS t, \
               CAST('2024-02-29 13:14:15.000016' AS TIMESTAMP) AS ts, true AS b";
    let expected_text = [
        "-7",
        "-300",
        "-70000",
        "-5000000000",
        "200",
        "4000000000",
        "18446744073709551615",
        "1.5",
        "2.25",
        "123.45",
        "héllo",
    ];
    // Text protocol: every value arrives as its text.
    let row: Row = conn
        .query_first(sql)
        .await
        .expect("text query")
        .expect("one row");
    for (i, text) in expected_text.iter().enumerate() {
        assert_eq!(
            row.get::<String, _>(i).as_deref(),
            Some(*text),
            "column {i}"
        );
    }
    assert_eq!(row.get::<Vec<u8>, _>(11), Some(vec![0, 255, 16]));
    assert_eq!(row.get::<String, _>(12).as_deref(), Some("2024-02-29"));
    assert_eq!(row.get::<String, _>(13).as_deref(), Some("13:14:15.500000"));
    assert_eq!(
        row.get::<String, _>(14).as_deref(),
        Some("2024-02-29 13:14:15.000016")
    );
    assert_eq!(row.get::<i64, _>(15), Some(1));
    // Binary protocol: typed values.
    let row: Row = conn
        .exec_first(sql, ())
        .await
        .expect("binary query")
        .expect("one row");
    assert_eq!(row.get::<i8, _>(0), Some(-7));
    assert_eq!(row.get::<i16, _>(1), Some(-300));
    assert_eq!(row.get::<i32, _>(2), Some(-70000));
    assert_eq!(row.get::<i64, _>(3), Some(-5_000_000_000));
    assert_eq!(row.get::<u8, _>(4), Some(200));
    assert_eq!(row.get::<u32, _>(5), Some(4_000_000_000));
    assert_eq!(row.get::<u64, _>(6), Some(u64::MAX));
    assert_eq!(row.get::<f32, _>(7), Some(1.5));
    assert_eq!(row.get::<f64, _>(8), Some(2.25));
    assert_eq!(row.get::<String, _>(9).as_deref(), Some("123.45"));
    assert_eq!(row.get::<String, _>(10).as_deref(), Some("héllo"));
    assert_eq!(row.get::<Vec<u8>, _>(11), Some(vec![0, 255, 16]));
    assert_eq!(row.as_ref(12), Some(&Value::Date(2024, 2, 29, 0, 0, 0, 0)));
    assert_eq!(
        row.as_ref(13),
        Some(&Value::Time(false, 0, 13, 14, 15, 500_000))
    );
    assert_eq!(
        row.as_ref(14),
        Some(&Value::Date(2024, 2, 29, 13, 14, 15, 16))
    );
    assert_eq!(row.get::<i8, _>(15), Some(1));
    // NULLs of every type, in both protocols.
    let nulls = "SELECT CAST(NULL AS INT), CAST(NULL AS DOUBLE), CAST(NULL AS VARCHAR), \
                 CAST(NULL AS DATE), CAST(NULL AS TIMESTAMP), CAST(NULL AS DECIMAL(5,1)), \
                 CAST(NULL AS BIGINT UNSIGNED)";
    for row in [
        conn.query_first::<Row, _>(nulls)
            .await
            .expect("text")
            .expect("row"),
        conn.exec_first::<Row, _, _>(nulls, ())
            .await
            .expect("binary")
            .expect("row"),
    ] {
        for i in 0..row.len() {
            assert_eq!(row.as_ref(i), Some(&Value::NULL), "column {i}");
        }
    }
}

#[tokio::test]
async fn prepared_statements_keep_mysql_meaning_on_the_embedded_engine() {
    let daemon = demo_daemon();
    let mut conn = connect(daemon).await;
    // MySQL's IF, DIV and `/` through the binary protocol with parameters:
    // the statement is translated for DataFusion with its placeholders.
    let row: Option<(String, i64, f64)> = conn
        .exec_first(
            "SELECT IF(zone_id > ?, 'big', 'small'), zone_id DIV ?, zone_id / ? \
             FROM demo.zones WHERE zone_id = ?",
            (10, 4, 4, 42),
        )
        .await
        .expect("translated prepared statement");
    assert_eq!(row, Some(("big".to_owned(), 10, 10.5)));
}

#[tokio::test]
async fn prepared_statements_bind_parameters_of_every_type() {
    let daemon = demo_daemon();
    let mut conn = connect(daemon).await;
    let zone: Option<(i64, String)> = conn
        .exec_first(
            "SELECT zone_id, borough FROM demo.zones WHERE zone_id = ?",
            (42,),
        )
        .await
        .expect("integer parameter");
    assert_eq!(zone.map(|z| z.0), Some(42));
    let statement = conn
        .prep("SELECT ? + 1, concat(?, '!'), ? * 2.0, ?, ?")
        .await
        .expect("prepare");
    let row: Option<(i64, String, f64, Option<i64>, String)> = conn
        .exec_first(
            &statement,
            (41i64, "hi", 1.25f64, None::<i64>, "2024-01-02"),
        )
        .await
        .expect("execute");
    assert_eq!(
        row,
        Some((42, "hi!".to_owned(), 2.5, None, "2024-01-02".to_owned()))
    );
    // The same statement, executed again with other values.
    let row: Option<(i64, String, f64, Option<i64>, String)> = conn
        .exec_first(&statement, (1i64, "yo", 2.0f64, Some(3i64), "x"))
        .await
        .expect("execute again");
    assert_eq!(
        row,
        Some((2, "yo!".to_owned(), 4.0, Some(3), "x".to_owned()))
    );
    conn.close(statement).await.expect("COM_STMT_CLOSE");
    // A date parameter against a date expression.
    let days: Option<i64> = conn
        .exec_first(
            "SELECT count(*) FROM demo.trips WHERE pickup_at < ?",
            (mysql_async::Value::Date(1970, 1, 1, 0, 0, 0, 0),),
        )
        .await
        .expect("date parameter");
    assert_eq!(days, Some(0));
    let (code, _) = server_error(
        conn.exec_drop(
            "SELECT * FROM demo.zones WHERE zone_id = ?",
            ("not a number",),
        )
        .await,
    );
    assert_eq!(code, 1210, "a parameter that cannot be the column's type");
    let ok: Option<i64> = conn
        .exec_first("SELECT ?", (5,))
        .await
        .expect("still usable");
    assert_eq!(ok, Some(5));
}

#[tokio::test]
async fn errors_carry_mysql_codes_and_the_connection_stays_usable() {
    let daemon = demo_daemon();
    let mut conn = connect(daemon).await;
    let cases = [
        ("SELEC 1", 1064, "42000"),
        ("SELECT * FROM demo.no_such_table", 1146, "42S02"),
        ("SELECT no_such_column FROM demo.zones", 1054, "42S22"),
    ];
    for (sql, code, state) in cases {
        let (got_code, got_state) = server_error(conn.query_drop(sql).await);
        assert_eq!((got_code, got_state.as_str()), (code, state), "{sql}");
        let (got_code, _) = server_error(conn.exec_drop(sql, ()).await);
        assert_eq!(got_code, code, "prepared {sql}");
        let one: Option<i64> = conn.query_first("SELECT 1").await.expect("still usable");
        assert_eq!(one, Some(1));
    }
}

#[tokio::test]
async fn multi_statement_queries_return_one_result_set_each() {
    let daemon = demo_daemon();
    let mut conn = connect(daemon).await;
    let mut result = conn
        .query_iter("SELECT 1 AS a; SELECT 'two' AS b, 3 AS c")
        .await
        .expect("multi statement");
    let first: Vec<i64> = result.collect().await.expect("first set");
    let second: Vec<(String, i64)> = result.collect().await.expect("second set");
    drop(result);
    assert_eq!(first, vec![1]);
    assert_eq!(second, vec![("two".to_owned(), 3)]);
    // The first failure ends the query: the statement after it never runs.
    let mut result = conn
        .query_iter("SELECT 1; SELECT * FROM nowhere; SELECT 3")
        .await
        .expect("the first statement runs");
    let first: Vec<i64> = result.collect().await.expect("first set");
    assert_eq!(first, vec![1]);
    let (code, _) = server_error(result.collect::<i64>().await);
    assert_eq!(code, 1146);
    drop(result);
    let ok: Option<i64> = conn.query_first("SELECT 4").await.expect("usable");
    assert_eq!(ok, Some(4));
}

#[tokio::test]
async fn results_stream_and_concurrent_clients_agree() {
    let daemon = demo_daemon();
    let mut tasks = Vec::new();
    for client in 0..16i64 {
        let opts = opts(daemon);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.expect("connect");
            for i in 0..10i64 {
                let got: Option<i64> = conn
                    .exec_first("SELECT ? * 100 + ?", (client, i))
                    .await
                    .expect("query");
                assert_eq!(got, Some(client * 100 + i));
                // COM_QUERY texts of one shape: analysed from the shape's
                // tree with this text's constants put in.
                let zone = (client * 10 + i) % crate::DEMO_ZONES + 1;
                let got: Option<i64> = conn
                    .query_first(format!(
                        "SELECT zone_id * 3 FROM demo.zones WHERE zone_id = {zone} AND 'z' <> 'c{client}'"
                    ))
                    .await
                    .expect("query");
                assert_eq!(got, Some(zone * 3));
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    // A million rows, read as they arrive.
    let mut conn = connect(daemon).await;
    let mut result = conn
        .query_iter("SELECT trip_id FROM demo.trips")
        .await
        .expect("stream");
    let mut rows = 0u64;
    let mut stream = result
        .stream::<i64>()
        .await
        .expect("rows")
        .expect("a result set");
    while let Some(row) = stream.next().await {
        row.expect("row");
        rows += 1;
    }
    assert_eq!(rows, crate::DEMO_ROWS);
}

#[tokio::test]
async fn kill_query_stops_a_running_statement() {
    let daemon = crate::plain_daemon("");
    let mut victim = connect(&daemon).await;
    let id = victim.id();
    let query = tokio::spawn(async move {
        victim
            .query_drop(
                // 10^10 pairs: runs far longer than the test.
                "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b \
                 WHERE a.value + b.value < 0",
            )
            .await
    });
    let mut killer = connect(&daemon).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut killed = false;
    // As with MySQL, a KILL that arrives before the statement starts finds
    // nothing to stop; send it until the statement ends. Once it has, the
    // victim's connection may be gone and KILL answers "unknown thread".
    while !query.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "KILL QUERY did not stop it"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        killed |= killer.query_drop(format!("KILL QUERY {id}")).await.is_ok();
    }
    assert!(killed, "KILL QUERY {id} was never accepted");
    let (code, state) = server_error(query.await.expect("task"));
    assert_eq!((code, state.as_str()), (1317, "70100"));
    let (code, _) = server_error(killer.query_drop("KILL QUERY 999999").await);
    assert_eq!(code, 1210, "an unknown connection id");
}

/// The 20-byte scramble of a server greeting (protocol 10).
fn greeting_scramble(addr: std::net::SocketAddr) -> Vec<u8> {
    let mut socket = std::net::TcpStream::connect(addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut header = [0u8; 4];
    socket.read_exact(&mut header).expect("greeting header");
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).expect("greeting");
    assert_eq!(payload[0], 10, "protocol version 10");
    let version_end = payload
        .iter()
        .position(|b| *b == 0)
        .expect("version string");
    let part1 = version_end + 1 + 4;
    let mut scramble = payload[part1..part1 + 8].to_vec();
    // filler, capabilities (2), charset, status (2), capabilities (2), length, 10 reserved
    let part2 = part1 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    scramble.extend_from_slice(&payload[part2..part2 + 12]);
    scramble
}

#[test]
fn two_connections_never_see_the_same_salt() {
    let daemon = demo_daemon();
    let addr = daemon.mysql.expect("mysql");
    let a = greeting_scramble(addr);
    let b = greeting_scramble(addr);
    assert_eq!(a.len(), 20);
    assert_ne!(a, b);
}

#[tokio::test]
async fn malformed_packets_close_only_their_connection() {
    let daemon = crate::plain_daemon("");
    let addr = daemon.mysql.expect("mysql");
    let mut healthy = connect(&daemon).await;
    for garbage in [
        // A handshake response that is not one.
        vec![3, 0, 0, 1, 0xde, 0xad, 0xbe],
        // A length that promises more than ever comes, then EOF.
        vec![0xff, 0xff, 0x00, 1, 1, 2, 3],
        // A whole packet of zeros.
        vec![32, 0, 0, 1].into_iter().chain([0u8; 32]).collect(),
    ] {
        let mut socket = std::net::TcpStream::connect(addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut greeting = [0u8; 512];
        let _ = socket.read(&mut greeting).expect("greeting");
        socket.write_all(&garbage).expect("send garbage");
        let _ = socket.shutdown(std::net::Shutdown::Write);
        // The server answers with an error or closes; either way it ends.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
    }
    let one: Option<i64> = healthy
        .query_first("SELECT 1")
        .await
        .expect("others unaffected");
    assert_eq!(one, Some(1));
    let mut fresh = connect(&daemon).await;
    let two: Option<i64> = fresh
        .query_first("SELECT 2")
        .await
        .expect("new connections work");
    assert_eq!(two, Some(2));
}

#[tokio::test]
async fn users_authenticate_with_native_passwords() {
    let daemon = crate::plain_daemon(
        "[[users]]\nname = \"app\"\npassword = \"s3cret\"\n\n[[users]]\nname = \"blank\"\npassword = \"\"\n",
    );
    let base = || {
        let addr = daemon.mysql.expect("mysql");
        OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .prefer_socket(false)
    };
    let mut conn = Conn::new(base().user(Some("app")).pass(Some("s3cret")))
        .await
        .expect("right password");
    let user: Option<String> = conn.query_first("SELECT USER()").await.expect("USER()");
    assert!(user.is_some_and(|u| u.starts_with("app@")));
    for (user, password) in [("app", "wrong"), ("nobody", "s3cret"), ("app", "")] {
        let (code, state) =
            server_error(Conn::new(base().user(Some(user)).pass(Some(password))).await);
        assert_eq!((code, state.as_str()), (1045, "28000"), "{user}/{password}");
    }
    Conn::new(base().user(Some("blank")))
        .await
        .expect("a user with an empty password");
}

#[tokio::test]
async fn large_results_stream_without_being_held_in_memory() {
    // Its own daemon, so that no other test moves its peak memory.
    let daemon = crate::plain_daemon("");
    let mut conn = connect(&daemon).await;
    let before = crate::peak_rss_kib(daemon.pid());
    // 3 M rows of two BIGINTs: 48 MB as Arrow, about 60 MB as MySQL rows.
    let mut result = conn
        .query_iter("SELECT value AS id, value * 2 AS twice FROM generate_series(1, 3000000)")
        .await
        .expect("query");
    let mut stream = result
        .stream::<(i64, i64)>()
        .await
        .expect("rows")
        .expect("a result set");
    let (mut rows, mut sum) = (0u64, 0i64);
    while let Some(row) = stream.next().await {
        rows += 1;
        sum += row.expect("row").0;
    }
    assert_eq!(rows, 3_000_000);
    assert_eq!(sum, 3_000_000 * 3_000_001 / 2);
    let grown_mib = crate::peak_rss_kib(daemon.pid()).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 40,
        "the daemon's peak memory grew by {grown_mib} MiB while streaming"
    );
}
