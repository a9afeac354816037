//! The maintenance engine's scheduler: every `interval` it refreshes the
//! inventory, resolves each table's policy, enforces configuration policies,
//! fires cron schedules and triggers, asks the [planner](crate::planner)
//! what adaptive maintenance is worth doing, and runs the jobs — best score
//! first, at most `concurrency` at once, never two on one table, within the
//! bytes-per-hour budgets and maintenance windows — through
//! [`maintain_table`], so every job lands in the audit trail.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use futures::StreamExt;
use iceberg::TableIdent;
use iceberg::table::Table;
use serde::Serialize;
use sqlx::Row as _;
use tokio_util::sync::CancellationToken;

use crate::inventory::{Inventory, TableDetail};
use crate::ops::properties::{self, Drift};
use crate::ops::{
    CompactOptions, ExpireOptions, ManifestOptions, Operation, OrphanOptions, Report, Request,
    Strategy, Target, maintain_table,
};
use crate::planner::{self, Assessment, Inputs, Layout, SortChoice};
use crate::policy::{self, Enforce, Mode, Origin, Policy, Resolved};
use crate::schedule::{Clock, Window, cron_due, parse_cron};
use crate::telemetry::Heat;
use crate::{Error, Result};

/// `[maintenance]`: how the scheduler runs.
#[derive(Debug, Clone)]
pub struct MaintainerConfig {
    /// Settings every table starts from before policies apply (the mode
    /// above all).
    pub base: Policy,
    /// How often the scheduler looks at the lake.
    pub interval: Duration,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Bytes rewritten per hour across the lake; `None`: no limit.
    pub max_bytes_per_hour: Option<u64>,
}

/// One table's plan in a scheduler pass.
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    /// The planner's assessment (job, score, reasons); a schedule that fired
    /// shows here as `started_by = "schedule"`.
    #[serde(flatten)]
    pub assessment: Assessment,
    /// The table's effective mode.
    pub mode: Mode,
    /// Why the job does not run now (window, budget, already running, mode).
    pub waiting: Option<String>,
    /// Properties that differ from the policy.
    pub drift: Vec<Drift>,
    /// The layout on the chosen sort column, when measured.
    pub layout: Option<Layout>,
}

/// What one job did.
#[derive(Debug, Serialize)]
pub struct JobOutcome {
    /// The table.
    pub table: String,
    /// What fired it.
    pub started_by: String,
    /// Each operation's report, when it succeeded.
    pub reports: Vec<Report>,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// The scheduler.
pub struct Maintainer {
    targets: Vec<Target>,
    heat: Option<Arc<Heat>>,
    clock: Arc<dyn Clock>,
    config: MaintainerConfig,
    policies: RwLock<Vec<(Origin, Policy)>>,
    store: Option<sqlx::SqlitePool>,
    inventories: tokio::sync::Mutex<HashMap<String, Inventory>>,
    /// Layouts by (metadata location, column): they change only with a commit.
    layouts: Mutex<HashMap<(String, String), Layout>>,
    running: Mutex<HashSet<String>>,
    /// When each table's schedule last fired (or the scheduler started).
    last_cron: Mutex<HashMap<String, i64>>,
    /// (time, bytes) of recent rewrites, per table, for the budgets.
    rewritten: Mutex<VecDeque<(i64, String, u64)>>,
    started_ms: i64,
    /// One pass at a time (the loop and `POST /api/maintenance/run`).
    pass: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Maintainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintainer")
            .field(
                "catalogs",
                &self
                    .targets
                    .iter()
                    .map(|t| &t.catalog_name)
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const HOUR_MS: i64 = 3600 * 1000;

impl Maintainer {
    /// A scheduler over `targets` with the configured policies; policies set
    /// through the API earlier are read from the state store at `state`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a policy that does not validate,
    /// [`Error::State`] when the store cannot be read.
    pub async fn new(
        targets: Vec<Target>,
        heat: Option<Arc<Heat>>,
        clock: Arc<dyn Clock>,
        config: MaintainerConfig,
        configured: Vec<Policy>,
        state: Option<&Path>,
    ) -> Result<Maintainer> {
        let mut policies: Vec<(Origin, Policy)> = configured
            .into_iter()
            .map(|p| (Origin::Config, p))
            .collect();
        let store = match state {
            Some(path) => {
                let pool = crate::audit::connect(path).await?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS policies (scope TEXT PRIMARY KEY, policy TEXT NOT NULL)",
                )
                .execute(&pool)
                .await
                .map_err(crate::audit::state_error)?;
                for row in sqlx::query("SELECT policy FROM policies ORDER BY scope")
                    .fetch_all(&pool)
                    .await
                    .map_err(crate::audit::state_error)?
                {
                    let text: String = row.try_get(0).map_err(crate::audit::state_error)?;
                    match serde_json::from_str::<Policy>(&text) {
                        Ok(p) => policies.push((Origin::Api, p)),
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring an unreadable stored policy")
                        }
                    }
                }
                Some(pool)
            }
            None => None,
        };
        let started_ms = clock.now_ms();
        Ok(Maintainer {
            targets,
            heat,
            clock,
            config,
            policies: RwLock::new(policies),
            store,
            inventories: tokio::sync::Mutex::new(HashMap::new()),
            layouts: Mutex::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
            last_cron: Mutex::new(HashMap::new()),
            rewritten: Mutex::new(VecDeque::new()),
            started_ms,
            pass: tokio::sync::Mutex::new(()),
        })
    }

    /// Every policy with where it came from.
    pub fn policies(&self) -> Vec<(Origin, Policy)> {
        self.policies
            .read()
            .map_or_else(|p| p.into_inner().clone(), |p| p.clone())
    }

    /// The effective policy of `table` (`catalog.namespace.table`).
    pub fn resolve(&self, table: &str) -> Resolved {
        policy::resolve(table, &self.config.base, &self.policies())
    }

    /// Sets (or replaces) the API policy of `policy.scope`, persisted.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with every problem; [`Error::State`] when it cannot
    /// be stored.
    pub async fn set_policy(&self, policy: Policy) -> Result<()> {
        let problems = policy::validate(&policy, "policy");
        if !problems.is_empty() {
            return Err(Error::Invalid(problems.join("; ")));
        }
        if let Some(pool) = &self.store {
            let text = serde_json::to_string(&policy)
                .map_err(|e| Error::State(format!("serializing a policy: {e}")))?;
            sqlx::query(
                "INSERT INTO policies (scope, policy) VALUES (?, ?)
                 ON CONFLICT (scope) DO UPDATE SET policy = excluded.policy",
            )
            .bind(&policy.scope)
            .bind(text)
            .execute(pool)
            .await
            .map_err(crate::audit::state_error)?;
        }
        if let Ok(mut all) = self.policies.write() {
            all.retain(|(o, p)| !(*o == Origin::Api && p.scope == policy.scope));
            all.push((Origin::Api, policy));
        }
        Ok(())
    }

    /// Removes the API policy of `scope`; false when there was none.
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the store cannot be written.
    pub async fn delete_policy(&self, scope: &str) -> Result<bool> {
        if let Some(pool) = &self.store {
            sqlx::query("DELETE FROM policies WHERE scope = ?")
                .bind(scope)
                .execute(pool)
                .await
                .map_err(crate::audit::state_error)?;
        }
        let mut removed = false;
        if let Ok(mut all) = self.policies.write() {
            let before = all.len();
            all.retain(|(o, p)| !(*o == Origin::Api && p.scope == scope));
            removed = all.len() != before;
        }
        Ok(removed)
    }

    /// Every table of every catalog with its detail, fresh, as the
    /// inventory loaded it.
    async fn tables(&self) -> Result<Vec<(usize, String, Table, TableDetail)>> {
        let mut inventories = self.inventories.lock().await;
        let mut out = Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            let inventory = inventories.entry(target.catalog_name.clone()).or_default();
            for (name, detail, table) in inventory.refresh_tables(target.catalog.as_ref()).await? {
                out.push((
                    index,
                    format!("{}.{name}", target.catalog_name),
                    table,
                    detail,
                ));
            }
        }
        Ok(out)
    }

    /// Bytes rewritten in the last hour, on `table` or (None) everywhere.
    fn rewritten_last_hour(&self, now: i64, table: Option<&str>) -> u64 {
        let mut window = lock(&self.rewritten);
        while window.front().is_some_and(|(t, _, _)| *t < now - HOUR_MS) {
            window.pop_front();
        }
        window
            .iter()
            .filter(|(_, t, _)| table.is_none_or(|x| x == t))
            .map(|(_, _, b)| *b)
            .sum()
    }

    /// What a pass would do now, table by table, best job first; changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// When the catalogs cannot be listed.
    pub async fn plan(&self) -> Result<Vec<TablePlan>> {
        let now = self.clock.now_ms();
        let mut plans = Vec::new();
        for (index, name, table, detail) in self.tables().await? {
            plans.push(
                self.plan_table(index, &name, &table, &detail, now, false)
                    .await,
            );
        }
        plans.sort_by(|a, b| b.assessment.score.total_cmp(&a.assessment.score));
        Ok(plans)
    }

    async fn plan_table(
        &self,
        index: usize,
        name: &str,
        table: &Table,
        detail: &TableDetail,
        now: i64,
        act: bool,
    ) -> TablePlan {
        let resolved = self.resolve(name);
        let mode = resolved.mode();
        let mut plan = TablePlan {
            assessment: Assessment::none(name),
            mode,
            waiting: None,
            drift: Vec::new(),
            layout: None,
        };
        if matches!(mode, Mode::Off | Mode::Manual) {
            plan.waiting = Some(format!("mode is {mode:?}").to_lowercase());
            return plan;
        }
        let target = &self.targets[index];
        // Configuration policy: report or correct drift.
        if !resolved.policy.properties.is_empty() {
            plan.drift = properties::drift(table, &resolved.policy.properties);
            if act && !plan.drift.is_empty() && resolved.policy.enforce == Some(Enforce::Correct) {
                match properties::correct(table, target.committer.as_ref(), &plan.drift).await {
                    Ok(_) => {
                        tracing::info!(table = name, drift = ?plan.drift, "table properties corrected");
                        plan.assessment
                            .reasons
                            .push(format!("corrected {} drifted properties", plan.drift.len()));
                    }
                    Err(e) => {
                        tracing::warn!(table = name, error = %e, "could not correct table properties")
                    }
                }
            }
        }
        let tz = match resolved.timezone() {
            Ok(tz) => tz,
            Err(e) => {
                plan.waiting = Some(e.to_string());
                return plan;
            }
        };
        let heat = self.heat.as_ref().and_then(|h| h.table(name, now));
        let schema = table.metadata().current_schema();
        let sort: Option<SortChoice> = heat.as_ref().and_then(|h| {
            planner::choose_sort_order(
                h,
                resolved.policy.compact.max_sort_columns.unwrap_or(2),
                resolved.policy.compact.zorder == Some(true),
                |c| schema.field_by_name(c).is_some(),
            )
        });
        let table_sort: Vec<String> = table
            .metadata()
            .default_sort_order()
            .fields
            .iter()
            .filter_map(|f| schema.name_by_field_id(f.source_id).map(str::to_owned))
            .collect();
        let order = planner::compaction_order(&resolved, sort.as_ref(), &table_sort);
        // The layout the order is judged by: its first column for a sort;
        // for a z-order, whichever of its columns the files prune worst.
        if let Some(order) = &order {
            for column in order.judged_columns() {
                if let Some(layout) = self.layout(table, column).await
                    && plan
                        .layout
                        .as_ref()
                        .is_none_or(|l| layout.overlap > l.overlap)
                {
                    plan.layout = Some(layout);
                }
            }
        }

        // A cron schedule runs every allowed operation.
        let mut scheduled = false;
        if let Some(schedule) = &resolved.policy.schedule {
            match parse_cron(schedule) {
                Ok(cron) => {
                    let last = lock(&self.last_cron)
                        .get(name)
                        .copied()
                        .unwrap_or(self.started_ms);
                    if cron_due(&cron, tz, last, now) {
                        scheduled = true;
                        if act {
                            lock(&self.last_cron).insert(name.to_owned(), now);
                        }
                    }
                }
                Err(e) => plan.waiting = Some(format!("schedule: {e}")),
            }
        }
        if scheduled {
            let a = &mut plan.assessment;
            a.operations = Operation::ALL
                .into_iter()
                .filter(|op| resolved.allows(*op))
                .collect();
            a.started_by = "schedule".to_owned();
            a.reasons.push(format!(
                "schedule `{}` ({}) is due",
                resolved.policy.schedule.as_deref().unwrap_or_default(),
                tz
            ));
            if let Some(order) = &order {
                a.sort_by.clone_from(&order.columns);
                a.zorder = order.zorder;
            }
            a.estimated_bytes = detail.signals.data_bytes;
            // Scheduled work outranks anything triggered.
            a.score = f64::MAX;
        } else if mode == Mode::Adaptive {
            plan.assessment = planner::assess(&Inputs {
                table: name,
                detail,
                heat: heat.as_ref(),
                policy: &resolved,
                order: order.as_ref(),
                layout: plan.layout.as_ref(),
                now_ms: now,
            });
            if let Some(window) = &resolved.policy.window
                && !plan.assessment.operations.is_empty()
            {
                match Window::parse(window) {
                    Ok(w) if !w.contains(tz, now) => {
                        plan.waiting =
                            Some(format!("outside the maintenance window {window} ({tz})"));
                    }
                    Ok(_) => {}
                    Err(e) => plan.waiting = Some(format!("window: {e}")),
                }
            }
        } else if !matches!(mode, Mode::Scheduled) {
            plan.waiting = Some(format!("mode is {mode:?}").to_lowercase());
        }
        // Budgets hold back compaction only; metadata work still runs.
        if plan.assessment.operations.contains(&Operation::Compact) {
            let estimate = plan.assessment.estimated_bytes;
            let global = self
                .config
                .max_bytes_per_hour
                .map(|b| (b, self.rewritten_last_hour(now, None)));
            let local = resolved
                .policy
                .max_bytes_per_hour
                .map(|b| (b.0, self.rewritten_last_hour(now, Some(name))));
            for (limit, used) in [global, local].into_iter().flatten() {
                if used + estimate > limit && used > 0 {
                    plan.assessment
                        .operations
                        .retain(|o| *o != Operation::Compact);
                    plan.assessment.reasons.push(format!(
                        "compaction waits: {used} of {limit} bytes per hour used, {estimate} more needed"
                    ));
                    break;
                }
            }
        }
        if !plan.assessment.operations.is_empty() && lock(&self.running).contains(name) {
            plan.waiting = Some("a job is running on this table".to_owned());
        }
        plan
    }

    async fn layout(&self, table: &iceberg::table::Table, column: &str) -> Option<Layout> {
        let key = (
            table.metadata_location().unwrap_or_default().to_owned(),
            column.to_owned(),
        );
        if let Some(layout) = lock(&self.layouts).get(&key) {
            return Some(layout.clone());
        }
        match planner::layout(table, column).await {
            Ok(Some(layout)) => {
                let mut cache = lock(&self.layouts);
                if cache.len() > 1024 {
                    cache.clear();
                }
                cache.insert(key, layout.clone());
                Some(layout)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, column, "cannot measure the layout");
                None
            }
        }
    }

    /// One pass: plan every table, correct drift, run the due jobs best
    /// first. Returns what ran.
    ///
    /// # Errors
    ///
    /// When the catalogs cannot be listed; a failing job is reported in its
    /// outcome (and the audit trail), not here.
    pub async fn tick(&self) -> Result<Vec<JobOutcome>> {
        let _pass = self.pass.lock().await;
        let now = self.clock.now_ms();
        let mut jobs = Vec::new();
        for (index, name, table, detail) in self.tables().await? {
            let plan = self
                .plan_table(index, &name, &table, &detail, now, true)
                .await;
            if plan.waiting.is_none() && !plan.assessment.operations.is_empty() {
                jobs.push((index, table.identifier().clone(), plan.assessment));
            }
        }
        jobs.sort_by(|a, b| b.2.score.total_cmp(&a.2.score));
        let outcomes = futures::stream::iter(jobs)
            .map(|(index, ident, assessment)| self.run_job(index, ident, assessment))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        Ok(outcomes)
    }

    async fn run_job(&self, index: usize, ident: TableIdent, job: Assessment) -> JobOutcome {
        let name = job.table.clone();
        if !lock(&self.running).insert(name.clone()) {
            return JobOutcome {
                table: name,
                started_by: job.started_by,
                reports: Vec::new(),
                error: Some("a job is already running on this table".to_owned()),
            };
        }
        let target = &self.targets[index];
        let resolved = self.resolve(&name);
        let p = &resolved.policy;
        let request = Request {
            operations: job.operations.clone(),
            expire: ExpireOptions {
                older_than: p.expire.older_than,
                retain_last: p.expire.retain_last,
            },
            orphans: OrphanOptions {
                older_than: p.orphans.older_than,
            },
            compact: CompactOptions {
                strategy: if job.sort_by.is_empty() {
                    Strategy::Binpack
                } else if job.zorder {
                    Strategy::ZOrder(job.sort_by.clone())
                } else {
                    Strategy::Sort(job.sort_by.clone())
                },
                target_file_size: p.compact.target_file_size.map(|b| b.0),
                min_input_files: p.compact.min_input_files,
                rewrite_all: job.rewrite_all,
                ..CompactOptions::default()
            },
            manifests: ManifestOptions {
                target_size: p.manifests.target_size.map(|b| b.0),
            },
            dry_run: false,
            started_by: if job.started_by.is_empty() {
                "adaptive".to_owned()
            } else {
                job.started_by.clone()
            },
        };
        tracing::info!(table = %name, operations = ?job.operations, sort_by = ?job.sort_by, reasons = ?job.reasons, "maintenance job starting");
        let result = maintain_table(target, &ident, &request).await;
        let mut outcome = JobOutcome {
            table: name.clone(),
            started_by: request.started_by.clone(),
            reports: Vec::new(),
            error: None,
        };
        match result {
            Ok(reports) => {
                let bytes: u64 = reports
                    .iter()
                    .filter(|r| r.operation == Operation::Compact)
                    .map(|r| r.outcome.bytes_removed)
                    .sum();
                if bytes > 0 {
                    lock(&self.rewritten).push_back((self.clock.now_ms(), name.clone(), bytes));
                }
                if !job.sort_by.is_empty() && !job.zorder && p.compact.set_sort_order == Some(true)
                {
                    let set = async {
                        let table = target
                            .catalog
                            .load_table(&ident)
                            .await
                            .map_err(|e| crate::commit::iceberg_error(&ident, e))?;
                        properties::set_default_sort_order(
                            &table,
                            target.committer.as_ref(),
                            &job.sort_by,
                        )
                        .await
                    };
                    if let Err(e) = set.await {
                        tracing::warn!(table = %name, error = %e, "could not set the chosen sort order");
                    }
                }
                tracing::info!(table = %name, "maintenance job finished");
                outcome.reports = reports;
            }
            Err(e) => {
                tracing::warn!(table = %name, error = %e, "maintenance job failed");
                outcome.error = Some(e.to_string());
            }
        }
        lock(&self.running).remove(&name);
        outcome
    }

    /// Whether any table could get maintenance by itself: the base mode or a
    /// policy is scheduled or adaptive. Otherwise passes are skipped (their
    /// inventory refresh would be wasted work).
    fn active(&self) -> bool {
        let automatic = |p: &Policy| {
            matches!(p.mode, Some(Mode::Scheduled | Mode::Adaptive)) || p.schedule.is_some()
        };
        automatic(&self.config.base) || self.policies().iter().any(|(_, p)| automatic(p))
    }

    /// Passes every `interval` until `cancel`; a failed pass is logged and
    /// the next one tries again.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once; let the daemon finish starting.
        tick.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.active() {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                result = self.tick() => match result {
                    Ok(jobs) if !jobs.is_empty() => tracing::info!(jobs = jobs.len(), "maintenance pass done"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "maintenance pass failed"),
                },
            }
        }
    }
}
