//! The protocol-independent session layer: per-connection state and the
//! execution of one statement, shared by every front end.
//!
//! A front end decodes its protocol into SQL text (and parameters), hands it to
//! [`Session::run`], and encodes the [`Outcome`] it gets back. Session
//! statements (`SET`, `SHOW`, `RESET`, transaction control) are answered here;
//! everything else goes to the engine. Every statement that reaches the engine
//! is counted in metrics and registered with the drain tracker, so shutdown
//! waits for it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::scalar::ScalarValue;
use floe_dialects::sqlparser::ast::{
    ContextModifier, Expr, Ident, Set, Statement, Value, ValueWithSpan,
};
use floe_dialects::{Analyses, Analysis, StatementKind};
use floe_maintenance::now_ms;
use floe_maintenance::telemetry::{QueryEvent, QueryOutcome, TelemetrySender};
use floe_router::engine::{
    BatchStream, MYSQL_SESSION_SETTINGS, MySqlRows, POSTGRES_SESSION_SETTINGS, Prepared,
    QueryOutput, Request, ScanStats,
};
use floe_router::routing::{Explanation, Pinned};
use floe_router::{RouteContext, Router, Strategy};
use futures::Stream;
use std::future::Future;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::{Error, Result};
use crate::metrics::{self, Protocol};
use crate::shutdown::{Drain, DrainGuard};

/// What every session of the daemon shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Routes statements to engines.
    pub router: Arc<Router>,
    /// Tracks running statements so shutdown can wait for them.
    pub drain: Drain,
    /// `server.statement_timeout`; zero means none.
    pub statement_timeout: Duration,
    /// Where every statement that reached an engine is reported, when the
    /// maintenance engine listens.
    pub telemetry: Option<TelemetrySender>,
    /// Counts DDL statements run through this daemon: a statement planned
    /// before one may describe a table that changed since.
    pub schema_epoch: Arc<AtomicU64>,
    /// Simple-protocol statements analysed by shape: a text of a shape seen
    /// before is not parsed again.
    pub analyses: Arc<Analyses>,
}

/// Statement shapes whose analysis the front ends keep.
pub const ANALYSED_SHAPES: usize = 4096;

impl Shared {
    /// Runs a statement Floe itself issues (catalog listings for `USE`,
    /// Flight SQL metadata), routed like a client's but outside any session.
    ///
    /// # Errors
    ///
    /// As [`Router::execute`].
    pub async fn execute_internal(
        &self,
        protocol: Protocol,
        analysis: &Analysis,
    ) -> Result<QueryOutput> {
        let ctx = RouteContext {
            protocol: protocol.as_str(),
            ..RouteContext::default()
        };
        Ok(self
            .router
            .execute(&ctx, Request::new(analysis))
            .await?
            .output)
    }
}

/// Where a session stands with respect to transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Autocommit: no transaction block is open.
    Idle,
    /// Inside `BEGIN ... COMMIT`.
    InBlock,
    /// A statement failed inside the block; only `ROLLBACK` (or `COMMIT`,
    /// which then rolls back) is accepted.
    Failed,
}

/// The result of one statement, for a front end to encode.
pub enum Outcome {
    /// Rows, streamed.
    Rows {
        /// The schema of every batch.
        schema: SchemaRef,
        /// The batches; dropping the stream cancels the statement.
        stream: BatchStream,
    },
    /// A command with its tag and, where meaningful, the rows it touched.
    Command {
        /// The command name (`INSERT`, `CREATE TABLE`, `SET`, ...).
        command: &'static str,
        /// Rows touched.
        rows: Option<u64>,
    },
    /// `BEGIN` opened a transaction block.
    TransactionStart,
    /// `COMMIT` or `ROLLBACK` closed it; the command is the tag to send.
    TransactionEnd {
        /// `COMMIT` or `ROLLBACK`.
        command: &'static str,
    },
}

/// A warning PostgreSQL sends with a statement that still succeeds (a
/// `COMMIT` with no transaction open, say): the PostgreSQL front end sends it
/// as a `NoticeResponse` before the statement's own response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// SQLSTATE.
    pub code: &'static str,
    /// Message, as PostgreSQL words it.
    pub message: &'static str,
}

/// PostgreSQL's warning for a transaction statement outside a block.
const NO_TRANSACTION: Notice = Notice {
    code: "25P01",
    message: "there is no transaction in progress",
};

/// What a statement's plan depends on besides its text: the session's
/// routing state and the daemon's DDL count. A plan made under one state is
/// reused only under an equal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanState {
    schema: Option<String>,
    /// The session's settings generation ([`Session::settings_changed`]):
    /// comparing whole settings maps was ~3.6 k instructions per `Parse`
    /// (benchmarks/RESULTS.md, session 20).
    settings_version: u64,
    pinned: Option<String>,
    schema_epoch: u64,
}

/// One client connection's state.
#[derive(Debug)]
pub struct Session {
    shared: Shared,
    protocol: Protocol,
    settings: BTreeMap<String, String>,
    txn: TxnState,
    /// Where a cancel request finds the running statement's token.
    cancel: Arc<CancelSlot>,
    /// Set by a result stream that failed while the front end sent it: the
    /// transaction block has failed, though `run` returned successfully.
    stream_failed: Arc<AtomicBool>,
    /// The current schema (MySQL's current database) unqualified table names
    /// resolve against; `None` is the engine's default.
    schema: Option<String>,
    /// The authenticated user, for routing rules.
    user: String,
    /// The engine transaction a `BEGIN` block runs in, opened by the block's
    /// first statement that reaches an engine.
    pinned: Option<Pinned>,
    /// The PostgreSQL front end sends the next results in text format: a
    /// PostgreSQL engine may pass its rows through unconverted. Set by the
    /// front end before each statement it runs.
    pg_text: bool,
    /// How the MySQL front end sends the next result's rows, when a MySQL
    /// engine's own rows may go to the client as they are. Set by the front
    /// end before each statement it runs.
    mysql_rows: Option<MySqlRows>,
    /// The settings of [`forwarded_names`] this session `SET`, sorted by
    /// name: an engine of the session's own server kind applies them on the
    /// connection that runs the session's statement.
    forwarded: Vec<(String, String)>,
    /// A PostgreSQL transaction block's settings as it began and as its
    /// commit leaves them; taken at the block's first change of a setting.
    block_settings: Option<Box<BlockSettings>>,
    /// Warnings of the statement that last ran, for the front end to send.
    notices: Vec<Notice>,
    /// Counts changes of `settings` (see [`PlanState`]).
    settings_version: u64,
    /// The settings the client's startup message chose, sorted by name:
    /// what a reset goes back to ([`Session::apply_startup`]).
    startup: Vec<(String, String)>,
}

/// What a PostgreSQL transaction block does to a session's settings when it
/// ends: a rollback undoes every `SET` made in it, a commit keeps them but
/// for `SET LOCAL`s, which last only until the block ends. (MySQL's `SET`
/// is not transactional.)
///
/// A savepoint covers the settings too: `ROLLBACK TO SAVEPOINT` puts back
/// those in force when it was taken, `RELEASE` keeps what was set since.
#[derive(Debug)]
struct BlockSettings {
    /// The settings and forwarded settings when the block began.
    at_begin: Settings,
    /// The same after the block's session-level changes only.
    at_commit: Settings,
    /// The block's open savepoints, oldest first: the name (as PostgreSQL
    /// folds it), the settings in force when it was taken and `at_commit`
    /// then.
    savepoints: Vec<(String, Settings, Settings)>,
}

/// A session's settings and the part its engines apply.
type Settings = (BTreeMap<String, String>, Vec<(String, String)>);

/// The settings a session's `SET` passes on to the engines of its own
/// server's kind (see `floe_router::engine`).
fn forwarded_names(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::MySql => MYSQL_SESSION_SETTINGS,
        Protocol::Postgres | Protocol::FlightSql => POSTGRES_SESSION_SETTINGS,
    }
}

/// The cancellation token of a session's running statement, shared with the
/// front end's cancel-request handler.
#[derive(Debug, Default)]
pub struct CancelSlot(std::sync::Mutex<CancellationToken>);

impl CancelSlot {
    /// Cancels the statement running now, if any.
    pub fn cancel(&self) {
        if let Ok(token) = self.0.lock() {
            token.cancel();
        }
    }

    /// A fresh token for the next statement: a cancel request aimed at an
    /// earlier statement must not hit this one.
    fn renew(&self) -> CancellationToken {
        let token = CancellationToken::new();
        if let Ok(mut slot) = self.0.lock() {
            *slot = token.clone();
        }
        token
    }
}

/// Session parameters PostgreSQL clients read or set, with their defaults. A
/// `SET` of a name not listed here (and without a dot) is rejected as
/// PostgreSQL rejects it.
const POSTGRES_SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "off"),
    ("extra_float_digits", "1"),
    ("idle_in_transaction_session_timeout", "0"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("jit", "off"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("lc_messages", "C"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("lc_time", "C"),
    ("lock_timeout", "0"),
    ("max_identifier_length", "63"),
    ("row_security", "on"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", "16.6"),
    ("server_version_num", "160006"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("synchronous_commit", "on"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
    ("work_mem", "4MB"),
];

/// System variables MySQL clients and connectors read (`SELECT @@x`, `SHOW
/// VARIABLES`) or set at connect time, with their defaults. A `SET` of a name
/// not listed here is rejected as MySQL rejects it (error 1193).
const MYSQL_SETTINGS: &[(&str, &str)] = &[
    ("auto_increment_increment", "1"),
    ("auto_increment_offset", "1"),
    ("autocommit", "1"),
    ("character_set_client", "utf8mb4"),
    ("character_set_connection", "utf8mb4"),
    ("character_set_database", "utf8mb4"),
    ("character_set_results", "utf8mb4"),
    ("character_set_server", "utf8mb4"),
    ("collation_connection", "utf8mb4_general_ci"),
    ("collation_database", "utf8mb4_general_ci"),
    ("collation_server", "utf8mb4_general_ci"),
    ("default_storage_engine", "Iceberg"),
    ("foreign_key_checks", "1"),
    ("init_connect", ""),
    ("interactive_timeout", "28800"),
    ("license", "Apache-2.0"),
    ("lower_case_table_names", "0"),
    ("max_allowed_packet", "67108864"),
    ("max_execution_time", "0"),
    ("net_buffer_length", "16384"),
    ("net_read_timeout", "30"),
    ("net_write_timeout", "60"),
    ("performance_schema", "0"),
    ("query_cache_size", "0"),
    ("query_cache_type", "OFF"),
    ("session_track_schema", "1"),
    ("session_track_system_variables", ""),
    ("session_track_transaction_info", "OFF"),
    ("sql_auto_is_null", "0"),
    (
        "sql_mode",
        "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
    ),
    ("sql_safe_updates", "0"),
    ("sql_select_limit", "18446744073709551615"),
    ("system_time_zone", "UTC"),
    ("time_zone", "+00:00"),
    ("transaction_isolation", "READ-COMMITTED"),
    ("transaction_read_only", "0"),
    ("tx_isolation", "READ-COMMITTED"),
    ("tx_read_only", "0"),
    ("unique_checks", "1"),
    ("version", crate::VERSION_MYSQL),
    ("version_comment", "Floe"),
    ("wait_timeout", "28800"),
];

/// The settings a session of `protocol` starts with.
fn default_settings(protocol: Protocol) -> &'static [(&'static str, &'static str)] {
    match protocol {
        Protocol::MySql => MYSQL_SETTINGS,
        Protocol::Postgres | Protocol::FlightSql => POSTGRES_SETTINGS,
    }
}

impl Session {
    /// A new session for a client of `protocol`.
    pub fn new(shared: Shared, protocol: Protocol) -> Self {
        Session {
            shared,
            protocol,
            settings: default_settings(protocol)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            txn: TxnState::Idle,
            cancel: Arc::new(CancelSlot::default()),
            stream_failed: Arc::new(AtomicBool::new(false)),
            schema: None,
            user: String::new(),
            pinned: None,
            pg_text: false,
            mysql_rows: None,
            forwarded: Vec::new(),
            block_settings: None,
            notices: Vec::new(),
            settings_version: 0,
            startup: Vec::new(),
        }
    }

    /// Tells the session whether the PostgreSQL front end sends the coming
    /// results in text format (the simple query protocol always does); every
    /// path of that front end that runs a statement sets it first.
    pub fn set_pg_text(&mut self, text: bool) {
        self.pg_text = text && self.protocol == Protocol::Postgres;
    }

    /// Tells the session how the MySQL front end sends the coming result's
    /// rows, if it can send a MySQL server's own (`None`: it cannot, as for
    /// a statement of a multi-statement query); every path of that front
    /// end that runs a statement sets it first.
    pub fn set_mysql_rows(&mut self, rows: Option<MySqlRows>) {
        self.mysql_rows = rows.filter(|_| self.protocol == Protocol::MySql);
    }

    /// Records who the client authenticated as, for routing rules.
    pub fn set_user(&mut self, user: &str) {
        user.clone_into(&mut self.user);
    }

    /// The authenticated user; empty until the front end sets it.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The engine this session's open transaction is pinned to, if any.
    pub fn pinned_engine(&self) -> Option<&str> {
        self.pinned.as_ref().map(Pinned::engine)
    }

    /// The current schema, if one was chosen (`USE db` in MySQL).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Chooses the schema unqualified table names resolve against.
    pub fn set_schema(&mut self, schema: Option<String>) {
        self.schema = schema;
    }

    /// The session's settings, by lower-case name.
    pub fn settings(&self) -> &BTreeMap<String, String> {
        &self.settings
    }

    /// The shared state, for front ends that plan statements themselves.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The transaction state after the last statement, including failures
    /// that happened while its rows were being sent.
    pub fn txn(&mut self) -> TxnState {
        if self.stream_failed.swap(false, Ordering::AcqRel) {
            self.fail_transaction();
        }
        self.txn
    }

    /// Marks the open transaction block failed, after an error the front end
    /// raised itself (a bad parameter, say). Only PostgreSQL has failed blocks:
    /// MySQL carries on with the transaction after an error.
    pub fn fail_transaction(&mut self) {
        if self.txn == TxnState::InBlock && self.protocol == Protocol::Postgres {
            self.txn = TxnState::Failed;
        }
    }

    /// The slot a cancel request for this session goes through.
    pub fn cancel_slot(&self) -> Arc<CancelSlot> {
        Arc::clone(&self.cancel)
    }

    /// The state a plan made now depends on.
    pub fn plan_state(&self) -> PlanState {
        PlanState {
            schema: self.schema.clone(),
            settings_version: self.settings_version,
            pinned: self.pinned_engine().map(str::to_owned),
            schema_epoch: self.shared.schema_epoch.load(Ordering::Relaxed),
        }
    }

    /// Whether a plan made under `state` still holds now (no allocation: this
    /// runs for every `Parse` a connection repeats).
    pub fn plan_still_holds(&self, state: &PlanState) -> bool {
        state.schema_epoch == self.shared.schema_epoch.load(Ordering::Relaxed)
            && state.schema.as_deref() == self.schema.as_deref()
            && state.pinned.as_deref() == self.pinned_engine()
            && state.settings_version == self.settings_version
    }

    /// Plans a statement for the extended protocol's `Parse`/`Describe`, on
    /// the engine this session would run it on: the session's tag, strategy
    /// and engine settings, and an open transaction's engine, decide it as
    /// they decide where the statement runs.
    ///
    /// # Errors
    ///
    /// A bad routing setting, or the engine's planning error.
    pub async fn prepare(&mut self, analysis: &Analysis) -> Result<Prepared> {
        // A savepoint statement is described as the command it is, whichever
        // engine runs it.
        if analysis.explain_route
            || handled_locally(analysis)
            || savepoint_command(analysis).is_some()
        {
            return Ok(local_schema(analysis).map_or_else(Prepared::command, Prepared::rows));
        }
        let ctx = route_context(
            &self.user,
            self.protocol,
            self.schema.as_deref(),
            &self.settings,
            &self.forwarded,
        )?;
        let router = &self.shared.router;
        Ok(match &mut self.pinned {
            // On the block's own connection: see `Router::prepare_pinned`.
            Some(pinned) => router.prepare_pinned(&ctx, pinned, analysis).await?,
            None => router.prepare(&ctx, analysis).await?,
        })
    }

    /// Runs one statement.
    ///
    /// # Errors
    ///
    /// Why it failed; inside a transaction block the block is then failed.
    pub async fn run(
        &mut self,
        analysis: &Analysis,
        params: &[ScalarValue],
        prepared: Option<&Prepared>,
    ) -> Result<Outcome> {
        self.notices.clear();
        let result = self.run_inner(analysis, params, prepared).await;
        if analysis.kind == StatementKind::Ddl {
            // Whatever the outcome: a failed DDL may have changed something.
            self.shared.schema_epoch.fetch_add(1, Ordering::Relaxed);
        }
        if result.is_err() {
            self.fail_transaction();
        }
        result
    }

    async fn run_inner(
        &mut self,
        analysis: &Analysis,
        params: &[ScalarValue],
        prepared: Option<&Prepared>,
    ) -> Result<Outcome> {
        if self.txn() == TxnState::Failed
            && !matches!(
                *analysis.statement,
                Statement::Rollback { .. } | Statement::Commit { .. }
            )
        {
            return Err(Error::InFailedTransaction);
        }
        if analysis.explain_route {
            return self.explain_route(analysis);
        }
        // Only transaction control reads the tree here: a query's may not
        // be built (`floe_dialects::Tree`).
        if analysis.kind == StatementKind::Transaction
            && let Statement::Commit { .. }
            | Statement::Rollback {
                savepoint: None, ..
            } = *analysis.statement
            && let Some(pinned) = self.pinned.take()
        {
            let commit = matches!(*analysis.statement, Statement::Commit { .. })
                && self.txn == TxnState::InBlock;
            let ended = if commit {
                pinned.commit().await
            } else {
                pinned.rollback().await
            };
            if let Err(e) = ended {
                // The engine ended the transaction one way or the other;
                // PostgreSQL's failed COMMIT rolls back.
                self.end_block(false);
                return Err(e.into());
            }
        }
        if handled_locally(analysis) {
            return self.run_locally(analysis);
        }
        if let Some(command) = savepoint_command(analysis)
            && self.txn == TxnState::Idle
        {
            // MySQL takes a SAVEPOINT with no transaction open (autocommit)
            // and forgets it; PostgreSQL refuses all three outside a block.
            if self.protocol == Protocol::MySql && command == "SAVEPOINT" {
                return Ok(Outcome::Command {
                    command,
                    rows: None,
                });
            }
            return Err(Error::NoTransactionBlock(command));
        }
        let cancel = self.cancel.renew();
        let timeout = self.statement_timeout();
        let guard = self.shared.drain.enter().ok_or(Error::ShuttingDown)?;
        let started = Instant::now();
        let started_ms = now_ms();
        let scan = self
            .shared
            .telemetry
            .as_ref()
            .map(|_| Arc::new(ScanStats::default()));
        let request = Request {
            statement: analysis,
            params,
            prepared,
            schema: self.schema.as_deref(),
            scan: scan.as_ref(),
            pg_text: self.pg_text,
            mysql_rows: self.mysql_rows,
            settings: &self.forwarded,
        };
        let ctx = route_context(
            &self.user,
            self.protocol,
            self.schema.as_deref(),
            &self.settings,
            &self.forwarded,
        )?;
        let router = &self.shared.router;
        // A failed block gets here only with ROLLBACK TO SAVEPOINT, which runs
        // on the block's engine like the statements before it.
        let in_block = self.txn != TxnState::Idle;
        let pinned = &mut self.pinned;
        // Every future awaited here is part of each front end's statement
        // future, which is moved (copied, all of it) once per statement: the
        // engine's future is built right in `select!`'s own storage (a `let`
        // before it, or a generic timeout wrapper taking it as an argument,
        // would each hold another copy of it), and the rarer transaction
        // block's is boxed.
        let mut deadline = (!timeout.is_zero()).then(|| Box::pin(tokio::time::sleep(timeout)));
        let routed = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(Error::Engine(floe_router::Error::Cancelled)),
            () = async {
                match deadline.as_mut() {
                    Some(deadline) => deadline.await,
                    None => std::future::pending().await,
                }
            } => Err(Error::Engine(floe_router::Error::Timeout)),
            routed = async move {
                if !in_block {
                    return router.execute(&ctx, request).await;
                }
                // A transaction block runs on one engine: the one its first
                // statement routes to. Nothing in it is retried elsewhere.
                Box::pin(async move {
                    let pinned = match pinned {
                        Some(pinned) => pinned,
                        None => pinned.insert(router.begin(&ctx, analysis).await?),
                    };
                    router.execute_pinned(pinned, request).await
                })
                .await
            } => routed.map_err(Error::from),
        };
        if routed.is_ok() && savepoint_command(analysis).is_some() {
            if self.txn == TxnState::Failed {
                // ROLLBACK TO SAVEPOINT brought the failed block back.
                self.txn = TxnState::InBlock;
            }
            self.savepoint_settings(&analysis.statement);
        }
        let kind = analysis.kind;
        let (output, mut report) = match routed {
            Ok(routed) => {
                let report = self.shared.telemetry.clone().map(|sender| Report {
                    sender,
                    scan,
                    event: QueryEvent {
                        at_ms: started_ms,
                        protocol: self.protocol.as_str(),
                        user: self.user.clone(),
                        tag: self
                            .settings
                            .get("floe.tag")
                            .filter(|t| !t.is_empty())
                            .cloned(),
                        fingerprint: routed.touched.fingerprint,
                        sql: analysis.sql().to_owned(),
                        dialect: analysis.dialect,
                        tables: routed.touched.tables,
                        columns: routed.touched.columns,
                        engine: routed.engine,
                        latency: Duration::ZERO,
                        rows: 0,
                        bytes: 0,
                        scanned_files: None,
                        scanned_bytes: None,
                        outcome: QueryOutcome::Ok,
                    },
                });
                (Ok(routed.output), report)
            }
            Err(e) => (Err(e), None),
        };
        match output {
            Err(e) => {
                metrics::query_finished(
                    self.protocol,
                    kind,
                    metrics::Outcome::Error,
                    started.elapsed(),
                    0,
                    0,
                );
                Err(e)
            }
            Ok(QueryOutput::Command { rows }) => {
                metrics::query_finished(
                    self.protocol,
                    kind,
                    metrics::Outcome::Ok,
                    started.elapsed(),
                    rows.unwrap_or(0),
                    0,
                );
                if let Some(report) = report.take() {
                    report.send(
                        metrics::Outcome::Ok,
                        started.elapsed(),
                        rows.unwrap_or(0),
                        0,
                    );
                }
                Ok(Outcome::Command {
                    command: analysis.command,
                    rows,
                })
            }
            Ok(QueryOutput::Rows { schema, stream }) => Ok(Outcome::Rows {
                schema,
                stream: Box::pin(Metered {
                    inner: stream,
                    protocol: self.protocol,
                    kind,
                    started,
                    cancelled: Box::pin(cancel.cancelled_owned()),
                    failed: Arc::clone(&self.stream_failed),
                    timeout: remaining(timeout, started).map(|d| Box::pin(tokio::time::sleep(d))),
                    rows: 0,
                    bytes: 0,
                    done: false,
                    report,
                    _guard: guard,
                }),
            }),
        }
    }

    fn run_locally(&mut self, analysis: &Analysis) -> Result<Outcome> {
        match &*analysis.statement {
            Statement::StartTransaction { .. } => {
                // PostgreSQL warns and stays in the block on a nested BEGIN.
                if self.txn == TxnState::Idle {
                    self.block_settings = None;
                } else {
                    self.warn(Notice {
                        code: "25001",
                        message: "there is already a transaction in progress",
                    });
                }
                self.txn = TxnState::InBlock;
                Ok(Outcome::TransactionStart)
            }
            Statement::Commit { .. } => {
                // Outside a block PostgreSQL warns and answers COMMIT.
                if self.txn == TxnState::Idle {
                    self.warn(NO_TRANSACTION);
                }
                let committed = self.txn != TxnState::Failed;
                self.end_block(committed);
                Ok(Outcome::TransactionEnd {
                    command: if committed { "COMMIT" } else { "ROLLBACK" },
                })
            }
            Statement::Rollback { .. } => {
                if self.txn == TxnState::Idle {
                    self.warn(NO_TRANSACTION);
                }
                self.end_block(false);
                Ok(Outcome::TransactionEnd {
                    command: "ROLLBACK",
                })
            }
            Statement::Set(set) => {
                self.set(set)?;
                Ok(Outcome::Command {
                    command: "SET",
                    rows: None,
                })
            }
            Statement::Reset(reset) => {
                use floe_dialects::sqlparser::ast::Reset;
                match &reset.reset {
                    Reset::ALL => {
                        let mut names: Vec<String> = self.settings.keys().cloned().collect();
                        if let Some(block) = &self.block_settings {
                            names.extend(block.at_commit.0.keys().cloned());
                        }
                        for name in names {
                            self.change(&name, None, false);
                        }
                    }
                    Reset::ConfigurationParameter(name) => {
                        let name = normalise(&name.to_string());
                        if !name.contains('.') && default_of(self.protocol, &name).is_none() {
                            return Err(Error::UnknownSetting(name));
                        }
                        self.change(&name, None, false);
                    }
                }
                Ok(Outcome::Command {
                    command: "RESET",
                    rows: None,
                })
            }
            Statement::ShowVariable { variable } => {
                let name = show_name(variable);
                let batch = if name == "all" {
                    let names: Vec<&str> = self.settings.keys().map(String::as_str).collect();
                    let values: Vec<&str> = self.settings.values().map(String::as_str).collect();
                    RecordBatch::try_new(
                        show_all_schema(),
                        vec![
                            Arc::new(StringArray::from(names)),
                            Arc::new(StringArray::from(values)),
                        ],
                    )
                } else {
                    let value = self
                        .settings
                        .get(&name)
                        .ok_or_else(|| Error::UnknownSetting(name.clone()))?;
                    RecordBatch::try_new(
                        show_schema(&name),
                        vec![Arc::new(StringArray::from(vec![value.as_str()]))],
                    )
                };
                let batch = batch
                    .map_err(|e| Error::Engine(floe_router::Error::Internal(e.to_string())))?;
                let schema = batch.schema();
                Ok(Outcome::Rows {
                    schema,
                    stream: Box::pin(futures::stream::iter([Ok(batch)])),
                })
            }
            other => Err(Error::Engine(floe_router::Error::Internal(format!(
                "statement routed to the session layer by mistake: {other}"
            )))),
        }
    }

    /// `EXPLAIN ROUTE <statement>`: one row per engine with its health, load,
    /// predictions and rank, the chosen one first, with the reason.
    fn explain_route(&self, analysis: &Analysis) -> Result<Outcome> {
        let ctx = route_context(
            &self.user,
            self.protocol,
            self.schema.as_deref(),
            &self.settings,
            &self.forwarded,
        )?;
        let explanation = self.shared.router.explain(&ctx, analysis)?;
        let batch = explain_batch(&explanation, self.pinned_engine())
            .map_err(|e| Error::Engine(floe_router::Error::Internal(e.to_string())))?;
        Ok(Outcome::Rows {
            schema: batch.schema(),
            stream: Box::pin(futures::stream::iter([Ok(batch)])),
        })
    }

    /// The session's `statement_timeout` (PostgreSQL) or `max_execution_time`
    /// (MySQL, in milliseconds) if set, otherwise the server's.
    fn statement_timeout(&self) -> Duration {
        let name = match self.protocol {
            Protocol::MySql => "max_execution_time",
            Protocol::Postgres | Protocol::FlightSql => "statement_timeout",
        };
        self.settings
            .get(name)
            .and_then(|v| parse_pg_duration(v))
            .filter(|d| !d.is_zero())
            .unwrap_or(self.shared.statement_timeout)
    }

    fn set(&mut self, set: &Set) -> Result<()> {
        // (name, value, whether the SET is LOCAL to the transaction block)
        let assignments: Vec<(String, String, bool)> = match set {
            Set::SingleAssignment {
                scope: Some(ContextModifier::Global),
                variable,
                ..
            } => {
                return Err(Error::Engine(floe_router::Error::Unsupported(format!(
                    "SET GLOBAL {variable}: Floe settings are per session"
                ))));
            }
            Set::SingleAssignment {
                scope,
                variable,
                values,
                ..
            } => vec![(
                variable.to_string(),
                values_text(values),
                *scope == Some(ContextModifier::Local),
            )],
            Set::SetTimeZone { value, local } => {
                vec![("timezone".to_owned(), expr_text(value), *local)]
            }
            Set::SetNames { charset_name, .. } if self.protocol == Protocol::MySql => {
                let charset = charset_name.value.clone();
                vec![
                    ("character_set_client".to_owned(), charset.clone(), false),
                    (
                        "character_set_connection".to_owned(),
                        charset.clone(),
                        false,
                    ),
                    ("character_set_results".to_owned(), charset, false),
                ]
            }
            Set::SetNames { charset_name, .. } => {
                vec![(
                    "client_encoding".to_owned(),
                    charset_name.value.clone(),
                    false,
                )]
            }
            Set::MultipleAssignments { assignments } => assignments
                .iter()
                .map(|a| {
                    (
                        a.name.to_string(),
                        expr_text(&a.value),
                        a.scope == Some(ContextModifier::Local),
                    )
                })
                .collect(),
            // SET TRANSACTION, SET ROLE, SET SESSION AUTHORIZATION: accepted, as
            // the embedded engine has one isolation level and no roles.
            _ => Vec::new(),
        };
        for (name, value, local) in assignments {
            self.assign(&normalise(&name), value, local)?;
        }
        Ok(())
    }

    /// One assignment of a `SET` (or of a client's startup message) to
    /// setting `name` (normalised), after checking the name and the value.
    fn assign(&mut self, name: &str, value: String, local: bool) -> Result<()> {
        let name = name.to_owned();
        // MySQL `@user` variables hold anything; `floe.*` and other dotted
        // names are extension settings, as in PostgreSQL.
        let user_variable = self.protocol == Protocol::MySql && name.starts_with('@');
        if !user_variable && !name.contains('.') && default_of(self.protocol, &name).is_none() {
            return Err(Error::UnknownSetting(name));
        }
        if matches!(name.as_str(), "statement_timeout" | "max_execution_time")
            && parse_pg_duration(&value).is_none()
        {
            return Err(Error::InvalidValue { name, value });
        }
        let valid = match name.as_str() {
            "floe.strategy" => value.is_empty() || value.parse::<Strategy>().is_ok(),
            "floe.engine" => value.is_empty() || self.shared.router.engine(&value).is_some(),
            _ => true,
        };
        if !valid {
            return Err(Error::InvalidValue { name, value });
        }
        // `SET x TO DEFAULT` (and `SET TIME ZONE LOCAL`) is a reset.
        let reset = !user_variable
            && (value.eq_ignore_ascii_case("default")
                || (name == "timezone" && value.eq_ignore_ascii_case("local")));
        self.change(&name, (!reset).then_some(value.as_str()), local);
        Ok(())
    }

    /// The value the client's startup message gave setting `name`, if any.
    fn started(&self, name: &str) -> Option<String> {
        self.startup
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.startup[i].1.clone())
    }

    /// Applies the settings a PostgreSQL client's startup message chose —
    /// its parameters (`application_name`, `DateStyle`, `TimeZone`,
    /// `extra_float_digits`, JDBC's `search_path` for `currentSchema`, ...)
    /// and the `-c name=value` switches of its `options` (libpq's
    /// `options='-c search_path=sales'`) — as if `SET`, and makes each what
    /// `RESET` goes back to, as PostgreSQL does. A setting Floe does not
    /// know or a value it refuses is left out and logged (the connection is
    /// already accepted by then). `user` and `database` are the login's;
    /// `client_encoding` is always UTF-8 here.
    pub fn apply_startup<'a>(&mut self, parameters: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut direct: Vec<(&str, &str)> = Vec::new();
        let mut chosen: Vec<(String, String)> = Vec::new();
        for (name, value) in parameters {
            match name {
                "options" => chosen.extend(startup_options(value)),
                "user" | "database" | "replication" | "client_encoding" => {}
                _ => direct.push((name, value)),
            }
        }
        // PostgreSQL reads `options` first: a parameter of its own wins.
        direct.sort_unstable();
        chosen.extend(
            direct
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
        for (name, value) in chosen {
            let name = normalise(&name);
            match self.assign(&name, value.clone(), false) {
                // `name=DEFAULT` chose nothing.
                Ok(()) if value.eq_ignore_ascii_case("default") => {}
                Ok(()) => match self.startup.binary_search_by(|(k, _)| k.cmp(&name)) {
                    Ok(i) => self.startup[i].1 = value,
                    Err(i) => self.startup.insert(i, (name, value)),
                },
                Err(e) => {
                    tracing::warn!(setting = %name, error = %e, "a client's startup setting was left out");
                }
            }
        }
    }

    /// Sets `name` to `value`, or resets it (`None`), for the rest of the
    /// session or, when `local`, of the transaction block. In a PostgreSQL
    /// block the change is undone if the block rolls back; a `SET LOCAL`
    /// outside a block does nothing, as in PostgreSQL (which also warns).
    fn change(&mut self, name: &str, value: Option<&str>, local: bool) {
        let protocol = self.protocol;
        // A reset goes back to what the client's startup message chose
        // (which the session's engines then apply too), else the default.
        let started = value.is_none().then(|| self.started(name)).flatten();
        let value = value.or(started.as_deref());
        if protocol != Protocol::MySql && self.txn == TxnState::InBlock {
            let block = self.block_settings();
            if !local {
                let (settings, forwarded) = &mut block.at_commit;
                change_setting(protocol, settings, forwarded, name, value);
            }
        } else if local && protocol != Protocol::MySql {
            self.warn(Notice {
                code: "25P01",
                message: "SET LOCAL can only be used in transaction blocks",
            });
            return;
        }
        change_setting(
            protocol,
            &mut self.settings,
            &mut self.forwarded,
            name,
            value,
        );
        self.settings_changed();
    }

    /// Counts a change of the settings (a plan made before it is made
    /// again: [`PlanState`]), and keeps a PostgreSQL session's current schema that of its
    /// `search_path`, so that the router and the embedded engine resolve an
    /// unqualified name where PostgreSQL would create it: the path's first
    /// schema. The default path leaves the engines' own default (`None`).
    /// MySQL's current schema is the database `USE` chose.
    fn settings_changed(&mut self) {
        self.settings_version += 1;
        if self.protocol == Protocol::MySql {
            return;
        }
        let default = default_of(self.protocol, "search_path");
        self.schema = self
            .settings
            .get("search_path")
            .filter(|path| Some(path.as_str()) != default)
            .and_then(|path| search_path_schema(path));
    }

    /// Records a warning for a PostgreSQL client (MySQL's answers to the
    /// same statements carry none, and Flight SQL has no place for one).
    fn warn(&mut self, notice: Notice) {
        if self.protocol == Protocol::Postgres {
            self.notices.push(notice);
        }
    }

    /// The warnings of the statement that last ran, taken: each is sent once.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The open block's settings record, begun now if the block changed no
    /// setting yet (so the settings now are those it began with).
    fn block_settings(&mut self) -> &mut BlockSettings {
        self.block_settings.get_or_insert_with(|| {
            let now = (self.settings.clone(), self.forwarded.clone());
            Box::new(BlockSettings {
                at_begin: now.clone(),
                at_commit: now,
                savepoints: Vec::new(),
            })
        })
    }

    /// What a savepoint statement the block's engine ran does to the
    /// settings: `SAVEPOINT` records them, `ROLLBACK TO` puts back those it
    /// recorded (the savepoint stays), `RELEASE` forgets the savepoint and
    /// those after it, keeping their changes. A name the block does not hold
    /// changes nothing (the engine refused it already).
    fn savepoint_settings(&mut self, statement: &Statement) {
        if self.protocol == Protocol::MySql {
            return;
        }
        match statement {
            Statement::Savepoint { name } => {
                let now = (self.settings.clone(), self.forwarded.clone());
                let block = self.block_settings();
                let at_commit = block.at_commit.clone();
                block
                    .savepoints
                    .push((savepoint_name(name), now, at_commit));
            }
            Statement::ReleaseSavepoint { name } => {
                if let Some(block) = &mut self.block_settings
                    && let Some(at) = block.savepoint(name)
                {
                    block.savepoints.truncate(at);
                }
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                if let Some(block) = &mut self.block_settings
                    && let Some(at) = block.savepoint(name)
                {
                    block.savepoints.truncate(at + 1);
                    let (_, now, at_commit) = &block.savepoints[at];
                    block.at_commit = at_commit.clone();
                    (self.settings, self.forwarded) = now.clone();
                    self.settings_changed();
                }
            }
            _ => {}
        }
    }

    /// Puts the settings where the ending transaction block leaves them.
    fn end_block(&mut self, committed: bool) {
        self.txn = TxnState::Idle;
        if let Some(block) = self.block_settings.take() {
            let BlockSettings {
                at_begin,
                at_commit,
                ..
            } = *block;
            (self.settings, self.forwarded) = if committed { at_commit } else { at_begin };
            self.settings_changed();
        }
    }
}

impl BlockSettings {
    /// The most recent open savepoint named `name`, as PostgreSQL finds it.
    fn savepoint(&self, name: &Ident) -> Option<usize> {
        let name = savepoint_name(name);
        self.savepoints.iter().rposition(|(n, ..)| *n == name)
    }
}

/// A savepoint's name as PostgreSQL compares it: folded to lower case unless
/// quoted.
fn savepoint_name(name: &Ident) -> String {
    match name.quote_style {
        Some(_) => name.value.clone(),
        None => name.value.to_lowercase(),
    }
}

/// The schema a `search_path` value creates unqualified names in: its first
/// entry that names a schema of the user's (not `$user`, `pg_catalog` or
/// `pg_temp`), unquoted as PostgreSQL reads identifiers.
fn search_path_schema(path: &str) -> Option<String> {
    path.split(',').map(str::trim).find_map(|entry| {
        let name = match entry.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => entry.to_lowercase(),
        };
        let system = name.is_empty()
            || name == "$user"
            || name == "pg_catalog"
            || name.starts_with("pg_temp");
        (!system).then_some(name)
    })
}

/// The default of setting `name` for clients of `protocol`, if it is one.
fn default_of(protocol: Protocol, name: &str) -> Option<&'static str> {
    default_settings(protocol)
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
}

/// The `name=value` settings of a startup message's `options`, split into
/// words as PostgreSQL splits them (at spaces; a backslash takes the next
/// character as it is): `-c name=value`, `-cname=value` or `--name=value`,
/// with `-` in a name read as `_`. Other switches (a server's command-line
/// flags) are not settings and are left out.
fn startup_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_ascii_whitespace() => words.extend(word.take()),
            '\\' => word.get_or_insert_default().extend(chars.next()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let assignment = match word.as_str() {
            "-c" => words.next(),
            w => w
                .strip_prefix("--")
                .or_else(|| w.strip_prefix("-c"))
                .map(str::to_owned),
        };
        if let Some((name, value)) = assignment.as_deref().and_then(|a| a.split_once('=')) {
            settings.push((name.replace('-', "_"), value.to_owned()));
        }
    }
    settings
}

/// Sets (`Some(value)`) or resets (`None`) setting `name` in a session's
/// settings and, if it is one of [`forwarded_names`], in the list its engines
/// apply. A reset setting (the caller has put in what the session started
/// with, if anything) takes its default; one without a default (an
/// extension's `x.y`, a MySQL `@variable`) is removed.
fn change_setting(
    protocol: Protocol,
    settings: &mut BTreeMap<String, String>,
    forwarded: &mut Vec<(String, String)>,
    name: &str,
    value: Option<&str>,
) {
    match value.or_else(|| default_of(protocol, name)) {
        Some(v) => {
            settings.insert(name.to_owned(), v.to_owned());
        }
        None => {
            settings.remove(name);
        }
    }
    if forwarded_names(protocol).binary_search(&name).is_err() {
        return;
    }
    match (
        forwarded.binary_search_by(|(k, _)| k.as_str().cmp(name)),
        value,
    ) {
        (Ok(i), Some(value)) => forwarded[i].1 = value.to_owned(),
        (Err(i), Some(value)) => forwarded.insert(i, (name.to_owned(), value.to_owned())),
        (Ok(i), None) => {
            forwarded.remove(i);
        }
        (Err(_), None) => {}
    }
}

/// The command tag of a savepoint statement (`SAVEPOINT`, `RELEASE`,
/// `ROLLBACK TO`): these run on the transaction block's engine.
fn savepoint_command(analysis: &Analysis) -> Option<&'static str> {
    if analysis.kind != StatementKind::Transaction {
        return None;
    }
    match &*analysis.statement {
        Statement::Savepoint { .. } => Some("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Some("RELEASE"),
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Some("ROLLBACK"),
        _ => None,
    }
}

/// Whether the session layer answers this statement without an engine.
fn handled_locally(analysis: &Analysis) -> bool {
    match analysis.kind {
        StatementKind::Transaction => savepoint_command(analysis).is_none(),
        StatementKind::Session => matches!(
            *analysis.statement,
            Statement::Set(_) | Statement::Reset(_) | Statement::ShowVariable { .. }
        ),
        _ => false,
    }
}

/// The routing context of a session: its user, protocol, schema, the
/// `floe.tag`, `floe.strategy` and `floe.engine` settings and the settings
/// its engines apply.
fn route_context<'a>(
    user: &'a str,
    protocol: Protocol,
    schema: Option<&'a str>,
    settings: &'a BTreeMap<String, String>,
    forwarded: &'a [(String, String)],
) -> Result<RouteContext<'a>> {
    // Most sessions set no `floe.*` setting: one range lookup says so, where
    // three lookups in a MySQL session's ~40 settings cost ~600 instructions
    // a statement.
    let floe = settings
        .range::<str, _>((Bound::Included("floe."), Bound::Excluded("floe/")))
        .next()
        .is_some();
    let setting = |name: &str| {
        floe.then(|| settings.get(name))
            .flatten()
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    Ok(RouteContext {
        user,
        protocol: protocol.as_str(),
        schema,
        tag: setting("floe.tag"),
        strategy: setting("floe.strategy")
            .map(str::parse)
            .transpose()
            .map_err(Error::Engine)?,
        engine: setting("floe.engine"),
        settings: forwarded,
    })
}

fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("engine", DataType::Utf8, false),
        Field::new("rank", DataType::Int64, true),
        Field::new("health", DataType::Utf8, false),
        Field::new("outstanding", DataType::Int64, false),
        Field::new("queued", DataType::Int64, false),
        Field::new("max_concurrency", DataType::Int64, false),
        Field::new("predicted_latency_ms", DataType::Float64, false),
        Field::new("latency_source", DataType::Utf8, false),
        Field::new("predicted_cost", DataType::Float64, false),
        Field::new("note", DataType::Utf8, false),
    ]))
}

/// The rows of `EXPLAIN ROUTE`, ranked engines first in order, then the
/// others; the chosen engine's note says why, with the strategy and rules.
fn explain_batch(
    explanation: &Explanation,
    pinned: Option<&str>,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{Float64Array, Int64Array};
    let mut rows: Vec<_> = explanation.candidates.iter().collect();
    rows.sort_by_key(|c| c.rank.unwrap_or(usize::MAX));
    let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let note = |c: &floe_router::routing::CandidateReport| -> String {
        if let Some(why) = &c.excluded {
            return why.clone();
        }
        if c.rank == Some(1) {
            let mut note = format!("chosen ({}): {}", explanation.strategy, explanation.reason);
            if !explanation.rules.is_empty() {
                note.push_str(&format!("; rules: {}", explanation.rules.join(", ")));
            }
            if let Some(pinned) = pinned {
                note.push_str(&format!(
                    "; this session's transaction is pinned to {pinned}"
                ));
            }
            note.push_str(&format!("; tables: {}", explanation.tables.join(", ")));
            return note;
        }
        "fallback if the engines before it fail".to_owned()
    };
    RecordBatch::try_new(
        explain_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|c| c.engine.as_str()),
            )),
            Arc::new(Int64Array::from_iter(
                rows.iter().map(|c| c.rank.map(to_i64)),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|c| c.health.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|c| to_i64(c.outstanding)),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|c| to_i64(c.queued)),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|c| to_i64(c.max_concurrency)),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|c| c.predicted_latency_ms),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|c| c.latency_source),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|c| c.predicted_cost),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|c| note(c)))),
        ],
    )
}

/// The result schema of a locally answered statement that returns rows.
fn local_schema(analysis: &Analysis) -> Option<SchemaRef> {
    if analysis.explain_route {
        return Some(explain_schema());
    }
    match &*analysis.statement {
        Statement::ShowVariable { variable } => {
            let name = show_name(variable);
            Some(if name == "all" {
                show_all_schema()
            } else {
                show_schema(&name)
            })
        }
        _ => None,
    }
}

fn show_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
}

fn show_all_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("setting", DataType::Utf8, false),
    ]))
}

/// Reads a PostgreSQL time setting: a bare number is milliseconds; units
/// `us`, `ms`, `s`, `min`, `h` and `d` may follow, as in `SET statement_timeout = '5s'`.
fn parse_pg_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "" | "ms" => number,
        "us" => number / 1000.0,
        "s" => number * 1000.0,
        "min" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        "d" => number * 86_400_000.0,
        _ => return None,
    };
    (millis.is_finite() && millis >= 0.0).then(|| Duration::from_secs_f64(millis / 1000.0))
}

/// The setting a `SHOW` names (`SHOW TIME ZONE` names `timezone`).
fn show_name(variable: &[floe_dialects::sqlparser::ast::Ident]) -> String {
    normalise(
        &variable
            .iter()
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Setting names are case-insensitive; `TIME ZONE` is `timezone`; MySQL's
/// `@@session.x`, `@@local.x` and `@@x` are `x`.
pub(crate) fn normalise(name: &str) -> String {
    let mut lower = name.trim().to_ascii_lowercase();
    for prefix in ["@@session.", "@@local.", "@@"] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            lower = rest.to_owned();
            break;
        }
    }
    match lower.as_str() {
        "time zone" => "timezone".to_owned(),
        "transaction isolation level" => "transaction_isolation".to_owned(),
        _ => lower,
    }
}

fn values_text(values: &[Expr]) -> String {
    values.iter().map(expr_text).collect::<Vec<_>>().join(", ")
}

/// The text of a `SET` value as PostgreSQL stores it: strings unquoted.
fn expr_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::DoubleQuotedString(s),
            ..
        }) => s.clone(),
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// What is left of the statement timeout; `None` when there is no timeout.
fn remaining(timeout: Duration, started: Instant) -> Option<Duration> {
    (!timeout.is_zero()).then(|| timeout.saturating_sub(started.elapsed()))
}

/// Wraps a result stream: counts rows and bytes for metrics when it ends, stops
/// it on cancel or timeout, and holds the drain guard until the last row is sent.
struct Metered {
    inner: BatchStream,
    protocol: Protocol,
    kind: StatementKind,
    started: Instant,
    /// Resolves when a cancel request arrives; polled first so that a cancel
    /// wakes the stream even while the engine is idle.
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Resolves at the statement timeout, if there is one.
    timeout: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Tells the session that the statement failed after `run` returned.
    failed: Arc<AtomicBool>,
    rows: u64,
    bytes: u64,
    done: bool,
    /// The telemetry event, sent when the stream ends.
    report: Option<Report>,
    _guard: DrainGuard,
}

/// A statement's telemetry event waiting for its end.
struct Report {
    sender: TelemetrySender,
    scan: Option<Arc<ScanStats>>,
    event: QueryEvent,
}

impl Report {
    /// Completes the event and hands it over without waiting; a full channel
    /// drops it (counted).
    fn send(mut self, outcome: metrics::Outcome, latency: Duration, rows: u64, bytes: u64) {
        let event = &mut self.event;
        event.latency = latency;
        event.rows = rows;
        event.bytes = bytes;
        event.outcome = match outcome {
            metrics::Outcome::Ok => QueryOutcome::Ok,
            metrics::Outcome::Error => QueryOutcome::Error,
            metrics::Outcome::Cancelled => QueryOutcome::Cancelled,
        };
        // Only an engine that metered its scan says anything about it.
        if let Some(scan) = self
            .scan
            .as_ref()
            .filter(|s| s.files() > 0 || s.bytes() > 0)
        {
            event.scanned_files = Some(scan.files());
            event.scanned_bytes = Some(scan.bytes());
        }
        metrics::telemetry_event(self.sender.emit(self.event));
    }
}

impl Metered {
    fn finish(&mut self, outcome: metrics::Outcome) {
        if !self.done {
            self.done = true;
            if outcome != metrics::Outcome::Ok {
                self.failed.store(true, Ordering::Release);
            }
            metrics::query_finished(
                self.protocol,
                self.kind,
                outcome,
                self.started.elapsed(),
                self.rows,
                self.bytes,
            );
            if let Some(report) = self.report.take() {
                report.send(outcome, self.started.elapsed(), self.rows, self.bytes);
            }
        }
    }
}

impl Stream for Metered {
    type Item = floe_router::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.finish(metrics::Outcome::Cancelled);
            return Poll::Ready(Some(Err(floe_router::Error::Cancelled)));
        }
        if let Some(timeout) = self.timeout.as_mut()
            && timeout.as_mut().poll(cx).is_ready()
        {
            self.finish(metrics::Outcome::Error);
            return Poll::Ready(Some(Err(floe_router::Error::Timeout)));
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                self.rows += batch.num_rows() as u64;
                self.bytes += batch.get_array_memory_size() as u64;
                Poll::Ready(Some(Ok(batch)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(metrics::Outcome::Error);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finish(metrics::Outcome::Ok);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // A client that disconnects mid-result drops the stream unfinished.
        self.finish(metrics::Outcome::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_durations_parse_with_and_without_units() {
        assert_eq!(parse_pg_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_pg_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_pg_duration("1.5 min"), Some(Duration::from_secs(90)));
        assert_eq!(parse_pg_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_pg_duration("soon"), None);
        assert_eq!(parse_pg_duration("5 parsecs"), None);
    }

    #[test]
    fn forwarded_settings_are_sorted_settings_of_their_protocol() {
        for protocol in [Protocol::Postgres, Protocol::MySql] {
            let names = forwarded_names(protocol);
            assert!(
                names.windows(2).all(|w| w[0] < w[1]),
                "binary search needs order"
            );
            for name in names {
                assert!(
                    default_settings(protocol).iter().any(|(k, _)| k == name),
                    "{name} cannot be SET, so it is never forwarded"
                );
            }
        }
    }

    #[test]
    fn startup_options_give_their_settings() {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            startup_options("-c search_path=sales,public  -cTimeZone=UTC --statement-timeout=5s"),
            pairs(&[
                ("search_path", "sales,public"),
                ("TimeZone", "UTC"),
                ("statement_timeout", "5s"),
            ])
        );
        assert_eq!(
            startup_options(r"-c application_name=my\ app\\x -B 8 -c broken"),
            pairs(&[("application_name", r"my app\x")])
        );
        assert_eq!(startup_options(""), pairs(&[]));
    }

    #[test]
    fn a_search_paths_schema_is_its_first_schema_of_the_users() {
        assert_eq!(
            search_path_schema("floe_sp, public").as_deref(),
            Some("floe_sp")
        );
        assert_eq!(
            search_path_schema("\"$user\", Sales").as_deref(),
            Some("sales")
        );
        assert_eq!(
            search_path_schema("pg_catalog, \"My\"\"Schema\"").as_deref(),
            Some("My\"Schema")
        );
        assert_eq!(search_path_schema("pg_temp, $user").as_deref(), None);
        assert_eq!(search_path_schema("").as_deref(), None);
    }
}
