//! A throwaway lake for the maintenance tests: a SQL catalog on SQLite in a
//! temporary directory (or any configured catalog: Glue on moto, a SQL
//! catalog on PostgreSQL), tables of `(id, category, value)` written as many
//! small appends, and the checks every test makes (row count and a content
//! checksum through Floe, pyiceberg and DuckDB).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use floe_maintenance::catalog::{CatalogConfig, open_target};
use floe_maintenance::ops::Target;
use futures::TryStreamExt;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::{
    DataFileFormat, Literal, NestedField, PartitionKey, PrimitiveType, Schema, Struct, Transform,
    Type, UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::base_writer::equality_delete_writer::{
    EqualityDeleteFileWriterBuilder, EqualityDeleteWriterConfig,
};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{NamespaceIdent, TableCreation, TableIdent};

pub const CATEGORIES: [&str; 3] = ["alpha", "beta", "gamma"];

/// A lake: its catalog, and a temporary directory for its state store (and,
/// for the local default, its catalog and warehouse).
pub struct Lake {
    pub dir: tempfile::TempDir,
    pub config: CatalogConfig,
    pub target: Target,
    /// How the independent readers reach the same catalog and files.
    pub readers: Readers,
}

/// The catalog as pyiceberg's `load_catalog` takes it, and DuckDB's S3
/// settings when the files are in an object store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readers {
    pub pyiceberg: serde_json::Value,
    pub duckdb_s3: Option<serde_json::Value>,
}

/// What reading the whole table gives: enough to tell any lost, duplicated
/// or changed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Checksum {
    pub rows: u64,
    pub sum_id: i64,
    pub sum_value: i64,
    pub sum_product: i64,
    pub sum_length: i64,
}

/// The value column of row `id`: a function of the id, so any reader can
/// check it.
pub fn value_of(id: i64) -> i64 {
    (id * 7919) % 1000
}

pub fn category_of(id: i64) -> &'static str {
    CATEGORIES[(id % 3) as usize]
}

impl Lake {
    pub async fn new() -> Lake {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = CatalogConfig::local("lake", dir.path());
        let readers = Readers {
            pyiceberg: serde_json::json!({
                "type": "sql",
                "uri": format!("sqlite:///{}", dir.path().join("catalog.db").display()),
                "warehouse": format!("file://{}", dir.path().join("warehouse").display()),
            }),
            duckdb_s3: None,
        };
        Lake::open(dir, config, readers).await
    }

    /// A lake on the catalog `config` describes.
    pub async fn open(dir: tempfile::TempDir, config: CatalogConfig, readers: Readers) -> Lake {
        let target = open_target(&config, Some(&dir.path().join("state.db")))
            .await
            .unwrap_or_else(|e| panic!("open catalog {}: {e}", config.name));
        Lake {
            dir,
            config,
            target,
            readers,
        }
    }

    /// Creates `ns.name`, partitioned by category when asked.
    pub async fn create(&self, name: &str, partitioned: bool) -> TableIdent {
        let catalog = self.target.catalog.as_ref();
        let ns = NamespaceIdent::new("ns".to_owned());
        if !catalog.namespace_exists(&ns).await.expect("exists") {
            catalog
                .create_namespace(&ns, HashMap::new())
                .await
                .expect("namespace");
        }
        let schema = Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::required(2, "category", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::required(3, "value", Type::Primitive(PrimitiveType::Long)).into(),
            ])
            .build()
            .expect("schema");
        let mut creation = TableCreation::builder()
            .name(name.to_owned())
            .schema(schema)
            .build();
        if partitioned {
            creation.partition_spec = Some(
                UnboundPartitionSpec::builder()
                    .add_partition_field(2, "category", Transform::Identity)
                    .expect("partition field")
                    .build(),
            );
        }
        catalog.create_table(&ns, creation).await.expect("create");
        TableIdent::new(ns, name.to_owned())
    }

    pub async fn table(&self, ident: &TableIdent) -> Table {
        self.target
            .catalog
            .load_table(ident)
            .await
            .expect("load table")
    }

    /// Appends rows `ids` as one commit: one data file per partition.
    pub async fn append(&self, ident: &TableIdent, ids: Range<i64>) {
        let table = self.table(ident).await;
        let files = write_rows(&table, ids).await;
        let tx = Transaction::new(&table);
        let tx = tx
            .fast_append()
            .add_data_files(files)
            .apply(tx)
            .expect("apply append");
        tx.commit(self.target.catalog.as_ref())
            .await
            .expect("commit append");
    }

    /// Deletes rows `ids` with an equality delete file on `id` (one
    /// `delete` commit through Floe's commit layer).
    pub async fn delete_rows(&self, ident: &TableIdent, ids: &[i64]) {
        let table = self.table(ident).await;
        let metadata = table.metadata();
        let schema = Arc::clone(metadata.current_schema());
        let config = EqualityDeleteWriterConfig::new(vec![1], Arc::clone(&schema))
            .expect("equality delete config");
        let delete_schema =
            iceberg::arrow::arrow_schema_to_schema(config.projected_arrow_schema_ref())
                .expect("delete schema");
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            ParquetWriterBuilder::new(Default::default(), Arc::new(delete_schema)),
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata).expect("locations"),
            DefaultFileNameGenerator::new(
                format!("delete-{}", uuid_like()),
                None,
                DataFileFormat::Parquet,
            ),
        );
        let mut writer = EqualityDeleteFileWriterBuilder::new(rolling, config)
            .build(None)
            .await
            .expect("delete writer");
        writer
            .write(rows_batch(&table, ids))
            .await
            .expect("write deletes");
        let files = writer.close().await.expect("close deletes");
        self.commit_deletes(&table, files).await;
    }

    /// Deletes rows by position: for each data file, the row positions given
    /// (one position-delete file, one `delete` commit through Floe's commit
    /// layer). Returns the ids of the deleted rows, read from the files.
    pub async fn delete_positions(
        &self,
        ident: &TableIdent,
        targets: &[(String, Vec<i64>)],
    ) -> Vec<i64> {
        use iceberg::metadata_columns::{
            RESERVED_FIELD_ID_DELETE_FILE_PATH, RESERVED_FIELD_ID_DELETE_FILE_POS,
        };
        use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder};

        let table = self.table(ident).await;
        let mut deleted = Vec::new();
        let (mut paths, mut positions) = (Vec::new(), Vec::new());
        for (path, rows) in targets {
            let ids = ids_in(&table, path).await;
            for pos in rows {
                deleted.push(ids[usize::try_from(*pos).expect("position")]);
                paths.push(path.clone());
                positions.push(*pos);
            }
        }
        let schema = Arc::new(
            Schema::builder()
                .with_fields(vec![
                    NestedField::required(
                        RESERVED_FIELD_ID_DELETE_FILE_PATH,
                        "file_path",
                        Type::Primitive(PrimitiveType::String),
                    )
                    .into(),
                    NestedField::required(
                        RESERVED_FIELD_ID_DELETE_FILE_POS,
                        "pos",
                        Type::Primitive(PrimitiveType::Long),
                    )
                    .into(),
                ])
                .build()
                .expect("position delete schema"),
        );
        let batch = RecordBatch::try_new(
            Arc::new(schema_to_arrow_schema(&schema).expect("arrow schema")),
            vec![
                Arc::new(StringArray::from(paths)),
                Arc::new(Int64Array::from(positions)),
            ],
        )
        .expect("batch");
        let location = format!(
            "{}/data/pos-delete-{}.parquet",
            table.metadata().location(),
            uuid_like()
        );
        let output = table.file_io().new_output(&location).expect("output");
        let mut writer = ParquetWriterBuilder::new(Default::default(), schema)
            .build(output)
            .await
            .expect("writer");
        writer.write(&batch).await.expect("write positions");
        let files = writer
            .close()
            .await
            .expect("close")
            .into_iter()
            .map(|mut file| {
                file.content(iceberg::spec::DataContentType::PositionDeletes);
                file.partition_spec_id(table.metadata().default_partition_spec_id());
                file.build().expect("delete file")
            })
            .collect();
        self.commit_deletes(&table, files).await;
        deleted
    }

    /// Makes a table, keeps a copy of it, commits an append past that copy,
    /// then swaps on the stale copy: the committer must refuse with a
    /// conflict and every row must stay.
    pub async fn assert_stale_commit_refused(&self) {
        let ident = self.create("raced", false).await;
        self.append(&ident, 0..50).await;
        let stale = self.table(&ident).await;
        self.append(&ident, 50..100).await;
        let err = self
            .target
            .committer
            .swap(&stale, stale.metadata().clone())
            .await
            .expect_err("a stale base must not commit");
        assert!(matches!(err, floe_maintenance::Error::Conflict(_)), "{err}");
        self.assert_reads(&ident, expected(0..100)).await;
    }

    /// Commits delete files as one `delete` snapshot through Floe's commit layer.
    async fn commit_deletes(&self, table: &Table, files: Vec<iceberg::spec::DataFile>) {
        let new = floe_maintenance::commit::add_delete_files(table, files)
            .await
            .expect("delete snapshot");
        self.target
            .committer
            .swap(table, new)
            .await
            .expect("commit deletes");
    }

    /// Row count and checksum, read by iceberg-rust.
    pub async fn checksum(&self, ident: &TableIdent) -> Checksum {
        let table = self.table(ident).await;
        checksum_of(&table).await
    }

    /// Live data files: (path, size, sort order id).
    pub async fn data_files(&self, ident: &TableIdent) -> Vec<(String, u64, Option<i32>)> {
        let table = self.table(ident).await;
        let mut out = Vec::new();
        let manifests = floe_maintenance::files::current_manifests(&table)
            .await
            .expect("manifests");
        for (_, manifest) in manifests {
            for entry in manifest.entries() {
                if entry.is_alive() {
                    out.push((
                        entry.file_path().to_owned(),
                        entry.file_size_in_bytes(),
                        entry.data_file().sort_order_id(),
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// What pyiceberg and DuckDB read (through the venv `scripts/test`
    /// prepares and names in `FLOE_PYTHON`).
    pub async fn independent_readers(&self, ident: &TableIdent) -> (Checksum, Checksum) {
        let python = std::env::var("FLOE_PYTHON").unwrap_or_else(|_| {
            panic!("FLOE_PYTHON is not set: run the tests with `bash scripts/test`, which creates the venv with pyiceberg and DuckDB")
        });
        let table = self.table(ident).await;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readers.py");
        let output = std::process::Command::new(&python)
            .arg(script)
            .arg(&self.config.name)
            .arg(serde_json::to_string(&self.readers).expect("readers JSON"))
            .arg(format!("{}.{}", ident.namespace().join("."), ident.name()))
            .arg(table.metadata_location().expect("metadata location"))
            .output()
            .expect("run readers.py");
        assert!(
            output.status.success(),
            "readers.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        #[derive(serde::Deserialize)]
        struct Both {
            pyiceberg: Checksum,
            duckdb: Checksum,
        }
        let both: Both = serde_json::from_slice(&output.stdout).expect("readers.py JSON");
        (both.pyiceberg, both.duckdb)
    }

    /// Asserts that Floe, pyiceberg and DuckDB all read `expected`.
    pub async fn assert_reads(&self, ident: &TableIdent, expected: Checksum) {
        assert_eq!(self.checksum(ident).await, expected, "iceberg-rust read");
        let (py, duck) = self.independent_readers(ident).await;
        assert_eq!(py, expected, "pyiceberg read");
        assert_eq!(duck, expected, "DuckDB read");
    }
}

/// The `id` column of one data file, in file order.
async fn ids_in(table: &Table, path: &str) -> Vec<i64> {
    let bytes = table
        .file_io()
        .new_input(path)
        .expect("input")
        .read()
        .await
        .expect("read data file");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let column = batch
            .column_by_name("id")
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>().cloned())
            .expect("id column");
        ids.extend(column.values().iter().copied());
    }
    ids
}

/// The checksum of rows `ids`, computed without a table.
pub fn expected(ids: impl IntoIterator<Item = i64>) -> Checksum {
    let mut c = Checksum {
        rows: 0,
        sum_id: 0,
        sum_value: 0,
        sum_product: 0,
        sum_length: 0,
    };
    for id in ids {
        c.rows += 1;
        c.sum_id += id;
        c.sum_value += value_of(id);
        c.sum_product += id * value_of(id);
        c.sum_length += category_of(id).len() as i64;
    }
    c
}

pub async fn checksum_of(table: &Table) -> Checksum {
    let batches: Vec<RecordBatch> = table
        .scan()
        .select_all()
        .build()
        .expect("scan")
        .to_arrow()
        .await
        .expect("to_arrow")
        .try_collect()
        .await
        .expect("read");
    let mut c = expected(std::iter::empty());
    for batch in batches {
        let ids = batch
            .column_by_name("id")
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>().cloned())
            .expect("id column");
        let values = batch
            .column_by_name("value")
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>().cloned())
            .expect("value column");
        let categories = batch
            .column_by_name("category")
            .and_then(|a| a.as_any().downcast_ref::<StringArray>().cloned())
            .expect("category column");
        for i in 0..batch.num_rows() {
            c.rows += 1;
            c.sum_id += ids.value(i);
            c.sum_value += values.value(i);
            c.sum_product += ids.value(i) * values.value(i);
            c.sum_length += categories.value(i).len() as i64;
        }
    }
    c
}

/// The batch of rows `ids`, in `table`'s schema.
fn rows_batch(table: &Table, ids: &[i64]) -> RecordBatch {
    let schema = Arc::clone(table.metadata().current_schema());
    let arrow_schema = Arc::new(schema_to_arrow_schema(&schema).expect("arrow schema"));
    RecordBatch::try_new(
        arrow_schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(
                ids.iter().map(|i| category_of(*i)).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                ids.iter().map(|i| value_of(*i)).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch")
}

/// Writes rows `ids` into new data files of `table` (one per partition) and
/// returns them, uncommitted.
pub async fn write_rows(table: &Table, ids: Range<i64>) -> Vec<iceberg::spec::DataFile> {
    let metadata = table.metadata();
    let schema = Arc::clone(metadata.current_schema());
    let arrow_schema = Arc::new(schema_to_arrow_schema(&schema).expect("arrow schema"));
    let partitioned = !metadata.default_partition_spec().fields().is_empty();
    let groups: Vec<(Option<&str>, Vec<i64>)> = if partitioned {
        CATEGORIES
            .iter()
            .map(|c| {
                (
                    Some(*c),
                    ids.clone().filter(|i| category_of(*i) == *c).collect(),
                )
            })
            .filter(|(_, rows): &(Option<&str>, Vec<i64>)| !rows.is_empty())
            .collect()
    } else {
        vec![(None, ids.collect())]
    };
    let mut files = Vec::new();
    for (category, rows) in groups {
        let batch = RecordBatch::try_new(
            Arc::clone(&arrow_schema),
            vec![
                Arc::new(Int64Array::from(rows.clone())),
                Arc::new(StringArray::from(
                    rows.iter().map(|i| category_of(*i)).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    rows.iter().map(|i| value_of(*i)).collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("batch");
        let parquet = ParquetWriterBuilder::new(Default::default(), Arc::clone(&schema));
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            parquet,
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata).expect("locations"),
            DefaultFileNameGenerator::new(
                format!("test-{}", uuid_like()),
                None,
                DataFileFormat::Parquet,
            ),
        );
        let key = category.map(|c| {
            PartitionKey::new(
                metadata.default_partition_spec().as_ref().clone(),
                Arc::clone(&schema),
                Struct::from_iter([Some(Literal::string(c))]),
            )
        });
        let mut writer = DataFileWriterBuilder::new(rolling)
            .build(key)
            .await
            .expect("writer");
        writer.write(batch).await.expect("write");
        files.extend(writer.close().await.expect("close"));
    }
    files
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
