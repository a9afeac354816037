//! Adaptive maintenance end to end, through the real daemon: queries through
//! the PostgreSQL front end are the telemetry; the planner picks the hot
//! table and its hot predicate column; the pass sorts the table by it and the
//! same queries then scan at least ten times fewer bytes for the same rows.
//! When the workload moves to another column, the planner follows. Telemetry
//! survives a restart.

use std::time::Duration;

use floe_conformance::{Daemon, eventually};
use serde_json::Value;

use crate::{options, text_rows};

const ROWS_PER_INSERT: u64 = 5_000;
const INSERTS: u64 = 20;

const CONFIG: &str = r#"
[maintenance]
mode = "adaptive"
interval = "1h"

[maintenance.telemetry]
flush_interval = "1s"

[[policies]]
scope = "lake"
compact = { target_file_size = "32KiB" }
"#;

fn json(daemon: &Daemon, path: &str) -> Value {
    let (status, body) = daemon.admin_get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Many small files, every one spanning the whole range of both columns.
async fn load(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE public.events (id BIGINT, user_id BIGINT, session_id BIGINT, amount BIGINT); \
             CREATE TABLE public.cold (id BIGINT)",
        )
        .await
        .expect("create tables");
    for insert in 0..INSERTS {
        let values: Vec<String> = (0..ROWS_PER_INSERT)
            .map(|i| {
                let id = insert * ROWS_PER_INSERT + i;
                format!(
                    "({id}, {}, {}, {})",
                    (id * 7919) % 1000,
                    (id * 104_729) % 5000,
                    id % 97
                )
            })
            .collect();
        client
            .batch_execute(&format!(
                "INSERT INTO public.events VALUES {}",
                values.join(",")
            ))
            .await
            .expect("insert events");
    }
    for i in 0..6 {
        client
            .batch_execute(&format!("INSERT INTO public.cold VALUES ({i})"))
            .await
            .expect("insert cold");
    }
}

/// Runs `queries` filters on `column`; returns the answers.
async fn workload(
    client: &tokio_postgres::Client,
    column: &str,
    queries: u64,
    modulo: u64,
) -> Vec<Vec<Option<String>>> {
    let mut answers = Vec::new();
    for n in 0..queries {
        let value = (n * 31) % modulo;
        let rows = client
            .simple_query(&format!(
                "SELECT count(*), sum(amount), min(id) FROM public.events WHERE {column} = {value}"
            ))
            .await
            .expect("workload query");
        answers.extend(text_rows(&rows));
    }
    answers
}

/// The mean bytes scanned by the queries on `column` recorded after `since_ms`.
/// The bytes scanned by each metered event filtering on `column` since
/// `since_ms`.
fn metered(daemon: &Daemon, column: &str, since_ms: i64) -> Vec<f64> {
    let events = json(
        daemon,
        &format!("/api/telemetry/events?table=lake.public.events&since_ms={since_ms}&limit=10000"),
    );
    let wanted = format!("lake.public.events.{column}:eq");
    events
        .as_array()
        .expect("events array")
        .iter()
        .filter(|e| {
            e["columns"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x == wanted.as_str()))
        })
        .filter_map(|e| e["scanned_bytes"].as_f64())
        .collect()
}

/// The mean bytes scanned by the `expected` workload queries on `column`
/// since `since_ms`, once the aggregator has recorded all of them (the
/// table's query count also counts the loading statements, so it can reach
/// its mark before the last workload event is in).
async fn mean_scanned(
    daemon: &Daemon,
    column: &str,
    since_ms: i64,
    expected: usize,
) -> (f64, usize) {
    eventually(Duration::from_secs(10), || async {
        metered(daemon, column, since_ms).len() >= expected
    })
    .await;
    let scanned = metered(daemon, column, since_ms);
    assert!(
        !scanned.is_empty(),
        "no metered event on {column} since {since_ms}"
    );
    #[allow(clippy::cast_precision_loss)]
    let mean = scanned.iter().sum::<f64>() / scanned.len() as f64;
    (mean, scanned.len())
}

/// The time of the last event recorded, as a mark for `since_ms`: a
/// statement sent after it starts in a later millisecond (the events filter
/// is strict, and a fast statement right after the mark could otherwise
/// share its millisecond and go uncounted).
fn last_event_ms(daemon: &Daemon) -> i64 {
    let last = json(daemon, "/api/telemetry/events?limit=1")
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["at_ms"].as_i64())
        .unwrap_or(0);
    // Events are stamped with the daemon's clock, the same as this one: wait
    // (at most a millisecond) for the next millisecond to begin.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    while now() <= last {
        std::hint::spin_loop();
    }
    last
}

async fn wait_for_queries(daemon: &Daemon, at_least: u64) {
    let seen = eventually(Duration::from_secs(10), || async {
        json(daemon, "/api/telemetry")
            .as_array()
            .and_then(|t| t.iter().find(|x| x["table"] == "lake.public.events"))
            .and_then(|t| t["total_queries"].as_u64())
            .is_some_and(|n| n >= at_least)
    })
    .await;
    assert!(
        seen,
        "telemetry never counted {at_least} queries: {}",
        json(daemon, "/api/telemetry")
    );
}

/// Asserts the plan's first job is a sort of `events` led by `column`.
fn assert_plan_sorts_by(daemon: &Daemon, column: &str) {
    let plan = json(daemon, "/api/maintenance/plan");
    let first = &plan[0];
    assert_eq!(
        first["table"], "lake.public.events",
        "hot table first: {plan:#}"
    );
    assert_eq!(
        first["sort_by"][0], column,
        "sort key from the workload: {plan:#}"
    );
    assert!(
        first["operations"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "compact")),
        "{plan:#}"
    );
    let cold = plan
        .as_array()
        .and_then(|p| p.iter().position(|x| x["table"] == "lake.public.cold"))
        .expect("the cold table is planned too");
    assert!(cold > 0, "{plan:#}");
}

fn run_pass(daemon: &Daemon) {
    let (status, body) = daemon.admin_post("/api/maintenance/run");
    assert_eq!(status, 200, "{body}");
    let jobs: Value = serde_json::from_str(&body).expect("jobs JSON");
    let events = jobs
        .as_array()
        .and_then(|j| j.iter().find(|x| x["table"] == "lake.public.events"))
        .unwrap_or_else(|| panic!("no job on events: {jobs:#}"));
    assert!(events["error"].is_null(), "{jobs:#}");
}

#[tokio::test]
async fn hot_predicates_drive_sort_compaction_and_the_planner_follows_the_workload() {
    let daemon = Daemon::start(options().config(CONFIG));
    let client = daemon.connect().await;
    load(&client).await;

    // Workload A filters on user_id.
    let start = last_event_ms(&daemon);
    let before = workload(&client, "user_id", 30, 1000).await;
    wait_for_queries(&daemon, 30).await;
    let (scanned_before, n) = mean_scanned(&daemon, "user_id", start, 30).await;
    assert_eq!(n, 30);
    assert_plan_sorts_by(&daemon, "user_id");

    run_pass(&daemon);
    let sorted_at = last_event_ms(&daemon);
    let after = workload(&client, "user_id", 30, 1000).await;
    assert_eq!(before, after, "same rows after the adaptive run");
    wait_for_queries(&daemon, 60).await;
    let (scanned_after, _) = mean_scanned(&daemon, "user_id", sorted_at, 30).await;
    eprintln!("user_id lookups: {scanned_before:.0} → {scanned_after:.0} bytes scanned");
    assert!(
        scanned_before >= 10.0 * scanned_after,
        "sorting by user_id must cut bytes scanned ≥ 10×: {scanned_before} → {scanned_after}"
    );

    // Workload B moves to session_id; the planner follows.
    let moved = last_event_ms(&daemon);
    let b_before = workload(&client, "session_id", 60, 5000).await;
    wait_for_queries(&daemon, 120).await;
    let (b_scanned_before, _) = mean_scanned(&daemon, "session_id", moved, 60).await;
    assert_plan_sorts_by(&daemon, "session_id");
    run_pass(&daemon);
    let resorted = last_event_ms(&daemon);
    let b_after = workload(&client, "session_id", 60, 5000).await;
    assert_eq!(b_before, b_after, "same rows after the second run");
    wait_for_queries(&daemon, 180).await;
    let (b_scanned_after, _) = mean_scanned(&daemon, "session_id", resorted, 60).await;
    eprintln!("session_id lookups: {b_scanned_before:.0} → {b_scanned_after:.0} bytes scanned");
    assert!(
        b_scanned_before >= 10.0 * b_scanned_after,
        "sorting by session_id must cut bytes scanned ≥ 10×: {b_scanned_before} → {b_scanned_after}"
    );

    // Every run is in the audit trail, started by the adaptive planner.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_floe"))
        .args([
            "runs",
            "--table",
            "lake.public.events",
            "--json",
            "--config",
        ])
        .arg(daemon.dir().join("floe.toml"))
        .env_remove("FLOE_CONFIG")
        .env_remove("FLOE_DATA_DIR")
        .output()
        .expect("floe runs");
    let runs: Value = serde_json::from_slice(&out.stdout).expect("runs JSON");
    let sorts: Vec<&Value> = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["operation"] == "compact" && r["status"] == "succeeded")
        .collect();
    assert_eq!(sorts.len(), 2, "{runs:#}");
    assert!(
        sorts.iter().all(|r| r["started_by"]
            .as_str()
            .is_some_and(|s| s.contains("adaptive"))),
        "{runs:#}"
    );
}

#[tokio::test]
async fn telemetry_survives_a_restart() {
    let first = Daemon::start(options().config(CONFIG));
    let data = first.dir().join("data");
    let client = first.connect().await;
    client
        .batch_execute(
            "CREATE TABLE public.kept (k BIGINT); INSERT INTO public.kept VALUES (1), (2)",
        )
        .await
        .expect("create");
    for k in 0..7 {
        client
            .simple_query(&format!("SELECT * FROM public.kept WHERE k = {k}"))
            .await
            .expect("query");
    }
    let counted = eventually(Duration::from_secs(10), || async {
        json(&first, "/api/telemetry")
            .to_string()
            .contains("lake.public.kept")
    })
    .await;
    assert!(counted);
    drop(client);
    // The first daemon's temp dir (and so its data) lives as long as `first`.
    let mut first = first;
    first.terminate();
    assert!(
        first.wait(Duration::from_secs(20)).is_some(),
        "daemon did not stop"
    );

    let second = Daemon::start(options().config(CONFIG).data_dir(&data));
    let tables = json(&second, "/api/telemetry");
    let kept_heat = tables
        .as_array()
        .and_then(|t| t.iter().find(|x| x["table"] == "lake.public.kept"))
        .unwrap_or_else(|| panic!("aggregates lost in the restart: {tables:#}"));
    // The CREATE TABLE and the INSERT reached the engine too.
    assert_eq!(kept_heat["total_queries"], 9, "{kept_heat:#}");
    assert_eq!(kept_heat["columns"][0]["column"], "k", "{kept_heat:#}");
    let events = json(&second, "/api/telemetry/events?table=lake.public.kept");
    assert_eq!(events.as_array().map(Vec::len), Some(9), "{events:#}");
}

#[tokio::test]
async fn policies_through_the_api_and_the_cli() {
    let daemon = Daemon::start(options().config(CONFIG));
    let show = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_floe"))
            .args(["policy", "show", "lake.public.anything", "--config"])
            .arg(daemon.dir().join("floe.toml"))
            .env_remove("FLOE_CONFIG")
            .env_remove("FLOE_DATA_DIR")
            .output()
            .expect("floe policy show");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let line = |text: &str, key: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
            .to_owned()
    };
    let before = show();
    let target = line(&before, "compact.target_file_size");
    assert!(
        target.contains("32768") && target.contains("from config:lake"),
        "{before}"
    );
    assert!(line(&before, "mode").contains("from default:"), "{before}");

    let (status, body) = daemon.admin_send(
        "PUT",
        "/api/policies",
        r#"{"scope": "lake.public", "compact": {"target_file_size": "1MiB"}, "window": "01:00-05:00"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = daemon.admin_send(
        "PUT",
        "/api/policies",
        r#"{"scope": "lake.public", "window": "late"}"#,
    );
    assert_eq!(status, 422, "a bad window is refused: {body}");
    assert!(body.contains("window"), "{body}");
    let (status, body) = daemon.admin_send(
        "PUT",
        "/api/policies",
        r#"{"scope": "lake.public", "colour": "red"}"#,
    );
    assert_eq!(status, 400, "unknown keys are refused: {body}");

    let effective = json(&daemon, "/api/policies?table=lake.public.anything");
    assert_eq!(
        effective["policy"]["compact"]["target_file_size"],
        1 << 20,
        "{effective:#}"
    );
    assert_eq!(
        effective["sources"]["compact.target_file_size"],
        "api:lake.public"
    );
    let after = show();
    let target = line(&after, "compact.target_file_size");
    assert!(
        target.contains("1048576") && target.contains("from api:lake.public"),
        "{after}"
    );
    assert!(
        line(&after, "window").contains("from api:lake.public"),
        "{after}"
    );

    let (status, _) = daemon.admin_send("DELETE", "/api/policies?scope=lake.public", "");
    assert_eq!(status, 200);
    assert!(line(&show(), "compact.target_file_size").contains("from config:lake"));
}
