//! `floe-bench lake`: a lake under load. Small appends arrive while a query
//! workload filters on one column through Floe's PostgreSQL front end; the
//! same run is made twice, with adaptive maintenance off and on, and the
//! hot queries' latency and bytes scanned are compared over the same time.
//! A CSV timeline is written and plotted to PNG (matplotlib, from the Python
//! given).
//!
//! `floe-bench telemetry` measures what reporting a query costs the query
//! path: building a `QueryEvent` as the session does and handing it to the
//! channel, with the aggregator draining it and with the channel full.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use floe_conformance::{Daemon, DaemonOptions};
use floe_dialects::telemetry::{QueryEvent, QueryOutcome};
use floe_dialects::{Dialect, Operator};
use floe_maintenance::telemetry::{self, Heat, TelemetryConfig};

/// What `floe-bench lake` runs.
pub struct Options {
    /// The floe binary.
    pub floe: PathBuf,
    /// A Python with matplotlib, for the plot.
    pub python: PathBuf,
    /// Seconds each phase runs.
    pub seconds: u64,
    /// Rows loaded before the run starts, in `initial_appends` appends.
    pub initial_rows: u64,
    /// Appends of the initial load.
    pub initial_appends: u64,
    /// Rows per append during the run (one append every 2 s).
    pub append_rows: u64,
    /// Where the CSV and PNG go.
    pub out: PathBuf,
}

const USERS: u64 = 10_000;

fn config(adaptive: bool) -> String {
    format!(
        r#"
[maintenance]
mode = "{}"
interval = "10s"

[[policies]]
scope = "lake"
compact = {{ target_file_size = "4MiB" }}
expire = {{ older_than = "1m", retain_last = 5 }}
orphans = {{ older_than = "1m" }}
triggers = {{ snapshots = 30 }}
"#,
        if adaptive { "adaptive" } else { "manual" }
    )
}

/// `count` rows starting at `first`, as an INSERT.
fn insert(first: u64, count: u64) -> String {
    format!(
        "INSERT INTO public.events SELECT value, (value * 7919) % {USERS}, value % 97, \
         concat('payload-', CAST(value * 31 AS VARCHAR)) FROM generate_series({first}, {})",
        first + count - 1
    )
}

/// One phase's timeline: (seconds since start, latency ms) per hot query.
struct Phase {
    latencies: Vec<(f64, f64)>,
    scanned: Vec<(f64, f64)>,
    storage_bytes: u64,
    jobs: usize,
}

async fn phase(options: &Options, adaptive: bool) -> anyhow::Result<Phase> {
    let daemon = Daemon::start(DaemonOptions::new(&options.floe).config(&config(adaptive)));
    let client = daemon.connect().await;
    client
        .batch_execute(
            "CREATE TABLE public.events (id BIGINT, user_id BIGINT, amount BIGINT, payload VARCHAR)",
        )
        .await?;
    let per = options.initial_rows / options.initial_appends.max(1);
    for i in 0..options.initial_appends {
        client.batch_execute(&insert(i * per, per)).await?;
    }
    let mut next_id = options.initial_appends * per;
    let started = Instant::now();
    let start_ms = floe_maintenance::now_ms();
    let writer = daemon.connect().await;
    let append_rows = options.append_rows;
    let ingest = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if writer
                .batch_execute(&insert(next_id, append_rows))
                .await
                .is_err()
            {
                return;
            }
            next_id += append_rows;
        }
    });
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(options.seconds) {
        let user = (n * 7) % USERS;
        n += 1;
        let t = Instant::now();
        client
            .simple_query(&format!(
                "SELECT count(*), sum(amount) FROM public.events WHERE user_id = {user}"
            ))
            .await?;
        latencies.push((
            started.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64() * 1000.0,
        ));
    }
    ingest.abort();
    let (status, body) = daemon.admin_get(&format!(
        "/api/telemetry/events?table=lake.public.events&since_ms={start_ms}&limit=100000"
    ));
    if status != 200 {
        bail!("telemetry events: {status} {body}");
    }
    let events: serde_json::Value = serde_json::from_str(&body)?;
    #[allow(clippy::cast_precision_loss)]
    let scanned = events
        .as_array()
        .context("events")?
        .iter()
        .filter(|e| e["shape"].as_str().is_some_and(|s| s.contains("user_id")))
        .filter_map(|e| {
            Some((
                (e["at_ms"].as_i64()? - start_ms) as f64 / 1000.0,
                e["scanned_bytes"].as_f64()?,
            ))
        })
        .collect();
    let runs = std::process::Command::new(&options.floe)
        .args(["runs", "--json", "--config"])
        .arg(daemon.dir().join("floe.toml"))
        .output()?;
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap_or_default();
    Ok(Phase {
        latencies,
        scanned,
        storage_bytes: dir_size(&daemon.dir().join("data").join("warehouse")),
        jobs: runs.as_array().map_or(0, Vec::len),
    })
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            dir_size(&path)
        } else {
            entry.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let at = ((values.len() - 1) as f64 * p).round() as usize;
    values[at]
}

/// Figures of the last third of a phase, when adaptive maintenance had time.
fn tail(points: &[(f64, f64)], seconds: u64) -> Vec<f64> {
    #[allow(clippy::cast_precision_loss)]
    let from = seconds as f64 * 2.0 / 3.0;
    points
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|(_, v)| *v)
        .collect()
}

/// Runs both phases and prints the comparison.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "lake under load: {} rows in {} appends, then {} rows every 2 s for {} s; hot query: WHERE user_id = ?",
        options.initial_rows, options.initial_appends, options.append_rows, options.seconds
    );
    let off = runtime.block_on(phase(options, false))?;
    let on = runtime.block_on(phase(options, true))?;
    let mut csv = String::from("mode,t_s,latency_ms\n");
    for (mode, phase) in [("off", &off), ("on", &on)] {
        for (t, ms) in &phase.latencies {
            let _ = writeln!(csv, "{mode},{t:.3},{ms:.3}");
        }
    }
    std::fs::create_dir_all(&options.out)?;
    let csv_path = options.out.join("lake.csv");
    std::fs::write(&csv_path, csv)?;
    let mut scanned_csv = String::from("mode,t_s,scanned_bytes\n");
    for (mode, phase) in [("off", &off), ("on", &on)] {
        for (t, b) in &phase.scanned {
            let _ = writeln!(scanned_csv, "{mode},{t:.3},{b}");
        }
    }
    let scanned_path = options.out.join("lake-scanned.csv");
    std::fs::write(&scanned_path, scanned_csv)?;
    println!(
        "{:<10} {:>8} {:>12} {:>12} {:>16} {:>12} {:>6}",
        "adaptive", "queries", "p50 ms", "p99 ms", "scanned B/query", "storage MiB", "jobs"
    );
    let mut figures = Vec::new();
    for (mode, phase) in [("off", &off), ("on", &on)] {
        let mut lat = tail(&phase.latencies, options.seconds);
        let scanned = tail(&phase.scanned, options.seconds);
        #[allow(clippy::cast_precision_loss)]
        let mean_scanned = scanned.iter().sum::<f64>() / scanned.len().max(1) as f64;
        let p50 = percentile(&mut lat, 0.5);
        let p99 = percentile(&mut lat, 0.99);
        #[allow(clippy::cast_precision_loss)]
        let storage = phase.storage_bytes as f64 / 1048576.0;
        println!(
            "{mode:<10} {:>8} {p50:>12.2} {p99:>12.2} {mean_scanned:>16.0} {storage:>12.1} {:>6}",
            phase.latencies.len(),
            phase.jobs
        );
        figures.push((p50, mean_scanned));
    }
    println!(
        "last third of the run: p50 latency {:.1}x lower, bytes scanned {:.1}x fewer with adaptive maintenance",
        figures[0].0 / figures[1].0.max(1e-9),
        figures[0].1 / figures[1].1.max(1.0)
    );
    let png = options.out.join("lake.png");
    let status = std::process::Command::new(&options.python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("plot_lake.py"))
        .arg(&csv_path)
        .arg(&scanned_path)
        .arg(&png)
        .status()
        .context("running the plot script")?;
    if status.success() {
        println!("plot: {}", png.display());
    } else {
        println!(
            "plot failed (is matplotlib installed in {}?)",
            options.python.display()
        );
    }
    Ok(())
}

/// A `QueryEvent` as the session builds one: the strings it clones, the
/// vectors the router already made.
fn event(user: &str, sql: &str) -> QueryEvent {
    QueryEvent {
        at_ms: floe_maintenance::now_ms(),
        protocol: "postgres",
        user: user.to_owned(),
        tag: None,
        fingerprint: Some(42),
        sql: sql.to_owned(),
        dialect: Dialect::Postgres,
        tables: vec!["lake.public.events".to_owned()],
        columns: vec![(0, "user_id".to_owned(), Operator::Equality)],
        engine: "local".to_owned(),
        latency: Duration::from_millis(1),
        rows: 1,
        bytes: 64,
        scanned_files: Some(3),
        scanned_bytes: Some(1 << 20),
        outcome: QueryOutcome::Ok,
    }
}

/// `floe-bench telemetry`.
pub fn telemetry(events: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let sql = "SELECT count(*), sum(amount) FROM public.events WHERE user_id = 4711";
    let per_event = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..events {
            f();
        }
        #[allow(clippy::cast_precision_loss)]
        let ns = t.elapsed().as_nanos() as f64 / events as f64;
        ns
    };
    // Channel full: nobody drains it.
    let (full, _rx) = telemetry::channel(1);
    full.emit(event("u", sql));
    let mut dropped = 0u64;
    let full_ns = per_event(&mut || dropped += u64::from(!full.emit(event("analyst", sql))));
    // Drained by the aggregator on its own task, as in the daemon.
    let (sender, rx) = telemetry::channel(8192);
    let heat = Arc::new(Heat::in_memory(TelemetryConfig::default()));
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = runtime.spawn(Arc::clone(&heat).run(rx, cancel.clone()));
    let mut sent = 0u64;
    let drained_ns = per_event(&mut || sent += u64::from(sender.emit(event("analyst", sql))));
    cancel.cancel();
    runtime.block_on(task)?;
    println!("telemetry emit cost per query ({events} events):");
    println!("  channel full:    {full_ns:>8.0} ns (all {dropped} dropped)");
    println!(
        "  being drained:   {drained_ns:>8.0} ns ({sent} sent, the rest dropped when the aggregator fell behind)"
    );
    println!("  target: ≤ 1000 ns");
    Ok(())
}
