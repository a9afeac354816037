//! The translation corpus, verified by execution: each MySQL statement runs on
//! the local MariaDB as written and, translated by `floe_dialects::translate`,
//! on the local PostgreSQL; each PostgreSQL statement the other way round; and
//! each statement through Floe's front end of its dialect on Floe's embedded
//! engine (tables created in the embedded lake). The answers must agree with
//! the original's (values; row order where the statement orders).
//!
//! Every statement's outcome is recorded in `corpus/outcomes.txt` — `pass`,
//! `error` (a clear error instead of a translation: acceptable) or `wrong` (a
//! different answer without an error: a bug to fix) — with the pass rate per
//! pair. The test fails when an outcome changes, so a fix or a regression is
//! seen; `FLOE_CORPUS_BLESS=1` rewrites the file after a deliberate change.
//!
//! Servers: `FLOE_TEST_MYSQL` (default `mysql://root@127.0.0.1:3306/test`) and
//! `FLOE_TEST_POSTGRES` (default `host=127.0.0.1 port=5432 user=postgres
//! dbname=test`).

use std::fmt::Write as _;
use std::path::Path;

use floe_conformance::{Daemon, DaemonOptions};
use floe_dialects::{ColumnTypes, Dialect, translate_with};
use mysql_async::prelude::*;

const SCHEMA: &str = "floe_corpus";

type Rows = Vec<Vec<Option<String>>>;

/// The corpus tables; the servers differ only in the name of a timestamp
/// without zone.
fn tables(timestamp: &str) -> [String; 2] {
    [
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), city VARCHAR(50), \
         signup DATE, vip BOOLEAN)"
            .to_owned(),
        format!(
            "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, amount DECIMAL(10,2), \
             qty INT, status VARCHAR(20), placed_at {timestamp}, note VARCHAR(100))"
        ),
    ]
}

/// The column types of [`tables`], as the router would get them from an
/// engine's catalog.
fn column_types() -> ColumnTypes {
    let mut types = ColumnTypes::default();
    for (column, type_name) in [
        ("id", "int"),
        ("name", "varchar(50)"),
        ("city", "varchar(50)"),
        ("signup", "date"),
        ("vip", "boolean"),
        ("customer_id", "int"),
        ("amount", "decimal(10,2)"),
        ("qty", "int"),
        ("status", "varchar(20)"),
        ("placed_at", "timestamp"),
        ("note", "varchar(100)"),
    ] {
        types.insert(column, type_name);
    }
    types
}

/// Deterministic data, the same text for both servers.
fn inserts() -> Vec<String> {
    let cities = ["'Paris'", "'Berlin'", "NULL", "'Lima'", "'Oslo'"];
    let names = [
        "Ana", "Bob", "Carla", "Dan", "Eve", "Farid", "Gus", "Hana", "Ivo", "Jin",
    ];
    let mut statements = Vec::new();
    for (i, name) in names.iter().enumerate() {
        statements.push(format!(
            "INSERT INTO customers VALUES ({}, '{name}', {}, '2024-0{}-{:02}', {})",
            i + 1,
            cities[i % cities.len()],
            i % 9 + 1,
            i * 2 + 3,
            if i % 3 == 0 { "TRUE" } else { "FALSE" }
        ));
    }
    let statuses = ["'new'", "'paid'", "'shipped'", "'paid'"];
    for i in 0..30 {
        statements.push(format!(
            "INSERT INTO orders VALUES ({}, {}, {}.{:02}, {}, {}, '2024-0{}-{:02} {:02}:{:02}:{:02}', {})",
            i + 1,
            i % 10 + 1,
            (i * 37) % 250 + 5,
            (i * 13) % 100,
            i % 5 + 1,
            statuses[i % statuses.len()],
            i % 4 + 1,
            i % 27 + 1,
            (i * 7) % 24,
            (i * 11) % 60,
            (i * 17) % 60,
            if i % 4 == 0 { "NULL".to_owned() } else { format!("'note {i}'") }
        ));
    }
    statements
}

async fn mariadb() -> mysql_async::Conn {
    let url = std::env::var("FLOE_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let mut conn = mysql_async::Conn::from_url(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("MariaDB at {url} is unreachable ({e}); set FLOE_TEST_MYSQL"));
    for sql in [
        format!("DROP DATABASE IF EXISTS {SCHEMA}"),
        format!("CREATE DATABASE {SCHEMA}"),
        format!("USE {SCHEMA}"),
    ]
    .into_iter()
    .chain(tables("DATETIME"))
    .chain(inserts())
    {
        conn.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn
}

async fn postgres() -> tokio_postgres::Client {
    let conninfo = std::env::var("FLOE_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned());
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {conninfo} is unreachable ({e}); set FLOE_TEST_POSTGRES")
        });
    tokio::spawn(connection);
    let mut setup = vec![
        format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"),
        format!("CREATE SCHEMA {SCHEMA}"),
        format!("SET search_path = {SCHEMA}"),
    ];
    setup.extend(tables("TIMESTAMP"));
    setup.extend(inserts());
    for sql in setup {
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    client
}

async fn run_mariadb(conn: &mut mysql_async::Conn, sql: &str) -> Result<Rows, String> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| match row.as_ref(i) {
                    Some(mysql_async::Value::NULL) | None => None,
                    Some(mysql_async::Value::Bytes(b)) => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    Some(other) => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect())
}

async fn run_postgres(client: &tokio_postgres::Client, sql: &str) -> Result<Rows, String> {
    let messages = client.simple_query(sql).await.map_err(|e| e.to_string())?;
    Ok(floe_conformance::text_rows(&messages))
}

/// One spelling per value across the two servers: booleans as 0/1,
/// timestamps without a `T`.
fn canonical(value: &Option<String>) -> Option<String> {
    let v = value.as_deref()?;
    Some(match v {
        "t" | "true" => "1".to_owned(),
        "f" | "false" => "0".to_owned(),
        _ => v.replace('T', " "),
    })
}

/// Two values agree when their text does, or when both are numbers within
/// 1e-4 of each other relatively: MariaDB prints `AVG` of integers with four
/// decimals and `PI()` with six, PostgreSQL with sixteen.
fn agree(a: &Option<String>, b: &Option<String>) -> bool {
    match (canonical(a), canonical(b)) {
        (None, None) => true,
        (Some(x), Some(y)) if x == y => true,
        (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(p), Ok(q)) => (p - q).abs() <= 1e-4 * p.abs().max(q.abs()).max(1.0),
            _ => false,
        },
        _ => false,
    }
}

fn same(a: &Rows, b: &Rows, ordered: bool) -> bool {
    let sorted = |rows: &Rows| -> Rows {
        let mut out: Rows = rows
            .iter()
            .map(|r| r.iter().map(canonical).collect())
            .collect();
        if !ordered {
            out.sort();
        }
        out
    };
    let (a, b) = (sorted(a), sorted(b));
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| agree(p, q)))
}

fn statements(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(str::to_owned)
        .collect()
}

/// Floe with its embedded engine, the corpus tables created in it through
/// the PostgreSQL front end.
async fn floe() -> (Daemon, tokio_postgres::Client, mysql_async::Conn) {
    let daemon = Daemon::start(DaemonOptions::new(floe_conformance::floe_bin()));
    let client = daemon.connect().await;
    for sql in tables("TIMESTAMP") {
        client
            .batch_execute(&sql.replace("CREATE TABLE ", "CREATE TABLE public."))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // One multi-row INSERT per table: one Iceberg commit each.
    for table in ["customers", "orders"] {
        let prefix = format!("INSERT INTO {table} VALUES ");
        let rows: Vec<String> = inserts()
            .iter()
            .filter_map(|sql| sql.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        let sql = format!("INSERT INTO public.{table} VALUES {}", rows.join(", "));
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let addr = daemon.mysql.expect("the daemon listens for MySQL");
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some("floe"))
        .db_name(Some("public"))
        .prefer_socket(false);
    let conn = mysql_async::Conn::new(opts)
        .await
        .expect("connect to Floe over MySQL");
    (daemon, client, conn)
}

/// Where a corpus statement runs besides its own server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The other server, after `floe_dialects::translate_with`.
    Server(Dialect),
    /// Floe's embedded engine, through Floe's front end of the statement's
    /// own dialect: what a client of that protocol gets.
    Embedded,
}

#[tokio::test]
async fn translations_give_the_same_answers_as_the_originals() {
    let mut maria = mariadb().await;
    let pg = postgres().await;
    let (_daemon, floe_pg, mut floe_my) = floe().await;
    let types = column_types();
    let mut report = String::new();
    let mut summary = String::new();
    for (file, from, target) in [
        (
            "mysql.sql",
            Dialect::MySql,
            Target::Server(Dialect::Postgres),
        ),
        (
            "postgres.sql",
            Dialect::Postgres,
            Target::Server(Dialect::MySql),
        ),
        ("mysql.sql", Dialect::MySql, Target::Embedded),
        ("postgres.sql", Dialect::Postgres, Target::Embedded),
    ] {
        let to = match target {
            Target::Server(to) => to.to_string(),
            Target::Embedded => "embedded".to_owned(),
        };
        let (mut pass, mut error, mut wrong) = (0, 0, 0);
        for (n, sql) in statements(file).iter().enumerate() {
            let ordered = sql.to_uppercase().contains("ORDER BY");
            let original = match from {
                Dialect::MySql => run_mariadb(&mut maria, sql).await,
                _ => run_postgres(&pg, sql).await,
            };
            let original = original
                .unwrap_or_else(|e| panic!("{file}:{} fails on its own server: {sql}: {e}", n + 1));
            let (translated, answer) = match target {
                Target::Server(to) => {
                    let translated = match translate_with(sql, from, to, &types) {
                        Ok(t) => t.join("; "),
                        Err(e) => {
                            error += 1;
                            let _ = writeln!(report, "{from}->{to}\t{}\terror\t{sql}\t{e}", n + 1);
                            continue;
                        }
                    };
                    let answer = match to {
                        Dialect::MySql => run_mariadb(&mut maria, &translated).await,
                        _ => run_postgres(&pg, &translated).await,
                    };
                    (translated, answer)
                }
                Target::Embedded => {
                    let answer = match from {
                        Dialect::MySql => run_mariadb(&mut floe_my, sql).await,
                        _ => run_postgres(&floe_pg, sql).await,
                    };
                    ("(through Floe)".to_owned(), answer)
                }
            };
            let outcome = match answer {
                Err(e) => {
                    error += 1;
                    format!("error\t{sql}\t{translated} -> {}", e.replace('\n', " "))
                }
                Ok(rows) if same(&original, &rows, ordered) => {
                    pass += 1;
                    format!("pass\t{sql}")
                }
                Ok(rows) => {
                    wrong += 1;
                    format!(
                        "wrong\t{sql}\t{translated} -> {:?} instead of {:?}",
                        rows.first(),
                        original.first()
                    )
                }
            };
            let _ = writeln!(report, "{from}->{to}\t{}\t{outcome}", n + 1);
        }
        let total = pass + error + wrong;
        let _ = writeln!(
            summary,
            "# {from}->{to}: {pass}/{total} pass ({:.0} %), {error} clear errors, {wrong} wrong answers",
            100.0 * f64::from(pass) / f64::from(total.max(1))
        );
    }
    let text = format!("{summary}{report}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/outcomes.txt");
    if std::env::var_os("FLOE_CORPUS_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write outcomes");
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    println!("{summary}");
    let outcome_lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').take(3).collect::<Vec<_>>().join("\t"))
            .collect()
    };
    assert_eq!(
        outcome_lines(&recorded),
        outcome_lines(&text),
        "corpus outcomes changed; if deliberate, rerun with FLOE_CORPUS_BLESS=1\n{summary}"
    );
}
