//! Pass-through: a PostgreSQL client's read-only simple query that runs
//! unchanged on a PostgreSQL engine gets the server's own rows, and a MySQL
//! client's read-only statement on a MySQL engine the server's own column
//! definitions and rows, with no Arrow round trip; everything around it
//! (errors, cancellation, timeouts, metrics) behaves as on the converting
//! path.
//!
//! Servers: `FLOE_TEST_POSTGRES` and `FLOE_TEST_MYSQL` (see `routing.rs`);
//! the tables are `public.pass_items` and `test.pass_rows`.

use std::time::{Duration, Instant};

use crate::routing::{postgres_conninfo, postgres_direct};
use crate::{plain_daemon, text_rows};

fn config() -> String {
    format!(
        r#"
[[engines]]
name = "pg"
type = "postgres"
url = "{}"
max_connections = 4
"#,
        postgres_conninfo()
    )
}

/// A connection straight to the test PostgreSQL, after it ran `setup`
/// (the test's tables and rows).
async fn postgres_with(setup: &str) -> tokio_postgres::Client {
    let direct = postgres_direct().await;
    direct
        .batch_execute(setup)
        .await
        .expect("create the table on PostgreSQL");
    direct
}

/// Asserts that `sql` gives the same text rows through Floe as directly.
async fn assert_same_rows(
    direct: &tokio_postgres::Client,
    floe: &tokio_postgres::Client,
    sql: &str,
) {
    let expected = text_rows(&direct.simple_query(sql).await.expect("direct"));
    let got = text_rows(
        &floe
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    );
    assert_eq!(got, expected, "{sql}");
}

/// Statements the `pg` engine passed through so far, from the metrics.
fn passed_through(daemon: &floe_conformance::Daemon) -> f64 {
    daemon.metric("floe_engine_passthrough_statements_total{engine=\"pg\"}")
}

/// Pass-through statements of the `pg` engine that reused a named statement.
fn reused(daemon: &floe_conformance::Daemon) -> f64 {
    daemon.metric("floe_engine_passthrough_reused_total{engine=\"pg\"}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_engine_answers_simple_queries_with_its_own_rows() {
    let direct = postgres_with(
        "DROP TABLE IF EXISTS public.pass_items;
         CREATE TABLE public.pass_items (id int, name text, price numeric(10,2),
             at timestamptz, flag bool, doc jsonb, addr inet, tags text[]);
         INSERT INTO public.pass_items VALUES
             (1, 'plain', 1.50, '2024-01-01 10:00:00+00', true, '{\"a\": 1}', '10.0.0.1', '{x,y}'),
             (2, 'tab\there \"quoted\"', NULL, NULL, false, NULL, NULL, NULL),
             (3, NULL, -0.01, '1999-12-31 23:59:59.5+00', NULL, '[]', '::1', '{}')",
    )
    .await;
    let daemon = plain_daemon(&config());
    let client = daemon.connect().await;

    // The server's text for every type, also those Floe's Arrow path does
    // not carry (inet, arrays): what the server printed, byte for byte.
    for sql in [
        "SELECT * FROM public.pass_items ORDER BY id",
        "SELECT id, price * 2 AS doubled, name IS NULL AS missing FROM public.pass_items ORDER BY id DESC",
        "SELECT count(*), sum(price) FROM public.pass_items",
        "SELECT * FROM public.pass_items WHERE id > 100",
    ] {
        assert_same_rows(&direct, &client, sql).await;
    }

    // A large result streams through in many batches, every row intact.
    let rows = client
        .simple_query("SELECT g, repeat('x', 200) FROM generate_series(1, 30000) g")
        .await
        .expect("large result");
    let rows = text_rows(&rows);
    assert_eq!(rows.len(), 30_000);
    assert_eq!(rows[29_999][0].as_deref(), Some("30000"));
    assert_eq!(rows[12_345][1].as_deref().map(str::len), Some(200));

    // A server error keeps its SQLSTATE, and the session (and the pooled
    // connection behind it) keeps working.
    for _ in 0..6 {
        let error = client
            .simple_query("SELECT 1 / (id - id) FROM public.pass_items")
            .await
            .expect_err("division by zero");
        assert_eq!(
            error.code(),
            Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO),
            "{error}"
        );
        let again = client
            .simple_query("SELECT count(*) FROM public.pass_items")
            .await
            .expect("the session serves on");
        assert_eq!(text_rows(&again), vec![vec![Some("3".to_owned())]]);
    }

    // Statements one after the other reuse one server connection.
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let rows = client
            .simple_query("SELECT pg_backend_pid()")
            .await
            .expect("pg_backend_pid()");
        pids.extend(text_rows(&rows).into_iter().flatten().flatten());
    }
    assert_eq!(pids.len(), 1, "PostgreSQL connections used: {pids:?}");

    // The rows went through without conversion.
    let passed = passed_through(&daemon);
    assert!(passed >= 10.0, "pass-through statements counted: {passed}");

    // A statement the client prepares still goes the converting way and
    // answers the same.
    let row = client
        .query_one("SELECT name FROM public.pass_items WHERE id = $1", &[&1i32])
        .await
        .expect("extended protocol");
    assert_eq!(row.get::<_, String>(0), "plain");
}

/// A simple query's constants compared with columns go to the server as
/// typed parameters of a statement it prepared once: the answers, and the
/// errors, are those of the text as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_queries_run_as_shapes_prepared_once_and_answer_as_written() {
    let direct = postgres_with(
        "DROP TABLE IF EXISTS public.pass_shapes;
         CREATE TABLE public.pass_shapes (id int, small int2, big int8, name text, day date);
         INSERT INTO public.pass_shapes
             SELECT g, g, g::int8 * 1000000000, 'n' || g, date '2024-01-01' + g FROM generate_series(1, 20) g;
         INSERT INTO public.pass_shapes VALUES (21, NULL, NULL, 'it''s', NULL)",
    )
    .await;
    let daemon = plain_daemon(&config());
    let client = daemon.connect().await;
    let before = reused(&daemon);
    for sql in [
        "SELECT id, name FROM public.pass_shapes WHERE id = 3",
        "SELECT id, name FROM public.pass_shapes WHERE id = 4",
        "SELECT id, name FROM public.pass_shapes WHERE id = 5",
        // An int2 column against a constant only int4 holds: no row, no error.
        "SELECT id FROM public.pass_shapes WHERE small = 40000",
        // An int8 constant, a string read as a date, a quote inside a string.
        "SELECT id FROM public.pass_shapes WHERE big >= 3000000000 AND id < 6 ORDER BY 1",
        "SELECT id FROM public.pass_shapes WHERE day > '2024-01-15' ORDER BY id",
        "SELECT id FROM public.pass_shapes WHERE name = 'it''s'",
    ] {
        assert_same_rows(&direct, &client, sql).await;
    }
    // From a shape's third text on, Floe does not parse it either: the
    // shape's tree with this text's constants (here an int8 one too).
    for n in [1i64, 7, 20, 21, 99, 2] {
        let big = n * 1_000_000_000;
        for sql in [
            format!("SELECT id, name FROM public.pass_shapes WHERE id = {n}"),
            format!("SELECT id FROM public.pass_shapes WHERE big = {big} AND name <> 'n{n}'"),
            format!(
                "SELECT id FROM public.pass_shapes WHERE name = 'n{n}' OR name = 'it''s' ORDER BY 1"
            ),
        ] {
            assert_same_rows(&direct, &client, &sql).await;
        }
    }
    assert!(
        reused(&daemon) >= before + 2.0,
        "the three point selects share one prepared shape"
    );
    // An integer constant keeps its type: text = integer is still an error.
    let sql = "SELECT id FROM public.pass_shapes WHERE name = 5";
    let expected = direct.simple_query(sql).await.expect_err("direct");
    let got = client.simple_query(sql).await.expect_err("through Floe");
    // The server's own SQLSTATE (42883) and message arrive as they were.
    assert_eq!(
        got.as_db_error()
            .map(|e| (e.code().code().to_owned(), e.message().to_owned())),
        expected
            .as_db_error()
            .map(|e| (e.code().code().to_owned(), e.message().to_owned()))
    );

    // The table changes shape under a shape's named statement, whose
    // parameter is typed (int4): the server's "cached plan must not change
    // result type" is not the client's to see — Floe forgets the statement
    // of that text, whatever its parameter types, and parses it afresh.
    direct
        .batch_execute("ALTER TABLE public.pass_shapes ALTER COLUMN name TYPE varchar(40)")
        .await
        .expect("alter the table on PostgreSQL");
    for n in [3, 4] {
        let sql = format!("SELECT id, name FROM public.pass_shapes WHERE id = {n}");
        assert_same_rows(&direct, &client, &sql).await;
    }
}

/// psycopg asks for text results over the extended protocol: its prepared,
/// parameterised statements pass through too, and read what the server
/// itself returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_results_of_the_extended_protocol_pass_through() {
    let python = std::env::var("FLOE_PYTHON")
        .expect("FLOE_PYTHON names the test venv's python: run the tests with scripts/test");
    let direct = postgres_with(
        "DROP TABLE IF EXISTS public.pass_ext;
         CREATE TABLE public.pass_ext (id int, name text, price numeric(10,2), at timestamptz);
         INSERT INTO public.pass_ext
             SELECT g, 'item ' || g, g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour'
             FROM generate_series(1, 50) g",
    )
    .await;
    let daemon = plain_daemon(&config());
    let script = r#"
import datetime, sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute("SET TIME ZONE 'UTC'")
    for low in (3, 17, 49):
        rows = conn.execute(
            "SELECT id, name, price, at FROM public.pass_ext WHERE id >= %s AND name <> %s ORDER BY id LIMIT 3",
            (low, "item 18"),
        ).fetchall()
        # The instant, not the zone object psycopg names after the server's
        # TimeZone report; the price as text, whichever type it was read as
        # (after the table changes under Floe, see below).
        print(repr([(i, n, str(p), a.astimezone(datetime.timezone.utc)) for i, n, p, a in rows]))
"#;
    let run = |url: &str| {
        let output = std::process::Command::new(&python)
            .args(["-c", script, url])
            .output()
            .expect("run python");
        assert!(
            output.status.success(),
            "psycopg against {url}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let conninfo = postgres_conninfo();
    let field = |key: &str| {
        conninfo
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_owned()
    };
    let direct_url = format!(
        "postgresql://{}@{}:{}/{}",
        field("user"),
        field("host"),
        field("port"),
        field("dbname")
    );
    let expected = run(&direct_url);
    assert!(expected.contains("item 3"), "{expected}");
    let before = passed_through(&daemon);
    assert_eq!(run(&daemon.pg_url("floe")), expected);
    assert!(
        passed_through(&daemon) >= before + 3.0,
        "the three statements passed through"
    );
    // The text repeats: the server parsed it once, under a name, on the
    // pooled connection the one client uses.
    assert!(
        reused(&daemon) >= 2.0,
        "the repeated text reused its named statement"
    );

    // The table changes shape under the named statement ("cached plan must
    // not change result type" on the server): Floe parses it afresh, and the
    // client never sees that error. (The column's type in Floe's own
    // description of the statement is still the one planned before the
    // change, made behind Floe's back: hence `str(p)` above.)
    direct
        .batch_execute("ALTER TABLE public.pass_ext ALTER COLUMN price TYPE text")
        .await
        .expect("alter the table on PostgreSQL");
    let expected = run(&direct_url);
    assert!(expected.contains("'3.75'"), "{expected}");
    assert_eq!(run(&daemon.pg_url("floe")), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_pass_through_statement_is_cancelled_on_the_server() {
    let daemon = plain_daemon(&config());
    let client = daemon.connect().await;
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .expect("set the timeout");
    let started = Instant::now();
    let error = client
        .simple_query("SELECT pg_sleep(30), 'floe-pass-sleep'")
        .await
        .expect_err("timed out");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server stops the statement too: Floe sends PostgreSQL a cancel
    // request rather than leaving it to sleep on.
    let direct = postgres_direct().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running = direct
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE state = 'active' AND query LIKE '%floe-pass-sleep%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get::<_, i64>(0);
        if running == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the statement still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = client
        .simple_query("SELECT 42")
        .await
        .expect("the session serves on");
    assert_eq!(text_rows(&rows), vec![vec![Some("42".to_owned())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_can_be_turned_off_per_engine() {
    let config = config().replace(
        "max_connections = 4",
        "max_connections = 4\npass_through = false",
    );
    let daemon = plain_daemon(&config);
    let client = daemon.connect().await;
    let rows = client
        .simple_query("SELECT g, g * 2 FROM generate_series(1, 3) g")
        .await
        .expect("converted through Arrow");
    assert_eq!(
        text_rows(&rows),
        vec![
            vec![Some("1".to_owned()), Some("2".to_owned())],
            vec![Some("2".to_owned()), Some("4".to_owned())],
            vec![Some("3".to_owned()), Some("6".to_owned())],
        ]
    );
    assert_eq!(passed_through(&daemon), 0.0);
}

// MySQL: a MySQL client's read-only statement that runs unchanged on a
// MySQL engine gets the server's own column definitions and rows, text or
// binary, with no Arrow round trip.

/// One `maria` engine (`FLOE_TEST_MYSQL`), with extra engine settings.
fn maria_config(extra: &str) -> String {
    format!(
        "[[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"{}\"\nmax_connections = 4\n{extra}\n",
        crate::routing::mysql_url()
    )
}

/// A connection straight to the test MariaDB, after it ran `setup`.
async fn mariadb_with(setup: &[&str]) -> mysql_async::Conn {
    use mysql_async::prelude::Queryable;
    let mut direct = crate::routing::mariadb_direct().await;
    for sql in setup {
        direct
            .query_drop(*sql)
            .await
            .unwrap_or_else(|e| panic!("MariaDB: {sql}: {e}"));
    }
    direct
}

/// Statements the `maria` engine passed through so far.
fn maria_passed(daemon: &floe_conformance::Daemon) -> f64 {
    daemon.metric("floe_engine_passthrough_statements_total{engine=\"maria\"}")
}

/// Each row's values, as the client decoded them.
fn my_values(rows: &[mysql_async::Row]) -> Vec<Vec<mysql_async::Value>> {
    rows.iter().map(|row| row.clone().unwrap()).collect()
}

/// Each column's name, type and flags, as the client was told them.
fn my_columns(
    rows: &[mysql_async::Row],
) -> Vec<(
    String,
    mysql_async::consts::ColumnType,
    mysql_async::consts::ColumnFlags,
)> {
    rows.first()
        .map(|row| {
            row.columns_ref()
                .iter()
                .map(|c| (c.name_str().into_owned(), c.column_type(), c.flags()))
                .collect()
        })
        .unwrap_or_default()
}

const PASS_ROWS: &[&str] = &[
    "DROP TABLE IF EXISTS test.pass_rows",
    "CREATE TABLE test.pass_rows (id INT, big BIGINT, u INT UNSIGNED, name VARCHAR(40), \
     price DECIMAL(10,2), at DATETIME(3), d DATE, t TIME, f DOUBLE, b VARBINARY(8))",
    "INSERT INTO test.pass_rows VALUES \
     (1, -9000000000, 4000000000, 'plain', 1.50, '2024-01-01 10:00:00.250', '2024-02-29', '-12:30:00', 0.1, x'00ff'), \
     (2, NULL, NULL, 'tab\there \"q\" \\\\ ünï', NULL, NULL, NULL, NULL, NULL, NULL), \
     (3, 0, 0, NULL, -0.01, '1999-12-31 23:59:59', '1970-01-01', '00:00:01', -1e300, '')",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_engine_answers_mysql_clients_with_its_own_rows() {
    use mysql_async::prelude::Queryable;
    let mut direct = mariadb_with(PASS_ROWS).await;
    let daemon = plain_daemon(&maria_config(""));
    let mut floe = crate::mysql::connect(&daemon).await;
    // mysql_async reads a few variables when it connects; Floe answers them
    // with a table-less SELECT on the engine, which passes through too.
    let base = maria_passed(&daemon);

    // Text rows: every value, and every column's type, as the server sent them.
    let sql = "SELECT * FROM test.pass_rows ORDER BY id";
    let expected: Vec<mysql_async::Row> = direct.query(sql).await.expect("direct");
    let got: Vec<mysql_async::Row> = floe.query(sql).await.expect("through Floe");
    assert_eq!(my_values(&got), my_values(&expected));
    assert_eq!(my_columns(&got), my_columns(&expected));
    assert_eq!(maria_passed(&daemon) - base, 1.0);

    // Binary rows of a prepared statement, laid out as Floe described them
    // at prepare: passed through too, and the second execution reuses the
    // connection's prepared statement.
    let sql =
        "SELECT id, big, name, price, at, d, f, b FROM test.pass_rows WHERE id >= ? ORDER BY id";
    let expected: Vec<mysql_async::Row> = direct.exec(sql, (1,)).await.expect("direct");
    for round in 1..=2 {
        let got: Vec<mysql_async::Row> = floe.exec(sql, (1,)).await.expect("through Floe");
        assert_eq!(my_values(&got), my_values(&expected), "round {round}");
    }
    assert_eq!(maria_passed(&daemon) - base, 3.0);
    assert!(
        daemon.metric("floe_engine_passthrough_reused_total{engine=\"maria\"}") >= 1.0,
        "the second execution reused the prepared statement"
    );
    let some: Vec<(i32, Option<String>)> = floe
        .exec(
            "SELECT id, name FROM test.pass_rows WHERE name = ? OR id = ? ORDER BY id",
            ("plain", 3),
        )
        .await
        .expect("string and integer parameters");
    assert_eq!(some, vec![(1, Some("plain".to_owned())), (3, None)]);

    // An unsigned column is one Floe describes wider than the server sends
    // it: the statement takes the converting path, with the same values.
    let passed = maria_passed(&daemon);
    let u: Vec<Option<u64>> = floe
        .exec(
            "SELECT u FROM test.pass_rows WHERE id >= ? ORDER BY id",
            (1,),
        )
        .await
        .expect("converted");
    assert_eq!(u, vec![Some(4_000_000_000), None, Some(0)]);
    assert_eq!(maria_passed(&daemon), passed, "not passed through");

    // The server's error, with its code, and the connection goes on.
    let error = floe
        .query_drop("SELECT nowhere FROM test.pass_rows")
        .await
        .expect_err("an unknown column");
    match error {
        mysql_async::Error::Server(e) => assert_eq!((e.code, e.state.as_str()), (1054, "42S22")),
        other => panic!("expected a server error, got {other:?}"),
    }
    let count: Option<i64> = floe
        .query_first("SELECT COUNT(*) FROM test.pass_rows")
        .await
        .expect("after the error");
    assert_eq!(count, Some(3));

    // A session's time zone reaches the pass-through connection that runs
    // its statement, and not the next session's.
    floe.query_drop("SET time_zone = '+05:00'")
        .await
        .expect("SET time_zone");
    let shifted: Option<String> = floe
        .query_first("SELECT CAST(FROM_UNIXTIME(0) AS CHAR) FROM test.pass_rows LIMIT 1")
        .await
        .expect("in +05:00");
    assert_eq!(shifted.as_deref(), Some("1970-01-01 05:00:00"));
    let server: Option<String> = direct
        .query_first("SELECT CAST(FROM_UNIXTIME(0) AS CHAR)")
        .await
        .expect("the server's zone");
    let mut other = crate::mysql::connect(&daemon).await;
    let unshifted: Option<String> = other
        .query_first("SELECT CAST(FROM_UNIXTIME(0) AS CHAR) FROM test.pass_rows LIMIT 1")
        .await
        .expect("in the server's zone");
    assert_eq!(unshifted, server);

    // A multi-statement query's results are converted (each numbered by the
    // front end), and correct.
    let mut results = floe
        .query_iter("SELECT id FROM test.pass_rows WHERE id = 1; SELECT name FROM test.pass_rows WHERE id = 1")
        .await
        .expect("two statements");
    let first: Vec<i32> = results.collect().await.expect("first result");
    let second: Vec<String> = results.collect().await.expect("second result");
    assert_eq!((first, second), (vec![1], vec!["plain".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_mysql_result_streams_through_whole_and_in_order() {
    use mysql_async::prelude::Queryable;
    let daemon = plain_daemon(&maria_config(""));
    let mut floe = crate::mysql::connect(&daemon).await;
    // MariaDB's sequence engine: 200,000 rows of ~40 bytes, many batches.
    let sql = "SELECT seq, REPEAT('x', 30) FROM test.seq_1_to_200000 ORDER BY seq";
    let mut rows = floe.query_iter(sql).await.expect("text");
    let (mut count, mut next) = (0u64, 1u64);
    while let Some(row) = rows.next().await.expect("a row") {
        let (seq, pad): (u64, String) = mysql_async::from_row(row);
        assert_eq!((seq, pad.len()), (next, 30));
        count += 1;
        next += 1;
    }
    drop(rows);
    assert_eq!(count, 200_000);
    let sum: Vec<(u64,)> = floe
        .exec(
            "SELECT seq FROM test.seq_1_to_200000 WHERE seq > ? ORDER BY seq",
            (199_990,),
        )
        .await
        .expect("binary");
    assert_eq!(sum.len(), 10);
    // A result abandoned half-read closes its connection; the next
    // statement runs on another.
    let mut rows = floe.query_iter(sql).await.expect("again");
    let _ = rows.next().await.expect("first row");
    drop(rows);
    let one: Option<u64> = floe
        .query_first("SELECT seq FROM test.seq_1_to_5 WHERE seq = 5")
        .await
        .expect("after an abandoned result");
    assert_eq!(one, Some(5));
    // The three text queries (the binary one has an unsigned column, which
    // converts; mysql_async's own query as it connects is answered by Floe).
    assert!(maria_passed(&daemon) >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_engine_behind_a_password_passes_through() {
    use mysql_async::prelude::Queryable;
    let _direct = mariadb_with(&[
        "CREATE USER IF NOT EXISTS 'floe_wire'@'localhost' IDENTIFIED BY 'wire-secret'",
        "CREATE USER IF NOT EXISTS 'floe_wire'@'127.0.0.1' IDENTIFIED BY 'wire-secret'",
        "GRANT SELECT ON test.* TO 'floe_wire'@'localhost'",
        "GRANT SELECT ON test.* TO 'floe_wire'@'127.0.0.1'",
    ])
    .await;
    let url = crate::routing::mysql_url().replacen("root@", "floe_wire:wire-secret@", 1);
    let daemon = plain_daemon(&format!(
        "[[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"{url}\"\n"
    ));
    let mut floe = crate::mysql::connect(&daemon).await;
    let base = maria_passed(&daemon);
    let one: Option<u64> = floe
        .query_first("SELECT seq FROM test.seq_1_to_1")
        .await
        .expect("as floe_wire");
    assert_eq!(one, Some(1));
    // The pass-through connection logged in with the password's proof.
    assert_eq!(maria_passed(&daemon) - base, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_pass_through_can_be_turned_off_per_engine() {
    use mysql_async::prelude::Queryable;
    let daemon = plain_daemon(&maria_config("pass_through = false"));
    let mut floe = crate::mysql::connect(&daemon).await;
    let rows: Vec<(u64, u64)> = floe
        .query("SELECT seq, seq * 2 FROM test.seq_1_to_3 ORDER BY seq")
        .await
        .expect("converted through Arrow");
    assert_eq!(rows, vec![(1, 2), (2, 4), (3, 6)]);
    assert_eq!(maria_passed(&daemon), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_mysql_pass_through_statement_stops_on_the_server() {
    use mysql_async::prelude::Queryable;
    let mut direct = crate::routing::mariadb_direct().await;
    let daemon = plain_daemon(&maria_config(""));
    let mut victim = crate::mysql::connect(&daemon).await;
    let id = victim.id();
    let sql = "SELECT SLEEP(60), 'floe-sleep-probe' FROM test.seq_1_to_1";
    let query = tokio::spawn(async move { victim.query_drop(sql).await });
    let running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE INFO LIKE 'SELECT SLEEP(60), ''floe-sleep-probe''%'";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let count: Option<i64> = direct.query_first(running).await.expect("process list");
        if count == Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the statement never reached MariaDB"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The client's KILL QUERY through Floe ends its statement there, and
    // Floe's pass-through connection stops it on the server.
    let mut killer = crate::mysql::connect(&daemon).await;
    killer
        .query_drop(format!("KILL QUERY {id}"))
        .await
        .expect("KILL QUERY");
    let ended = tokio::time::timeout(Duration::from_secs(30), query)
        .await
        .expect("the statement ended")
        .expect("task");
    match ended {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317, "{e:?}"),
        other => panic!("expected the statement to be cancelled, got {other:?}"),
    }
    let started = Instant::now();
    loop {
        let count: Option<i64> = direct.query_first(running).await.expect("process list");
        if count == Some(0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "SLEEP(60) still runs on MariaDB"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// Both pass-throughs over the local servers' Unix sockets.

/// A local server's Unix socket, `var` or `default`; the test fails, saying
/// which, when it is missing.
fn local_socket(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "no server socket at {path} (set {var})"
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_engine_on_a_unix_socket_passes_through() {
    let socket = local_socket(
        "FLOE_TEST_POSTGRES_SOCKET",
        "/var/run/postgresql/.s.PGSQL.5432",
    );
    let (dir, port) = socket
        .rsplit_once("/.s.PGSQL.")
        .expect("a PostgreSQL socket is <dir>/.s.PGSQL.<port>");
    let daemon = plain_daemon(&format!(
        "[[engines]]\nname = \"pg\"\ntype = \"postgres\"\nurl = \"host={dir} port={port} user=postgres dbname=test\"\n"
    ));
    let client = daemon.connect().await;
    let direct = postgres_direct().await;
    let base = passed_through(&daemon);
    let sql = "SELECT g, repeat('x', g) FROM generate_series(1, 5) g";
    assert_same_rows(&direct, &client, sql).await;
    // A Unix-socket backend has no client address.
    let address = text_rows(
        &client
            .simple_query("SELECT coalesce(inet_client_addr()::text, 'socket')")
            .await
            .expect("client address"),
    );
    assert_eq!(address, vec![vec![Some("socket".to_owned())]]);
    assert_eq!(passed_through(&daemon) - base, 2.0, "over the socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_engine_on_a_unix_socket_passes_through() {
    use mysql_async::prelude::Queryable;
    let socket = local_socket("FLOE_TEST_MYSQL_SOCKET", "/run/mysqld/mysqld.sock");
    let _direct = mariadb_with(&[
        "CREATE OR REPLACE TABLE test.pass_socket (id INT, name VARCHAR(10))",
        "INSERT INTO test.pass_socket VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    ])
    .await;
    let daemon = plain_daemon(&format!(
        "[[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"mysql://root@localhost/test?socket={socket}\"\n"
    ));
    let mut floe = crate::mysql::connect(&daemon).await;
    let base = maria_passed(&daemon);
    let text: Vec<(i32, String)> = floe
        .query("SELECT id, name FROM test.pass_socket ORDER BY id")
        .await
        .expect("text rows");
    assert_eq!(
        text,
        vec![
            (1, "a".to_owned()),
            (2, "b".to_owned()),
            (3, "c".to_owned())
        ]
    );
    let binary: Vec<(i32, String)> = floe
        .exec(
            "SELECT id, name FROM test.pass_socket WHERE id >= ? ORDER BY id",
            (2,),
        )
        .await
        .expect("binary rows");
    assert_eq!(binary, vec![(2, "b".to_owned()), (3, "c".to_owned())]);
    assert_eq!(maria_passed(&daemon) - base, 2.0, "over the socket");
}
