//! An Iceberg REST catalog: Floe's REST connector (reads through
//! `iceberg-catalog-rest`, commits as `CommitTableRequest`s) against
//! `tests/rest_catalog.py`, the REST protocol in front of pyiceberg's SQL
//! catalog, with OAuth2 client credentials and a path prefix. Every operation
//! end to end, read back by iceberg-rust, pyiceberg's REST client and DuckDB;
//! a stale commit is refused by the server's requirement check.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use floe_conformance::{free_port, python, wait_for_port};
use floe_maintenance::catalog::{CatalogConfig, CatalogKind};

use crate::lake::{Lake, Readers};
use crate::moto::every_operation;

const CLIENT_ID: &str = "floe";
const CLIENT_SECRET: &str = "not-a-real-secret";

/// The REST catalog server, killed on drop.
struct Server {
    child: Child,
    uri: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start() -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/rest_catalog.py"
            ))
            .arg(port.to_string())
            .arg(data.path())
            .args([CLIENT_ID, CLIENT_SECRET])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rest_catalog.py");
        let server = Server {
            child,
            uri: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        wait_for_port(port, "the REST catalog").await;
        server
    }

    async fn lake(&self) -> Lake {
        let config = CatalogConfig {
            name: "rest".to_owned(),
            kind: CatalogKind::Rest,
            uri: self.uri.clone(),
            warehouse: Default::default(),
            properties: BTreeMap::from([(
                "credential".to_owned(),
                format!("{CLIENT_ID}:{CLIENT_SECRET}"),
            )]),
        };
        let readers = Readers {
            pyiceberg: serde_json::json!({
                "type": "rest",
                "uri": self.uri,
                "credential": format!("{CLIENT_ID}:{CLIENT_SECRET}"),
            }),
            duckdb_s3: None,
        };
        Lake::open(tempfile::tempdir().expect("tempdir"), config, readers).await
    }
}

#[tokio::test]
async fn a_rest_catalog_inventory_and_every_operation() {
    let server = Server::start().await;
    every_operation(&server.lake().await, "file:///").await;
}

#[tokio::test]
async fn a_stale_commit_is_refused_by_the_rest_server() {
    let server = Server::start().await;
    server.lake().await.assert_stale_commit_refused().await;
}

#[tokio::test]
async fn wrong_client_credentials_are_refused_with_the_servers_reason() {
    let server = Server::start().await;
    let config = CatalogConfig {
        name: "rest".to_owned(),
        kind: CatalogKind::Rest,
        uri: server.uri.clone(),
        warehouse: Default::default(),
        properties: BTreeMap::from([("credential".to_owned(), format!("{CLIENT_ID}:wrong"))]),
    };
    let err = match floe_maintenance::catalog::open_committer(&config).await {
        Ok(_) => panic!("wrong credentials must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("401") && err.contains("invalid_client"),
        "{err}"
    );
    assert!(
        !err.contains("wrong"),
        "the secret stays out of messages: {err}"
    );
}

/// A sort compaction adds a sort order to the table: through REST that is an
/// `add-sort-order` update beside the snapshot, which the server applies, and
/// the rewritten files record the order.
#[tokio::test]
async fn a_sort_compaction_commits_its_sort_order_through_rest() {
    use floe_maintenance::ops::{CompactOptions, Operation, Strategy};

    let server = Server::start().await;
    let lake = server.lake().await;
    let ident = lake.create("sorted", false).await;
    for i in 0..5 {
        lake.append(&ident, i * 100..(i + 1) * 100).await;
    }
    let mut req = crate::ops::request(Operation::Compact);
    req.compact = CompactOptions {
        strategy: Strategy::Sort(vec!["value".to_owned()]),
        ..CompactOptions::default()
    };
    let report = crate::ops::run(&lake, &ident, &req).await;
    assert!(
        report.outcome.new_snapshot.is_some(),
        "{:?}",
        report.outcome
    );
    let table = lake.table(&ident).await;
    let order = table
        .metadata()
        .sort_orders_iter()
        .find(|o| !o.fields.is_empty())
        .expect("the server applied the sort order");
    let id = i32::try_from(order.order_id).expect("order id");
    assert!(
        lake.data_files(&ident)
            .await
            .iter()
            .all(|(_, _, order)| *order == Some(id)),
        "files record the order"
    );
    lake.assert_reads(&ident, crate::lake::expected(0..500))
        .await;
}
