//! MySQL's client protocol spoken directly, for pass-through.
//!
//! When a MySQL client's read-only statement runs unchanged on a MySQL or
//! MariaDB engine, there is nothing to convert: the server's column
//! definitions and rows, text (`COM_QUERY`) or binary (`COM_STMT_EXECUTE`),
//! are what the client asked for. This module runs such a statement on a
//! connection of its own pool, from the statement's own task, and hands the
//! server's packets on as they came; mysql_async's decoding into values, the
//! values' conversion to Arrow and the front end's encoding back are skipped.
//!
//! The rows still travel through the router and session as record batches,
//! as the PostgreSQL pass-through's do ([`super::pg_wire`]): a batch of
//! [`pass_through_schema`] has one `Binary` column whose values are row
//! packets' payloads, and the schema's metadata carries the column
//! definitions. Only the MySQL front end asks for them
//! ([`super::Request::mysql_rows`]) and only it reads them ([`wire_columns`]).
//!
//! A binary row is laid out by the column types the client holds for the
//! statement, which it was told at `COM_STMT_PREPARE` from Floe's plan
//! ([`super::Prepared::schema`]). The server's rows pass through only when
//! every column is laid out alike both ways ([`Layout`]); otherwise (an
//! unsigned column, which Floe widens) the statement takes the converting
//! path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{ArrayBuilder, BinaryBuilder, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::{Buf, BytesMut};
use datafusion::scalar::ScalarValue;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::columns::BATCH_ROWS;
use super::idle_pool::{IdlePool, PoolError};
use super::pg_wire::finish_batch;
use super::wire_stream::{WireAddr, WireStream};
use super::{BatchStream, MySqlRows, QueryOutput};
use crate::{Error, Result};

/// The schema metadata key that marks a pass-through result and carries its
/// column definitions.
const COLUMNS_KEY: &str = "floe.mysql_columns";

/// Bytes of rows a batch holds at most, so that wide rows do not pile up.
const BATCH_BYTES: usize = 1 << 20;

/// The largest payload of one packet; a longer one continues in the next.
const MAX_PAYLOAD: usize = 0xff_ffff;

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_LONG_FLAG: u32 = 0x4;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x2_0000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;

const SERVER_STATUS_IN_TRANS: u16 = 0x1;
const SERVER_MORE_RESULTS_EXISTS: u16 = 0x8;

/// `utf8mb4_general_ci`, the collation mysql_async's connections ask for too.
const UTF8MB4_GENERAL_CI: u8 = 45;

const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_CLOSE: u8 = 0x19;

/// How many statements each pass-through connection keeps prepared.
const PREPARED_STATEMENTS: usize = 256;

/// The schema of a pass-through result with these column definitions
/// (packet payloads): one `Binary` column of row payloads.
fn pass_through_schema(columns: &[Vec<u8>]) -> SchemaRef {
    // Each definition as its 3-byte length and its bytes, all in hex: the
    // metadata is text.
    let mut text = String::with_capacity(columns.iter().map(|c| 2 * c.len() + 6).sum());
    for column in columns {
        let len = u32::try_from(column.len()).unwrap_or(0).to_le_bytes();
        push_hex(&mut text, &len[..3]);
        push_hex(&mut text, column);
    }
    Arc::new(
        Schema::new(vec![Field::new("mysql_row", DataType::Binary, false)])
            .with_metadata(HashMap::from([(COLUMNS_KEY.to_owned(), text)])),
    )
}

fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// The bytes of lower-case hex `text` (as [`push_hex`] writes it).
fn unhex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len() / 2);
    for pair in text.chunks_exact(2) {
        bytes.push(digit(pair[0])? << 4 | digit(pair[1])?);
    }
    Some(bytes)
}

/// The column definitions (packet payloads, as the server sent them) of a
/// pass-through result, or `None` for any other schema.
pub fn wire_columns(schema: &Schema) -> Option<Vec<Vec<u8>>> {
    decode_columns(schema.metadata().get(COLUMNS_KEY)?)
}

fn decode_columns(text: &str) -> Option<Vec<Vec<u8>>> {
    let bytes = unhex(text)?;
    let mut rest = &bytes[..];
    let mut columns = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_at_checked(3)?;
        let len = usize::from(len[0]) | usize::from(len[1]) << 8 | usize::from(len[2]) << 16;
        let (column, tail) = tail.split_at_checked(len)?;
        columns.push(column.to_vec());
        rest = tail;
    }
    Some(columns)
}

/// [`wire_columns`] for a connection of the front end, which remembers the
/// last definitions it decoded: a client's results mostly repeat them, and
/// comparing their text costs far less than decoding it again (decoding was
/// ~3,400 instructions of a sysbench point select's).
#[derive(Debug, Default)]
pub struct ColumnsCache {
    last: Option<(String, Arc<[Vec<u8>]>)>,
}

impl ColumnsCache {
    /// The column definitions of a pass-through result's `schema`, or
    /// `None` for any other schema.
    pub fn columns(&mut self, schema: &Schema) -> Option<Arc<[Vec<u8>]>> {
        let text = schema.metadata().get(COLUMNS_KEY)?;
        if let Some((last, columns)) = &self.last
            && last == text
        {
            return Some(Arc::clone(columns));
        }
        let columns: Arc<[Vec<u8>]> = decode_columns(text)?.into();
        self.last = Some((text.clone(), Arc::clone(&columns)));
        Some(columns)
    }
}

/// The row payloads of a pass-through batch, as the server sent them.
pub fn wire_rows(batch: &RecordBatch) -> impl Iterator<Item = &[u8]> {
    super::pg_wire::wire_rows(batch)
}

/// Appends `payload` to `buf` as a packet with sequence number `seq`, or,
/// from 16 MiB on, as several (a payload of a multiple of the maximum ends
/// with an empty one); `seq` moves past them.
pub fn push_packet(buf: &mut Vec<u8>, seq: &mut u8, payload: &[u8]) {
    let mut chunks = payload.chunks(MAX_PAYLOAD);
    loop {
        let chunk = chunks.next().unwrap_or_default();
        let len = (chunk.len() as u32).to_le_bytes();
        buf.extend_from_slice(&len[..3]);
        buf.push(*seq);
        *seq = seq.wrapping_add(1);
        buf.extend_from_slice(chunk);
        if chunk.len() < MAX_PAYLOAD {
            break;
        }
    }
}

/// How a column's values are laid out in a binary-protocol row, which the
/// client reads by the column type it was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A fixed number of bytes (integers, floats).
    Fixed(u8),
    /// A length byte and a date or date-time.
    Date,
    /// A length byte and a time.
    Time,
    /// A length-encoded string (strings, decimals, blobs, JSON, bits).
    Bytes,
    /// Nothing: the type `NULL`, whose values are all in the NULL bitmap.
    Nothing,
}

impl Layout {
    /// The layout of a column of MySQL type `column_type` (its number).
    pub fn of_column_type(column_type: u8) -> Layout {
        match column_type {
            1 => Layout::Fixed(1),                      // TINY
            2 | 13 => Layout::Fixed(2),                 // SHORT, YEAR
            3 | 9 => Layout::Fixed(4),                  // LONG, INT24
            4 => Layout::Fixed(4),                      // FLOAT
            5 | 8 => Layout::Fixed(8),                  // DOUBLE, LONGLONG
            6 => Layout::Nothing,                       // NULL
            7 | 10 | 12 | 14 | 17 | 18 => Layout::Date, // TIMESTAMP, DATE, DATETIME, NEWDATE, and the 2s
            11 | 19 => Layout::Time,                    // TIME, TIME2
            _ => Layout::Bytes,
        }
    }

    /// The layout the MySQL front end writes a value of Arrow type
    /// `data_type` in (its column type for that Arrow type; a test of the
    /// front end keeps the two in step).
    pub fn of_arrow(data_type: &DataType) -> Layout {
        match data_type {
            DataType::Boolean | DataType::Int8 | DataType::UInt8 => Layout::Fixed(1),
            DataType::Int16 | DataType::UInt16 => Layout::Fixed(2),
            DataType::Int32 | DataType::UInt32 | DataType::Float16 | DataType::Float32 => {
                Layout::Fixed(4)
            }
            DataType::Int64 | DataType::UInt64 | DataType::Float64 => Layout::Fixed(8),
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => Layout::Date,
            DataType::Time32(_) | DataType::Time64(_) => Layout::Time,
            _ => Layout::Bytes,
        }
    }

    /// Whether a client that expects `self` reads a value laid out as
    /// `server` correctly.
    fn reads(self, server: Layout) -> bool {
        self == server || server == Layout::Nothing
    }
}

/// Where and how to connect, from the engine's URL.
#[derive(Debug, Clone)]
pub(crate) struct WireConfig {
    addr: WireAddr,
    user: String,
    password: Option<String>,
    database: Option<String>,
    connect_timeout: Duration,
}

impl WireConfig {
    /// The address (the URL's `socket`, else its host and port) and
    /// credentials of `opts`; `None` when the engine connects over TLS,
    /// which pass-through does not speak.
    pub(crate) fn from_opts(
        opts: &mysql_async::Opts,
        password: Option<&str>,
        connect_timeout: Duration,
    ) -> Option<Self> {
        if opts.ssl_opts().is_some() {
            return None;
        }
        let addr = match opts.socket() {
            #[cfg(unix)]
            Some(socket) => WireAddr::Unix(socket.into()),
            #[cfg(not(unix))]
            Some(_) => return None,
            None => WireAddr::Tcp {
                host: opts.ip_or_hostname().to_owned(),
                port: opts.tcp_port(),
            },
        };
        Some(WireConfig {
            addr,
            user: opts.user().unwrap_or_default().to_owned(),
            password: password.or(opts.pass()).map(str::to_owned),
            database: opts.db_name().map(str::to_owned),
            connect_timeout,
        })
    }
}

/// Why a pass-through connection failed.
#[derive(Debug)]
enum WireError {
    Io(std::io::Error),
    Protocol(String),
    /// The server's authentication method is not one this client speaks:
    /// the engine stops trying pass-through.
    Unsupported(String),
    Server(mysql_async::ServerError),
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::Io(e)
    }
}

/// What the statement needs that only the converting path gives.
pub(crate) struct NotHere;

/// One statement for [`WirePool::query`].
pub(crate) struct WireRequest<'a> {
    /// The text, as it is to be prepared or sent.
    pub(crate) sql: &'a str,
    /// Values of its parameters (binary rows only).
    pub(crate) params: &'a [ScalarValue],
    /// Text or binary rows.
    pub(crate) rows: MySqlRows,
    /// For binary rows: the column types the client was told, by Arrow type.
    pub(crate) described: Option<&'a Schema>,
    /// The database the statement runs in; `None` leaves the connection
    /// where it is.
    pub(crate) database: Option<&'a str>,
    /// The session's variables (of [`super::MYSQL_SESSION_SETTINGS`]).
    pub(crate) settings: &'a [(String, String)],
}

/// What [`WirePool::query`] gives: the statement's result, or `NotHere`.
pub(crate) type Attempt = std::result::Result<Result<QueryOutput>, NotHere>;

/// Connections for pass-through, kept idle between statements; at most
/// `max_connections` open at once.
#[derive(Debug)]
pub(crate) struct WirePool {
    engine: String,
    config: Arc<WireConfig>,
    conns: IdlePool<WireConn>,
    /// Set when the server asked for an authentication method this client
    /// does not speak: every statement takes the converting path.
    disabled: AtomicBool,
    /// `floe_engine_passthrough_statements_total` of this engine.
    statements: metrics::Counter,
    /// `floe_engine_passthrough_reused_total` of this engine: executions
    /// of a statement the connection had prepared.
    reused: metrics::Counter,
}

impl WirePool {
    pub(crate) fn new(engine: &str, config: WireConfig, max_connections: usize) -> Self {
        WirePool {
            engine: engine.to_owned(),
            conns: IdlePool::new(max_connections, config.connect_timeout),
            config: Arc::new(config),
            disabled: AtomicBool::new(false),
            statements: metrics::counter!("floe_engine_passthrough_statements_total", "engine" => engine.to_owned()),
            reused: metrics::counter!("floe_engine_passthrough_reused_total", "engine" => engine.to_owned()),
        }
    }

    /// Whether statements may pass through at all.
    pub(crate) fn enabled(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }

    fn unavailable(&self, message: String) -> Error {
        Error::EngineUnavailable {
            engine: self.engine.clone(),
            message,
            retryable: true,
        }
    }

    fn error(&self, e: WireError) -> Error {
        match e {
            WireError::Io(e) => self.unavailable(e.to_string()),
            WireError::Protocol(message) | WireError::Unsupported(message) => {
                self.unavailable(message)
            }
            WireError::Server(server) => {
                super::mysql::map_error(&self.engine, mysql_async::Error::Server(server))
            }
        }
    }

    /// An idle connection, or a new one within the connect timeout.
    async fn get(&self) -> std::result::Result<WireConn, WireError> {
        // One closed or killed while idle is dropped, permit and all.
        let taken = self.conns.get(
            |conn: &mut WireConn| conn.still_open(),
            |permit| WireConnection::connect(&self.config, permit),
        );
        taken.await.map_err(|e| match e {
            PoolError::Connect(e) => e,
            PoolError::Unavailable(message) => WireError::Protocol(message),
        })
    }

    /// Takes back a connection whose statement ended.
    fn put(&self, mut conn: WireConn) {
        conn.done = true;
        self.conns.put(conn);
    }

    /// Runs one read-only statement and streams the server's rows as
    /// pass-through batches. `Err(NotHere)` (nothing sent to the client,
    /// nothing changed on the server) when the statement needs the
    /// converting path: a parameter of a type not sent here, binary rows
    /// laid out otherwise than the client expects, a database the server
    /// lacks, or a server this client cannot log in to.
    ///
    /// A connection found lost before any row arrived is replaced once.
    pub(crate) async fn query(self: &Arc<Self>, request: &WireRequest<'_>) -> Attempt {
        let values = match request.rows {
            MySqlRows::Binary => Some(encode_params(request.params).ok_or(NotHere)?),
            MySqlRows::Text if request.params.is_empty() => None,
            MySqlRows::Text => return Err(NotHere),
        };
        let mut retried = false;
        loop {
            let conn = match self.get().await {
                Ok(conn) => conn,
                Err(WireError::Unsupported(message)) => {
                    if !self.disabled.swap(true, Ordering::Relaxed) {
                        tracing::warn!(engine = %self.engine, %message, "MySQL pass-through is off for this engine");
                    }
                    return Err(NotHere);
                }
                Err(e) => return Ok(Err(self.error(e))),
            };
            match self.run(conn, request, values.as_deref()).await {
                Ok(outcome) => return outcome,
                // Lost (closed by the server, or killed) before any of the
                // statement's reply arrived: it runs once more.
                Err(WireError::Io(e)) if !retried => {
                    tracing::debug!(engine = %self.engine, error = %e, "a pass-through connection was lost; retrying on a new one");
                    retried = true;
                }
                Err(e) => return Ok(Err(self.error(e))),
            }
        }
    }

    /// [`WirePool::query`] on one connection. An `Err` is the connection's
    /// failure before any of the statement's reply arrived (the connection
    /// is dropped).
    async fn run(
        self: &Arc<Self>,
        mut conn: WireConn,
        request: &WireRequest<'_>,
        values: Option<&[u8]>,
    ) -> std::result::Result<Attempt, WireError> {
        let settings = request.settings;
        if conn.applied != settings {
            let sql = super::mysql::set_session_sql(settings);
            if let Err(e) = conn.simple(COM_QUERY, sql.as_bytes()).await? {
                self.put(conn);
                return Ok(Ok(Err(self.error(e))));
            }
            conn.applied = settings.to_vec();
        }
        if let Some(database) = request.database
            && conn.database.as_deref() != Some(database)
        {
            match conn.simple(COM_INIT_DB, database.as_bytes()).await? {
                Ok(()) => conn.database = Some(database.to_owned()),
                Err(_) => {
                    // The converting path knows when a missing database
                    // does not matter (every table qualified).
                    self.put(conn);
                    return Ok(Err(NotHere));
                }
            }
        }
        match values {
            None => conn.command(COM_QUERY, request.sql.as_bytes()),
            Some(values) => {
                let (statement, reused) = match conn.prepared(request.sql) {
                    Some(statement) => (statement, true),
                    None => match conn.prepare(request.sql).await? {
                        Ok(statement) => (statement, false),
                        Err(e) => {
                            self.put(conn);
                            return Ok(Ok(Err(self.error(e))));
                        }
                    },
                };
                let fits = request.described.is_some_and(|schema| {
                    schema.fields().len() == statement.layouts.len()
                        && schema.fields().iter().zip(statement.layouts.iter()).all(
                            |(field, server)| Layout::of_arrow(field.data_type()).reads(*server),
                        )
                });
                if !fits || usize::from(statement.params) != request.params.len() {
                    self.put(conn);
                    return Ok(Err(NotHere));
                }
                if reused {
                    self.reused.increment(1);
                }
                conn.execute(statement.id, request.params.len(), values);
            }
        }
        self.statements.increment(1);
        // From here until its result ends, dropping the connection stops
        // the statement on the server.
        conn.done = false;
        let sent = async {
            conn.flush().await?;
            conn.read_packet().await
        }
        .await;
        let first = match sent {
            Ok(first) if !killed(&first) => first,
            // The connection is gone: nothing runs on it to stop.
            Ok(_) => {
                conn.done = true;
                return Err(WireError::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the connection was killed",
                )));
            }
            Err(e) => {
                conn.done = true;
                return Err(e);
            }
        };
        Ok(Ok(self.head(conn, first).await))
    }

    /// Reads a result's head from its `first` packet on: a command's OK, an
    /// error, or the column definitions, after which the rows stream.
    async fn head(self: &Arc<Self>, mut conn: WireConn, first: BytesMut) -> Result<QueryOutput> {
        match first.first() {
            Some(0x00) => {
                let ok = OkPacket::parse(&first);
                self.settle(conn, ok.status);
                Ok(QueryOutput::Command {
                    rows: Some(ok.affected),
                })
            }
            Some(0xff) => {
                let e = server_error(&first);
                self.put(conn);
                Err(self.error(e))
            }
            Some(0xfb) => Err(self.error(WireError::Protocol(
                "the server asked for a local file".to_owned(),
            ))),
            _ => {
                let mut cursor = &first[..];
                let count = read_lenenc(&mut cursor)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        self.error(WireError::Protocol("a malformed column count".to_owned()))
                    })?;
                let mut columns = Vec::with_capacity(count);
                for _ in 0..count {
                    let column = conn.read_packet().await.map_err(|e| self.error(e))?;
                    columns.push(column.to_vec());
                }
                if !conn.deprecate_eof {
                    conn.read_packet().await.map_err(|e| self.error(e))?;
                }
                // A connection mostly runs the same few statements: the
                // schema made for the last definitions serves again.
                let schema = match &conn.last_schema {
                    Some((last, schema)) if *last == columns => Arc::clone(schema),
                    _ => {
                        let schema = pass_through_schema(&columns);
                        conn.last_schema = Some((columns, Arc::clone(&schema)));
                        schema
                    }
                };
                let stream = rows(Arc::clone(self), conn, Arc::clone(&schema));
                Ok(QueryOutput::Rows { schema, stream })
            }
        }
    }

    /// The statement ended with `status`: the connection goes back to the
    /// pool unless it was left inside a transaction or with more results
    /// to read (it then closes).
    fn settle(&self, mut conn: WireConn, status: u16) {
        if status & (SERVER_STATUS_IN_TRANS | SERVER_MORE_RESULTS_EXISTS) == 0 {
            self.put(conn);
        } else {
            conn.done = true;
        }
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
            let row = conn.read_packet().await.map_err(|e| state.pool.error(e))?;
            match row.first() {
                Some(0xfe) if row.len() < MAX_PAYLOAD => {
                    // The end: an EOF packet, or an OK one with CLIENT_DEPRECATE_EOF.
                    let status = if conn.deprecate_eof {
                        OkPacket::parse(&row).status
                    } else {
                        row.get(3..5)
                            .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
                    };
                    state.pool.settle(conn, status);
                    if builder.len() == 0 {
                        return Ok(None);
                    }
                    let batch = finish_batch(&state.schema, &mut builder)?;
                    return Ok(Some((batch, state)));
                }
                Some(0xff) => {
                    let e = server_error(&row);
                    state.pool.put(conn);
                    return Err(state.pool.error(e));
                }
                _ => {
                    bytes += row.len();
                    builder.append_value(&row);
                    // Rows already read go on at once when the server
                    // pauses: a slow result still reaches the client as it
                    // comes.
                    let more = conn.read.len() >= 4;
                    if builder.len() >= BATCH_ROWS || bytes >= BATCH_BYTES || !more {
                        let batch = finish_batch(&state.schema, &mut builder)?;
                        state.conn = Some(conn);
                        return Ok(Some((batch, state)));
                    }
                }
            }
        }
    }))
}

/// An OK packet's counts and status.
struct OkPacket {
    affected: u64,
    status: u16,
}

impl OkPacket {
    fn parse(packet: &[u8]) -> OkPacket {
        let mut cursor = packet.get(1..).unwrap_or_default();
        let affected = read_lenenc(&mut cursor).unwrap_or(0);
        let _last_insert_id = read_lenenc(&mut cursor);
        let status = cursor
            .get(..2)
            .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]));
        OkPacket { affected, status }
    }
}

/// MariaDB's "Connection was killed": a connection killed while idle
/// answers its next command with it.
const ER_CONNECTION_KILLED: u16 = 1927;

/// Whether `packet` is the error a killed connection answers with.
fn killed(packet: &[u8]) -> bool {
    packet.first() == Some(&0xff)
        && packet.get(1..3) == Some(&ER_CONNECTION_KILLED.to_le_bytes()[..])
}

fn server_error(packet: &[u8]) -> WireError {
    // 0xff, code (2), then `#` and a 5-character SQLSTATE (protocol 4.1).
    let code = packet
        .get(1..3)
        .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    let rest = packet.get(3..).unwrap_or_default();
    let (state, message) = match rest.split_first() {
        Some((b'#', tail)) if tail.len() >= 5 => (&tail[..5], &tail[5..]),
        _ => (&b"HY000"[..], rest),
    };
    WireError::Server(mysql_async::ServerError {
        code,
        message: String::from_utf8_lossy(message).into_owned(),
        state: String::from_utf8_lossy(state).into_owned(),
    })
}

/// Reads a length-encoded integer; `None` for the NULL marker or too few bytes.
fn read_lenenc(cursor: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = cursor.split_first()?;
    let (value, used) = match first {
        0..=0xfa => (u64::from(first), 0),
        0xfc => (
            u64::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        0xfd => {
            let b = rest.get(..3)?;
            (
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16,
                3,
            )
        }
        0xfe => (u64::from_le_bytes(rest.get(..8)?.try_into().ok()?), 8),
        _ => return None,
    };
    *cursor = &rest[used..];
    Some(value)
}

/// Appends `n` as a length-encoded integer.
pub fn push_lenenc(buf: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfa => buf.push(n as u8),
        0xfb..=0xffff => {
            buf.push(0xfc);
            buf.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            buf.push(0xfd);
            buf.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            buf.push(0xfe);
            buf.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// The part of a `COM_STMT_EXECUTE` after its iteration count, for these
/// values: NULL bitmap, "types follow", each value's type, the values.
/// `None` for a value of a type this client does not send.
fn encode_params(params: &[ScalarValue]) -> Option<Vec<u8>> {
    if params.is_empty() {
        return Some(Vec::new());
    }
    const UNSIGNED: u8 = 0x80;
    let mut out = vec![0u8; params.len().div_ceil(8)];
    out.push(1);
    let mut values = Vec::new();
    let mut types = Vec::with_capacity(2 * params.len());
    for (i, value) in params.iter().enumerate() {
        let (ty, flag) = if value.is_null() {
            out[i / 8] |= 1 << (i % 8);
            (6, 0) // NULL
        } else {
            match value {
                ScalarValue::Boolean(Some(b)) => {
                    values.push(u8::from(*b));
                    (1, 0)
                }
                ScalarValue::Int8(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (1, 0)
                }
                ScalarValue::Int16(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (2, 0)
                }
                ScalarValue::Int32(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (3, 0)
                }
                ScalarValue::Int64(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (8, 0)
                }
                ScalarValue::UInt8(Some(v)) => {
                    values.push(*v);
                    (1, UNSIGNED)
                }
                ScalarValue::UInt16(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (2, UNSIGNED)
                }
                ScalarValue::UInt32(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (3, UNSIGNED)
                }
                ScalarValue::UInt64(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (8, UNSIGNED)
                }
                ScalarValue::Float32(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (4, 0)
                }
                ScalarValue::Float64(Some(v)) => {
                    values.extend_from_slice(&v.to_le_bytes());
                    (5, 0)
                }
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)) => {
                    push_lenenc(&mut values, s.len() as u64);
                    values.extend_from_slice(s.as_bytes());
                    (253, 0) // VAR_STRING
                }
                ScalarValue::Binary(Some(b))
                | ScalarValue::LargeBinary(Some(b))
                | ScalarValue::BinaryView(Some(b)) => {
                    push_lenenc(&mut values, b.len() as u64);
                    values.extend_from_slice(b);
                    (252, 0) // BLOB
                }
                // Dates, times and decimals go to the converting path,
                // which sends them as mysql_async does.
                _ => return None,
            }
        };
        types.push(ty);
        types.push(flag);
    }
    out.extend_from_slice(&types);
    out.extend_from_slice(&values);
    Some(out)
}

/// A statement a connection holds prepared.
#[derive(Debug, Clone)]
struct Statement {
    id: u32,
    params: u16,
    /// The layout of each result column, from the server's definitions.
    layouts: Arc<[Layout]>,
}

/// A connection as the pool and a statement's futures hold it: boxed, as
/// the PostgreSQL pass-through's is, because it moves through the query,
/// its head, the row stream and back.
type WireConn = Box<WireConnection>;

/// One connection to the server.
#[derive(Debug)]
struct WireConnection {
    stream: WireStream,
    /// Where it connected, for the `KILL QUERY` of a statement abandoned
    /// mid-way.
    config: Arc<WireConfig>,
    /// The server's id of this connection.
    thread_id: u32,
    /// False while a statement is running: dropping the connection then
    /// asks the server to stop it.
    done: bool,
    read: BytesMut,
    write: Vec<u8>,
    /// The sequence number of the next packet written.
    seq: u8,
    /// Results end with an OK packet rather than EOF packets.
    deprecate_eof: bool,
    /// The database the connection is in.
    database: Option<String>,
    /// The session variables applied on this connection.
    applied: Vec<(String, String)>,
    /// Prepared statements by text, least recently used first.
    statements: lru::LruCache<String, Statement>,
    /// Statements to close with the next command (evicted).
    closing: Vec<u32>,
    /// The last result's column definitions and the schema made of them.
    last_schema: Option<(Vec<Vec<u8>>, SchemaRef)>,
    /// This connection's place under the pool's limit, freed when it closes.
    _permit: OwnedSemaphorePermit,
}

impl Drop for WireConnection {
    /// A connection dropped in the middle of a statement (the client went
    /// away, cancelled, or timed out) stops the statement on the server with
    /// `KILL QUERY` from a connection of its own, as the mysql client's
    /// Ctrl-C does: closing the socket alone would let it run on until it
    /// next writes.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let config = Arc::clone(&self.config);
        let id = self.thread_id;
        runtime.spawn(async move {
            let Ok(permit) = Arc::new(Semaphore::new(1)).try_acquire_owned() else {
                return;
            };
            let connect = WireConnection::connect(&config, permit);
            let Ok(Ok(mut killer)) = tokio::time::timeout(config.connect_timeout, connect).await
            else {
                return;
            };
            let kill = format!("KILL QUERY {id}");
            drop(killer.simple(COM_QUERY, kill.as_bytes()).await);
        });
    }
}

impl WireConnection {
    async fn connect(
        config: &Arc<WireConfig>,
        permit: OwnedSemaphorePermit,
    ) -> std::result::Result<WireConn, WireError> {
        let stream = WireStream::connect(&config.addr).await?;
        let mut conn = Box::new(WireConnection {
            stream,
            config: Arc::clone(config),
            thread_id: 0,
            done: true,
            read: BytesMut::with_capacity(16 * 1024),
            write: Vec::with_capacity(1024),
            seq: 0,
            deprecate_eof: false,
            database: config.database.clone(),
            applied: Vec::new(),
            statements: lru::LruCache::unbounded(),
            closing: Vec::new(),
            last_schema: None,
            _permit: permit,
        });
        let greeting = conn.read_packet().await?;
        if greeting.first() == Some(&0xff) {
            return Err(server_error(&greeting));
        }
        let greeting = Greeting::parse(&greeting)
            .ok_or_else(|| WireError::Protocol("a malformed server greeting".to_owned()))?;
        conn.thread_id = greeting.thread_id;
        let mut capabilities = CLIENT_LONG_PASSWORD
            | CLIENT_LONG_FLAG
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_MULTI_RESULTS
            | CLIENT_PLUGIN_AUTH
            | CLIENT_DEPRECATE_EOF;
        if config.database.is_some() {
            capabilities |= CLIENT_CONNECT_WITH_DB;
        }
        capabilities &= greeting.capabilities;
        if capabilities & CLIENT_PROTOCOL_41 == 0 || capabilities & CLIENT_PLUGIN_AUTH == 0 {
            return Err(WireError::Unsupported(
                "the server does not speak protocol 4.1 with authentication plugins".to_owned(),
            ));
        }
        conn.deprecate_eof = capabilities & CLIENT_DEPRECATE_EOF != 0;
        let password = config.password.as_deref().unwrap_or_default();
        let proof = native_password(password, &greeting.nonce);
        let mut response = Vec::with_capacity(128);
        response.extend_from_slice(&capabilities.to_le_bytes());
        response.extend_from_slice(&(16u32 << 20).to_le_bytes());
        response.push(UTF8MB4_GENERAL_CI);
        response.extend_from_slice(&[0; 23]);
        response.extend_from_slice(config.user.as_bytes());
        response.push(0);
        response.push(proof.len() as u8);
        response.extend_from_slice(&proof);
        if let Some(database) = config.database.as_deref()
            && capabilities & CLIENT_CONNECT_WITH_DB != 0
        {
            response.extend_from_slice(database.as_bytes());
            response.push(0);
        }
        response.extend_from_slice(b"mysql_native_password\0");
        // The response continues the greeting's sequence.
        conn.seq = 1;
        conn.push_packet(&response);
        conn.flush().await?;
        loop {
            let reply = conn.read_packet().await?;
            match reply.first() {
                Some(0x00) => return Ok(conn),
                Some(0xff) => return Err(server_error(&reply)),
                Some(0xfe) => {
                    // Authentication switch: the plugin's name, its nonce.
                    let body = &reply[1..];
                    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
                    let plugin = String::from_utf8_lossy(&body[..end]).into_owned();
                    if plugin != "mysql_native_password" {
                        return Err(WireError::Unsupported(format!(
                            "the server asks for authentication by {plugin}"
                        )));
                    }
                    let nonce = body.get(end + 1..).unwrap_or_default();
                    let nonce = nonce.strip_suffix(&[0]).unwrap_or(nonce);
                    let proof = native_password(password, nonce);
                    conn.push_packet(&proof);
                    conn.flush().await?;
                }
                _ => {
                    return Err(WireError::Unsupported(
                        "the server continues authentication in a way this client does not speak"
                            .to_owned(),
                    ));
                }
            }
        }
    }

    /// Appends one packet (or, past 16 MiB, several) to the write buffer.
    fn push_packet(&mut self, payload: &[u8]) {
        push_packet(&mut self.write, &mut self.seq, payload);
    }

    /// Starts a command: closes evicted statements first (they have no
    /// reply), then the command's packet, sequence 0.
    fn command(&mut self, command: u8, body: &[u8]) {
        for id in std::mem::take(&mut self.closing) {
            self.seq = 0;
            let mut close = [COM_STMT_CLOSE, 0, 0, 0, 0];
            close[1..].copy_from_slice(&id.to_le_bytes());
            self.push_packet(&close);
        }
        self.seq = 0;
        let mut packet = Vec::with_capacity(1 + body.len());
        packet.push(command);
        packet.extend_from_slice(body);
        self.push_packet(&packet);
    }

    /// A command answered by OK or an error: `COM_INIT_DB`, a `SET`.
    async fn simple(
        &mut self,
        command: u8,
        body: &[u8],
    ) -> std::result::Result<std::result::Result<(), WireError>, WireError> {
        self.command(command, body);
        self.flush().await?;
        let reply = self.read_packet().await?;
        if killed(&reply) {
            return Err(WireError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the connection was killed",
            )));
        }
        Ok(match reply.first() {
            Some(0x00) => Ok(()),
            Some(0xff) => Err(server_error(&reply)),
            _ => {
                return Err(WireError::Protocol(
                    "an unexpected reply to a command".to_owned(),
                ));
            }
        })
    }

    /// The statement this connection holds prepared for `sql`, if any.
    fn prepared(&mut self, sql: &str) -> Option<Statement> {
        self.statements.get(sql).cloned()
    }

    /// Prepares `sql` and keeps it; the inner error is the server's refusal.
    async fn prepare(
        &mut self,
        sql: &str,
    ) -> std::result::Result<std::result::Result<Statement, WireError>, WireError> {
        self.command(COM_STMT_PREPARE, sql.as_bytes());
        self.flush().await?;
        let reply = self.read_packet().await?;
        match reply.first() {
            Some(0x00) if reply.len() >= 12 => {}
            Some(0xff) => return Ok(Err(server_error(&reply))),
            _ => {
                return Err(WireError::Protocol(
                    "an unexpected reply to a prepare".to_owned(),
                ));
            }
        }
        let id = u32::from_le_bytes([reply[1], reply[2], reply[3], reply[4]]);
        let columns = u16::from_le_bytes([reply[5], reply[6]]);
        let params = u16::from_le_bytes([reply[7], reply[8]]);
        for _ in 0..params {
            self.read_packet().await?;
        }
        if params > 0 && !self.deprecate_eof {
            self.read_packet().await?;
        }
        let mut layouts = Vec::with_capacity(usize::from(columns));
        for _ in 0..columns {
            let column = self.read_packet().await?;
            layouts.push(column_type(&column).map_or(Layout::Bytes, Layout::of_column_type));
        }
        if columns > 0 && !self.deprecate_eof {
            self.read_packet().await?;
        }
        let statement = Statement {
            id,
            params,
            layouts: layouts.into(),
        };
        self.statements.put(sql.to_owned(), statement.clone());
        while self.statements.len() > PREPARED_STATEMENTS {
            if let Some((_, old)) = self.statements.pop_lru() {
                self.closing.push(old.id);
            }
        }
        Ok(Ok(statement))
    }

    /// Writes a `COM_STMT_EXECUTE` of statement `id` with `values` (as
    /// [`encode_params`] made them).
    fn execute(&mut self, id: u32, params: usize, values: &[u8]) {
        let mut body = Vec::with_capacity(9 + values.len());
        body.extend_from_slice(&id.to_le_bytes());
        body.push(0); // no cursor
        body.extend_from_slice(&1u32.to_le_bytes()); // iteration count
        if params > 0 {
            body.extend_from_slice(values);
        }
        self.command(COM_STMT_EXECUTE, &body);
    }

    /// Whether this idle connection is still open (see
    /// [`WireStream::still_open`]).
    fn still_open(&self) -> bool {
        self.stream.still_open()
    }

    async fn flush(&mut self) -> std::result::Result<(), WireError> {
        self.stream.write_all(&self.write).await?;
        self.write.clear();
        Ok(())
    }

    /// Reads one packet's payload (joining a payload split over several).
    async fn read_packet(&mut self) -> std::result::Result<BytesMut, WireError> {
        let mut joined: Option<BytesMut> = None;
        loop {
            while self.read.len() < 4 {
                self.fill().await?;
            }
            let len = usize::from(self.read[0])
                | usize::from(self.read[1]) << 8
                | usize::from(self.read[2]) << 16;
            while self.read.len() < 4 + len {
                self.fill().await?;
            }
            self.read.advance(4);
            let payload = self.read.split_to(len);
            let payload = match joined.take() {
                None => payload,
                Some(mut head) => {
                    head.extend_from_slice(&payload);
                    head
                }
            };
            if len < MAX_PAYLOAD {
                return Ok(payload);
            }
            joined = Some(payload);
        }
    }

    async fn fill(&mut self) -> std::result::Result<(), WireError> {
        if self.read.capacity() - self.read.len() < 4096 {
            self.read.reserve(16 * 1024);
        }
        if self.stream.read_buf(&mut self.read).await? == 0 {
            return Err(WireError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        Ok(())
    }
}

/// The type number of a column definition (protocol 4.1): after catalog,
/// schema, table, original table, name and original name, a fixed-length
/// block of charset (2), length (4), type (1), flags, decimals.
fn column_type(column: &[u8]) -> Option<u8> {
    let mut cursor = column;
    for _ in 0..6 {
        let len = usize::try_from(read_lenenc(&mut cursor)?).ok()?;
        cursor = cursor.get(len..)?;
    }
    let _fixed_length = read_lenenc(&mut cursor)?;
    cursor.get(6).copied()
}

/// The server's first packet, as far as logging in needs it.
struct Greeting {
    thread_id: u32,
    capabilities: u32,
    /// The 20-byte scramble.
    nonce: Vec<u8>,
}

impl Greeting {
    fn parse(packet: &[u8]) -> Option<Greeting> {
        let (&protocol, rest) = packet.split_first()?;
        if protocol != 10 {
            return None;
        }
        let version_end = rest.iter().position(|b| *b == 0)?;
        let rest = rest.get(version_end + 1..)?;
        // Connection id (4), scramble part 1 (8), filler (1).
        let thread_id = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let part1 = rest.get(4..12)?;
        let lower = u16::from_le_bytes(rest.get(13..15)?.try_into().ok()?);
        // Charset (1), status (2), then the upper capabilities.
        let upper = u16::from_le_bytes(rest.get(18..20)?.try_into().ok()?);
        let scramble_len = usize::from(*rest.get(20)?);
        // Ten reserved bytes, then part 2: max(13, len - 8), NUL-ended.
        let part2_len = scramble_len.saturating_sub(8).max(13);
        let part2 = rest.get(31..31 + part2_len)?;
        let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
        let mut nonce = part1.to_vec();
        nonce.extend_from_slice(part2);
        Some(Greeting {
            thread_id,
            capabilities: u32::from(lower) | u32::from(upper) << 16,
            nonce,
        })
    }
}

/// `mysql_native_password`'s proof that a client knows `password`, for the
/// server's `nonce`: `SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))`;
/// empty for an empty password. (The MySQL front end checks its clients'
/// proofs against it.)
pub fn native_password(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(nonce);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_definitions_survive_the_schema_metadata() {
        let columns = vec![b"\x03def\x04test".to_vec(), Vec::new(), vec![0xff; 300]];
        let schema = pass_through_schema(&columns);
        assert_eq!(wire_columns(&schema), Some(columns.clone()));
        assert_eq!(wire_columns(&Schema::empty()), None);
        assert_eq!(unhex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        // The cache answers the same, remembered or decoded anew.
        let mut cache = ColumnsCache::default();
        let first = cache.columns(&schema).expect("decoded");
        let again = cache
            .columns(&pass_through_schema(&columns))
            .expect("remembered");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(&again[..], &columns[..]);
        let other = vec![b"\x03def".to_vec()];
        let changed = cache
            .columns(&pass_through_schema(&other))
            .expect("decoded");
        assert_eq!(&changed[..], &other[..]);
        assert!(cache.columns(&Schema::empty()).is_none());
    }

    #[test]
    fn length_encoded_integers_round_trip() {
        for n in [
            0,
            250,
            251,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            push_lenenc(&mut buf, n);
            let mut cursor = &buf[..];
            assert_eq!(read_lenenc(&mut cursor), Some(n));
            assert!(cursor.is_empty());
        }
        assert_eq!(read_lenenc(&mut &[0xfb][..]), None, "NULL");
        assert_eq!(read_lenenc(&mut &[0xfc, 1][..]), None, "short");
    }

    #[test]
    fn a_column_definition_gives_its_type() {
        // catalog, schema, table, org_table, name, org_name, then the fixed part.
        let mut column = Vec::new();
        for part in ["def", "test", "t", "t", "id", "id"] {
            push_lenenc(&mut column, part.len() as u64);
            column.extend_from_slice(part.as_bytes());
        }
        column.extend_from_slice(&[0x0c, 63, 0, 11, 0, 0, 0, 3, 0, 0, 0, 0, 0]);
        assert_eq!(column_type(&column), Some(3));
        assert_eq!(column_type(&column[..10]), None);
    }

    #[test]
    fn unsigned_and_time_columns_are_laid_out_otherwise_than_floe_describes_them() {
        // INT: Int32, four bytes either way.
        assert!(Layout::of_arrow(&DataType::Int32).reads(Layout::of_column_type(3)));
        // INT UNSIGNED is widened to Int64 (eight bytes); the server sends four.
        assert!(!Layout::of_arrow(&DataType::Int64).reads(Layout::of_column_type(3)));
        // TIME is read as text by Floe; the server sends a time structure.
        assert!(!Layout::of_arrow(&DataType::Utf8).reads(Layout::of_column_type(11)));
        assert!(Layout::of_arrow(&DataType::Utf8).reads(Layout::of_column_type(254)));
        assert!(Layout::of_arrow(&DataType::Utf8).reads(Layout::of_column_type(6)));
    }

    #[test]
    fn parameters_are_encoded_with_their_types_and_a_null_bitmap() {
        let params = [
            ScalarValue::Int64(Some(7)),
            ScalarValue::Utf8(None),
            ScalarValue::Utf8(Some("ab".to_owned())),
        ];
        let encoded = encode_params(&params).expect("encodable");
        assert_eq!(
            encoded,
            [
                0b010, // NULL bitmap
                1,     // types follow
                8, 0, 6, 0, 253, 0, // LONGLONG, NULL, VAR_STRING
                7, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b',
            ]
        );
        assert!(encode_params(&[ScalarValue::Date32(Some(1))]).is_none());
    }

    #[test]
    fn a_long_payload_is_split_and_a_multiple_of_the_maximum_ends_empty() {
        let mut buf = Vec::new();
        let mut seq = 0;
        push_packet(&mut buf, &mut seq, &vec![7; MAX_PAYLOAD]);
        assert_eq!(buf.len(), 4 + MAX_PAYLOAD + 4);
        assert_eq!(buf[..4], [0xff, 0xff, 0xff, 0]);
        assert_eq!(buf[4 + MAX_PAYLOAD..], [0, 0, 0, 1]);
        buf.clear();
        push_packet(&mut buf, &mut seq, b"x");
        assert_eq!(buf, [1, 0, 0, 2, b'x']);
        buf.clear();
        push_packet(&mut buf, &mut seq, b"");
        assert_eq!(buf, [0, 0, 0, 3]);
    }
}
