//! The router: which engine runs a statement, and what happens when it fails.
//!
//! For each statement the [`Router`]
//! 1. finds the tables it touches (`floe-dialects` analysis), qualified with
//!    the session's catalog and schema;
//! 2. applies the routing rules, the session's pins (`SET floe.engine`) and
//!    the statement's hints (`/* floe:engine=pg */`);
//! 3. keeps the engines that serve every table, accept writes when it writes,
//!    and are not Down;
//! 4. orders them by the strategy (cost, latency or throughput);
//! 5. translates the statement into the first engine's dialect (cached), waits
//!    for a slot under the engine's concurrency limit, and runs it.
//!
//! A read-only statement outside a transaction that fails for an engine-side
//! reason before its first row is retried on the next engine; everything else
//! returns the error. Every outcome feeds the engine's health and latency.

mod health;
mod load;
mod rules;
mod shapes;

use std::borrow::Cow;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use std::ops::ControlFlow;

use datafusion::scalar::ScalarValue;
use floe_dialects::sqlparser::ast::{
    Expr, Statement, Value as SqlValue, ValueWithSpan, visit_expressions_mut,
};
use floe_dialects::{
    Analyses, Analysis, Operator, References, StatementKind, TranslationCache, count_placeholders,
    mark_placeholders, param_columns, translate_with, unmark_placeholders,
};
use futures::{Stream, StreamExt};
use rand::RngExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use self::health::{FAILURES_TO_OPEN, Health, HealthState, SUCCESSES_TO_CLOSE};
pub use self::load::{Ewma, Latency, Load};
use self::rules::{CompiledRule, Facts, hints, pattern};
pub use self::rules::{CostModel, EngineSpec, Rule, Strategy};
use self::shapes::Shapes;
use crate::engine::{
    BatchStream, Engine, Prepared, QueryOutput, Request, Scope, Transaction, data_type_of_name,
};
use crate::{Error, Result};

/// Translated statement shapes whose analysis the router keeps.
const TRANSLATED_SHAPES: usize = 4096;

/// Router-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingConfig {
    /// The strategy when no rule or session chooses one.
    pub strategy: Strategy,
    /// The latency the cost strategy must meet.
    pub latency_slo: Duration,
    /// Share of latency-strategy decisions that try a random candidate, so
    /// that a recovered or faster engine gets measured.
    pub exploration: f64,
    /// The catalog unqualified table names belong to.
    pub default_catalog: String,
    /// The schema unqualified table names belong to when the session has none.
    pub default_schema: String,
    /// Rules, in order.
    pub rules: Vec<Rule>,
    /// Translations remembered.
    pub translation_cache: usize,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            strategy: Strategy::Cost,
            latency_slo: Duration::from_millis(500),
            exploration: 0.05,
            default_catalog: "lake".to_owned(),
            default_schema: "public".to_owned(),
            rules: Vec::new(),
            translation_cache: 10_000,
        }
    }
}

/// Who is asking, for rules and pins.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteContext<'a> {
    /// The authenticated user.
    pub user: &'a str,
    /// The front end: `postgres`, `mysql` or `flight_sql`.
    pub protocol: &'a str,
    /// The session's current schema (MySQL's database).
    pub schema: Option<&'a str>,
    /// `SET floe.tag`.
    pub tag: Option<&'a str>,
    /// `SET floe.strategy`.
    pub strategy: Option<Strategy>,
    /// `SET floe.engine`: run only there.
    pub engine: Option<&'a str>,
    /// The session's settings, as [`Scope::settings`].
    pub settings: &'a [(String, String)],
}

impl RouteContext<'_> {
    /// Where the session stands, for an engine.
    fn scope(&self) -> Scope<'_> {
        Scope {
            schema: self.schema,
            settings: self.settings,
        }
    }
}

/// One engine with everything the router knows of it.
#[derive(Debug)]
pub struct EngineEntry {
    /// The engine.
    pub engine: Arc<dyn Engine>,
    /// How the router treats it.
    pub spec: EngineSpec,
    serves: Vec<rules::Glob>,
    /// Its health.
    pub health: Arc<Health>,
    /// Its observed latency.
    pub latency: Arc<Latency>,
    /// Its load.
    pub load: Arc<Load>,
}

impl EngineEntry {
    fn name(&self) -> &str {
        self.engine.name()
    }

    fn serves(&self, table: &str) -> bool {
        self.serves.is_empty() || self.serves.iter().any(|p| p.matches(table))
    }

    /// Predicted latency in seconds, and where the figure comes from.
    fn predict(&self, fingerprint: Option<u64>) -> (f64, &'static str, f64) {
        if let Some(shape) = fingerprint.and_then(|id| self.latency.for_shape(id)) {
            return (shape.seconds, "shape", shape.bytes);
        }
        if let Some(overall) = self.latency.overall() {
            return (overall.seconds, "engine", overall.bytes);
        }
        (self.spec.expected_latency.as_secs_f64(), "prior", 0.0)
    }
}

/// One eligible engine with the figures its ranking reads, taken once per
/// statement: health, latency and load change under concurrent statements,
/// and a sort whose comparisons see different values is not a total order.
struct Candidate {
    entry: Arc<EngineEntry>,
    /// Not Healthy: ranked after the healthy engines.
    degraded: bool,
    /// Predicted latency, in seconds.
    seconds: f64,
    /// Predicted bytes.
    bytes: f64,
    /// Whether the latency was measured on this query shape.
    measured: bool,
    /// Outstanding and queued statements per unit of weight.
    load: f64,
    /// At its concurrency limit.
    full: bool,
}

impl Candidate {
    fn cost(&self) -> f64 {
        self.entry.spec.cost.predict(self.seconds, self.bytes)
    }
}

struct State {
    config: RoutingConfig,
    rules: Vec<CompiledRule>,
    engines: Vec<Arc<EngineEntry>>,
}

/// Picks engines for statements and runs them there.
pub struct Router {
    state: RwLock<Arc<State>>,
    translations: TranslationCache,
    shapes: Shapes,
    /// Translated statements analysed by shape: a translation of a shape
    /// seen before is not parsed again.
    translated: Analyses,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

/// A candidate engine as `EXPLAIN ROUTE` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateReport {
    /// The engine's name.
    pub engine: String,
    /// Its dialect.
    pub dialect: String,
    /// Its health.
    pub health: HealthState,
    /// Statements running on it.
    pub outstanding: usize,
    /// Statements waiting for it.
    pub queued: usize,
    /// Its concurrency limit (0: none).
    pub max_concurrency: usize,
    /// Predicted latency for this statement, in milliseconds.
    pub predicted_latency_ms: f64,
    /// `shape` (measured for this fingerprint), `engine` (its overall
    /// average) or `prior` (nothing measured yet).
    pub latency_source: &'static str,
    /// Predicted price of this statement.
    pub predicted_cost: f64,
    /// Its place in the order the router would try (1 = chosen), or `None`
    /// when it is not a candidate.
    pub rank: Option<usize>,
    /// Why it is not a candidate.
    pub excluded: Option<String>,
}

/// The routing decision for one statement, with its reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The tables the statement touches, qualified.
    pub tables: Vec<String>,
    /// Whether it provably writes nothing.
    pub read_only: bool,
    /// Its fingerprint id, in hex.
    pub fingerprint: String,
    /// The strategy used and where it came from.
    pub strategy: Strategy,
    /// The rules that matched.
    pub rules: Vec<String>,
    /// Every engine, candidate or not.
    pub candidates: Vec<CandidateReport>,
    /// The engine that would run it.
    pub chosen: Option<String>,
    /// Why that one.
    pub reason: String,
}

/// A statement's result and the engine that produced it.
pub struct Routed {
    /// The engine's name.
    pub engine: String,
    /// The result.
    pub output: QueryOutput,
    /// What the statement touched, for telemetry.
    pub touched: Touched,
}

/// The tables a statement touched and the predicate columns it filtered them
/// on: what the router computed to route it, handed on so that telemetry does
/// not analyse the statement again.
#[derive(Debug, Clone, Default)]
pub struct Touched {
    /// Tables, qualified `catalog.schema.table`.
    pub tables: Vec<String>,
    /// Predicate columns: the index of their table in `tables`, the column and
    /// how it was compared.
    pub columns: Vec<(usize, String, Operator)>,
    /// The statement's fingerprint id, when routing needed it.
    pub fingerprint: Option<u64>,
}

/// The qualified tables of a statement and its predicate columns by table index.
fn touched(
    refs: &References,
    catalog: &str,
    schema: &str,
) -> (Vec<String>, Vec<(usize, String, Operator)>) {
    let tables = refs
        .tables
        .iter()
        .map(|t| t.qualified(catalog, schema))
        .collect();
    let columns = refs
        .predicates
        .iter()
        .filter_map(|(column, op)| {
            refs.tables
                .iter()
                .position(|t| *t == column.table)
                .map(|i| (i, column.column.clone(), *op))
        })
        .collect();
    (tables, columns)
}

/// A transaction pinned to one engine (lazily opened by the first statement
/// of a `BEGIN` block).
pub struct Pinned {
    entry: Arc<EngineEntry>,
    txn: Option<Box<dyn Transaction>>,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned")
            .field("engine", &self.entry.name())
            .finish_non_exhaustive()
    }
}

impl Pinned {
    /// The engine the transaction runs on.
    pub fn engine(&self) -> &str {
        self.entry.name()
    }

    /// Commits it.
    ///
    /// # Errors
    ///
    /// The engine's commit failed.
    pub async fn commit(self) -> Result<()> {
        match self.txn {
            Some(txn) => txn.commit().await,
            None => Ok(()),
        }
    }

    /// Rolls it back.
    ///
    /// # Errors
    ///
    /// The engine's rollback failed.
    pub async fn rollback(self) -> Result<()> {
        match self.txn {
            Some(txn) => txn.rollback().await,
            None => Ok(()),
        }
    }
}

/// The decision and the context it needs to run.
struct Plan {
    order: Vec<Arc<EngineEntry>>,
    fingerprint: Option<u64>,
    tables: Vec<String>,
    columns: Vec<(usize, String, Operator)>,
    /// Made only when asked for (`EXPLAIN ROUTE`, the admin endpoint, the
    /// error of a statement no engine can run): the reports and reasons are
    /// strings, which the statements that just run do not need.
    explanation: Option<Explanation>,
}

/// Why an engine is not a candidate; put in words only for an
/// [`Explanation`].
#[derive(Debug, Clone, Copy)]
enum Exclusion<'a> {
    SessionPin,
    RulePin,
    Rule,
    Table(&'a str),
    ReadOnly,
    Down,
}

impl Exclusion<'_> {
    fn text(self, entry: &EngineEntry) -> String {
        match self {
            Exclusion::SessionPin => "the session or statement pins another engine".to_owned(),
            Exclusion::RulePin => "a rule pins other engines".to_owned(),
            Exclusion::Rule => "excluded by a rule".to_owned(),
            Exclusion::Table(table) => format!("does not serve {table}"),
            Exclusion::ReadOnly => "does not accept writes".to_owned(),
            Exclusion::Down => format!("down: {}", entry.health.last_error().unwrap_or_default()),
        }
    }
}

/// Why the order's first engine goes first; put in words only for an
/// [`Explanation`].
#[derive(Debug, Clone, Copy)]
enum Reason {
    CheapestWithinSlo,
    FastestOutsideSlo,
    Exploring,
    Measuring,
    LowestLatency,
    PowerOfTwo,
    AllDown,
    NoCandidate,
}

impl Reason {
    fn text(self, slo: Duration) -> String {
        let slo = slo.as_millis();
        match self {
            Reason::CheapestWithinSlo => {
                format!("cheapest engine predicted within the {slo} ms latency SLO")
            }
            Reason::FastestOutsideSlo => {
                format!("no engine is predicted within the {slo} ms SLO: the fastest")
            }
            Reason::Exploring => {
                "exploring: a random candidate, so every engine stays measured".to_owned()
            }
            Reason::Measuring => "not yet measured on this query shape: measuring it".to_owned(),
            Reason::LowestLatency => "lowest predicted latency for this query shape".to_owned(),
            Reason::PowerOfTwo => {
                "least outstanding statements of two random engines with free slots".to_owned()
            }
            Reason::AllDown => "every engine that serves it is down; trying them anyway".to_owned(),
            Reason::NoCandidate => "no engine serves every table the statement touches".to_owned(),
        }
    }
}

impl Router {
    /// A router over `engines`, in configuration order.
    ///
    /// # Errors
    ///
    /// A rule or `serves` pattern does not compile, or two engines share a name.
    pub fn new(config: RoutingConfig, engines: Vec<(Arc<dyn Engine>, EngineSpec)>) -> Result<Self> {
        let translations = TranslationCache::new(config.translation_cache.max(1));
        let state = build_state(config, engines, &[])?;
        Ok(Router {
            state: RwLock::new(Arc::new(state)),
            translations,
            shapes: Shapes::new(),
            translated: Analyses::new(TRANSLATED_SHAPES),
        })
    }

    /// Replaces the configuration and engines without disturbing running
    /// statements (they hold their engine). An engine passed again as the same
    /// `Arc` keeps its health, latency history and load.
    ///
    /// # Errors
    ///
    /// As [`Router::new`]; the old configuration stays.
    pub fn reconfigure(
        &self,
        config: RoutingConfig,
        engines: Vec<(Arc<dyn Engine>, EngineSpec)>,
    ) -> Result<()> {
        let previous = self.snapshot();
        let state = build_state(config, engines, &previous.engines)?;
        if let Ok(mut slot) = self.state.write() {
            *slot = Arc::new(state);
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<State> {
        match self.state.read() {
            Ok(state) => Arc::clone(&state),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The engines, in configuration order.
    pub fn engines(&self) -> Vec<Arc<EngineEntry>> {
        self.snapshot().engines.clone()
    }

    /// The engine named `name`.
    pub fn engine(&self, name: &str) -> Option<Arc<dyn Engine>> {
        self.snapshot()
            .engines
            .iter()
            .find(|e| e.name() == name)
            .map(|e| Arc::clone(&e.engine))
    }

    /// The translation cache's counters.
    pub fn translation_stats(&self) -> floe_dialects::CacheStats {
        self.translations.stats()
    }

    /// What the router would do with `analysis`, and why.
    ///
    /// # Errors
    ///
    /// The session's strategy hint is not a strategy.
    pub fn explain(&self, ctx: &RouteContext<'_>, analysis: &Analysis) -> Result<Explanation> {
        let plan = self.plan(ctx, analysis, None, true)?;
        plan.explanation
            .ok_or_else(|| Error::Internal("an explained plan has no explanation".to_owned()))
    }

    fn plan(
        &self,
        ctx: &RouteContext<'_>,
        analysis: &Analysis,
        prefer: Option<&str>,
        explain: bool,
    ) -> Result<Plan> {
        let state = self.snapshot();
        let config = &state.config;
        let schema = ctx.schema.unwrap_or(&config.default_schema);
        let shape = self.shapes.of(analysis);
        let (tables, columns) = touched(&shape.value.references, &config.default_catalog, schema);
        let hints = hints(analysis.sql());
        let tag = ctx.tag.or(hints.tag);
        let facts = Facts {
            user: ctx.user,
            protocol: ctx.protocol,
            schema: ctx.schema,
            tables: &tables,
            sql: analysis.sql(),
            tag,
        };
        let mut pinned: Option<HashSet<&str>> = None;
        let mut excluded: HashSet<&str> = HashSet::new();
        let mut rule_strategy = None;
        let mut matched = Vec::new();
        for (index, rule) in state.rules.iter().enumerate() {
            if !rule.matches(&facts) {
                continue;
            }
            if explain {
                matched.push(rule.label(index));
            }
            if !rule.rule.engines.is_empty() {
                let these: HashSet<&str> = rule.rule.engines.iter().map(String::as_str).collect();
                pinned = Some(match pinned {
                    Some(p) => p.intersection(&these).copied().collect(),
                    None => these,
                });
            }
            excluded.extend(rule.rule.exclude.iter().map(String::as_str));
            rule_strategy = rule_strategy.or(rule.rule.strategy);
        }
        let hinted = hints.strategy.map(str::parse::<Strategy>).transpose()?;
        let strategy = ctx
            .strategy
            .or(hinted)
            .or(rule_strategy)
            .unwrap_or(config.strategy);
        let session_pin = ctx.engine.or(hints.engine);
        let fingerprint = match strategy {
            Strategy::Throughput if !explain => None,
            _ => Some(shape.value.fingerprint(analysis)),
        };
        let writes = !analysis.read_only;

        let mut reports = Vec::with_capacity(if explain { state.engines.len() } else { 0 });
        let mut eligible = Vec::new();
        let mut down = Vec::new();
        for entry in &state.engines {
            let name = entry.name();
            let (seconds, source, bytes) = entry.predict(fingerprint);
            let health = entry.health.state();
            let outstanding = entry.load.outstanding();
            let queued = entry.load.queued();
            #[allow(clippy::cast_precision_loss)] // statement counts, far below 2^52
            let candidate = Candidate {
                entry: Arc::clone(entry),
                degraded: health != HealthState::Healthy,
                seconds,
                bytes,
                measured: source == "shape",
                load: (outstanding + queued) as f64 / entry.spec.weight.max(1e-6),
                full: entry.load.is_full(),
            };
            let exclusion = if session_pin.is_some_and(|p| p != name) {
                Some(Exclusion::SessionPin)
            } else if pinned.as_ref().is_some_and(|p| !p.contains(name)) {
                Some(Exclusion::RulePin)
            } else if excluded.contains(name) {
                Some(Exclusion::Rule)
            } else if let Some(table) = tables.iter().find(|t| !entry.serves(t)) {
                Some(Exclusion::Table(table))
            } else if writes && !entry.spec.writes {
                Some(Exclusion::ReadOnly)
            } else if health == HealthState::Down {
                down.push(candidate);
                Some(Exclusion::Down)
            } else {
                eligible.push(candidate);
                None
            };
            if explain {
                reports.push(CandidateReport {
                    engine: name.to_owned(),
                    dialect: entry.engine.dialect().as_str().to_owned(),
                    health,
                    outstanding,
                    queued,
                    max_concurrency: entry.load.max_concurrency(),
                    predicted_latency_ms: seconds * 1000.0,
                    latency_source: source,
                    predicted_cost: entry.spec.cost.predict(seconds, bytes),
                    rank: None,
                    excluded: exclusion.map(|e| e.text(entry)),
                });
            }
        }

        let (mut order, mut reason) = if eligible.is_empty() && !down.is_empty() {
            // Every engine that could run it is Down: trying one beats a
            // certain error, and a success closes its circuit sooner.
            down.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            (
                down.into_iter().map(|c| c.entry).collect::<Vec<_>>(),
                Reason::AllDown,
            )
        } else {
            self.order(strategy, config, eligible)
        };
        let mut preferred = false;
        if let Some(prefer) = prefer
            && let Some(at) = order.iter().position(|e| e.name() == prefer)
            && at > 0
        {
            let entry = order.remove(at);
            order.insert(0, entry);
            preferred = true;
        }
        if order.is_empty() {
            reason = Reason::NoCandidate;
        }
        let explanation = explain.then(|| {
            for (rank, entry) in order.iter().enumerate() {
                if let Some(report) = reports.iter_mut().find(|r| r.engine == entry.name()) {
                    report.rank = Some(rank + 1);
                }
            }
            let chosen = order.first().map(|e| e.name().to_owned());
            Explanation {
                tables: tables.clone(),
                read_only: analysis.read_only,
                fingerprint: fingerprint.map(|f| format!("{f:016x}")).unwrap_or_default(),
                strategy,
                rules: matched,
                candidates: reports,
                reason: match (&chosen, prefer) {
                    (Some(_), Some(prefer)) if preferred => {
                        format!("the engine that prepared the statement ({prefer})")
                    }
                    _ => reason.text(config.latency_slo),
                },
                chosen,
            }
        });
        Ok(Plan {
            order,
            fingerprint,
            tables,
            columns,
            explanation,
        })
    }

    /// The error for a statement no engine can run, naming why each engine
    /// is out (the statement is planned again, explained: a rare path).
    fn no_engine(&self, ctx: &RouteContext<'_>, analysis: &Analysis) -> Error {
        let explanation = match self.explain(ctx, analysis) {
            Ok(explanation) => explanation,
            Err(e) => return e,
        };
        let why: Vec<String> = explanation
            .candidates
            .iter()
            .filter_map(|c| c.excluded.as_ref().map(|r| format!("{}: {r}", c.engine)))
            .collect();
        Error::Unsupported(format!(
            "no engine can run this statement ({})",
            if why.is_empty() {
                "no engines are configured".to_owned()
            } else {
                why.join("; ")
            }
        ))
    }

    /// Orders the eligible engines by the strategy; healthy before degraded.
    fn order(
        &self,
        strategy: Strategy,
        config: &RoutingConfig,
        mut eligible: Vec<Candidate>,
    ) -> (Vec<Arc<EngineEntry>>, Reason) {
        let slo = config.latency_slo.as_secs_f64();
        let reason = match strategy {
            Strategy::Cost => {
                eligible.sort_by(|a, b| {
                    let (late_a, late_b) = (a.seconds > slo, b.seconds > slo);
                    a.degraded.cmp(&b.degraded).then(late_a.cmp(&late_b)).then(
                        if late_a && late_b {
                            a.seconds.total_cmp(&b.seconds)
                        } else {
                            a.cost()
                                .total_cmp(&b.cost())
                                .then(a.seconds.total_cmp(&b.seconds))
                        },
                    )
                });
                match eligible.first() {
                    Some(first) if first.seconds > slo => Reason::FastestOutsideSlo,
                    _ => Reason::CheapestWithinSlo,
                }
            }
            Strategy::Latency => {
                eligible.sort_by(|a, b| {
                    a.degraded
                        .cmp(&b.degraded)
                        .then(a.measured.cmp(&b.measured))
                        .then(a.seconds.total_cmp(&b.seconds))
                });
                let explore =
                    eligible.len() > 1 && rand::rng().random::<f64>() < config.exploration;
                if explore {
                    let pick = rand::rng().random_range(1..eligible.len());
                    eligible.swap(0, pick);
                    Reason::Exploring
                } else if eligible.first().is_some_and(|c| !c.measured) {
                    Reason::Measuring
                } else {
                    Reason::LowestLatency
                }
            }
            Strategy::Throughput => {
                eligible.sort_by(|a, b| {
                    a.degraded
                        .cmp(&b.degraded)
                        .then(a.full.cmp(&b.full))
                        .then(a.load.total_cmp(&b.load))
                });
                // Power of two choices among the engines with free slots: the
                // less loaded of two random ones goes first. It spreads load
                // without herding every session onto the one engine that
                // looked idle a moment ago.
                let open = eligible
                    .iter()
                    .take_while(|c| !c.degraded && !c.full)
                    .count();
                if open >= 2 {
                    let mut rng = rand::rng();
                    let a = rng.random_range(0..open);
                    let b = (a + rng.random_range(1..open)) % open;
                    let pick = if eligible[b].load < eligible[a].load {
                        b
                    } else {
                        a
                    };
                    let chosen = eligible.remove(pick);
                    eligible.insert(0, chosen);
                }
                Reason::PowerOfTwo
            }
        };
        (eligible.into_iter().map(|c| c.entry).collect(), reason)
    }

    /// Plans a statement on the engine the router would run it on.
    ///
    /// # Errors
    ///
    /// No engine can run it, or the engine's planning error.
    pub async fn prepare(&self, ctx: &RouteContext<'_>, analysis: &Analysis) -> Result<Prepared> {
        let plan = self.plan(ctx, analysis, None, false)?;
        let mut first_error = None;
        for entry in &plan.order {
            let statement = match self
                .statement_for(entry, None, analysis, &[], ctx.schema)
                .await
            {
                Ok((statement, _)) => statement,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match entry.engine.prepare(&statement, ctx.scope()).await {
                Ok(mut prepared) => {
                    prepared.engine = Some(entry.name().to_owned());
                    if let Cow::Owned(_) = statement {
                        self.describe_params(entry, None, analysis, ctx.schema, &mut prepared)
                            .await;
                    }
                    return Ok(prepared);
                }
                Err(e) if is_engine_failure(&e) => {
                    entry.health.failure(&e.to_string());
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.unwrap_or_else(|| self.no_engine(ctx, analysis)))
    }

    /// Plans a statement inside a pinned transaction: on the transaction's own
    /// connection once the block has one (a second connection could be a
    /// wait for a pool the blocks hold), on its engine otherwise.
    ///
    /// # Errors
    ///
    /// The engine's planning error.
    pub async fn prepare_pinned(
        &self,
        ctx: &RouteContext<'_>,
        pinned: &mut Pinned,
        analysis: &Analysis,
    ) -> Result<Prepared> {
        let entry = Arc::clone(&pinned.entry);
        if let Some(txn) = pinned.txn.as_deref_mut() {
            let (statement, _) = self
                .statement_for(&entry, Some(&mut *txn), analysis, &[], ctx.schema)
                .await?;
            if let Some(mut prepared) = txn.prepare(&statement, ctx.scope()).await? {
                prepared.engine = Some(entry.name().to_owned());
                if let Cow::Owned(_) = statement {
                    self.describe_params(&entry, Some(txn), analysis, ctx.schema, &mut prepared)
                        .await;
                }
                return Ok(prepared);
            }
        }
        let ctx = RouteContext {
            engine: Some(entry.name()),
            ..*ctx
        };
        self.prepare(&ctx, analysis).await
    }

    /// Describes the parameters of a statement prepared in another dialect in
    /// the client's terms: the client binds the parameters of its own text (a
    /// `$1` used twice is one parameter, not two `?`), and where the engine
    /// cannot type them (MySQL types none) each takes the type of the column it
    /// is compared with or assigned to, as PostgreSQL infers it. A strictly
    /// typed client (tokio-postgres, JDBC) needs that to bind an integer.
    async fn describe_params(
        &self,
        entry: &EngineEntry,
        txn: Option<&mut (dyn Transaction + 'static)>,
        analysis: &Analysis,
        schema: Option<&str>,
        prepared: &mut Prepared,
    ) {
        prepared
            .param_types
            .resize(count_placeholders(&analysis.statement), None);
        if prepared.param_types.iter().all(Option::is_some) {
            return;
        }
        let columns = param_columns(&analysis.statement);
        if columns.iter().all(Option::is_none) {
            return;
        }
        // Unknown types stay unknown (text, as PostgreSQL resolves them): a
        // catalog that cannot be read costs the client nothing more.
        let types = column_types(entry, txn, &analysis.references().tables, schema).await;
        for (ty, column) in prepared.param_types.iter_mut().zip(columns) {
            if ty.is_none() {
                *ty = column.and_then(|c| types.type_name(&c).and_then(data_type_of_name));
            }
        }
    }

    /// Runs one statement outside a transaction, failing over for read-only ones.
    ///
    /// # Errors
    ///
    /// No engine can run it, or the error of the last engine tried.
    pub async fn execute(&self, ctx: &RouteContext<'_>, request: Request<'_>) -> Result<Routed> {
        let prefer = request.prepared.and_then(|p| p.engine.as_deref());
        let plan = self.plan(ctx, request.statement, prefer, false)?;
        let retry = request.statement.read_only;
        let mut first_error: Option<Error> = None;
        for entry in &plan.order {
            let (statement, inlined) = match self
                .statement_for(
                    entry,
                    None,
                    request.statement,
                    request.params,
                    request.schema,
                )
                .await
            {
                Ok(translated) => translated,
                Err(e) => {
                    // Nothing ran: the next engine may read this dialect natively.
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let slot = match entry
                .load
                .enter(entry.name(), entry.spec.queue_len, entry.spec.queue_timeout)
                .await
            {
                Ok(slot) => slot,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let sent = Request {
                params: if inlined { &[] } else { request.params },
                ..request
            };
            let attempt = self
                .run_on(entry, &statement, &sent, plan.fingerprint, slot, retry)
                .await;
            match attempt {
                Ok(output) => {
                    if let Some(previous) = &first_error
                        && is_engine_failure(previous)
                    {
                        metrics::counter!("floe_router_failovers_total", "to" => entry.name().to_owned())
                            .increment(1);
                        tracing::info!(engine = entry.name(), error = %previous, "statement failed over");
                    }
                    return Ok(Routed {
                        engine: entry.name().to_owned(),
                        output,
                        touched: Touched {
                            tables: plan.tables,
                            columns: plan.columns,
                            fingerprint: plan.fingerprint,
                        },
                    });
                }
                Err(e) if retry && is_retryable(&e) => {
                    first_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.unwrap_or_else(|| self.no_engine(ctx, request.statement)))
    }

    /// Runs `statement` on one engine and tracks the result until its end.
    /// With `prefetch`, the first batch is awaited here, so that an engine
    /// failure before any row can still fail over.
    async fn run_on(
        &self,
        entry: &Arc<EngineEntry>,
        statement: &Analysis,
        request: &Request<'_>,
        fingerprint: Option<u64>,
        slot: load::Slot,
        prefetch: bool,
    ) -> Result<QueryOutput> {
        let started = Instant::now();
        let prepared = request
            .prepared
            .filter(|p| p.engine.as_deref() == Some(entry.name()));
        let sent = Request {
            statement,
            params: request.params,
            prepared,
            schema: request.schema,
            scan: request.scan,
            // The server's rows are what the client wants only when the
            // statement goes as the client wrote it.
            pg_text: request.pg_text && std::ptr::eq(statement, request.statement),
            mysql_rows: request
                .mysql_rows
                .filter(|_| std::ptr::eq(statement, request.statement)),
            settings: request.settings,
        };
        let output = entry.engine.execute(sent).await;
        self.track(entry, output, started, fingerprint, slot, prefetch)
            .await
    }

    async fn track(
        &self,
        entry: &Arc<EngineEntry>,
        output: Result<QueryOutput>,
        started: Instant,
        fingerprint: Option<u64>,
        slot: load::Slot,
        prefetch: bool,
    ) -> Result<QueryOutput> {
        match output {
            Err(e) => {
                record_error(entry, &e);
                Err(e)
            }
            Ok(QueryOutput::Command { rows }) => {
                entry.health.success();
                entry.latency.observe(fingerprint, started.elapsed(), 0);
                Ok(QueryOutput::Command { rows })
            }
            Ok(QueryOutput::Rows { schema, mut stream }) => {
                let first = if prefetch {
                    match stream.next().await {
                        Some(Err(e)) => {
                            record_error(entry, &e);
                            return Err(e);
                        }
                        other => Some(other),
                    }
                } else {
                    None
                };
                Ok(QueryOutput::Rows {
                    schema,
                    stream: Box::pin(Tracked {
                        first,
                        inner: stream,
                        entry: Arc::clone(entry),
                        fingerprint,
                        started,
                        bytes: 0,
                        _slot: slot,
                    }),
                })
            }
        }
    }

    /// Opens a transaction for a `BEGIN` block on the engine its first
    /// statement routes to.
    ///
    /// # Errors
    ///
    /// No engine can run the statement, or the engine could not begin.
    pub async fn begin(&self, ctx: &RouteContext<'_>, analysis: &Analysis) -> Result<Pinned> {
        let plan = self.plan(ctx, analysis, None, false)?;
        let Some(entry) = plan.order.into_iter().next() else {
            return Err(self.no_engine(ctx, analysis));
        };
        let txn = entry
            .engine
            .begin(ctx.scope())
            .await
            .inspect_err(|e| record_error(&entry, e))?;
        Ok(Pinned { entry, txn })
    }

    /// Runs a statement inside a pinned transaction: never retried elsewhere.
    ///
    /// # Errors
    ///
    /// The engine's error.
    pub async fn execute_pinned(
        &self,
        pinned: &mut Pinned,
        request: Request<'_>,
    ) -> Result<Routed> {
        let entry = Arc::clone(&pinned.entry);
        if pinned.txn.is_none() && request.statement.kind == StatementKind::Transaction {
            // A savepoint on an engine without transactions: each of its
            // statements commits on its own, so there is nothing to mark or
            // undo, as its block's BEGIN and ROLLBACK are accepted.
            return Ok(Routed {
                engine: entry.name().to_owned(),
                output: QueryOutput::Command { rows: None },
                touched: Touched::default(),
            });
        }
        let (statement, inlined) = self
            .statement_for(
                &entry,
                pinned.txn.as_deref_mut(),
                request.statement,
                request.params,
                request.schema,
            )
            .await?;
        let slot = entry
            .load
            .enter(entry.name(), entry.spec.queue_len, entry.spec.queue_timeout)
            .await?;
        let started = Instant::now();
        let prepared = request
            .prepared
            .filter(|p| p.engine.as_deref() == Some(entry.name()));
        let sent = Request {
            statement: &statement,
            params: if inlined { &[] } else { request.params },
            prepared,
            schema: request.schema,
            scan: request.scan,
            pg_text: false,
            mysql_rows: None,
            settings: request.settings,
        };
        let output = match pinned.txn.as_mut() {
            Some(txn) => txn.execute(sent).await,
            None => entry.engine.execute(sent).await,
        };
        let output = self
            .track(&entry, output, started, None, slot, false)
            .await?;
        let config = &self.snapshot().config;
        let shape = self.shapes.of(request.statement);
        let (tables, columns) = touched(
            &shape.value.references,
            &config.default_catalog,
            request.schema.unwrap_or(&config.default_schema),
        );
        Ok(Routed {
            engine: entry.name().to_owned(),
            output,
            touched: Touched {
                tables,
                columns,
                // Kept per shape: without it telemetry's aggregator parsed
                // every statement of every block again to fingerprint it.
                fingerprint: Some(shape.value.fingerprint(request.statement)),
            },
        })
    }

    /// The statement in the engine's dialect: as written when the engine reads
    /// the client's dialect, translated (through the cache) otherwise. A
    /// translated statement gets its parameters written in as literals (the
    /// second value is then true and the engine gets no parameters), because
    /// placeholder syntax and binding differ between dialects.
    async fn statement_for<'a>(
        &self,
        entry: &EngineEntry,
        txn: Option<&mut (dyn Transaction + 'static)>,
        analysis: &'a Analysis,
        params: &[ScalarValue],
        schema: Option<&str>,
    ) -> Result<(Cow<'a, Analysis>, bool)> {
        let target = entry.engine.dialect();
        if entry.engine.accepts(analysis.dialect) {
            return Ok((Cow::Borrowed(analysis), false));
        }
        let inlined = !params.is_empty();
        let marked = !inlined && count_placeholders(&analysis.statement) > 0;
        let source = if inlined {
            let mut statement = Statement::clone(&analysis.statement);
            inline_params(&mut statement, params)?;
            Cow::Owned(statement.to_string())
        } else if marked {
            // Planning without values: the parameters cross as marked
            // literals and come back as the target's own placeholders.
            let mut statement = Statement::clone(&analysis.statement);
            mark_placeholders(&mut statement);
            Cow::Owned(statement.to_string())
        } else {
            Cow::Borrowed(analysis.sql())
        };
        let mut translated = if needs_types(&source) {
            // A division or date arithmetic means what the column types say:
            // ask the engine for them (no shape cache: the types are part of
            // the answer).
            let types = column_types(entry, txn, &analysis.references().tables, schema).await;
            translate_with(&source, analysis.dialect, target, &types)?
        } else {
            self.translations
                .translate(&source, analysis.dialect, target)?
        };
        if translated.len() != 1 {
            return Err(Error::Unsupported(format!(
                "the statement became {} statements in {}",
                translated.len(),
                target.as_str()
            )));
        }
        let sql = translated.remove(0);
        let mut statement = self.translated.analyze_statement(&sql, target)?;
        if marked && unmark_placeholders(&mut statement.statement, target) > 0 {
            statement.set_sql(statement.statement.to_string());
        }
        // The translation keeps the client's intent: a read stays a read.
        statement.read_only = analysis.read_only;
        Ok((Cow::Owned(statement), inlined))
    }

    /// Probes every engine whose interval has passed, until `cancel`.
    pub async fn run_probes(self: Arc<Self>, cancel: CancellationToken) {
        let mut last: std::collections::HashMap<String, Instant> = std::collections::HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let due: Vec<Arc<EngineEntry>> = self
                .engines()
                .into_iter()
                .filter(|e| {
                    last.get(e.name())
                        .is_none_or(|at| at.elapsed() >= e.spec.probe_interval)
                })
                .collect();
            for entry in &due {
                last.insert(entry.name().to_owned(), Instant::now());
            }
            let probes = due.into_iter().map(|entry| async move {
                let timeout = entry.spec.probe_interval.max(Duration::from_secs(1));
                match tokio::time::timeout(timeout, entry.engine.probe()).await {
                    Ok(Ok(())) => entry.health.success(),
                    Ok(Err(e)) => entry.health.probe_failed(&e.to_string()),
                    Err(_) => entry.health.probe_failed("the probe timed out"),
                }
            });
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = futures::future::join_all(probes) => {}
            }
        }
    }
}

/// Writes `params` into `statement` as literals: `$n` takes the n-th, each `?`
/// the next in text order.
fn inline_params(statement: &mut Statement, params: &[ScalarValue]) -> Result<()> {
    let mut next = 0usize;
    let mut missing = None;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: SqlValue::Placeholder(name),
            ..
        }) = expr
        {
            let index = if name == "?" {
                next += 1;
                Some(next - 1)
            } else {
                name.strip_prefix('$')
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| n.checked_sub(1))
            };
            match index.and_then(|i| params.get(i)) {
                Some(value) => *expr = literal(value),
                None => {
                    missing = Some(name.clone());
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    match missing {
        Some(name) => Err(Error::InvalidInput(format!(
            "no value for parameter {name}"
        ))),
        None => Ok(()),
    }
}

/// A parameter as the SQL literal that means the same value.
fn literal(value: &ScalarValue) -> Expr {
    let value = if value.is_null() {
        SqlValue::Null
    } else {
        match value {
            ScalarValue::Boolean(Some(b)) => SqlValue::Boolean(*b),
            ScalarValue::Int8(_)
            | ScalarValue::Int16(_)
            | ScalarValue::Int32(_)
            | ScalarValue::Int64(_)
            | ScalarValue::UInt8(_)
            | ScalarValue::UInt16(_)
            | ScalarValue::UInt32(_)
            | ScalarValue::UInt64(_)
            | ScalarValue::Float32(_)
            | ScalarValue::Float64(_)
            | ScalarValue::Decimal128(..)
            | ScalarValue::Decimal256(..) => SqlValue::Number(value.to_string(), false),
            ScalarValue::Binary(Some(bytes))
            | ScalarValue::LargeBinary(Some(bytes))
            | ScalarValue::BinaryView(Some(bytes)) => {
                SqlValue::HexStringLiteral(bytes.iter().map(|b| format!("{b:02X}")).collect())
            }
            other => SqlValue::SingleQuotedString(other.to_string()),
        }
    };
    Expr::value(value)
}

/// The column types of `tables` on `entry`'s engine: read on the block's own
/// connection inside a transaction (a pooled one could be a wait for a pool
/// the blocks hold), unknown when the engine cannot say.
async fn column_types(
    entry: &EngineEntry,
    txn: Option<&mut (dyn Transaction + 'static)>,
    tables: &[floe_dialects::TableRef],
    schema: Option<&str>,
) -> floe_dialects::ColumnTypes {
    if let Some(txn) = txn {
        match txn.column_types(tables, schema).await {
            Ok(Some(types)) => return types,
            Ok(None) => {}
            Err(_) => return floe_dialects::ColumnTypes::default(),
        }
    }
    entry
        .engine
        .column_types(tables, schema)
        .await
        .unwrap_or_default()
}

/// Whether an error says the engine, not the statement, failed.
pub fn is_engine_failure(e: &Error) -> bool {
    matches!(e, Error::EngineUnavailable { .. })
}

fn is_retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::EngineUnavailable {
            retryable: true,
            ..
        }
    )
}

fn record_error(entry: &EngineEntry, e: &Error) {
    if is_engine_failure(e) {
        entry.health.failure(&e.to_string());
    } else {
        // The engine answered, if only to refuse the statement.
        entry.health.success();
    }
}

fn build_state(
    config: RoutingConfig,
    engines: Vec<(Arc<dyn Engine>, EngineSpec)>,
    previous: &[Arc<EngineEntry>],
) -> Result<State> {
    let rules = config
        .rules
        .iter()
        .cloned()
        .map(CompiledRule::new)
        .collect::<Result<Vec<_>>>()?;
    let mut names = HashSet::new();
    let mut entries = Vec::with_capacity(engines.len());
    for (engine, spec) in engines {
        if !names.insert(engine.name().to_owned()) {
            return Err(Error::InvalidInput(format!(
                "two engines are named {}",
                engine.name()
            )));
        }
        let serves = spec
            .serves
            .iter()
            .map(|p| pattern(p, "serves"))
            .collect::<Result<Vec<_>>>()?;
        let kept = previous.iter().find(|e| {
            Arc::ptr_eq(&e.engine, &engine) && e.spec.max_concurrency == spec.max_concurrency
        });
        let (health, latency, load) = match kept {
            Some(e) => (
                Arc::clone(&e.health),
                Arc::clone(&e.latency),
                Arc::clone(&e.load),
            ),
            None => (
                Arc::new(Health::new(engine.name())),
                Arc::new(Latency::default()),
                Arc::new(Load::new(spec.max_concurrency)),
            ),
        };
        entries.push(Arc::new(EngineEntry {
            engine,
            spec,
            serves,
            health,
            latency,
            load,
        }));
    }
    for rule in &rules {
        for name in rule.rule.engines.iter().chain(&rule.rule.exclude) {
            if !names.contains(name.as_str()) {
                return Err(Error::InvalidInput(format!(
                    "routing rule {} names engine {name}, which is not configured",
                    rule.rule.name.as_deref().unwrap_or("(unnamed)")
                )));
            }
        }
    }
    Ok(State {
        config,
        rules,
        engines: entries,
    })
}

/// A result stream that feeds the engine's latency and health when it ends
/// and holds the engine's concurrency slot until then.
struct Tracked {
    /// The batch awaited before the stream was handed out (failover).
    first: Option<Option<Result<RecordBatch>>>,
    inner: BatchStream,
    entry: Arc<EngineEntry>,
    fingerprint: Option<u64>,
    started: Instant,
    bytes: usize,
    _slot: load::Slot,
}

impl Stream for Tracked {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = match self.first.take() {
            Some(first) => first,
            None => match self.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => item,
            },
        };
        match &item {
            Some(Ok(batch)) => self.bytes += batch.get_array_memory_size(),
            Some(Err(e)) => record_error(&self.entry, e),
            None => {
                self.entry.health.success();
                let bytes = self.bytes;
                self.entry
                    .latency
                    .observe(self.fingerprint, self.started.elapsed(), bytes);
            }
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests;

/// Whether a statement has constructs whose translation depends on column
/// types (division, date arithmetic, casts): only those pay for asking the
/// engine.
fn needs_types(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    [
        "/", "INTERVAL", "DATE_ADD", "DATE_SUB", "ADDDATE", "SUBDATE", "CAST", "DATE '",
    ]
    .iter()
    .any(|w| upper.contains(w))
        || upper.contains(" + ")
        || upper.contains(" - ")
}
