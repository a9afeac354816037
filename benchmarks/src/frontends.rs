//! `floe-bench frontends`: one large result through Flight SQL, PostgreSQL wire
//! and MySQL wire, against DataFusion collecting it in process; and `SELECT 1`
//! latency through the MySQL front end against MariaDB directly.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use arrow_flight::sql::client::FlightSqlServiceClient;
use floe_conformance::{Daemon, DaemonOptions};
use futures::{StreamExt, TryStreamExt};
use mysql_async::prelude::*;

/// The result every path fetches: three columns per row, computed, so no path
/// reads storage and all measure result delivery.
fn query(rows: u64) -> String {
    format!(
        "SELECT value AS id, value * 2 AS twice, value % 7 AS bucket FROM generate_series(1, {rows})"
    )
}

pub fn run(floe: PathBuf, rows: u64, mysql_url: &str, queries: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // Fail early, with the address, when the peer is not there.
        let mut mariadb = mysql_async::Conn::from_url(mysql_url)
            .await
            .with_context(|| format!("MariaDB at `{mysql_url}` is unreachable"))?;
        let daemon = Daemon::start(DaemonOptions::new(floe));
        let sql = query(rows);
        println!("# floe-bench frontends: {rows} rows of `{sql}`");
        println!();
        println!("| path | seconds | rows/s | ratio to in-process DataFusion |");
        println!("|---|---|---|---|");
        let in_process = timed(rows, datafusion_in_process(&sql)).await?;
        report(
            "DataFusion in process (collect)",
            rows,
            in_process,
            in_process,
        );
        let flight = timed(rows, flight_sql(&daemon, &sql)).await?;
        report(
            "Floe Flight SQL (Rust client, Arrow)",
            rows,
            flight,
            in_process,
        );
        let pg = timed(rows, postgres(&daemon, &sql)).await?;
        report(
            "Floe PostgreSQL wire (tokio-postgres)",
            rows,
            pg,
            in_process,
        );
        let my = timed(rows, mysql_wire(&daemon, &sql)).await?;
        report("Floe MySQL wire (mysql_async, text)", rows, my, in_process);
        println!();
        println!("| measure | floe mysql | mariadb | floe/mariadb |");
        println!("|---|---|---|---|");
        let mut floe_conn = floe_mysql(&daemon).await?;
        let (floe_p50, floe_p99) = latency(&mut floe_conn, queries).await?;
        let (maria_p50, maria_p99) = latency(&mut mariadb, queries).await?;
        println!(
            "| SELECT 1 latency p50 (µs), 1 client | {floe_p50:.0} | {maria_p50:.0} | {:.2} |",
            floe_p50 / maria_p50
        );
        println!(
            "| SELECT 1 latency p99 (µs), 1 client | {floe_p99:.0} | {maria_p99:.0} | {:.2} |",
            floe_p99 / maria_p99
        );
        drop(daemon);
        Ok(())
    })
}

fn report(path: &str, rows: u64, seconds: f64, baseline: f64) {
    println!(
        "| {path} | {seconds:.2} | {:.0} | {:.2} |",
        rows as f64 / seconds,
        baseline / seconds
    );
}

/// Runs `fetch`, checks it saw every row, returns the seconds it took.
async fn timed(
    rows: u64,
    fetch: impl std::future::Future<Output = anyhow::Result<u64>>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let seen = fetch.await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(seen == rows, "saw {seen} rows, expected {rows}");
    Ok(seconds)
}

async fn datafusion_in_process(sql: &str) -> anyhow::Result<u64> {
    let ctx = datafusion::prelude::SessionContext::new();
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(batches.iter().map(|b| b.num_rows() as u64).sum())
}

async fn flight_sql(daemon: &Daemon, sql: &str) -> anyhow::Result<u64> {
    let addr = daemon
        .flight_sql
        .context("the daemon has no Flight SQL listener")?;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = FlightSqlServiceClient::new(channel);
    let info = client.execute(sql.to_owned(), None).await?;
    let mut rows = 0u64;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.context("endpoint without ticket")?;
        let mut stream = client.do_get(ticket).await?;
        while let Some(batch) = stream.try_next().await? {
            rows += batch.num_rows() as u64;
        }
    }
    Ok(rows)
}

async fn postgres(daemon: &Daemon, sql: &str) -> anyhow::Result<u64> {
    let client = daemon.connect().await;
    let statement = client.prepare(sql).await?;
    let stream = client.query_raw(&statement, Vec::<i64>::new()).await?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = 0u64;
    while let Some(row) = stream.next().await {
        row?;
        rows += 1;
    }
    Ok(rows)
}

/// A connection to Floe's MySQL front end as user `floe`.
async fn floe_mysql(daemon: &Daemon) -> anyhow::Result<mysql_async::Conn> {
    let addr = daemon.mysql.context("the daemon has no MySQL listener")?;
    Ok(mysql_async::Conn::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .user(Some("floe"))
            .prefer_socket(false),
    )
    .await?)
}

async fn mysql_wire(daemon: &Daemon, sql: &str) -> anyhow::Result<u64> {
    let mut conn = floe_mysql(daemon).await?;
    let mut result = conn.query_iter(sql).await?;
    let mut rows = 0u64;
    let mut stream = result
        .stream::<mysql_async::Row>()
        .await?
        .context("no result set")?;
    while let Some(row) = stream.next().await {
        row?;
        rows += 1;
    }
    Ok(rows)
}

async fn latency(conn: &mut mysql_async::Conn, queries: usize) -> anyhow::Result<(f64, f64)> {
    for _ in 0..200 {
        conn.query_drop("SELECT 1").await?;
    }
    let mut samples = Vec::with_capacity(queries);
    for _ in 0..queries {
        let started = Instant::now();
        let _: Option<i64> = conn.query_first("SELECT 1").await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    Ok((at(0.50), at(0.99)))
}
