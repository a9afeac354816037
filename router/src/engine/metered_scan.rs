//! An Iceberg scan that counts what it reads.
//!
//! iceberg-datafusion 0.10's `IcebergTableScan` plans its data files inside
//! `execute` and reports nothing about them, so the embedded engine swaps each
//! one, in a statement's physical plan, for a [`MeteredScan`] that does the
//! same scan with the same pushed-down predicate and adds every planned file
//! (what survived partition and min/max pruning) to the statement's
//! [`ScanStats`]. Those counts are what the maintenance engine learns a table's
//! layout costs its queries from.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use iceberg_datafusion::physical_plan::IcebergTableScan;

use super::ScanStats;

/// `plan` with every Iceberg scan counting into `stats`.
pub(crate) fn meter_scans(
    plan: Arc<dyn ExecutionPlan>,
    stats: &Arc<ScanStats>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if node.as_any().is::<IcebergTableScan>() {
            let metered: Arc<dyn ExecutionPlan> = Arc::new(MeteredScan {
                inner: node,
                stats: Arc::clone(stats),
            });
            Ok(Transformed::yes(metered))
        } else {
            Ok(Transformed::no(node))
        }
    })
    .map(|t| t.data)
}

/// An [`IcebergTableScan`] whose planned files are counted.
struct MeteredScan {
    /// Always an `IcebergTableScan` (checked by [`meter_scans`]).
    inner: Arc<dyn ExecutionPlan>,
    stats: Arc<ScanStats>,
}

impl MeteredScan {
    fn scan(&self) -> DfResult<&IcebergTableScan> {
        self.inner
            .as_any()
            .downcast_ref::<IcebergTableScan>()
            .ok_or_else(|| DataFusionError::Internal("a metered scan lost its scan".to_owned()))
    }
}

impl fmt::Debug for MeteredScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredScan").finish_non_exhaustive()
    }
}

impl DisplayAs for MeteredScan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scan() {
            Ok(scan) => scan.fmt_as(t, f),
            Err(_) => f.write_str("MeteredScan"),
        }
    }
}

fn iceberg(e: iceberg::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl ExecutionPlan for MeteredScan {
    fn name(&self) -> &str {
        "IcebergTableScan"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let scan = self.scan()?;
        let table = scan.table().clone();
        let snapshot_id = scan.snapshot_id();
        let projection = scan.projection().map(<[String]>::to_vec);
        let predicate = scan.predicates().cloned();
        let limit = scan.limit();
        let stats = Arc::clone(&self.stats);
        // The same scan `IcebergTableScan::execute` builds, with its file
        // tasks counted as the reader takes them.
        let batches = async move {
            let builder = match snapshot_id {
                Some(id) => table.scan().snapshot_id(id),
                None => table.scan(),
            };
            let mut builder = match projection {
                Some(columns) => builder.select(columns),
                None => builder.select_all(),
            };
            if let Some(predicate) = predicate {
                builder = builder.with_filter(predicate);
            }
            let tasks = builder
                .build()
                .map_err(iceberg)?
                .plan_files()
                .await
                .map_err(iceberg)?
                .inspect_ok(move |task| stats.add(1, task.length))
                .boxed();
            // Page-level pruning: on a table sorted by the filtered column a
            // lookup decodes the pages that hold its value, not the file.
            let batches = table
                .reader_builder()
                .with_row_selection_enabled(true)
                .build()
                .read(tasks)
                .map_err(iceberg)?
                .stream()
                .map_err(iceberg);
            Ok::<_, DataFusionError>(batches)
        };
        let mut remaining = limit.unwrap_or(usize::MAX);
        let stream = futures::stream::once(batches)
            .try_flatten()
            .try_filter_map(move |batch| {
                // The scan's own limit, as `IcebergTableScan` applies it.
                let out = if remaining == 0 {
                    None
                } else if batch.num_rows() <= remaining {
                    remaining -= batch.num_rows();
                    Some(batch)
                } else {
                    let cut = batch.slice(0, remaining);
                    remaining = 0;
                    Some(cut)
                };
                futures::future::ready(Ok(out))
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.inner.schema(),
            stream,
        )))
    }
}
