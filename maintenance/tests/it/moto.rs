//! AWS catalogs served by moto's server mode on loopback (`moto[server]` in
//! the test venv): Glue with the warehouse on S3, and S3 Tables. Inventory
//! and every operation end to end, each checked by iceberg-rust, pyiceberg
//! (through Glue; from the metadata file for S3 Tables, whose Iceberg REST
//! endpoint moto lacks) and DuckDB (through S3), plus the compare-and-swap
//! refusing a stale commit.
//! (The `env:` form of secret properties is unit-tested in the catalog
//! module: the workspace forbids the `unsafe` that setting a variable takes.)

use std::collections::BTreeMap;
use std::time::Duration;

use floe_conformance::moto::{KEY, Moto, REGION};
use floe_maintenance::catalog::{CatalogConfig, CatalogKind};
use floe_maintenance::ops::{
    CompactOptions, ExpireOptions, FileAction, Operation, OrphanOptions, maintain_table,
};
use iceberg::TableIdent;

use crate::lake::{Lake, Readers, expected};
use crate::ops::{request, run};

const BUCKET: &str = "floe-lake";

/// moto with the test bucket made.
async fn moto() -> Moto {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET);
    moto
}

/// iceberg-rust's S3 properties for moto.
fn s3_properties(moto: &Moto) -> BTreeMap<String, String> {
    moto.catalog_properties()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// How DuckDB reaches moto's S3.
fn duckdb_s3(moto: &Moto) -> serde_json::Value {
    serde_json::json!({
        "endpoint": moto.endpoint.trim_start_matches("http://"),
        "key_id": KEY,
        "secret": KEY,
        "region": REGION,
    })
}

/// pyiceberg's S3 properties for moto.
fn pyiceberg_s3(moto: &Moto) -> serde_json::Map<String, serde_json::Value> {
    let mut props = serde_json::Map::new();
    for (key, value) in [
        ("s3.endpoint", moto.endpoint.as_str()),
        ("s3.region", REGION),
        ("s3.access-key-id", KEY),
        ("s3.secret-access-key", KEY),
    ] {
        props.insert(key.to_owned(), value.into());
    }
    props
}

/// A lake on an S3 Tables table bucket named `floe-tables`.
async fn s3tables_lake(moto: &Moto) -> Lake {
    let arn = moto.create_table_bucket("floe-tables");
    let config = CatalogConfig {
        name: "tables".to_owned(),
        kind: CatalogKind::S3tables,
        uri: moto.endpoint.clone(),
        warehouse: arn.into(),
        properties: s3_properties(moto),
    };
    let mut pyiceberg = pyiceberg_s3(moto);
    pyiceberg.insert("type".to_owned(), "static".into());
    let readers = Readers {
        pyiceberg: pyiceberg.into(),
        duckdb_s3: Some(duckdb_s3(moto)),
    };
    Lake::open(tempfile::tempdir().expect("tempdir"), config, readers).await
}

/// A lake on a Glue catalog named `glue`, its warehouse in the bucket.
async fn glue_lake(moto: &Moto) -> Lake {
    let config = CatalogConfig {
        name: "glue".to_owned(),
        kind: CatalogKind::Glue,
        uri: moto.endpoint.clone(),
        warehouse: format!("s3://{BUCKET}/warehouse").into(),
        properties: s3_properties(moto),
    };
    let mut pyiceberg = pyiceberg_s3(moto);
    for (key, value) in [
        ("type", "glue"),
        ("glue.endpoint", moto.endpoint.as_str()),
        ("glue.region", REGION),
        ("glue.access-key-id", KEY),
        ("glue.secret-access-key", KEY),
    ] {
        pyiceberg.insert(key.to_owned(), value.into());
    }
    let readers = Readers {
        pyiceberg: pyiceberg.into(),
        duckdb_s3: Some(duckdb_s3(moto)),
    };
    Lake::open(tempfile::tempdir().expect("tempdir"), config, readers).await
}

async fn exists(lake: &Lake, ident: &TableIdent, path: &str) -> bool {
    lake.table(ident)
        .await
        .file_io()
        .exists(path)
        .await
        .expect("exists")
}

#[tokio::test]
async fn glue_and_s3_on_moto_inventory_and_every_operation() {
    let moto = moto().await;
    every_operation(&glue_lake(&moto).await, "s3://floe-lake/").await;
}

#[tokio::test]
async fn a_sql_catalog_with_its_warehouse_on_s3() {
    let moto = moto().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("catalog.db");
    let config = CatalogConfig {
        name: "lake".to_owned(),
        kind: CatalogKind::Sql,
        uri: format!("sqlite://{}", db.display()),
        warehouse: format!("s3://{BUCKET}/sql-warehouse").into(),
        properties: s3_properties(&moto),
    };
    let mut pyiceberg = pyiceberg_s3(&moto);
    pyiceberg.insert("type".to_owned(), "sql".into());
    pyiceberg.insert(
        "uri".to_owned(),
        format!("sqlite:///{}", db.display()).into(),
    );
    pyiceberg.insert(
        "warehouse".to_owned(),
        format!("s3://{BUCKET}/sql-warehouse").into(),
    );
    let readers = Readers {
        pyiceberg: pyiceberg.into(),
        duckdb_s3: Some(duckdb_s3(&moto)),
    };
    let lake = Lake::open(dir, config, readers).await;
    every_operation(&lake, "s3://floe-lake/sql-warehouse/").await;
}

#[tokio::test]
async fn s3_tables_on_moto_inventory_and_every_operation() {
    let moto = moto().await;
    // The service places each table in a bucket of its own.
    every_operation(&s3tables_lake(&moto).await, "s3://").await;
}

/// Ten small appends, then the inventory and each operation in turn, every
/// state read by all three readers; `location` starts every file's path.
pub(crate) async fn every_operation(lake: &Lake, location: &str) {
    let ident = lake.create("events", false).await;
    for i in 0..10 {
        lake.append(&ident, i * 50..(i + 1) * 50).await;
    }
    let want = expected(0..500);
    lake.assert_reads(&ident, want).await;

    // Inventory: the table and its signals, read from Glue and S3.
    let tables = floe_maintenance::inventory::inventory(lake.target.catalog.as_ref())
        .await
        .expect("inventory");
    let events = tables
        .iter()
        .find(|t| t.name == "events")
        .unwrap_or_else(|| panic!("events in the inventory: {tables:?}"));
    assert_eq!(
        (events.data_files, events.records, events.snapshots),
        (10, 500, 10)
    );
    let detail = floe_maintenance::inventory::detail(&lake.table(&ident).await)
        .await
        .expect("detail");
    assert_eq!(detail.small_files, 10);
    assert!(
        detail
            .metadata_location
            .as_deref()
            .is_some_and(|l| l.starts_with(location)),
        "{detail:?}"
    );

    // Compaction (binpack): ten files become one, committed through Glue.
    let replaced: Vec<String> = lake
        .data_files(&ident)
        .await
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    let mut compact = request(Operation::Compact);
    compact.compact = CompactOptions::default();
    let report = run(lake, &ident, &compact).await;
    assert_eq!((report.before.data_files, report.after.data_files), (10, 1));
    lake.assert_reads(&ident, want).await;

    // Manifests: one manifest per append and the compaction's → one.
    let report = run(lake, &ident, &request(Operation::Manifests)).await;
    assert!(
        report.outcome.new_snapshot.is_some(),
        "{:?}",
        report.outcome
    );
    assert_eq!(
        floe_maintenance::inventory::detail(&lake.table(&ident).await)
            .await
            .expect("detail")
            .manifests,
        1
    );
    lake.assert_reads(&ident, want).await;

    // Expiry keeps the newest snapshot and deletes what only the others
    // reached: the ten replaced data files are gone. (S3 Tables refuses
    // deletes: there the service's own unreferenced-file removal does it.)
    let deletes = lake.target.committer.deletes_files();
    let mut expire = request(Operation::Expire);
    expire.expire = ExpireOptions {
        older_than: Some(Duration::ZERO),
        retain_last: Some(1),
    };
    let report = run(lake, &ident, &expire).await;
    assert_eq!(report.after.snapshots, 1, "{:?}", report.outcome);
    for path in &replaced {
        assert_eq!(
            exists(lake, &ident, path).await,
            !deletes,
            "{path} should be gone unless the storage refuses deletes: {:?}",
            report.outcome
        );
    }
    lake.assert_reads(&ident, want).await;
    if !deletes {
        assert!(
            report
                .outcome
                .notes
                .iter()
                .any(|n| n.contains("unreferenced-file removal")),
            "{:?}",
            report.outcome
        );
        let refused = maintain_table(&lake.target, &ident, &request(Operation::Orphans))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("S3 Tables"), "orphans refused: {refused}");
        return;
    }

    // Orphans: a stray object in the table's data folder, listed from S3.
    let table = lake.table(&ident).await;
    let stray = format!(
        "{}/data/left-by-a-crashed-writer.parquet",
        table.metadata().location()
    );
    table
        .file_io()
        .new_output(&stray)
        .expect("output")
        .write("not referenced".into())
        .await
        .expect("write stray");
    let mut orphans = request(Operation::Orphans);
    orphans.dry_run = true;
    let dry = run(lake, &ident, &orphans).await;
    assert!(
        dry.outcome.files.is_empty(),
        "the default threshold (3 days) protects a fresh file: {:?}",
        dry.outcome
    );
    orphans.orphans = OrphanOptions {
        older_than: Some(Duration::ZERO),
    };
    let dry = run(lake, &ident, &orphans).await;
    // Local paths are reported without their `file://` scheme.
    let listed_as = stray.strip_prefix("file://").unwrap_or(&stray).to_owned();
    assert_eq!(
        dry.outcome.files,
        vec![FileAction::WouldDelete { path: listed_as }],
        "only the stray object is an orphan"
    );
    orphans.dry_run = false;
    let report = run(lake, &ident, &orphans).await;
    assert_eq!(report.outcome.files_removed(), 1, "{:?}", report.outcome);
    assert!(!exists(lake, &ident, &stray).await);
    lake.assert_reads(&ident, want).await;
    for (path, _, _) in lake.data_files(&ident).await {
        assert!(exists(lake, &ident, &path).await, "live {path} kept");
    }
}

#[tokio::test]
async fn a_stale_commit_to_glue_is_refused_and_leaves_nothing_behind() {
    let moto = moto().await;
    // Glue's pointer has moved on. (moto ignores `UpdateTable`'s
    // `VersionId`, so this exercises Floe's own check of the pointer; real
    // Glue refuses a stale version id as well.)
    glue_lake(&moto).await.assert_stale_commit_refused().await;
}
