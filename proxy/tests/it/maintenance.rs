//! `floe maintain` as a user runs it: the real binary on the demo lake of a
//! running daemon, whose queries must see the same rows before and after;
//! killed at each step of a compaction, the table stays whole and a later
//! orphan run removes what the dead run left.

use std::path::Path;
use std::process::{Command, Output};

use floe_conformance::Daemon;

use crate::options;

/// Runs `floe <args>` against the daemon's configuration.
pub(crate) fn floe(daemon: &Daemon, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floe"));
    command
        .args(args)
        .arg("--config")
        .arg(daemon.dir().join("floe.toml"))
        .env_remove("FLOE_CONFIG")
        .env_remove("FLOE_DATA_DIR")
        .env_remove("FLOE_FAILPOINTS");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run floe")
}

pub(crate) fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "floe failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The trips' row count and column sums, as a client of the daemon sees them.
async fn trips(daemon: &Daemon) -> Vec<Option<String>> {
    let client = daemon.connect().await;
    let rows = client
        .simple_query(
            "SELECT count(*), sum(zone_id), sum(passengers), CAST(sum(fare) * 100 AS BIGINT), \
             min(trip_id), max(trip_id) FROM demo.trips",
        )
        .await
        .expect("aggregate");
    crate::text_rows(&rows).remove(0)
}

fn data_files(daemon: &Daemon) -> u64 {
    let out = ok(&floe(
        daemon,
        &["table", "show", "lake.demo.trips", "--json"],
        &[],
    ));
    let detail: serde_json::Value = serde_json::from_str(&out).expect("table show JSON");
    detail["data_files"].as_u64().expect("data_files")
}

fn files_under(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        n += if path.is_dir() { files_under(&path) } else { 1 };
    }
    n
}

#[tokio::test]
async fn maintain_compacts_and_expires_the_demo_lake_under_a_running_daemon() {
    let daemon = Daemon::start(options().demo(50_000));
    let before = trips(&daemon).await;
    assert_eq!(before[0].as_deref(), Some("50000"));
    let files_before = data_files(&daemon);
    assert!(files_before >= 5, "{files_before}");

    let tables = ok(&floe(&daemon, &["tables"], &[]));
    assert!(tables.contains("lake.demo.trips"), "{tables}");

    let dry = ok(&floe(
        &daemon,
        &[
            "maintain",
            "lake.demo.trips",
            "--ops",
            "compact",
            "--dry-run",
            "--json",
        ],
        &[],
    ));
    let dry: serde_json::Value = serde_json::from_str(&dry).expect("JSON report");
    assert_eq!(dry[0]["dry_run"], true);
    assert_eq!(
        data_files(&daemon),
        files_before,
        "a dry run changes nothing"
    );

    let done = ok(&floe(
        &daemon,
        &[
            "maintain",
            "lake.demo",
            "--ops",
            "compact,expire,manifests",
            "--expire-older-than",
            "0s",
        ],
        &[],
    ));
    assert!(done.contains("lake.demo.trips compact"), "{done}");
    assert_eq!(data_files(&daemon), 1, "{done}");
    // The daemon reads the new layout, with the same rows; the files the
    // expired snapshots referenced are gone from storage.
    assert_eq!(trips(&daemon).await, before);
    let runs = ok(&floe(
        &daemon,
        &["runs", "--table", "lake.demo.trips", "--json"],
        &[],
    ));
    let runs: serde_json::Value = serde_json::from_str(&runs).expect("runs JSON");
    let operations: Vec<&str> = runs
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["dry_run"] == false)
        .filter_map(|r| r["operation"].as_str())
        .collect();
    assert_eq!(
        operations,
        vec!["manifests", "compact", "expire"],
        "newest first"
    );
    assert!(
        runs[0]["started_by"]
            .as_str()
            .is_some_and(|s| s.starts_with("cli:"))
    );
}

#[tokio::test]
async fn a_compaction_killed_at_any_step_loses_nothing() {
    let daemon = Daemon::start(options().demo(20_000));
    let before = trips(&daemon).await;
    let table_dir = daemon.dir().join("data/warehouse/demo/trips");
    for point in ["compact.files_written", "commit.swap", "compact.committed"] {
        let files_before = files_under(&table_dir);
        let killed = floe(
            &daemon,
            &[
                "maintain",
                "lake.demo.trips",
                "--ops",
                "compact",
                "--rewrite-all",
            ],
            &[("FLOE_FAILPOINTS", &format!("{point}=exit"))],
        );
        assert_eq!(
            killed.status.code(),
            Some(floe_maintenance::failpoint::EXIT_STATUS),
            "{point}: {}",
            String::from_utf8_lossy(&killed.stderr)
        );
        assert!(
            files_under(&table_dir) > files_before,
            "{point}: the run wrote files"
        );
        assert_eq!(trips(&daemon).await, before, "{point}: rows after the kill");
        // The dead run's audit row says it never finished.
        let runs = ok(&floe(&daemon, &["runs", "--json", "--limit", "1"], &[]));
        assert!(runs.contains("\"running\""), "{point}: {runs}");
        // A later orphan run (and expiry, for a committed run) cleans up.
        ok(&floe(
            &daemon,
            &[
                "maintain",
                "lake.demo.trips",
                "--ops",
                "expire,orphans",
                "--expire-older-than",
                "0s",
                "--orphans-older-than",
                "0s",
            ],
            &[],
        ));
        assert_eq!(
            trips(&daemon).await,
            before,
            "{point}: rows after the cleanup"
        );
    }
}
