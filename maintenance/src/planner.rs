//! The planner: which table to maintain first, with what, and why.
//!
//! For every table it weighs what maintenance would save against what it
//! costs, from three sources: the table's metadata signals
//! ([`TableDetail`]), how hot it is ([`TableHeat`], from telemetry) and how
//! well its current file layout prunes the columns its queries filter on
//! ([`Layout`], from the per-file min/max statistics in its manifests).
//!
//! - **Sort compaction** pays when a table is hot, its queries are selective
//!   and the layout prunes their predicate column badly: the expected saving
//!   is the bytes a query scans now times the share a sorted layout would no
//!   longer read, times how many queries there are; the cost is rewriting the
//!   table. The sort order comes from the predicate statistics
//!   ([`choose_sort_order`]): equality and `IN` columns first, then the
//!   hottest range column.
//! - **Binpack compaction** pays for small files: every file a query opens
//!   costs a request and a footer read whatever its size.
//! - **Expiry** (with orphan removal after it) and **manifest rewrite** are
//!   metadata-cheap and run when their triggers fire.
//!
//! Scores are benefit per byte rewritten, so the queue serves the best deal
//! first; [`Assessment::reasons`] says, in words, how each was reached.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use iceberg::spec::Datum;
use iceberg::table::Table;
use serde::Serialize;

use crate::Result;
use crate::inventory::TableDetail;
use crate::ops::Operation;
use crate::policy::{CompactStrategy, Resolved};
use crate::telemetry::TableHeat;

/// What opening one more file costs a query, in bytes-scanned equivalents
/// (a request, a footer and a page index on object storage).
const FILE_OVERHEAD_BYTES: f64 = 1024.0 * 1024.0;
/// Default triggers (see [`crate::policy::Triggers`]).
const DEFAULT_COMMITS: u64 = 20;
const DEFAULT_SMALL_FILE_SHARE: f64 = 0.5;
const DEFAULT_SNAPSHOTS: usize = 100;
const DEFAULT_MANIFESTS: usize = 50;
const DEFAULT_HOTNESS: f64 = 5.0;
/// Iceberg's `history.expire.max-snapshot-age-ms`.
const DEFAULT_SNAPSHOT_AGE_MS: i64 = 5 * 24 * 3600 * 1000;
/// A column is part of the sort order when it is at least this hot relative
/// to the hottest one.
const COLUMN_SHARE: f64 = 0.3;

/// How well a table's files are laid out for a column.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// The column.
    pub column: String,
    /// Live data files.
    pub files: usize,
    /// Of those, files written in some sort order.
    pub sorted_files: usize,
    /// [`Layout::overlap`] among the sorted files alone: about `1 /
    /// sorted_files` for one sorted run, more for each run added on top.
    pub sorted_overlap: f64,
    /// The mean share of files whose min/max range overlaps a given file's:
    /// about the share of files a point lookup on the column must read. 1.0
    /// for a random layout, `1 / files` for a perfectly sorted one.
    pub overlap: f64,
}

/// Reads `table`'s manifests and measures how its files overlap on `column`.
/// Files without statistics for the column overlap everything.
///
/// # Errors
///
/// [`crate::Error::Table`] when a manifest cannot be read.
pub async fn layout(table: &Table, column: &str) -> Result<Option<Layout>> {
    let Some(field) = table.metadata().current_schema().field_by_name(column) else {
        return Ok(None);
    };
    let id = field.id;
    let mut ranges: Vec<Option<(Datum, Datum)>> = Vec::new();
    let mut sorted_ranges: Vec<Option<(Datum, Datum)>> = Vec::new();
    let mut sorted_files = 0;
    for (_, manifest) in crate::files::current_manifests(table).await? {
        for entry in manifest.entries() {
            if !entry.is_alive() || !crate::commit::is_data(entry.data_file()) {
                continue;
            }
            let file = entry.data_file();
            let sorted = file.sort_order_id().is_some_and(|id| id != 0);
            let range = file
                .lower_bounds()
                .get(&id)
                .cloned()
                .zip(file.upper_bounds().get(&id).cloned());
            if sorted {
                sorted_files += 1;
                sorted_ranges.push(range.clone());
            }
            ranges.push(range);
        }
    }
    Ok(Some(Layout {
        column: column.to_owned(),
        files: ranges.len(),
        sorted_files,
        sorted_overlap: overlap(&sorted_ranges),
        overlap: overlap(&ranges),
    }))
}

/// The mean share of ranges each range overlaps (itself included), in
/// O(n log n): a range `[lo, hi]` overlaps those that start at or before `hi`
/// minus those that end before `lo`.
fn overlap(ranges: &[Option<(Datum, Datum)>]) -> f64 {
    let n = ranges.len();
    if n == 0 {
        return 0.0;
    }
    let cmp = |a: &Datum, b: &Datum| a.partial_cmp(b).unwrap_or(Ordering::Equal);
    let unknown = ranges.iter().filter(|r| r.is_none()).count();
    let mut lows: Vec<&Datum> = ranges.iter().flatten().map(|(lo, _)| lo).collect();
    let mut highs: Vec<&Datum> = ranges.iter().flatten().map(|(_, hi)| hi).collect();
    lows.sort_by(|a, b| cmp(a, b));
    highs.sort_by(|a, b| cmp(a, b));
    let mut total = 0usize;
    for range in ranges {
        total += match range {
            // No statistics: every file must be read for it, and it for every file.
            None => n,
            Some((lo, hi)) => {
                let start_before_end = lows.partition_point(|x| cmp(x, hi) != Ordering::Greater);
                let end_before_start = highs.partition_point(|x| cmp(x, lo) == Ordering::Less);
                start_before_end - end_before_start + unknown
            }
        };
    }
    #[allow(clippy::cast_precision_loss)] // file counts
    let mean = total as f64 / (n * n) as f64;
    mean.min(1.0)
}

/// A sort order chosen from predicate statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SortChoice {
    /// The columns, in order.
    pub columns: Vec<String>,
    /// Z-order `columns` rather than sort by them.
    pub zorder: bool,
    /// Why, in words.
    pub reason: String,
}

/// Chooses up to `max_columns` sort columns from how `heat`'s queries filter
/// the table: columns at least 30 % as hot as the hottest, equality and `IN`
/// columns first (hottest first), then the hottest range or prefix column.
/// `exists` filters out columns the table does not have (any more). With
/// `zorder`, two about equally hot range columns (and no equality column) are
/// z-ordered together. None when nothing filters the table.
pub fn choose_sort_order(
    heat: &TableHeat,
    max_columns: usize,
    zorder: bool,
    exists: impl Fn(&str) -> bool,
) -> Option<SortChoice> {
    // column → (equality-like queries, range-like queries)
    let mut columns: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for c in &heat.columns {
        if !exists(&c.column) {
            continue;
        }
        let entry = columns.entry(c.column.as_str()).or_default();
        match c.operator.as_str() {
            "eq" | "in" => entry.0 += c.queries,
            "range" | "like_prefix" => entry.1 += c.queries,
            // IS NULL prunes on null counts, not on order.
            _ => {}
        }
    }
    let hottest = columns.values().map(|(e, r)| e + r).fold(0.0, f64::max);
    if hottest <= 0.0 {
        return None;
    }
    let hot: Vec<(&str, f64, f64)> = columns
        .into_iter()
        .filter(|(_, (e, r))| e + r >= hottest * COLUMN_SHARE)
        .map(|(c, (e, r))| (c, e, r))
        .collect();
    let mut equality: Vec<&(&str, f64, f64)> = hot.iter().filter(|(_, e, r)| e >= r).collect();
    equality.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let mut ranges: Vec<&(&str, f64, f64)> = hot.iter().filter(|(_, e, r)| e < r).collect();
    ranges.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
    let mut chosen: Vec<String> = Vec::new();
    let mut why: Vec<String> = Vec::new();
    for (column, e, _) in &equality {
        if chosen.len() < max_columns.max(1) {
            chosen.push((*column).to_owned());
            why.push(format!("{column} (equality, {e:.1} queries)"));
        }
    }
    if let Some((column, _, r)) = ranges.first()
        && chosen.len() < max_columns.max(1)
    {
        chosen.push((*column).to_owned());
        why.push(format!("{column} (range, {r:.1} queries)"));
    }
    let mut reason = format!("hot predicates: {}", why.join(", "));
    if let [a, b, ..] = ranges.as_slice()
        && b.2 >= a.2 * 0.9
    {
        if zorder && equality.is_empty() && max_columns >= 2 {
            // Z-order is symmetric: name order keeps the choice stable when
            // the two swap places by a hair.
            let mut columns = vec![a.0.to_owned(), b.0.to_owned()];
            columns.sort();
            return Some(SortChoice {
                columns,
                zorder: true,
                reason: format!(
                    "hot predicates: {} (range, {:.1} queries) and {} (range, {:.1} queries), \
                     about equally hot: z-order serves both",
                    a.0, a.2, b.0, b.2
                ),
            });
        }
        reason.push_str(&format!(
            "; {} and {} are about equally hot range columns: a z-order would serve both \
             (compact.zorder = true)",
            a.0, b.0
        ));
    }
    Some(SortChoice {
        columns: chosen,
        zorder: false,
        reason,
    })
}

/// What a compaction of a table orders its rows by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompactionOrder {
    /// The columns (`col`, `col DESC`), in order.
    pub columns: Vec<String>,
    /// Z-order `columns` rather than sort by them.
    pub zorder: bool,
    /// Where the order came from, in words.
    pub reason: String,
}

impl CompactionOrder {
    /// The columns whose layout judges the order: the first one for a sort
    /// (what a lexicographic order narrows), every one for a z-order.
    pub fn judged_columns(&self) -> Vec<&str> {
        let names = self
            .columns
            .iter()
            .map(|c| c.split_whitespace().next().unwrap_or_default());
        if self.zorder {
            names.collect()
        } else {
            names.take(1).collect()
        }
    }
}

/// The order a compaction of a table uses under `policy`: none for binpack;
/// else the policy's `sort_by`; else, for strategy `sort`, the table's own
/// sort order; else the one telemetry chose (`sort`, z-ordered when it says so
/// and the strategy is `auto`). `table_sort` is the table's default sort
/// order, empty when unsorted. Both the planner and cron schedules use it.
pub fn compaction_order(
    policy: &Resolved,
    sort: Option<&SortChoice>,
    table_sort: &[String],
) -> Option<CompactionOrder> {
    let compact = &policy.policy.compact;
    let strategy = compact.strategy.unwrap_or(CompactStrategy::Auto);
    if strategy == CompactStrategy::Binpack {
        return None;
    }
    if let Some(columns) = &compact.sort_by {
        return Some(CompactionOrder {
            columns: columns.clone(),
            zorder: false,
            reason: "the policy's sort order".to_owned(),
        });
    }
    if strategy == CompactStrategy::Sort && !table_sort.is_empty() {
        return Some(CompactionOrder {
            columns: table_sort.to_vec(),
            zorder: false,
            reason: "the table's sort order".to_owned(),
        });
    }
    sort.map(|s| CompactionOrder {
        columns: s.columns.clone(),
        zorder: s.zorder && strategy == CompactStrategy::Auto,
        reason: s.reason.clone(),
    })
}

/// What the planner decided for one table.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// `catalog.namespace.table`.
    pub table: String,
    /// Benefit per byte rewritten; higher runs first. Zero when no job.
    pub score: f64,
    /// The operations to run, in execution order; empty when nothing is due.
    pub operations: Vec<Operation>,
    /// Sort compaction by these columns (empty: binpack).
    pub sort_by: Vec<String>,
    /// Z-order by `sort_by` instead of sorting.
    pub zorder: bool,
    /// Rewrite every file, not only unsorted ones: the files are nearly all
    /// sorted already, in runs that overlap, and only a full sort merges them.
    pub rewrite_all: bool,
    /// Bytes the job is expected to rewrite (what the budget counts).
    pub estimated_bytes: u64,
    /// What fired: `trigger:small_file_share`, `schedule`, `adaptive:hot`...
    pub started_by: String,
    /// How the decision was reached.
    pub reasons: Vec<String>,
}

impl Assessment {
    /// No job for `table`.
    pub fn none(table: &str) -> Assessment {
        Assessment {
            table: table.to_owned(),
            score: 0.0,
            operations: Vec::new(),
            sort_by: Vec::new(),
            zorder: false,
            rewrite_all: false,
            estimated_bytes: 0,
            started_by: String::new(),
            reasons: Vec::new(),
        }
    }
}

/// Everything the planner knows about one table.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// `catalog.namespace.table`.
    pub table: &'a str,
    /// Metadata signals.
    pub detail: &'a TableDetail,
    /// Telemetry, if the table was queried.
    pub heat: Option<&'a TableHeat>,
    /// The effective policy.
    pub policy: &'a Resolved,
    /// What a compaction would order by (see [`compaction_order`]).
    pub order: Option<&'a CompactionOrder>,
    /// The layout on the order's worst-pruned judged column
    /// ([`CompactionOrder::judged_columns`]).
    pub layout: Option<&'a Layout>,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

/// Decides the adaptive job for one table: triggers and telemetry. (Cron
/// schedules are the scheduler's; they run every allowed operation.)
#[allow(clippy::cast_precision_loss)] // byte and file counts as f64 estimates
pub fn assess(inputs: &Inputs<'_>) -> Assessment {
    let Inputs {
        table,
        detail,
        heat,
        policy,
        now_ms,
        ..
    } = *inputs;
    let p = &policy.policy;
    let triggers = &p.triggers;
    let signals = &detail.signals;
    let mut out = Assessment::none(table);
    let mut fired: Vec<&str> = Vec::new();
    let hot = heat.map_or(0.0, |h| h.queries);
    let data_bytes = signals.data_bytes as f64;
    let target = p
        .compact
        .target_file_size
        .map_or(detail.target_file_size, |b| b.0)
        .max(1);

    // Expiry: too many snapshots or an old one — and only when expiry with
    // the policy's age and retention would remove something, so that a
    // trigger does not fire again on a table expiry cannot change.
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let expire_age_ms = p.expire.older_than.map_or(DEFAULT_SNAPSHOT_AGE_MS, ms);
    let trigger_age_ms = triggers.snapshot_age.map_or(expire_age_ms, ms);
    let max_snapshots = triggers.snapshots.unwrap_or(DEFAULT_SNAPSHOTS);
    let retain = u64::from(p.expire.retain_last.unwrap_or(1).max(1));
    let oldest_age = signals.oldest_snapshot_ms.map_or(0, |t| now_ms - t);
    let expirable = oldest_age >= expire_age_ms && signals.snapshots > retain;
    if policy.allows(Operation::Expire) && expirable {
        let why = if signals.snapshots as usize >= max_snapshots {
            Some((
                "trigger:snapshots",
                format!("{} snapshots ≥ {max_snapshots}", signals.snapshots),
            ))
        } else if oldest_age >= trigger_age_ms {
            Some((
                "trigger:snapshot_age",
                format!(
                    "the oldest snapshot is {} old",
                    humantime::format_duration(std::time::Duration::from_secs(
                        u64::try_from(oldest_age / 1000).unwrap_or(0)
                    ))
                ),
            ))
        } else {
            None
        };
        if let Some((trigger, text)) = why {
            fired.push(trigger);
            out.reasons.push(format!("{text}: expire"));
            out.operations.push(Operation::Expire);
            if policy.allows(Operation::Orphans) {
                out.operations.push(Operation::Orphans);
                out.reasons.push(
                    "orphan removal follows expiry (it sees what expiry unreferenced)".to_owned(),
                );
            }
        }
    }

    // Compaction: sort when hot predicates are pruned badly, else binpack
    // when small files or commits pile up.
    let mut compact_score = 0.0;
    if policy.allows(Operation::Compact) && signals.data_files > 0 {
        let hotness = triggers.hotness.unwrap_or(DEFAULT_HOTNESS);
        let zorder = inputs.order.is_some_and(|o| o.zorder);
        if let (
            Some(CompactionOrder {
                columns,
                reason: why,
                ..
            }),
            Some(layout),
        ) = (inputs.order, inputs.layout)
            && hot >= hotness
        {
            let files_after = (data_bytes / target as f64).ceil().max(1.0);
            // A z-order of k columns narrows each to about files^(-1/k).
            let ideal = if zorder {
                files_after.powf(-1.0 / columns.len().max(1) as f64)
            } else {
                1.0 / files_after
            };
            let scanned = heat
                .map(|h| h.mean_scanned_bytes)
                .filter(|b| *b > 0.0)
                .unwrap_or(data_bytes * layout.overlap);
            // Selective queries return little of what they scan; a query that
            // reads the whole table gains nothing from order.
            let selectivity = heat.map_or(0.0, |h| {
                1.0 - (h.mean_rows / (signals.records.max(1) as f64)).min(1.0)
            });
            if layout.overlap > ideal * 2.0 && selectivity > 0.5 {
                let saved = scanned * (1.0 - ideal / layout.overlap) * selectivity;
                compact_score = hot * saved / data_bytes.max(FILE_OVERHEAD_BYTES);
                fired.push("adaptive:hot_predicates");
                out.sort_by.clone_from(columns);
                out.zorder = zorder;
                // Z-ordered files record no order: z-order picks by size.
                // A sort rewrites only unsorted files, adding one sorted run;
                // once the sorted files overlap like three runs, or nearly
                // every file is sorted, only a full sort narrows them again.
                #[allow(clippy::cast_precision_loss)] // file counts
                let runs = layout.sorted_overlap * layout.sorted_files as f64;
                out.rewrite_all = !zorder
                    && (layout.sorted_files * 10 >= layout.files * 9
                        || (layout.sorted_files > 1 && runs > 3.0));
                if out.rewrite_all {
                    out.reasons.push(
                        "the sorted files overlap (in runs, or sorted by another order): a \
                         full sort rewrites them all"
                            .to_owned(),
                    );
                }
                out.reasons.push(format!(
                    "{hot:.1} recent queries; {why}; a lookup on {} reads {:.0} % of the {} files now, \
                     about {:.0} % sorted ({:.0} of {:.0} bytes scanned per query saved)",
                    layout.column,
                    layout.overlap * 100.0,
                    layout.files,
                    ideal * 100.0,
                    saved,
                    scanned
                ));
            } else if layout.overlap <= ideal * 2.0 {
                out.reasons.push(format!(
                    "the layout already prunes {} ({:.0} % of files per lookup)",
                    layout.column,
                    layout.overlap * 100.0
                ));
            } else {
                out.reasons.push(format!(
                    "queries on {} are not selective (selectivity {selectivity:.2}): sorting would not save scans",
                    layout.column
                ));
            }
        } else if inputs.order.is_some() && hot > 0.0 {
            out.reasons.push(format!(
                "{hot:.1} recent queries, below the hotness trigger {hotness}"
            ));
        }
        if out.sort_by.is_empty() {
            let share_trigger = triggers
                .small_file_share
                .unwrap_or(DEFAULT_SMALL_FILE_SHARE);
            let commits_trigger = triggers.commits.unwrap_or(DEFAULT_COMMITS);
            let small = detail.small_files;
            let min_input = p.compact.min_input_files.unwrap_or(5) as u64;
            let by_share = detail.small_file_share >= share_trigger && small >= min_input;
            let by_commits = signals.commits_since_rewrite >= commits_trigger && small >= 2;
            let small_bytes = data_bytes * detail.small_file_share;
            let files_after = (small_bytes / target as f64).ceil().max(1.0);
            let files_saved = small as f64 - files_after;
            if (by_share || by_commits) && files_saved < 1.0 {
                out.reasons.push(format!(
                    "{small} small files would not merge into fewer files of {target} bytes"
                ));
            } else if by_share || by_commits {
                fired.push(if by_share {
                    "trigger:small_file_share"
                } else {
                    "trigger:commits"
                });
                // A table nobody queries still gains (storage requests,
                // planning), but far less than a hot one.
                compact_score = (hot + 0.1) * files_saved * FILE_OVERHEAD_BYTES
                    / small_bytes.max(FILE_OVERHEAD_BYTES);
                out.reasons.push(format!(
                    "{small} small files ({:.0} % of {}), {} commits since the last compaction: binpack",
                    detail.small_file_share * 100.0,
                    signals.data_files,
                    signals.commits_since_rewrite
                ));
            }
        }
        if compact_score > 0.0 {
            out.operations.push(Operation::Compact);
            out.estimated_bytes = if out.sort_by.is_empty() {
                (data_bytes * detail.small_file_share) as u64
            } else {
                signals.data_bytes
            };
        }
    }

    // Manifests.
    let max_manifests = triggers.manifests.unwrap_or(DEFAULT_MANIFESTS);
    if policy.allows(Operation::Manifests) && detail.manifests as usize >= max_manifests {
        fired.push("trigger:manifests");
        out.reasons.push(format!(
            "{} manifests ≥ {max_manifests}: rewrite manifests",
            detail.manifests
        ));
        out.operations.push(Operation::Manifests);
    }

    out.operations.sort();
    out.operations.dedup();
    // Metadata-only work scores a little so that it runs, after the
    // compactions that save the most.
    out.score = compact_score
        + if out.operations.iter().any(|o| *o != Operation::Compact) {
            1e-6 * (signals.snapshots + detail.manifests) as f64
        } else {
            0.0
        };
    out.started_by = fired.join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::ColumnHeat;

    fn heat(columns: &[(&str, &str, f64)]) -> TableHeat {
        TableHeat {
            table: "lake.demo.t".to_owned(),
            queries: columns.iter().map(|c| c.2).sum(),
            mean_latency_ms: 1.0,
            mean_scanned_bytes: 0.0,
            mean_scanned_files: 0.0,
            mean_rows: 1.0,
            total_queries: 10,
            last_seen_ms: 0,
            columns: columns
                .iter()
                .map(|(c, o, q)| ColumnHeat {
                    column: (*c).to_owned(),
                    operator: (*o).to_owned(),
                    queries: *q,
                    last_seen_ms: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn equality_columns_come_before_the_range_column() {
        let h = heat(&[
            ("ts", "range", 40.0),
            ("tenant", "eq", 30.0),
            ("rare", "eq", 1.0),
        ]);
        let choice = choose_sort_order(&h, 2, false, |_| true).expect("a choice");
        assert_eq!(choice.columns, vec!["tenant", "ts"]);
        let one = choose_sort_order(&h, 1, false, |_| true).expect("a choice");
        assert_eq!(one.columns, vec!["tenant"]);
        let gone = choose_sort_order(&h, 2, false, |c| c != "tenant").expect("a choice");
        assert_eq!(gone.columns, vec!["ts"]);
        assert!(choose_sort_order(&heat(&[("x", "is_null", 9.0)]), 2, false, |_| true).is_none());
    }

    #[test]
    fn two_equally_hot_range_columns_mention_z_order() {
        let h = heat(&[("x", "range", 10.0), ("y", "range", 9.5)]);
        let choice = choose_sort_order(&h, 2, false, |_| true).expect("a choice");
        assert_eq!(choice.columns, vec!["x"]);
        assert!(!choice.zorder);
        assert!(choice.reason.contains("z-order"), "{}", choice.reason);
        let z = choose_sort_order(&h, 2, true, |_| true).expect("a choice");
        assert_eq!(z.columns, vec!["x", "y"]);
        assert!(z.zorder, "{}", z.reason);
        let with_equality = heat(&[("x", "range", 10.0), ("y", "range", 9.5), ("t", "eq", 9.0)]);
        let sorted = choose_sort_order(&with_equality, 2, true, |_| true).expect("a choice");
        assert!(!sorted.zorder, "an equality column comes first: a sort");
    }

    #[test]
    fn overlap_is_one_when_random_and_one_over_n_when_sorted() {
        let r = |lo: i64, hi: i64| Some((Datum::long(lo), Datum::long(hi)));
        let random = vec![r(0, 100), r(1, 99), r(2, 98), r(0, 97)];
        assert!((overlap(&random) - 1.0).abs() < 1e-9);
        let sorted = vec![r(0, 9), r(10, 19), r(20, 29), r(30, 39)];
        assert!((overlap(&sorted) - 0.25).abs() < 1e-9);
        let half_unknown = vec![r(0, 9), None];
        assert!((overlap(&half_unknown) - 1.0).abs() < 1e-9);
    }
}
