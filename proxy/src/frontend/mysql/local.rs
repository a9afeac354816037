//! What MySQL clients and connectors send that is not plain SQL for an engine:
//! system and user variables (`SELECT @@version_comment`), connection functions
//! (`DATABASE()`, `CONNECTION_ID()`), `SHOW DATABASES / TABLES / COLUMNS /
//! VARIABLES / WARNINGS`, `DESCRIBE`, `USE` and `KILL QUERY`.
//!
//! [`plan`] turns each analysed statement into what to do with it. `SHOW`
//! statements over the catalog become queries on `information_schema`, so
//! they go through the engine like any query; session state is answered from
//! the session's own settings.

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;
use arrow::array::{Array, ArrayRef, Int64Array, NullArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use floe_dialects::sqlparser::ast::{
    Expr, FunctionArguments, Ident, KillType, LimitClause, ObjectName, Query, SelectItem, SetExpr,
    ShowStatementFilter, ShowStatementFilterPosition, ShowStatementOptions, Statement, Use, Value,
    visit_expressions_mut,
};
use floe_dialects::{Analysis, Dialect, StatementKind, analyze_statement};

use crate::error::{Error, Result};
use crate::session::normalise;

/// What one statement from a MySQL client turns into.
pub(super) enum Plan {
    /// Run through the session layer: on the engine, or locally for `SET`
    /// and transaction control. `None` runs the statement as given (a prepared
    /// statement's execution borrows it, never clones its tree); `Some` is a
    /// rewritten copy. Boxed: an analysis holds a whole AST.
    Run(Option<Box<Analysis>>),
    /// Rows answered here.
    Rows(RecordBatch),
    /// `USE db`: change the current database.
    Use(String),
    /// `SHOW COLUMNS FROM t` / `DESCRIBE t`: the columns of a table.
    Describe(ObjectName),
    /// `KILL QUERY id`: cancel another connection's statement.
    Kill(u32),
}

/// What the connection knows that statements may ask about.
pub(super) struct Context<'a> {
    /// The session's settings (system variables, and `@user` variables).
    pub settings: &'a std::collections::BTreeMap<String, String>,
    /// The current database.
    pub schema: Option<&'a str>,
    /// `user@host`.
    pub user: &'a str,
    /// This connection's id.
    pub connection_id: u32,
}

/// Decides what to do with one statement.
///
/// # Errors
///
/// Unknown system variables, `SHOW` forms Floe does not answer, and
/// statements that need a current database when there is none.
pub(super) fn plan(analysis: &Analysis, context: &Context<'_>) -> Result<Plan> {
    // A query is none of the statements below: its tree is not read (for a
    // text of a known shape, it is not even built: `floe_dialects::Tree`).
    let statement = (analysis.kind != StatementKind::Read).then(|| &*analysis.statement);
    match statement {
        Some(Statement::Use(target)) => {
            return match target {
                Use::Object(name) | Use::Database(name) | Use::Schema(name) => {
                    Ok(Plan::Use(last_part(name)))
                }
                other => Err(unsupported(format!("{other}"))),
            };
        }
        Some(Statement::Kill { modifier, id }) => {
            return match modifier {
                Some(KillType::Query) => u32::try_from(*id)
                    .map(Plan::Kill)
                    .map_err(|_| Error::InvalidParameter(format!("no connection {id}"))),
                _ => Err(unsupported(
                    "KILL CONNECTION (use KILL QUERY to stop a statement)".to_owned(),
                )),
            };
        }
        Some(Statement::ShowDatabases { show_options, .. }) => {
            let filter = like_filter(show_options, "schema_name")?;
            return query(&format!(
                "SELECT DISTINCT schema_name AS `Database` FROM information_schema.schemata \
                 WHERE schema_name <> 'pg_catalog'{filter} ORDER BY 1"
            ));
        }
        Some(Statement::ShowTables {
            full, show_options, ..
        }) => {
            let schema = match show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.as_ref())
            {
                Some(name) => last_part(name),
                None => context.schema.ok_or(Error::NoDatabaseSelected)?.to_owned(),
            };
            let filter = like_filter(show_options, "table_name")?;
            let table_type = if *full {
                ", CASE table_type WHEN 'VIEW' THEN 'VIEW' ELSE 'BASE TABLE' END AS `Table_type`"
            } else {
                ""
            };
            return query(&format!(
                "SELECT table_name AS `Tables_in_{name}`{table_type} FROM information_schema.tables \
                 WHERE table_schema = '{schema}'{filter} ORDER BY 1",
                name = schema.replace('`', ""),
                schema = schema.replace('\'', "''"),
            ));
        }
        Some(Statement::ShowColumns { show_options, .. }) => {
            let table = show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.clone())
                .ok_or_else(|| unsupported("SHOW COLUMNS without FROM".to_owned()))?;
            return Ok(Plan::Describe(table));
        }
        Some(Statement::ExplainTable { table_name, .. }) => {
            return Ok(Plan::Describe(table_name.clone()));
        }
        Some(Statement::ShowVariables { filter, global, .. }) => {
            if *global {
                return Err(unsupported("SHOW GLOBAL VARIABLES".to_owned()));
            }
            let pattern = match filter {
                None => None,
                Some(ShowStatementFilter::Like(p) | ShowStatementFilter::NoKeyword(p)) => {
                    Some(p.to_lowercase())
                }
                Some(other) => return Err(unsupported(format!("SHOW VARIABLES {other}"))),
            };
            let (names, values): (Vec<&str>, Vec<&str>) = context
                .settings
                .iter()
                .filter(|(name, _)| !name.starts_with('@'))
                .filter(|(name, _)| pattern.as_deref().is_none_or(|p| like(name, p)))
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .unzip();
            return two_columns(("Variable_name", names), ("Value", values));
        }
        Some(Statement::ShowStatus { .. }) => {
            return two_columns(("Variable_name", Vec::new()), ("Value", Vec::new()));
        }
        Some(Statement::ShowVariable { variable })
            if variable.len() == 1
                && matches!(
                    variable[0].value.to_lowercase().as_str(),
                    "warnings" | "errors"
                ) =>
        {
            // Floe raises errors, never warnings: the list is always empty.
            let schema = Arc::new(Schema::new(vec![
                Field::new("Level", DataType::Utf8, false),
                Field::new("Code", DataType::Int64, false),
                Field::new("Message", DataType::Utf8, false),
            ]));
            return Ok(Plan::Rows(RecordBatch::new_empty(schema)));
        }
        _ => {}
    }
    if !may_name_variables(analysis.sql()) {
        return Ok(Plan::Run(None));
    }
    let mut rewritten = analysis.clone();
    if !substitute_variables(&mut rewritten.statement, context)? {
        return Ok(Plan::Run(None));
    }
    if let Some(batch) = constant_row(&rewritten.statement) {
        return Ok(Plan::Rows(batch));
    }
    // Remote engines and translation read the text, not the tree: MySQL
    // text, whose parameters are `?` (the tree numbers them).
    let mut text = Statement::clone(&rewritten.statement);
    floe_dialects::question_placeholders(&mut text);
    rewritten.set_sql(text.to_string());
    Ok(Plan::Run(Some(Box::new(rewritten))))
}

/// The result of a `SELECT` of literals only, with no other clause than a
/// `LIMIT` (what a connector's `SELECT @@max_allowed_packet, @@wait_timeout`
/// or the mysql CLI's `SELECT @@version_comment LIMIT 1` is once its
/// variables are substituted), answered here: a client connects and reads
/// its settings without an engine's round trip, and while every engine is
/// down. `None` for anything else, which runs on an engine.
fn constant_row(statement: &Statement) -> Option<RecordBatch> {
    /// `SELECT` with nothing after it: what a select of no other clause
    /// prints once its projection is taken away.
    static BARE: LazyLock<Option<String>> = LazyLock::new(|| {
        let mut bare = floe_dialects::sqlparser::parser::Parser::parse_sql(
            &floe_dialects::sqlparser::dialect::MySqlDialect {},
            "SELECT 1",
        )
        .ok()?
        .pop()?;
        if let Statement::Query(query) = &mut bare
            && let SetExpr::Select(select) = query.body.as_mut()
        {
            select.projection.clear();
        }
        Some(bare.to_string())
    });
    let Statement::Query(query) = statement else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let rows = match &query.limit_clause {
        None => 1,
        Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(limit)),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => match &limit.value {
            Value::Number(n, _) => usize::from(n.parse::<u64>().ok()? > 0),
            _ => return None,
        },
        Some(_) => return None,
    };
    // Every other clause, of the query or of the select, shows in its text.
    let mut rest = Query::clone(query);
    rest.limit_clause = None;
    if let SetExpr::Select(select) = rest.body.as_mut() {
        select.projection.clear();
    }
    if Some(rest.to_string()) != *BARE {
        return None;
    }
    let mut fields = Vec::with_capacity(select.projection.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(expr) => (expr, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            _ => return None,
        };
        let Expr::Value(value) = expr else {
            return None;
        };
        // MySQL names a string literal's column by its text, unquoted.
        let name = alias.unwrap_or_else(|| match &value.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            _ => expr.to_string(),
        });
        let column: ArrayRef = match &value.value {
            Value::Number(n, false) => {
                Arc::new(Int64Array::from(vec![n.parse::<i64>().ok()?; rows]))
            }
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                Arc::new(StringArray::from(vec![s.as_str(); rows]))
            }
            Value::Null => Arc::new(NullArray::new(rows)),
            _ => return None,
        };
        fields.push(Field::new(
            name,
            column.data_type().clone(),
            column.null_count() > 0 || column.data_type() == &DataType::Null,
        ));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).ok()
}

fn unsupported(what: String) -> Error {
    Error::Engine(floe_router::Error::Unsupported(what))
}

fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

/// A statement Floe wrote itself, analysed like a client's.
fn query(sql: &str) -> Result<Plan> {
    Ok(Plan::Run(Some(Box::new(analyze_statement(
        sql,
        Dialect::MySql,
    )?))))
}

/// The `AND column LIKE '...'` of a `SHOW ... LIKE` filter.
fn like_filter(options: &ShowStatementOptions, column: &str) -> Result<String> {
    match &options.filter_position {
        None => Ok(String::new()),
        Some(
            ShowStatementFilterPosition::Infix(filter)
            | ShowStatementFilterPosition::Suffix(filter),
        ) => match filter {
            ShowStatementFilter::Like(pattern) | ShowStatementFilter::NoKeyword(pattern) => Ok(
                format!(" AND {column} LIKE '{}'", pattern.replace('\'', "''")),
            ),
            other => Err(unsupported(format!("SHOW ... {other}"))),
        },
    }
}

fn two_columns(
    (first, firsts): (&str, Vec<&str>),
    (second, seconds): (&str, Vec<&str>),
) -> Result<Plan> {
    let schema = Arc::new(Schema::new(vec![
        Field::new(first, DataType::Utf8, false),
        Field::new(second, DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(firsts)),
            Arc::new(StringArray::from(seconds)),
        ],
    )
    .map(Plan::Rows)
    .map_err(|e| Error::Engine(floe_router::Error::Internal(e.to_string())))
}

/// SQL `LIKE` with `%` and `_`, case-insensitive as MySQL's default collation.
pub(super) fn like(text: &str, pattern: &str) -> bool {
    fn matches(text: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|skip| matches(&text[skip..], rest)),
            Some(('_', rest)) => !text.is_empty() && matches(&text[1..], rest),
            Some(('\\', [escaped, rest @ ..])) => {
                text.first() == Some(escaped) && matches(&text[1..], rest)
            }
            Some((c, rest)) => {
                text.first().is_some_and(|t| t.eq_ignore_ascii_case(c)) && matches(&text[1..], rest)
            }
        }
    }
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    matches(&text, &pattern)
}

/// The value of a `@@system` or `@user` variable, or of a connection
/// function, as a literal; `None` when `expr` is neither.
fn variable_value(expr: &Expr, context: &Context<'_>) -> Option<Result<Expr>> {
    let name = match expr {
        Expr::Identifier(ident) if ident.value.starts_with('@') => ident.value.clone(),
        Expr::CompoundIdentifier(parts)
            if parts.first().is_some_and(|p| p.value.starts_with('@')) =>
        {
            parts
                .iter()
                .map(|p| p.value.as_str())
                .collect::<Vec<_>>()
                .join(".")
        }
        Expr::Function(function) => {
            let no_args = match &function.args {
                FunctionArguments::None => true,
                FunctionArguments::List(list) => list.args.is_empty(),
                FunctionArguments::Subquery(_) => false,
            };
            if !no_args || function.name.0.len() != 1 {
                return None;
            }
            let name = function.name.to_string().to_lowercase();
            let value = match name.as_str() {
                "database" | "schema" => context.schema.map(str::to_owned),
                "user" | "current_user" | "session_user" | "system_user" => {
                    Some(context.user.to_owned())
                }
                "connection_id" => {
                    return Some(Ok(Expr::value(Value::Number(
                        context.connection_id.to_string(),
                        false,
                    ))));
                }
                "version" => context.settings.get("version").cloned(),
                "last_insert_id" | "row_count" | "found_rows" => {
                    return Some(Ok(Expr::value(Value::Number("0".to_owned(), false))));
                }
                _ => return None,
            };
            return Some(Ok(literal(value)));
        }
        _ => return None,
    };
    if let Some(user_variable) = name.strip_prefix('@').filter(|n| !n.starts_with('@')) {
        // An unset user variable is NULL in MySQL.
        let key = format!("@{}", user_variable.to_lowercase());
        return Some(Ok(literal(context.settings.get(&key).cloned())));
    }
    let key = normalise(&name);
    Some(match context.settings.get(&key) {
        Some(value) => Ok(literal(Some(value.clone()))),
        None => Err(Error::UnknownSetting(key)),
    })
}

/// A setting's value as SQL: numbers as numbers, the rest as strings.
fn literal(value: Option<String>) -> Expr {
    match value {
        None => Expr::value(Value::Null),
        Some(v) if !v.is_empty() && v.parse::<i64>().is_ok() => {
            Expr::value(Value::Number(v, false))
        }
        Some(v) => Expr::value(Value::SingleQuotedString(v)),
    }
}

/// The session functions [`variable_value`] answers, by name (lower case);
/// `user` also covers `current_user`, `session_user` and `system_user`.
const SESSION_FUNCTIONS: [&str; 8] = [
    "database",
    "schema",
    "user",
    "connection_id",
    "version",
    "last_insert_id",
    "row_count",
    "found_rows",
];

/// Whether `sql` may hold something [`substitute_variables`] replaces: a
/// variable (`@x`, `@@x`) or a session function. Most statements hold
/// neither, and this test of the text is much cheaper than walking the tree.
fn may_name_variables(sql: &str) -> bool {
    // One pass over the text, without a lower-cased copy: this runs for every
    // statement (a copy and nine searches were ~1 k instructions of a point
    // select's).
    static NAMES: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(SESSION_FUNCTIONS.iter().chain(&["@"]))
            .ok()
    });
    match &*NAMES {
        Some(names) => names.is_match(sql),
        // Cannot happen (the patterns are fixed); the walk decides then.
        None => true,
    }
}

/// Replaces variables and connection functions with their values, naming
/// the output columns after what the client wrote (`@@version_comment`), as
/// MySQL does.
fn substitute_variables(statement: &mut Statement, context: &Context<'_>) -> Result<bool> {
    let mut changed = false;
    if let Statement::Query(query) = statement
        && let SetExpr::Select(select) = query.body.as_mut()
    {
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(expr) = item
                && variable_value(expr, context).is_some()
            {
                let alias = Ident::with_quote('`', expr.to_string());
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias,
                };
            }
        }
    }
    let mut failure = None;
    let _ = visit_expressions_mut(statement, |expr| {
        match variable_value(expr, context) {
            Some(Ok(value)) => {
                *expr = value;
                changed = true;
            }
            Some(Err(e)) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
            None => {}
        }
        ControlFlow::Continue(())
    });
    failure.map_or(Ok(changed), Err)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn context(settings: &BTreeMap<String, String>) -> Context<'_> {
        Context {
            settings,
            schema: Some("demo"),
            user: "floe@localhost",
            connection_id: 7,
        }
    }

    fn settings() -> BTreeMap<String, String> {
        [
            ("version_comment", "Floe"),
            ("max_allowed_packet", "67108864"),
            ("auto_increment_increment", "1"),
            ("@answer", "42"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn rewritten(sql: &str) -> String {
        let settings = settings();
        let analysis = analyze_statement(sql, Dialect::MySql).expect("parses");
        match plan(&analysis, &context(&settings)) {
            Ok(Plan::Run(rewritten)) => rewritten
                .as_deref()
                .unwrap_or(&analysis)
                .statement
                .to_string(),
            Ok(_) => "local".to_owned(),
            Err(e) => format!("error: {e}"),
        }
    }

    /// The rows answered here for `sql`, as (column, type, values) per
    /// column; `None` when it runs on an engine.
    fn answered(sql: &str) -> Option<Vec<(String, DataType, Vec<String>)>> {
        let settings = settings();
        let analysis = analyze_statement(sql, Dialect::MySql).expect("parses");
        let Ok(Plan::Rows(batch)) = plan(&analysis, &context(&settings)) else {
            return None;
        };
        let schema = batch.schema();
        Some(
            schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| {
                    let values = (0..column.len())
                        .map(|row| {
                            arrow::util::display::array_value_to_string(column, row)
                                .expect("displays")
                        })
                        .collect();
                    (field.name().clone(), field.data_type().clone(), values)
                })
                .collect(),
        )
    }

    fn column(name: &str, data_type: DataType, values: &[&str]) -> (String, DataType, Vec<String>) {
        let values = values.iter().map(|v| (*v).to_owned()).collect();
        (name.to_owned(), data_type, values)
    }

    #[test]
    fn system_variables_become_literals_named_as_written() {
        assert_eq!(
            rewritten("SELECT @@version_comment, c FROM t LIMIT 1"),
            "SELECT 'Floe' AS `@@version_comment`, c FROM t LIMIT 1"
        );
        assert_eq!(
            rewritten("SELECT @@session.auto_increment_increment + 1 AS a, @answer"),
            "SELECT 1 + 1 AS a, 42 AS `@answer`"
        );
        assert!(rewritten("SELECT @@nope").starts_with("error: unrecognized"));
    }

    #[test]
    fn a_select_of_variables_alone_is_answered_here() {
        assert_eq!(
            answered("SELECT @@version_comment LIMIT 1"),
            Some(vec![column("@@version_comment", DataType::Utf8, &["Floe"])])
        );
        assert_eq!(
            answered(
                "SELECT @@max_allowed_packet, @@session.auto_increment_increment AS a, @answer, @unset"
            ),
            Some(vec![
                column("@@max_allowed_packet", DataType::Int64, &["67108864"]),
                column("a", DataType::Int64, &["1"]),
                column("@answer", DataType::Int64, &["42"]),
                column("@unset", DataType::Null, &[""]),
            ])
        );
        assert_eq!(
            answered("SELECT @@version_comment LIMIT 0"),
            Some(vec![column("@@version_comment", DataType::Utf8, &[])])
        );
        // Anything more than literals is the engine's to answer.
        for sql in [
            "SELECT @@max_allowed_packet + 1",
            "SELECT @@version_comment FROM t",
            "SELECT @@version_comment WHERE 1 = 0",
            "SELECT @@version_comment ORDER BY 1",
            "SELECT @@version_comment LIMIT 1 OFFSET 1",
            "SELECT @@version_comment UNION SELECT 'x'",
            "SELECT 1",
        ] {
            assert_eq!(answered(sql), None, "{sql}");
        }
    }

    #[test]
    fn connection_functions_answer_from_the_connection() {
        assert_eq!(
            answered("SELECT DATABASE(), CONNECTION_ID()"),
            Some(vec![
                column("DATABASE()", DataType::Utf8, &["demo"]),
                column("CONNECTION_ID()", DataType::Int64, &["7"]),
            ])
        );
    }

    #[test]
    fn every_session_function_is_rewritten_and_other_statements_are_left_alone() {
        for name in [
            "DATABASE",
            "SCHEMA",
            "USER",
            "CURRENT_USER",
            "SESSION_USER",
            "SYSTEM_USER",
            "CONNECTION_ID",
            "VERSION",
            "LAST_INSERT_ID",
            "ROW_COUNT",
            "FOUND_ROWS",
        ] {
            let sql = format!("SELECT {name}()");
            assert!(may_name_variables(&sql), "{sql}");
            assert_ne!(rewritten(&sql), sql, "{name}() was not answered");
        }
        assert!(!may_name_variables("SELECT c FROM sbtest1 WHERE id = ?"));
        assert_eq!(
            rewritten("SELECT c FROM sbtest1 WHERE id = 7"),
            "SELECT c FROM sbtest1 WHERE id = 7"
        );
    }

    #[test]
    fn show_statements_query_information_schema() {
        let tables = rewritten("SHOW TABLES LIKE 'tr%'");
        assert!(tables.contains("information_schema.tables"), "{tables}");
        assert!(tables.contains("table_schema = 'demo'"), "{tables}");
        assert!(tables.contains("LIKE 'tr%'"), "{tables}");
        assert!(rewritten("SHOW DATABASES").contains("information_schema.schemata"));
        assert_eq!(rewritten("SHOW VARIABLES LIKE 'max%'"), "local");
        assert_eq!(rewritten("DESCRIBE trips"), "local");
        assert_eq!(rewritten("SHOW WARNINGS"), "local");
    }

    #[test]
    fn like_matches_as_mysql_does() {
        assert!(like("max_allowed_packet", "max%"));
        assert!(like("MAX_allowed_packet", "max\\_%"));
        assert!(!like("autocommit", "max%"));
        assert!(like("abc", "a_c"));
    }
}
