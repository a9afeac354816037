//! [`Shim`]: one MySQL connection, as opensrv's `AsyncMysqlShim`.
//!
//! Text queries may hold several statements; each gets its own result set and
//! the first failure ends the query, as in MySQL. Prepared statements are
//! planned once at `COM_STMT_PREPARE` and executed with their parameters cast
//! to the planned types.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use floe_dialects::sqlparser::ast::ObjectName;
use floe_dialects::{Analysis, Dialect, analyze_statement, number_placeholders};
use floe_router::Prepared;
use floe_router::engine::{BatchStream, MySqlRows, QueryOutput, mysql_wire};
use futures::StreamExt;
use opensrv_mysql::{
    AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, InitWriter, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter, StatusFlags,
};
use tokio::io::AsyncWrite;

use super::encode;
use super::error::{code, err_payload, message};
use super::framing::FixupFlags;
use super::local::{self, Context, Plan};
use super::params;
use super::{ClientWriter, Connections, Registration};
use crate::error::{Error, Result};
use crate::metrics::Protocol;
use crate::session::{Outcome, Session, Shared, TxnState};

/// A statement prepared with `COM_STMT_PREPARE`.
struct Statement {
    analysis: Analysis,
    /// The engine's plan; `None` for statements answered without one
    /// (`SHOW`, `SET`), which are planned again at each execution.
    prepared: Option<Prepared>,
}

/// What a statement produced, ready to encode.
enum Answer {
    Rows {
        schema: SchemaRef,
        stream: BatchStream,
    },
    Done {
        affected: u64,
    },
}

/// One MySQL connection's state.
pub(super) struct Shim {
    session: Session,
    id: u32,
    peer: SocketAddr,
    /// This connection's scramble, random: opensrv's default is a constant,
    /// which would let a recorded login be replayed.
    salt: [u8; 20],
    users: Arc<HashMap<String, String>>,
    /// The user name, once authenticated.
    user: OnceLock<String>,
    /// `user@host`, as `USER()` reports it; made at the first statement.
    user_at_host: OnceLock<String>,
    /// Shared with each execution, which borrows the analysis and plan
    /// rather than cloning them.
    statements: HashMap<u32, Arc<Statement>>,
    next_statement: u32,
    connections: Arc<Connections>,
    /// Corrections for the writer to apply (see `framing::Fixups`).
    fixups: Arc<FixupFlags>,
    /// The client did not switch to TLS, which the configuration requires.
    refuse_plain: bool,
    /// The connection's writer, for results whose packets pass through.
    raw: Option<ClientWriter>,
    /// The column definitions of pass-through results, last one remembered.
    pass_columns: mysql_wire::ColumnsCache,
    _registration: Registration,
}

impl Shim {
    pub(super) fn new(
        shared: Shared,
        id: u32,
        peer: SocketAddr,
        users: Arc<HashMap<String, String>>,
        connections: Arc<Connections>,
    ) -> Self {
        let session = Session::new(shared, Protocol::MySql);
        let registration = connections.register(id, &session.cancel_slot());
        Shim {
            session,
            id,
            peer,
            salt: scramble(),
            users,
            user: OnceLock::new(),
            user_at_host: OnceLock::new(),
            statements: HashMap::new(),
            next_statement: 0,
            connections,
            fixups: Arc::default(),
            refuse_plain: false,
            raw: None,
            pass_columns: mysql_wire::ColumnsCache::default(),
            _registration: registration,
        }
    }

    /// Records that the client stayed in plain text; with `required`, its
    /// login is refused.
    pub(super) fn set_tls_missing(&mut self, required: bool) {
        self.refuse_plain = required;
    }

    /// Gives the shim the connection's writer, for pass-through results;
    /// without it, every result is converted.
    pub(super) fn set_raw_writer(&mut self, writer: ClientWriter) {
        self.raw = Some(writer);
    }

    /// The flags this connection's writer corrects packets by.
    pub(super) fn fixups(&self) -> Arc<FixupFlags> {
        Arc::clone(&self.fixups)
    }

    /// Runs one statement; `numbered` when its `?` parameters are already
    /// `$1`, `$2`, ... (a prepared statement's, numbered when prepared).
    /// `rows`: how its rows go out, when a MySQL server's own may (see
    /// [`Shim::pass_rows`]).
    async fn answer(
        &mut self,
        analysis: &Analysis,
        params: &[datafusion::scalar::ScalarValue],
        prepared: Option<&Prepared>,
        numbered: bool,
        rows: Option<MySqlRows>,
    ) -> Result<Answer> {
        self.session
            .set_mysql_rows(rows.filter(|_| self.raw.is_some()));
        if let Some(name) = self.user.get()
            && self.session.user().is_empty()
        {
            self.session.set_user(name);
        }
        // Statements come after authentication: the user is known by now.
        let user = self.user_at_host.get_or_init(|| {
            format!(
                "{}@{}",
                self.user.get().map_or("", String::as_str),
                self.peer.ip()
            )
        });
        let plan = local::plan(
            analysis,
            &Context {
                settings: self.session.settings(),
                schema: self.session.schema(),
                user,
                connection_id: self.id,
            },
        )?;
        match plan {
            Plan::Run(rewritten) => {
                let mut rewritten = rewritten.map(|r| *r);
                // A text without `?` has no parameter to number: skip the walk.
                if !numbered && analysis.sql().contains('?') {
                    let numbering = rewritten.get_or_insert_with(|| analysis.clone());
                    number_placeholders(&mut numbering.statement);
                }
                let analysis = rewritten.as_ref().unwrap_or(analysis);
                Ok(match self.session.run(analysis, params, prepared).await? {
                    Outcome::Rows { schema, stream } => Answer::Rows { schema, stream },
                    Outcome::Command { rows, .. } => Answer::Done {
                        affected: rows.unwrap_or(0),
                    },
                    Outcome::TransactionStart | Outcome::TransactionEnd { .. } => {
                        Answer::Done { affected: 0 }
                    }
                })
            }
            Plan::Rows(batch) => Ok(Answer::Rows {
                schema: batch.schema(),
                stream: Box::pin(futures::stream::iter([Ok(batch)])),
            }),
            // The rare statements' futures are boxed, so that the hot path's
            // (a query's), moved whole once per statement, stays small.
            Plan::Use(database) => {
                Box::pin(self.use_database(&database)).await?;
                Ok(Answer::Done { affected: 0 })
            }
            Plan::Describe(table) => {
                let batch = Box::pin(self.describe(&table)).await?;
                Ok(Answer::Rows {
                    schema: batch.schema(),
                    stream: Box::pin(futures::stream::iter([Ok(batch)])),
                })
            }
            Plan::Kill(id) => {
                if self.connections.kill_query(id) {
                    Ok(Answer::Done { affected: 0 })
                } else {
                    Err(Error::InvalidParameter(format!("Unknown thread id: {id}")))
                }
            }
        }
    }

    /// `USE db`: checks that the schema exists, then makes it current.
    async fn use_database(&mut self, database: &str) -> Result<()> {
        let check = analyze_statement(
            &format!(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name = '{}'",
                database.replace('\'', "''")
            ),
            Dialect::MySql,
        )?;
        let shared = self.session.shared();
        let found = match shared.execute_internal(Protocol::MySql, &check).await? {
            QueryOutput::Rows { mut stream, .. } => {
                let mut rows = 0;
                while let Some(batch) = stream.next().await {
                    rows += batch?.num_rows();
                }
                rows > 0
            }
            QueryOutput::Command { .. } => false,
        };
        if !found {
            return Err(Error::UnknownDatabase(database.to_owned()));
        }
        self.session.set_schema(Some(database.to_owned()));
        Ok(())
    }

    /// `SHOW COLUMNS` / `DESCRIBE`: the table's columns, from its planned schema.
    async fn describe(&mut self, table: &ObjectName) -> Result<RecordBatch> {
        let analysis = analyze_statement(&format!("SELECT * FROM {table}"), Dialect::MySql)?;
        let prepared = self.session.prepare(&analysis).await?;
        let fields = prepared.schema.fields();
        let text = |values: Vec<String>| Arc::new(StringArray::from(values));
        let schema = Arc::new(Schema::new(
            ["Field", "Type", "Null", "Key", "Default", "Extra"]
                .iter()
                .map(|name| Field::new(*name, DataType::Utf8, *name == "Default"))
                .collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(
            schema,
            vec![
                text(fields.iter().map(|f| f.name().clone()).collect()),
                text(fields.iter().map(|f| encode::type_name(f)).collect()),
                text(
                    fields
                        .iter()
                        .map(|f| if f.is_nullable() { "YES" } else { "NO" }.to_owned())
                        .collect(),
                ),
                text(vec![String::new(); fields.len()]),
                Arc::new(StringArray::from(vec![None::<&str>; fields.len()])),
                text(vec![String::new(); fields.len()]),
            ],
        )
        .map_err(|e| Error::Engine(floe_router::Error::Internal(e.to_string())))
    }

    /// The status flags an OK packet carries.
    fn status(&mut self) -> StatusFlags {
        let mut flags = StatusFlags::empty();
        if self
            .session
            .settings()
            .get("autocommit")
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("on"))
        {
            flags |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.session.txn() != TxnState::Idle {
            flags |= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        flags
    }

    /// Sends `answer`, then runs and sends each statement of `rest`; stops at
    /// the first error, as MySQL does. Recursive so that each result set's
    /// column definitions live as long as opensrv's writer needs them.
    async fn respond<'w, W>(
        &mut self,
        writer: QueryResultWriter<'w, W>,
        answer: Result<Answer>,
        mut rest: VecDeque<Analysis>,
    ) -> io::Result<()>
    where
        W: AsyncWrite + Send + Unpin,
    {
        let next = match answer {
            Err(e) => return writer.error(code(&e), message(&e).as_bytes()).await,
            Ok(Answer::Done { affected }) => {
                let mut status_flags = self.status();
                if !rest.is_empty() {
                    status_flags |= StatusFlags::SERVER_MORE_RESULTS_EXISTS;
                }
                writer
                    .complete_one(OkResponse {
                        affected_rows: affected,
                        status_flags,
                        ..OkResponse::default()
                    })
                    .await?
            }
            Ok(Answer::Rows { schema, stream }) => {
                // A pass-through result comes only for a command's one
                // statement (see `on_query`).
                if let Some(columns) = self.pass_columns.columns(&schema) {
                    drop(writer);
                    return self.pass_rows(&columns, stream).await;
                }
                return self.write_rows(writer, &schema, stream, rest).await;
            }
        };
        match rest.pop_front() {
            None => next.no_more_results().await,
            Some(analysis) => {
                let answer = Box::pin(self.answer(&analysis, &[], None, false, None)).await;
                Box::pin(self.respond(next, answer, rest)).await
            }
        }
    }

    /// Sends a result set converted from Arrow, then the rest of the
    /// command's statements (see [`Shim::respond`]).
    async fn write_rows<'w, W>(
        &mut self,
        writer: QueryResultWriter<'w, W>,
        schema: &Schema,
        mut stream: BatchStream,
        mut rest: VecDeque<Analysis>,
    ) -> io::Result<()>
    where
        W: AsyncWrite + Send + Unpin,
    {
        let columns = encode::columns(schema);
        let mut rows = writer.start(&columns).await?;
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(batch) => encode::write_batch(&batch, &mut rows).await?,
                Err(e) => {
                    let e = Error::Engine(e);
                    return rows.finish_error(code(&e), &message(&e).into_bytes()).await;
                }
            }
        }
        let next = rows.finish_one().await?;
        match rest.pop_front() {
            None => next.no_more_results().await,
            Some(analysis) => {
                // opensrv writes this result set's closing OK packet when the
                // next one starts, without the "more results" flag; the
                // writer adds it.
                self.fixups.more_results.store(true, Ordering::Release);
                // Boxed: a statement's own answer is not part of every
                // `respond` future (see `answer`).
                let answer = Box::pin(self.answer(&analysis, &[], None, false, None)).await;
                Box::pin(self.respond(next, answer, rest)).await
            }
        }
    }

    /// Sends a result whose column definitions and rows are a MySQL
    /// server's own packets ([`mysql_wire`]), numbered on from the command's
    /// (which opensrv, given nothing to write, leaves alone), and ended as
    /// this client expects: an OK packet with `CLIENT_DEPRECATE_EOF`, EOF
    /// packets without. The command's only result: the session asked for
    /// such rows only then.
    async fn pass_rows(&mut self, columns: &[Vec<u8>], mut stream: BatchStream) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        /// Bytes gathered before they go to the connection's writer.
        const CHUNK: usize = 64 * 1024;
        const CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;
        let Some(mut out) = self.raw.clone() else {
            return Err(io::Error::other("no writer for a pass-through result"));
        };
        let deprecate_eof =
            self.fixups.client_capabilities.load(Ordering::Acquire) & CLIENT_DEPRECATE_EOF != 0;
        let status = self.status().bits().to_le_bytes();
        let eof = [0xfe, 0, 0, status[0], status[1]];
        let mut buf = Vec::with_capacity(1024);
        // The command was packet 0.
        let mut seq = 1;
        let mut count = Vec::with_capacity(9);
        mysql_wire::push_lenenc(&mut count, columns.len() as u64);
        mysql_wire::push_packet(&mut buf, &mut seq, &count);
        for column in columns {
            mysql_wire::push_packet(&mut buf, &mut seq, column);
        }
        if !deprecate_eof {
            mysql_wire::push_packet(&mut buf, &mut seq, &eof);
        }
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(batch) => {
                    for row in mysql_wire::wire_rows(&batch) {
                        mysql_wire::push_packet(&mut buf, &mut seq, row);
                    }
                }
                Err(e) => {
                    let e = Error::Engine(e);
                    let packet = err_payload(code(&e), message(&e).as_bytes(), true);
                    mysql_wire::push_packet(&mut buf, &mut seq, &packet);
                    return out.write_all(&buf).await;
                }
            }
            if buf.len() >= CHUNK {
                out.write_all(&buf).await?;
                buf.clear();
            }
        }
        if deprecate_eof {
            // OK with the EOF header: no rows affected, no insert id,
            // status, no warnings.
            let ok = [0xfe, 0, 0, status[0], status[1], 0, 0];
            mysql_wire::push_packet(&mut buf, &mut seq, &ok);
        } else {
            mysql_wire::push_packet(&mut buf, &mut seq, &eof);
        }
        out.write_all(&buf).await
    }
}

/// A random scramble of printable bytes other than `$`, as MySQL makes them.
fn scramble() -> [u8; 20] {
    let mut salt: [u8; 20] = rand::random();
    for byte in &mut salt {
        *byte = 0x21 + *byte % 0x5e;
        if *byte == b'$' {
            *byte += 1;
        }
    }
    salt
}

/// `mysql_native_password`: the client proves it knows the password with
/// `SHA1(password) XOR SHA1(salt + SHA1(SHA1(password)))`.
fn native_password_matches(password: &str, salt: &[u8], response: &[u8]) -> bool {
    let expected = mysql_wire::native_password(password, salt);
    // Compare every byte whatever the first difference, so the time taken
    // tells nothing.
    response.len() == expected.len()
        && response
            .iter()
            .zip(&expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Shim {
    type Error = io::Error;

    fn version(&self) -> String {
        crate::VERSION_MYSQL.to_owned()
    }

    fn connect_id(&self) -> u32 {
        self.id
    }

    fn salt(&self) -> [u8; 20] {
        self.salt
    }

    async fn authenticate(
        &self,
        _auth_plugin: &str,
        username: &[u8],
        salt: &[u8],
        auth_data: &[u8],
    ) -> bool {
        let name = String::from_utf8_lossy(username).into_owned();
        let allowed = if self.refuse_plain {
            tracing::info!(peer = %self.peer, user = %name, "MySQL login without TLS refused (mysql.tls_required)");
            false
        } else if self.users.is_empty() {
            true
        } else {
            self.users
                .get(&name)
                .is_some_and(|password| native_password_matches(password, salt, auth_data))
        };
        if allowed {
            let _ = self.user.set(name);
        } else {
            tracing::info!(peer = %self.peer, user = %name, "MySQL authentication failed");
            self.fixups.access_denied.store(true, Ordering::Release);
        }
        allowed
    }

    async fn on_prepare<'a>(
        &'a mut self,
        query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        let prepared = async {
            let mut analysis = analyze_statement(query, Dialect::MySql)?;
            let count = number_placeholders(&mut analysis.statement);
            let runs_on_engine = matches!(
                analysis.kind,
                floe_dialects::StatementKind::Read
                    | floe_dialects::StatementKind::Write
                    | floe_dialects::StatementKind::Ddl
            );
            let prepared = if runs_on_engine {
                Some(self.session.prepare(&analysis).await?)
            } else {
                None
            };
            Ok::<_, Error>((analysis, prepared, count))
        }
        .await;
        let (analysis, prepared, count) = match prepared {
            Ok(ok) => ok,
            Err(e) => return info.error(code(&e), message(&e).as_bytes()).await,
        };
        let param_types = prepared
            .as_ref()
            .map(|p| p.param_types.clone())
            .unwrap_or_default();
        let params: Vec<Column> = (0..count)
            .map(|i| match param_types.get(i).and_then(Option::as_ref) {
                Some(ty) => encode::column(&Field::new("?", ty.clone(), true)),
                None => Column {
                    table: String::new(),
                    column: "?".to_owned(),
                    coltype: ColumnType::MYSQL_TYPE_VAR_STRING,
                    colflags: ColumnFlags::empty(),
                },
            })
            .collect();
        let columns = prepared
            .as_ref()
            .filter(|p| p.returns_rows)
            .map(|p| encode::columns(&p.schema))
            .unwrap_or_default();
        self.next_statement = self.next_statement.wrapping_add(1).max(1);
        let id = self.next_statement;
        self.statements
            .insert(id, Arc::new(Statement { analysis, prepared }));
        info.reply(id, &params, &columns).await
    }

    async fn on_execute<'a>(
        &'a mut self,
        id: u32,
        params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let Some(statement) = self.statements.get(&id) else {
            let e = Error::UnknownStatement(id.to_string());
            return results.error(code(&e), message(&e).as_bytes()).await;
        };
        let statement = Arc::clone(statement);
        let prepared = statement.prepared.as_ref();
        let types = prepared.map_or(&[][..], |p| p.param_types.as_slice());
        let answer = match params::decode(params, types) {
            Ok(values) => {
                let rows = Some(MySqlRows::Binary);
                self.answer(&statement.analysis, &values, prepared, true, rows)
                    .await
            }
            Err(e) => Err(e),
        };
        self.respond(results, answer, VecDeque::new()).await
    }

    async fn on_close<'a>(&'a mut self, id: u32)
    where
        W: 'async_trait,
    {
        self.statements.remove(&id);
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let analyses = &self.session.shared().analyses;
        let mut statements: VecDeque<Analysis> = match analyses.analyze(query, Dialect::MySql) {
            Ok(statements) => statements.into(),
            Err(e) => {
                let e = Error::from(e);
                return results.error(code(&e), message(&e).as_bytes()).await;
            }
        };
        let Some(first) = statements.pop_front() else {
            return results
                .error(ErrorKind::ER_EMPTY_QUERY, b"Query was empty")
                .await;
        };
        // The server's packets can pass through only when this result is
        // the command's one: opensrv numbers the packets of the next.
        let rows = statements.is_empty().then_some(MySqlRows::Text);
        let answer = self.answer(&first, &[], None, false, rows).await;
        self.respond(results, answer, statements).await
    }

    async fn on_init<'a>(
        &'a mut self,
        database: &'a str,
        writer: InitWriter<'a, W>,
    ) -> io::Result<()> {
        // Some connectors (mysql-connector-python) send an empty database name
        // in the handshake when none was chosen.
        if database.is_empty() {
            return writer.ok().await;
        }
        match self.use_database(database).await {
            Ok(()) => writer.ok().await,
            Err(e) => writer.error(code(&e), message(&e).as_bytes()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use sha1::{Digest, Sha1};

    use super::*;

    #[test]
    fn scrambles_are_printable_and_differ() {
        let a = scramble();
        let b = scramble();
        assert_ne!(a, b);
        assert!(a.iter().all(|c| c.is_ascii_graphic() && *c != b'$'));
    }

    #[test]
    fn native_password_proof_checks_out() {
        let salt = b"01234567890123456789";
        let stage1 = Sha1::digest(b"secret");
        let mut hasher = Sha1::new();
        hasher.update(salt);
        hasher.update(Sha1::digest(stage1));
        let proof: Vec<u8> = stage1
            .iter()
            .zip(hasher.finalize().iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert!(native_password_matches("secret", salt, &proof));
        assert!(!native_password_matches("other", salt, &proof));
        assert!(!native_password_matches("secret", salt, &[]));
        assert!(native_password_matches("", salt, &[]));
    }
}
