//! Any Arrow Flight SQL server as an engine: another Floe, Dremio, DuckDB's
//! Flight server. Results arrive as Arrow already and pass through untouched.
//!
//! Queries go through the raw Flight client (`GetFlightInfo` then `DoGet` per
//! endpoint); updates and statements with parameters use arrow-flight's Flight
//! SQL client. Either way the server's gRPC status code decides Floe's error
//! kind. With credentials configured, Floe performs the Flight handshake
//! (HTTP basic) once and reuses the bearer token until the server refuses it.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::{FlightDescriptor, FlightInfo};
use async_trait::async_trait;
use datafusion::scalar::ScalarValue;
use floe_dialects::{Analysis, Dialect, StatementKind};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::{Engine, Prepared, QueryOutput, Request, Scope};
use crate::{DataErrorKind, Error, Result};

/// How to build a [`FlightSqlEngine`].
#[derive(Debug, Clone)]
pub struct FlightSqlEngineOptions {
    /// The engine's name in configuration, logs and metrics.
    pub name: String,
    /// `http://host:port` (or `https://`).
    pub url: String,
    /// The dialect the server speaks.
    pub dialect: Dialect,
    /// User and password for the Flight handshake; `None` skips it.
    pub credentials: Option<(String, String)>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

/// An Arrow Flight SQL server.
pub struct FlightSqlEngine {
    name: String,
    dialect: Dialect,
    channel: Channel,
    credentials: Option<(String, String)>,
    /// The bearer token from the last handshake.
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for FlightSqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlEngine")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl FlightSqlEngine {
    /// Builds the engine; the connection opens lazily, so a server that is down
    /// at start-up does not stop Floe.
    ///
    /// # Errors
    ///
    /// The URL is not a valid endpoint.
    pub fn new(options: FlightSqlEngineOptions) -> Result<Self> {
        let endpoint = Endpoint::from_shared(options.url.clone())
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "engine {}: invalid Flight SQL URL {}: {e}",
                    options.name, options.url
                ))
            })?
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true);
        Ok(FlightSqlEngine {
            name: options.name,
            dialect: options.dialect,
            channel: endpoint.connect_lazy(),
            credentials: options.credentials,
            token: Mutex::new(None),
        })
    }

    /// The bearer token, after a handshake if none is held yet.
    async fn token(&self) -> Result<Option<String>> {
        let Some((user, password)) = &self.credentials else {
            return Ok(None);
        };
        let mut token = self.token.lock().await;
        if token.is_none() {
            let mut client = FlightSqlServiceClient::new(self.channel.clone());
            client
                .handshake(user, password)
                .await
                .map_err(|e| self.error(e))?;
            *token = client.token().cloned();
        }
        Ok(token.clone())
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    fn request<T>(&self, message: T, token: Option<&str>) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                Error::Internal("the bearer token is not a header value".to_owned())
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    async fn sql_client(&self) -> Result<FlightSqlServiceClient<Channel>> {
        let mut client = FlightSqlServiceClient::new(self.channel.clone());
        if let Some(token) = self.token().await? {
            client.set_token(token);
        }
        Ok(client)
    }

    async fn query(&self, sql: &str) -> Result<QueryOutput> {
        let command = CommandStatementQuery {
            query: sql.to_owned(),
            transaction_id: None,
        };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let token = self.token().await?;
        let mut client = FlightServiceClient::new(self.channel.clone());
        let info = match client
            .get_flight_info(self.request(descriptor.clone(), token.as_deref())?)
            .await
        {
            Ok(info) => info.into_inner(),
            Err(status) if status.code() == Code::Unauthenticated && token.is_some() => {
                // The server forgot or expired the token: handshake once more.
                self.forget_token().await;
                let token = self.token().await?;
                client
                    .get_flight_info(self.request(descriptor, token.as_deref())?)
                    .await
                    .map_err(|s| self.status_error(&s))?
                    .into_inner()
            }
            Err(status) => return Err(self.status_error(&status)),
        };
        self.fetch(info, token).await
    }

    /// Streams every endpoint's batches of `info`, in order.
    async fn fetch(&self, info: FlightInfo, token: Option<String>) -> Result<QueryOutput> {
        let schema = Arc::new(
            info.clone()
                .try_decode_schema()
                .map_err(|e| Error::Internal(format!("engine {}: {e}", self.name)))?,
        );
        let mut streams = Vec::with_capacity(info.endpoint.len());
        for endpoint in info.endpoint {
            let Some(ticket) = endpoint.ticket else {
                continue;
            };
            let mut client = FlightServiceClient::new(self.channel.clone());
            let response = client
                .do_get(self.request(ticket, token.as_deref())?)
                .await
                .map_err(|s| self.status_error(&s))?;
            let name = self.name.clone();
            let data = response
                .into_inner()
                .map_err(|s| FlightError::Tonic(Box::new(s)));
            streams.push(
                FlightRecordBatchStream::new_from_flight_data(data)
                    .map_err(move |e| flight_error(&name, e)),
            );
        }
        Ok(QueryOutput::Rows {
            schema,
            stream: Box::pin(futures::stream::iter(streams).flatten()),
        })
    }

    async fn with_params(&self, request: &Request<'_>, returns_rows: bool) -> Result<QueryOutput> {
        let mut client = self.sql_client().await?;
        let mut prepared = client
            .prepare(request.statement.sql().to_owned(), None)
            .await
            .map_err(|e| self.error(e))?;
        prepared
            .set_parameters(params_batch(request.params)?)
            .map_err(|e| self.error(e))?;
        if returns_rows {
            let info = prepared.execute().await.map_err(|e| self.error(e))?;
            let token = self.token().await?;
            self.fetch(info, token).await
        } else {
            let rows = prepared.execute_update().await.map_err(|e| self.error(e))?;
            Ok(QueryOutput::Command {
                rows: u64::try_from(rows).ok(),
            })
        }
    }

    fn status_error(&self, status: &Status) -> Error {
        status_error(&self.name, status.code(), status.message())
    }

    fn error(&self, e: FlightError) -> Error {
        flight_error(&self.name, e)
    }
}

#[async_trait]
impl Engine for FlightSqlEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn probe(&self) -> Result<()> {
        // The cheapest call every Flight SQL server answers.
        let mut client = self.sql_client().await?;
        client
            .get_table_types()
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    async fn prepare(&self, statement: &Analysis, _scope: Scope<'_>) -> Result<Prepared> {
        let mut client = self.sql_client().await?;
        let prepared = client
            .prepare(statement.sql().to_owned(), None)
            .await
            .map_err(|e| self.error(e))?;
        let schema = Arc::new(
            prepared
                .dataset_schema()
                .map_err(|e| self.error(e))?
                .clone(),
        );
        let param_types = prepared
            .parameter_schema()
            .map_err(|e| self.error(e))?
            .fields()
            .iter()
            .map(|f| Some(f.data_type().clone()))
            .collect();
        // Closing is a courtesy: the server expires handles on its own.
        drop(prepared.close().await);
        Ok(Prepared {
            param_types,
            returns_rows: !schema.fields().is_empty(),
            schema,
            plan: None,
            engine: None,
        })
    }

    async fn execute(&self, request: Request<'_>) -> Result<QueryOutput> {
        let returns_rows = request.statement.kind == StatementKind::Read
            || request.prepared.is_some_and(|p| p.returns_rows);
        if !request.params.is_empty() {
            return self.with_params(&request, returns_rows).await;
        }
        if returns_rows {
            return self.query(request.statement.sql()).await;
        }
        let mut client = self.sql_client().await?;
        let rows = client
            .execute_update(request.statement.sql().to_owned(), None)
            .await
            .map_err(|e| self.error(e))?;
        Ok(QueryOutput::Command {
            rows: u64::try_from(rows).ok(),
        })
    }
}

/// Parameters as the one-row batch Flight SQL binds, named `$1`, `$2`, ...
fn params_batch(params: &[ScalarValue]) -> Result<RecordBatch> {
    let arrays = params
        .iter()
        .map(|p| p.to_array().map_err(|e| Error::Internal(e.to_string())))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let fields: Vec<Field> = arrays
        .iter()
        .enumerate()
        .map(|(i, a)| Field::new(format!("${}", i + 1), a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Error::Internal(e.to_string()))
}

fn flight_error(engine: &str, e: FlightError) -> Error {
    match e {
        FlightError::Tonic(status) => status_error(engine, status.code(), status.message()),
        FlightError::Arrow(e) => Error::Internal(e.to_string()),
        other => Error::EngineUnavailable {
            engine: engine.to_owned(),
            message: other.to_string(),
            retryable: false,
        },
    }
}

fn status_error(engine: &str, code: Code, message: &str) -> Error {
    let message = message.to_owned();
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => {
            Error::InvalidInput(message)
        }
        Code::NotFound => Error::UndefinedTable(message),
        Code::Unimplemented => Error::Unsupported(message),
        Code::Cancelled => Error::Cancelled,
        Code::OutOfRange => Error::Data {
            kind: DataErrorKind::NumericOutOfRange,
            message,
        },
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            Error::EngineUnavailable {
                engine: engine.to_owned(),
                message,
                retryable: true,
            }
        }
        Code::Unauthenticated | Code::PermissionDenied => Error::EngineUnavailable {
            engine: engine.to_owned(),
            message: format!("the server refused Floe's credentials: {message}"),
            retryable: false,
        },
        _ => Error::Internal(message),
    }
}
