//! A MySQL or MariaDB server as an engine: mysql_async with its pool.
//!
//! Statements without parameters go over the text protocol (one round trip);
//! statements with parameters are prepared (mysql_async caches them per
//! connection) and run over the binary protocol. mysql_async's result borrows
//! its connection, so each statement is a future that owns the connection and
//! sends record batches one at a time, polled by the result stream itself
//! ([`Inline`]) in the client's task: the client's reading paces the server,
//! and dropping the stream ends the statement.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use datafusion::scalar::ScalarValue;
use floe_dialects::{Analysis, Dialect};
use futures::StreamExt;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Row};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::columns::{BATCH_ROWS, BatchBuilder, Value, empty_schema, parse_decimal};
use super::conn_state::ConnStates;
use super::inline::{Inline, Yield};
use super::mysql_wire::{self, WireConfig, WirePool, WireRequest};
use super::{
    Engine, MYSQL_SESSION_SETTINGS, MySqlRows, Prepared, QueryOutput, Request, Scope,
    ServerEngineOptions, Transaction, settings_of,
};
use crate::{DataErrorKind, Error, Result};

/// A MySQL or MariaDB server.
pub struct MySqlEngine {
    name: String,
    pool: Pool,
    connect_timeout: Duration,
    /// Shared with the engine's transactions, which read types on their own
    /// connection.
    types: Arc<super::TypeCache>,
    /// Which database each connection is in and which session settings it
    /// holds; shared with the transactions.
    sessions: Arc<Sessions>,
    /// Connections that just ran a statement cleanly, in front of the pool.
    warm: Arc<Warm>,
    /// Pass-through: MySQL clients' reads get the server's own rows.
    wire: Option<Arc<WirePool>>,
}

/// How long a connection stays in [`Warm`] after its last statement.
/// Younger ones are taken without a liveness check; older ones go back to
/// mysql_async's pool, which checks a connection it hands out.
const WARM_FOR: Duration = Duration::from_secs(1);

/// Connections that ran a read cleanly within [`WARM_FOR`], newest last.
///
/// mysql_async's pool returns a dropped connection through an unbounded
/// channel to its `Recycler` task, and checks each connection it hands out
/// in a boxed future: per statement a channel send, a task wake-up and the
/// check (~3.4 k instructions of a 52 k point select). A connection whose statement was read-only and whose result was
/// read to its end holds nothing for the pool to clean, so it waits here,
/// out of the pool but still counted in its limit, for the engine's next
/// statement. Anything else (a write, which asks for a reset; an error; a
/// result abandoned half-read) goes back through the pool as before.
///
/// A connection the server closed or killed while it waited here is found
/// by the work that takes it, which then runs once more on a pooled,
/// checked connection ([`MySqlEngine::with_conn`]); writes never take a warm
/// one. [`WARM_FOR`] bounds how long a connection goes unchecked, as
/// pgbouncer's `server_check_delay` does.
#[derive(Debug, Default)]
struct Warm {
    conns: std::sync::Mutex<Vec<(Conn, Instant)>>,
}

impl Warm {
    /// The newest warm connection, if one is young enough; older ones are
    /// handed back to the pool on the way.
    fn take(&self) -> Option<Conn> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let conn = {
            let Ok(mut conns) = self.conns.lock() else {
                return None;
            };
            // Sorted by age: the stale ones are a prefix.
            let old = conns.partition_point(|(_, since)| now.duration_since(*since) > WARM_FOR);
            if old > 0 {
                stale.extend(conns.drain(..old).map(|(conn, _)| conn));
            }
            conns.pop().map(|(conn, _)| conn)
        };
        // Dropped outside the lock: each goes to the pool's recycler.
        drop(stale);
        conn
    }

    /// Keeps `conn` for the next statement.
    fn put(&self, conn: Conn) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.push((conn, Instant::now()));
        }
    }
}

/// MySQL's "Unknown database".
const ER_BAD_DB_ERROR: u16 = 1049;

/// The database each pooled connection is in, and the session settings
/// ([`MYSQL_SESSION_SETTINGS`]) it holds.
///
/// A MySQL client's `USE` (or the database it connected with) is its
/// session's schema; its unqualified table names mean that database's tables.
/// Before a statement (or a prepare) runs on a connection that is in another
/// database, the connection gets a `USE` — only then, so clients that stay in
/// the URL's database never pay a round trip for it, and a connection a
/// session moved is moved back for the next session that did not.
///
/// A session's `SET time_zone` or `sql_mode` is applied the same way: a
/// connection gets one `SET SESSION` of every forwarded variable (the
/// session's value or `DEFAULT`) only when it holds other values than the
/// session's.
#[derive(Debug, Default)]
struct Sessions {
    /// The URL's database, where every new connection starts.
    default: Option<String>,
    /// By server connection id.
    states: ConnStates<u32, String>,
    /// The forwarded settings each connection holds, by server connection
    /// id; a new one holds none.
    settings: ConnStates<u32, Vec<(String, String)>>,
}

impl Sessions {
    fn new(default: Option<String>) -> Self {
        Sessions {
            default,
            states: ConnStates::default(),
            settings: ConnStates::default(),
        }
    }

    /// Records that `conn` will be reset: if it had moved, where it ends up
    /// is not known, nor (to be safe) which settings it holds.
    fn reset(&self, conn: &Conn) {
        self.states.unknown(conn.id());
        self.settings.unknown(conn.id());
    }

    /// Gives `conn` the session's forwarded `settings` (a MySQL session's;
    /// others' are not this server's and are left out), if it holds others.
    async fn apply(
        &self,
        engine: &str,
        conn: &mut Conn,
        settings: &[(String, String)],
    ) -> Result<()> {
        let wanted = settings_of(settings, MYSQL_SESSION_SETTINGS);
        if !self
            .settings
            .needs(conn.id(), wanted.as_ref(), wanted.is_empty())
        {
            return Ok(());
        }
        conn.query_drop(set_session_sql(&wanted))
            .await
            .map_err(|e| map_error(engine, e))?;
        let at_default = wanted.is_empty();
        self.settings
            .now(conn.id(), wanted.into_owned(), at_default);
        Ok(())
    }

    /// The text to prepare `sql` under for a session in `schema` with
    /// `settings`. MySQL resolves a prepared statement's tables in the
    /// database it was prepared in, whatever `USE` comes later, and parses
    /// it under the `sql_mode` then in force (`ANSI_QUOTES`,
    /// `PIPES_AS_CONCAT` change what it means); mysql_async and the
    /// pass-through keep prepared statements by text. So outside the URL's
    /// database, or under a `sql_mode` of the session's own, the text
    /// carries them in leading comments (hex: nothing in them can end the
    /// comment), and a connection's statement of that text was prepared as
    /// this session needs it.
    fn statement_text<'a>(
        &self,
        sql: &'a str,
        schema: Option<&str>,
        settings: &[(String, String)],
    ) -> Cow<'a, str> {
        let database = schema.filter(|database| self.default.as_deref() != Some(*database));
        let mode = settings
            .iter()
            .find(|(name, _)| name == "sql_mode")
            .map(|(_, mode)| mode.as_str());
        if database.is_none() && mode.is_none() {
            return Cow::Borrowed(sql);
        }
        let hex = |text: &str| -> String { text.bytes().map(|b| format!("{b:02x}")).collect() };
        let mut text = String::with_capacity(sql.len() + 64);
        if let Some(database) = database {
            text.push_str(&format!("/* floe:db={} */ ", hex(database)));
        }
        if let Some(mode) = mode {
            text.push_str(&format!("/* floe:sql_mode={} */ ", hex(mode)));
        }
        text.push_str(sql);
        Cow::Owned(text)
    }

    /// Moves `conn` to the database of a session in `schema` (`None`: the
    /// URL's), if it is not there, for `statement`. With no database in the
    /// URL either, a connection stays where it is: MySQL cannot leave a
    /// database. A session database this server does not have (a lake
    /// namespace the session chose) is the server's error (1049), unless
    /// every table the statement names is qualified: then where the
    /// connection stands does not matter, and it stays.
    ///
    /// The session's settings come first ([`Sessions::apply`]).
    async fn enter(
        &self,
        engine: &str,
        conn: &mut Conn,
        scope: Scope<'_>,
        statement: &Analysis,
    ) -> Result<()> {
        self.apply(engine, conn, scope.settings).await?;
        let Some(database) = scope.schema.or(self.default.as_deref()) else {
            return Ok(());
        };
        let at_default = self.default.as_deref() == Some(database);
        if !self.states.needs(conn.id(), database, at_default) {
            return Ok(());
        }
        match conn
            .query_drop(format!("USE `{}`", database.replace('`', "``")))
            .await
        {
            Ok(()) => {
                self.states.now(conn.id(), database.to_owned(), at_default);
                Ok(())
            }
            Err(mysql_async::Error::Server(e))
                if e.code == ER_BAD_DB_ERROR
                    && statement
                        .references()
                        .tables
                        .iter()
                        .all(|t| t.parts.len() >= 2) =>
            {
                Ok(())
            }
            Err(e) => Err(map_error(engine, e)),
        }
    }
}

/// One `SET SESSION` that leaves a connection with `wanted` (of
/// [`MYSQL_SESSION_SETTINGS`]) and every other forwarded variable at its
/// server default. Values of digits alone go as numbers (a numeric or
/// boolean variable refuses the string `'0'`), the others as string
/// literals; one with a backslash or a control character (no valid value of
/// these has one, and how a backslash reads depends on the `sql_mode` in
/// force) goes as `DEFAULT`.
pub(super) fn set_session_sql(wanted: &[(String, String)]) -> String {
    let assignments: Vec<String> = MYSQL_SESSION_SETTINGS
        .iter()
        .map(|name| {
            match wanted
                .iter()
                .find(|(n, _)| n == name)
                .filter(|(_, v)| !v.chars().any(|c| c == '\\' || c.is_control()))
            {
                Some((_, value))
                    if !value.is_empty()
                        && value.len() <= 20
                        && value.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    format!("{name} = {value}")
                }
                Some((_, value)) => format!("{name} = '{}'", value.replace('\'', "''")),
                None => format!("{name} = DEFAULT"),
            }
        })
        .collect();
    format!("SET SESSION {}", assignments.join(", "))
}

impl std::fmt::Debug for MySqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlEngine")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MySqlEngine {
    /// Builds the engine; connections open on first use.
    ///
    /// # Errors
    ///
    /// The URL does not parse.
    pub fn new(options: ServerEngineOptions) -> Result<Self> {
        let opts = Opts::from_url(&options.url).map_err(|e| {
            Error::InvalidInput(format!("engine {}: invalid MySQL URL: {e}", options.name))
        })?;
        let sessions = Arc::new(Sessions::new(opts.db_name().map(str::to_owned)));
        let wire =
            WireConfig::from_opts(&opts, options.password.as_deref(), options.connect_timeout)
                .filter(|_| options.pass_through)
                .map(|wire| Arc::new(WirePool::new(&options.name, wire, options.max_connections)));
        let constraints = PoolConstraints::new(0, options.max_connections.max(1))
            .ok_or_else(|| Error::Internal("pool constraints".to_owned()))?;
        // A pooled connection that ran only reads carries no session state
        // (Floe keeps the client's `SET`s itself), so it goes back as it is,
        // its prepared statements still cached. mysql_async's default resets
        // every connection on return: one more round trip per statement, and
        // every prepared statement prepared again. Writes and transactions
        // ask for the reset themselves (see `run`).
        //
        // Idle connections are kept for a minute: with mysql_async's default
        // (no idle lifetime, at least 0 connections) every connection closed
        // the moment it went back, so each statement paid a new connection,
        // its authentication and a prepare.
        let mut builder = OptsBuilder::from_opts(opts)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(60))
                    .with_reset_connection(false),
            )
            .prefer_socket(false);
        if let Some(password) = &options.password {
            builder = builder.pass(Some(password.clone()));
        }
        Ok(MySqlEngine {
            name: options.name,
            pool: Pool::new(builder),
            connect_timeout: options.connect_timeout,
            types: Arc::default(),
            sessions,
            warm: Arc::default(),
            wire,
        })
    }

    /// A connection from the pool, within the connect timeout.
    async fn pooled(&self) -> Result<Conn> {
        match tokio::time::timeout(self.connect_timeout, self.pool.get_conn()).await {
            Ok(conn) => conn.map_err(|e| map_error(&self.name, e)),
            Err(_) => Err(Error::EngineUnavailable {
                engine: self.name.clone(),
                message: format!("no connection within {:?}", self.connect_timeout),
                retryable: true,
            }),
        }
    }

    /// Runs `work` on a warm connection ([`Warm`]) if there is one, else on
    /// one from the pool. `work` owns the connection and gives it back.
    ///
    /// A warm connection was not checked: if `work` fails on it as on a
    /// lost connection (the server closed or killed it while it waited), it
    /// runs once more on a connection from the pool, which is checked. Work
    /// that is not safe to run twice (`retry` false: a write) takes a
    /// checked connection from the start.
    async fn with_conn<T, Fut>(&self, retry: bool, work: impl Fn(Conn) -> Fut) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        if !retry {
            // Work that must not run twice takes a checked connection: a
            // warm one goes back to the pool first (making room under the
            // pool's limit), which checks the connection it hands out.
            drop(self.warm.take());
            return work(self.pooled().await?).await;
        }
        if let Some(conn) = self.warm.take() {
            match work(conn).await {
                Err(e) if lost_connection(&e) => {
                    tracing::debug!(engine = %self.name, error = %e, "a warm connection was lost; retrying on a pooled one");
                }
                done => return done,
            }
        }
        work(self.pooled().await?).await
    }
}

impl MySqlEngine {
    /// Runs `request` on the pass-through pool; `Err(NotHere)` when it needs
    /// the converting path after all.
    async fn pass_through(
        &self,
        wire: &Arc<WirePool>,
        rows: MySqlRows,
        request: &Request<'_>,
    ) -> mysql_wire::Attempt {
        let sql = request.statement.sql();
        // A prepared statement keeps the database it was prepared in (see
        // `Sessions::statement_text`); a text query goes as written.
        let sql = match rows {
            MySqlRows::Text => Cow::Borrowed(sql),
            MySqlRows::Binary => {
                self.sessions
                    .statement_text(sql, request.schema, request.settings)
            }
        };
        let settings = settings_of(request.settings, MYSQL_SESSION_SETTINGS);
        wire.query(&WireRequest {
            sql: &sql,
            params: request.params,
            rows,
            described: request.prepared.map(|p| p.schema.as_ref()),
            database: request.schema.or(self.sessions.default.as_deref()),
            settings: &settings,
        })
        .await
    }
}

/// MariaDB's "Connection was killed", which a connection killed while idle
/// answers its next statement with.
const ER_CONNECTION_KILLED: u16 = 1927;

/// `error` is what a connection the server closed or killed gives.
fn lost_connection(error: &Error) -> bool {
    matches!(
        error,
        Error::EngineUnavailable { .. }
            | Error::Rejected {
                mysql_code: Some(ER_CONNECTION_KILLED),
                ..
            }
    )
}

#[async_trait]
impl Engine for MySqlEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    async fn column_types(
        &self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
    ) -> Result<floe_dialects::ColumnTypes> {
        self.types
            .get(tables, schema, |missing| async move {
                self.with_conn(true, |mut conn| {
                    let missing = missing.clone();
                    async move {
                        let read = read_columns(&self.name, &mut conn, missing).await?;
                        self.warm.put(conn);
                        Ok(read)
                    }
                })
                .await
            })
            .await
    }

    async fn probe(&self) -> Result<()> {
        // Taking a connection also hands stale warm ones back to the pool,
        // whose idle timeout then closes them. A warm connection that was
        // lost does not fail the probe: the engine answers on a new one.
        self.with_conn(true, |mut conn| async move {
            conn.ping().await.map_err(|e| map_error(&self.name, e))?;
            self.warm.put(conn);
            Ok(())
        })
        .await
    }

    async fn prepare(&self, statement: &Analysis, scope: Scope<'_>) -> Result<Prepared> {
        self.with_conn(true, |mut conn| async move {
            let prepared =
                prepare_on(&self.name, &mut conn, &self.sessions, statement, scope).await?;
            // The execution that follows takes this connection, the newest
            // warm one, and finds the statement in its cache.
            self.warm.put(conn);
            Ok(prepared)
        })
        .await
    }

    async fn execute(&self, request: Request<'_>) -> Result<QueryOutput> {
        if let Some(wire) = &self.wire
            && let Some(rows) = request.mysql_rows
            && request.plain_read_in(Dialect::MySql)
            && wire.enabled()
        {
            // Boxed: the pass-through's future is not part of every
            // converted statement's.
            if let Ok(output) = Box::pin(self.pass_through(wire, rows, &request)).await {
                return output;
            }
        }
        // A failure before the first row is an error of `run`'s; a read
        // that failed so changed nothing and may run again.
        self.with_conn(request.statement.read_only, |mut conn| async move {
            self.sessions
                .enter(&self.name, &mut conn, request.scope(), request.statement)
                .await?;
            let conn = Handle::Owned {
                conn,
                warm: Arc::clone(&self.warm),
            };
            run(&self.name, conn, &self.sessions, request).await
        })
        .await
    }

    async fn begin(&self, scope: Scope<'_>) -> Result<Option<Box<dyn Transaction>>> {
        // Nothing has run when `START TRANSACTION` fails: safe to retry.
        self.with_conn(true, |mut conn| async move {
            // MySQL's SET is not transactional: the block's statements keep
            // the settings in step as they change.
            self.sessions
                .apply(&self.name, &mut conn, scope.settings)
                .await?;
            // A block that ran only provably read-only statements leaves
            // nothing behind, so its connection goes back as it is, prepared
            // statements included; the first other statement asks for the
            // reset (see `run`). Resetting every block re-prepared each
            // statement of every sysbench `oltp_read_only` transaction.
            conn.query_drop("START TRANSACTION")
                .await
                .map_err(|e| map_error(&self.name, e))?;
            let block: Box<dyn Transaction> = Box::new(MySqlTransaction {
                name: self.name.clone(),
                conn: Arc::new(Mutex::new(conn)),
                types: Arc::clone(&self.types),
                sessions: Arc::clone(&self.sessions),
                ended: false,
            });
            Ok(Some(block))
        })
        .await
    }
}

/// The (column, type name) pairs of each `missing` table, read on `conn`.
async fn read_columns(
    name: &str,
    conn: &mut Conn,
    missing: Vec<super::TableKey>,
) -> Result<Vec<(super::TableKey, super::Columns)>> {
    let mut read = Vec::with_capacity(missing.len());
    for key in missing {
        let rows: Vec<(String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
                key.clone(),
            )
            .await
            .map_err(|e| map_error(name, e))?;
        read.push((key, rows));
    }
    Ok(read)
}

/// Prepares `statement` on `conn` for a session in `schema`, in that
/// database and under the text [`Sessions::statement_text`] gives
/// (mysql_async keeps it in the connection's statement cache, so the
/// execution that follows reuses it).
async fn prepare_on(
    name: &str,
    conn: &mut Conn,
    sessions: &Sessions,
    statement: &Analysis,
    scope: Scope<'_>,
) -> Result<Prepared> {
    // The settings too: `sql_mode` decides how the text parses.
    sessions.enter(name, conn, scope, statement).await?;
    let sql = sessions.statement_text(statement.sql(), scope.schema, scope.settings);
    let prepared = conn
        .prep(sql.as_ref())
        .await
        .map_err(|e| map_error(name, e))?;
    Ok(Prepared {
        param_types: vec![None; usize::from(prepared.num_params())],
        returns_rows: !prepared.columns().is_empty(),
        schema: schema_of(prepared.columns()),
        plan: None,
        engine: None,
    })
}

/// A transaction on one connection, which every statement of it locks in turn.
struct MySqlTransaction {
    name: String,
    conn: Arc<Mutex<Conn>>,
    types: Arc<super::TypeCache>,
    sessions: Arc<Sessions>,
    /// Set once committed or rolled back.
    ended: bool,
}

impl MySqlTransaction {
    async fn finish(mut self: Box<Self>, statement: &str) -> Result<()> {
        let mut conn = Arc::clone(&self.conn).lock_owned().await;
        conn.query_drop(statement)
            .await
            .map_err(|e| map_error(&self.name, e))?;
        self.ended = true;
        Ok(())
    }
}

impl Drop for MySqlTransaction {
    /// A transaction abandoned open (the client went away inside `BEGIN`) is
    /// rolled back before its connection returns to the pool. Drop cannot
    /// wait, so a short task does it; it ends with the statement.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let conn = Arc::clone(&self.conn);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut conn = conn.lock_owned().await;
                drop(conn.query_drop("ROLLBACK").await);
            });
        }
    }
}

#[async_trait]
impl Transaction for MySqlTransaction {
    async fn execute(&mut self, request: Request<'_>) -> Result<QueryOutput> {
        let mut conn = Arc::clone(&self.conn).lock_owned().await;
        self.sessions
            .enter(&self.name, &mut conn, request.scope(), request.statement)
            .await?;
        run(&self.name, Handle::Shared(conn), &self.sessions, request).await
    }

    async fn prepare(
        &mut self,
        statement: &Analysis,
        scope: Scope<'_>,
    ) -> Result<Option<Prepared>> {
        let mut conn = Arc::clone(&self.conn).lock_owned().await;
        prepare_on(&self.name, &mut conn, &self.sessions, statement, scope)
            .await
            .map(Some)
    }

    async fn column_types(
        &mut self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
    ) -> Result<Option<floe_dialects::ColumnTypes>> {
        let (name, conn) = (&self.name, &self.conn);
        self.types
            .get(tables, schema, |missing| async move {
                let mut conn = Arc::clone(conn).lock_owned().await;
                read_columns(name, &mut conn, missing).await
            })
            .await
            .map(Some)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.finish("COMMIT").await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.finish("ROLLBACK").await
    }
}

/// A connection the statement's task owns: its own from the pool (to go
/// back warm, see [`Handle::release`]), or the transaction's, locked until
/// the result ends.
enum Handle {
    Owned { conn: Conn, warm: Arc<Warm> },
    Shared(OwnedMutexGuard<Conn>),
}

impl Handle {
    /// Gives the connection back: an owned one that ran a read to its
    /// `complete` end is kept warm, any other goes to the pool (which resets
    /// or cleans it); a transaction's lock is released.
    fn release(self, read_only: bool, complete: bool) {
        match self {
            Handle::Owned { conn, warm } if read_only && complete => warm.put(conn),
            other => drop(other),
        }
    }
}

impl Deref for Handle {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            Handle::Owned { conn, .. } => conn,
            Handle::Shared(guard) => guard,
        }
    }
}

impl DerefMut for Handle {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            Handle::Owned { conn, .. } => conn,
            Handle::Shared(guard) => guard,
        }
    }
}

/// What a statement's producer reports first: the result's shape.
enum Head {
    Rows(SchemaRef),
    Command(u64),
}

/// What a statement's producer sends: its head, then its batches.
enum Item {
    Head(Result<Head>),
    Batch(Result<RecordBatch>),
}

async fn run(
    name: &str,
    mut conn: Handle,
    sessions: &Sessions,
    request: Request<'_>,
) -> Result<QueryOutput> {
    if !request.statement.read_only {
        // A statement that may change session state (a temporary table, a
        // user variable) does not pass it on to the next client: its own
        // connection, or its block's, is reset when it goes back to the pool.
        conn.reset_connection(true);
        sessions.reset(&conn);
    }
    // Prepared statements are cached by text, per connection, and keep the
    // database they were prepared in: a session outside the URL's database
    // prepares its own (see `Sessions::statement_text`). The text protocol
    // keeps nothing, so a statement without parameters goes as written.
    let sql = if request.params.is_empty() {
        request.statement.sql().to_owned()
    } else {
        sessions
            .statement_text(request.statement.sql(), request.schema, request.settings)
            .into_owned()
    };
    let params: Vec<mysql_async::Value> = request.params.iter().map(param_value).collect();
    let engine = name.to_owned();
    let read_only = request.statement.read_only;
    let mut items = Inline::new(move |tx: Yield<Item>| async move {
        let end = if params.is_empty() {
            match conn.query_iter(sql).await {
                Ok(result) => stream_rows(&engine, result, &tx).await,
                Err(e) => End::failed(map_error(&engine, e)),
            }
        } else {
            let result = conn
                .exec_iter(sql, mysql_async::Params::Positional(params))
                .await;
            match result {
                Ok(result) => stream_rows(&engine, result, &tx).await,
                Err(e) => End::failed(map_error(&engine, e)),
            }
        };
        // The connection goes back (or the transaction's lock is released)
        // before the client sees the result's end: its next statement then
        // finds the connection idle instead of opening one.
        conn.release(read_only, end.complete);
        if let Some(last) = end.last {
            drop(tx.send(last).await);
        }
    });
    let head = match items.next().await {
        Some(Item::Head(head)) => head?,
        _ => {
            return Err(Error::EngineUnavailable {
                engine: name.to_owned(),
                message: "the statement ended without a result".to_owned(),
                retryable: false,
            });
        }
    };
    match head {
        // A command's head is the producer's last item, sent after the
        // connection was released: nothing is left to run.
        Head::Command(rows) => Ok(QueryOutput::Command { rows: Some(rows) }),
        Head::Rows(schema) => Ok(QueryOutput::Rows {
            schema,
            stream: Box::pin(items.filter_map(|item| {
                std::future::ready(match item {
                    Item::Batch(batch) => Some(batch),
                    Item::Head(_) => None,
                })
            })),
        }),
    }
}

/// How a statement's result ended.
struct End {
    /// What is to be sent once the connection is released: the last batch,
    /// a command's head or an error.
    last: Option<Item>,
    /// The result was read to its end without an error: the connection
    /// holds nothing of it.
    complete: bool,
}

impl End {
    fn failed(error: Error) -> Self {
        End {
            last: Some(Item::Head(Err(error))),
            complete: false,
        }
    }

    /// Stopped early (the client went away, or a value did not decode).
    fn abandoned(last: Option<Item>) -> Self {
        End {
            last,
            complete: false,
        }
    }
}

/// Reads a result: sends its head and full batches, and returns how it
/// ended.
async fn stream_rows<P: mysql_async::prelude::Protocol>(
    engine: &str,
    mut result: mysql_async::QueryResult<'_, 'static, P>,
    tx: &Yield<Item>,
) -> End {
    let columns = result.columns();
    let Some(columns) = columns.filter(|c| !c.is_empty()) else {
        let affected = result.affected_rows();
        return match result.drop_result().await {
            Ok(()) => End {
                last: Some(Item::Head(Ok(Head::Command(affected)))),
                complete: true,
            },
            Err(e) => End::failed(map_error(engine, e)),
        };
    };
    let schema = schema_of(&columns);
    let kinds: Vec<DataType> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let mut builder = match BatchBuilder::new(Arc::clone(&schema)) {
        Ok(builder) => builder,
        Err(e) => return End::failed(e),
    };
    if tx.send(Item::Head(Ok(Head::Rows(schema)))).await.is_err() {
        return End::abandoned(None);
    }
    loop {
        let row = result.next().await;
        let outcome = match row {
            Ok(Some(row)) => {
                decode_row(&mut builder, &kinds, row).map(|()| builder.len() >= BATCH_ROWS)
            }
            Ok(None) => break,
            Err(e) => Err(map_error(engine, e)),
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                if tx.send(Item::Batch(builder.finish())).await.is_err() {
                    return End::abandoned(None);
                }
            }
            Err(e) => return End::abandoned(Some(Item::Batch(Err(e)))),
        }
    }
    End {
        last: (builder.len() > 0).then(|| Item::Batch(builder.finish())),
        complete: true,
    }
}

fn decode_row(builder: &mut BatchBuilder, kinds: &[DataType], row: Row) -> Result<()> {
    for (index, (value, kind)) in row.unwrap().into_iter().zip(kinds).enumerate() {
        push_value(builder, index, kind, &value)?;
    }
    builder.end_row();
    Ok(())
}

fn push_value(
    builder: &mut BatchBuilder,
    index: usize,
    kind: &DataType,
    value: &mysql_async::Value,
) -> Result<()> {
    use mysql_async::Value as My;
    let invalid = |text: &str| Error::Data {
        kind: DataErrorKind::InvalidText,
        message: format!("MySQL returned {text:?} for a {kind} column"),
    };
    let value = match value {
        My::NULL => Value::Null,
        // A `BIGINT UNSIGNED` column (Decimal128 here) may come as either:
        // the sequence engine's `seq` does as a signed integer.
        My::Int(v) => match kind {
            DataType::Decimal128(..) => Value::Decimal(i128::from(*v)),
            _ => Value::Int(*v),
        },
        My::UInt(v) => match kind {
            DataType::Decimal128(..) => Value::Decimal(i128::from(*v)),
            _ => Value::UInt(*v),
        },
        My::Float(v) => Value::Float(f64::from(*v)),
        My::Double(v) => Value::Float(*v),
        My::Date(year, month, day, hour, minute, second, micros) => {
            let date =
                NaiveDate::from_ymd_opt(i32::from(*year), u32::from(*month), u32::from(*day));
            match (date, kind) {
                // MySQL's zero date has no calendar value.
                (None, _) => Value::Null,
                (Some(date), DataType::Date32) => Value::Date(days(date)),
                (Some(date), _) => {
                    let time = date.and_hms_micro_opt(
                        u32::from(*hour),
                        u32::from(*minute),
                        u32::from(*second),
                        *micros,
                    );
                    match time {
                        Some(time) => Value::Timestamp(time.and_utc().timestamp_micros()),
                        None => Value::Null,
                    }
                }
            }
        }
        My::Time(negative, days, hours, minutes, seconds, micros) => {
            let hours = u64::from(*days) * 24 + u64::from(*hours);
            let sign = if *negative { "-" } else { "" };
            let text = if *micros == 0 {
                format!("{sign}{hours:02}:{minutes:02}:{seconds:02}")
            } else {
                format!("{sign}{hours:02}:{minutes:02}:{seconds:02}.{micros:06}")
            };
            return builder.push(index, Value::Text(&text));
        }
        My::Bytes(bytes) => {
            // The text protocol sends every value as text.
            let text = || std::str::from_utf8(bytes).map_err(|_| invalid("non-UTF-8 bytes"));
            match kind {
                DataType::Utf8 => Value::Text(text()?),
                DataType::Binary | DataType::Null => Value::Bytes(bytes),
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                    let t = text()?;
                    Value::Int(t.parse().map_err(|_| invalid(t))?)
                }
                DataType::Float32 | DataType::Float64 => {
                    let t = text()?;
                    Value::Float(t.parse().map_err(|_| invalid(t))?)
                }
                DataType::Decimal128(_, scale) => {
                    let t = text()?;
                    Value::Decimal(parse_decimal(t, *scale).ok_or_else(|| invalid(t))?)
                }
                DataType::Date32 => {
                    let t = text()?;
                    match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                        Ok(date) => Value::Date(days(date)),
                        Err(_) if t.starts_with("0000") => Value::Null,
                        Err(_) => return Err(invalid(t)),
                    }
                }
                DataType::Timestamp(..) => {
                    let t = text()?;
                    match NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f") {
                        Ok(time) => Value::Timestamp(time.and_utc().timestamp_micros()),
                        Err(_) if t.starts_with("0000") => Value::Null,
                        Err(_) => return Err(invalid(t)),
                    }
                }
                _ => Value::Bytes(bytes),
            }
        }
    };
    builder.push(index, value)
}

fn days(date: NaiveDate) -> i32 {
    // Days since 1970-01-01; `num_days_from_ce` of 1970-01-01 is 719163.
    date.num_days_from_ce() - 719_163
}

/// The Arrow schema of a MySQL result. Unsigned integers widen to the next
/// signed type (PostgreSQL clients have no unsigned types); `BIGINT UNSIGNED`
/// becomes `Decimal128(20, 0)`.
fn schema_of(columns: &[Column]) -> SchemaRef {
    if columns.is_empty() {
        return empty_schema();
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c.name_str(), column_type(c), true))
        .collect();
    Arc::new(Schema::new(fields))
}

fn column_type(column: &Column) -> DataType {
    let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = column.character_set() == 63;
    match column.column_type() {
        ColumnType::MYSQL_TYPE_TINY if unsigned => DataType::Int16,
        ColumnType::MYSQL_TYPE_TINY => DataType::Int8,
        ColumnType::MYSQL_TYPE_SHORT if unsigned => DataType::Int32,
        ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR => DataType::Int16,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG if unsigned => DataType::Int64,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG => DataType::Int32,
        ColumnType::MYSQL_TYPE_LONGLONG if unsigned => DataType::Decimal128(20, 0),
        ColumnType::MYSQL_TYPE_LONGLONG => DataType::Int64,
        ColumnType::MYSQL_TYPE_FLOAT => DataType::Float32,
        ColumnType::MYSQL_TYPE_DOUBLE => DataType::Float64,
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let scale = column.decimals();
            // The display length counts the sign and the decimal point.
            let length = column.column_length();
            let precision = length
                .saturating_sub(u32::from(scale > 0))
                .saturating_sub(u32::from(!unsigned));
            match (u8::try_from(precision), i8::try_from(scale)) {
                (Ok(p @ 1..=38), Ok(s)) if u32::from(scale) <= precision => {
                    DataType::Decimal128(p, s)
                }
                _ => DataType::Utf8,
            }
        }
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => DataType::Date32,
        ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_DATETIME2
        | ColumnType::MYSQL_TYPE_TIMESTAMP
        | ColumnType::MYSQL_TYPE_TIMESTAMP2 => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::MYSQL_TYPE_NULL => DataType::Null,
        ColumnType::MYSQL_TYPE_BIT | ColumnType::MYSQL_TYPE_GEOMETRY => DataType::Binary,
        _ if binary => DataType::Binary,
        _ => DataType::Utf8,
    }
}

fn param_value(value: &ScalarValue) -> mysql_async::Value {
    use mysql_async::Value as My;
    if value.is_null() {
        return My::NULL;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => My::Int(i64::from(*b)),
        ScalarValue::Int8(Some(v)) => My::Int(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => My::Int(i64::from(*v)),
        ScalarValue::Int32(Some(v)) => My::Int(i64::from(*v)),
        ScalarValue::Int64(Some(v)) => My::Int(*v),
        ScalarValue::UInt8(Some(v)) => My::UInt(u64::from(*v)),
        ScalarValue::UInt16(Some(v)) => My::UInt(u64::from(*v)),
        ScalarValue::UInt32(Some(v)) => My::UInt(u64::from(*v)),
        ScalarValue::UInt64(Some(v)) => My::UInt(*v),
        ScalarValue::Float32(Some(v)) => My::Float(*v),
        ScalarValue::Float64(Some(v)) => My::Double(*v),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b)) => My::Bytes(b.clone()),
        other => My::Bytes(other.to_string().into_bytes()),
    }
}

/// Maps a mysql_async error to Floe's, by the server's error code where there is one.
pub(super) fn map_error(engine: &str, e: mysql_async::Error) -> Error {
    let server = match e {
        mysql_async::Error::Server(server) => server,
        other => {
            return Error::EngineUnavailable {
                engine: engine.to_owned(),
                message: other.to_string(),
                retryable: true,
            };
        }
    };
    let message = server.message;
    match server.code {
        1064 | 1149 => Error::Syntax(message),
        1146 => Error::UndefinedTable(message),
        // "Unknown database": PostgreSQL's name for it is 3D000; MySQL
        // clients get the number as it came.
        ER_BAD_DB_ERROR => Error::Rejected {
            sqlstate: "3D000".to_owned(),
            mysql_code: Some(ER_BAD_DB_ERROR),
            message,
        },
        1054 => Error::UndefinedColumn(message),
        1365 => Error::Data {
            kind: DataErrorKind::DivisionByZero,
            message,
        },
        1264 | 1690 => Error::Data {
            kind: DataErrorKind::NumericOutOfRange,
            message,
        },
        1292 | 1366 => Error::Data {
            kind: DataErrorKind::InvalidText,
            message,
        },
        1235 => Error::Unsupported(message),
        1317 | 3024 | 1969 => Error::Cancelled,
        // Too many connections, server shutdown, out of memory / resources.
        1040 | 1053 | 1037 | 1038 | 1041 | 1135 => Error::EngineUnavailable {
            engine: engine.to_owned(),
            message,
            retryable: true,
        },
        _ => Error::Rejected {
            sqlstate: server.state,
            mysql_code: Some(server.code),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_unix_epoch() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1);
        assert_eq!(epoch.map(days), Some(0));
        let later = NaiveDate::from_ymd_opt(2000, 1, 1);
        assert_eq!(later.map(days), Some(10_957));
    }

    #[test]
    fn session_settings_are_set_as_literals_and_the_rest_to_default() {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(
            MYSQL_SESSION_SETTINGS.is_sorted(),
            "looked up by binary search"
        );
        // Every forwarded variable but the few named here at its default.
        let with = |set: &[&str]| -> String {
            let assignments: Vec<String> = MYSQL_SESSION_SETTINGS
                .iter()
                .map(|name| {
                    set.iter()
                        .find(|a| a.starts_with(&format!("{name} = ")))
                        .map_or_else(|| format!("{name} = DEFAULT"), |a| (*a).to_owned())
                })
                .collect();
            format!("SET SESSION {}", assignments.join(", "))
        };
        assert_eq!(set_session_sql(&[]), with(&[]));
        assert!(with(&[]).starts_with("SET SESSION auto_increment_increment = DEFAULT, "));
        assert_eq!(
            set_session_sql(&pairs(&[("time_zone", "+02:00")])),
            with(&["time_zone = '+02:00'"])
        );
        assert_eq!(
            set_session_sql(&pairs(&[("sql_mode", "ANSI'; DROP TABLE t; --")])),
            with(&["sql_mode = 'ANSI''; DROP TABLE t; --'"])
        );
        assert_eq!(
            set_session_sql(&pairs(&[("sql_mode", "a\\' OR 1")])),
            with(&[]),
            "a backslash reads differently under NO_BACKSLASH_ESCAPES"
        );
        assert_eq!(
            set_session_sql(&pairs(&[
                ("foreign_key_checks", "0"),
                ("sql_select_limit", "10"),
                ("unique_checks", "OFF"),
            ])),
            with(&[
                "foreign_key_checks = 0",
                "sql_select_limit = 10",
                "unique_checks = 'OFF'"
            ]),
            "numbers as numbers"
        );
        // A PostgreSQL session's settings are not this server's.
        let mixed = pairs(&[("time_zone", "+01:00"), ("timezone", "UTC")]);
        assert_eq!(
            settings_of(&mixed, MYSQL_SESSION_SETTINGS).as_ref(),
            &mixed[..1]
        );
    }
}
