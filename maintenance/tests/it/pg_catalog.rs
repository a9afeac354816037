//! The SQL catalog in PostgreSQL (the local server; `FLOE_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`) with a local warehouse:
//! compaction, manifest rewrite and expiry committed through the
//! compare-and-swap on PostgreSQL's `iceberg_tables`, read back by
//! iceberg-rust, pyiceberg (through the same PostgreSQL catalog) and DuckDB.
//!
//! Each run uses its own catalog name, so runs never see each other's tables
//! in the shared database.

use std::collections::BTreeMap;
use std::time::Duration;

use floe_maintenance::catalog::{CatalogConfig, CatalogKind};
use floe_maintenance::ops::{ExpireOptions, Operation, Request, maintain_table};

use crate::lake::{Lake, Readers, expected};

fn postgres_url() -> String {
    std::env::var("FLOE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn lake() -> Lake {
    let url = postgres_url();
    if let Some(host) = url.split('@').nth(1).and_then(|r| r.split('/').next()) {
        tokio::net::TcpStream::connect(host)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {host} is unreachable ({e}); set FLOE_TEST_POSTGRES_URL")
            });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!(
        "floe_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let warehouse = dir.path().join("warehouse");
    let config = CatalogConfig {
        name: name.clone(),
        kind: CatalogKind::Sql,
        uri: url.clone(),
        warehouse: warehouse.clone(),
        properties: BTreeMap::new(),
    };
    let readers = Readers {
        pyiceberg: serde_json::json!({
            "type": "sql",
            // SQLAlchemy with psycopg 3, which the test venv has.
            "uri": url.replacen("postgres://", "postgresql+psycopg://", 1),
            "warehouse": format!("file://{}", warehouse.display()),
        }),
        duckdb_s3: None,
    };
    Lake::open(dir, config, readers).await
}

#[tokio::test]
async fn a_sql_catalog_in_postgres_commits_every_operation() {
    let lake = lake().await;
    let ident = lake.create("events", true).await;
    for i in 0..6 {
        lake.append(&ident, i * 60..(i + 1) * 60).await;
    }
    let want = expected(0..360);
    lake.assert_reads(&ident, want).await;

    let request = Request {
        operations: vec![Operation::Expire, Operation::Compact, Operation::Manifests],
        started_by: "test".to_owned(),
        expire: ExpireOptions {
            older_than: Some(Duration::ZERO),
            retain_last: Some(1),
        },
        ..Request::default()
    };
    let reports = maintain_table(&lake.target, &ident, &request)
        .await
        .expect("maintain");
    let compact = reports
        .iter()
        .find(|r| r.operation == Operation::Compact)
        .expect("compact report");
    // Six appends of three partitions each: one file per partition after.
    assert_eq!(
        (compact.before.data_files, compact.after.data_files),
        (18, 3)
    );
    lake.assert_reads(&ident, want).await;

    // A stale base is refused by the compare-and-swap in PostgreSQL.
    lake.assert_stale_commit_refused().await;
}
