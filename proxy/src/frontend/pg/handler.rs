//! pgwire's query handlers: the simple and extended protocols, decoded into
//! calls on the shared session layer.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use floe_dialects::{Analysis, Dialect, analyze_statement, split};
use floe_router::Prepared;
use futures::{Sink, SinkExt};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_execution_response, send_query_response,
    send_ready_for_query,
};
use pgwire::api::results::DescribeResponse;
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Execute, Parse, ParseComplete, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;

use super::encode::{RowLayout, response};
use super::error::to_pgwire;
use crate::error::Error;
use crate::metrics::Protocol;
use crate::session::{CancelSlot, Notice, PlanState, Session, Shared, TxnState};

/// The session of one connection, kept in pgwire's per-connection extensions.
type SessionCell = tokio::sync::Mutex<Session>;

/// A cancel request's `(process id, secret key)`.
type CancelKey = (i32, Vec<u8>);

/// Finds a running statement's cancel slot from a cancel request's
/// `(process id, secret key)`.
#[derive(Debug, Default)]
pub(super) struct CancelRegistry {
    slots: Mutex<HashMap<CancelKey, Weak<CancelSlot>>>,
}

impl CancelRegistry {
    /// Cancels the statement of the connection with this key, if it exists.
    pub(super) fn cancel(&self, key: &CancelKey) {
        let slot = self
            .slots
            .lock()
            .ok()
            .and_then(|slots| slots.get(key).and_then(Weak::upgrade));
        if let Some(slot) = slot {
            slot.cancel();
        }
    }
}

/// Removes a connection's entry from the registry when the connection ends.
struct Registration {
    registry: Arc<CancelRegistry>,
    key: CancelKey,
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
    parser: Arc<Parser>,
}

impl Handler {
    pub(super) fn new(shared: Shared, cancels: Arc<CancelRegistry>) -> Self {
        Handler {
            parser: Arc::new(Parser { shared, cancels }),
        }
    }

    /// This connection's session, created on its first message.
    fn session<C: ClientInfo>(&self, client: &C) -> Arc<SessionCell> {
        self.parser.session(client)
    }
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    /// Runs each statement of the query string and sends its whole result before
    /// the next one starts, as PostgreSQL does: a statement after a failing one
    /// never runs, even when the failure shows only while rows stream. (pgwire's
    /// default collects every statement's response first, which would run them
    /// all before the first row is sent.)
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let session = self.session(client);
        let mut session = session.lock().await;
        if let Err(e) = run_simple(client, &mut session, &query.query).await {
            if matches!(e, PgWireError::IoError(_)) {
                return Err(e);
            }
            session.fail_transaction();
            client
                .feed(PgWireBackendMessage::ErrorResponse(
                    ErrorInfo::from(e).into(),
                ))
                .await?;
        }
        let status = transaction_status(session.txn());
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // pgwire calls this only from its default `on_query`, which Floe replaces.
        Err(to_pgwire(Error::Engine(floe_router::Error::Internal(
            "simple queries are answered by on_query".to_owned(),
        ))))
    }
}

/// Sends one statement's response, streaming its rows.
async fn send_response<C>(
    client: &mut C,
    response: Response,
    send_describe: bool,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match response {
        Response::Query(rows) => send_query_response(client, rows, send_describe).await,
        Response::Execution(tag)
        | Response::TransactionStart(tag)
        | Response::TransactionEnd(tag) => send_execution_response(client, tag).await,
        Response::EmptyQuery => Ok(client
            .feed(PgWireBackendMessage::EmptyQueryResponse(
                EmptyQueryResponse::new(),
            ))
            .await?),
        other => Err(to_pgwire(Error::Engine(floe_router::Error::Internal(
            format!("Floe does not produce this response: {other:?}"),
        )))),
    }
}

/// The `ReadyForQuery` status for a session's transaction state.
fn transaction_status(txn: TxnState) -> TransactionStatus {
    match txn {
        TxnState::Idle => TransactionStatus::Idle,
        TxnState::InBlock => TransactionStatus::Transaction,
        TxnState::Failed => TransactionStatus::Error,
    }
}

/// Runs a simple query's statements one after the other, streaming each result.
async fn run_simple<C>(client: &mut C, session: &mut Session, query: &str) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    // PostgreSQL parses the whole string before running any of it: a syntax
    // error anywhere runs nothing.
    let analyses = session
        .shared()
        .analyses
        .analyze(query, Dialect::Postgres)
        .map_err(|e| to_pgwire(e.into()))?;
    if analyses.is_empty() {
        client
            .feed(PgWireBackendMessage::EmptyQueryResponse(
                EmptyQueryResponse::new(),
            ))
            .await?;
        return Ok(());
    }
    // Every result of a simple query is text: a PostgreSQL engine's rows can
    // pass through as the server sent them.
    session.set_pg_text(true);
    for analysis in &analyses {
        let outcome = session.run(analysis, &[], None).await.map_err(to_pgwire)?;
        send_notices(client, session.take_notices()).await?;
        send_response(client, response(outcome, &Format::UnifiedText)?, true).await?;
    }
    Ok(())
}

/// Sends the warnings of the statement the session last ran, as PostgreSQL
/// does: before the statement's own response.
async fn send_notices<C>(client: &mut C, notices: Vec<Notice>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for notice in notices {
        let info = ErrorInfo::new(
            "WARNING".to_owned(),
            notice.code.to_owned(),
            notice.message.to_owned(),
        );
        client
            .feed(PgWireBackendMessage::NoticeResponse(info.into()))
            .await?;
    }
    Ok(())
}

/// A statement prepared with `Parse`.
#[derive(Debug, Clone)]
pub(super) struct Statement {
    /// `None` for an empty query string.
    analysis: Option<Arc<Analysis>>,
    prepared: Arc<Prepared>,
    param_types: Vec<Type>,
}

/// The last statement `Parse` planned on a connection. Drivers that do not
/// name statements (and `pgbench -M extended`) send the same text in a
/// `Parse` before every execution: under the same routing state and within
/// [`REPARSE_AFTER`], the plan is reused instead of parsed, analysed and
/// planned again.
struct LastParse {
    sql: String,
    types: Vec<Option<Type>>,
    state: PlanState,
    at: Instant,
    statement: Statement,
}

/// How old a reused plan may be: it bounds how stale a description can be
/// after a table changes behind Floe's back (DDL through Floe invalidates
/// at once, through the session's [`PlanState`]).
const REPARSE_AFTER: Duration = Duration::from_secs(1);

/// A connection's [`LastParse`], in its pgwire session extensions.
#[derive(Default)]
struct ParseCache(Mutex<Option<LastParse>>);

impl ParseCache {
    fn hit(&self, sql: &str, types: &[Option<Type>], session: &Session) -> Option<Statement> {
        let last = self.0.lock().ok()?;
        let last = last.as_ref()?;
        (last.sql == sql
            && last.types == types
            && last.at.elapsed() < REPARSE_AFTER
            && session.plan_still_holds(&last.state))
        .then(|| last.statement.clone())
    }

    fn keep(&self, sql: &str, types: &[Option<Type>], session: &Session, statement: &Statement) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(LastParse {
                sql: sql.to_owned(),
                types: types.to_vec(),
                state: session.plan_state(),
                at: Instant::now(),
                statement: statement.clone(),
            });
        }
    }
}

/// Plans statements at `Parse` time so that `Describe` can answer with types.
pub(super) struct Parser {
    shared: Shared,
    cancels: Arc<CancelRegistry>,
}

impl Parser {
    /// Splits, analyses and plans the text of a `Parse`.
    async fn plan(&self, sql: &str, session: &mut Session) -> PgWireResult<Statement> {
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
        let analysis =
            analyze_statement(piece, Dialect::Postgres).map_err(|e| to_pgwire(e.into()))?;
        let prepared = session.prepare(&analysis).await.map_err(to_pgwire)?;
        let param_types = prepared
            .param_types
            .iter()
            .map(|ty| match ty {
                Some(ty) => arrow_pg::datatypes::into_pg_type(ty).unwrap_or(Type::TEXT),
                // PostgreSQL resolves a parameter nothing constrains as text.
                None => Type::TEXT,
            })
            .collect();
        Ok(Statement {
            analysis: Some(Arc::new(analysis)),
            prepared: Arc::new(prepared),
            param_types,
        })
    }

    /// This connection's session, created on its first message: `Parse` needs
    /// it too, since the session's settings choose the engine that plans.
    fn session<C: ClientInfo>(&self, client: &C) -> Arc<SessionCell> {
        let extensions = client.session_extensions();
        if let Some(session) = extensions.get::<SessionCell>() {
            return session;
        }
        let mut session = Session::new(self.shared.clone(), Protocol::Postgres);
        if let Some(user) = client.metadata().get(pgwire::api::METADATA_USER) {
            session.set_user(user);
        }
        session.apply_startup(
            client
                .metadata()
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
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
impl QueryParser for Parser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Statement>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.session(client);
        // pgwire handles one message of a connection at a time: nothing else
        // holds the session while `Parse` runs.
        let mut session = session.lock().await;
        let cache = client
            .session_extensions()
            .get_or_insert_with(ParseCache::default);
        if let Some(statement) = cache.hit(sql, types, &session) {
            crate::metrics::parse_reused();
            return Ok(statement);
        }
        let statement = self.plan(sql, &mut session).await?;
        cache.keep(sql, types, &session, &statement);
        Ok(statement)
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.clone())
    }

    fn get_result_schema(
        &self,
        stmt: &Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        if !stmt.prepared.returns_rows {
            return Ok(Vec::new());
        }
        Ok(RowLayout::new(
            &stmt.prepared.schema,
            format.unwrap_or(&Format::UnifiedText),
        )?
        .fields())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = Statement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    /// As pgwire's, but `ParseComplete` waits in the buffer for the `Sync`
    /// (or `Flush`) that ends the client's batch, as PostgreSQL's does: one
    /// packet per round trip instead of one per message, each of which woke
    /// the client.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = StoredStatement::parse(client, &message, self.query_parser()).await?;
        client.portal_store().put_statement(Arc::new(statement));
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    /// As pgwire's, with `BindComplete` buffered until `Sync` (see `on_parse`).
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let Some(statement) = client.portal_store().get_statement(name) else {
            return Err(PgWireError::StatementNotFound(name.to_owned()));
        };
        let portal = Portal::try_new(&message, statement)?;
        client.portal_store().put_portal(Arc::new(portal));
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// As pgwire's, with the description buffered until `Sync` (see
    /// `on_parse`).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let (parameters, fields) = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                let Some(statement) = client.portal_store().get_statement(name) else {
                    return Err(PgWireError::StatementNotFound(name.to_owned()));
                };
                let described = self.do_describe_statement(client, &statement).await?;
                let parameters = described.parameters().map(<[Type]>::to_vec);
                let fields = (!described.is_no_data()).then(|| described.fields().to_vec());
                (parameters, fields)
            }
            TARGET_TYPE_BYTE_PORTAL => {
                let Some(portal) = client.portal_store().get_portal(name) else {
                    return Err(PgWireError::PortalNotFound(name.to_owned()));
                };
                let described = self.do_describe_portal(client, &portal).await?;
                let fields = (!described.is_no_data()).then(|| described.fields().to_vec());
                (None, fields)
            }
            other => return Err(PgWireError::InvalidTargetType(other)),
        };
        if let Some(parameters) = parameters {
            client
                .feed(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(parameters.iter().map(Type::oid).collect()),
                ))
                .await?;
        }
        match fields {
            None => {
                client
                    .feed(PgWireBackendMessage::NoData(NoData::new()))
                    .await?
            }
            Some(fields) => {
                client
                    .feed(PgWireBackendMessage::RowDescription(RowDescription::new(
                        fields.iter().map(Into::into).collect(),
                    )))
                    .await?;
            }
        }
        Ok(())
    }

    /// Streams the result of an `Execute` that asks for every row. pgwire
    /// 0.40's default collects all rows of such a portal into memory before it
    /// sends the first one; Floe sends them as the engine produces them. An
    /// `Execute` with a row limit keeps pgwire's portal suspension, which holds
    /// at most that many rows.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.max_rows > 0 {
            return self._on_execute(client, message).await;
        }
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let Some(portal) = client.portal_store().get_portal(name) else {
            return Err(PgWireError::PortalNotFound(name.to_owned()));
        };
        client.set_state(PgWireConnectionState::QueryInProgress);
        let pending = std::mem::replace(
            &mut *portal.state.lock().await,
            PortalExecutionState::Finished,
        );
        match pending {
            PortalExecutionState::Initial => {
                let response = ExtendedQueryHandler::do_query(self, client, &portal, 0).await?;
                // The extended protocol describes rows in answer to Describe.
                send_response(client, response, false).await?
            }
            PortalExecutionState::Suspended(rows) => {
                send_query_response(client, rows, false).await?
            }
            PortalExecutionState::Finished => {
                send_execution_response(client, Tag::new("SELECT").with_rows(0)).await?
            }
        }
        let status = transaction_status(self.session(client).lock().await.txn());
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
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
        let inferred: Vec<Option<&arrow::datatypes::DataType>> = statement
            .prepared
            .param_types
            .iter()
            .map(Option::as_ref)
            .collect();
        let params = match decode_params(portal, &inferred) {
            Ok(params) => params,
            Err(e) => {
                session.fail_transaction();
                return Err(e);
            }
        };
        // Rows the client wants in text can pass through from a PostgreSQL
        // engine; binary ones are encoded from Arrow.
        let text = match &portal.result_column_format {
            Format::UnifiedText => true,
            Format::UnifiedBinary => false,
            Format::Individual(formats) => formats.iter().all(|f| *f == 0),
        };
        session.set_pg_text(text);
        let outcome = session
            .run(analysis, &params, Some(&statement.prepared))
            .await
            .map_err(to_pgwire)?;
        send_notices(client, session.take_notices()).await?;
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
