//! What happens when something else commits, or Floe fails, in the middle of
//! an operation: no row is lost, no reader breaks, leftovers are orphans that
//! the orphan sweep removes.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use floe_maintenance::failpoint;
use floe_maintenance::ops::{CompactOptions, Operation, OrphanOptions, Request, maintain_table};
use floe_maintenance::{Error, files};

use iceberg::TableIdent;

use crate::lake::{Lake, expected};

fn compact() -> Request {
    Request {
        operations: vec![Operation::Compact],
        started_by: "test".to_owned(),
        ..Request::default()
    }
}

/// Every file under the table's location.
fn files_on_disk(location: &str) -> HashSet<String> {
    fn walk(dir: &Path, out: &mut HashSet<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path.display().to_string());
            }
        }
    }
    let mut out = HashSet::new();
    walk(Path::new(&files::normalize(location)), &mut out);
    out
}

/// A table of six 50-row appends (six small files), and its location.
async fn six_small_files(name: &str) -> (Arc<Lake>, TableIdent, String) {
    let lake = Arc::new(Lake::new().await);
    let ident = lake.create(name, false).await;
    for i in 0..6 {
        lake.append(&ident, i * 50..(i + 1) * 50).await;
    }
    let location = lake.table(&ident).await.metadata().location().to_owned();
    (lake, ident, location)
}

/// Runs `action` when a compaction of the table at `location` has written
/// its files and not yet committed: what another writer does in between.
fn before_compaction_commits<F, Fut>(
    lake: &Arc<Lake>,
    ident: &TableIdent,
    location: &str,
    action: F,
) where
    F: Fn(Arc<Lake>, TableIdent) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let lake = Arc::clone(lake);
    let ident = ident.clone();
    failpoint::set_hook(
        "compact.files_written",
        location,
        Arc::new(move || {
            let done = action(Arc::clone(&lake), ident.clone());
            Box::pin(async move {
                done.await;
                Ok(())
            })
        }),
    );
}

#[tokio::test]
async fn an_append_committed_during_compaction_survives() {
    let (lake, ident, location) = six_small_files("busy").await;
    before_compaction_commits(&lake, &ident, &location, |lake, ident| async move {
        // Another writer commits between the compaction's read and its commit.
        lake.append(&ident, 1000..1050).await;
    });
    let reports = maintain_table(&lake.target, &ident, &compact())
        .await
        .expect("compaction rebuilds on the new head");
    failpoint::clear_hook("compact.files_written", &location);
    assert!(reports[0].outcome.new_snapshot.is_some());
    let want = expected((0..300).chain(1000..1050));
    lake.assert_reads(&ident, want).await;
    // The six small files became one; the concurrent append's file is kept.
    assert_eq!(lake.data_files(&ident).await.len(), 2);
}

#[tokio::test]
async fn a_concurrent_rewrite_of_the_same_files_aborts_cleanly() {
    let (lake, ident, location) = six_small_files("contested").await;
    let hook_location = location.clone();
    before_compaction_commits(&lake, &ident, &location, move |lake, ident| {
        let location = hook_location.clone();
        async move {
            // Only the outer compaction is raced: the inner one must not
            // trigger this hook again.
            failpoint::clear_hook("compact.files_written", &location);
            let mut inner = compact();
            inner.compact = CompactOptions {
                rewrite_all: true,
                ..CompactOptions::default()
            };
            maintain_table(&lake.target, &ident, &inner)
                .await
                .expect("inner compaction");
        }
    });
    let before_files = files_on_disk(&location);
    let result = maintain_table(&lake.target, &ident, &compact()).await;
    failpoint::clear_hook("compact.files_written", &location);
    match result {
        Err(Error::Conflict(message)) => assert!(message.contains("no longer live"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    lake.assert_reads(&ident, expected(0..300)).await;
    // The aborted run's data files were removed: only the inner run's new
    // file (and metadata) was added.
    let new_parquet: Vec<String> = files_on_disk(&location)
        .difference(&before_files)
        .filter(|p| p.ends_with(".parquet"))
        .cloned()
        .collect();
    assert_eq!(new_parquet.len(), 1, "{new_parquet:?}");
    let audit = lake.target.audit.as_ref().expect("audit");
    let runs = audit
        .runs(Some("lake.ns.contested"), 10)
        .await
        .expect("runs");
    assert!(runs.iter().any(|r| r.status == "failed"));
}

#[tokio::test]
async fn a_failure_at_any_step_leaves_the_table_whole_and_orphans_clean_up() {
    for point in [
        "compact.files_written",
        "commit.manifests_written",
        "commit.swap",
    ] {
        let lake = Lake::new().await;
        let ident = lake.create("fragile", true).await;
        for i in 0..6 {
            lake.append(&ident, i * 30..(i + 1) * 30).await;
        }
        let want = expected(0..180);
        let location = lake.table(&ident).await.metadata().location().to_owned();
        failpoint::set_hook(
            point,
            &location,
            Arc::new(|| Box::pin(async { Err(Error::Injected("test".to_owned())) })),
        );
        let result = maintain_table(&lake.target, &ident, &compact()).await;
        failpoint::clear_hook(point, &location);
        assert!(
            matches!(result, Err(Error::Injected(_))),
            "{point}: {result:?}"
        );
        lake.assert_reads(&ident, want).await;
        assert_eq!(
            lake.data_files(&ident).await.len(),
            18,
            "{point}: nothing committed"
        );

        // Whatever the failed run left is unreferenced; the sweep removes it
        // and nothing else.
        let table = lake.table(&ident).await;
        let referenced = files::referenced(&table).await.expect("referenced");
        let orphans = Request {
            operations: vec![Operation::Orphans],
            orphans: OrphanOptions {
                older_than: Some(Duration::ZERO),
            },
            started_by: "test".to_owned(),
            ..Request::default()
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        maintain_table(&lake.target, &ident, &orphans)
            .await
            .expect("orphans");
        let left: HashSet<String> = files_on_disk(&location);
        let referenced: HashSet<String> = referenced.into_iter().collect();
        assert_eq!(
            left.difference(&referenced).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "{point}: unreferenced files left"
        );
        assert!(
            referenced.iter().all(|p| left.contains(p)),
            "{point}: a referenced file went"
        );
        lake.assert_reads(&ident, want).await;
        // And the table still compacts afterwards.
        maintain_table(&lake.target, &ident, &compact())
            .await
            .expect("compaction after the failure");
        lake.assert_reads(&ident, want).await;
    }
}

#[tokio::test]
async fn a_delete_committed_during_compaction_aborts_it() {
    let (lake, ident, location) = six_small_files("deleting").await;
    before_compaction_commits(&lake, &ident, &location, |lake, ident| async move {
        // The compaction copied rows 0..10; they are deleted now.
        lake.delete_rows(&ident, &(0..10).collect::<Vec<_>>()).await;
    });
    let result = maintain_table(&lake.target, &ident, &compact()).await;
    failpoint::clear_hook("compact.files_written", &location);
    match result {
        Err(Error::Conflict(message)) => assert!(message.contains("delete"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(lake.checksum(&ident).await, expected(10..300));
    // Run again: it compacts with the deletes applied.
    maintain_table(&lake.target, &ident, &compact())
        .await
        .expect("compaction after the delete");
    lake.assert_reads(&ident, expected(10..300)).await;
}
