//! Routing across real engines: the embedded engine, the local PostgreSQL
//! and the local MariaDB serve the same small dataset; the same queries
//! through the PostgreSQL and the MySQL front ends, pinned to each engine in
//! turn by a routing rule, return what the engine itself returns.
//!
//! Servers: `FLOE_TEST_POSTGRES` (default `host=127.0.0.1 port=5432
//! user=postgres dbname=test`) and `FLOE_TEST_MYSQL` (default
//! `mysql://root@127.0.0.1:3306/test`). The tables live in PostgreSQL's
//! `public` schema and MariaDB's `public` database under `route_*` names.

use mysql_async::prelude::*;

use crate::parity::{Table, canonical, mysql};
use crate::{Daemon, plain_daemon, text_rows};

pub(crate) fn postgres_conninfo() -> String {
    std::env::var("FLOE_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned())
}

pub(crate) fn mysql_url() -> String {
    std::env::var("FLOE_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

pub(crate) async fn postgres_direct() -> tokio_postgres::Client {
    let conninfo = postgres_conninfo();
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {conninfo} is unreachable ({e}); set FLOE_TEST_POSTGRES")
        });
    tokio::spawn(connection);
    client
}

pub(crate) async fn mariadb_direct() -> mysql_async::Conn {
    let url = mysql_url();
    mysql_async::Conn::from_url(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("MariaDB at {url} is unreachable ({e}); set FLOE_TEST_MYSQL"))
}

/// The dataset, in SQL every engine reads.
fn dataset() -> Vec<String> {
    let mut statements = vec![
        "CREATE TABLE public.route_items (id INT, name VARCHAR(40), price DECIMAL(10,2), qty INT, added DATE, note VARCHAR(40))".to_owned(),
        "CREATE TABLE public.route_orders (order_id INT, item_id INT, amount INT)".to_owned(),
    ];
    let names = [
        "apple",
        "banana",
        "blueberry",
        "cherry",
        "date",
        "elderberry",
        "fig",
        "grape",
    ];
    let items: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let note = if i % 3 == 0 {
                "NULL".to_owned()
            } else {
                format!("'note {i}'")
            };
            format!(
                "({}, '{name}', {}.{:02}, {}, DATE '2024-01-{:02}', {note})",
                i + 1,
                3 + i * 4,
                (i * 37) % 100,
                (i * 5) % 7,
                1 + i % 3,
            )
        })
        .collect();
    statements.push(format!(
        "INSERT INTO public.route_items VALUES {}",
        items.join(", ")
    ));
    let orders: Vec<String> = (1..=20)
        .map(|o| format!("({o}, {}, {})", 1 + (o * 3) % 8, 1 + (o * 7) % 10))
        .collect();
    statements.push(format!(
        "INSERT INTO public.route_orders VALUES {}",
        orders.join(", ")
    ));
    statements
}

/// Each query as PostgreSQL and as MySQL write it.
const CORPUS: &[(&str, &str)] = &[
    (
        "SELECT id, name, price FROM public.route_items ORDER BY id",
        "SELECT id, name, price FROM public.route_items ORDER BY id",
    ),
    (
        "SELECT count(*), sum(qty) FROM public.route_items",
        "SELECT COUNT(*), SUM(qty) FROM public.route_items",
    ),
    (
        "SELECT name FROM public.route_items WHERE price > 10 AND qty < 5 ORDER BY name",
        "SELECT `name` FROM `public`.`route_items` WHERE price > 10 AND qty < 5 ORDER BY `name`",
    ),
    (
        "SELECT i.name, sum(o.amount) AS total FROM public.route_items i JOIN public.route_orders o ON o.item_id = i.id GROUP BY i.name ORDER BY total DESC, i.name",
        "SELECT i.name, SUM(o.amount) AS total FROM public.route_items i JOIN public.route_orders o ON o.item_id = i.id GROUP BY i.name ORDER BY total DESC, i.name",
    ),
    (
        "SELECT id, coalesce(note, 'none') AS note FROM public.route_items ORDER BY id",
        "SELECT id, IFNULL(note, 'none') AS note FROM public.route_items ORDER BY id",
    ),
    (
        "SELECT added, count(*) FROM public.route_items GROUP BY added ORDER BY added",
        "SELECT added, COUNT(*) FROM public.route_items GROUP BY added ORDER BY added",
    ),
    (
        "SELECT id FROM public.route_items WHERE name LIKE 'b%' ORDER BY id",
        "SELECT id FROM public.route_items WHERE name LIKE 'b%' ORDER BY id",
    ),
    (
        "SELECT upper(name) AS u, length(name) AS l FROM public.route_items ORDER BY id",
        "SELECT UPPER(name) AS u, CHAR_LENGTH(name) AS l FROM public.route_items ORDER BY id",
    ),
    (
        "SELECT id, price * qty AS value FROM public.route_items ORDER BY id",
        "SELECT id, price * qty AS value FROM public.route_items ORDER BY id",
    ),
    (
        "SELECT max(price), min(added) FROM public.route_items",
        "SELECT MAX(price), MIN(added) FROM public.route_items",
    ),
    (
        "SELECT id FROM public.route_items ORDER BY id LIMIT 3 OFFSET 2",
        "SELECT id FROM public.route_items ORDER BY id LIMIT 2, 3",
    ),
    // Meaning set by column types: PostgreSQL divides integers as integers and
    // adds days to a date; the router asks the engine for the types.
    (
        "SELECT id, qty / 2 AS half, added + 7 AS week_later FROM public.route_items ORDER BY id",
        "SELECT id, qty DIV 2 AS half, DATE_ADD(added, INTERVAL 7 DAY) AS week_later FROM public.route_items ORDER BY id",
    ),
    (
        "SELECT CASE WHEN qty > 3 THEN 'many' ELSE 'few' END AS k, count(*) AS n FROM public.route_items GROUP BY 1 ORDER BY 1",
        "SELECT CASE WHEN qty > 3 THEN 'many' ELSE 'few' END AS k, COUNT(*) AS n FROM public.route_items GROUP BY 1 ORDER BY 1",
    ),
    (
        "SELECT item_id, count(*) FROM public.route_orders WHERE item_id IN (1, 3, 5) GROUP BY item_id HAVING count(*) > 1 ORDER BY item_id",
        "SELECT item_id, COUNT(*) FROM public.route_orders WHERE item_id IN (1, 3, 5) GROUP BY item_id HAVING COUNT(*) > 1 ORDER BY item_id",
    ),
];

const ENGINES: &str = r#"
[[engines]]
name = "local"
type = "datafusion"

[[engines]]
name = "pg"
type = "postgres"
url = "URL_PG"
max_concurrency = 16

[[engines]]
name = "maria"
type = "mysql"
url = "URL_MY"
max_concurrency = 16

[routing]
strategy = "cost"

[[routing.rules]]
name = "to-local"
tag = "local"
engines = ["local"]

[[routing.rules]]
name = "to-pg"
tag = "pg"
engines = ["pg"]

[[routing.rules]]
name = "to-maria"
tag = "maria"
engines = ["maria"]
"#;

pub(crate) fn engines_config() -> String {
    ENGINES
        .replace("URL_PG", &postgres_conninfo())
        .replace("URL_MY", &mysql_url())
}

/// The tests of this module share tables on the servers: one at a time.
static SERVERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn load_servers() {
    let pg = postgres_direct().await;
    pg.batch_execute(
        "DROP TABLE IF EXISTS public.route_items, public.route_orders, public.route_txn, public.route_pg_only",
    )
    .await
    .expect("drop PostgreSQL tables");
    let mut my = mariadb_direct().await;
    for sql in [
        "CREATE DATABASE IF NOT EXISTS public",
        "DROP TABLE IF EXISTS public.route_items, public.route_orders, public.route_txn, public.route_my_only",
    ] {
        my.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    for sql in dataset() {
        pg.batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e}"));
        my.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("MariaDB: {sql}: {e}"));
    }
    pg.batch_execute("CREATE TABLE public.route_txn (id INT)")
        .await
        .expect("create route_txn");
    my.query_drop("CREATE TABLE public.route_txn (id INT) ENGINE=InnoDB")
        .await
        .expect("create route_txn");
}

fn canonical_table(rows: Vec<Vec<Option<String>>>) -> Table {
    rows.into_iter()
        .map(|row| row.into_iter().map(canonical).collect())
        .collect()
}

async fn floe_pg(client: &tokio_postgres::Client, tag: &str, sql: &str) -> Table {
    client
        .batch_execute(&format!("SET floe.tag = '{tag}'"))
        .await
        .expect("SET floe.tag");
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("through Floe to {tag}: {sql}: {e}"));
    canonical_table(text_rows(&messages))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_queries_through_both_front_ends_match_each_engine() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    let daemon = plain_daemon(&engines_config());
    let client = daemon.connect().await;
    // The embedded engine gets the dataset through Floe itself.
    client
        .batch_execute("SET floe.tag = 'local'")
        .await
        .expect("tag");
    for sql in dataset() {
        client
            .batch_execute(&sql.replace("VARCHAR(40)", "VARCHAR"))
            .await
            .unwrap_or_else(|e| panic!("embedded: {sql}: {e}"));
    }
    let direct_pg = postgres_direct().await;
    let mut direct_my = mariadb_direct().await;
    let floe_mysql_url = format!(
        "mysql://root@{}/public?prefer_socket=false",
        daemon.mysql.expect("the daemon listens for MySQL")
    );
    let mut floe_my = mysql_async::Conn::from_url(floe_mysql_url.as_str())
        .await
        .expect("MySQL front end");

    for (pg_sql, my_sql) in CORPUS {
        let on_pg = canonical_table(text_rows(
            &direct_pg
                .simple_query(pg_sql)
                .await
                .unwrap_or_else(|e| panic!("{pg_sql}: {e}")),
        ));
        let on_my = mysql(&mut direct_my, my_sql).await;
        for (tag, expected) in [("pg", &on_pg), ("maria", &on_my), ("local", &on_pg)] {
            // PostgreSQL front end, PostgreSQL dialect.
            let got = floe_pg(&client, tag, pg_sql).await;
            assert_eq!(&got, expected, "PG front end → {tag}: {pg_sql}");
            // MySQL front end, MySQL dialect.
            floe_my
                .query_drop(format!("SET floe.tag = '{tag}'"))
                .await
                .expect("SET floe.tag over MySQL");
            let got = mysql(&mut floe_my, my_sql).await;
            assert_eq!(&got, expected, "MySQL front end → {tag}: {my_sql}");
        }
    }

    // Parameters cross dialects too: written in as literals when translated.
    for tag in ["pg", "maria", "local"] {
        client
            .batch_execute(&format!("SET floe.tag = '{tag}'"))
            .await
            .expect("tag");
        let row = client
            .query_one(
                "SELECT name FROM public.route_items WHERE id = $1 AND name <> $2",
                &[&3i32, &"x's"],
            )
            .await
            .unwrap_or_else(|e| panic!("extended query with parameters → {tag}: {e:?}"));
        assert_eq!(row.get::<_, String>(0), "blueberry", "→ {tag}");
        floe_my
            .query_drop(format!("SET floe.tag = '{tag}'"))
            .await
            .expect("tag");
        let name: Option<String> = floe_my
            .exec_first(
                "SELECT name FROM public.route_items WHERE id = ? AND name <> ?",
                (3, "x's"),
            )
            .await
            .unwrap_or_else(|e| panic!("prepared statement with parameters → {tag}: {e:?}"));
        assert_eq!(name.as_deref(), Some("blueberry"), "→ {tag}");
        // A parameter used twice and out of order is still one parameter,
        // also where the engine binds them by position (MySQL's `?`).
        let row = client
            .query_one(
                "SELECT name FROM public.route_items WHERE name <> $2 AND id = $1 AND id <= $1",
                &[&3i32, &"x's"],
            )
            .await
            .unwrap_or_else(|e| panic!("reused parameters → {tag}: {e:?}"));
        assert_eq!(row.get::<_, String>(0), "blueberry", "→ {tag}");
    }

    // Engine connections are pooled: statements one after the other reuse
    // the same server connection instead of opening one each.
    floe_my
        .query_drop("SET floe.tag = 'maria'")
        .await
        .expect("tag");
    // The running statement is in MariaDB's process list with its own text:
    // the id beside it is the server connection it runs on.
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let id: Option<u64> = floe_my
            .query_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%floe-conn-probe%'",
            )
            .await
            .expect("the process list");
        ids.extend(id);
        let id: Option<u64> = floe_my
            .exec_first(
                "SELECT ID + ? FROM information_schema.PROCESSLIST WHERE INFO LIKE '%floe-conn-probe%'",
                (0,),
            )
            .await
            .expect("the process list, prepared");
        ids.extend(id);
    }
    // A session function Floe answers itself, in a prepared statement that
    // runs on the engine: its parameters stay MySQL's `?`.
    let plus: Option<u64> = floe_my
        .exec_first("SELECT CONNECTION_ID() * 0 + ?", (7,))
        .await
        .expect("CONNECTION_ID() with a parameter");
    assert_eq!(plus, Some(7));
    assert!(
        !ids.is_empty() && ids.len() <= 2,
        "MariaDB connections used: {ids:?}"
    );

    // `Parse` plans on the engine the session's tag chooses, not on whichever
    // engine the strategy would pick: a table only one server has is
    // prepared there, through both front ends.
    direct_pg
        .batch_execute("CREATE TABLE public.route_pg_only (v INT); INSERT INTO public.route_pg_only VALUES (7)")
        .await
        .expect("create the PostgreSQL-only table");
    direct_my
        .query_drop("CREATE TABLE public.route_my_only (v INT)")
        .await
        .expect("create the MariaDB-only table");
    direct_my
        .query_drop("INSERT INTO public.route_my_only VALUES (8)")
        .await
        .expect("fill the MariaDB-only table");
    client
        .batch_execute("SET floe.tag = 'pg'")
        .await
        .expect("tag");
    for _ in 0..5 {
        let row = client
            .query_one("SELECT v FROM public.route_pg_only WHERE v = $1", &[&7i32])
            .await
            .expect("prepared on the tagged engine");
        assert_eq!(row.get::<_, i32>(0), 7);
    }
    floe_my
        .query_drop("SET floe.tag = 'maria'")
        .await
        .expect("tag");
    for _ in 0..5 {
        let v: Option<i32> = floe_my
            .exec_first("SELECT v FROM public.route_my_only WHERE v = ?", (8,))
            .await
            .expect("prepared on the tagged engine");
        assert_eq!(v, Some(8));
    }

    // EXPLAIN ROUTE names the chosen engine and the rule that chose it.
    client
        .batch_execute("SET floe.tag = 'maria'")
        .await
        .expect("tag");
    let rows = text_rows(
        &client
            .simple_query("EXPLAIN ROUTE SELECT * FROM public.route_items")
            .await
            .expect("EXPLAIN ROUTE"),
    );
    assert_eq!(rows[0][0].as_deref(), Some("maria"), "{rows:?}");
    assert_eq!(rows[0][1].as_deref(), Some("1"), "{rows:?}");
    let note = rows[0][9].clone().unwrap_or_default();
    assert!(note.contains("to-maria"), "{note}");
    assert!(
        rows.iter().any(|r| r[0].as_deref() == Some("pg")
            && r[9].as_deref().is_some_and(|n| n.contains("a rule pins"))),
        "{rows:?}"
    );
    // The translations above went through the cache (this repeat is a hit),
    // and its counters are metrics.
    floe_pg(&client, "maria", CORPUS[0].0).await;
    let exported = floe_conformance::eventually(std::time::Duration::from_secs(5), || async {
        let (_, metrics) = daemon.admin_get("/metrics");
        let value = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        value("floe_translation_cache_misses_total") > 0.0
            && value("floe_translation_cache_hits_total") > 0.0
    })
    .await;
    assert!(exported, "translation cache counters are exported");
    let (status, body) = daemon.admin_get("/api/route?sql=SELECT%201&tag=pg");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""chosen":"pg""#), "{body}");
    let (status, body) = daemon.admin_get("/api/engines");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""name":"maria""#) && body.contains(r#""health":"healthy""#),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_runs_on_one_engine_and_commits_there() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    let daemon = plain_daemon(&engines_config());
    let client = daemon.connect().await;
    let direct = postgres_direct().await;
    let count = |rows: Vec<tokio_postgres::SimpleQueryMessage>| text_rows(&rows)[0][0].clone();

    client
        .batch_execute("SET floe.tag = 'pg'")
        .await
        .expect("tag");
    client.batch_execute("BEGIN").await.expect("BEGIN");
    client
        .batch_execute("INSERT INTO public.route_txn VALUES (1)")
        .await
        .expect("INSERT in the block");
    let inside = client
        .simple_query("SELECT count(*) FROM public.route_txn")
        .await
        .expect("SELECT in the block");
    assert_eq!(
        count(inside).as_deref(),
        Some("1"),
        "the block sees its own row"
    );
    let outside = direct
        .simple_query("SELECT count(*) FROM public.route_txn")
        .await
        .expect("direct SELECT");
    assert_eq!(
        count(outside).as_deref(),
        Some("0"),
        "uncommitted rows stay invisible"
    );
    client.batch_execute("COMMIT").await.expect("COMMIT");
    let after = direct
        .simple_query("SELECT count(*) FROM public.route_txn")
        .await
        .expect("direct SELECT");
    assert_eq!(
        count(after).as_deref(),
        Some("1"),
        "COMMIT reached PostgreSQL"
    );

    client.batch_execute("BEGIN").await.expect("BEGIN");
    client
        .batch_execute("INSERT INTO public.route_txn VALUES (2)")
        .await
        .expect("INSERT");
    client.batch_execute("ROLLBACK").await.expect("ROLLBACK");
    let after = direct
        .simple_query("SELECT count(*) FROM public.route_txn")
        .await
        .expect("direct SELECT");
    assert_eq!(
        count(after).as_deref(),
        Some("1"),
        "ROLLBACK reached PostgreSQL"
    );

    // The same over the MySQL front end to MariaDB.
    let mut conn = floe_mysql(&daemon).await;
    let mut direct_my = mariadb_direct().await;
    conn.query_drop("SET floe.tag = 'maria'")
        .await
        .expect("tag");
    conn.query_drop("BEGIN").await.expect("BEGIN");
    conn.query_drop("INSERT INTO public.route_txn VALUES (7)")
        .await
        .expect("INSERT");
    let inside: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM public.route_txn")
        .await
        .expect("SELECT");
    assert_eq!(inside, Some(1));
    let outside: Option<i64> = direct_my
        .query_first("SELECT COUNT(*) FROM public.route_txn")
        .await
        .expect("direct SELECT");
    assert_eq!(outside, Some(0));
    conn.query_drop("COMMIT").await.expect("COMMIT");
    let after: Option<i64> = direct_my
        .query_first("SELECT COUNT(*) FROM public.route_txn")
        .await
        .expect("direct SELECT");
    assert_eq!(after, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_run_on_the_blocks_engine() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    let daemon = plain_daemon(&engines_config());
    let client = daemon.connect().await;
    let direct = postgres_direct().await;
    let code = |e: tokio_postgres::Error| e.code().map(|c| c.code().to_owned());

    client
        .batch_execute("SET floe.tag = 'pg'")
        .await
        .expect("tag");
    for sql in [
        "BEGIN",
        "INSERT INTO public.route_txn VALUES (1)",
        "SAVEPOINT a",
        "INSERT INTO public.route_txn VALUES (2)",
        "ROLLBACK TO SAVEPOINT a",
        "INSERT INTO public.route_txn VALUES (3)",
        "RELEASE SAVEPOINT a",
    ] {
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // A failed block comes back with ROLLBACK TO, over the extended protocol
    // too.
    client
        .execute("SAVEPOINT b", &[])
        .await
        .expect("SAVEPOINT (extended)");
    let failed = client
        .batch_execute("INSERT INTO public.route_txn VALUES (1 / 0)")
        .await
        .expect_err("division by zero");
    assert_eq!(code(failed), Some("22012".to_owned()));
    let aborted = client
        .batch_execute("INSERT INTO public.route_txn VALUES (5)")
        .await
        .expect_err("the block failed");
    assert_eq!(code(aborted), Some("25P02".to_owned()));
    client
        .execute("ROLLBACK TO SAVEPOINT b", &[])
        .await
        .expect("ROLLBACK TO (extended)");
    client
        .batch_execute("INSERT INTO public.route_txn VALUES (4)")
        .await
        .expect("INSERT after ROLLBACK TO");
    client.batch_execute("COMMIT").await.expect("COMMIT");
    let ids: Vec<i32> = direct
        .query("SELECT id FROM public.route_txn ORDER BY id", &[])
        .await
        .expect("direct SELECT")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        ids,
        [1, 3, 4],
        "PostgreSQL undid what followed each savepoint"
    );

    // Outside a block PostgreSQL refuses them.
    for sql in [
        "SAVEPOINT z",
        "RELEASE SAVEPOINT z",
        "ROLLBACK TO SAVEPOINT z",
    ] {
        let refused = client.batch_execute(sql).await.expect_err(sql);
        assert_eq!(code(refused), Some("25P01".to_owned()), "{sql}");
    }
    // A savepoint the engine never saw is the engine's error.
    client.batch_execute("BEGIN").await.expect("BEGIN");
    let unknown = client
        .batch_execute("ROLLBACK TO SAVEPOINT never")
        .await
        .expect_err("no such savepoint");
    assert_eq!(code(unknown), Some("3B001".to_owned()));
    client.batch_execute("ROLLBACK").await.expect("ROLLBACK");

    // The embedded engine runs each statement on its own: savepoints are
    // accepted as its BEGIN and ROLLBACK are.
    client
        .batch_execute("SET floe.tag = 'local'")
        .await
        .expect("tag");
    for sql in [
        "BEGIN",
        "SELECT 1",
        "SAVEPOINT a",
        "ROLLBACK TO SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "COMMIT",
    ] {
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("embedded: {sql}: {e}"));
    }

    // The same over the MySQL front end to MariaDB.
    let mut conn = floe_mysql(&daemon).await;
    let mut direct_my = mariadb_direct().await;
    conn.query_drop("SET floe.tag = 'maria'")
        .await
        .expect("tag");
    conn.query_drop("SAVEPOINT outside")
        .await
        .expect("MySQL takes a SAVEPOINT outside a transaction");
    let refused = conn
        .query_drop("RELEASE SAVEPOINT outside")
        .await
        .expect_err("no transaction holds it");
    assert!(
        matches!(&refused, mysql_async::Error::Server(e) if e.code == 1305),
        "{refused:?}"
    );
    for sql in [
        "BEGIN",
        "INSERT INTO public.route_txn VALUES (7)",
        "SAVEPOINT a",
        "INSERT INTO public.route_txn VALUES (8)",
        "ROLLBACK TO SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "COMMIT",
    ] {
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("MySQL: {sql}: {e}"));
    }
    let ids: Vec<i32> = direct_my
        .query("SELECT id FROM public.route_txn ORDER BY id")
        .await
        .expect("direct SELECT");
    assert_eq!(ids, [7], "MariaDB undid what followed the savepoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_sql_server_is_an_engine_too() {
    // The remote: a Floe whose embedded engine holds a table, behind a user.
    let remote = floe_conformance::Daemon::start(
        crate::options().config("[[users]]\nname = \"svc\"\npassword = \"s3cret\"\n"),
    );
    let setup = remote
        .try_connect(&format!("{} password=s3cret", remote.pg_config("svc")))
        .await
        .expect("connect to the remote Floe");
    setup
        .batch_execute(
            "CREATE TABLE public.remote_t (id BIGINT, name VARCHAR); \
             INSERT INTO public.remote_t VALUES (1, 'one'), (2, 'two'), (3, NULL)",
        )
        .await
        .expect("remote table");
    let flight = remote
        .flight_sql
        .expect("the remote listens for Flight SQL");
    let daemon = floe_conformance::Daemon::start(
        crate::options()
            .env("FLOE_TEST_REMOTE_PASSWORD", "s3cret")
            .config(&format!(
                r#"
[[engines]]
name = "local"
type = "datafusion"

[[engines]]
name = "remote"
type = "flightsql"
url = "http://{flight}"
user = "svc"
password_env = "FLOE_TEST_REMOTE_PASSWORD"
"#
            )),
    );
    let client = daemon.connect().await;
    client
        .batch_execute("SET floe.engine = 'remote'")
        .await
        .expect("pin the session to the remote engine");
    let rows = text_rows(
        &client
            .simple_query("SELECT id, name FROM public.remote_t ORDER BY id")
            .await
            .expect("query through the Flight SQL engine"),
    );
    assert_eq!(
        rows,
        vec![
            vec![Some("1".to_owned()), Some("one".to_owned())],
            vec![Some("2".to_owned()), Some("two".to_owned())],
            vec![Some("3".to_owned()), None],
        ]
    );
    client
        .batch_execute("INSERT INTO public.remote_t VALUES (4, 'four')")
        .await
        .expect("an update through the Flight SQL engine");
    let count = text_rows(
        &setup
            .simple_query("SELECT count(*) FROM public.remote_t")
            .await
            .expect("count on the remote"),
    );
    assert_eq!(count[0][0].as_deref(), Some("4"));
    let error = client
        .simple_query("SELECT * FROM public.missing_t")
        .await
        .expect_err("no such table on the remote");
    assert!(
        error
            .as_db_error()
            .is_some_and(|e| e.code().code() != "08006"),
        "a statement error is not an engine failure: {error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_are_added_and_removed_by_reload_without_dropping_clients() {
    let daemon = plain_daemon(&format!(
        "[[engines]]\nname = \"local\"\ntype = \"datafusion\"\n\n[[engines]]\nname = \"pg\"\ntype = \"postgres\"\nurl = \"{}\"\n",
        postgres_conninfo()
    ));
    let config_path = daemon.dir().join("floe.toml");
    let original = std::fs::read_to_string(&config_path).expect("read config");
    let client = daemon.connect().await;
    client
        .simple_query("SELECT 1")
        .await
        .expect("before reload");

    std::fs::write(
        &config_path,
        format!(
            "{original}\n[[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"{}\"\n",
            mysql_url()
        ),
    )
    .expect("write config");
    let (status, body) = daemon.admin_post("/api/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("3 engines (2 kept, 1 new)"), "{body}");
    let (_, engines) = daemon.admin_get("/api/engines");
    assert!(engines.contains(r#""name":"maria""#), "{engines}");
    // The connection opened before the reload carries on, and sees the new engine.
    client
        .batch_execute("SET floe.engine = 'maria'")
        .await
        .expect("the new engine is known to old sessions");
    let rows = text_rows(
        &client
            .simple_query("SELECT 1 + 1")
            .await
            .expect("after reload"),
    );
    assert_eq!(rows[0][0].as_deref(), Some("2"));

    // A bad configuration is refused and the running one stays.
    std::fs::write(
        &config_path,
        format!("{original}\n[routing]\nstrategy = \"fastest\"\n"),
    )
    .expect("write config");
    let (status, body) = daemon.admin_post("/api/reload");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("strategy"), "{body}");
    let (_, engines) = daemon.admin_get("/api/engines");
    assert!(engines.contains(r#""name":"maria""#), "{engines}");

    // SIGHUP reloads too: back to the original two engines.
    std::fs::write(&config_path, &original).expect("write config");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let removed = floe_conformance::eventually(std::time::Duration::from_secs(10), || async {
        !daemon
            .admin_get("/api/engines")
            .1
            .contains(r#""name":"maria""#)
    })
    .await;
    assert!(removed, "SIGHUP did not apply the configuration");
    client
        .batch_execute("SET floe.engine = ''")
        .await
        .expect("unpin");
    client.simple_query("SELECT 1").await.expect("after SIGHUP");
}

/// A connection to the daemon's MySQL front end, schema `public`.
async fn floe_mysql(daemon: &Daemon) -> mysql_async::Conn {
    let url = format!(
        "mysql://root@{}/public?prefer_socket=false",
        daemon.mysql.expect("mysql")
    );
    mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect")
}

/// MariaDB's count of `COM_STMT_PREPARE` since it started.
async fn prepares_on_mariadb(direct: &mut mysql_async::Conn) -> u64 {
    let row: Option<(String, String)> = direct
        .query_first("SHOW GLOBAL STATUS LIKE 'Com_stmt_prepare'")
        .await
        .expect("SHOW GLOBAL STATUS");
    row.and_then(|(_, value)| value.parse().ok())
        .expect("Com_stmt_prepare")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_connection_is_reset_after_a_block_only_when_the_block_could_leave_state() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    // One connection to MariaDB, so every block below runs on it.
    let daemon = one_connection_daemon("mysql");
    let mut conn = floe_mysql(&daemon).await;
    let mut direct = mariadb_direct().await;

    // Read-only blocks leave nothing behind: the connection keeps its
    // prepared statement instead of being reset and preparing it again.
    // (Prepared outside a block: Floe prepares on a pooled connection of its
    // own, which a block holding the only one would make wait.)
    let read = "SELECT COUNT(*) FROM public.route_txn WHERE id > ?";
    let _: Option<i64> = conn.exec_first(read, (0,)).await.expect("first read");
    let before = prepares_on_mariadb(&mut direct).await;
    for _ in 0..5 {
        conn.query_drop("BEGIN").await.expect("BEGIN");
        let count: Option<i64> = conn.exec_first(read, (0,)).await.expect("read");
        assert_eq!(count, Some(0));
        conn.query_drop("COMMIT").await.expect("COMMIT");
    }
    let prepared = prepares_on_mariadb(&mut direct).await - before;
    assert_eq!(
        prepared, 0,
        "five read-only blocks prepared their statement {prepared} more times"
    );

    // A block that may leave state (here a temporary table) is reset before
    // the connection serves anything else.
    conn.query_drop("BEGIN").await.expect("BEGIN");
    conn.query_drop("CREATE TEMPORARY TABLE public.route_scratch (id INT)")
        .await
        .expect("CREATE TEMPORARY TABLE in the block");
    let inside: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM public.route_scratch")
        .await
        .expect("the block sees its temporary table");
    assert_eq!(inside, Some(0));
    conn.query_drop("COMMIT").await.expect("COMMIT");
    let after = conn
        .query_first::<i64, _>("SELECT COUNT(*) FROM public.route_scratch")
        .await;
    assert!(
        after.is_err(),
        "the temporary table outlived its block on the pooled connection: {after:?}"
    );
}

/// The MariaDB connection a statement through Floe runs on: the process
/// list shows the running statement's own text beside its id.
async fn engine_connection(conn: &mut mysql_async::Conn, prepared: bool) -> u64 {
    let sql =
        "SELECT ID + ? FROM information_schema.PROCESSLIST WHERE INFO LIKE '%floe-kill-probe%'";
    let id: Option<u64> = if prepared {
        conn.exec_first(sql, (0,)).await
    } else {
        conn.query_first(sql.replace('?', "0")).await
    }
    .unwrap_or_else(|e| panic!("the process list (prepared: {prepared}): {e:?}"));
    id.expect("the statement's own row in the process list")
}

/// Ends MariaDB connection `id` from outside, as an administrator would.
async fn kill(direct: &mut mysql_async::Conn, id: u64) {
    direct
        .query_drop(format!("KILL CONNECTION {id}"))
        .await
        .unwrap_or_else(|e| panic!("KILL CONNECTION {id}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_engine_connection_killed_while_idle_is_replaced_unseen_for_reads() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    // Both ways a read reaches MariaDB: the pass-through's own connection
    // (MariaDB answers the killed connection's next command with 1927), and
    // mysql_async's warm one.
    for pass_through in [true, false] {
        killed_connection_round(pass_through).await;
    }
}

async fn killed_connection_round(pass_through: bool) {
    // One connection to MariaDB: the next statement finds the killed one.
    let daemon = plain_daemon(&format!(
        "[[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"{}\"\nmax_connections = 1\npass_through = {pass_through}\n",
        mysql_url()
    ));
    let mut conn = floe_mysql(&daemon).await;
    let mut direct = mariadb_direct().await;
    for prepared in [false, true] {
        let before = engine_connection(&mut conn, prepared).await;
        assert_eq!(
            engine_connection(&mut conn, prepared).await,
            before,
            "consecutive reads share the pooled connection"
        );
        kill(&mut direct, before).await;
        // Right away: the connection was idle for less than a second.
        let after = engine_connection(&mut conn, prepared).await;
        assert_ne!(after, before, "the read ran on a new connection");
    }

    // A write never runs twice, so it does not take a connection unchecked:
    // the pool's check finds this one killed and the write runs on a new
    // one, once. (With pass-through the killed one is the pass-through's,
    // and the write runs on the pool's: once either way.)
    let before = engine_connection(&mut conn, false).await;
    kill(&mut direct, before).await;
    conn.query_drop("INSERT INTO public.route_txn (id) VALUES (424242)")
        .await
        .expect("a write after the kill");
    let rows: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM public.route_txn WHERE id = 424242")
        .await
        .expect("count");
    direct
        .query_drop("DELETE FROM public.route_txn WHERE id = 424242")
        .await
        .expect("clean up");
    assert_eq!(rows, Some(1), "the write ran once");
    assert_ne!(engine_connection(&mut conn, false).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_prepared_inside_a_block_is_planned_on_the_blocks_connection() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    // One connection per engine, held by the open block: planning on a
    // second pooled one would wait out the connect timeout and fail.
    let config = format!(
        "[[engines]]\nname = \"pg\"\ntype = \"postgres\"\nurl = \"{}\"\nmax_connections = 1\nconnect_timeout = \"2s\"\n\n\
         [[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"{}\"\nmax_connections = 1\nconnect_timeout = \"2s\"\n",
        postgres_conninfo(),
        mysql_url()
    );
    let daemon = plain_daemon(&config);

    // PostgreSQL: tokio-postgres prepares (Parse/Describe) inside the block.
    let client = daemon.connect().await;
    client
        .batch_execute("SET floe.engine = 'pg'")
        .await
        .expect("pin pg");
    client.batch_execute("BEGIN").await.expect("BEGIN");
    client
        .batch_execute("INSERT INTO public.route_txn VALUES (41)")
        .await
        .expect("INSERT opens the block on pg");
    let statement = client
        .prepare("SELECT count(*) FROM public.route_txn WHERE id > $1")
        .await
        .expect("Parse inside the block");
    let row = client
        .query_one(&statement, &[&40i32])
        .await
        .expect("execute inside the block");
    assert_eq!(row.get::<_, i64>(0), 1, "the block sees its own row");
    client.batch_execute("ROLLBACK").await.expect("ROLLBACK");

    // MariaDB: COM_STMT_PREPARE inside the block.
    let mut conn = floe_mysql(&daemon).await;
    conn.query_drop("SET floe.engine = 'maria'")
        .await
        .expect("pin maria");
    conn.query_drop("BEGIN").await.expect("BEGIN");
    conn.query_drop("INSERT INTO public.route_txn VALUES (42)")
        .await
        .expect("INSERT opens the block on maria");
    let count: Option<i64> = conn
        .exec_first("SELECT COUNT(*) FROM public.route_txn WHERE id > ?", (41,))
        .await
        .expect("prepare and execute inside the block");
    assert_eq!(count, Some(1), "the block sees its own row");
    conn.query_drop("ROLLBACK").await.expect("ROLLBACK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_errors_reach_clients_with_the_codes_they_branch_on() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    let pg = postgres_direct().await;
    let mut my = mariadb_direct().await;
    let keyed = [
        "DROP TABLE IF EXISTS public.route_keys",
        "CREATE TABLE public.route_keys (id INT PRIMARY KEY)",
        "INSERT INTO public.route_keys VALUES (1)",
    ];
    for sql in keyed {
        pg.batch_execute(sql).await.expect("PostgreSQL setup");
        my.query_drop(sql).await.expect("MariaDB setup");
    }
    let daemon = plain_daemon(&engines_config());
    let duplicate = "INSERT INTO public.route_keys VALUES (1)";

    // A PostgreSQL client sees a unique violation as 23505 from either
    // engine (MariaDB says 1062 / 23000), and an unknown function as 42883.
    let client = daemon.connect().await;
    for engine in ["pg", "maria"] {
        client
            .batch_execute(&format!("SET floe.engine = '{engine}'"))
            .await
            .expect("pin");
        let e = client.batch_execute(duplicate).await.expect_err(engine);
        assert_eq!(e.code().map(|c| c.code()), Some("23505"), "{engine}: {e:?}");
    }
    client
        .batch_execute("SET floe.engine = 'pg'")
        .await
        .expect("pin");
    let e = client
        .simple_query("SELECT no_such_function(id) FROM public.route_keys")
        .await
        .expect_err("unknown function");
    assert_eq!(e.code().map(|c| c.code()), Some("42883"), "{e:?}");

    // A MySQL client sees ER_DUP_ENTRY (1062) from either engine.
    let mut conn = floe_mysql(&daemon).await;
    for engine in ["maria", "pg"] {
        conn.query_drop(format!("SET floe.engine = '{engine}'"))
            .await
            .expect("pin");
        match conn.query_drop(duplicate).await {
            Err(mysql_async::Error::Server(e)) => {
                assert_eq!(
                    (e.code, e.state.as_str()),
                    (1062, "23000"),
                    "{engine}: {e:?}"
                );
            }
            other => panic!("{engine}: expected a server error, got {other:?}"),
        }
    }
    pg.batch_execute("DROP TABLE public.route_keys")
        .await
        .expect("drop");
    my.query_drop("DROP TABLE public.route_keys")
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_translated_statement_in_a_block_reads_column_types_on_the_blocks_connection() {
    let _servers = SERVERS.lock().await;
    load_servers().await;
    // A MySQL client on the PostgreSQL engine, one pooled connection: a
    // division is translated by the column's type, which the block reads on
    // its own connection (a second one would wait out the connect timeout).
    let config = format!(
        "[[engines]]\nname = \"pg\"\ntype = \"postgres\"\nurl = \"{}\"\nmax_connections = 1\nconnect_timeout = \"5s\"\n",
        postgres_conninfo()
    );
    let daemon = plain_daemon(&config);
    let mut conn = floe_mysql(&daemon).await;
    conn.query_drop("BEGIN").await.expect("BEGIN");
    conn.query_drop("INSERT INTO public.route_txn VALUES (5)")
        .await
        .expect("INSERT opens the block");
    let started = std::time::Instant::now();
    let half: Option<String> = conn
        .query_first("SELECT id / 2 FROM public.route_txn")
        .await
        .expect("a division in the block");
    let waited = started.elapsed();
    conn.query_drop("ROLLBACK").await.expect("ROLLBACK");
    let half: f64 = half
        .as_deref()
        .and_then(|h| h.parse().ok())
        .expect("a number");
    assert!((half - 2.5).abs() < 1e-9, "MySQL divides exactly: {half}");
    assert!(
        waited < std::time::Duration::from_secs(4),
        "the block waited {waited:?} for a second connection"
    );
}

/// `SELECT v FROM floe_use_which` through a Floe MySQL connection, over the
/// text protocol and as a prepared statement.
async fn which(conn: &mut mysql_async::Conn) -> (Option<String>, Option<String>) {
    let text: Option<String> = conn
        .query_first("SELECT v FROM floe_use_which ORDER BY v LIMIT 1")
        .await
        .expect("text query");
    let prepared: Option<String> = conn
        .exec_first(
            "SELECT v FROM floe_use_which WHERE v <> ? ORDER BY v LIMIT 1",
            ("none",),
        )
        .await
        .expect("prepared query");
    (text, prepared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_clients_database_is_where_its_statements_run() {
    let mut direct = mariadb_direct().await;
    for (database, value) in [
        ("test", "default"),
        ("floe_use_a", "a"),
        ("floe_use_b", "b"),
    ] {
        for sql in [
            format!("CREATE DATABASE IF NOT EXISTS {database}"),
            format!("CREATE OR REPLACE TABLE {database}.floe_use_which (v VARCHAR(16))"),
            format!("INSERT INTO {database}.floe_use_which VALUES ('{value}')"),
        ] {
            direct
                .query_drop(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    // One server connection, so that every session below runs on it in turn:
    // each must find it in its own database, whatever the last one left.
    let daemon = one_connection_daemon("mysql");
    let addr = daemon.mysql.expect("mysql");
    let connect = |database: Option<&str>| {
        let url = match database {
            Some(db) => format!("mysql://root@{addr}/{db}?prefer_socket=false"),
            None => format!("mysql://root@{addr}?prefer_socket=false"),
        };
        async move {
            mysql_async::Conn::from_url(url.as_str())
                .await
                .expect("connect")
        }
    };
    let answer = |v: &str| (Some(v.to_owned()), Some(v.to_owned()));

    let mut in_a = connect(Some("floe_use_a")).await;
    let mut nowhere = connect(None).await;
    assert_eq!(
        which(&mut in_a).await,
        answer("a"),
        "connected to floe_use_a"
    );
    assert_eq!(
        which(&mut nowhere).await,
        answer("default"),
        "no database: the engine URL's"
    );
    in_a.query_drop("USE floe_use_b").await.expect("USE");
    assert_eq!(which(&mut in_a).await, answer("b"), "after USE floe_use_b");
    assert_eq!(which(&mut nowhere).await, answer("default"));
    in_a.query_drop("USE floe_use_a").await.expect("USE");
    assert_eq!(which(&mut in_a).await, answer("a"), "back in floe_use_a");

    // A write lands in the session's database, and a block runs there too.
    in_a.query_drop("INSERT INTO floe_use_which VALUES ('a2')")
        .await
        .expect("INSERT");
    let landed: Vec<String> = direct
        .query("SELECT v FROM floe_use_a.floe_use_which ORDER BY v")
        .await
        .expect("read back");
    assert_eq!(landed, vec!["a", "a2"]);
    nowhere.query_drop("BEGIN").await.expect("BEGIN");
    assert_eq!(which(&mut nowhere).await, answer("default"), "in a block");
    nowhere.query_drop("COMMIT").await.expect("COMMIT");
    assert_eq!(which(&mut in_a).await, answer("a"), "after the reset");
}

/// A daemon whose one engine is the local PostgreSQL (`kind` "postgres") or
/// MariaDB ("mysql") with a single pooled connection, so that every session
/// runs on it in turn and finds whatever the last one left there.
fn one_connection_daemon(kind: &str) -> Daemon {
    let (name, url) = match kind {
        "postgres" => ("pg", postgres_conninfo()),
        _ => ("maria", mysql_url()),
    };
    plain_daemon(&format!(
        "[[engines]]\nname = \"{name}\"\ntype = \"{kind}\"\nurl = \"{url}\"\nmax_connections = 1\n"
    ))
}

/// The `TimeZone` a session's statements run under on the engine, over both
/// protocols.
async fn engine_zone(client: &tokio_postgres::Client) -> (String, String) {
    both_ways(client, "current_setting('TimeZone')").await
}

/// The PostgreSQL server's own `TimeZone`, and another zone to set.
async fn zones(direct: &tokio_postgres::Client) -> (String, &'static str) {
    let server_zone: String = direct
        .query_one("SELECT current_setting('TimeZone')", &[])
        .await
        .expect("server zone")
        .get(0);
    let zone = if server_zone == "America/New_York" {
        "Asia/Tokyo"
    } else {
        "America/New_York"
    };
    (server_zone, zone)
}

/// `SELECT <expr>` through Floe twice: as a simple query (whose text rows
/// pass through from the server) and over the extended protocol with binary
/// results (converted through Arrow, on the engine's other pool).
async fn both_ways(client: &tokio_postgres::Client, expr: &str) -> (String, String) {
    let sql = format!("SELECT ({expr})::text");
    let simple = text_rows(&client.simple_query(&sql).await.expect(&sql));
    let extended: String = client
        .query_one(&sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0);
    (
        simple[0][0]
            .clone()
            .unwrap_or_else(|| panic!("{sql}: NULL")),
        extended,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_clients_settings_reach_the_engine_and_leave_with_it() {
    let direct = postgres_direct().await;
    direct
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS floe_sp;
             DROP TABLE IF EXISTS floe_sp.sp_which, public.sp_which;
             CREATE TABLE floe_sp.sp_which (v text); INSERT INTO floe_sp.sp_which VALUES ('floe_sp');
             CREATE TABLE public.sp_which (v text); INSERT INTO public.sp_which VALUES ('public');",
        )
        .await
        .expect("load PostgreSQL");
    let (server_zone, zone) = zones(&direct).await;
    // One connection in each of the engine's pools, so that every session
    // below runs on it in turn.
    let daemon = one_connection_daemon("postgres");
    let set = daemon.connect().await;
    let plain = daemon.connect().await;
    let same = |v: &str| (v.to_owned(), v.to_owned());

    set.batch_execute(&format!("SET TimeZone = '{zone}'"))
        .await
        .expect("SET TimeZone");
    assert_eq!(engine_zone(&set).await, same(zone));
    assert_eq!(
        engine_zone(&plain).await,
        same(&server_zone),
        "a session that set nothing gets the server's defaults back"
    );
    set.batch_execute("SET search_path = floe_sp, public")
        .await
        .expect("SET search_path");
    assert_eq!(
        both_ways(&set, "SELECT v FROM sp_which").await,
        same("floe_sp")
    );
    assert_eq!(
        both_ways(&plain, "SELECT v FROM sp_which").await,
        same("public")
    );
    assert_eq!(engine_zone(&set).await, same(zone));

    // Inside a block: a SET counts for what follows, and the connection goes
    // back to the pool as it was.
    set.batch_execute("BEGIN").await.expect("BEGIN");
    assert_eq!(engine_zone(&set).await, same(zone));
    set.batch_execute("SET TimeZone = 'Pacific/Auckland'")
        .await
        .expect("SET in the block");
    assert_eq!(engine_zone(&set).await, same("Pacific/Auckland"));
    set.batch_execute("COMMIT").await.expect("COMMIT");
    assert_eq!(engine_zone(&plain).await, same(&server_zone));
    assert_eq!(engine_zone(&set).await, same("Pacific/Auckland"));

    // A value the server refuses is its error, on the statement that needs
    // it; RESET puts the session back, and nobody else noticed.
    set.batch_execute("SET TimeZone = 'Mars/Olympus_Mons'")
        .await
        .expect("Floe keeps the setting");
    let refused = set
        .simple_query("SELECT 1")
        .await
        .expect_err("the server refuses the zone");
    assert_eq!(
        refused.code().map(|c| c.code()),
        Some("22023"),
        "{refused:?}"
    );
    assert_eq!(engine_zone(&plain).await, same(&server_zone));
    set.batch_execute("RESET TimeZone; RESET search_path")
        .await
        .expect("RESET");
    assert_eq!(engine_zone(&set).await, same(&server_zone));
    assert_eq!(
        both_ways(&set, "SELECT v FROM sp_which").await,
        same("public")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_clients_startup_settings_hold_on_the_engine_and_reset_returns_to_them() {
    let direct = postgres_direct().await;
    direct
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS floe_so;
             DROP TABLE IF EXISTS floe_so.so_which, public.so_which;
             CREATE TABLE floe_so.so_which (v text); INSERT INTO floe_so.so_which VALUES ('floe_so');
             CREATE TABLE public.so_which (v text); INSERT INTO public.so_which VALUES ('public');",
        )
        .await
        .expect("load PostgreSQL");
    let (server_zone, zone) = zones(&direct).await;
    let daemon = one_connection_daemon("postgres");
    // libpq's `options` switches and a parameter of the startup message's
    // own, as psql, psycopg and JDBC (`currentSchema`) send them.
    let config = format!(
        "{} options='-c search_path=floe_so,public -c TimeZone={zone}' application_name=floe_startup",
        daemon.pg_config("floe")
    );
    let started = daemon
        .try_connect(&config)
        .await
        .expect("connect with startup settings");
    let plain = daemon.connect().await;
    let same = |v: &str| (v.to_owned(), v.to_owned());

    assert_eq!(show(&started, "search_path").await, "floe_so,public");
    assert_eq!(show(&started, "application_name").await, "floe_startup");
    assert_eq!(engine_zone(&started).await, same(zone));
    assert_eq!(
        both_ways(&started, "current_setting('application_name')").await,
        same("floe_startup")
    );
    assert_eq!(
        both_ways(&started, "SELECT v FROM so_which").await,
        same("floe_so")
    );
    // Another session on the same server connection has its own.
    assert_eq!(engine_zone(&plain).await, same(&server_zone));
    assert_eq!(
        both_ways(&plain, "SELECT v FROM so_which").await,
        same("public")
    );

    // RESET goes back to what the session started with, as in PostgreSQL.
    started
        .batch_execute("SET TimeZone = 'UTC'; SET search_path = public")
        .await
        .expect("SET");
    assert_eq!(engine_zone(&started).await, same("UTC"));
    assert_eq!(
        both_ways(&started, "SELECT v FROM so_which").await,
        same("public")
    );
    started
        .batch_execute("RESET TimeZone")
        .await
        .expect("RESET TimeZone");
    assert_eq!(engine_zone(&started).await, same(zone));
    started.batch_execute("RESET ALL").await.expect("RESET ALL");
    assert_eq!(
        both_ways(&started, "SELECT v FROM so_which").await,
        same("floe_so")
    );
    assert_eq!(show(&started, "application_name").await, "floe_startup");

    // A setting Floe does not know is left out; the connection is served.
    let unknown = format!(
        "{} options='-c no_such_setting=1'",
        daemon.pg_config("floe")
    );
    let client = daemon
        .try_connect(&unknown)
        .await
        .expect("connect with an unknown startup setting");
    client.simple_query("SELECT 1").await.expect("served");
}

/// `SHOW name` through Floe (answered by the session layer).
async fn show(client: &tokio_postgres::Client, name: &str) -> String {
    let sql = format!("SHOW {name}");
    text_rows(&client.simple_query(&sql).await.expect(&sql))[0][0]
        .clone()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_blocks_settings_end_as_postgresql_ends_them() {
    let direct = postgres_direct().await;
    let (server_zone, zone) = zones(&direct).await;
    let other = "Europe/Paris";
    let daemon = one_connection_daemon("postgres");
    let client = daemon.connect().await;
    let same = |v: &str| (v.to_owned(), v.to_owned());
    let floe_default = show(&client, "TimeZone").await;

    // ROLLBACK undoes a SET made in the block, on the engine and in Floe.
    client
        .batch_execute(&format!("BEGIN; SET TimeZone = '{zone}'"))
        .await
        .expect("BEGIN; SET");
    assert_eq!(engine_zone(&client).await, same(zone));
    client.batch_execute("ROLLBACK").await.expect("ROLLBACK");
    assert_eq!(
        engine_zone(&client).await,
        same(&server_zone),
        "the rolled-back SET is gone"
    );
    assert_eq!(show(&client, "TimeZone").await, floe_default);

    // SET LOCAL lasts until the block ends, even when it commits; a
    // session-level SET in the same block stays.
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL TimeZone = '{zone}'; SET extra_float_digits = 2"
        ))
        .await
        .expect("BEGIN; SET LOCAL");
    assert_eq!(engine_zone(&client).await, same(zone));
    assert_eq!(show(&client, "TimeZone").await, zone);
    client.batch_execute("COMMIT").await.expect("COMMIT");
    assert_eq!(
        engine_zone(&client).await,
        same(&server_zone),
        "SET LOCAL ended with its block"
    );
    assert_eq!(
        both_ways(&client, "current_setting('extra_float_digits')").await,
        same("2"),
        "the block's session-level SET committed"
    );

    // SET LOCAL outside a block does nothing, as in PostgreSQL.
    client
        .batch_execute(&format!("SET LOCAL TimeZone = '{zone}'"))
        .await
        .expect("SET LOCAL outside a block");
    assert_eq!(show(&client, "TimeZone").await, floe_default);
    assert_eq!(engine_zone(&client).await, same(&server_zone));

    // A session-level SET before the block survives the block's rollback; a
    // failed block's COMMIT is a ROLLBACK and undoes the block's SET.
    client
        .batch_execute(&format!("SET TimeZone = '{zone}'"))
        .await
        .expect("SET");
    client
        .batch_execute(&format!("BEGIN; SET TimeZone = '{other}'"))
        .await
        .expect("BEGIN; SET");
    client
        .simple_query("SELECT 1 / 0")
        .await
        .expect_err("division by zero fails the block");
    client
        .batch_execute("COMMIT")
        .await
        .expect("COMMIT of a failed block");
    assert_eq!(
        engine_zone(&client).await,
        same(zone),
        "the failed block's SET is undone, the session's stays"
    );
    assert_eq!(show(&client, "TimeZone").await, zone);

    // RESET ALL in a block that rolls back is undone too.
    client
        .batch_execute("BEGIN; RESET ALL; ROLLBACK")
        .await
        .expect("BEGIN; RESET ALL; ROLLBACK");
    assert_eq!(engine_zone(&client).await, same(zone));
    client.batch_execute("RESET ALL").await.expect("RESET ALL");
    assert_eq!(engine_zone(&client).await, same(&server_zone));

    // A savepoint covers the settings: ROLLBACK TO puts back those in force
    // when it was taken (SET LOCAL included) and keeps the savepoint;
    // RELEASE keeps what was set since; COMMIT keeps what is left.
    let digits = both_ways(&client, "current_setting('extra_float_digits')").await;
    client
        .batch_execute(&format!(
            "BEGIN; SET TimeZone = '{zone}'; SAVEPOINT a;              SET TimeZone = '{other}'; SET LOCAL extra_float_digits = 3"
        ))
        .await
        .expect("BEGIN; SET; SAVEPOINT; SET");
    assert_eq!(engine_zone(&client).await, same(other));
    client
        .batch_execute("ROLLBACK TO SAVEPOINT A")
        .await
        .expect("ROLLBACK TO (the name folds to a)");
    assert_eq!(
        engine_zone(&client).await,
        same(zone),
        "the SET after the savepoint is undone"
    );
    assert_eq!(show(&client, "TimeZone").await, zone);
    assert_eq!(
        both_ways(&client, "current_setting('extra_float_digits')").await,
        digits,
        "the SET LOCAL after the savepoint is undone"
    );
    client
        .batch_execute(&format!(
            "SET TimeZone = '{other}'; ROLLBACK TO a; SAVEPOINT b;              SET TimeZone = '{other}'; RELEASE SAVEPOINT b"
        ))
        .await
        .expect("the savepoint again; another released");
    assert_eq!(
        engine_zone(&client).await,
        same(other),
        "a released savepoint's changes stay"
    );
    client
        .batch_execute("ROLLBACK TO a; COMMIT")
        .await
        .expect("ROLLBACK TO; COMMIT");
    assert_eq!(
        engine_zone(&client).await,
        same(zone),
        "what the block set before its savepoint committed"
    );
    assert_eq!(show(&client, "TimeZone").await, zone);
    client.batch_execute("RESET ALL").await.expect("RESET ALL");
}

/// The hour of the epoch in the session's time zone, by `sql` over the text
/// protocol and by its prepared twin over the binary one.
async fn hours(conn: &mut mysql_async::Conn, sql: &str) -> (Option<String>, Option<String>) {
    let text: Option<String> = conn.query_first(sql).await.expect("text query");
    let binary: Option<String> = conn
        .exec_first(
            "SELECT DATE_FORMAT(FROM_UNIXTIME(?), '%H') FROM floe_tz",
            (0,),
        )
        .await
        .expect("prepared query");
    (text, binary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_clients_time_zone_and_sql_mode_reach_mariadb() {
    let mut direct = mariadb_direct().await;
    for sql in [
        "CREATE OR REPLACE TABLE test.floe_tz (v INT)",
        "INSERT INTO test.floe_tz VALUES (1)",
    ] {
        direct
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let hour_sql = "SELECT DATE_FORMAT(FROM_UNIXTIME(0), '%H') FROM floe_tz";
    let server_hour: Option<String> = direct.query_first(hour_sql).await.expect("direct hour");
    let server_hour = server_hour.expect("a row");
    let (zone, hour) = if server_hour == "02" {
        ("+05:00", "05")
    } else {
        ("+02:00", "02")
    };
    // One server connection, shared by both sessions in turn.
    let daemon = one_connection_daemon("mysql");
    let url = format!(
        "mysql://root@{}/test?prefer_socket=false",
        daemon.mysql.expect("mysql")
    );
    let mut set = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect");
    let mut plain = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect");
    let both = |v: &str| (Some(v.to_owned()), Some(v.to_owned()));

    set.query_drop(format!("SET time_zone = '{zone}'"))
        .await
        .expect("SET time_zone");
    assert_eq!(hours(&mut set, hour_sql).await, both(hour));
    assert_eq!(
        hours(&mut plain, hour_sql).await,
        both(&server_hour),
        "a session that set nothing gets the server's zone back"
    );
    assert_eq!(hours(&mut set, hour_sql).await, both(hour));

    // sql_mode changes how the server reads the text.
    let concat = "SELECT 'a' || 'b' FROM floe_tz";
    set.query_drop("SET sql_mode = 'PIPES_AS_CONCAT'")
        .await
        .expect("SET sql_mode");
    let piped: Option<String> = set.query_first(concat).await.expect("concat");
    assert_eq!(piped.as_deref(), Some("ab"));
    let ored: Option<String> = plain.query_first(concat).await.expect("or");
    assert_eq!(
        ored.as_deref(),
        Some("0"),
        "the server's sql_mode: || is OR"
    );
    // A prepared statement is parsed under the mode in force when it is
    // prepared: each session gets its own, though both share a connection
    // (and its cache of prepared statements by text).
    let piped: Option<String> = set.exec_first(concat, ()).await.expect("prepared concat");
    assert_eq!(piped.as_deref(), Some("ab"));
    let ored: Option<mysql_async::Value> = plain.exec_first(concat, ()).await.expect("prepared or");
    assert!(
        !matches!(&ored, Some(mysql_async::Value::Bytes(b)) if b == b"ab"),
        "the server's sql_mode for a prepared statement too: {ored:?}"
    );
    let piped: Option<String> = set.exec_first(concat, ()).await.expect("prepared again");
    assert_eq!(piped.as_deref(), Some("ab"));

    // In a block, and after a write (whose connection the pool resets).
    set.query_drop("BEGIN").await.expect("BEGIN");
    assert_eq!(hours(&mut set, hour_sql).await, both(hour));
    set.query_drop("COMMIT").await.expect("COMMIT");
    set.query_drop("INSERT INTO floe_tz VALUES (2)")
        .await
        .expect("INSERT");
    assert_eq!(
        hours(&mut set, hour_sql).await,
        both(hour),
        "after the reset"
    );
    assert_eq!(hours(&mut plain, hour_sql).await, both(&server_hour));

    // A zone the server refuses is its error, on the next statement.
    set.query_drop("SET time_zone = 'Mars/Olympus_Mons'")
        .await
        .expect("Floe keeps the setting");
    let refused = set
        .query_drop(hour_sql)
        .await
        .expect_err("the server refuses the zone");
    assert!(refused.to_string().contains("time zone"), "{refused}");
    assert_eq!(hours(&mut plain, hour_sql).await, both(&server_hour));
    set.query_drop("SET time_zone = DEFAULT")
        .await
        .expect("SET DEFAULT");
    assert_eq!(hours(&mut set, hour_sql).await, both(&server_hour));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_clients_key_checks_and_select_limit_reach_mariadb() {
    let mut direct = mariadb_direct().await;
    for sql in [
        "DROP TABLE IF EXISTS test.floe_fk_child",
        "CREATE OR REPLACE TABLE test.floe_fk_parent (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE test.floe_fk_child (id INT PRIMARY KEY, parent INT, \
         FOREIGN KEY (parent) REFERENCES test.floe_fk_parent (id)) ENGINE=InnoDB",
        "INSERT INTO test.floe_fk_parent VALUES (1), (2), (3)",
    ] {
        direct
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // One server connection, shared by both sessions in turn.
    let daemon = one_connection_daemon("mysql");
    let url = format!(
        "mysql://root@{}/test?prefer_socket=false",
        daemon.mysql.expect("mysql")
    );
    let mut set = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect");
    let mut plain = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect");

    // A dump's restore turns the key checks off: an orphan row goes in.
    set.query_drop("SET foreign_key_checks = 0")
        .await
        .expect("SET foreign_key_checks");
    set.query_drop("INSERT INTO floe_fk_child VALUES (1, 99)")
        .await
        .expect("no key check for this session");
    let refused = plain
        .query_drop("INSERT INTO floe_fk_child VALUES (2, 98)")
        .await
        .expect_err("the other session's rows are checked");
    match refused {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1452, "{e}"),
        other => panic!("expected error 1452, got {other:?}"),
    }
    set.query_drop("SET foreign_key_checks = 1")
        .await
        .expect("SET foreign_key_checks back");
    set.query_drop("INSERT INTO floe_fk_child VALUES (3, 97)")
        .await
        .expect_err("checked again");

    // sql_select_limit, over text and binary rows.
    set.query_drop("SET sql_select_limit = 2")
        .await
        .expect("SET sql_select_limit");
    let sql = "SELECT id FROM floe_fk_parent ORDER BY id";
    let text: Vec<i64> = set.query(sql).await.expect("text");
    assert_eq!(text, vec![1, 2]);
    let binary: Vec<i64> = set.exec(sql, ()).await.expect("binary");
    assert_eq!(binary, vec![1, 2]);
    let all: Vec<i64> = plain.query(sql).await.expect("other session");
    assert_eq!(all, vec![1, 2, 3], "the other session has no limit");
    set.query_drop("SET sql_select_limit = DEFAULT")
        .await
        .expect("SET DEFAULT");
    let all: Vec<i64> = set.query(sql).await.expect("back to all");
    assert_eq!(all, vec![1, 2, 3]);
    direct
        .query_drop("DROP TABLE test.floe_fk_child, test.floe_fk_parent")
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_session_in_a_lake_namespace_reaches_mariadb_tables_by_qualified_name() {
    let mut direct = mariadb_direct().await;
    for sql in [
        "CREATE DATABASE IF NOT EXISTS floe_q_db",
        "CREATE OR REPLACE TABLE floe_q_db.floe_q_t (v VARCHAR(8))",
        "INSERT INTO floe_q_db.floe_q_t VALUES ('q')",
        // What the engine URL's database holds under the same name.
        "CREATE OR REPLACE TABLE test.floe_q_t (v VARCHAR(8))",
        "INSERT INTO test.floe_q_t VALUES ('wrong')",
    ] {
        direct
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let config = format!(
        "[[engines]]\nname = \"local\"\ntype = \"datafusion\"\n\n\
         [[engines]]\nname = \"maria\"\ntype = \"mysql\"\nurl = \"{}\"\nmax_connections = 1\n",
        mysql_url()
    );
    // The demo's namespace `demo` is in the lake only.
    let daemon = Daemon::start(crate::options().demo(1000).config(&config));
    let url = format!(
        "mysql://root@{}/demo?prefer_socket=false",
        daemon.mysql.expect("mysql")
    );
    let mut conn = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect in the lake namespace");
    conn.query_drop("SET floe.engine = 'maria'")
        .await
        .expect("pin maria");
    let text: Option<String> = conn
        .query_first("SELECT v FROM floe_q_db.floe_q_t")
        .await
        .expect("a qualified name runs whatever the session's database");
    assert_eq!(text.as_deref(), Some("q"));
    let prepared: Option<String> = conn
        .exec_first("SELECT v FROM floe_q_db.floe_q_t WHERE v <> ?", ("none",))
        .await
        .expect("prepared, qualified");
    assert_eq!(prepared.as_deref(), Some("q"));
    // An unqualified name means the session's database, which MariaDB does
    // not have: its error (1049, "Unknown database"), never the URL
    // database's table of that name.
    match conn
        .query_first::<String, _>("SELECT v FROM floe_q_t")
        .await
    {
        Err(mysql_async::Error::Server(e)) => {
            assert!(e.message.contains("Unknown database 'demo'"), "{e:?}");
            assert_eq!((e.code, e.state.as_str()), (1049, "42000"), "{e:?}");
        }
        other => panic!("expected MariaDB's unknown database, got {other:?}"),
    }
}

/// The first error text of a simple query through Floe.
async fn pg_error(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(rows) => panic!("{sql}: expected an error, got {rows:?}"),
        Err(e) => e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
    }
}

#[tokio::test]
async fn a_postgresql_clients_search_path_decides_where_unqualified_names_route() {
    let direct = postgres_direct().await;
    direct
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS floe_sp;
             DROP TABLE IF EXISTS floe_sp.sp_routed;
             CREATE TABLE floe_sp.sp_routed (v int); INSERT INTO floe_sp.sp_routed VALUES (7);",
        )
        .await
        .expect("load PostgreSQL");
    // The one engine serves the `floe_sp` schema only: a statement the router
    // resolves in `public` has nowhere to go.
    let daemon = plain_daemon(&format!(
        "[[engines]]\nname = \"pg\"\ntype = \"postgres\"\nurl = \"{}\"\nserves = [\"*.floe_sp.*\"]\n",
        postgres_conninfo()
    ));
    let client = daemon.connect().await;
    let select = "SELECT v FROM sp_routed";
    let nowhere = pg_error(&client, select).await;
    assert!(nowhere.contains("no engine"), "{nowhere}");

    client
        .batch_execute("SET search_path = floe_sp, public")
        .await
        .expect("SET search_path");
    assert_eq!(
        text_rows(&client.simple_query(select).await.expect("simple")),
        vec![vec![Some("7".to_owned())]]
    );
    let v: i32 = client
        .query_one("SELECT v FROM sp_routed WHERE v = $1", &[&7])
        .await
        .expect("extended")
        .get(0);
    assert_eq!(v, 7);
    let rows = text_rows(
        &client
            .simple_query(&format!("EXPLAIN ROUTE {select}"))
            .await
            .expect("EXPLAIN ROUTE"),
    );
    assert_eq!(rows[0][0].as_deref(), Some("pg"), "{rows:?}");

    // A block that changed the path and rolled back leaves it as it was.
    client
        .batch_execute("BEGIN; SET search_path = public; ROLLBACK")
        .await
        .expect("rolled-back SET");
    assert_eq!(
        text_rows(&client.simple_query(select).await.expect("after ROLLBACK")),
        vec![vec![Some("7".to_owned())]]
    );

    client
        .batch_execute("RESET search_path")
        .await
        .expect("RESET");
    let again = pg_error(&client, select).await;
    assert!(again.contains("no engine"), "{again}");
}
