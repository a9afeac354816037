//! Pass-through: a PostgreSQL client's read-only simple query that runs
//! unchanged on a PostgreSQL engine gets the server's own rows, with no Arrow
//! round trip, and everything around it (errors, cancellation, timeouts,
//! metrics) behaves as on the converting path.
//!
//! Server: `FLOE_TEST_POSTGRES` (see `routing.rs`); the table is
//! `public.pass_items`.

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
