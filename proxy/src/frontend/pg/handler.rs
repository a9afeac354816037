//! pgwire's query handlers: the simple and extended protocols, decoded into
//! calls on the shared session layer.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use floe_dialects::{Analysis, Dialect, analyze, analyze_statement, split};
use floe_router::Prepared;
use futures::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use super::encode::{RowLayout, response};
use super::error::{error_info, to_pgwire};
use crate::error::Error;
use crate::metrics::Protocol;
use crate::session::{CancelSlot, Session, Shared};

/// The session of one connection, kept in pgwire's per-connection extensions.
type SessionCell = tokio::sync::Mutex<Session>;

/// Finds a running statement's cancel slot from a cancel request's
/// `(process id, secret key)`.
#[derive(Debug, Default)]
pub(super) struct CancelRegistry {
    slots: Mutex<HashMap<(i32, Vec<u8>), Weak<CancelSlot>>>,
}

impl CancelRegistry {
    /// Cancels the statement of the connection with this key, if it exists.
    pub(super) fn cancel(&self, key: &(i32, Vec<u8>)) {
        let slot = self.slots.lock().ok().and_then(|slots| slots.get(key).and_then(Weak::upgrade));
        if let Some(slot) = slot {
            slot.cancel();
        }
    }
}

/// Removes a connection's entry from the registry when the connection ends.
struct Registration {
    registry: Arc<CancelRegistry>,
    key: (i32, Vec<u8>),
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.registry.slots.lock() {
            slots.remove(&self.key);
        }
    }
}

/// Handles both query protocols for every connection.
pub(super) struct Handler {
    shared: Shared,
    parser: Arc<Parser>,
    cancels: Arc<CancelRegistry>,
}

impl Handler {
    pub(super) fn new(shared: Shared, cancels: Arc<CancelRegistry>) -> Self {
        Handler {
            parser: Arc::new(Parser {
                shared: shared.clone(),
            }),
            shared,
            cancels,
        }
    }

    /// This connection's session, created on its first statement.
    fn session<C: ClientInfo>(&self, client: &C) -> Arc<SessionCell> {
        let extensions = client.session_extensions();
        if let Some(session) = extensions.get::<SessionCell>() {
            return session;
        }
        let session = Session::new(self.shared.clone(), Protocol::Postgres);
        let (pid, secret) = client.pid_and_secret_key();
        let key = (pid, secret.to_bytes().to_vec());
        if let Ok(mut slots) = self.cancels.slots.lock() {
            slots.insert(key.clone(), Arc::downgrade(&session.cancel_slot()));
        }
        extensions.insert(Registration {
            registry: Arc::clone(&self.cancels),
            key,
        });
        extensions.get_or_insert_with(|| tokio::sync::Mutex::new(session))
    }
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session(client);
        let mut session = session.lock().await;
        // PostgreSQL parses the whole string before running any of it: a
        // syntax error anywhere runs nothing.
        let analyses = match analyze(query, Dialect::Postgres) {
            Ok(analyses) => analyses,
            Err(e) => {
                session.fail_transaction();
                return Err(to_pgwire(e.into()));
            }
        };
        let mut responses = Vec::with_capacity(analyses.len());
        for analysis in &analyses {
            match session.run(analysis, &[], None).await {
                Ok(outcome) => responses.push(response(outcome, &Format::UnifiedText)?),
                Err(e) => {
                    // The statements after a failed one do not run.
                    responses.push(Response::Error(Box::new(error_info(&e))));
                    break;
                }
            }
        }
        if responses.is_empty() {
            responses.push(Response::EmptyQuery);
        }
        Ok(responses)
    }
}

/// A statement prepared with `Parse`.
#[derive(Debug, Clone)]
pub(super) struct Statement {
    /// `None` for an empty query string.
    analysis: Option<Arc<Analysis>>,
    prepared: Arc<Prepared>,
    param_types: Vec<Type>,
}

/// Plans statements at `Parse` time so that `Describe` can answer with types.
pub(super) struct Parser {
    shared: Shared,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Statement;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Statement>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let pieces = split(sql, Dialect::Postgres).map_err(|e| to_pgwire(e.into()))?;
        let piece = match pieces.as_slice() {
            [] => {
                return Ok(Statement {
                    analysis: None,
                    prepared: Arc::new(Prepared::command()),
                    param_types: Vec::new(),
                });
            }
            [one] => *one,
            _ => return Err(to_pgwire(Error::MultipleStatements)),
        };
        let analysis = analyze_statement(piece, Dialect::Postgres).map_err(|e| to_pgwire(e.into()))?;
        let prepared = Session::prepare(&self.shared, &analysis).await.map_err(to_pgwire)?;
        let param_types = prepared
            .param_types
            .iter()
            .map(|ty| match ty {
                Some(ty) => arrow_pg::datatypes::into_pg_type(ty).unwrap_or(Type::UNKNOWN),
                None => Type::UNKNOWN,
            })
            .collect();
        Ok(Statement {
            analysis: Some(Arc::new(analysis)),
            prepared: Arc::new(prepared),
            param_types,
        })
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.clone())
    }

    fn get_result_schema(&self, stmt: &Statement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        if !stmt.prepared.returns_rows {
            return Ok(Vec::new());
        }
        Ok(RowLayout::new(&stmt.prepared.schema, format.unwrap_or(&Format::UnifiedText))?.fields())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = Statement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Statement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = &portal.statement.statement;
        let Some(analysis) = &statement.analysis else {
            return Ok(Response::EmptyQuery);
        };
        let session = self.session(client);
        let mut session = session.lock().await;
        let inferred: Vec<Option<&arrow::datatypes::DataType>> =
            statement.prepared.param_types.iter().map(Option::as_ref).collect();
        let params = match decode_params(portal, &inferred) {
            Ok(params) => params,
            Err(e) => {
                session.fail_transaction();
                return Err(e);
            }
        };
        let outcome = session
            .run(analysis, &params, Some(&statement.prepared))
            .await
            .map_err(to_pgwire)?;
        response(outcome, &portal.result_column_format)
    }
}

/// Decodes a portal's parameters (text or binary) to the types the plan expects.
fn decode_params(
    portal: &Portal<Statement>,
    inferred: &[Option<&arrow::datatypes::DataType>],
) -> PgWireResult<Vec<ScalarValue>> {
    match arrow_pg::datatypes::df::deserialize_parameters(portal, inferred)? {
        ParamValues::List(values) => Ok(values.into_iter().map(|v| v.value).collect()),
        ParamValues::Map(_) => Err(to_pgwire(Error::InvalidParameter(
            "named parameters are not supported over the PostgreSQL protocol".to_owned(),
        ))),
    }
}
