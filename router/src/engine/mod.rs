//! The [`Engine`] trait and the engines that implement it.
//!
//! | engine | when to choose it |
//! |---|---|
//! | [`DataFusionEngine`] | the embedded default: DataFusion over Iceberg catalogs, in process |
//! | [`PostgresEngine`] | a PostgreSQL server (tokio-postgres, pooled, binary results to Arrow) |
//! | [`MySqlEngine`] | a MySQL or MariaDB server (mysql_async, pooled) |
//! | [`FlightSqlEngine`] | any Arrow Flight SQL server (another Floe, Dremio, ...) |
//!
//! Construction from configuration happens in one place per engine kind; the
//! daemon builds engines and hands them to the front ends as `Arc<dyn Engine>`.

mod columns;
mod conn_state;
mod datafusion;
mod flightsql;
mod idle_pool;
mod inline;
mod metered_scan;
mod mysql;
pub mod mysql_wire;
mod offload;
pub mod pg_wire;
mod postgres;
mod table_cache;
mod wire_stream;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::datafusion::scalar::ScalarValue;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use floe_dialects::{Analysis, Dialect};
use futures::Stream;
use std::pin::Pin;

pub use self::datafusion::{DataFusionEngine, DataFusionEngineOptions};
pub use self::flightsql::{FlightSqlEngine, FlightSqlEngineOptions};
pub use self::mysql::MySqlEngine;
pub use self::postgres::PostgresEngine;
use crate::Result;

/// A query engine that runs one statement at a time and streams its result.
///
/// **API Boundary**: front ends and the router call engines only through this
/// trait.
///
/// # Streaming
///
/// [`Engine::execute`] returns as soon as the result's schema is known; rows
/// arrive through the returned stream batch by batch. No engine collects a whole
/// result set in memory.
///
/// # Cancellation
///
/// Dropping the future or the returned stream cancels the statement and releases
/// everything it held. Engines spawn no detached tasks.
///
/// # Errors
///
/// Errors are [`crate::Error`] variants chosen by what the client can do about
/// them, so that every protocol can give its proper code.
#[async_trait]
pub trait Engine: Send + Sync + fmt::Debug {
    /// The engine's configured name.
    fn name(&self) -> &str;

    /// The SQL dialect the engine understands; statements in another dialect
    /// are translated into it before they reach the engine.
    fn dialect(&self) -> Dialect;

    /// Whether the engine takes statements written in `dialect` as they are.
    /// The embedded engine reads several dialects natively; remote servers
    /// read their own.
    fn accepts(&self, dialect: Dialect) -> bool {
        dialect == self.dialect()
    }

    /// Checks that the engine answers, for the router's active health probes.
    ///
    /// # Errors
    ///
    /// Why the engine cannot serve statements now.
    async fn probe(&self) -> Result<()> {
        Ok(())
    }

    /// The types of the columns of `tables` (as the statement names them;
    /// unqualified names in `schema`, or the engine's default), for the
    /// translation rules whose meaning depends on a type (a division, date
    /// arithmetic). Engines that cannot tell return none.
    ///
    /// # Errors
    ///
    /// The engine could not be asked.
    async fn column_types(
        &self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
    ) -> Result<floe_dialects::ColumnTypes> {
        let _ = (tables, schema);
        Ok(floe_dialects::ColumnTypes::default())
    }

    /// Opens a transaction that pins the statements of a client's
    /// `BEGIN ... COMMIT` block to one connection, in the session's `scope`.
    /// `None` means the engine has no transactions: each statement of the
    /// block commits on its own.
    ///
    /// # Errors
    ///
    /// The engine could not open one.
    async fn begin(&self, scope: Scope<'_>) -> Result<Option<Box<dyn Transaction>>> {
        let _ = scope;
        Ok(None)
    }

    /// Plans a statement without running it: the types of its parameters and the
    /// schema of its result, as the extended query protocols need for `Describe`.
    ///
    /// `scope` is where the session stands: its current schema (MySQL's
    /// current database), against which unqualified table names resolve, and
    /// its settings.
    async fn prepare(&self, statement: &Analysis, scope: Scope<'_>) -> Result<Prepared>;

    /// Runs one statement.
    async fn execute(&self, request: Request<'_>) -> Result<QueryOutput>;
}

/// The (schema, table) a statement's table reference names, with `schema`
/// for an unqualified one; `None` for a reference of another shape.
pub(crate) fn schema_and_table(
    table: &floe_dialects::TableRef,
    schema: Option<&str>,
) -> Option<(Option<String>, String)> {
    match table.parts.as_slice() {
        [name] => Some((schema.map(str::to_owned), name.clone())),
        [schema, name] | [_, schema, name] => Some((Some(schema.clone()), name.clone())),
        _ => None,
    }
}

/// Column types a server engine read from its catalog, per (schema, table),
/// kept for a while so that a statement that needs them does not cost a
/// catalog round trip each time.
#[derive(Debug, Default)]
pub(crate) struct TypeCache {
    entries: std::sync::Mutex<HashMap<TableKey, (Instant, Columns)>>,
}

/// A table's (column, type name) pairs.
pub(crate) type Columns = Vec<(String, String)>;

fn insert_columns(types: &mut floe_dialects::ColumnTypes, columns: &Columns) {
    for (column, data_type) in columns {
        types.insert(column, data_type);
    }
}

/// The Arrow type of a column whose catalog (`information_schema`) names its
/// type `name`, in MySQL's or PostgreSQL's spelling; `None` for types Floe
/// does not map.
pub(crate) fn data_type_of_name(name: &str) -> Option<arrow::datatypes::DataType> {
    use arrow::datatypes::{DataType, TimeUnit};
    Some(match floe_dialects::base_type_name(name).as_str() {
        // PostgreSQL has no one-byte integer: a client binds a smallint.
        "tinyint" | "smallint" | "int2" | "smallserial" => DataType::Int16,
        "int" | "integer" | "int4" | "mediumint" | "serial" => DataType::Int32,
        "bigint" | "int8" | "bigserial" => DataType::Int64,
        "decimal" | "numeric" => DataType::Decimal128(38, 10),
        "float" | "real" | "float4" => DataType::Float32,
        "double" | "double precision" | "float8" => DataType::Float64,
        "char" | "varchar" | "text" | "tinytext" | "mediumtext" | "longtext" | "character"
        | "character varying" | "bpchar" | "enum" | "set" | "json" | "jsonb" | "uuid" => {
            DataType::Utf8
        }
        "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "bytea" => {
            DataType::Binary
        }
        "date" => DataType::Date32,
        "datetime" | "timestamp" | "timestamp without time zone" => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        "timestamptz" | "timestamp with time zone" => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        "time" | "time without time zone" => DataType::Time64(TimeUnit::Microsecond),
        "bool" | "boolean" => DataType::Boolean,
        _ => return None,
    })
}

/// (schema, table); no schema means the engine's current one.
pub(crate) type TableKey = (Option<String>, String);

impl TypeCache {
    /// How long an entry is trusted: a column's type rarely changes, and a
    /// stale one only changes how a type-dependent construct is translated.
    const TTL: Duration = Duration::from_secs(30);
    /// Entries kept at most; the cache is cleared when full.
    const CAPACITY: usize = 1024;

    /// The column types of `tables`: those read recently from here, the
    /// others read by `read` (given their keys, it returns each one's columns)
    /// and kept. `read` runs only when a table is missing, so an engine asks
    /// for a connection only then.
    pub(crate) async fn get<F, Fut>(
        &self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
        read: F,
    ) -> Result<floe_dialects::ColumnTypes>
    where
        F: FnOnce(Vec<TableKey>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(TableKey, Columns)>>>,
    {
        let (mut types, missing) = self.lookup(tables, schema);
        if missing.is_empty() {
            return Ok(types);
        }
        for (key, columns) in read(missing).await? {
            self.add(&mut types, key, columns);
        }
        Ok(types)
    }

    /// The column types of the tables read recently, and the keys of those
    /// the engine must be asked for.
    fn lookup(
        &self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
    ) -> (floe_dialects::ColumnTypes, Vec<TableKey>) {
        let mut types = floe_dialects::ColumnTypes::default();
        let mut missing = Vec::new();
        let entries = self.entries.lock().ok();
        for key in tables.iter().filter_map(|t| schema_and_table(t, schema)) {
            let fresh = entries
                .as_ref()
                .and_then(|e| e.get(&key))
                .filter(|(at, _)| at.elapsed() < Self::TTL);
            match fresh {
                Some((_, columns)) => insert_columns(&mut types, columns),
                None => missing.push(key),
            }
        }
        (types, missing)
    }

    /// Remembers a table's columns, read from the engine, and adds them to
    /// `types`.
    fn add(&self, types: &mut floe_dialects::ColumnTypes, key: TableKey, columns: Columns) {
        insert_columns(types, &columns);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), columns));
        }
    }
}

/// How to build an engine that is a database server Floe connects to with a
/// pool: [`PostgresEngine`] and [`MySqlEngine`].
#[derive(Debug, Clone)]
pub struct ServerEngineOptions {
    /// The engine's name in configuration, logs and metrics.
    pub name: String,
    /// `postgres://user@host:port/database` (or `host=... port=...`), or
    /// `mysql://user@host:port/database`. A password in it is used but never
    /// logged.
    pub url: String,
    /// The password, when it is kept out of the URL (read from an environment
    /// variable).
    pub password: Option<String>,
    /// Connections the pool opens at most.
    pub max_connections: usize,
    /// How long opening a connection or waiting for a free one may take.
    pub connect_timeout: std::time::Duration,
    /// Answer reads of clients of the engine's own protocol with the
    /// server's own rows: PostgreSQL clients' text-format reads (see
    /// [`pg_wire`]), MySQL clients' reads (see [`mysql_wire`]).
    pub pass_through: bool,
    /// PostgreSQL engines, pass-through: a simple query's constants compared
    /// with columns go as typed parameters of a statement prepared once per
    /// connection ([`floe_dialects::parameterize`]).
    pub parameterize: bool,
}

/// A transaction open on one engine connection.
#[async_trait]
pub trait Transaction: Send + Sync {
    /// Runs one statement inside the transaction.
    async fn execute(&mut self, request: Request<'_>) -> Result<QueryOutput>;

    /// [`Engine::column_types`] read on the transaction's own connection (see
    /// [`Transaction::prepare`] for why); `None` when the engine reads them
    /// without a connection (the router then asks the engine).
    ///
    /// # Errors
    ///
    /// The engine could not be asked.
    async fn column_types(
        &mut self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
    ) -> Result<Option<floe_dialects::ColumnTypes>> {
        let _ = (tables, schema);
        Ok(None)
    }

    /// Plans a statement on the transaction's own connection, as
    /// [`Engine::prepare`] does on a pooled one; `None` when the engine plans
    /// without a connection (the router then asks [`Engine::prepare`]).
    ///
    /// A block holds its connection until it ends: planning on another would
    /// wait for a second one, and with every connection held by blocks whose
    /// clients prepare (JDBC does, inside transactions) each would wait for
    /// the others until its connect timeout.
    async fn prepare(
        &mut self,
        statement: &Analysis,
        scope: Scope<'_>,
    ) -> Result<Option<Prepared>> {
        let _ = (statement, scope);
        Ok(None)
    }

    /// Commits and releases the connection.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Rolls back and releases the connection.
    async fn rollback(self: Box<Self>) -> Result<()>;
}

/// One statement to run, with its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The statement.
    pub statement: &'a Analysis,
    /// Values for `$1`, `$2`, ... (or `?` placeholders), in order.
    pub params: &'a [ScalarValue],
    /// What [`Engine::prepare`] returned for this statement on this engine, if
    /// the client prepared it: engines may reuse their plan.
    pub prepared: Option<&'a Prepared>,
    /// The session's current schema, for unqualified table names; `None` means
    /// the engine's default.
    pub schema: Option<&'a str>,
    /// Where an engine that can tell adds what it read from storage.
    pub scan: Option<&'a Arc<ScanStats>>,
    /// The client speaks PostgreSQL's wire protocol and wants this result in
    /// text format: a PostgreSQL engine may then hand the server's rows on
    /// as they came (see [`pg_wire`]) instead of converting them.
    pub pg_text: bool,
    /// The client speaks MySQL's wire protocol and wants this result's rows
    /// in this form: a MySQL engine may then hand the server's rows on as
    /// they came (see [`mysql_wire`]) instead of converting them.
    pub mysql_rows: Option<MySqlRows>,
    /// The session's settings, as [`Scope::settings`].
    pub settings: &'a [(String, String)],
}

/// How a MySQL client receives a result's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MySqlRows {
    /// Text rows: the answer to `COM_QUERY`.
    Text,
    /// Binary rows: the answer to `COM_STMT_EXECUTE`.
    Binary,
}

impl<'a> Request<'a> {
    /// Whether the statement is a read-only query written in `dialect`, so
    /// that a server of that dialect answers it, as it stands, with rows its
    /// own clients read: what a pass-through asks before it hands them on.
    /// (The router asks an engine only for a statement that goes as the
    /// client wrote it.)
    pub(crate) fn plain_read_in(&self, dialect: Dialect) -> bool {
        self.statement.read_only
            && self.statement.kind == floe_dialects::StatementKind::Read
            && self.statement.dialect == dialect
    }

    /// Where the request's session stands.
    pub fn scope(&self) -> Scope<'a> {
        Scope {
            schema: self.schema,
            settings: self.settings,
        }
    }
}

/// Where a session stands, for an engine that runs or plans one of its
/// statements on a connection of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// The session's current schema (MySQL's current database); `None` means
    /// the engine's default.
    pub schema: Option<&'a str>,
    /// The settings the session set away from their defaults, of
    /// [`POSTGRES_SESSION_SETTINGS`] for a PostgreSQL or Flight SQL client,
    /// of [`MYSQL_SESSION_SETTINGS`] for a MySQL one, as (name, value) pairs
    /// sorted by name. An engine applies those of its own server on the
    /// connection that runs the statement and ignores the others.
    pub settings: &'a [(String, String)],
}

/// PostgreSQL settings that change what a server answers (how times, dates,
/// intervals, floats and bytes print, which schemas unqualified names search,
/// how long a lock is waited for) or how it works for this client: a
/// session's `SET` of one reaches the `postgres` engines that run its
/// statements, as pgbouncer and PgDog pass them on. Lower case, sorted.
pub const POSTGRES_SESSION_SETTINGS: &[&str] = &[
    "application_name",
    "bytea_output",
    "datestyle",
    "default_transaction_isolation",
    "extra_float_digits",
    "intervalstyle",
    "lock_timeout",
    "search_path",
    "timezone",
    "work_mem",
];

/// MySQL system variables that change what a server answers or does for
/// this client (`NOW()` and `TIMESTAMP` values; how statements parse and how
/// strictly values are checked; how many rows a `SELECT` returns; the key
/// checks and generated ids of writes, which a dump's restore turns off): a
/// MySQL session's `SET` of one reaches the `mysql` engines that run its
/// statements, as ProxySQL tracks them. Each is a variable of MySQL and
/// MariaDB alike (not `transaction_isolation`, which MariaDB 10 lacks).
/// Lower case, sorted.
pub const MYSQL_SESSION_SETTINGS: &[&str] = &[
    "auto_increment_increment",
    "auto_increment_offset",
    "foreign_key_checks",
    "sql_auto_is_null",
    "sql_mode",
    "sql_safe_updates",
    "sql_select_limit",
    "time_zone",
    "unique_checks",
];

/// The settings of `settings` named in `known` (an engine's own server's):
/// a session's list holds its front end's names, which another kind of
/// server does not have. Borrowed when all are known (an empty list, on the
/// hot path, is).
pub(crate) fn settings_of<'a>(
    settings: &'a [(String, String)],
    known: &[&str],
) -> std::borrow::Cow<'a, [(String, String)]> {
    let is_known = |(name, _): &&(String, String)| known.binary_search(&name.as_str()).is_ok();
    if settings.iter().all(|s| is_known(&s)) {
        std::borrow::Cow::Borrowed(settings)
    } else {
        std::borrow::Cow::Owned(settings.iter().filter(is_known).cloned().collect())
    }
}

/// What an engine read from storage for one statement, where it can tell: the
/// embedded engine counts the Iceberg data files its scans planned (after
/// partition and min/max pruning) and their bytes. Telemetry reads it when
/// the statement ends; it is how the maintenance engine sees what a better
/// file layout would save.
#[derive(Debug, Default)]
pub struct ScanStats {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl ScanStats {
    /// Counts `files` data files of `bytes` bytes read.
    pub fn add(&self, files: u64, bytes: u64) {
        self.files.fetch_add(files, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Data files read so far.
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    /// Bytes of the data files read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl<'a> Request<'a> {
    /// A request for a statement with no parameters.
    pub fn new(statement: &'a Analysis) -> Self {
        Request {
            statement,
            params: &[],
            prepared: None,
            schema: None,
            scan: None,
            pg_text: false,
            mysql_rows: None,
            settings: &[],
        }
    }
}

/// A planned statement: what a client learns from `Describe`.
#[derive(Clone)]
pub struct Prepared {
    /// The type of each parameter, in order; `None` where the engine cannot infer it.
    pub param_types: Vec<Option<DataType>>,
    /// The schema of the rows the statement returns; empty for commands.
    pub schema: SchemaRef,
    /// Whether the statement returns rows at all.
    pub returns_rows: bool,
    /// The engine's own plan, reused by [`Engine::execute`] on the engine that made it.
    pub(crate) plan: Option<Arc<dyn Any + Send + Sync>>,
    /// The engine that planned it, set by the router: executions prefer it,
    /// so the result has exactly the described types.
    pub engine: Option<String>,
}

impl Prepared {
    /// A prepared statement with no parameters that returns rows of `schema`,
    /// for statements answered without an engine (`SHOW`).
    pub fn rows(schema: SchemaRef) -> Self {
        Prepared {
            param_types: Vec::new(),
            schema,
            returns_rows: true,
            plan: None,
            engine: None,
        }
    }

    /// A prepared statement with no parameters that returns no rows.
    pub fn command() -> Self {
        Prepared {
            param_types: Vec::new(),
            schema: Arc::new(Schema::empty()),
            returns_rows: false,
            plan: None,
            engine: None,
        }
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("param_types", &self.param_types)
            .field("schema", &self.schema)
            .field("returns_rows", &self.returns_rows)
            .finish_non_exhaustive()
    }
}

/// A stream of record batches whose errors are already Floe's.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// The result of running a statement.
pub enum QueryOutput {
    /// Rows, streamed batch by batch.
    Rows {
        /// The schema of every batch.
        schema: SchemaRef,
        /// The batches, produced as the client reads them.
        stream: BatchStream,
    },
    /// A command that returns no rows; `rows` is how many it touched, where that
    /// is meaningful (`INSERT`).
    Command {
        /// The number of rows touched.
        rows: Option<u64>,
    },
}

impl fmt::Debug for QueryOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryOutput::Rows { schema, .. } => f
                .debug_struct("Rows")
                .field("schema", schema)
                .finish_non_exhaustive(),
            QueryOutput::Command { rows } => f.debug_struct("Command").field("rows", rows).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, TimeUnit};

    use super::data_type_of_name;

    #[test]
    fn catalog_type_names_map_to_the_types_a_postgres_client_binds() {
        for (name, expected) in [
            ("int", Some(DataType::Int32)),
            ("INTEGER", Some(DataType::Int32)),
            ("bigint unsigned", Some(DataType::Int64)),
            ("tinyint", Some(DataType::Int16)),
            ("varchar", Some(DataType::Utf8)),
            ("character varying", Some(DataType::Utf8)),
            ("decimal(10,2)", Some(DataType::Decimal128(38, 10))),
            ("double precision", Some(DataType::Float64)),
            ("date", Some(DataType::Date32)),
            (
                "datetime",
                Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
            ),
            ("geometry", None),
        ] {
            assert_eq!(data_type_of_name(name), expected, "{name}");
        }
    }
}
