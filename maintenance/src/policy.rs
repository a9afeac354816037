//! Policies: what maintenance may do to which tables, and when.
//!
//! A [`Policy`] attaches to a scope — a catalog (`lake`), a namespace
//! (`lake.demo`) or a table (`lake.demo.trips`) — and sets any subset of the
//! settings. A table's effective policy ([`resolve`]) starts from Floe's
//! defaults and applies every policy whose scope contains it, from the widest
//! scope to the narrowest, so a per-table setting always wins and a table
//! created later inherits from its namespace and catalog with nothing to do.
//! At the same scope, a policy set through the admin API wins over the
//! configuration file. Each effective setting remembers where it came from
//! (`floe policy show`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ops::Operation;
use crate::{Error, Result};

/// How maintenance treats a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nothing runs, not even on a schedule.
    Off,
    /// Only what an operator starts (`floe maintain`, the admin API).
    Manual,
    /// Cron schedules only.
    Scheduled,
    /// Schedules, triggers and telemetry decide.
    Adaptive,
}

/// What a configuration policy does about table properties that drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforce {
    /// Report the drift only.
    Report,
    /// Set the properties back.
    Correct,
}

/// How compaction rewrites: binpack, sort, or let telemetry decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactStrategy {
    /// Combine small files.
    Binpack,
    /// Sort by `sort_by`, the table's sort order, or the hot predicates.
    Sort,
    /// Sort by the hot predicate columns when telemetry has them, else binpack.
    Auto,
}

/// A byte count, written as a number or with a unit (`512MiB`, `8 MB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Bytes, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Bytes(n)),
            Raw::Text(text) => parse_bytes(&text)
                .map(Bytes)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `512MiB`, `8 MB`, `1GiB`, `4096`.
///
/// # Errors
///
/// A message naming what is wrong.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (expected e.g. 512MiB)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("`{other}` is not a size unit in `{text}`")),
    };
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // sizes are far below 2^52 and checked non-negative by the parse
    Ok((number * multiplier as f64) as u64)
}

/// Expiry settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpirePolicy {
    /// Snapshots older than this expire (Iceberg's default 5 days).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub older_than: Option<Duration>,
    /// Ancestors of each branch head always kept (Iceberg's default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_last: Option<u32>,
}

/// Orphan removal settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrphanPolicy {
    /// Only files older than this are deleted (default 3 days, like Spark).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub older_than: Option<Duration>,
}

/// Compaction settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactPolicy {
    /// `binpack`, `sort` or `auto` (default: sort by the hot predicates when
    /// telemetry has them, else binpack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<CompactStrategy>,
    /// Explicit sort columns (`col`, `col DESC`); otherwise the table's sort
    /// order, or the one the planner chooses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<Vec<String>>,
    /// Target file size (default the table's `write.target-file-size-bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_file_size: Option<Bytes>,
    /// Minimum candidate files per partition (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_input_files: Option<usize>,
    /// At most this many sort columns chosen from telemetry (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sort_columns: Option<usize>,
    /// Make the chosen order the table's default sort order, so writers use
    /// it too (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_sort_order: Option<bool>,
    /// Z-order the two hottest range columns when they are about equally hot
    /// (and no equality column is), instead of sorting by the hotter one
    /// (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zorder: Option<bool>,
}

/// Manifest rewrite settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestPolicy {
    /// Target manifest size (default the table's
    /// `commit.manifest.target-size-bytes`, 8 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_size: Option<Bytes>,
}

/// Event-driven triggers: a table whose signals cross one gets the matching
/// operation planned without waiting for a schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Triggers {
    /// Commits since the last compaction (default 20): compact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits: Option<u64>,
    /// Share of data files below 75 % of the target size (default 0.5): compact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub small_file_share: Option<f64>,
    /// Snapshots kept (default 100): expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<usize>,
    /// Age of the oldest snapshot (default the expiry age, 5 days): expire.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub snapshot_age: Option<Duration>,
    /// Manifests in the current snapshot (default 50): rewrite manifests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<usize>,
    /// Decayed queries on the table (default 5): sort-compact by its hot
    /// predicates when the layout prunes them badly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hotness: Option<f64>,
}

/// One policy: a scope and the settings it gives every table in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// `catalog`, `catalog.namespace` or `catalog.namespace.table`.
    pub scope: String,
    /// `off`, `manual`, `scheduled` or `adaptive` (default: the
    /// `[maintenance]` mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The operations maintenance may run (default all four).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<Operation>>,
    /// A cron schedule (`0 2 * * *`, seconds optional) on which every allowed
    /// operation runs, in `timezone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The IANA time zone of `schedule` and `window` (default UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// When triggered and adaptive jobs may start, `HH:MM-HH:MM` in
    /// `timezone` (may wrap midnight); default any time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// At most this many bytes rewritten per hour on the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_hour: Option<Bytes>,
    /// Expiry.
    #[serde(skip_serializing_if = "is_default")]
    pub expire: ExpirePolicy,
    /// Orphan removal.
    #[serde(skip_serializing_if = "is_default")]
    pub orphans: OrphanPolicy,
    /// Compaction.
    #[serde(skip_serializing_if = "is_default")]
    pub compact: CompactPolicy,
    /// Manifest rewrite.
    #[serde(skip_serializing_if = "is_default")]
    pub manifests: ManifestPolicy,
    /// Triggers.
    #[serde(skip_serializing_if = "is_default")]
    pub triggers: Triggers,
    /// Table properties to enforce (`format-version`,
    /// `write.parquet.compression-codec`, `write.target-file-size-bytes`,
    /// `write.distribution-mode`, `write.format.default`...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// `report` drift in `properties` or `correct` it (default report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce: Option<Enforce>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Where a policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Floe's built-in defaults.
    Default,
    /// The configuration file.
    Config,
    /// The admin API.
    Api,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Default => "default",
            Origin::Config => "config",
            Origin::Api => "api",
        })
    }
}

/// A table's effective policy: every setting with its value and the policy it
/// came from.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    /// `catalog.namespace.table`.
    pub table: String,
    /// The merged settings (its `scope` is the table).
    pub policy: Policy,
    /// Setting (`compact.target_file_size`) → `config:lake.demo`,
    /// `api:lake.demo.trips`, ...
    pub sources: BTreeMap<String, String>,
}

/// Sets every field of `$from` that is `Some` on `$into`, recording `$source`.
macro_rules! overlay {
    ($into:expr, $from:expr, $sources:expr, $source:expr, $prefix:literal, [$($field:ident),* $(,)?]) => {
        $(
            if let Some(value) = &$from.$field {
                $into.$field = Some(value.clone());
                $sources.insert(format!("{}{}", $prefix, stringify!($field)), $source.clone());
            }
        )*
    };
}

impl Resolved {
    fn apply(&mut self, policy: &Policy, origin: Origin) {
        let source = format!("{origin}:{}", policy.scope);
        let (into, sources) = (&mut self.policy, &mut self.sources);
        overlay!(
            into,
            policy,
            sources,
            source,
            "",
            [
                mode,
                operations,
                schedule,
                timezone,
                window,
                max_bytes_per_hour,
                enforce
            ]
        );
        overlay!(
            into.expire,
            policy.expire,
            sources,
            source,
            "expire.",
            [older_than, retain_last]
        );
        overlay!(
            into.orphans,
            policy.orphans,
            sources,
            source,
            "orphans.",
            [older_than]
        );
        overlay!(
            into.compact,
            policy.compact,
            sources,
            source,
            "compact.",
            [
                strategy,
                sort_by,
                target_file_size,
                min_input_files,
                max_sort_columns,
                set_sort_order,
                zorder
            ]
        );
        overlay!(
            into.manifests,
            policy.manifests,
            sources,
            source,
            "manifests.",
            [target_size]
        );
        overlay!(
            into.triggers,
            policy.triggers,
            sources,
            source,
            "triggers.",
            [
                commits,
                small_file_share,
                snapshots,
                snapshot_age,
                manifests,
                hotness
            ]
        );
        for (key, value) in &policy.properties {
            into.properties.insert(key.clone(), value.clone());
            sources.insert(format!("properties.{key}"), source.clone());
        }
    }

    /// The mode. A schedule set by a policy runs even under the global
    /// `manual` default (setting a schedule asks for it); a policy that says
    /// `manual` or `off` itself keeps it from running.
    pub fn mode(&self) -> Mode {
        let mode = self.policy.mode.unwrap_or(Mode::Manual);
        let mode_from_default = self
            .sources
            .get("mode")
            .is_none_or(|s| s.starts_with("default:"));
        if mode == Mode::Manual && self.policy.schedule.is_some() && mode_from_default {
            Mode::Scheduled
        } else {
            mode
        }
    }

    /// Whether `operation` is allowed.
    pub fn allows(&self, operation: Operation) -> bool {
        self.policy
            .operations
            .as_ref()
            .is_none_or(|ops| ops.contains(&operation))
    }

    /// The time zone of schedules and windows.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for an unknown zone.
    pub fn timezone(&self) -> Result<chrono_tz::Tz> {
        let name = self.policy.timezone.as_deref().unwrap_or("UTC");
        name.parse()
            .map_err(|_| Error::Invalid(format!("{}: unknown time zone `{name}`", self.table)))
    }
}

/// Whether `scope` contains `table` (both dotted names).
fn contains(scope: &str, table: &str) -> bool {
    table == scope
        || table
            .strip_prefix(scope)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The effective policy of `table`: `base` (the `[maintenance]` defaults),
/// then every policy whose scope contains the table, widest first; at the
/// same scope API policies after configuration ones.
pub fn resolve(table: &str, base: &Policy, policies: &[(Origin, Policy)]) -> Resolved {
    let mut resolved = Resolved {
        table: table.to_owned(),
        policy: Policy {
            scope: table.to_owned(),
            ..Policy::default()
        },
        sources: BTreeMap::new(),
    };
    resolved.apply(base, Origin::Default);
    let mut matching: Vec<&(Origin, Policy)> = policies
        .iter()
        .filter(|(_, p)| contains(&p.scope, table))
        .collect();
    matching.sort_by_key(|(origin, p)| (p.scope.split('.').count(), *origin));
    for (origin, policy) in matching {
        resolved.apply(policy, *origin);
    }
    resolved
}

/// Checks a policy's settings that serde cannot: scope shape, cron, zone,
/// window. Every problem, each naming its key.
pub fn validate(policy: &Policy, key: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let parts = policy.scope.split('.').count();
    if policy.scope.is_empty() || policy.scope.split('.').any(str::is_empty) {
        problems.push(format!(
            "{key}.scope: must be catalog, catalog.namespace or catalog.namespace.table"
        ));
    } else if parts > 6 {
        problems.push(format!(
            "{key}.scope: `{}` has too many parts",
            policy.scope
        ));
    }
    if let Some(schedule) = &policy.schedule
        && let Err(e) = crate::schedule::parse_cron(schedule)
    {
        problems.push(format!("{key}.schedule: {e}"));
    }
    if let Some(zone) = &policy.timezone
        && zone.parse::<chrono_tz::Tz>().is_err()
    {
        problems.push(format!("{key}.timezone: unknown time zone `{zone}`"));
    }
    if let Some(window) = &policy.window
        && let Err(e) = crate::schedule::Window::parse(window)
    {
        problems.push(format!("{key}.window: {e}"));
    }
    if let Some(share) = policy.triggers.small_file_share
        && !(0.0..=1.0).contains(&share)
    {
        problems.push(format!(
            "{key}.triggers.small_file_share: must be between 0 and 1"
        ));
    }
    if policy.compact.max_sort_columns == Some(0) {
        problems.push(format!(
            "{key}.compact.max_sort_columns: must be at least 1"
        ));
    }
    if let Some(enforce) = policy.enforce
        && enforce == Enforce::Correct
        && policy.properties.is_empty()
    {
        problems.push(format!(
            "{key}.enforce: `correct` needs `properties` to enforce"
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(scope: &str, f: impl FnOnce(&mut Policy)) -> Policy {
        let mut p = Policy {
            scope: scope.to_owned(),
            ..Policy::default()
        };
        f(&mut p);
        p
    }

    #[test]
    fn narrower_scope_wins_and_new_tables_inherit() {
        let base = policy("", |p| p.mode = Some(Mode::Adaptive));
        let policies = vec![
            (
                Origin::Config,
                policy("lake.demo.trips", |p| {
                    p.compact.target_file_size = Some(Bytes(1))
                }),
            ),
            (
                Origin::Config,
                policy("lake", |p| {
                    p.compact.target_file_size = Some(Bytes(3));
                    p.expire.retain_last = Some(7);
                }),
            ),
            (
                Origin::Config,
                policy("lake.demo", |p| p.compact.target_file_size = Some(Bytes(2))),
            ),
            (
                Origin::Config,
                policy("lake.demonstration", |p| p.expire.retain_last = Some(99)),
            ),
        ];
        let trips = resolve("lake.demo.trips", &base, &policies);
        assert_eq!(trips.policy.compact.target_file_size, Some(Bytes(1)));
        assert_eq!(
            trips.sources["compact.target_file_size"],
            "config:lake.demo.trips"
        );
        assert_eq!(
            trips.policy.expire.retain_last,
            Some(7),
            "`lake.demonstration` is not a parent"
        );
        assert_eq!(trips.sources["expire.retain_last"], "config:lake");
        assert_eq!(trips.mode(), Mode::Adaptive);
        assert_eq!(trips.sources["mode"], "default:");
        // A schedule asks for scheduled runs under the manual default, not
        // under a policy's own `manual`.
        let manual = policy("", |p| p.mode = Some(Mode::Manual));
        let nightly = vec![(
            Origin::Config,
            policy("lake", |p| p.schedule = Some("0 2 * * *".to_owned())),
        )];
        assert_eq!(
            resolve("lake.a.b", &manual, &nightly).mode(),
            Mode::Scheduled
        );
        let mut held = nightly.clone();
        held.push((
            Origin::Config,
            policy("lake.a", |p| p.mode = Some(Mode::Manual)),
        ));
        assert_eq!(resolve("lake.a.b", &manual, &held).mode(), Mode::Manual);
        let later = resolve("lake.demo.created_later", &base, &policies);
        assert_eq!(later.policy.compact.target_file_size, Some(Bytes(2)));
        assert_eq!(
            later.sources["compact.target_file_size"],
            "config:lake.demo"
        );
    }

    #[test]
    fn every_setting_is_inherited() {
        // A setting missing from `Resolved::apply` would be silently ignored:
        // a policy with every field set must resolve to itself.
        let full: Policy = serde_json::from_value(serde_json::json!({
            "scope": "lake",
            "mode": "adaptive",
            "operations": ["expire", "compact"],
            "schedule": "0 2 * * *",
            "timezone": "Europe/Paris",
            "window": "01:00-05:00",
            "max_bytes_per_hour": "1GiB",
            "expire": {"older_than": "5d", "retain_last": 3},
            "orphans": {"older_than": "3d"},
            "compact": {
                "strategy": "sort", "sort_by": ["a"], "target_file_size": "1MiB",
                "min_input_files": 2, "max_sort_columns": 1, "set_sort_order": true, "zorder": true
            },
            "manifests": {"target_size": "8MiB"},
            "triggers": {
                "commits": 1, "small_file_share": 0.1, "snapshots": 2,
                "snapshot_age": "1h", "manifests": 3, "hotness": 4.0
            },
            "properties": {"format-version": "2"},
            "enforce": "correct"
        }))
        .expect("a full policy");
        let resolved = resolve(
            "lake.t",
            &Policy::default(),
            &[(Origin::Config, full.clone())],
        );
        let mut expected = full;
        expected.scope = "lake.t".to_owned();
        assert_eq!(resolved.policy, expected);
        assert_eq!(resolved.sources.len(), 25, "{:?}", resolved.sources.keys());
    }

    #[test]
    fn api_wins_over_config_at_the_same_scope() {
        let base = Policy::default();
        let policies = vec![
            (
                Origin::Api,
                policy("lake.demo", |p| p.expire.retain_last = Some(2)),
            ),
            (
                Origin::Config,
                policy("lake.demo", |p| p.expire.retain_last = Some(1)),
            ),
        ];
        let r = resolve("lake.demo.t", &base, &policies);
        assert_eq!(r.policy.expire.retain_last, Some(2));
        assert_eq!(r.sources["expire.retain_last"], "api:lake.demo");
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("8 MB"), Ok(8_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
    }
}
