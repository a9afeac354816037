//! The maintenance commands of the `floe` CLI: `tables`, `table show`,
//! `maintain` and `runs`. They open the configured catalogs directly (no
//! daemon needed; commits are compare-and-swap, so a running daemon is safe)
//! and record every run in the state store's audit trail.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use floe_maintenance::catalog::{CatalogConfig, open_catalog, open_target};
use floe_maintenance::inventory::{TableDetail, detail};
use floe_maintenance::ops::{
    CompactOptions, ExpireOptions, ManifestOptions, Operation, OrphanOptions, Report, Request,
    Strategy, maintain_table,
};
use iceberg::{NamespaceIdent, TableIdent};

use crate::config::FloeConfig;

/// The state store (audit trail, later policies and telemetry) in the data
/// directory.
pub fn state_path(config: &FloeConfig) -> PathBuf {
    config.server.data_dir.join("state.db")
}

/// What a `maintain` names: a table, a namespace or a whole catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Catalog,
    Namespace(NamespaceIdent),
    Table(TableIdent),
}

/// Resolves `catalog[.namespace[.table]]` (or `namespace.table` in the first
/// catalog) against the configured catalogs.
fn resolve<'a>(config: &'a FloeConfig, name: &str) -> anyhow::Result<(&'a CatalogConfig, Scope)> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("`{name}` is not a catalog, namespace or table name");
    }
    let named = config.catalogs.iter().find(|c| c.name == parts[0]);
    let (catalog, rest) = match named {
        Some(catalog) => (catalog, &parts[1..]),
        None => match config.catalogs.first() {
            Some(first) if parts.len() >= 2 => (first, &parts[..]),
            _ => bail!(
                "no catalog named `{}` (configured: {})",
                parts[0],
                config
                    .catalogs
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let scope = match rest {
        [] => Scope::Catalog,
        [ns] => Scope::Namespace(NamespaceIdent::new((*ns).to_owned())),
        [ns @ .., table] => Scope::Table(TableIdent::new(
            NamespaceIdent::from_strs(ns.iter().copied())
                .with_context(|| format!("`{name}`: bad namespace"))?,
            (*table).to_owned(),
        )),
    };
    Ok((catalog, scope))
}

/// The tables a scope covers, sorted.
async fn tables_in(
    catalog: &dyn iceberg::Catalog,
    scope: &Scope,
) -> anyhow::Result<Vec<TableIdent>> {
    let namespaces = match scope {
        Scope::Table(ident) => return Ok(vec![ident.clone()]),
        Scope::Namespace(ns) => vec![ns.clone()],
        Scope::Catalog => catalog.list_namespaces(None).await?,
    };
    let mut out = Vec::new();
    for ns in namespaces {
        out.extend(catalog.list_tables(&ns).await?);
    }
    out.sort_by_key(ToString::to_string);
    Ok(out)
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn age(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let secs = u64::try_from((now - ms).max(0) / 1000).unwrap_or(0);
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// `floe tables`: every table of every catalog with its signals.
pub async fn tables(config: &FloeConfig, json: bool) -> anyhow::Result<()> {
    let mut details: Vec<(String, TableDetail)> = Vec::new();
    for catalog_config in &config.catalogs {
        let catalog = open_catalog(catalog_config).await?;
        for ident in tables_in(catalog.as_ref(), &Scope::Catalog).await? {
            let table = catalog.load_table(&ident).await?;
            details.push((
                format!("{}.{ident}", catalog_config.name),
                detail(&table).await?,
            ));
        }
    }
    if json {
        let rows: Vec<serde_json::Value> = details
            .iter()
            .map(|(name, d)| serde_json::json!({"table": name, "detail": d}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<32} {:>10} {:>7} {:>7} {:>10} {:>9} {:>9} {:>10}",
        "table", "records", "files", "small", "size", "snapshots", "manifests", "last commit"
    );
    for (name, d) in &details {
        let s = &d.signals;
        println!(
            "{:<32} {:>10} {:>7} {:>6.0}% {:>10} {:>9} {:>9} {:>10}",
            name,
            s.records,
            s.data_files,
            d.small_file_share * 100.0,
            human_bytes(s.data_bytes),
            s.snapshots,
            d.manifests,
            age(s.last_commit_ms)
        );
    }
    Ok(())
}

/// `floe table show <catalog.ns.table>`.
pub async fn table_show(config: &FloeConfig, name: &str, json: bool) -> anyhow::Result<()> {
    let (catalog_config, scope) = resolve(config, name)?;
    let Scope::Table(ident) = scope else {
        bail!("`{name}` is not a table (catalog.namespace.table)");
    };
    let catalog = open_catalog(catalog_config).await?;
    let table = catalog
        .load_table(&ident)
        .await
        .with_context(|| format!("loading {name}"))?;
    let d = detail(&table).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    let s = &d.signals;
    println!("table            {}.{ident}", catalog_config.name);
    println!(
        "metadata         {}",
        d.metadata_location.as_deref().unwrap_or("-")
    );
    println!("records          {}", s.records);
    println!(
        "data files       {} ({}), delete files {}",
        s.data_files,
        human_bytes(s.data_bytes),
        s.delete_files
    );
    println!(
        "small files      {} ({:.0}% under 75% of the {} target)",
        d.small_files,
        d.small_file_share * 100.0,
        human_bytes(d.target_file_size)
    );
    println!("partitions       {}", d.partitions);
    println!(
        "snapshots        {} (oldest {} ago), {} in the last day",
        s.snapshots,
        age(s.oldest_snapshot_ms),
        d.commits_last_day
    );
    println!(
        "manifests        {} (mean {})",
        d.manifests,
        human_bytes(d.manifest_mean_bytes)
    );
    println!("last commit      {} ago", age(s.last_commit_ms));
    println!("file sizes");
    for bucket in &d.histogram {
        let label = if bucket.up_to_bytes == u64::MAX {
            "larger".to_owned()
        } else {
            format!("<= {}", human_bytes(bucket.up_to_bytes))
        };
        println!("  {label:>12}  {}", bucket.files);
    }
    Ok(())
}

/// The arguments of `floe maintain`.
#[derive(Debug, Clone, clap::Args)]
pub struct MaintainArgs {
    /// A table (`catalog.namespace.table`), a namespace (`catalog.namespace`)
    /// or a catalog.
    pub target: String,
    /// Operations, run in the order expire, orphans, compact, manifests.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "expire,orphans,compact,manifests"
    )]
    pub ops: Vec<String>,
    /// Report what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Compaction strategy.
    #[arg(long, value_parser = ["binpack", "sort", "zorder"], default_value = "binpack")]
    pub strategy: String,
    /// Sort columns for `--strategy sort` (`col`, `col DESC`; default the
    /// table's sort order) or, two or more, for `--strategy zorder`.
    #[arg(long, value_delimiter = ',')]
    pub sort_by: Vec<String>,
    /// Target data file size in bytes (default: the table's
    /// `write.target-file-size-bytes`, else 512 MiB).
    #[arg(long)]
    pub target_file_size: Option<u64>,
    /// Minimum small files for a partition to be compacted (default 5).
    #[arg(long)]
    pub min_input_files: Option<usize>,
    /// Rewrite every data file, not only the candidates.
    #[arg(long)]
    pub rewrite_all: bool,
    /// Expire snapshots older than this (default: table property, else 5d).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expire_older_than: Option<Duration>,
    /// Keep at least this many snapshots per branch (default 1).
    #[arg(long)]
    pub retain_last: Option<u32>,
    /// Remove orphans older than this (default 3d).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub orphans_older_than: Option<Duration>,
    /// Target manifest size in bytes (default 8 MiB).
    #[arg(long)]
    pub manifest_target_size: Option<u64>,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `floe maintain`: runs operations on every table in scope; exit status 1
/// when any failed.
pub async fn maintain(config: &FloeConfig, args: &MaintainArgs) -> anyhow::Result<bool> {
    let operations = args
        .ops
        .iter()
        .map(|op| op.parse::<Operation>())
        .collect::<Result<Vec<_>, _>>()?;
    let (catalog_config, scope) = resolve(config, &args.target)?;
    let target = open_target(catalog_config, Some(&state_path(config))).await?;
    let tables = tables_in(target.catalog.as_ref(), &scope).await?;
    if tables.is_empty() {
        bail!("no table in `{}`", args.target);
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let request = Request {
        operations,
        expire: ExpireOptions {
            older_than: args.expire_older_than,
            retain_last: args.retain_last,
        },
        orphans: OrphanOptions {
            older_than: args.orphans_older_than,
        },
        compact: CompactOptions {
            strategy: match args.strategy.as_str() {
                "sort" => Strategy::Sort(args.sort_by.clone()),
                "zorder" => Strategy::ZOrder(args.sort_by.clone()),
                _ => Strategy::Binpack,
            },
            target_file_size: args.target_file_size,
            min_input_files: args.min_input_files,
            rewrite_all: args.rewrite_all,
            ..CompactOptions::default()
        },
        manifests: ManifestOptions {
            target_size: args.manifest_target_size,
        },
        dry_run: args.dry_run,
        started_by: format!("cli:{user}"),
    };
    let progress = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(tables.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut all_ok = true;
    let mut reports: Vec<Report> = Vec::new();
    for ident in &tables {
        if let Some(bar) = &progress {
            bar.set_message(format!("{}.{ident}", catalog_config.name));
        }
        match maintain_table(&target, ident, &request).await {
            Ok(done) => reports.extend(done),
            Err(e) => {
                all_ok = false;
                let line = format!("{}.{ident}: failed: {e}", catalog_config.name);
                match &progress {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for report in &reports {
            print_report(report);
        }
    }
    Ok(all_ok)
}

fn print_report(report: &Report) {
    let o = &report.outcome;
    let (b, a) = (&report.before, &report.after);
    println!(
        "{} {}{}: {} file(s) {} ({}), {} added ({})",
        report.table,
        report.operation,
        if report.dry_run { " (dry run)" } else { "" },
        o.files_removed(),
        if report.dry_run {
            "affected"
        } else {
            "removed"
        },
        human_bytes(o.bytes_removed),
        o.files_added(),
        human_bytes(o.bytes_added)
    );
    println!(
        "  before: {} data files, {} snapshots, {} records; after: {} data files, {} snapshots, {} records",
        b.data_files, b.snapshots, b.records, a.data_files, a.snapshots, a.records
    );
    for note in &o.notes {
        println!("  {note}");
    }
    if let Some(id) = o.new_snapshot {
        println!("  committed snapshot {id}");
    }
    if report.dry_run {
        for file in o.files.iter().take(20) {
            println!("  {}", serde_json::to_string(file).unwrap_or_default());
        }
        if o.files.len() > 20 {
            println!("  ... and {} more", o.files.len() - 20);
        }
    }
}

/// `floe runs`: the audit trail.
pub async fn runs(
    config: &FloeConfig,
    table: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let audit = floe_maintenance::audit::AuditLog::open(&state_path(config)).await?;
    let runs = audit.runs(table, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    println!(
        "{:>5} {:<30} {:<9} {:<9} {:>8} {:>8} {:<16} started",
        "id", "table", "operation", "status", "removed", "added", "by"
    );
    for run in runs {
        println!(
            "{:>5} {:<30} {:<9} {:<9} {:>8} {:>8} {:<16} {} ago{}{}",
            run.id,
            run.table,
            run.operation,
            run.status,
            run.files_removed,
            run.files_added,
            run.started_by,
            age(Some(run.started_ms)),
            if run.dry_run { " (dry run)" } else { "" },
            run.error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `floe policy show`: a table's effective policy, setting by setting, with
/// the policy each came from. Reads the configuration and the policies set
/// through the admin API (in the state store); needs no daemon.
pub async fn policy_show(config: &FloeConfig, table: &str, json: bool) -> anyhow::Result<()> {
    if table.split('.').count() < 3 {
        bail!("`{table}`: name the table as catalog.namespace.table");
    }
    let maintainer = floe_maintenance::adaptive::Maintainer::new(
        Vec::new(),
        None,
        std::sync::Arc::new(floe_maintenance::schedule::SystemClock),
        config.maintenance.scheduler(),
        config.policies.clone(),
        Some(&state_path(config)),
    )
    .await?;
    let resolved = maintainer.resolve(table);
    if json {
        println!("{}", serde_json::to_string_pretty(&resolved)?);
        return Ok(());
    }
    println!("effective policy of {table}");
    let settings = serde_json::to_value(&resolved.policy)?;
    let mut rows = Vec::new();
    flatten("", &settings, &mut rows);
    for (key, value) in rows {
        if key == "scope" {
            continue;
        }
        let source = resolved.sources.get(&key).map_or("default", String::as_str);
        println!("  {key:<28} {value:<24} from {source}");
    }
    println!("  (unlisted settings take Floe's defaults; see the README's policy reference)");
    Ok(())
}

/// `{"a": {"b": 1}}` as `("a.b", "1")` rows.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}
