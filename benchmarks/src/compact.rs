//! `floe-bench compact`: binpack compaction of a table of many small files —
//! Floe (`floe maintain`) against raw DataFusion rewriting the same Parquet
//! files and pyiceberg reading and overwriting the table — and a selective
//! query before and after binpack and sort.
//!
//! Each contender runs as its own process under `/usr/bin/time`, so wall time
//! and peak RSS are the process's. Two identical lakes are generated (the
//! generator is deterministic): pyiceberg's overwrite replaces the table, so it
//! gets the second one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use arrow::array::{Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use floe_conformance::{Daemon, DaemonOptions};
use futures::TryStreamExt;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::expr::Reference;
use iceberg::spec::{DataFileFormat, Datum, NestedField, PrimitiveType, Schema, Type};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{NamespaceIdent, TableCreation, TableIdent};

/// How the benchmark is run.
pub struct Options {
    /// The floe binary (release).
    pub floe: PathBuf,
    /// Python with pyiceberg (the test venv).
    pub python: PathBuf,
    /// Table size in MiB of Parquet.
    pub size_mib: u64,
    /// Number of data files.
    pub files: u64,
    /// Instance price per hour, for the cost per TB.
    pub price_per_hour: f64,
}

/// Distinct values of `key`: a query on one value selects ~1/KEYS of the rows.
const KEYS: i64 = 100_000;
/// Parquet bytes per row of this schema, about (the payload does not compress).
const BYTES_PER_ROW: u64 = 60;

fn mix(id: i64) -> u64 {
    // splitmix64: rows are scattered over keys with no order in any file.
    let mut z = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn schema() -> anyhow::Result<Schema> {
    Ok(Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "key", Type::Primitive(PrimitiveType::Int)).into(),
            NestedField::required(3, "value", Type::Primitive(PrimitiveType::Double)).into(),
            NestedField::required(4, "payload", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()?)
}

fn config(dir: &Path) -> String {
    format!(
        "[server]\ndata_dir = {:?}\n\n[demo]\nenabled = false\n\n[listen]\npostgres = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n",
        dir.join("data")
    )
}

/// Writes a lake with `bench.events` of `files` small files into `dir`.
async fn generate(dir: &Path, options: &Options) -> anyhow::Result<u64> {
    let catalog_config = floe_maintenance::catalog::CatalogConfig::local("lake", &dir.join("data"));
    let catalog = floe_maintenance::catalog::open_catalog(&catalog_config).await?;
    let ns = NamespaceIdent::new("bench".to_owned());
    catalog.create_namespace(&ns, Default::default()).await?;
    let creation = TableCreation::builder()
        .name("events".to_owned())
        .schema(schema()?)
        .build();
    let table = catalog.create_table(&ns, creation).await?;
    let rows_per_file = (options.size_mib * 1024 * 1024 / options.files / BYTES_PER_ROW).max(1);
    let metadata = table.metadata();
    let iceberg_schema = Arc::clone(metadata.current_schema());
    let arrow_schema = Arc::new(schema_to_arrow_schema(&iceberg_schema)?);
    let mut files = Vec::new();
    for f in 0..options.files {
        let ids: Vec<i64> = (0..rows_per_file as i64)
            .map(|i| f as i64 * rows_per_file as i64 + i)
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&arrow_schema),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(Int32Array::from(
                    ids.iter()
                        .map(|i| (mix(*i) % KEYS as u64) as i32)
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    ids.iter()
                        .map(|i| (mix(*i ^ 7) % 10_000) as f64 / 100.0)
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    ids.iter()
                        .map(|i| format!("{:016x}{:016x}", mix(*i ^ 11), mix(*i ^ 13)))
                        .collect::<Vec<_>>(),
                )),
            ],
        )?;
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            ParquetWriterBuilder::new(Default::default(), Arc::clone(&iceberg_schema)),
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata)?,
            DefaultFileNameGenerator::new(format!("gen-{f:05}"), None, DataFileFormat::Parquet),
        );
        let mut writer = DataFileWriterBuilder::new(rolling).build(None).await?;
        writer.write(batch).await?;
        files.extend(writer.close().await?);
    }
    let bytes = files.iter().map(|f| f.file_size_in_bytes()).sum();
    let tx = Transaction::new(&table);
    let tx = tx.fast_append().add_data_files(files).apply(tx)?;
    tx.commit(catalog.as_ref()).await?;
    std::fs::write(dir.join("floe.toml"), config(dir))?;
    Ok(bytes)
}

/// Runs a command under `/usr/bin/time`: (wall seconds, peak RSS MiB).
fn timed(command: Command) -> anyhow::Result<(f64, f64)> {
    let report = tempfile::NamedTempFile::new()?;
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(report.path())
        .arg(program)
        .args(args);
    for (k, v) in command.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let output = wrapped.output().context("run /usr/bin/time")?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}\n{}",
            command,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = std::fs::read_to_string(report.path())?;
    let mut parts = text.split_whitespace();
    let seconds: f64 = parts.next().context("time output")?.parse()?;
    let kib: f64 = parts.next().context("time output")?.parse()?;
    Ok((seconds, kib / 1024.0))
}

/// Files and bytes a scan for `key = value` plans (Iceberg's file pruning on
/// manifest statistics), and the row count it returns.
async fn selective(dir: &Path, key: i32) -> anyhow::Result<(usize, u64)> {
    let catalog_config = floe_maintenance::catalog::CatalogConfig::local("lake", &dir.join("data"));
    let catalog = floe_maintenance::catalog::open_catalog(&catalog_config).await?;
    let table = catalog
        .load_table(&TableIdent::from_strs(["bench", "events"])?)
        .await?;
    let tasks: Vec<_> = table
        .scan()
        .with_filter(Reference::new("key").equal_to(Datum::int(key)))
        .select_all()
        .build()?
        .plan_files()
        .await?
        .try_collect()
        .await?;
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0;
    for task in &tasks {
        if seen.insert(task.data_file_path.clone()) {
            bytes += task.file_size_in_bytes;
        }
    }
    Ok((seen.len(), bytes))
}

/// Median latency of the selective query through Floe's PostgreSQL front end.
async fn query_ms(daemon: &Daemon, keys: &[i32]) -> anyhow::Result<(f64, i64)> {
    let client = daemon.connect().await;
    let mut times = Vec::new();
    let mut rows = 0;
    for key in keys {
        let start = Instant::now();
        let row = client
            .query_one(
                "SELECT count(*), sum(value) FROM bench.events WHERE key = $1",
                &[key],
            )
            .await?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        rows += row.get::<_, i64>(0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], rows))
}

fn maintain(floe: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<(f64, f64)> {
    let mut command = Command::new(floe);
    command
        .arg("maintain")
        .arg("lake.bench.events")
        .args(args)
        .arg("--config")
        .arg(dir.join("floe.toml"))
        .env_remove("FLOE_CONFIG")
        .env_remove("FLOE_DATA_DIR");
    timed(command)
}

/// The runnable part of the raw DataFusion contender (`floe-bench
/// datafusion-rewrite`): read Parquet files, write them again.
pub async fn datafusion_rewrite(list: &Path, out: &Path) -> anyhow::Result<()> {
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    let files: Vec<String> = std::fs::read_to_string(list)?
        .lines()
        .map(str::to_owned)
        .collect();
    let ctx = SessionContext::new();
    let frame = ctx
        .read_parquet(files, ParquetReadOptions::default())
        .await?;
    frame
        .write_parquet(
            &out.display().to_string(),
            datafusion::dataframe::DataFrameWriteOptions::new(),
            None,
        )
        .await?;
    Ok(())
}

/// Runs the whole benchmark and prints the table.
pub fn run(options: Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let lake = tempfile::tempdir()?;
    let lake_py = tempfile::tempdir()?;
    println!(
        "# floe-bench compact: {} MiB in {} files, 2 vCPU, price ${}/h",
        options.size_mib, options.files, options.price_per_hour
    );
    let started = Instant::now();
    let bytes = runtime.block_on(generate(lake.path(), &options))?;
    runtime.block_on(generate(lake_py.path(), &options))?;
    let mib = bytes as f64 / 1024.0 / 1024.0;
    println!(
        "generated 2 x {mib:.0} MiB in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let data_dir = lake.path().join("data/warehouse/bench/events/data");
    let list = lake.path().join("files.txt");
    let mut files: Vec<String> = std::fs::read_dir(&data_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    files.sort();
    std::fs::write(&list, files.join("\n"))?;

    // Selective query before anything.
    let keys: Vec<i32> = (0..20).map(|i| (mix(i) % KEYS as u64) as i32).collect();
    let daemon = Daemon::start(DaemonOptions::new(&options.floe).env(
        "FLOE_DATA_DIR",
        &lake.path().join("data").display().to_string(),
    ));
    let (before_ms, before_rows) = runtime.block_on(query_ms(&daemon, &keys))?;
    let (before_files, before_bytes) = runtime.block_on(selective(lake.path(), keys[0]))?;

    // Raw DataFusion: read every file, write Parquet again.
    let out = tempfile::tempdir()?;
    let mut df = Command::new(std::env::current_exe()?);
    df.arg("datafusion-rewrite").arg(&list).arg(out.path());
    let (df_s, df_rss) = timed(df)?;

    // Floe binpack.
    let (floe_s, floe_rss) = maintain(&options.floe, lake.path(), &["--ops", "compact"])?;
    let (binpack_ms, binpack_rows) = runtime.block_on(query_ms(&daemon, &keys))?;
    let (binpack_files, binpack_bytes) = runtime.block_on(selective(lake.path(), keys[0]))?;

    // Floe sort on the filtered column.
    let (sort_s, sort_rss) = maintain(
        &options.floe,
        lake.path(),
        &[
            "--ops",
            "compact",
            "--strategy",
            "sort",
            "--sort-by",
            "key",
            "--target-file-size",
            "33554432",
        ],
    )?;
    let (sort_ms, sort_rows) = runtime.block_on(query_ms(&daemon, &keys))?;
    let (sort_files, sort_bytes) = runtime.block_on(selective(lake.path(), keys[0]))?;
    if before_rows != binpack_rows || before_rows != sort_rows {
        bail!("row counts differ: {before_rows} / {binpack_rows} / {sort_rows}");
    }

    // pyiceberg: read the table, overwrite it.
    let script = "import sys\nfrom pyiceberg.catalog.sql import SqlCatalog\n\
        c = SqlCatalog('lake', uri='sqlite:///' + sys.argv[1], warehouse='file://' + sys.argv[2])\n\
        t = c.load_table('bench.events')\n\
        t.overwrite(t.scan().to_arrow())\n";
    let mut py = Command::new(&options.python);
    py.arg("-c")
        .arg(script)
        .arg(lake_py.path().join("data/catalog.db"))
        .arg(lake_py.path().join("data/warehouse"));
    let py_result = timed(py);

    let throughput = |s: f64| mib / s;
    let per_tb = |s: f64| {
        let tb_per_hour = throughput(s) * 3600.0 / 1024.0 / 1024.0;
        options.price_per_hour / tb_per_hour
    };
    println!();
    println!(
        "| contender | seconds | MiB/s | peak RSS MiB | $/TB at ${}/h | Floe's throughput ratio |",
        options.price_per_hour
    );
    println!("|---|---|---|---|---|---|");
    let line = |name: &str, s: f64, rss: f64| {
        println!(
            "| {name} | {s:.1} | {:.1} | {rss:.0} | {:.3} | {:.2}× |",
            throughput(s),
            per_tb(s),
            s / floe_s
        );
    };
    line(
        "Floe binpack (`floe maintain --ops compact`)",
        floe_s,
        floe_rss,
    );
    line("raw DataFusion read + write Parquet", df_s, df_rss);
    match py_result {
        Ok((s, rss)) => line("pyiceberg scan().to_arrow() + overwrite", s, rss),
        Err(e) => println!("| pyiceberg | failed: {e} | | | | |"),
    }
    line("Floe sort by key, 32 MiB files", sort_s, sort_rss);
    println!();
    println!(
        "Selective query `WHERE key = k` through Floe (median of {} keys):",
        keys.len()
    );
    println!();
    println!("| layout | files planned | MiB planned | median ms | speed-up | bytes ratio |");
    println!("|---|---|---|---|---|---|");
    let q = |name: &str, files: usize, bytes: u64, ms: f64| {
        println!(
            "| {name} | {files} | {:.1} | {ms:.1} | {:.1}× | {:.1}× |",
            bytes as f64 / 1024.0 / 1024.0,
            before_ms / ms,
            before_bytes as f64 / bytes.max(1) as f64
        );
    };
    q("2,000 small files", before_files, before_bytes, before_ms);
    q("after binpack", binpack_files, binpack_bytes, binpack_ms);
    q("after sort by key", sort_files, sort_bytes, sort_ms);
    drop(daemon);
    Ok(())
}
