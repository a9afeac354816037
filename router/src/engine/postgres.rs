//! A PostgreSQL server as an engine: tokio-postgres over a deadpool pool,
//! binary results decoded straight into Arrow arrays.
//!
//! Each statement is sent as one round trip of the extended protocol
//! (`Parse`/`Bind`/`Describe`/`Execute`/`Sync` on the unnamed statement), with
//! parameters in text format and unspecified types, exactly as if the client
//! had written them as quoted literals: the server infers their types from the
//! statement. Results come back in binary format and are decoded per column
//! into Arrow builders; nothing goes through text.

use std::error::Error as StdError;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use bytes::BytesMut;
use datafusion::scalar::ScalarValue;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, ObjectId, Pool, PoolError, RecyclingMethod,
};
use floe_dialects::{Analysis, Dialect, ParameterShape, ShapeCache, StatementKind};
use std::pin::Pin;

use futures::{Stream, StreamExt, TryStreamExt};
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Column, NoTls, Row};

use super::columns::{
    BATCH_ROWS, BatchBuilder, Value, empty_schema, extension_field, parse_decimal,
};
use super::conn_state::ConnStates;
use super::pg_wire::{WireConfig, WirePool, local_settings_sql, settings_sql};
use super::{
    Engine, POSTGRES_SESSION_SETTINGS, Prepared, QueryOutput, Request, Scope, ServerEngineOptions,
    Transaction, settings_of,
};
use crate::{DataErrorKind, Error, Result};

/// A PostgreSQL server.
pub struct PostgresEngine {
    name: String,
    pool: Pool,
    /// Shared with the engine's transactions, which read types on their own
    /// connection.
    types: Arc<super::TypeCache>,
    /// Connections for pass-through (`None` for a server reached over a Unix
    /// socket): statements a PostgreSQL client sends unchanged.
    wire: Option<Arc<WirePool>>,
    /// Simple queries pass through as their shape and constants; `None`
    /// when the option is off. How each shape is parameterised is decided
    /// once, from the first text of that shape.
    parameterize: Option<ShapeCache<ParameterShape>>,
    /// The session settings applied on each pooled connection (see
    /// [`Scope::settings`]), by deadpool object.
    applied: ConnStates<ObjectId, Vec<(String, String)>>,
}

/// Statement shapes whose parameterisation a PostgreSQL engine remembers.
const PARAMETER_SHAPES: usize = 4096;

impl std::fmt::Debug for PostgresEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEngine")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PostgresEngine {
    /// Builds the engine. No connection is opened until the first statement or
    /// health probe, so a server that is down at start-up does not stop Floe.
    ///
    /// # Errors
    ///
    /// The URL does not parse.
    pub fn new(options: ServerEngineOptions) -> Result<Self> {
        let mut config: tokio_postgres::Config = options.url.parse().map_err(|e| {
            Error::InvalidInput(format!(
                "engine {}: invalid PostgreSQL URL: {e}",
                options.name
            ))
        })?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        config.connect_timeout(options.connect_timeout);
        config.application_name("floe");
        let wire = WireConfig::from_config(&config, options.connect_timeout)
            .filter(|_| options.pass_through)
            .map(|wire| Arc::new(WirePool::new(&options.name, wire, options.max_connections)));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeouts = deadpool_postgres::Timeouts {
            wait: Some(options.connect_timeout),
            create: Some(options.connect_timeout),
            recycle: Some(options.connect_timeout),
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .timeouts(timeouts)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(PostgresEngine {
            name: options.name,
            pool,
            types: Arc::default(),
            wire,
            parameterize: options
                .parameterize
                .then(|| ShapeCache::new(PARAMETER_SHAPES)),
            applied: ConnStates::default(),
        })
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }

    /// A pooled connection with the session's `settings` applied (those of
    /// them that are PostgreSQL's: a MySQL session's are not).
    async fn client_with(&self, settings: &[(String, String)]) -> Result<Object> {
        let settings = &*settings_of(settings, POSTGRES_SESSION_SETTINGS);
        let client = self.client().await?;
        let id = Object::id(&client);
        if self.applied.needs(id, settings, settings.is_empty()) {
            // What the connection holds is not known here (only that it is
            // not `settings`): `settings_sql` resets everything first.
            client
                .batch_execute(&settings_sql(settings))
                .await
                .map_err(|e| map_error(&self.name, &e))?;
            self.applied.now(id, settings.to_vec(), settings.is_empty());
        }
        Ok(client)
    }

    fn pool_error(&self, e: PoolError) -> Error {
        match e {
            PoolError::Backend(e) => map_error(&self.name, &e),
            other => Error::EngineUnavailable {
                engine: self.name.clone(),
                message: other.to_string(),
                retryable: true,
            },
        }
    }
}

#[async_trait]
impl Engine for PostgresEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn column_types(
        &self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
    ) -> Result<floe_dialects::ColumnTypes> {
        self.types
            .get(tables, schema, |missing| async move {
                let client = self.client().await?;
                read_columns(&self.name, &client, missing).await
            })
            .await
    }

    async fn probe(&self) -> Result<()> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| map_error(&self.name, &e))
    }

    async fn prepare(&self, statement: &Analysis, scope: Scope<'_>) -> Result<Prepared> {
        // `search_path` decides which tables the statement names.
        let client = self.client_with(scope.settings).await?;
        prepare_on(&self.name, &client, statement).await
    }

    async fn execute(&self, request: Request<'_>) -> Result<QueryOutput> {
        // A prepared statement's row description went to the client at
        // `Describe`, from the same server's description of it.
        if let Some(wire) = &self.wire
            && request.pg_text
            && request.plain_read_in(Dialect::Postgres)
        {
            // A PostgreSQL client's: all PostgreSQL settings.
            let sql = request.statement.sql();
            // A statement the client prepared gets its values bound; a simple
            // query goes as it is, or as its shape and constants.
            if request.prepared.is_none() && request.params.is_empty() {
                let analysis = request.statement;
                if let Some(shapes) = &self.parameterize {
                    let key = analysis.shape_key();
                    let shaped = shapes
                        .find(sql, key)
                        .or_else(|| ParameterShape::of(analysis).map(|p| shapes.keep(sql, key, p)));
                    if let Some(shape) = shaped.and_then(|s| s.value.apply(analysis)) {
                        let values: Vec<Option<String>> =
                            shape.values.into_iter().map(Some).collect();
                        return wire
                            .query(&shape.sql, Some(&values), &shape.types, request.settings)
                            .await;
                    }
                }
                return wire.query(sql, None, &[], request.settings).await;
            }
            let params: Vec<Option<String>> = request
                .params
                .iter()
                .map(|p| TextParam::from_scalar(p).0)
                .collect();
            return wire.query(sql, Some(&params), &[], request.settings).await;
        }
        let client = Arc::new(self.client_with(request.settings).await?);
        run(&self.name, client, request).await
    }

    async fn begin(&self, scope: Scope<'_>) -> Result<Option<Box<dyn Transaction>>> {
        // Applied before `BEGIN`, at session level: a rollback cannot undo
        // them behind the pool's back.
        let client = Arc::new(self.client_with(scope.settings).await?);
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| map_error(&self.name, &e))?;
        Ok(Some(Box::new(PostgresTransaction {
            name: self.name.clone(),
            client: Some(client),
            types: Arc::clone(&self.types),
            settings: settings_of(scope.settings, POSTGRES_SESSION_SETTINGS).into_owned(),
        })))
    }
}

/// The (column, type name) pairs of each `missing` table, read on `client`.
async fn read_columns(
    name: &str,
    client: &Object,
    missing: Vec<super::TableKey>,
) -> Result<Vec<(super::TableKey, super::Columns)>> {
    let mut read = Vec::with_capacity(missing.len());
    for key in missing {
        let rows = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = COALESCE($1::text, current_schema()) AND table_name = $2::text",
                &[&key.0, &key.1],
            )
            .await
            .map_err(|e| map_error(name, &e))?;
        read.push((
            key,
            rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
        ));
    }
    Ok(read)
}

/// Prepares `statement` on `client`, kept in the connection's statement cache
/// for the execution that follows.
async fn prepare_on(name: &str, client: &Object, statement: &Analysis) -> Result<Prepared> {
    let prepared = cached_statement(client, statement.sql())
        .await
        .map_err(|e| map_error(name, &e))?;
    let param_types = prepared
        .params()
        .iter()
        .map(|ty| column_kind(ty, -1).map(|kind| kind.data_type()))
        .collect();
    Ok(Prepared {
        param_types,
        schema: schema_of(prepared.columns())?,
        returns_rows: !prepared.columns().is_empty(),
        plan: None,
        engine: None,
    })
}

/// A transaction on one pooled connection; the connection goes back to the
/// pool when the transaction ends.
struct PostgresTransaction {
    name: String,
    /// `None` once committed or rolled back.
    client: Option<Arc<Object>>,
    types: Arc<super::TypeCache>,
    /// The session settings in force in the block now: a `SET` inside the
    /// block applies for the rest of the block only (`local_settings_sql`),
    /// and the connection goes back to the pool as it was at `BEGIN`.
    settings: Vec<(String, String)>,
}

impl PostgresTransaction {
    fn client(&self) -> Result<&Arc<Object>> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::Internal("the transaction has ended".to_owned()))
    }

    /// The block's connection, with `settings` in force for the block.
    async fn client_with(&mut self, settings: &[(String, String)]) -> Result<Arc<Object>> {
        let settings = &*settings_of(settings, POSTGRES_SESSION_SETTINGS);
        let client = Arc::clone(self.client()?);
        if self.settings != settings {
            // Relative to what is in force in the block: the local form
            // changes only what differs, and restores what is no longer
            // wanted to its default.
            let sql = local_settings_sql(&self.settings, settings);
            if !sql.is_empty() {
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| map_error(&self.name, &e))?;
            }
            self.settings = settings.to_vec();
        }
        Ok(client)
    }

    async fn finish(mut self: Box<Self>, statement: &str) -> Result<()> {
        let client = self.client()?;
        client
            .batch_execute(statement)
            .await
            .map_err(|e| map_error(&self.name, &e))?;
        // Ended cleanly: the connection may serve others again.
        self.client = None;
        Ok(())
    }
}

impl Drop for PostgresTransaction {
    /// A transaction abandoned open (the client went away inside `BEGIN`) must
    /// not go back to the pool with it: the connection is taken out of the
    /// pool and closed, and the server rolls the transaction back.
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && let Ok(object) = Arc::try_unwrap(client)
        {
            drop(Object::take(object));
        }
    }
}

#[async_trait]
impl Transaction for PostgresTransaction {
    async fn execute(&mut self, request: Request<'_>) -> Result<QueryOutput> {
        let client = self.client_with(request.settings).await?;
        run(&self.name, client, request).await
    }

    async fn prepare(
        &mut self,
        statement: &Analysis,
        scope: Scope<'_>,
    ) -> Result<Option<Prepared>> {
        let client = self.client_with(scope.settings).await?;
        prepare_on(&self.name, &client, statement).await.map(Some)
    }

    async fn column_types(
        &mut self,
        tables: &[floe_dialects::TableRef],
        schema: Option<&str>,
    ) -> Result<Option<floe_dialects::ColumnTypes>> {
        let client = Arc::clone(self.client()?);
        let name = &self.name;
        self.types
            .get(tables, schema, |missing| async move {
                read_columns(name, &client, missing).await
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

/// Server-side prepared statements kept per connection at most; beyond, the
/// connection's cache starts over (clients that prepare unbounded distinct
/// texts must not grow it without end).
const STATEMENTS_PER_CONNECTION: usize = 256;

/// The connection's prepared statement for `sql`, prepared on first use.
async fn cached_statement(
    client: &Object,
    sql: &str,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= STATEMENTS_PER_CONNECTION {
        client.statement_cache.clear();
    }
    client.prepare_cached(sql).await
}

/// Runs one statement on `client`, which the result stream keeps until its
/// last row.
///
/// A statement the client prepared (extended protocol, binary MySQL
/// statements) runs as a named server-side prepared statement cached on the
/// connection: one round trip, and the columns are known even when no row
/// comes. Other statements go as one unnamed `Parse`/`Bind`/`Execute` round
/// trip, which caches nothing for texts that are seldom repeated.
async fn run(name: &str, client: Arc<Object>, request: Request<'_>) -> Result<QueryOutput> {
    let params: Vec<TextParam> = request.params.iter().map(TextParam::from_scalar).collect();
    let sql = request.statement.sql();
    if request.prepared.is_some() {
        let statement = cached_statement(&client, sql)
            .await
            .map_err(|e| map_error(name, &e))?;
        let rows = client
            .query_raw(&statement, params.iter().map(|p| p as &(dyn ToSql + Sync)))
            .await
            .map_err(|e| {
                // A statement invalidated by DDL must be prepared again next time.
                client.statement_cache.remove(sql, &[]);
                map_error(name, &e)
            })?;
        if statement.columns().is_empty() {
            let mut rows = Box::pin(rows);
            while rows
                .try_next()
                .await
                .map_err(|e| map_error(name, &e))?
                .is_some()
            {}
            return Ok(QueryOutput::Command {
                rows: rows.rows_affected(),
            });
        }
        let (schema, kinds) = decoders(statement.columns())?;
        return stream_rows(name, client, Box::pin(rows), schema, kinds);
    }
    let unspecified = Type::new("unknown".to_owned(), 0, Kind::Simple, String::new());
    let typed = params
        .iter()
        .map(|p| (p as &(dyn ToSql + Sync), unspecified.clone()));
    let rows = client
        .query_typed_raw(sql, typed)
        .await
        .map_err(|e| map_error(name, &e))?;
    let mut rows = Box::pin(rows);
    // The first row carries the columns; without one, the statement either
    // returned no rows or is a command.
    let first = rows.try_next().await.map_err(|e| map_error(name, &e))?;
    let Some(first) = first else {
        let returns_rows = request.statement.kind == StatementKind::Read
            || request.prepared.is_some_and(|p| p.returns_rows)
            || has_returning(request.statement);
        if !returns_rows {
            return Ok(QueryOutput::Command {
                rows: rows.rows_affected(),
            });
        }
        let schema = match request.prepared {
            Some(prepared) => Arc::clone(&prepared.schema),
            None => {
                let statement = client.prepare(sql).await.map_err(|e| map_error(name, &e))?;
                schema_of(statement.columns())?
            }
        };
        return Ok(QueryOutput::Rows {
            schema,
            stream: Box::pin(futures::stream::empty()),
        });
    };
    let (schema, kinds) = decoders(first.columns())?;
    let rows = futures::stream::once(async { Ok(first) }).chain(rows);
    stream_rows(name, client, Box::pin(rows), schema, kinds)
}

/// The rows of `rows` as record batches of `schema`; the stream keeps
/// `client` (the pooled connection) until its end.
fn stream_rows(
    name: &str,
    client: Arc<Object>,
    rows: Pin<Box<dyn Stream<Item = Result<Row, tokio_postgres::Error>> + Send>>,
    schema: SchemaRef,
    kinds: Vec<PgKind>,
) -> Result<QueryOutput> {
    let builder = BatchBuilder::new(Arc::clone(&schema))?;
    let name = name.to_owned();
    // `ready_chunks` batches the rows that have already arrived, so a slow
    // result still reaches the client row group by row group.
    let stream = rows
        .ready_chunks(BATCH_ROWS)
        .scan(Some(builder), move |state, chunk| {
            let _connection = &client;
            let result = state.as_mut().map(|builder| {
                for row in chunk {
                    let row = row.map_err(|e| map_error(&name, &e))?;
                    decode_row(builder, &kinds, &row)?;
                }
                builder.finish()
            });
            if result.as_ref().is_some_and(Result::is_err) {
                *state = None;
            }
            futures::future::ready(result)
        });
    Ok(QueryOutput::Rows {
        schema,
        stream: Box::pin(stream),
    })
}

fn has_returning(statement: &Analysis) -> bool {
    use floe_dialects::sqlparser::ast::Statement;
    match &*statement.statement {
        Statement::Insert(insert) => insert.returning.is_some(),
        Statement::Update(update) => update.returning.is_some(),
        Statement::Delete(delete) => delete.returning.is_some(),
        _ => false,
    }
}

fn decode_row(builder: &mut BatchBuilder, kinds: &[PgKind], row: &Row) -> Result<()> {
    for (index, kind) in kinds.iter().enumerate() {
        let raw: Option<Raw<'_>> = row
            .try_get(index)
            .map_err(|e| Error::Internal(e.to_string()))?;
        match raw {
            None => builder.push(index, Value::Null)?,
            Some(Raw(bytes)) => kind.decode(bytes, |value| builder.push(index, value))?,
        }
    }
    builder.end_row();
    Ok(())
}

/// The Arrow schema of a result with these columns, and how each column's
/// binary values decode.
fn decoders(columns: &[Column]) -> Result<(SchemaRef, Vec<PgKind>)> {
    if columns.is_empty() {
        return Ok((empty_schema(), Vec::new()));
    }
    let kinds = columns
        .iter()
        .map(|c| {
            column_kind(c.type_(), c.type_modifier()).ok_or_else(|| unsupported_type(c.type_()))
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<Field> = columns
        .iter()
        .zip(&kinds)
        .map(|(c, kind)| kind.field(c.name()))
        .collect();
    Ok((Arc::new(Schema::new(fields)), kinds))
}

fn schema_of(columns: &[Column]) -> Result<SchemaRef> {
    decoders(columns).map(|(schema, _)| schema)
}

fn unsupported_type(ty: &Type) -> Error {
    Error::Unsupported(format!(
        "PostgreSQL type {} in a result column (cast it to text)",
        ty.name()
    ))
}

/// A value's bytes exactly as the server sent them, for any type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A parameter sent in text format with an unspecified type, as a quoted
/// literal would be: the server parses it as whatever the statement needs.
#[derive(Debug)]
struct TextParam(Option<String>);

impl TextParam {
    fn from_scalar(value: &ScalarValue) -> Self {
        if value.is_null() {
            return TextParam(None);
        }
        TextParam(Some(match value {
            ScalarValue::Boolean(Some(b)) => (if *b { "t" } else { "f" }).to_owned(),
            ScalarValue::Binary(Some(bytes))
            | ScalarValue::LargeBinary(Some(bytes))
            | ScalarValue::BinaryView(Some(bytes)) => {
                let mut text = String::with_capacity(2 + bytes.len() * 2);
                text.push_str("\\x");
                for byte in bytes {
                    text.push_str(&format!("{byte:02x}"));
                }
                text
            }
            other => other.to_string(),
        }))
    }
}

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.0 {
            None => Ok(IsNull::Yes),
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    to_sql_checked!();
}

/// How a PostgreSQL column's binary values become Arrow values.
#[derive(Debug, Clone, Copy)]
enum PgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Text,
    Json,
    Jsonb,
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Uuid,
    Interval,
    /// `numeric(p, s)` with `p <= 38`: a `Decimal128(p, s)`.
    Decimal(u8, i8),
    /// Unconstrained `numeric`: its exact text, since no Arrow decimal has a
    /// scale per value.
    NumericText,
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

fn column_kind(ty: &Type, typmod: i32) -> Option<PgKind> {
    Some(match *ty {
        Type::BOOL => PgKind::Bool,
        Type::INT2 => PgKind::Int2,
        Type::INT4 => PgKind::Int4,
        Type::INT8 => PgKind::Int8,
        Type::OID => PgKind::Oid,
        Type::FLOAT4 => PgKind::Float4,
        Type::FLOAT8 => PgKind::Float8,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::CHAR => {
            PgKind::Text
        }
        Type::JSON => PgKind::Json,
        Type::JSONB => PgKind::Jsonb,
        Type::BYTEA => PgKind::Bytea,
        Type::DATE => PgKind::Date,
        Type::TIMESTAMP => PgKind::Timestamp,
        Type::TIMESTAMPTZ => PgKind::TimestampTz,
        Type::TIME => PgKind::Time,
        Type::UUID => PgKind::Uuid,
        Type::INTERVAL => PgKind::Interval,
        Type::NUMERIC => {
            // typmod = ((precision << 16) | scale) + 4, or -1 when unconstrained.
            let modifier = typmod - 4;
            let precision = u8::try_from((modifier >> 16) & 0xffff).ok();
            let scale = i8::try_from(modifier & 0xffff).ok();
            match (precision, scale) {
                (Some(p @ 1..=38), Some(s)) if typmod >= 4 => PgKind::Decimal(p, s),
                _ => PgKind::NumericText,
            }
        }
        _ if ty.name() == "citext" => PgKind::Text,
        _ => return None,
    })
}

impl PgKind {
    fn data_type(self) -> DataType {
        match self {
            PgKind::Bool => DataType::Boolean,
            PgKind::Int2 => DataType::Int16,
            PgKind::Int4 => DataType::Int32,
            PgKind::Int8 | PgKind::Oid => DataType::Int64,
            PgKind::Float4 => DataType::Float32,
            PgKind::Float8 => DataType::Float64,
            PgKind::Text | PgKind::Json | PgKind::Jsonb | PgKind::NumericText => DataType::Utf8,
            PgKind::Bytea => DataType::Binary,
            PgKind::Date => DataType::Date32,
            PgKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgKind::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
            }
            PgKind::Time => DataType::Time64(TimeUnit::Microsecond),
            PgKind::Uuid => DataType::FixedSizeBinary(16),
            PgKind::Interval => DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
            PgKind::Decimal(p, s) => DataType::Decimal128(p, s),
        }
    }

    fn field(self, name: &str) -> Field {
        match self {
            PgKind::Uuid => extension_field(name, self.data_type(), "arrow.uuid"),
            PgKind::Json | PgKind::Jsonb => extension_field(name, self.data_type(), "arrow.json"),
            _ => Field::new(name, self.data_type(), true),
        }
    }

    /// Decodes one binary value and hands it to `push`.
    fn decode(self, raw: &[u8], push: impl FnOnce(Value<'_>) -> Result<()>) -> Result<()> {
        let bad = || Error::Internal(format!("malformed binary {self:?} value from PostgreSQL"));
        match self {
            PgKind::Bool => push(Value::Bool(raw.first().ok_or_else(bad)? != &0)),
            PgKind::Int2 => push(Value::Int(
                i16::from_be_bytes(array(raw).ok_or_else(bad)?).into(),
            )),
            PgKind::Int4 => push(Value::Int(
                i32::from_be_bytes(array(raw).ok_or_else(bad)?).into(),
            )),
            PgKind::Int8 => push(Value::Int(i64::from_be_bytes(array(raw).ok_or_else(bad)?))),
            PgKind::Oid => push(Value::Int(
                u32::from_be_bytes(array(raw).ok_or_else(bad)?).into(),
            )),
            PgKind::Float4 => push(Value::Float(
                f32::from_be_bytes(array(raw).ok_or_else(bad)?).into(),
            )),
            PgKind::Float8 => push(Value::Float(f64::from_be_bytes(
                array(raw).ok_or_else(bad)?,
            ))),
            PgKind::Text | PgKind::Json => {
                push(Value::Text(std::str::from_utf8(raw).map_err(|_| bad())?))
            }
            // jsonb's binary form is a version byte (1) and the JSON text.
            PgKind::Jsonb => push(Value::Text(
                std::str::from_utf8(raw.get(1..).ok_or_else(bad)?).map_err(|_| bad())?,
            )),
            PgKind::Bytea | PgKind::Uuid => push(Value::Bytes(raw)),
            PgKind::Date => {
                let days = i32::from_be_bytes(array(raw).ok_or_else(bad)?);
                push(Value::Date(days.saturating_add(PG_EPOCH_DAYS)))
            }
            PgKind::Timestamp | PgKind::TimestampTz => {
                let micros = i64::from_be_bytes(array(raw).ok_or_else(bad)?);
                push(Value::Timestamp(micros.saturating_add(PG_EPOCH_MICROS)))
            }
            PgKind::Time => push(Value::Time(i64::from_be_bytes(array(raw).ok_or_else(bad)?))),
            PgKind::Interval => {
                let micros =
                    i64::from_be_bytes(array(raw.get(..8).unwrap_or(&[])).ok_or_else(bad)?);
                let days =
                    i32::from_be_bytes(array(raw.get(8..12).unwrap_or(&[])).ok_or_else(bad)?);
                let months =
                    i32::from_be_bytes(array(raw.get(12..16).unwrap_or(&[])).ok_or_else(bad)?);
                push(Value::Interval {
                    months,
                    days,
                    micros,
                })
            }
            PgKind::NumericText => push(Value::Text(&numeric_text(raw).ok_or_else(bad)?)),
            PgKind::Decimal(_, scale) => {
                let text = numeric_text(raw).ok_or_else(bad)?;
                let value = parse_decimal(&text, scale).ok_or_else(|| Error::Data {
                    kind: DataErrorKind::NumericOutOfRange,
                    message: format!("numeric value {text} does not fit a decimal"),
                })?;
                push(Value::Decimal(value))
            }
        }
    }
}

fn array<const N: usize>(raw: &[u8]) -> Option<[u8; N]> {
    raw.try_into().ok()
}

/// PostgreSQL's binary `numeric` (base-10000 digits with a weight and a display
/// scale) as the text PostgreSQL itself prints.
fn numeric_text(raw: &[u8]) -> Option<String> {
    let word = |at: usize| {
        raw.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<Vec<u16>>>()?;
    let digit = |index: i32| -> u16 {
        usize::try_from(index)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for index in 0..=weight {
            if index == 0 {
                text.push_str(&digit(index).to_string());
            } else {
                text.push_str(&format!("{:04}", digit(index)));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut index = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(index)));
            index += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}

/// Maps a tokio-postgres error to Floe's, by SQLSTATE where the server sent one.
fn map_error(engine: &str, e: &tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        // No server error: the connection failed, closed or timed out.
        return Error::EngineUnavailable {
            engine: engine.to_owned(),
            message: e.to_string(),
            retryable: true,
        };
    };
    map_sqlstate(engine, db.code().code(), db.message().to_owned())
}

/// A server error with SQLSTATE `code` as Floe's error.
pub(super) fn map_sqlstate(engine: &str, code: &str, message: String) -> Error {
    match code {
        "42601" => Error::Syntax(message),
        "42P01" | "3F000" => Error::UndefinedTable(message),
        "42703" => Error::UndefinedColumn(message),
        "22012" => Error::Data {
            kind: DataErrorKind::DivisionByZero,
            message,
        },
        "22003" => Error::Data {
            kind: DataErrorKind::NumericOutOfRange,
            message,
        },
        "22P02" | "22007" | "22008" => Error::Data {
            kind: DataErrorKind::InvalidText,
            message,
        },
        "0A000" => Error::Unsupported(message),
        "57014" => Error::Cancelled,
        // Connection exceptions, shutdown, resources and system errors: the
        // engine, not the statement, failed.
        _ if code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("58")
            || code.starts_with("57P") =>
        {
            Error::EngineUnavailable {
                engine: engine.to_owned(),
                message,
                retryable: true,
            }
        }
        _ => Error::Rejected {
            sqlstate: code.to_owned(),
            mysql_code: None,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for word in [ndigits, weight as u16, sign, dscale] {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_print_as_postgresql_prints_them() {
        assert_eq!(
            numeric_text(&numeric(2, 0, 0, 2, &[12, 3400])).as_deref(),
            Some("12.34")
        );
        assert_eq!(
            numeric_text(&numeric(2, 1, 0x4000, 0, &[1, 0])).as_deref(),
            Some("-10000")
        );
        assert_eq!(
            numeric_text(&numeric(1, -2, 0, 5, &[1000])).as_deref(),
            Some("0.00001")
        );
        assert_eq!(
            numeric_text(&numeric(0, 0, 0, 3, &[])).as_deref(),
            Some("0.000")
        );
        assert_eq!(
            numeric_text(&numeric(0, 0, 0xC000, 0, &[])).as_deref(),
            Some("NaN")
        );
        assert_eq!(numeric_text(&[1]), None);
    }

    #[test]
    fn numeric_typmods_choose_decimal_or_text() {
        let typmod = ((10 << 16) | 2) + 4;
        assert!(matches!(
            column_kind(&Type::NUMERIC, typmod),
            Some(PgKind::Decimal(10, 2))
        ));
        assert!(matches!(
            column_kind(&Type::NUMERIC, -1),
            Some(PgKind::NumericText)
        ));
    }
}
