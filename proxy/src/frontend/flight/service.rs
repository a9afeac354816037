//! [`FlightSql`]: the `FlightSqlService` over the shared session layer.
//!
//! Flight SQL is stateless between calls, so Floe keeps three small tables,
//! each bounded and with expiry: bearer tokens from `Handshake`, pending
//! statement tickets between `GetFlightInfo` and `DoGet`, and prepared
//! statements with their bound parameters. Tickets and handles are random
//! 128-bit values that only index those tables; every use checks that the
//! entry exists, has not expired and belongs to the caller.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine as _;
use datafusion::scalar::ScalarValue;
use floe_dialects::{Analysis, Dialect, analyze_statement, number_placeholders};
use floe_router::Prepared;
use floe_router::engine::QueryOutput;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::error::status;
use super::metadata::{SQL_INFO, XDBC_INFO, foreign_keys_schema, primary_keys_schema};
use crate::error::Error;
use crate::metrics::Protocol;
use crate::session::{Outcome, Session, Shared};

/// How many entries each table may hold; beyond it, new entries are refused
/// with `ResourceExhausted` until old ones expire or close.
const MAX_ENTRIES: usize = 10_000;

type FlightStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// Who is calling: the authenticated user, or nobody when no users are
/// configured (trust).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Caller(Option<String>);

struct Token {
    caller: Caller,
    expires: Instant,
}

/// A statement between `GetFlightInfo` and `DoGet`.
struct Pending {
    caller: Caller,
    expires: Instant,
    analysis: Analysis,
    prepared: Prepared,
}

/// A prepared statement and the parameters last bound to it.
struct PreparedStatement {
    caller: Caller,
    analysis: Analysis,
    prepared: Prepared,
    params: Vec<Vec<ScalarValue>>,
}

/// The Flight SQL service.
pub(crate) struct FlightSql {
    shared: Shared,
    users: HashMap<String, String>,
    dialect: Dialect,
    ticket_ttl: Duration,
    token_ttl: Duration,
    tokens: Mutex<HashMap<String, Token>>,
    pending: Mutex<HashMap<Vec<u8>, Pending>>,
    statements: Mutex<HashMap<Vec<u8>, PreparedStatement>>,
}

fn random_handle() -> Vec<u8> {
    rand::random::<[u8; 16]>().to_vec()
}

fn poisoned() -> Status {
    Status::internal("a lock was poisoned")
}

fn full(what: &str) -> Status {
    Status::resource_exhausted(format!(
        "too many open {what}; close some or wait for expiry"
    ))
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// A one-batch Flight stream.
fn batch_stream(batch: RecordBatch) -> FlightStream {
    let schema = batch.schema();
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async { Ok(batch) }))
            .map_err(Status::from),
    )
}

fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

impl FlightSql {
    pub(crate) fn new(
        shared: Shared,
        users: HashMap<String, String>,
        dialect: Dialect,
        ticket_ttl: Duration,
        token_ttl: Duration,
    ) -> Self {
        FlightSql {
            shared,
            users,
            dialect,
            ticket_ttl,
            token_ttl,
            tokens: Mutex::default(),
            pending: Mutex::default(),
            statements: Mutex::default(),
        }
    }

    /// The caller of a request: from its bearer token, which must be valid;
    /// without one, only when no users are configured.
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let Some(header) = request.metadata().get("authorization") else {
            return if self.users.is_empty() {
                Ok(Caller(None))
            } else {
                Err(Status::unauthenticated(
                    "no bearer token: call Handshake with basic credentials first",
                ))
            };
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header is not a bearer token")
            })?;
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        match tokens.get(token) {
            Some(entry) if entry.expires > Instant::now() => Ok(entry.caller.clone()),
            Some(_) => {
                tokens.remove(token);
                Err(Status::unauthenticated(
                    "the bearer token has expired; handshake again",
                ))
            }
            None => Err(Status::unauthenticated("invalid bearer token")),
        }
    }

    /// Checks basic credentials from a `Handshake`.
    fn login(&self, header: Option<&str>) -> Result<Caller, Status> {
        let Some(header) = header else {
            return if self.users.is_empty() {
                Ok(Caller(None))
            } else {
                Err(Status::unauthenticated("Handshake needs basic credentials"))
            };
        };
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
            .ok_or_else(|| Status::unauthenticated("Handshake needs basic credentials"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| Status::unauthenticated("the basic credentials are not base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| Status::unauthenticated("the basic credentials are not UTF-8"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| Status::unauthenticated("the basic credentials lack a ':'"))?;
        if self.users.is_empty() {
            return Ok(Caller(Some(user.to_owned())));
        }
        match self.users.get(user) {
            Some(expected) if same_secret(expected.as_bytes(), password.as_bytes()) => {
                Ok(Caller(Some(user.to_owned())))
            }
            _ => {
                tracing::info!(user, "Flight SQL authentication failed");
                Err(Status::unauthenticated("invalid user name or password"))
            }
        }
    }

    fn analyze(&self, sql: &str) -> Result<Analysis, Status> {
        let mut analysis = analyze_statement(sql, self.dialect).map_err(|e| status(e.into()))?;
        // Flight SQL clients mark parameters with `?` as often as with `$1`.
        number_placeholders(&mut analysis.statement);
        Ok(analysis)
    }

    async fn prepare(&self, analysis: &Analysis) -> Result<Prepared, Status> {
        let mut session = Session::new(self.shared.clone(), Protocol::FlightSql);
        session.prepare(analysis).await.map_err(status)
    }

    /// Runs a statement and streams its rows as Flight data.
    async fn stream(
        &self,
        analysis: &Analysis,
        params: &[ScalarValue],
        prepared: &Prepared,
    ) -> Result<FlightStream, Status> {
        let mut session = Session::new(self.shared.clone(), Protocol::FlightSql);
        let (schema, rows) = match session.run(analysis, params, Some(prepared)).await? {
            Outcome::Rows { schema, stream } => (schema, stream),
            _ => (
                Arc::new(Schema::empty()) as SchemaRef,
                Box::pin(futures::stream::empty()) as floe_router::engine::BatchStream,
            ),
        };
        let batches = rows.map_err(|e| FlightError::Tonic(Box::new(status(Error::Engine(e)))));
        Ok(Box::pin(
            FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .build(batches)
                .map_err(Status::from),
        ))
    }

    /// Runs an update and returns the rows it touched.
    async fn update(&self, analysis: &Analysis, params: &[ScalarValue]) -> Result<i64, Status> {
        let mut session = Session::new(self.shared.clone(), Protocol::FlightSql);
        match session.run(analysis, params, None).await? {
            Outcome::Command { rows, .. } => {
                Ok(rows.map_or(0, |r| i64::try_from(r).unwrap_or(i64::MAX)))
            }
            Outcome::Rows { .. } => Err(Status::invalid_argument(
                "the statement returns rows: run it with CommandStatementQuery",
            )),
            Outcome::TransactionStart | Outcome::TransactionEnd { .. } => Ok(0),
        }
    }

    /// Rows of an `information_schema` query, collected (catalog listings
    /// are small).
    async fn catalog_rows(&self, sql: &str) -> Result<Vec<RecordBatch>, Status> {
        let analysis = analyze_statement(sql, Dialect::DataFusion).map_err(|e| status(e.into()))?;
        match self
            .shared
            .execute_internal(Protocol::FlightSql, &analysis)
            .await
            .map_err(status)?
        {
            QueryOutput::Rows { stream, .. } => stream
                .try_collect()
                .await
                .map_err(|e| status(Error::Engine(e))),
            QueryOutput::Command { .. } => Ok(Vec::new()),
        }
    }

    /// Every `(catalog, schema, table, type)` the engine serves.
    async fn tables(&self) -> Result<Vec<[String; 4]>, Status> {
        let batches = self
            .catalog_rows(
                "SELECT table_catalog, table_schema, table_name, table_type \
                 FROM information_schema.tables ORDER BY 1, 2, 3",
            )
            .await?;
        let mut tables = Vec::new();
        for batch in &batches {
            let columns: Vec<_> = (0..4)
                .map(|i| arrow::compute::cast(batch.column(i), &DataType::Utf8))
                .collect::<Result<_, _>>()
                .map_err(|e| Status::internal(e.to_string()))?;
            let strings: Vec<&arrow::array::StringArray> = columns
                .iter()
                .filter_map(|c| c.as_any().downcast_ref())
                .collect();
            if strings.len() != 4 {
                return Err(Status::internal(
                    "information_schema.tables has unexpected types",
                ));
            }
            for row in 0..batch.num_rows() {
                tables.push(std::array::from_fn(|i| strings[i].value(row).to_owned()));
            }
        }
        Ok(tables)
    }

    /// `GetFlightInfo` for a command answered in one batch of `schema`: the
    /// ticket is the command itself.
    fn command_info(
        &self,
        command: &impl ProstMessageExt,
        schema: &Schema,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        flight_info(
            schema,
            command.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    /// `DoGet` of a key command: always empty, as Iceberg tables have no
    /// enforced keys.
    fn no_keys(
        &self,
        schema: SchemaRef,
        request: &Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        self.caller(request)?;
        Ok(Response::new(batch_stream(RecordBatch::new_empty(schema))))
    }

    fn remember_statement(&self, statement: PreparedStatement) -> Result<Vec<u8>, Status> {
        let handle = random_handle();
        let mut statements = self.statements.lock().map_err(|_| poisoned())?;
        if statements.len() >= MAX_ENTRIES {
            return Err(full("prepared statements"));
        }
        statements.insert(handle.clone(), statement);
        Ok(handle)
    }

    /// A prepared statement's analysis, plan and bound parameters, if the
    /// handle is the caller's.
    fn statement(
        &self,
        handle: &[u8],
        caller: &Caller,
    ) -> Result<(Analysis, Prepared, Vec<Vec<ScalarValue>>), Status> {
        let statements = self.statements.lock().map_err(|_| poisoned())?;
        match statements.get(handle) {
            Some(s) if &s.caller == caller => {
                Ok((s.analysis.clone(), s.prepared.clone(), s.params.clone()))
            }
            _ => Err(Status::not_found(
                "unknown or closed prepared statement handle",
            )),
        }
    }

    /// Reads the parameter rows a client sends with `DoPut`.
    async fn parameter_rows(
        request: Request<PeekableFlightDataStream>,
    ) -> Result<Vec<Vec<ScalarValue>>, Status> {
        // A DoPut may carry only its command (an update with no parameters):
        // messages without an IPC header hold no data.
        let messages = request
            .into_inner()
            .try_filter(|message| std::future::ready(!message.data_header.is_empty()))
            .map_err(FlightError::from);
        let stream = FlightRecordBatchStream::new_from_flight_data(messages);
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(Status::from)?;
        let mut rows = Vec::new();
        for batch in batches {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|column| ScalarValue::try_from_array(column, row))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| Status::invalid_argument(format!("bad parameter: {e}")))?,
                );
            }
        }
        Ok(rows)
    }

    /// Casts bound values to the types the plan expects.
    fn cast_params(
        values: &[ScalarValue],
        prepared: &Prepared,
    ) -> Result<Vec<ScalarValue>, Status> {
        values
            .iter()
            .enumerate()
            .map(
                |(i, value)| match prepared.param_types.get(i).and_then(Option::as_ref) {
                    Some(target) if value.data_type() != *target => {
                        value.cast_to(target).map_err(|e| {
                            Status::invalid_argument(format!(
                                "parameter ${}: cannot use {value} as {target}: {e}",
                                i + 1
                            ))
                        })
                    }
                    _ => Ok(value.clone()),
                },
            )
            .collect()
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .map(|h| {
                h.to_str()
                    .map_err(|_| Status::unauthenticated("bad authorization header"))
            })
            .transpose()?;
        let caller = self.login(header)?;
        let token = hex(&rand::random::<[u8; 32]>());
        {
            let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
            let now = Instant::now();
            tokens.retain(|_, t| t.expires > now);
            if tokens.len() >= MAX_ENTRIES {
                return Err(full("sessions"));
            }
            tokens.insert(
                token.clone(),
                Token {
                    caller,
                    expires: now + self.token_ttl,
                },
            );
        }
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|e| Status::internal(e.to_string()))?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let analysis = self.analyze(&query.query)?;
        let prepared = self.prepare(&analysis).await?;
        let handle = random_handle();
        {
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            let now = Instant::now();
            pending.retain(|_, p| p.expires > now);
            if pending.len() >= MAX_ENTRIES {
                return Err(full("tickets"));
            }
            pending.insert(
                handle.clone(),
                Pending {
                    caller,
                    expires: now + self.ticket_ttl,
                    analysis,
                    prepared: prepared.clone(),
                },
            );
        }
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        };
        flight_info(
            &prepared.schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        // Tickets are single use: taking it out also stops a replay.
        let pending = self
            .pending
            .lock()
            .map_err(|_| poisoned())?
            .remove(ticket.statement_handle.as_ref());
        let pending = match pending {
            Some(p) if p.expires > Instant::now() && p.caller == caller => p,
            _ => {
                return Err(Status::not_found(
                    "unknown, used or expired ticket: call GetFlightInfo again",
                ));
            }
        };
        Ok(Response::new(
            self.stream(&pending.analysis, &[], &pending.prepared)
                .await?,
        ))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.caller(&request)?;
        let analysis = self.analyze(&command.query)?;
        self.update(&analysis, &[]).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.caller(&request)?;
        let analysis = self.analyze(&query.query)?;
        let prepared = self.prepare(&analysis).await?;
        let parameter_schema = Schema::new(
            prepared
                .param_types
                .iter()
                .enumerate()
                .map(|(i, ty)| {
                    Field::new(
                        format!("${}", i + 1),
                        ty.clone().unwrap_or(DataType::Null),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let dataset_schema = ipc_schema(&prepared.schema)?;
        let parameter_schema = ipc_schema(&parameter_schema)?;
        let handle = self.remember_statement(PreparedStatement {
            caller,
            analysis,
            prepared,
            params: Vec::new(),
        })?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let caller = self.caller(&request)?;
        let mut statements = self.statements.lock().map_err(|_| poisoned())?;
        let handle = query.prepared_statement_handle.as_ref();
        match statements.get(handle) {
            Some(s) if s.caller == caller => {
                statements.remove(handle);
                Ok(())
            }
            _ => Err(Status::not_found(
                "unknown or closed prepared statement handle",
            )),
        }
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = self.caller(&request)?;
        let handle = query.prepared_statement_handle.to_vec();
        // Validate the handle before reading the parameters.
        let (_, prepared, _) = self.statement(&handle, &caller)?;
        let rows = Self::parameter_rows(request).await?;
        let rows = rows
            .iter()
            .map(|row| Self::cast_params(row, &prepared))
            .collect::<Result<Vec<_>, _>>()?;
        let mut statements = self.statements.lock().map_err(|_| poisoned())?;
        if let Some(statement) = statements.get_mut(&handle) {
            statement.params = rows;
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let (_, prepared, _) = self.statement(&query.prepared_statement_handle, &caller)?;
        flight_info(
            &prepared.schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let (analysis, prepared, params) =
            self.statement(&query.prepared_statement_handle, &caller)?;
        if params.len() > 1 {
            return Err(Status::invalid_argument(
                "a query takes one row of parameters; bind one row, or execute it as an update",
            ));
        }
        let params = params.into_iter().next().unwrap_or_default();
        Ok(Response::new(
            self.stream(&analysis, &params, &prepared).await?,
        ))
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let caller = self.caller(&request)?;
        let (analysis, prepared, bound) =
            self.statement(&query.prepared_statement_handle, &caller)?;
        // Parameters come with this call, or were bound before it.
        let mut rows = Self::parameter_rows(request).await?;
        if rows.is_empty() {
            rows = bound;
        }
        if rows.is_empty() {
            rows.push(Vec::new());
        }
        // Each parameter row is one execution, as JDBC's executeBatch.
        let mut total = 0i64;
        for row in rows {
            let params = Self::cast_params(&row, &prepared)?;
            total = total.saturating_add(self.update(&analysis, &params).await?);
        }
        Ok(total)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        self.command_info(&query, &schema, request)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let batch = query
            .into_builder(&SQL_INFO)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&XDBC_INFO).schema();
        self.command_info(&query, &schema, request)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let batch = query
            .into_builder(&XDBC_INFO)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(&query, &schema, request)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let mut builder = query.into_builder();
        let mut catalogs: Vec<String> = self.tables().await?.into_iter().map(|[c, ..]| c).collect();
        catalogs.dedup();
        for catalog in catalogs {
            builder.append(catalog);
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(&query, &schema, request)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let mut builder = query.into_builder();
        let mut schemas: Vec<(String, String)> = self
            .tables()
            .await?
            .into_iter()
            .map(|[c, s, ..]| (c, s))
            .collect();
        schemas.dedup();
        for (catalog, schema) in schemas {
            builder.append(catalog, schema);
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(&query, &schema, request)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let include_schema = query.include_schema;
        let catalog_filter = query.catalog.clone();
        let types_filter = query.table_types.clone();
        let mut builder = query.into_builder();
        for [catalog, schema, table, kind] in self.tables().await? {
            // The builder filters again by pattern; skipping the obvious
            // misses first saves planning their schemas.
            if catalog_filter.as_ref().is_some_and(|c| *c != catalog)
                || (!types_filter.is_empty() && !types_filter.contains(&kind))
            {
                continue;
            }
            let table_schema = if include_schema {
                let sql = format!(
                    "SELECT * FROM \"{}\".\"{}\".\"{}\"",
                    catalog.replace('"', "\"\""),
                    schema.replace('"', "\"\""),
                    table.replace('"', "\"\"")
                );
                let analysis =
                    analyze_statement(&sql, Dialect::DataFusion).map_err(|e| status(e.into()))?;
                Arc::clone(&self.prepare(&analysis).await?.schema)
            } else {
                Arc::new(Schema::empty())
            };
            builder
                .append(&catalog, &schema, &table, &kind, &table_schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(&query, &schema, request)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let mut builder = query.into_builder();
        for kind in ["BASE TABLE", "VIEW", "LOCAL TEMPORARY"] {
            builder.append(kind);
        }
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.command_info(&query, &primary_keys_schema(), request)
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.no_keys(primary_keys_schema(), &request)
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.command_info(&query, &foreign_keys_schema(), request)
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.no_keys(foreign_keys_schema(), &request)
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.command_info(&query, &foreign_keys_schema(), request)
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.no_keys(foreign_keys_schema(), &request)
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.command_info(&query, &foreign_keys_schema(), request)
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.no_keys(foreign_keys_schema(), &request)
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
