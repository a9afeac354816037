//! Data file compaction (`rewrite_data_files`): binpack, sort and z-order.
//!
//! Planning follows Spark's defaults: the target size is the table's
//! `write.target-file-size-bytes` (512 MiB); files below 75 % or above 180 %
//! of it (or with delete files, or — for sort — not written in the requested
//! order) are candidates; a partition's candidates are rewritten when there
//! are at least `min_input_files` (5) of them or they add up to the target.
//!
//! Each group is read through iceberg's Arrow reader (which applies delete
//! files), optionally sorted by DataFusion's external sort (bounded memory,
//! spilling to disk), and written with iceberg's rolling Parquet writer. All
//! groups commit as one `replace` snapshot through the commit layer; a
//! concurrent append is carried over by rebuilding on the new head, a
//! concurrent delete of a rewritten file or new delete files abort the run
//! cleanly (new files removed, table untouched).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef as ArrowSchemaRef;
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::{FieldMatchMode, schema_to_arrow_schema};
use iceberg::scan::FileScanTask;
use iceberg::spec::{
    DataFile, DataFileBuilder, DataFileFormat, NullOrder, PartitionKey, SortDirection, SortField,
    SortOrder, Transform,
};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, TableIdent};
use tokio_util::task::AbortOnDropHandle;

use super::{FileAction, Outcome};
use crate::commit::{Committer, Rewrite, iceberg_error, replace_snapshot};
use crate::{Error, Result, failpoint};

/// Iceberg's default `write.target-file-size-bytes`.
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 512 * 1024 * 1024;
/// The table's `write.target-file-size-bytes`, else Iceberg's default.
pub fn target_file_size(metadata: &iceberg::spec::TableMetadata) -> u64 {
    metadata
        .properties()
        .get("write.target-file-size-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TARGET_FILE_SIZE)
}

/// Spark's default `min-input-files`.
pub const DEFAULT_MIN_INPUT_FILES: usize = 5;
/// Rows handed to the file writer at once: about a quarter of the target
/// file's worth (from the batch's in-memory size), within 64..=8192.
fn slice_rows(batch: &arrow::array::RecordBatch, target: u64) -> usize {
    let memory = batch.get_array_memory_size().max(1) as u64;
    let rows = batch.num_rows().max(1) as u64;
    usize::try_from(target.saturating_mul(rows) / memory / 4)
        .unwrap_or(usize::MAX)
        .clamp(64, 8192)
}
/// How many times a commit is rebuilt on a moved table before giving up.
const COMMIT_ATTEMPTS: usize = 4;

/// How files are rewritten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Combine small files into files of the target size.
    #[default]
    Binpack,
    /// Combine and sort by the table's sort order, or by these columns
    /// (`col`, `col DESC`, `col ASC NULLS LAST`).
    Sort(Vec<String>),
    /// Combine and z-order by these columns (at least two): files narrow on
    /// each of them at once.
    ZOrder(Vec<String>),
}

/// How a rewrite orders rows; shared by the groups' tasks.
#[derive(Clone)]
enum Order {
    /// By Iceberg sort fields; files record the order's id.
    Sort(Arc<[SortField]>, Option<i64>),
    /// By the z-value of these columns; files record no order.
    ZOrder(Arc<[super::zorder::ZColumn]>),
}

/// Parameters of a compaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactOptions {
    /// Binpack or sort.
    pub strategy: Strategy,
    /// Target file size; default the table's `write.target-file-size-bytes`.
    pub target_file_size: Option<u64>,
    /// Minimum candidate files for a partition to be rewritten (default 5).
    pub min_input_files: Option<usize>,
    /// Rewrite every file, candidate or not.
    pub rewrite_all: bool,
    /// Groups rewritten at once (default 2).
    pub parallelism: Option<usize>,
    /// Memory for one group's sort before it spills (default 256 MiB).
    pub sort_memory: Option<usize>,
}

/// One partition's files to rewrite.
struct Group {
    partition: Option<iceberg::spec::Struct>,
    files: Vec<String>,
    tasks: Vec<FileScanTask>,
    bytes: u64,
}

/// A data file as planning sees it.
struct Candidate {
    tasks: Vec<FileScanTask>,
    size: u64,
    has_deletes: bool,
    partition: Option<iceberg::spec::Struct>,
}

/// Parses `col [ASC|DESC] [NULLS FIRST|LAST]` into a sort field of `schema`.
fn sort_field(text: &str, schema: &iceberg::spec::Schema) -> Result<SortField> {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    let Some((name, rest)) = words.split_first() else {
        return Err(Error::Invalid("an empty sort column".to_owned()));
    };
    let field = schema
        .field_by_name(name)
        .ok_or_else(|| Error::Invalid(format!("sort column `{name}` is not in the table")))?;
    let descending = rest.iter().any(|w| w == "desc");
    let nulls_last = match rest.iter().position(|w| w == "nulls") {
        Some(i) => rest.get(i + 1).is_some_and(|w| w == "last"),
        None => descending,
    };
    Ok(SortField::builder()
        .source_id(field.id)
        .transform(Transform::Identity)
        .direction(if descending {
            SortDirection::Descending
        } else {
            SortDirection::Ascending
        })
        .null_order(if nulls_last {
            NullOrder::Last
        } else {
            NullOrder::First
        })
        .build())
}

/// The sort order a sort compaction writes, and its id in the table when it
/// is one of the table's orders.
fn sort_order(table: &Table, columns: &[String]) -> Result<(Vec<SortField>, Option<i64>)> {
    let metadata = table.metadata();
    if columns.is_empty() {
        let order = metadata.default_sort_order();
        if order.fields.is_empty() {
            return Err(Error::Invalid(format!(
                "{} has no sort order: name the columns (--sort-by)",
                table.identifier()
            )));
        }
        return Ok((order.fields.clone(), Some(order.order_id)));
    }
    let schema = metadata.current_schema();
    let fields = columns
        .iter()
        .map(|c| sort_field(c, schema))
        .collect::<Result<Vec<_>>>()?;
    let id = metadata
        .sort_orders_iter()
        .find(|o| o.fields == fields)
        .map(|o| o.order_id);
    Ok((fields, id))
}

/// Groups `table`'s current data files into the rewrites `options` ask for.
async fn plan(
    table: &Table,
    options: &CompactOptions,
    target: u64,
    order_id: Option<i64>,
    sorting: bool,
) -> Result<Vec<Group>> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let tasks: Vec<FileScanTask> = table
        .scan()
        .snapshot_id(snapshot.snapshot_id())
        .select_all()
        .build()
        .map_err(wrap)?
        .plan_files()
        .await
        .map_err(wrap)?
        .try_collect()
        .await
        .map_err(wrap)?;
    // A file may come as several tasks (splits); it is rewritten whole.
    let mut files: BTreeMap<String, Candidate> = BTreeMap::new();
    let default_spec = table.metadata().default_partition_spec_id();
    for task in tasks {
        // New files are written in the default spec; files of an older spec
        // would need their rows re-partitioned, which binpack does not do.
        if task
            .partition_spec
            .as_ref()
            .is_some_and(|spec| spec.spec_id() != default_spec)
        {
            continue;
        }
        let entry = files
            .entry(task.data_file_path.clone())
            .or_insert_with(|| Candidate {
                tasks: Vec::new(),
                size: task.file_size_in_bytes,
                has_deletes: false,
                partition: task.partition.clone(),
            });
        entry.has_deletes |= !task.deletes.is_empty();
        entry.tasks.push(task);
    }
    // Sort order ids of the files, from the manifests (tasks do not carry them).
    let sorted_files = if sorting {
        files_with_sort_order(table, order_id).await?
    } else {
        HashSet::new()
    };
    let min_size = target * 3 / 4;
    let max_size = target * 9 / 5;
    let min_input = options
        .min_input_files
        .unwrap_or(DEFAULT_MIN_INPUT_FILES)
        .max(1);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (path, file) in files {
        // A sort rewrite leaves files already in its order alone: re-sorting
        // them would gain little and would never converge on small tables.
        if sorting && !options.rewrite_all && sorted_files.contains(&path) {
            continue;
        }
        let candidate = options.rewrite_all
            || file.size < min_size
            || file.size > max_size
            || file.has_deletes
            || (sorting && !sorted_files.contains(&path));
        if !candidate {
            continue;
        }
        let key = format!("{:?}", file.partition);
        let group = groups.entry(key).or_insert_with(|| Group {
            partition: file.partition.clone(),
            files: Vec::new(),
            tasks: Vec::new(),
            bytes: 0,
        });
        group.files.push(path);
        group.tasks.extend(file.tasks);
        group.bytes += file.size;
    }
    Ok(groups
        .into_values()
        .filter(|g| {
            options.rewrite_all
                || g.files.len() >= min_input
                || (g.bytes >= target && g.files.len() > 1)
                || (sorting && !g.files.is_empty())
        })
        .collect())
}

/// Splits a group into `ceil(bytes / target)` bins of about equal size (files
/// in path order), so that each bin writes about one file of the target size
/// and bins can be rewritten in parallel.
fn into_bins(group: Group, target: u64) -> Vec<Group> {
    let bins = group.bytes.div_ceil(target.max(1)).max(1);
    if bins == 1 || group.files.len() < 2 {
        return vec![group];
    }
    let per_bin = group.bytes.div_ceil(bins);
    let mut sizes: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for task in &group.tasks {
        sizes.insert(task.data_file_path.as_str(), task.file_size_in_bytes);
    }
    let mut out: Vec<Group> = Vec::new();
    let mut current = Group {
        partition: group.partition.clone(),
        files: Vec::new(),
        tasks: Vec::new(),
        bytes: 0,
    };
    for path in &group.files {
        let size = sizes.get(path.as_str()).copied().unwrap_or(0);
        if !current.files.is_empty() && current.bytes + size > per_bin {
            out.push(std::mem::replace(
                &mut current,
                Group {
                    partition: group.partition.clone(),
                    files: Vec::new(),
                    tasks: Vec::new(),
                    bytes: 0,
                },
            ));
        }
        current.files.push(path.clone());
        current.bytes += size;
    }
    out.push(current);
    // Tasks follow their files.
    let bin_of: std::collections::HashMap<&str, usize> = out
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.files.iter().map(move |f| (f.as_str(), i)))
        .collect();
    let mut tasks: Vec<Vec<FileScanTask>> = vec![Vec::new(); out.len()];
    for task in group.tasks {
        if let Some(i) = bin_of.get(task.data_file_path.as_str()) {
            tasks[*i].push(task);
        }
    }
    for (bin, bin_tasks) in out.iter_mut().zip(tasks) {
        bin.tasks = bin_tasks;
    }
    out
}

/// Paths of the current data files written in sort order `order_id`.
async fn files_with_sort_order(table: &Table, order_id: Option<i64>) -> Result<HashSet<String>> {
    let Some(order_id) = order_id else {
        return Ok(HashSet::new());
    };
    let mut out = HashSet::new();
    for (_, manifest) in crate::files::current_manifests(table).await? {
        for entry in manifest.entries() {
            if entry.is_alive()
                && entry.data_file().sort_order_id().map(i64::from) == Some(order_id)
            {
                out.insert(entry.file_path().to_owned());
            }
        }
    }
    Ok(out)
}

/// The single stream a group's read produces, as a DataFusion partition.
struct OneStream {
    schema: ArrowSchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneStream")
    }
}

impl PartitionStream for OneStream {
    fn schema(&self) -> &ArrowSchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        taken.unwrap_or_else(|| {
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::empty(),
            ))
        })
    }
}

/// The sort expressions of Iceberg sort `fields` over `schema`.
fn sort_exprs(
    fields: &[SortField],
    table_schema: &iceberg::spec::Schema,
    schema: &ArrowSchemaRef,
) -> Result<Vec<PhysicalSortExpr>> {
    let df = |e: datafusion::error::DataFusionError| Error::State(format!("sorting: {e}"));
    let mut exprs = Vec::new();
    for field in fields {
        let name = table_schema
            .name_by_field_id(field.source_id)
            .ok_or_else(|| Error::Invalid(format!("sort field id {} is gone", field.source_id)))?;
        if field.transform != Transform::Identity {
            return Err(Error::Unsupported(format!(
                "sorting by {}({name}); only identity sort fields are supported",
                field.transform
            )));
        }
        exprs.push(PhysicalSortExpr {
            expr: col(name, schema).map_err(df)?,
            options: SortOptions {
                descending: field.direction == SortDirection::Descending,
                nulls_first: field.null_order == NullOrder::First,
            },
        });
    }
    Ok(exprs)
}

/// Sorts a stream by `exprs` with DataFusion's external sort under `memory`
/// bytes.
fn sorted(
    stream: SendableRecordBatchStream,
    exprs: Vec<PhysicalSortExpr>,
    memory: usize,
) -> Result<SendableRecordBatchStream> {
    let df = |e: datafusion::error::DataFusionError| Error::State(format!("sorting: {e}"));
    let schema = stream.schema();
    let partition: Arc<dyn PartitionStream> = Arc::new(OneStream {
        schema: Arc::clone(&schema),
        stream: Mutex::new(Some(stream)),
    });
    let input = StreamingTableExec::try_new(
        Arc::clone(&schema),
        vec![partition],
        None,
        Vec::<LexOrdering>::new(),
        false,
        None,
    )
    .map_err(df)?;
    let ordering =
        LexOrdering::new(exprs).ok_or_else(|| Error::Invalid("an empty sort order".to_owned()))?;
    let sort = SortExec::new(ordering, Arc::new(input));
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory, 1.0)
        .build_arc()
        .map_err(df)?;
    let ctx = TaskContext::default().with_runtime(runtime);
    sort.execute(0, Arc::new(ctx)).map_err(df)
}

/// `stream` z-ordered by `columns`: each batch gets its z-value column, the
/// rows are sorted by it, and the column is dropped again.
fn z_ordered(
    stream: SendableRecordBatchStream,
    columns: &[super::zorder::ZColumn],
    memory: usize,
) -> Result<SendableRecordBatchStream> {
    use super::zorder::{Z_COLUMN, with_z, without_z};
    let df = |e: datafusion::error::DataFusionError| Error::State(format!("z-order: {e}"));
    let schema = stream.schema();
    let mut fields: Vec<datafusion::arrow::datatypes::Field> =
        schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(datafusion::arrow::datatypes::Field::new(
        Z_COLUMN,
        datafusion::arrow::datatypes::DataType::UInt64,
        false,
    ));
    let with: ArrowSchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    let owned = columns.to_vec();
    let keyed = stream.map(move |batch| {
        batch.and_then(|b| {
            with_z(&b, &owned)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
        })
    });
    let keyed: SendableRecordBatchStream =
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&with), keyed));
    let z = PhysicalSortExpr {
        expr: col(Z_COLUMN, &with).map_err(df)?,
        options: SortOptions::default(),
    };
    let ordered = sorted(keyed, vec![z], memory)?;
    let stripped = ordered.map(|batch| batch.map(|b| without_z(&b)));
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stripped)))
}

/// Reads, (sorts) and writes one group; returns the new files.
async fn rewrite_group(
    table: &Table,
    group: Group,
    target: u64,
    order: Option<Order>,
    memory: usize,
) -> Result<Vec<DataFile>> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let metadata = table.metadata();
    let schema = Arc::clone(metadata.current_schema());
    let arrow_schema: ArrowSchemaRef = Arc::new(schema_to_arrow_schema(&schema).map_err(wrap)?);
    let tasks = futures::stream::iter(group.tasks.into_iter().map(Ok)).boxed();
    // Binpack does not care about row order: read several files at once.
    let read = table
        .reader_builder()
        .with_data_file_concurrency_limit(if order.is_some() { 1 } else { 4 })
        .build()
        .read(tasks)
        .map_err(wrap)?
        .stream()
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)));
    let mut stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
        Arc::clone(&arrow_schema),
        read,
    ));
    match &order {
        Some(Order::Sort(fields, _)) => {
            let exprs = sort_exprs(fields, &schema, &arrow_schema)?;
            stream = sorted(stream, exprs, memory)?;
        }
        Some(Order::ZOrder(columns)) => stream = z_ordered(stream, columns, memory)?,
        None => {}
    }
    let parquet = ParquetWriterBuilder::new_with_match_mode(
        writer_properties(metadata.properties())
            .map_err(|e| Error::Invalid(format!("{ident}: {e}")))?,
        Arc::clone(&schema),
        FieldMatchMode::Name,
    );
    let rolling = RollingFileWriterBuilder::new(
        parquet,
        usize::try_from(target).unwrap_or(usize::MAX),
        table.file_io().clone(),
        DefaultLocationGenerator::new(metadata).map_err(wrap)?,
        DefaultFileNameGenerator::new(
            format!("floe-compact-{}", uuid::Uuid::now_v7()),
            None,
            DataFileFormat::Parquet,
        ),
    );
    let key = group
        .partition
        .clone()
        .filter(|p| !p.fields().is_empty())
        .map(|data| {
            PartitionKey::new(
                metadata.default_partition_spec().as_ref().clone(),
                Arc::clone(&schema),
                data,
            )
        });
    let mut writer = DataFileWriterBuilder::new(rolling)
        .build(key)
        .await
        .map_err(wrap)?;
    // Reading (Parquet decoding, deletes, sorting) runs on its own task and
    // hands batches over a bounded channel, so that decoding and encoding use
    // two cores; dropping the receiver stops the reader.
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let _reader = AbortOnDropHandle::new(tokio::spawn(async move {
        while let Some(batch) = stream.next().await {
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                break;
            }
        }
    }));
    while let Some(batch) = rx.recv().await {
        let batch = batch.map_err(|e| Error::State(format!("{ident}: reading: {e}")))?;
        // The rolling writer starts a new file only between writes: slices
        // (zero-copy) keep files near the target however large the sort's
        // batches are, so a sorted table gets many narrow files, not few
        // wide ones.
        let slice = slice_rows(&batch, target);
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = slice.min(batch.num_rows() - offset);
            writer.write(batch.slice(offset, len)).await.map_err(wrap)?;
            offset += len;
        }
    }
    let files = writer.close().await.map_err(wrap)?;
    let order_id = match order {
        Some(Order::Sort(_, id)) => id,
        _ => None,
    };
    files
        .into_iter()
        .map(|file| match order_id {
            Some(id) => with_sort_order(
                &file,
                i32::try_from(id).unwrap_or(0),
                metadata.default_partition_spec_id(),
            )
            .map_err(|e| Error::State(format!("{ident}: {e}"))),
            None => Ok(file),
        })
        .collect()
}

/// Parquet writer settings from the table's `write.parquet.*` properties
/// (iceberg 0.10's writer ignores them and writes uncompressed): the codec
/// (Iceberg's default zstd) and its level.
fn writer_properties(
    properties: &std::collections::HashMap<String, String>,
) -> std::result::Result<parquet::file::properties::WriterProperties, String> {
    use parquet::basic::{Compression, GzipLevel, ZstdLevel};
    let level = properties
        .get("write.parquet.compression-level")
        .map(|v| {
            v.parse::<i32>()
                .map_err(|e| format!("write.parquet.compression-level `{v}`: {e}"))
        })
        .transpose()?;
    let codec = properties
        .get("write.parquet.compression-codec")
        .map_or("zstd", String::as_str)
        .to_ascii_lowercase();
    let compression = match codec.as_str() {
        "zstd" => {
            Compression::ZSTD(ZstdLevel::try_new(level.unwrap_or(3)).map_err(|e| e.to_string())?)
        }
        "gzip" => Compression::GZIP(match level {
            Some(l) => {
                GzipLevel::try_new(u32::try_from(l).unwrap_or(6)).map_err(|e| e.to_string())?
            }
            None => GzipLevel::default(),
        }),
        "snappy" => Compression::SNAPPY,
        "lz4" => Compression::LZ4_RAW,
        "uncompressed" | "none" => Compression::UNCOMPRESSED,
        other => {
            return Err(format!(
                "write.parquet.compression-codec `{other}` is not supported"
            ));
        }
    };
    Ok(parquet::file::properties::WriterProperties::builder()
        .set_compression(compression)
        .build())
}

/// `file` with its sort order id set (the writers leave it empty).
fn with_sort_order(
    file: &DataFile,
    order_id: i32,
    spec_id: i32,
) -> std::result::Result<DataFile, String> {
    let mut builder = DataFileBuilder::default();
    builder
        .content(file.content_type())
        .file_path(file.file_path().to_owned())
        .file_format(file.file_format())
        .partition(file.partition().clone())
        .record_count(file.record_count())
        .file_size_in_bytes(file.file_size_in_bytes())
        .column_sizes(file.column_sizes().clone())
        .value_counts(file.value_counts().clone())
        .null_value_counts(file.null_value_counts().clone())
        .nan_value_counts(file.nan_value_counts().clone())
        .lower_bounds(file.lower_bounds().clone())
        .upper_bounds(file.upper_bounds().clone())
        .partition_spec_id(spec_id)
        .sort_order_id(order_id);
    if let Some(offsets) = file.split_offsets() {
        builder.split_offsets(Some(offsets.to_vec()));
    }
    builder.build().map_err(|e| e.to_string())
}

/// Deletes files a failed or abandoned rewrite wrote.
async fn discard(table: &Table, files: &[DataFile]) {
    for file in files {
        if let Err(e) = table.file_io().delete(file.file_path()).await {
            tracing::warn!(file = file.file_path(), error = %e, "could not remove a file of an abandoned rewrite; the orphan sweep will");
        }
    }
}

/// Compacts `table`; reloads it from `catalog` to commit.
pub(crate) async fn run(
    catalog: &dyn Catalog,
    ident: &TableIdent,
    committer: &dyn Committer,
    options: &CompactOptions,
    dry_run: bool,
) -> Result<Outcome> {
    let table = catalog
        .load_table(ident)
        .await
        .map_err(|e| iceberg_error(ident, e))?;
    let metadata = table.metadata();
    let target = options
        .target_file_size
        .unwrap_or_else(|| target_file_size(metadata));
    let (table, sort) = match &options.strategy {
        Strategy::Binpack | Strategy::ZOrder(_) => (table, None),
        Strategy::Sort(columns) => {
            let (fields, id) = sort_order(&table, columns)?;
            if id.is_some() || dry_run {
                (table, Some((fields, id)))
            } else {
                // Files record the id of the order they are sorted in: an
                // explicit order joins the table's orders (not as default)
                // first.
                let table = add_sort_order(&table, committer, &fields, false).await?;
                let (fields, id) = sort_order(&table, columns)?;
                (table, Some((fields, id)))
            }
        }
    };
    let zorder = match &options.strategy {
        Strategy::ZOrder(columns) => Some(super::zorder::columns(&table, columns).await?),
        _ => None,
    };
    let metadata = table.metadata();
    // Z-ordered files record no order, so z-order picks files by size as
    // binpack does.
    let groups = plan(
        &table,
        options,
        target,
        sort.as_ref().and_then(|(_, id)| *id),
        sort.is_some(),
    )
    .await?;
    // Binpack splits a partition's files into bins of about the target size,
    // rewritten in parallel; a sort or z-order keeps each partition whole so
    // that its files do not overlap.
    let groups = if sort.is_none() && zorder.is_none() {
        groups
            .into_iter()
            .flat_map(|g| into_bins(g, target))
            .collect()
    } else {
        groups
    };
    let mut outcome = Outcome::default();
    let Some(base) = metadata.current_snapshot() else {
        outcome.notes.push("the table has no snapshot".to_owned());
        return Ok(outcome);
    };
    let starting_sequence_number = base.sequence_number();
    let base_id = base.snapshot_id();
    let input_files: usize = groups.iter().map(|g| g.files.len()).sum();
    let input_bytes: u64 = groups.iter().map(|g| g.bytes).sum();
    outcome.notes.push(format!(
        "{} group(s), {input_files} file(s), {input_bytes} bytes to rewrite (target file size {target} bytes{})",
        groups.len(),
        match (&sort, &zorder) {
            (Some((fields, _)), _) => format!(", sorted by {} field(s)", fields.len()),
            (None, Some(columns)) => format!(", z-ordered by {} columns", columns.len()),
            (None, None) => String::new(),
        }
    ));
    if groups.is_empty() {
        return Ok(outcome);
    }
    if dry_run {
        for group in &groups {
            for path in &group.files {
                outcome
                    .files
                    .push(FileAction::WouldRewrite { path: path.clone() });
            }
        }
        outcome.bytes_removed = input_bytes;
        return Ok(outcome);
    }
    let removed: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.files.iter().cloned())
        .collect();
    let parallelism = options.parallelism.unwrap_or(2).max(1);
    let memory = options.sort_memory.unwrap_or(256 * 1024 * 1024);
    let order = match (&sort, &zorder) {
        (Some((fields, id)), _) => Some(Order::Sort(fields.as_slice().into(), *id)),
        (None, Some(columns)) => Some(Order::ZOrder(columns.as_slice().into())),
        (None, None) => None,
    };
    // Each group is its own task: Parquet encoding and compression are the
    // expensive part, and futures polled by one task (`buffer_unordered` over
    // plain futures) would all encode on one thread. Dropping this future
    // aborts the tasks.
    let results: Vec<Result<Vec<DataFile>>> = futures::stream::iter(groups)
        .map(|group| {
            let table = table.clone();
            let order = order.clone();
            AbortOnDropHandle::new(tokio::spawn(async move {
                rewrite_group(&table, group, target, order, memory).await
            }))
        })
        .buffer_unordered(parallelism)
        .map(|joined| {
            joined.unwrap_or_else(|e| Err(Error::State(format!("a rewrite task failed: {e}"))))
        })
        .collect()
        .await;
    let mut added = Vec::new();
    let mut failure = None;
    for result in results {
        match result {
            Ok(files) => added.extend(files),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        discard(&table, &added).await;
        return Err(e);
    }
    if let Err(e) = failpoint::hit("compact.files_written", table.metadata().location()).await {
        discard(&table, &added).await;
        return Err(e);
    }
    let rewrite = Rewrite {
        removed,
        added: added.clone(),
        starting_sequence_number,
        remove_dangling_deletes: true,
    };
    let mut last = None;
    for _ in 0..COMMIT_ATTEMPTS {
        let head = catalog
            .load_table(ident)
            .await
            .map_err(|e| iceberg_error(ident, e))?;
        if let Err(e) = validate_since(&head, base_id) {
            discard(&table, &added).await;
            return Err(e);
        }
        let (new, summary) = match replace_snapshot(&head, &rewrite).await {
            Ok(built) => built,
            Err(e) => {
                discard(&table, &added).await;
                return Err(e);
            }
        };
        match committer.swap(&head, new).await {
            Ok(_) => {
                failpoint::hit("compact.committed", table.metadata().location()).await?;
                outcome.new_snapshot = Some(summary.snapshot_id);
                if summary.deletes_removed > 0 {
                    outcome.notes.push(format!(
                        "{} delete file(s) no longer apply and were dropped",
                        summary.deletes_removed
                    ));
                }
                outcome.bytes_removed = summary.bytes_removed;
                outcome.bytes_added = summary.bytes_added;
                outcome.files.extend(
                    rewrite
                        .removed
                        .iter()
                        .map(|p| FileAction::Replaced { path: p.clone() }),
                );
                outcome
                    .files
                    .extend(added.iter().map(|f| FileAction::Added {
                        path: f.file_path().to_owned(),
                    }));
                return Ok(outcome);
            }
            Err(Error::Conflict(message)) => {
                tracing::info!(table = %ident, %message, "compaction commit raced another commit; rebuilding on the new head");
                last = Some(message);
            }
            Err(e) => {
                discard(&table, &added).await;
                return Err(e);
            }
        }
    }
    discard(&table, &added).await;
    Err(Error::Conflict(format!(
        "{ident}: gave up after {COMMIT_ATTEMPTS} commit attempts: {}",
        last.unwrap_or_default()
    )))
}

/// Refuses to commit over what happened since `base_id` when it could make
/// the rewrite wrong: delete files added (they may target rows the rewrite
/// copied) or an overwrite / delete.
fn validate_since(head: &Table, base_id: i64) -> Result<()> {
    let metadata = head.metadata();
    let mut id = metadata.current_snapshot_id();
    while let Some(snapshot) = id.and_then(|i| metadata.snapshot_by_id(i)) {
        if snapshot.snapshot_id() == base_id {
            return Ok(());
        }
        let summary = snapshot.summary();
        let deletes = summary
            .additional_properties
            .get("added-delete-files")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let operation = summary.operation.as_str().to_owned();
        if deletes > 0 || matches!(operation.as_str(), "overwrite" | "delete") {
            return Err(Error::Conflict(format!(
                "{}: snapshot {} ({operation}) changed rows the compaction read; rerun it",
                head.identifier(),
                snapshot.snapshot_id()
            )));
        }
        id = snapshot.parent_snapshot_id();
    }
    Err(Error::Conflict(format!(
        "{}: the snapshot the compaction read is no longer an ancestor of the head",
        head.identifier()
    )))
}

/// Adds `fields` as one of the table's sort orders (not the default) and
/// returns the table after that commit.
pub(crate) async fn add_sort_order(
    table: &Table,
    committer: &dyn Committer,
    fields: &[SortField],
    as_default: bool,
) -> Result<Table> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let order = SortOrder::builder()
        .with_fields(fields.to_vec())
        .build_unbound()
        .map_err(wrap)?;
    let mut builder = table
        .metadata()
        .clone()
        .into_builder(table.metadata_location().map(str::to_owned))
        .add_sort_order(order)
        .map_err(wrap)?;
    if as_default {
        builder = builder.set_default_sort_order(-1).map_err(wrap)?;
    }
    let new = builder.build().map_err(wrap)?.metadata;
    committer.swap(table, new).await
}

/// Sort orders as iceberg builds them, for callers that set one.
pub fn build_sort_order(table: &Table, columns: &[String]) -> Result<SortOrder> {
    let (fields, _) = sort_order(table, columns)?;
    SortOrder::builder()
        .with_fields(fields)
        .build(table.metadata().current_schema())
        .map_err(|e| iceberg_error(table.identifier(), e))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use parquet::basic::{Compression, ZstdLevel};
    use parquet::schema::types::ColumnPath;

    use super::writer_properties;

    #[test]
    fn writer_properties_follow_the_table() {
        let column = ColumnPath::from("x");
        let default = writer_properties(&HashMap::new()).expect("default");
        assert_eq!(
            default.compression(&column),
            Compression::ZSTD(ZstdLevel::try_new(3).expect("level"))
        );
        let snappy = writer_properties(&HashMap::from([(
            "write.parquet.compression-codec".to_owned(),
            "SNAPPY".to_owned(),
        )]))
        .expect("snappy");
        assert_eq!(snappy.compression(&column), Compression::SNAPPY);
        let bad = writer_properties(&HashMap::from([(
            "write.parquet.compression-codec".to_owned(),
            "brotli-ish".to_owned(),
        )]));
        assert!(bad.expect_err("unknown codec").contains("brotli-ish"));
    }
}
