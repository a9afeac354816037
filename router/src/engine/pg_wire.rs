//! PostgreSQL's wire protocol spoken directly, for pass-through.
//!
//! When a PostgreSQL client's read-only statement runs unchanged on a
//! PostgreSQL engine and the client wants text results, there is nothing to
//! convert: the server's `RowDescription` and `DataRow` messages are what the
//! client expects. This module runs such a statement on a connection of its
//! own pool, driven from the statement's own task (no connection task, no
//! channel hop: the hand-offs, not the encoding, were what a statement paid
//! on its way through tokio-postgres), and hands the rows on as they came.
//!
//! The rows still travel through the router and session as record batches,
//! so health, failover, metrics, telemetry and cancellation see them as any
//! other result: a batch of [`pass_through_schema`] has one `Binary` column
//! whose values are `DataRow` bodies, and the schema's metadata carries the
//! `RowDescription`. Only the PostgreSQL front end asks for them
//! ([`super::Request::pg_text`]) and only it reads them ([`wire_fields`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{ArrayBuilder, BinaryArray, BinaryBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use super::columns::BATCH_ROWS;
use super::idle_pool::{IdlePool, PoolError};
use super::wire_stream::{WireAddr, WireStream};
use super::{BatchStream, QueryOutput};
use crate::{Error, Result};

/// The schema metadata key that marks a pass-through result and carries its
/// fields.
const FIELDS_KEY: &str = "floe.pg_row_description";

/// Bytes of rows a batch holds at most, so that wide rows do not pile up.
const BATCH_BYTES: usize = 1 << 20;

/// One column of a pass-through result, as the server described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireField {
    /// The column's name.
    pub name: String,
    /// The table's OID, or 0.
    pub table_oid: u32,
    /// The column's attribute number, or 0.
    pub column_id: i16,
    /// The type's OID.
    pub type_oid: u32,
    /// The type's size (negative: variable).
    pub type_size: i16,
    /// The type modifier.
    pub type_modifier: i32,
}

/// The schema of a pass-through result with these fields: one `Binary`
/// column of `DataRow` bodies.
fn pass_through_schema(fields: &[WireField]) -> SchemaRef {
    // One record per field, ended by NUL, which no PostgreSQL identifier
    // contains: the numbers first, then the name (which may hold spaces).
    let mut text = String::new();
    for f in fields {
        let _ = write!(
            text,
            "{} {} {} {} {} {}\0",
            f.table_oid, f.column_id, f.type_oid, f.type_size, f.type_modifier, f.name
        );
    }
    Arc::new(
        Schema::new(vec![Field::new("data_row", DataType::Binary, false)])
            .with_metadata(HashMap::from([(FIELDS_KEY.to_owned(), text)])),
    )
}

/// The fields of a pass-through result, or `None` for any other schema.
pub fn wire_fields(schema: &Schema) -> Option<Vec<WireField>> {
    let text = schema.metadata().get(FIELDS_KEY)?;
    text.split_terminator('\0')
        .map(|record| {
            let mut parts = record.splitn(6, ' ');
            Some(WireField {
                table_oid: parts.next()?.parse().ok()?,
                column_id: parts.next()?.parse().ok()?,
                type_oid: parts.next()?.parse().ok()?,
                type_size: parts.next()?.parse().ok()?,
                type_modifier: parts.next()?.parse().ok()?,
                name: parts.next()?.to_owned(),
            })
        })
        .collect()
}

/// The `DataRow` bodies of a pass-through batch (the bytes after the field
/// count), as the server sent them.
pub fn wire_rows(batch: &RecordBatch) -> impl Iterator<Item = &[u8]> {
    let rows = batch
        .columns()
        .first()
        .and_then(|c| c.as_any().downcast_ref::<BinaryArray>());
    rows.into_iter().flat_map(|rows| rows.iter().flatten())
}

/// Where and how to connect, from the engine's tokio-postgres configuration.
#[derive(Debug, Clone)]
pub(crate) struct WireConfig {
    addr: WireAddr,
    user: String,
    database: Option<String>,
    password: Option<Vec<u8>>,
    connect_timeout: Duration,
}

impl WireConfig {
    /// The first host (TCP, or a Unix socket's directory, as libpq reads
    /// `host=/var/run/postgresql`), port and credentials of `config`.
    pub(crate) fn from_config(
        config: &tokio_postgres::Config,
        connect_timeout: Duration,
    ) -> Option<Self> {
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let addr = match config.get_hosts().first()? {
            tokio_postgres::config::Host::Tcp(host) => WireAddr::Tcp {
                host: host.clone(),
                port,
            },
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(dir) => {
                WireAddr::Unix(dir.join(format!(".s.PGSQL.{port}")))
            }
        };
        Some(WireConfig {
            addr,
            user: config.get_user()?.to_owned(),
            database: config.get_dbname().map(str::to_owned),
            password: config.get_password().map(<[u8]>::to_vec),
            connect_timeout,
        })
    }
}

/// Connections for pass-through, kept idle between statements; at most
/// `max_connections` open at once.
#[derive(Debug)]
pub(crate) struct WirePool {
    engine: String,
    config: WireConfig,
    conns: IdlePool<WireConn>,
    /// Texts whose named statements failed as stale plans: every connection
    /// forgets its own statement of them when it is next taken.
    stale: Mutex<StaleLog>,
    /// `floe_engine_passthrough_statements_total` of this engine: a handle,
    /// so a statement does not build and look up its labelled key.
    statements: metrics::Counter,
    /// `floe_engine_passthrough_reused_total` of this engine.
    reused: metrics::Counter,
}

impl WirePool {
    pub(crate) fn new(engine: &str, config: WireConfig, max_connections: usize) -> Self {
        WirePool {
            engine: engine.to_owned(),
            conns: IdlePool::new(max_connections, config.connect_timeout),
            config,
            stale: Mutex::new(StaleLog::default()),
            statements: metrics::counter!("floe_engine_passthrough_statements_total", "engine" => engine.to_owned()),
            reused: metrics::counter!("floe_engine_passthrough_reused_total", "engine" => engine.to_owned()),
        }
    }

    fn unavailable(&self, message: String) -> Error {
        Error::EngineUnavailable {
            engine: self.engine.clone(),
            message,
            retryable: true,
        }
    }

    /// An idle connection, or a new one within the connect timeout.
    async fn get(&self) -> Result<WireConn> {
        let taken = self.conns.get(
            |conn: &mut WireConn| {
                // One closed by the server while idle (a restart, an
                // administrator's terminate) is dropped, permit and all, and
                // the next one tried; no statement is sent on it.
                if !conn.still_open() {
                    return false;
                }
                if let Ok(stale) = self.stale.lock() {
                    stale.apply(&mut conn.named);
                }
                true
            },
            |permit| WireConnection::connect(&self.config, permit),
        );
        taken.await.map_err(|e| match e {
            PoolError::Connect(e) => self.error(e),
            PoolError::Unavailable(message) => self.unavailable(message),
        })
    }

    fn put(&self, conn: WireConn) {
        self.conns.put(conn);
    }

    fn error(&self, e: WireError) -> Error {
        match e {
            WireError::Io(e) => self.unavailable(e.to_string()),
            WireError::Protocol(message) => self.unavailable(message),
            WireError::Server { code, message } => {
                super::postgres::map_sqlstate(&self.engine, &code, message)
            }
        }
    }

    /// Runs `sql` (one statement) and streams its rows as pass-through
    /// batches: with the simple query protocol when `params` is `None`,
    /// otherwise as one extended-protocol round trip (`Parse` unless this
    /// connection already holds the text as a named statement, `Bind` with
    /// the values in text and types left to the server, `Describe`,
    /// `Execute`, `Sync`), results in text either way. `types` are the
    /// parameters' type OIDs (0 or missing: left to the server).
    /// `settings` are the session's (see [`super::Scope::settings`]),
    /// applied first on a connection that has others.
    pub(crate) async fn query(
        self: &Arc<Self>,
        sql: &str,
        params: Option<&[Option<String>]>,
        types: &[u32],
        settings: &[(String, String)],
    ) -> Result<QueryOutput> {
        self.statements.increment(1);
        let mut retried = false;
        loop {
            let mut conn = self.get().await?;
            if conn.applied != settings {
                conn = self.apply(conn, settings).await?;
            }
            let reused = match params {
                None => frontend::query(sql, &mut conn.write).map(|()| None),
                Some(params) => conn.extended(sql, params, types),
            };
            let reused = reused.map_err(|e| self.error(WireError::Io(e)))?;
            if reused.is_some() {
                self.reused.increment(1);
            }
            conn.flush().await.map_err(|e| self.error(e))?;
            // A named statement planned before a table it reads changed
            // shape cannot run again ("cached plan must not change result
            // type"): it is forgotten and the text parsed afresh, once.
            // Nothing reached the client yet.
            let retry = !retried && reused.is_some();
            match self.head(conn, retry).await? {
                Some(output) => return Ok(output),
                None => {
                    retried = true;
                    if let Ok(mut stale) = self.stale.lock() {
                        stale.push(sql.to_owned());
                    }
                }
            }
        }
    }

    /// Reads a statement's response up to its first row (or its end): the
    /// result's shape. `None` when the server reported a stale plan and
    /// `retry_stale`.
    async fn head(
        self: &Arc<Self>,
        mut conn: WireConn,
        retry_stale: bool,
    ) -> Result<Option<QueryOutput>> {
        loop {
            match conn.read_message().await.map_err(|e| self.error(e))? {
                Message::RowDescription(body) => {
                    let fields = body
                        .fields()
                        .map(|f| {
                            Ok(WireField {
                                name: f.name().to_owned(),
                                table_oid: f.table_oid(),
                                column_id: f.column_id(),
                                type_oid: f.type_oid(),
                                type_size: f.type_size(),
                                type_modifier: f.type_modifier(),
                            })
                        })
                        .collect::<Vec<_>>()
                        .map_err(|e| self.error(WireError::Io(e)))?;
                    // A connection mostly runs the same few statements: the
                    // schema made for the last description serves again.
                    let schema = match &conn.last_schema {
                        Some((last, schema)) if *last == fields => Arc::clone(schema),
                        _ => {
                            let schema = pass_through_schema(&fields);
                            conn.last_schema = Some((fields, Arc::clone(&schema)));
                            schema
                        }
                    };
                    let stream = rows(Arc::clone(self), conn, Arc::clone(&schema));
                    return Ok(Some(QueryOutput::Rows { schema, stream }));
                }
                Message::CommandComplete(body) => {
                    let rows = body
                        .tag()
                        .ok()
                        .and_then(|tag| tag.rsplit(' ').next()?.parse().ok());
                    self.finish(conn).await?;
                    return Ok(Some(QueryOutput::Command { rows }));
                }
                Message::EmptyQueryResponse => {
                    self.finish(conn).await?;
                    return Ok(Some(QueryOutput::Command { rows: None }));
                }
                Message::ErrorResponse(body) => {
                    if retry_stale
                        && matches!(server_error(&body), WireError::Server { code, .. } if code == STALE_PLAN)
                    {
                        drop(self.finish(conn).await);
                        return Ok(None);
                    }
                    return Err(self.fail(conn, &body).await);
                }
                _ => {}
            }
        }
    }

    /// Applies a session's `settings` on `conn` (one simple query: see
    /// [`settings_sql`]) and hands it back; a value the server refuses is the
    /// error, with the connection back in the pool as it was.
    async fn apply(&self, mut conn: WireConn, settings: &[(String, String)]) -> Result<WireConn> {
        let sql = settings_sql(settings);
        frontend::query(&sql, &mut conn.write).map_err(|e| self.error(WireError::Io(e)))?;
        conn.flush().await.map_err(|e| self.error(e))?;
        let (_, failed) = self.read_to_ready(&mut conn).await?;
        if let Some(e) = failed {
            self.put(conn);
            return Err(e);
        }
        conn.applied = settings.to_vec();
        Ok(conn)
    }

    /// Reads up to `ReadyForQuery` and returns the connection to the pool when
    /// it is idle outside a transaction; the first error the server reports
    /// on the way is the result.
    async fn finish(&self, mut conn: WireConn) -> Result<()> {
        let (status, failed) = self.read_to_ready(&mut conn).await?;
        // A statement that left a transaction open keeps its connection out
        // of the pool: it closes here.
        if status == b'I' {
            self.put(conn);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Reads `conn`'s messages up to `ReadyForQuery`: its transaction status,
    /// and the first error the server reported on the way.
    async fn read_to_ready(&self, conn: &mut WireConn) -> Result<(u8, Option<Error>)> {
        let mut failed = None;
        loop {
            match conn.read_message().await.map_err(|e| self.error(e))? {
                Message::ReadyForQuery(body) => {
                    conn.done = true;
                    return Ok((body.status(), failed));
                }
                Message::ErrorResponse(body) => {
                    failed.get_or_insert_with(|| self.error(server_error(&body)));
                }
                _ => {}
            }
        }
    }

    /// The statement failed with `body`: the error, once the connection is
    /// ready (and back in the pool) for the next statement.
    async fn fail(
        &self,
        conn: WireConn,
        body: &postgres_protocol::message::backend::ErrorResponseBody,
    ) -> Error {
        let error = self.error(server_error(body));
        drop(self.finish(conn).await);
        error
    }
}

/// The statements that give a PostgreSQL connection, outside a transaction,
/// the session settings `wanted` (as [`super::Scope::settings`]) and no
/// others: `RESET ALL` — every setting Floe does not apply goes back to the
/// connection's default, whatever came before — then one `SELECT` of
/// `set_config` per setting.
pub(crate) fn settings_sql(wanted: &[(String, String)]) -> String {
    let mut sql = "RESET ALL; ".to_owned();
    push_set_config(&mut sql, wanted.iter(), false);
    sql
}

/// The statements that change, inside a block, the session settings in
/// force from `in_force` to `wanted`: transaction-local changes only (`SET
/// LOCAL ... TO DEFAULT`, `set_config(..., true)`), which end with the block,
/// so that what the connection holds at session level stays what was applied
/// before `BEGIN`. Empty when nothing differs.
pub(crate) fn local_settings_sql(
    in_force: &[(String, String)],
    wanted: &[(String, String)],
) -> String {
    let mut sql = String::new();
    for (name, _) in in_force {
        if plain_setting_name(name) && !wanted.iter().any(|(w, _)| w == name) {
            sql.push_str(&format!("SET LOCAL {name} TO DEFAULT; "));
        }
    }
    let changed = wanted.iter().filter(|setting| !in_force.contains(setting));
    push_set_config(&mut sql, changed, true);
    sql
}

/// Appends one `SELECT` of `set_config(name, value, local)` per setting, if
/// any. Values travel as escaped string literals, which `set_config` reads as
/// `SET` would (a list for `search_path`); names are Floe's own, and one that
/// is not a plain identifier is skipped.
fn push_set_config<'a>(
    sql: &mut String,
    settings: impl Iterator<Item = &'a (String, String)>,
    local: bool,
) {
    let calls: Vec<String> = settings
        .filter(|(name, _)| plain_setting_name(name))
        .map(|(name, value)| {
            format!(
                "pg_catalog.set_config('{name}', E'{}', {local})",
                value.replace('\\', "\\\\").replace('\'', "''")
            )
        })
        .collect();
    if !calls.is_empty() {
        sql.push_str("SELECT ");
        sql.push_str(&calls.join(", "));
    }
}

/// Whether a setting's name can be written into SQL as it is.
fn plain_setting_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// How many texts each pass-through connection keeps as named statements.
const NAMED_STATEMENTS: usize = 256;

/// Texts longer than this are parsed on the unnamed statement each time:
/// the server would hold each one's plan for the connection's life.
const NAMED_TEXT_MAX: usize = 16 * 1024;

/// PostgreSQL's SQLSTATE for "cached plan must not change result type".
const STALE_PLAN: &str = "0A000";

/// The statements a connection holds under names (`floe_1`, `floe_2`, ...)
/// so that a text executed again skips the server's parse and analysis,
/// and, once the server settles on a generic plan, its planning: the
/// extended protocol's unnamed statement is parsed for every execution.
/// Like PgDog's prepared-statement cache, but per connection: a name is
/// never reused, so a statement the server may or may not hold is never
/// confused with another.
#[derive(Debug)]
struct Named {
    /// Text to its statements, one per typing of its parameters (see
    /// [`Named::typing`]), least recently used text first.
    statements: lru::LruCache<String, Typings>,
    /// How many statements `statements` holds.
    held: usize,
    /// The last number given.
    last: u64,
    /// The statement parsed by the request in flight (text, typing, number),
    /// kept once the server confirms it (`ParseComplete`).
    pending: Option<(String, Box<[u32]>, u64)>,
    /// Statements to close with the next request (evicted or stale).
    closing: Vec<u64>,
    /// How many entries of the pool's [`StaleLog`] this connection applied.
    stale_seen: u64,
}

impl Named {
    fn new() -> Self {
        Named {
            statements: lru::LruCache::unbounded(),
            held: 0,
            last: 0,
            pending: None,
            closing: Vec::new(),
            stale_seen: 0,
        }
    }

    /// The parameter types a statement is told at `Parse`, as kept: none
    /// when every one is left to the server, so `[0, 0]` and `[]` (the same
    /// statement to the server) share one.
    fn typing(types: &[u32]) -> &[u32] {
        if types.iter().all(|t| *t == 0) {
            &[]
        } else {
            types
        }
    }

    /// The statement held for `sql` with these parameter types, if any.
    fn get(&mut self, sql: &str, types: &[u32]) -> Option<u64> {
        let typing = Named::typing(types);
        self.statements
            .get(sql)?
            .iter()
            .find(|(t, _)| **t == *typing)
            .map(|&(_, id)| id)
    }

    /// The server confirmed the pending `Parse`.
    fn parsed(&mut self) {
        let Some((sql, typing, id)) = self.pending.take() else {
            return;
        };
        match self.statements.get_mut(&sql) {
            Some(typings) => typings.push((typing, id)),
            None => {
                self.statements.put(sql, vec![(typing, id)]);
            }
        }
        self.held += 1;
        while self.held > NAMED_STATEMENTS {
            let Some((_, old)) = self.statements.pop_lru() else {
                break;
            };
            self.close(old);
        }
    }

    /// Drops the statements of `text`, whatever their parameter types; the
    /// server's copies close with the next request.
    fn forget(&mut self, text: &str) {
        if let Some(typings) = self.statements.pop(text) {
            self.close(typings);
        }
    }

    fn close(&mut self, typings: Typings) {
        self.held -= typings.len();
        self.closing.extend(typings.into_iter().map(|(_, id)| id));
    }
}

/// One text's statements: each parameter typing (see [`Named::typing`]) and
/// its statement's number.
type Typings = Vec<(Box<[u32]>, u64)>;

/// The texts found stale, in order, the last [`NAMED_STATEMENTS`] of them;
/// each connection remembers how far it has read (so taking a connection
/// costs one comparison when nothing new went stale).
#[derive(Debug, Default)]
struct StaleLog {
    /// How many texts were dropped from the front.
    dropped: u64,
    texts: std::collections::VecDeque<String>,
}

impl StaleLog {
    fn push(&mut self, text: String) {
        if self.texts.len() >= NAMED_STATEMENTS {
            self.texts.pop_front();
            self.dropped += 1;
        }
        self.texts.push_back(text);
    }

    /// Makes `named` forget what went stale since it last looked. A
    /// connection that fell further behind than the log reaches keeps those
    /// statements: each then fails once and is retried, as the first did.
    fn apply(&self, named: &mut Named) {
        let end = self.dropped + self.texts.len() as u64;
        if named.stale_seen >= end {
            return;
        }
        let skip = usize::try_from(named.stale_seen.saturating_sub(self.dropped)).unwrap_or(0);
        for text in self.texts.iter().skip(skip) {
            named.forget(text);
        }
        named.stale_seen = end;
    }
}

/// The name of statement `id` (`floe_<id>`), written without allocating:
/// it is made for every statement that passes through.
struct StatementName {
    buf: [u8; 25],
    len: usize,
}

impl StatementName {
    fn new(id: u64) -> Self {
        const PREFIX: &[u8] = b"floe_";
        let mut buf = [0; 25];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(id).as_bytes();
        let len = PREFIX.len() + digits.len();
        buf[PREFIX.len()..len].copy_from_slice(digits);
        StatementName { buf, len }
    }

    fn as_str(&self) -> &str {
        // ASCII by construction.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("floe_")
    }
}

/// What reading rows yields, one batch at a time.
struct Rows {
    pool: Arc<WirePool>,
    conn: Option<WireConn>,
    schema: SchemaRef,
}

fn rows(pool: Arc<WirePool>, conn: WireConn, schema: SchemaRef) -> BatchStream {
    let state = Rows {
        pool,
        conn: Some(conn),
        schema,
    };
    Box::pin(futures::stream::try_unfold(state, |mut state| async move {
        let Some(mut conn) = state.conn.take() else {
            return Ok(None);
        };
        let mut builder = BinaryBuilder::new();
        let mut bytes = 0usize;
        loop {
            let message = conn.read_message().await.map_err(|e| state.pool.error(e))?;
            match message {
                Message::DataRow(body) => {
                    let data = body.buffer();
                    bytes += data.len();
                    builder.append_value(data);
                    // Rows already read go on at once when the server pauses:
                    // a slow result still reaches the client as it comes.
                    let more = !conn.read.is_empty();
                    if builder.len() >= BATCH_ROWS || bytes >= BATCH_BYTES || !more {
                        let batch = finish_batch(&state.schema, &mut builder)?;
                        state.conn = Some(conn);
                        return Ok(Some((batch, state)));
                    }
                }
                Message::CommandComplete(_) | Message::EmptyQueryResponse => {
                    state.pool.finish(conn).await?;
                    if builder.len() == 0 {
                        return Ok(None);
                    }
                    let batch = finish_batch(&state.schema, &mut builder)?;
                    return Ok(Some((batch, state)));
                }
                Message::ErrorResponse(body) => return Err(state.pool.fail(conn, &body).await),
                _ => {}
            }
        }
    }))
}

/// The rows gathered in `builder` as one pass-through batch (the MySQL
/// pass-through's too).
pub(crate) fn finish_batch(schema: &SchemaRef, builder: &mut BinaryBuilder) -> Result<RecordBatch> {
    RecordBatch::try_new(Arc::clone(schema), vec![Arc::new(builder.finish())])
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Why a pass-through connection failed.
#[derive(Debug)]
enum WireError {
    Io(std::io::Error),
    Protocol(String),
    Server { code: String, message: String },
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::Io(e)
    }
}

fn server_error(body: &postgres_protocol::message::backend::ErrorResponseBody) -> WireError {
    let mut code = String::new();
    let mut message = String::new();
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        match field.type_() {
            b'C' => code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            _ => {}
        }
    }
    WireError::Server { code, message }
}

/// A connection as the pool and a statement's futures hold it: boxed,
/// because each statement moves its connection from the pool into the
/// query, its head, the row stream and back, and a pointer moves where the
/// struct (~350 bytes) would be copied each time.
type WireConn = Box<WireConnection>;

/// One connection to the server.
#[derive(Debug)]
struct WireConnection {
    stream: WireStream,
    read: BytesMut,
    write: BytesMut,
    /// The server's cancel key, for a statement abandoned mid-way.
    cancel: Option<(i32, i32)>,
    /// Where a cancel request goes.
    addr: WireAddr,
    /// False while a statement is running: dropping the connection then
    /// asks the server to cancel it.
    done: bool,
    /// The statements this connection holds under names.
    named: Named,
    /// The last `RowDescription`'s fields and the schema made of them.
    last_schema: Option<(Vec<WireField>, SchemaRef)>,
    /// The session settings applied on this connection (see
    /// [`super::Scope::settings`]).
    applied: Vec<(String, String)>,
    /// This connection's place under the pool's limit, freed when it closes.
    _permit: OwnedSemaphorePermit,
}

impl Drop for WireConnection {
    /// A connection dropped in the middle of a statement (the client went
    /// away, cancelled, or timed out) cancels the statement on the server, as
    /// psql's Ctrl-C does; closing the socket alone would let it run on until
    /// it next writes.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (Some((pid, key)), Ok(runtime)) = (self.cancel, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let addr = self.addr.clone();
        runtime.spawn(async move {
            let mut buf = BytesMut::new();
            frontend::cancel_request(pid, key, &mut buf);
            if let Ok(mut stream) = WireStream::connect(&addr).await {
                drop(stream.write_all(&buf).await);
            }
        });
    }
}

impl WireConnection {
    async fn connect(
        config: &WireConfig,
        permit: OwnedSemaphorePermit,
    ) -> std::result::Result<WireConn, WireError> {
        let stream = WireStream::connect(&config.addr).await?;
        let mut conn = Box::new(WireConnection {
            stream,
            read: BytesMut::with_capacity(8192),
            write: BytesMut::with_capacity(1024),
            cancel: None,
            addr: config.addr.clone(),
            done: true,
            named: Named::new(),
            last_schema: None,
            applied: Vec::new(),
            _permit: permit,
        });
        let mut params = vec![
            ("user", config.user.as_str()),
            ("application_name", "floe"),
            ("client_encoding", "UTF8"),
        ];
        if let Some(database) = &config.database {
            params.push(("database", database.as_str()));
        }
        frontend::startup_message(params, &mut conn.write)?;
        conn.flush().await?;
        conn.authenticate(config).await?;
        loop {
            match conn.read_message().await? {
                Message::BackendKeyData(body) => {
                    conn.cancel = Some((body.process_id(), body.secret_key()));
                }
                Message::ReadyForQuery(_) => {
                    conn.done = true;
                    return Ok(conn);
                }
                Message::ErrorResponse(body) => return Err(server_error(&body)),
                _ => {}
            }
        }
    }

    async fn authenticate(&mut self, config: &WireConfig) -> std::result::Result<(), WireError> {
        let password = || {
            config.password.as_deref().ok_or_else(|| {
                WireError::Protocol("the server asks for a password and none is configured".into())
            })
        };
        loop {
            match self.read_message().await? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?, &mut self.write)?;
                    self.flush().await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(config.user.as_bytes(), password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.write)?;
                    self.flush().await?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut scram = false;
                    while let Some(mechanism) = mechanisms.next()? {
                        scram |= mechanism == SCRAM_SHA_256;
                    }
                    if !scram {
                        return Err(WireError::Protocol(
                            "the server offers no SASL mechanism Floe speaks".into(),
                        ));
                    }
                    let mut sasl = ScramSha256::new(password()?, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(
                        SCRAM_SHA_256,
                        sasl.message(),
                        &mut self.write,
                    )?;
                    self.flush().await?;
                    match self.read_message().await? {
                        Message::AuthenticationSaslContinue(body) => sasl.update(body.data())?,
                        Message::ErrorResponse(body) => return Err(server_error(&body)),
                        _ => return Err(WireError::Protocol("unexpected SASL message".into())),
                    }
                    frontend::sasl_response(sasl.message(), &mut self.write)?;
                    self.flush().await?;
                    match self.read_message().await? {
                        Message::AuthenticationSaslFinal(body) => sasl.finish(body.data())?,
                        Message::ErrorResponse(body) => return Err(server_error(&body)),
                        _ => return Err(WireError::Protocol("unexpected SASL message".into())),
                    }
                }
                Message::ErrorResponse(body) => return Err(server_error(&body)),
                _ => {
                    return Err(WireError::Protocol(
                        "the server asks for an authentication method Floe does not speak".into(),
                    ));
                }
            }
        }
    }

    /// Writes the extended-protocol messages of one statement with text
    /// parameters: `Bind` to this connection's named statement of the text,
    /// after its `Parse` when it holds none yet. Returns the statement
    /// reused, if any.
    fn extended(
        &mut self,
        sql: &str,
        params: &[Option<String>],
        types: &[u32],
    ) -> std::io::Result<Option<u64>> {
        let buf = &mut self.write;
        for id in self.named.closing.drain(..) {
            frontend::close(b'S', StatementName::new(id).as_str(), buf)?;
        }
        // A `Parse` the server refused left nothing behind.
        self.named.pending = None;
        // The same text with other parameter types is another statement.
        let (name, reused) = match self.named.get(sql, types) {
            Some(id) => (Some(StatementName::new(id)), Some(id)),
            None if sql.len() <= NAMED_TEXT_MAX => {
                self.named.last += 1;
                let id = self.named.last;
                let name = StatementName::new(id);
                frontend::parse(name.as_str(), sql, types.iter().copied(), buf)?;
                let typing = Named::typing(types).into();
                self.named.pending = Some((sql.to_owned(), typing, id));
                (Some(name), None)
            }
            None => {
                frontend::parse("", sql, types.iter().copied(), buf)?;
                (None, None)
            }
        };
        let bound = frontend::bind(
            "",
            name.as_ref().map_or("", StatementName::as_str),
            std::iter::empty::<i16>(),
            params,
            |param, buf| match param {
                Some(text) => {
                    buf.extend_from_slice(text.as_bytes());
                    Ok(postgres_protocol::IsNull::No)
                }
                None => Ok(postgres_protocol::IsNull::Yes),
            },
            std::iter::empty::<i16>(),
            buf,
        );
        match bound {
            Ok(()) => {}
            Err(frontend::BindError::Conversion(e)) => {
                return Err(std::io::Error::other(e.to_string()));
            }
            Err(frontend::BindError::Serialization(e)) => return Err(e),
        }
        frontend::describe(b'P', "", buf)?;
        frontend::execute("", 0, buf)?;
        frontend::sync(buf);
        Ok(reused)
    }

    /// Whether this idle connection is still open (see
    /// [`WireStream::still_open`]): a server ends a connection by sending an
    /// error (`57P01` on shutdown) and closing it.
    fn still_open(&self) -> bool {
        self.stream.still_open()
    }

    async fn flush(&mut self) -> std::result::Result<(), WireError> {
        self.done = false;
        self.stream.write_all(&self.write).await?;
        self.write.clear();
        Ok(())
    }

    async fn read_message(&mut self) -> std::result::Result<Message, WireError> {
        loop {
            if let Some(message) = Message::parse(&mut self.read)? {
                if let Message::ParseComplete = message {
                    self.named.parsed();
                }
                return Ok(message);
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(WireError::Protocol(
                    "the server closed the connection".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_text_keeps_one_statement_per_typing_and_forgets_them_all_when_stale() {
        let mut named = Named::new();
        let parse = |named: &mut Named, sql: &str, types: &[u32]| {
            named.last += 1;
            named.pending = Some((sql.to_owned(), Named::typing(types).into(), named.last));
            named.parsed();
            named.last
        };
        let untyped = parse(&mut named, "SELECT $1", &[0]);
        let typed = parse(&mut named, "SELECT $1", &[23]);
        assert_eq!(
            named.get("SELECT $1", &[]),
            Some(untyped),
            "[0] is [] to the server"
        );
        assert_eq!(named.get("SELECT $1", &[0]), Some(untyped));
        assert_eq!(named.get("SELECT $1", &[23]), Some(typed));
        assert_eq!(named.get("SELECT $1", &[20]), None);
        // A stale plan is reported by text: every typing of it goes.
        named.forget("SELECT $1");
        assert_eq!(named.get("SELECT $1", &[23]), None);
        assert_eq!(named.closing, [untyped, typed]);
        assert_eq!(named.held, 0);

        // At the bound, the least recently used text closes.
        named.closing.clear();
        let first = parse(&mut named, "SELECT 0", &[]);
        for n in 1..NAMED_STATEMENTS {
            parse(&mut named, &format!("SELECT {n}"), &[]);
        }
        assert!(named.closing.is_empty());
        parse(&mut named, "SELECT 'one more'", &[]);
        assert_eq!(named.closing, [first]);
        assert_eq!(named.held, NAMED_STATEMENTS);
    }

    #[test]
    fn statement_names_are_written_in_place() {
        for id in [0, 7, 123_456, u64::MAX] {
            assert_eq!(StatementName::new(id).as_str(), format!("floe_{id}"));
        }
    }

    #[test]
    fn settings_are_applied_as_escaped_literals_after_a_reset() {
        let wanted = pairs(&[("search_path", "sales, public"), ("timezone", "it's\\here")]);
        assert_eq!(
            settings_sql(&wanted),
            "RESET ALL; SELECT pg_catalog.set_config('search_path', E'sales, public', false), \
             pg_catalog.set_config('timezone', E'it''s\\\\here', false)"
        );
        assert_eq!(settings_sql(&[]), "RESET ALL; ");
        // A name that is not a plain identifier never reaches the server.
        assert_eq!(
            settings_sql(&pairs(&[("x; DROP TABLE t", "1")])),
            "RESET ALL; "
        );
    }

    #[test]
    fn inside_a_block_only_the_differences_change_and_only_for_the_block() {
        let applied = pairs(&[("datestyle", "ISO, DMY"), ("timezone", "UTC")]);
        let wanted = pairs(&[("timezone", "Europe/Paris"), ("work_mem", "64MB")]);
        assert_eq!(
            local_settings_sql(&applied, &wanted),
            "SET LOCAL datestyle TO DEFAULT; SELECT pg_catalog.set_config('timezone', E'Europe/Paris', true), \
             pg_catalog.set_config('work_mem', E'64MB', true)"
        );
    }

    #[test]
    fn fields_survive_the_schema_metadata() {
        let fields = vec![
            WireField {
                name: "a b\nc".to_owned(),
                table_oid: 16384,
                column_id: 1,
                type_oid: 23,
                type_size: 4,
                type_modifier: -1,
            },
            WireField {
                name: "Ünïcode".to_owned(),
                table_oid: 0,
                column_id: 0,
                type_oid: 1043,
                type_size: -1,
                type_modifier: 44,
            },
        ];
        let schema = pass_through_schema(&fields);
        assert_eq!(wire_fields(&schema), Some(fields));
        assert_eq!(wire_fields(&Schema::empty()), None);
    }
}
