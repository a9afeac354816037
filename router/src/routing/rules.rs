//! Routing configuration: strategies, cost models, per-engine specs and the
//! rules that pin or exclude engines.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the router orders the engines that can run a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The cheapest engine whose predicted latency meets the latency SLO; if
    /// none does, the fastest.
    Cost,
    /// The lowest predicted latency for this query shape.
    Latency,
    /// The least loaded engine (power of two choices) under the concurrency limits.
    Throughput,
}

impl Strategy {
    /// The strategy's name in configuration and `SET floe.strategy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Cost => "cost",
            Strategy::Latency => "latency",
            Strategy::Throughput => "throughput",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cost" => Ok(Strategy::Cost),
            "latency" => Ok(Strategy::Latency),
            "throughput" => Ok(Strategy::Throughput),
            other => Err(Error::InvalidInput(format!(
                "unknown routing strategy {other:?}: expected cost, latency or throughput"
            ))),
        }
    }
}

/// What running a statement on an engine costs, in any currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// Price of each statement.
    pub per_query: f64,
    /// Price per second of execution.
    pub per_second: f64,
    /// Price per terabyte scanned. Until engines report scanned bytes, the
    /// router estimates them from the bytes the query shape returned.
    pub per_tb_scanned: f64,
}

impl CostModel {
    /// The predicted price of one statement.
    pub fn predict(&self, seconds: f64, bytes: f64) -> f64 {
        self.per_query + self.per_second * seconds + self.per_tb_scanned * bytes / 1e12
    }
}

/// How the router treats one engine.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    /// `catalog.namespace.table` glob patterns of the tables it serves; empty
    /// serves every table.
    pub serves: Vec<String>,
    /// Whether writes and DDL may go to it.
    pub writes: bool,
    /// Its price.
    pub cost: CostModel,
    /// Statements it runs at once at most; 0 is unlimited.
    pub max_concurrency: usize,
    /// Statements that may wait for a slot; beyond, the engine is skipped.
    pub queue_len: usize,
    /// How long a statement waits for a slot.
    pub queue_timeout: Duration,
    /// How often the engine is probed.
    pub probe_interval: Duration,
    /// Relative capacity for the throughput strategy.
    pub weight: f64,
    /// The latency assumed before anything was measured on it.
    pub expected_latency: Duration,
}

impl Default for EngineSpec {
    fn default() -> Self {
        EngineSpec {
            serves: Vec::new(),
            writes: true,
            cost: CostModel::default(),
            max_concurrency: 0,
            queue_len: 64,
            queue_timeout: Duration::from_secs(5),
            probe_interval: Duration::from_secs(5),
            weight: 1.0,
            expected_latency: Duration::from_millis(10),
        }
    }
}

/// A routing rule: when every condition given matches, its effects apply.
/// Rules apply in order; pins intersect, exclusions add up, the first
/// strategy wins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// A name for `EXPLAIN ROUTE` and logs.
    pub name: Option<String>,
    /// The client's user (glob).
    pub user: Option<String>,
    /// The front end: `postgres`, `mysql` or `flight_sql`.
    pub protocol: Option<String>,
    /// The session's current schema / database (glob).
    pub database: Option<String>,
    /// Matches when any table the statement touches matches (glob over
    /// `catalog.namespace.table`).
    pub tables: Option<String>,
    /// A regular expression the statement's text must match.
    pub regex: Option<String>,
    /// The client's tag (`SET floe.tag` or `/* floe:tag=... */`).
    pub tag: Option<String>,
    /// Only these engines may run the statement.
    pub engines: Vec<String>,
    /// These engines may not.
    pub exclude: Vec<String>,
    /// The strategy for matching statements.
    pub strategy: Option<Strategy>,
}

/// A rule with its patterns compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) rule: Rule,
    user: Option<Glob>,
    database: Option<Glob>,
    tables: Option<Glob>,
    regex: Option<regex::Regex>,
}

/// A compiled glob pattern. A literal text, or a literal prefix and one
/// trailing `*` (`lake.*`: every engine's default `serves`), is matched by
/// comparing bytes; anything else by glob's matcher, which took ~1.4 k
/// instructions for `lake.*` — paid for each table of every statement.
#[derive(Debug, Clone)]
pub(crate) enum Glob {
    /// No wildcard: the whole text.
    Exact(String),
    /// A literal prefix followed by one `*`.
    Prefix(String),
    /// Anything else.
    Pattern(glob::Pattern),
}

impl Glob {
    /// Whether `text` matches, as [`glob::Pattern::matches`] decides (`*`
    /// matches any characters, separators included).
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Glob::Exact(exact) => text == exact,
            Glob::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Glob::Pattern(pattern) => pattern.matches(text),
        }
    }
}

/// Compiles a glob; `what` names the setting in the error.
pub(crate) fn pattern(text: &str, what: &str) -> Result<Glob> {
    // Validated by glob in every case, so that the fast forms accept exactly
    // the patterns glob accepts.
    let compiled = glob::Pattern::new(text)
        .map_err(|e| Error::InvalidInput(format!("invalid {what} pattern {text:?}: {e}")))?;
    let wild = |c: char| matches!(c, '*' | '?' | '[' | ']');
    Ok(match text.strip_suffix('*') {
        _ if !text.contains(wild) => Glob::Exact(text.to_owned()),
        Some(prefix) if !prefix.contains(wild) => Glob::Prefix(prefix.to_owned()),
        _ => Glob::Pattern(compiled),
    })
}

impl CompiledRule {
    pub(crate) fn new(rule: Rule) -> Result<Self> {
        let name = rule.name.clone().unwrap_or_default();
        let compile =
            |p: &Option<String>, what: &str| p.as_deref().map(|p| pattern(p, what)).transpose();
        Ok(CompiledRule {
            user: compile(&rule.user, "user")?,
            database: compile(&rule.database, "database")?,
            tables: compile(&rule.tables, "tables")?,
            regex: rule
                .regex
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .map_err(|e| Error::InvalidInput(format!("rule {name}: invalid regex: {e}")))?,
            rule,
        })
    }

    pub(crate) fn label(&self, index: usize) -> String {
        self.rule
            .name
            .clone()
            .unwrap_or_else(|| format!("rule #{}", index + 1))
    }

    pub(crate) fn matches(&self, facts: &Facts<'_>) -> bool {
        let glob = |p: &Option<Glob>, v: Option<&str>| {
            p.as_ref().is_none_or(|p| v.is_some_and(|v| p.matches(v)))
        };
        glob(&self.user, Some(facts.user))
            && self
                .rule
                .protocol
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case(facts.protocol))
            && glob(&self.database, facts.schema)
            && self
                .tables
                .as_ref()
                .is_none_or(|p| facts.tables.iter().any(|t| p.matches(t)))
            && self.regex.as_ref().is_none_or(|r| r.is_match(facts.sql))
            && self
                .rule
                .tag
                .as_deref()
                .is_none_or(|t| facts.tag == Some(t))
    }
}

/// What rules match against.
pub(crate) struct Facts<'a> {
    pub(crate) user: &'a str,
    pub(crate) protocol: &'a str,
    pub(crate) schema: Option<&'a str>,
    pub(crate) tables: &'a [String],
    pub(crate) sql: &'a str,
    pub(crate) tag: Option<&'a str>,
}

/// Routing hints written in the statement: `/* floe:engine=pg */`,
/// `/* floe:tag=agent-7 */`, `/* floe:strategy=latency */`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Hints<'a> {
    pub(crate) engine: Option<&'a str>,
    pub(crate) tag: Option<&'a str>,
    pub(crate) strategy: Option<&'a str>,
}

pub(crate) fn hints(sql: &str) -> Hints<'_> {
    let mut hints = Hints::default();
    // Nearly every statement has none: `contains` answers that with a SIMD
    // scan, where `find` first builds a two-way searcher (~250 instructions,
    // paid by every statement).
    if !sql.contains("floe:") {
        return hints;
    }
    let mut rest = sql;
    while let Some(at) = rest.find("floe:") {
        rest = &rest[at + 5..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '*' || c == ',')
            .unwrap_or(rest.len());
        if let Some((key, value)) = rest[..end].split_once('=') {
            match key {
                "engine" => hints.engine = Some(value),
                "tag" => hints.tag = Some(value),
                "strategy" => hints.strategy = Some(value),
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compiled_glob_matches_as_glob_does() {
        let texts = [
            "lake.demo.trips",
            "lake",
            "lake.",
            "lakehouse.x.y",
            "other.lake.t",
            "",
            "lake.demo",
        ];
        for text in [
            "lake.*",
            "lake",
            "*",
            "lake.demo.trips",
            "*.demo.*",
            "lak?.*",
            "[l]ake.*",
            "**",
        ] {
            let compiled = pattern(text, "test").expect("compiles");
            let reference = glob::Pattern::new(text).expect("glob");
            for candidate in texts {
                assert_eq!(
                    compiled.matches(candidate),
                    reference.matches(candidate),
                    "{text} on {candidate}"
                );
            }
        }
        assert!(matches!(pattern("lake.*", "serves"), Ok(Glob::Prefix(p)) if p == "lake."));
        assert!(matches!(pattern("lake", "serves"), Ok(Glob::Exact(_))));
        assert!(pattern("lake[", "serves").is_err());
    }

    #[test]
    fn hints_are_read_from_comments() {
        let h = hints("/* floe:engine=pg floe:tag=agent-7 */ SELECT 1");
        assert_eq!(h.engine, Some("pg"));
        assert_eq!(h.tag, Some("agent-7"));
        assert_eq!(hints("SELECT 1").engine, None);
        assert_eq!(
            hints("SELECT 1 -- floe:strategy=latency").strategy,
            Some("latency")
        );
    }

    #[test]
    fn rules_match_on_every_condition_given() -> Result<()> {
        let rule = CompiledRule::new(Rule {
            user: Some("agent-*".into()),
            tables: Some("lake.demo.*".into()),
            engines: vec!["pg".into()],
            ..Rule::default()
        })?;
        let tables = vec!["lake.demo.trips".to_owned()];
        let mut facts = Facts {
            user: "agent-1",
            protocol: "postgres",
            schema: None,
            tables: &tables,
            sql: "SELECT 1",
            tag: None,
        };
        assert!(rule.matches(&facts));
        facts.user = "human";
        assert!(!rule.matches(&facts));
        Ok(())
    }

    #[test]
    fn strategies_parse_and_refuse_unknown_names() {
        assert_eq!("Latency".parse::<Strategy>().ok(), Some(Strategy::Latency));
        assert!("fastest".parse::<Strategy>().is_err());
    }
}
