//! Statement classification: what a statement is, whether it provably only
//! reads, and the command name a client expects back.
//!
//! Classification works on `sqlparser`'s AST, never on keywords in the text,
//! so a `SELECT` hidden behind a comment or a `WITH ... INSERT` is seen for what
//! it is.

use std::ops::ControlFlow;
use std::sync::OnceLock;

use sqlparser::ast::{BinaryOperator, Expr, Query, SetExpr, Statement, visit_expressions};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::{Dialect, Error, Result, ShapeKey};

/// What kind of statement this is, which decides where it may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatementKind {
    /// A query that returns rows: `SELECT`, `VALUES`, `TABLE`, `WITH ... SELECT`.
    Read,
    /// A statement that changes rows: `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `COPY`.
    Write,
    /// A statement that changes the schema: `CREATE`, `ALTER`, `DROP`, `TRUNCATE`.
    Ddl,
    /// Transaction control: `BEGIN`, `COMMIT`, `ROLLBACK`, savepoints.
    Transaction,
    /// Session state: `SET`, `SHOW`, `USE`, `RESET`.
    Session,
    /// Everything else: `EXPLAIN`, `ANALYZE`, `PREPARE`, `DISCARD`, ...
    Utility,
}

impl StatementKind {
    /// The lower-case name used in metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Ddl => "ddl",
            StatementKind::Transaction => "transaction",
            StatementKind::Session => "session",
            StatementKind::Utility => "utility",
        }
    }
}

/// The analysis of one statement.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The dialect the statement was written in.
    pub dialect: Dialect,
    /// The statement's own text ([`Analysis::sql`]); private so that a
    /// rewrite goes through [`Analysis::set_sql`], which forgets the text's
    /// shape key.
    pub(crate) sql: String,
    /// The parsed statement (built on first read for a statement of a cached
    /// shape: [`Tree`](crate::Tree)).
    pub statement: crate::Tree,
    /// What kind of statement it is.
    pub kind: StatementKind,
    /// True only when the statement provably changes nothing: no `FOR UPDATE`,
    /// no writable CTE, no `SELECT INTO`.
    pub read_only: bool,
    /// The command name, upper case, as PostgreSQL reports it in its command tag
    /// (`SELECT`, `INSERT`, `CREATE TABLE`, ...).
    pub command: &'static str,
    /// The text was `EXPLAIN ROUTE <statement>`: the rest of the analysis is
    /// of the inner statement, which is to be explained, not run.
    pub explain_route: bool,
    /// The tree's spans are of `sql`; false for an analysis made from a
    /// cached shape ([`crate::Analyses`]), which has its first text's.
    pub(crate) exact_spans: bool,
    /// The shape key of `sql`, computed once: the front end's analysis cache,
    /// the router's shapes and an engine's parameterization all read it.
    pub(crate) shape: OnceLock<ShapeKey>,
}

impl Analysis {
    /// The statement's own text, cut from the input without reformatting, so
    /// that an engine sees exactly what the client wrote.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Replaces the statement's text (after its tree was rewritten, say).
    /// The tree and the other facts stay as they are: the caller keeps them
    /// true of the new text.
    pub fn set_sql(&mut self, sql: String) {
        self.sql = sql;
        self.shape = OnceLock::new();
    }

    /// The [shape](crate::shape_key) of the statement's text, computed on
    /// first read (or by the [`Analyses`](crate::Analyses) that made this
    /// analysis) and kept until [`Analysis::set_sql`].
    pub fn shape_key(&self) -> &ShapeKey {
        self.shape
            .get_or_init(|| crate::shape_key(&self.sql, self.dialect))
    }

    /// The statement's [`Fingerprint`](crate::Fingerprint). Computed on demand:
    /// it clones and prints the statement, which the hot path of a `SELECT 1`
    /// does not need.
    pub fn fingerprint(&self) -> crate::Fingerprint {
        crate::fingerprint(&self.statement)
    }

    /// The tables the statement touches and the columns its predicates,
    /// `GROUP BY` and `ORDER BY` use ([`crate::references`]). Computed on
    /// demand, like the fingerprint.
    pub fn references(&self) -> crate::References {
        crate::references(&self.statement)
    }
}

/// Analyses every statement in `sql`, in order.
///
/// Empty statements (`;;`, only comments) are skipped, so an input with no
/// statement gives an empty vector.
///
/// # Errors
///
/// [`Error::Syntax`] when any statement does not parse in `dialect`.
pub fn analyze(sql: &str, dialect: Dialect) -> Result<Vec<Analysis>> {
    if let Some(statement) = lone_statement(sql) {
        return Ok(vec![analyze_statement(statement, dialect)?]);
    }
    split(sql, dialect)?
        .into_iter()
        .map(|text| analyze_statement(text, dialect))
        .collect()
}

/// Analyses a text that holds exactly one statement.
///
/// # Errors
///
/// [`Error::Syntax`] when it does not parse, [`Error::Unsupported`] when it holds
/// more or fewer than one statement.
pub fn analyze_statement(sql: &str, dialect: Dialect) -> Result<Analysis> {
    if let Some(inner) = strip_explain_route(sql) {
        let mut analysis = analyze_statement(inner, dialect)?;
        if analysis.explain_route {
            return Err(Error::Syntax {
                message: "EXPLAIN ROUTE cannot explain itself".to_owned(),
            });
        }
        analysis.explain_route = true;
        return Ok(analysis);
    }
    let parser_dialect = dialect.parser_dialect();
    let mut statements = Parser::parse_sql(parser_dialect.as_ref(), sql)?;
    if statements.len() != 1 {
        return Err(Error::Unsupported(format!(
            "expected one statement, found {}",
            statements.len()
        )));
    }
    let statement = statements.remove(0);
    let (kind, read_only, command) = classify(&statement);
    Ok(Analysis {
        dialect,
        sql: sql.trim().to_owned(),
        statement: crate::Tree::new(statement),
        kind,
        read_only,
        command,
        explain_route: false,
        exact_spans: true,
        shape: OnceLock::new(),
    })
}

/// The statement after a leading `EXPLAIN ROUTE`, if the text starts so
/// (any case, any whitespace between and after the keywords).
pub(crate) fn strip_explain_route(sql: &str) -> Option<&str> {
    fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
        let text = text.trim_start();
        let head = text.get(..word.len())?;
        let rest = &text[word.len()..];
        (head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace)).then_some(rest)
    }
    let rest = keyword(sql, "EXPLAIN")?;
    keyword(rest, "ROUTE").map(str::trim_start)
}

/// Cuts `sql` into the texts of its statements at top-level semicolons.
///
/// The cut uses the dialect's tokenizer, so a semicolon inside a string, a
/// quoted identifier, a comment or a dollar-quoted body never splits. Pieces
/// that hold only whitespace or comments are dropped.
///
/// # Errors
///
/// [`Error::Syntax`] when the text does not tokenize (an unterminated string,
/// for instance).
pub fn split(sql: &str, dialect: Dialect) -> Result<Vec<&str>> {
    let parser_dialect = dialect.parser_dialect();
    let tokens = Tokenizer::new(parser_dialect.as_ref(), sql)
        .tokenize_with_location()
        .map_err(|e| Error::Syntax {
            message: e.to_string(),
        })?;
    let line_starts = line_starts(sql);
    let mut pieces = Vec::new();
    let mut start = 0usize;
    let mut meaningful = false;
    for token in &tokens {
        match &token.token {
            Token::SemiColon => {
                let end = byte_offset(
                    sql,
                    &line_starts,
                    token.span.start.line,
                    token.span.start.column,
                );
                // Never slice on a location that is not this semicolon: a
                // tokenizer location off by a character must not panic on
                // client input.
                let piece = sql
                    .get(start..end)
                    .filter(|_| sql.get(end..).is_some_and(|rest| rest.starts_with(';')))
                    .ok_or_else(|| Error::Syntax {
                        message: "cannot split the statements of this text".to_owned(),
                    })?;
                if meaningful {
                    pieces.push(piece.trim());
                }
                start = end + 1;
                meaningful = false;
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ => meaningful = true,
        }
    }
    if meaningful && let Some(rest) = sql.get(start..) {
        pieces.push(rest.trim());
    }
    Ok(pieces)
}

/// The statement of a text that plainly holds one: no `;` but trailing ones
/// and nothing that could start a comment. Most statements clients send look
/// so, and [`analyze`] parses them right after (a text that does not parse
/// fails there): this spares them a tokenizer pass of their own just to find
/// where they end. Anything else (a `;` inside a string, a comment) takes
/// [`split`]'s path.
pub(crate) fn lone_statement(sql: &str) -> Option<&str> {
    let body = sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let body = body.trim_start();
    let plain = !body.is_empty()
        && !body.contains(';')
        && !body.contains("--")
        && !body.contains("/*")
        && !body.contains('#');
    plain.then_some(body)
}

/// Byte offsets at which each line of `text` starts; line 1 is index 0.
pub(crate) fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Converts the tokenizer's 1-based line and character column to a byte offset.
pub(crate) fn byte_offset(text: &str, line_starts: &[usize], line: u64, column: u64) -> usize {
    let line_index = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
    let Some(&line_start) = line_starts.get(line_index) else {
        return text.len();
    };
    let chars = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    text[line_start..]
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| line_start + i)
}

fn classify(statement: &Statement) -> (StatementKind, bool, &'static str) {
    use StatementKind::*;
    match statement {
        Statement::Query(query) => (
            Read,
            query_is_read_only(query) && !calls_side_effects(statement),
            "SELECT",
        ),
        Statement::Insert(_) => (Write, false, "INSERT"),
        Statement::Update(_) => (Write, false, "UPDATE"),
        Statement::Delete(_) => (Write, false, "DELETE"),
        Statement::Merge(_) => (Write, false, "MERGE"),
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } => (Write, false, "COPY"),
        Statement::LoadData { .. } | Statement::Load { .. } => (Write, false, "LOAD"),
        Statement::CreateTable(_) => (Ddl, false, "CREATE TABLE"),
        Statement::CreateView(_) => (Ddl, false, "CREATE VIEW"),
        Statement::CreateSchema { .. } => (Ddl, false, "CREATE SCHEMA"),
        Statement::CreateDatabase { .. } => (Ddl, false, "CREATE DATABASE"),
        Statement::CreateIndex(_) => (Ddl, false, "CREATE INDEX"),
        Statement::CreateFunction(_) => (Ddl, false, "CREATE FUNCTION"),
        Statement::AlterTable(_) => (Ddl, false, "ALTER TABLE"),
        Statement::Drop { object_type, .. } => (Ddl, false, drop_command(object_type)),
        Statement::Truncate(_) => (Ddl, false, "TRUNCATE TABLE"),
        Statement::StartTransaction { .. } => (Transaction, true, "BEGIN"),
        Statement::Commit { .. } => (Transaction, true, "COMMIT"),
        Statement::Rollback { .. } => (Transaction, true, "ROLLBACK"),
        Statement::Savepoint { .. } => (Transaction, true, "SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => (Transaction, true, "RELEASE"),
        Statement::Set(_) => (Session, true, "SET"),
        Statement::Reset(_) => (Session, true, "RESET"),
        Statement::Use(_) => (Session, true, "USE"),
        Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowCollation { .. }
        | Statement::ShowCharset(_)
        | Statement::ShowObjects(_) => (Session, true, "SHOW"),
        Statement::Explain {
            statement, analyze, ..
        } => {
            let (_, inner_read_only, _) = classify(statement);
            // Plain EXPLAIN never runs the statement; EXPLAIN ANALYZE does.
            (Utility, !*analyze || inner_read_only, "EXPLAIN")
        }
        Statement::ExplainTable { .. } => (Utility, true, "EXPLAIN"),
        Statement::Discard { .. } => (Utility, true, "DISCARD"),
        Statement::Prepare { .. } => (Utility, false, "PREPARE"),
        Statement::Execute { .. } => (Utility, false, "EXECUTE"),
        Statement::Deallocate { .. } => (Utility, true, "DEALLOCATE"),
        _ => (Utility, false, "UTILITY"),
    }
}

fn drop_command(object_type: &sqlparser::ast::ObjectType) -> &'static str {
    use sqlparser::ast::ObjectType;
    match object_type {
        ObjectType::Table => "DROP TABLE",
        ObjectType::View => "DROP VIEW",
        ObjectType::Schema => "DROP SCHEMA",
        ObjectType::Database => "DROP DATABASE",
        ObjectType::Index => "DROP INDEX",
        _ => "DROP",
    }
}

/// Functions a `SELECT` may call that change something beyond its result:
/// sequences, session settings, locks, other sessions, files, transaction
/// ids. Such a query is not read-only: it must not be retried on another
/// engine (a sequence would advance twice) nor be served by a pooled
/// connection as if it left nothing behind.
const SIDE_EFFECTS: &[&str] = &[
    // PostgreSQL
    "nextval",
    "setval",
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_notify",
    "txid_current",
    "pg_current_xact_id",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "lo_create",
    "lo_creat",
    "dblink_exec",
    "pg_stat_reset",
    // MySQL / MariaDB
    "get_lock",
    "release_lock",
    "release_all_locks",
    "last_insert_id",
    "next_value_for",
];

/// Whether `statement` calls a function in [`SIDE_EFFECTS`] or assigns a
/// MySQL user variable (`@v := ...`).
fn calls_side_effects(statement: &Statement) -> bool {
    let found = visit_expressions(statement, |expr| {
        let effect = match expr {
            Expr::Function(function) => function
                .name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|name| {
                    let name = name.value.to_ascii_lowercase();
                    SIDE_EFFECTS.contains(&name.as_str())
                }),
            Expr::BinaryOp {
                op: BinaryOperator::Assignment,
                ..
            } => true,
            _ => false,
        };
        if effect {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found.is_break()
}

/// A query is read-only when neither it nor any CTE or nested set operand writes
/// or locks rows.
fn query_is_read_only(query: &Query) -> bool {
    if !query.locks.is_empty() {
        return false;
    }
    let ctes_read_only = query.with.as_ref().is_none_or(|with| {
        with.cte_tables
            .iter()
            .all(|cte| query_is_read_only(&cte.query))
    });
    ctes_read_only && set_expr_is_read_only(&query.body)
}

fn set_expr_is_read_only(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select.into.is_none(),
        SetExpr::Query(query) => query_is_read_only(query),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr_is_read_only(left) && set_expr_is_read_only(right)
        }
        SetExpr::Values(_) | SetExpr::Table(_) => true,
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Analysis {
        analyze_statement(sql, Dialect::Postgres).expect("statement parses")
    }

    #[test]
    fn split_keeps_semicolons_inside_strings_comments_and_identifiers() {
        let sql = "SELECT ';' AS \"a;b\"; -- c;d\n SELECT $$x;y$$ ;; /* e;f */";
        let pieces = split(sql, Dialect::Postgres).expect("tokenizes");
        assert_eq!(
            pieces,
            vec!["SELECT ';' AS \"a;b\"", "-- c;d\n SELECT $$x;y$$"]
        );
    }

    #[test]
    fn a_plain_lone_statement_is_cut_as_the_tokenizer_cuts_it() {
        for sql in [
            "SELECT 1",
            "  SELECT abalance FROM pgbench_accounts WHERE aid = 7 ;  ",
            "SELECT 'x' ;;\n",
            "\tSELECT '🦀'\r\n",
        ] {
            assert_eq!(
                lone_statement(sql).map(|s| vec![s]),
                Some(split(sql, Dialect::Postgres).expect("tokenizes")),
                "{sql}"
            );
        }
        for sql in [
            "SELECT ';'",
            "SELECT 1; SELECT 2",
            "SELECT 1 -- c",
            "/* c */",
            " ; ",
            "",
        ] {
            assert_eq!(lone_statement(sql), None, "{sql}");
        }
        assert_eq!(
            analyze("SELECT 1 ;", Dialect::MySql).expect("parses").len(),
            1
        );
        assert!(analyze("SELECT 'open", Dialect::Postgres).is_err());
    }

    #[test]
    fn split_of_only_comments_gives_no_statement() {
        assert!(
            split(" -- nothing\n /* here */ ;", Dialect::Postgres)
                .expect("tokenizes")
                .is_empty()
        );
    }

    #[test]
    fn split_handles_multibyte_text_before_the_semicolon() {
        let pieces = split("SELECT 'héllo wörld'; SELECT 2", Dialect::Postgres).expect("tokenizes");
        assert_eq!(pieces, vec!["SELECT 'héllo wörld'", "SELECT 2"]);
    }

    #[test]
    fn split_survives_tabs_crlf_and_wide_characters() {
        let sql = "SELECT\t'日本語';\r\nSELECT '🦀'\t;\n\tSELECT 3";
        let pieces = split(sql, Dialect::Postgres).expect("tokenizes");
        assert_eq!(pieces, vec!["SELECT\t'日本語'", "SELECT '🦀'", "SELECT 3"]);
    }

    #[test]
    fn select_is_a_read_only_read() {
        let a = one("SELECT id FROM demo.trips WHERE id = 1");
        assert_eq!(
            (a.kind, a.read_only, a.command),
            (StatementKind::Read, true, "SELECT")
        );
    }

    #[test]
    fn side_effecting_functions_make_a_select_not_read_only() {
        for sql in [
            "SELECT nextval('s')",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT pg_advisory_lock(1)",
            "SELECT id FROM t WHERE pg_try_advisory_lock(id)",
            "WITH c AS (SELECT txid_current()) SELECT * FROM c",
            "SELECT pg_catalog.setval('s', 1)",
        ] {
            assert!(!one(sql).read_only, "{sql}");
        }
        for sql in [
            "SELECT GET_LOCK('x', 1)",
            "SELECT @a := 1",
            "SELECT LAST_INSERT_ID(5)",
        ] {
            let analysis = analyze_statement(sql, Dialect::MySql).expect("parses");
            assert!(!analysis.read_only, "{sql}");
        }
        for sql in [
            "SELECT upper(name), count(*) FROM t GROUP BY 1",
            "SELECT now(), current_setting('search_path')",
        ] {
            assert!(one(sql).read_only, "{sql}");
        }
    }

    #[test]
    fn select_for_update_is_not_read_only() {
        assert!(!one("SELECT * FROM t FOR UPDATE").read_only);
    }

    #[test]
    fn select_into_is_not_read_only() {
        assert!(!one("SELECT * INTO t2 FROM t").read_only);
    }

    #[test]
    fn writable_cte_is_not_read_only() {
        let a = one("WITH moved AS (DELETE FROM t RETURNING *) SELECT * FROM moved");
        assert_eq!(a.kind, StatementKind::Read);
        assert!(!a.read_only);
    }

    #[test]
    fn writes_ddl_transactions_and_session_statements_are_told_apart() {
        let cases = [
            ("INSERT INTO t VALUES (1)", StatementKind::Write, "INSERT"),
            ("CREATE TABLE t (a int)", StatementKind::Ddl, "CREATE TABLE"),
            ("DROP TABLE t", StatementKind::Ddl, "DROP TABLE"),
            ("BEGIN", StatementKind::Transaction, "BEGIN"),
            ("COMMIT", StatementKind::Transaction, "COMMIT"),
            ("ROLLBACK", StatementKind::Transaction, "ROLLBACK"),
            ("SET search_path = public", StatementKind::Session, "SET"),
            ("SHOW search_path", StatementKind::Session, "SHOW"),
            ("EXPLAIN SELECT 1", StatementKind::Utility, "EXPLAIN"),
        ];
        for (sql, kind, command) in cases {
            let a = one(sql);
            assert_eq!((a.kind, a.command), (kind, command), "{sql}");
        }
    }

    #[test]
    fn syntax_errors_are_reported_not_panicked() {
        let err = analyze("SELEC 1", Dialect::Postgres).expect_err("not SQL");
        assert!(matches!(err, Error::Syntax { .. }), "{err:?}");
        let err = analyze("SELECT 'unterminated", Dialect::Postgres).expect_err("not SQL");
        assert!(matches!(err, Error::Syntax { .. }), "{err:?}");
    }

    #[test]
    fn mysql_backticks_parse_in_the_mysql_dialect() {
        let a = analyze_statement("SELECT `id` FROM `t`", Dialect::MySql).expect("parses");
        assert_eq!(a.kind, StatementKind::Read);
    }

    #[test]
    fn explain_route_wraps_the_statement_it_explains() {
        let a = analyze_statement(
            "explain  route\n INSERT INTO t VALUES (1)",
            Dialect::Postgres,
        )
        .expect("parses");
        assert!(a.explain_route);
        assert_eq!((a.kind, a.read_only), (StatementKind::Write, false));
        assert_eq!(a.sql, "INSERT INTO t VALUES (1)");
        assert!(!one("EXPLAIN SELECT 1").explain_route);
        assert!(
            analyze_statement("EXPLAIN ROUTE EXPLAIN ROUTE SELECT 1", Dialect::Postgres).is_err()
        );
        assert!(analyze_statement("EXPLAIN ROUTE  ", Dialect::Postgres).is_err());
    }
}
