//! Each operation does what it says and keeps every row.

use std::time::{Duration, SystemTime};

use floe_maintenance::ops::{
    CompactOptions, ExpireOptions, FileAction, ManifestOptions, Operation, OrphanOptions, Request,
    Strategy, maintain_table,
};
use iceberg::TableIdent;

use crate::lake::{Lake, expected};

pub(crate) fn request(operation: Operation) -> Request {
    Request {
        operations: vec![operation],
        started_by: "test".to_owned(),
        ..Request::default()
    }
}

pub(crate) async fn run(
    lake: &Lake,
    ident: &TableIdent,
    request: &Request,
) -> floe_maintenance::ops::Report {
    let mut reports = maintain_table(&lake.target, ident, request)
        .await
        .unwrap_or_else(|e| panic!("maintain {ident}: {e}"));
    assert_eq!(reports.len(), 1);
    reports.remove(0)
}

/// A table of `appends` commits of 50 rows each.
async fn small_files(lake: &Lake, name: &str, partitioned: bool, appends: i64) -> TableIdent {
    let ident = lake.create(name, partitioned).await;
    for i in 0..appends {
        lake.append(&ident, i * 50..(i + 1) * 50).await;
    }
    ident
}

#[tokio::test]
async fn binpack_merges_small_files_and_keeps_every_row() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "flat", false, 12).await;
    let want = expected(0..600);
    assert_eq!(lake.data_files(&ident).await.len(), 12);
    lake.assert_reads(&ident, want).await;

    let mut dry = request(Operation::Compact);
    dry.dry_run = true;
    let report = run(&lake, &ident, &dry).await;
    assert_eq!(report.outcome.files.len(), 12, "{:?}", report.outcome);
    assert!(
        report
            .outcome
            .files
            .iter()
            .all(|f| matches!(f, FileAction::WouldRewrite { .. }))
    );
    assert_eq!(
        lake.data_files(&ident).await.len(),
        12,
        "a dry run changes nothing"
    );

    let report = run(&lake, &ident, &request(Operation::Compact)).await;
    assert_eq!(report.before.data_files, 12);
    assert_eq!(report.after.data_files, 1);
    assert_eq!(report.after.records, 600);
    assert!(report.outcome.new_snapshot.is_some());
    let table = lake.table(&ident).await;
    let snapshot = table.metadata().current_snapshot().expect("snapshot");
    assert_eq!(snapshot.summary().operation.as_str(), "replace");
    assert_eq!(lake.data_files(&ident).await.len(), 1);
    lake.assert_reads(&ident, want).await;

    // Nothing left to do: a second run is a no-op.
    let again = run(&lake, &ident, &request(Operation::Compact)).await;
    assert!(again.outcome.new_snapshot.is_none());
}

#[tokio::test]
async fn binpack_compacts_each_partition_on_its_own() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "parted", true, 8).await;
    assert_eq!(lake.data_files(&ident).await.len(), 24);
    let want = expected(0..400);
    let report = run(&lake, &ident, &request(Operation::Compact)).await;
    assert_eq!(report.after.data_files, 3, "one file per category");
    lake.assert_reads(&ident, want).await;
    // Every new file holds one partition's rows only.
    let table = lake.table(&ident).await;
    let batches = crate::lake::checksum_of(&table).await;
    assert_eq!(batches, want);
}

#[tokio::test]
async fn sort_compaction_orders_rows_and_records_the_order() {
    let lake = Lake::new().await;
    let ident = lake.create("sorted", false).await;
    // Appends whose `value` ranges overlap completely; more rows than one
    // sorted batch, so that the output rolls over several files.
    for i in 0..6 {
        lake.append(&ident, i * 2000..(i + 1) * 2000).await;
    }
    let want = expected(0..12_000);
    let mut req = request(Operation::Compact);
    req.compact = CompactOptions {
        strategy: Strategy::Sort(vec!["value".to_owned()]),
        // Small files, so that the sorted output spans several of them.
        target_file_size: Some(20_000),
        ..CompactOptions::default()
    };
    let report = run(&lake, &ident, &req).await;
    assert!(
        report.outcome.new_snapshot.is_some(),
        "{:?}",
        report.outcome
    );
    lake.assert_reads(&ident, want).await;
    let table = lake.table(&ident).await;
    let order = table
        .metadata()
        .sort_orders_iter()
        .find(|o| !o.fields.is_empty())
        .expect("the sort order was added to the table");
    let files = lake.data_files(&ident).await;
    assert!(files.len() > 1, "{files:?}");
    assert!(
        files
            .iter()
            .all(|(_, _, id)| *id == Some(i32::try_from(order.order_id).expect("id"))),
        "{files:?}"
    );
    // Sorted output: the files' value ranges do not overlap.
    let mut ranges = value_ranges(&table).await;
    ranges.sort();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping ranges {ranges:?}");
    }
    // Already sorted: nothing to do.
    let again = run(&lake, &ident, &req).await;
    assert!(again.outcome.new_snapshot.is_none(), "{:?}", again.outcome);
}

/// (min, max) of `value` per live data file, from the manifests.
async fn value_ranges(table: &iceberg::table::Table) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let manifests = floe_maintenance::files::current_manifests(table)
        .await
        .expect("manifests");
    for (_, manifest) in manifests {
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let bound = |d: Option<&iceberg::spec::Datum>| match d.map(|d| d.literal().clone()) {
                Some(iceberg::spec::PrimitiveLiteral::Long(v)) => v,
                other => panic!("no long bound: {other:?}"),
            };
            out.push((
                bound(entry.data_file().lower_bounds().get(&3)),
                bound(entry.data_file().upper_bounds().get(&3)),
            ));
        }
    }
    out
}

#[tokio::test]
async fn position_deletes_are_applied_by_compaction_and_then_dropped() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "positions", false, 6).await;
    let files = lake.data_files(&ident).await;
    let deleted = lake
        .delete_positions(
            &ident,
            &[
                (files[0].0.clone(), vec![0, 7, 49]),
                (files[3].0.clone(), vec![20]),
            ],
        )
        .await;
    assert_eq!(deleted.len(), 4);
    let want = expected((0..300).filter(|id| !deleted.contains(id)));
    lake.assert_reads(&ident, want).await;

    let report = run(&lake, &ident, &request(Operation::Compact)).await;
    assert_eq!(
        (report.before.data_files, report.before.delete_files),
        (6, 1)
    );
    assert_eq!(
        (report.after.data_files, report.after.delete_files),
        (1, 0),
        "the rewritten file holds the deletes; the delete file no longer applies"
    );
    assert_eq!(report.after.records, 296);
    lake.assert_reads(&ident, want).await;
}

#[tokio::test]
async fn expire_removes_old_snapshots_and_only_their_files() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "history", false, 8).await;
    let want = expected(0..400);
    run(&lake, &ident, &request(Operation::Compact)).await;
    let compacted_away: Vec<String> = {
        let table = lake.table(&ident).await;
        let parent = table
            .metadata()
            .current_snapshot()
            .and_then(|s| s.parent_snapshot_id())
            .expect("parent");
        let snapshot =
            std::sync::Arc::clone(table.metadata().snapshot_by_id(parent).expect("parent"));
        let list = table
            .manifest_list_reader(&snapshot)
            .load()
            .await
            .expect("list");
        let mut paths = Vec::new();
        for m in list.entries() {
            let manifest = m.load_manifest(table.file_io()).await.expect("manifest");
            paths.extend(manifest.entries().iter().map(|e| e.file_path().to_owned()));
        }
        paths
    };
    assert_eq!(compacted_away.len(), 8);
    assert!(
        compacted_away
            .iter()
            .all(|p| std::path::Path::new(p.trim_start_matches("file:")).exists())
    );

    let mut req = request(Operation::Expire);
    req.expire = ExpireOptions {
        older_than: Some(Duration::ZERO),
        retain_last: Some(1),
    };
    req.dry_run = true;
    let dry = run(&lake, &ident, &req).await;
    assert_eq!(dry.outcome.snapshots_removed.len(), 8, "{:?}", dry.outcome);
    assert_eq!(lake.table(&ident).await.metadata().snapshots().len(), 9);

    req.dry_run = false;
    let report = run(&lake, &ident, &req).await;
    assert_eq!(report.before.snapshots, 9);
    assert_eq!(report.after.snapshots, 1);
    let deleted: Vec<&String> = report
        .outcome
        .files
        .iter()
        .filter_map(|f| match f {
            FileAction::Deleted { path } => Some(path),
            _ => None,
        })
        .collect();
    for path in &compacted_away {
        let local = path.trim_start_matches("file:");
        assert!(
            !std::path::Path::new(local).exists(),
            "{path} should be gone"
        );
    }
    // 8 data files, their manifests and the expired manifest lists.
    assert!(deleted.len() >= 8 + 8, "{deleted:?}");
    lake.assert_reads(&ident, want).await;
    // Live files all still there.
    for (path, _, _) in lake.data_files(&ident).await {
        assert!(std::path::Path::new(path.trim_start_matches("file:")).exists());
    }
}

#[tokio::test]
async fn expire_keeps_what_retain_last_and_age_protect() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "recent", false, 5).await;
    // Defaults: five days; everything is younger.
    let report = run(&lake, &ident, &request(Operation::Expire)).await;
    assert!(report.outcome.snapshots_removed.is_empty());
    let mut req = request(Operation::Expire);
    req.expire = ExpireOptions {
        older_than: Some(Duration::ZERO),
        retain_last: Some(3),
    };
    let report = run(&lake, &ident, &req).await;
    assert_eq!(report.after.snapshots, 3);
    lake.assert_reads(&ident, expected(0..250)).await;
}

fn set_old(path: &std::path::Path) {
    let old = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for times");
    file.set_modified(old).expect("set mtime");
}

#[tokio::test]
async fn orphans_go_only_when_old_and_unreferenced() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "orphaned", false, 3).await;
    let table = lake.table(&ident).await;
    let data_dir =
        std::path::PathBuf::from(table.metadata().location().trim_start_matches("file:"))
            .join("data");
    let old_orphan = data_dir.join("old-orphan.parquet");
    let young_orphan = data_dir.join("in-flight-writer.parquet");
    std::fs::write(&old_orphan, b"left by a crashed writer").expect("write");
    std::fs::write(&young_orphan, b"being written right now").expect("write");
    set_old(&old_orphan);
    // Referenced files are never deleted, however old.
    for (path, _, _) in lake.data_files(&ident).await {
        set_old(std::path::Path::new(path.trim_start_matches("file:")));
    }

    let mut req = request(Operation::Orphans);
    req.dry_run = true;
    let dry = run(&lake, &ident, &req).await;
    assert_eq!(
        dry.outcome.files,
        vec![FileAction::WouldDelete {
            path: old_orphan.display().to_string()
        }]
    );
    assert!(old_orphan.exists(), "a dry run deletes nothing");

    req.dry_run = false;
    req.orphans = OrphanOptions {
        older_than: Some(Duration::from_secs(3600)),
    };
    let report = run(&lake, &ident, &req).await;
    assert_eq!(report.outcome.files_removed(), 1, "{:?}", report.outcome);
    assert!(!old_orphan.exists());
    assert!(young_orphan.exists(), "younger than the threshold");
    lake.assert_reads(&ident, expected(0..150)).await;
}

#[tokio::test]
async fn manifests_are_consolidated() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "manifold", true, 10).await;
    let manifests = |table: &iceberg::table::Table| {
        let table = table.clone();
        async move {
            let snapshot =
                std::sync::Arc::clone(table.metadata().current_snapshot().expect("snapshot"));
            table
                .manifest_list_reader(&snapshot)
                .load()
                .await
                .expect("list")
                .entries()
                .len()
        }
    };
    assert_eq!(manifests(&lake.table(&ident).await).await, 10);
    let mut req = request(Operation::Manifests);
    req.manifests = ManifestOptions { target_size: None };
    let report = run(&lake, &ident, &req).await;
    assert!(report.outcome.new_snapshot.is_some());
    assert_eq!(manifests(&lake.table(&ident).await).await, 1);
    assert_eq!(report.after.data_files, 30);
    lake.assert_reads(&ident, expected(0..500)).await;
}

#[tokio::test]
async fn runs_are_recorded_in_the_audit_trail() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "audited", false, 6).await;
    let mut req = request(Operation::Compact);
    req.operations = vec![Operation::Manifests, Operation::Compact, Operation::Expire];
    let reports = maintain_table(&lake.target, &ident, &req)
        .await
        .expect("maintain");
    let order: Vec<Operation> = reports.iter().map(|r| r.operation).collect();
    assert_eq!(
        order,
        vec![Operation::Expire, Operation::Compact, Operation::Manifests],
        "expire → orphans → compact → manifests"
    );
    let audit = lake.target.audit.as_ref().expect("audit");
    let runs = audit.runs(Some("lake.ns.audited"), 10).await.expect("runs");
    assert_eq!(runs.len(), 3);
    let compact = runs
        .iter()
        .find(|r| r.operation == "compact")
        .expect("compact run");
    assert_eq!(compact.status, "succeeded");
    assert_eq!(compact.started_by, "test");
    assert_eq!(compact.files_removed, 6);
    assert_eq!(compact.files_added, 1);
    assert_eq!(compact.before["data_files"], 6);
    assert_eq!(compact.after["data_files"], 1);
    assert!(compact.finished_ms.is_some());
    assert_eq!(compact.snapshot_ids.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn compaction_applies_deletes_and_drops_the_delete_files() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "deleted", false, 6).await;
    let gone: Vec<i64> = (10..20).chain(100..105).collect();
    lake.delete_rows(&ident, &gone).await;
    let want = expected((0..300).filter(|i| !gone.contains(i)));
    assert_eq!(
        lake.checksum(&ident).await,
        want,
        "iceberg-rust applies the deletes"
    );
    let report = run(&lake, &ident, &request(Operation::Compact)).await;
    assert_eq!(report.before.delete_files, 1);
    assert_eq!(report.after.delete_files, 0, "{:?}", report.outcome);
    assert_eq!(report.after.records, 285);
    // The rows are gone from the data itself, and every reader agrees.
    lake.assert_reads(&ident, want).await;
}

#[tokio::test]
async fn inventory_rereads_only_tables_that_changed() {
    let lake = Lake::new().await;
    let a = small_files(&lake, "idle", false, 3).await;
    let b = small_files(&lake, "busy", true, 2).await;
    let mut inventory = floe_maintenance::inventory::Inventory::default();
    let first = inventory
        .refresh(lake.target.catalog.as_ref())
        .await
        .expect("refresh");
    assert_eq!(first.len(), 2);
    assert_eq!(inventory.last_refresh_reads, 2);
    let detail = |all: &[(String, floe_maintenance::inventory::TableDetail)], name: &str| {
        all.iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.clone())
            .expect("table in inventory")
    };
    let busy = detail(&first, "ns.busy");
    assert_eq!(busy.signals.data_files, 6);
    assert_eq!(busy.partitions, 3);
    assert_eq!(busy.small_files, 6);
    assert!((busy.small_file_share - 1.0).abs() < f64::EPSILON);
    assert_eq!(detail(&first, "ns.idle").manifests, 3);
    // Nothing changed: nothing is read again.
    inventory
        .refresh(lake.target.catalog.as_ref())
        .await
        .expect("refresh");
    assert_eq!(inventory.last_refresh_reads, 0);
    // One commit: one table read again.
    lake.append(&b, 1000..1010).await;
    let third = inventory
        .refresh(lake.target.catalog.as_ref())
        .await
        .expect("refresh");
    assert_eq!(inventory.last_refresh_reads, 1);
    assert_eq!(detail(&third, "ns.busy").signals.data_files, 9);
    let _ = a;
}

#[tokio::test]
async fn binpack_splits_a_partition_into_bins_of_the_target_size() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "binned", false, 12).await;
    let total: u64 = lake
        .data_files(&ident)
        .await
        .iter()
        .map(|(_, size, _)| size)
        .sum();
    let mut req = request(Operation::Compact);
    req.compact = CompactOptions {
        // Two bins: each becomes one file.
        target_file_size: Some(total / 2 + 1),
        ..CompactOptions::default()
    };
    let report = run(&lake, &ident, &req).await;
    assert_eq!(report.after.data_files, 2, "{:?}", report.outcome);
    lake.assert_reads(&ident, expected(0..600)).await;
}

#[tokio::test]
async fn zorder_keeps_every_row_and_refuses_what_it_cannot_key() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "zorder", false, 6).await;
    let mut req = request(Operation::Compact);
    req.compact = CompactOptions {
        strategy: Strategy::ZOrder(vec!["value".to_owned()]),
        ..CompactOptions::default()
    };
    let err = maintain_table(&lake.target, &ident, &req)
        .await
        .expect_err("one column");
    assert!(err.to_string().contains("at least two columns"), "{err}");
    req.compact.strategy = Strategy::ZOrder(vec!["value".to_owned(), "nope".to_owned()]);
    let err = maintain_table(&lake.target, &ident, &req)
        .await
        .expect_err("unknown column");
    assert!(err.to_string().contains("nope"), "{err}");

    req.compact.strategy = Strategy::ZOrder(vec!["category".to_owned(), "value".to_owned()]);
    let report = run(&lake, &ident, &req).await;
    assert_eq!(report.outcome.files_removed(), 6, "{report:?}");
    assert!(
        report
            .outcome
            .notes
            .iter()
            .any(|n| n.contains("z-ordered by 2 columns")),
        "{report:?}"
    );
    lake.assert_reads(&ident, expected(0..300)).await;
}
