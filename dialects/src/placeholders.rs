//! Parameter placeholders across dialects.
//!
//! MySQL clients mark parameters with `?`; PostgreSQL and DataFusion number them
//! `$1`, `$2`, ... Engines that take numbered parameters get the statement
//! after [`number_placeholders`], which numbers the question marks in the order
//! they appear in the text, as MySQL binds them. A statement prepared without
//! values crosses dialects with its parameters as marked literals
//! ([`mark_placeholders`], [`unmark_placeholders`]).

use std::ops::ControlFlow;

use crate::Dialect;
use sqlparser::ast::{
    AssignmentTarget, Expr, Insert, SetExpr, Statement, Value, ValueWithSpan, visit_expressions,
    visit_expressions_mut,
};

/// Rewrites every `?` placeholder in `statement` to `$1`, `$2`, ... in text
/// order and returns how many parameters the statement takes (the highest
/// number seen, counting existing `$n` placeholders too).
///
/// ```
/// use floe_dialects::{analyze_statement, number_placeholders, Dialect};
///
/// let mut analysis = analyze_statement("SELECT * FROM t WHERE a = ? AND b > ?", Dialect::MySql)?;
/// assert_eq!(number_placeholders(&mut analysis.statement), 2);
/// assert_eq!(analysis.statement.to_string(), "SELECT * FROM t WHERE a = $1 AND b > $2");
/// # Ok::<(), floe_dialects::Error>(())
/// ```
pub fn number_placeholders(statement: &mut Statement) -> usize {
    let mut next = 0usize;
    let mut highest = 0usize;
    // The visitor walks expressions in the order they were parsed, which is
    // the order of the text: the order MySQL binds `?` parameters in.
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(name),
            ..
        }) = expr
        {
            if name == "?" {
                next += 1;
                *name = format!("${next}");
                highest = highest.max(next);
            } else if let Some(n) = numbered(name) {
                highest = highest.max(n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    highest
}

/// Rewrites every `$n` placeholder back to `?`: the inverse of
/// [`number_placeholders`] for a MySQL statement, whose parameters it numbered
/// in text order. A MySQL statement rewritten as a tree is printed with it.
///
/// ```
/// use floe_dialects::{analyze_statement, number_placeholders, question_placeholders, Dialect};
///
/// let mut analysis = analyze_statement("SELECT ? + a FROM t WHERE b = ?", Dialect::MySql)?;
/// number_placeholders(&mut analysis.statement);
/// question_placeholders(&mut analysis.statement);
/// assert_eq!(analysis.statement.to_string(), "SELECT ? + a FROM t WHERE b = ?");
/// # Ok::<(), floe_dialects::Error>(())
/// ```
pub fn question_placeholders(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(name),
            ..
        }) = expr
            && name.starts_with('$')
        {
            *name = "?".to_owned();
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The text a parameter stands as while a statement crosses dialects.
const MARK: &str = "__floe_param_";

/// Replaces every parameter of `statement` (`?` numbered in text order, or
/// `$n`) with a string literal that names it, and returns how many it
/// replaced. A statement prepared without values crosses dialects this way:
/// every dialect and the translator agree on what a string literal is, while
/// `?` does not parse as PostgreSQL and `$1` does not mean a parameter to
/// MySQL. [`unmark_placeholders`] turns them back in the target dialect.
///
/// ```
/// use floe_dialects::{analyze_statement, mark_placeholders, unmark_placeholders, Dialect};
///
/// let mut analysis = analyze_statement("SELECT a FROM t WHERE b = ? AND c < ?", Dialect::MySql)?;
/// assert_eq!(mark_placeholders(&mut analysis.statement), 2);
/// let mut pg = analyze_statement(&analysis.statement.to_string(), Dialect::Postgres)?;
/// assert_eq!(unmark_placeholders(&mut pg.statement, Dialect::Postgres), 2);
/// assert_eq!(pg.statement.to_string(), "SELECT a FROM t WHERE b = $1 AND c < $2");
/// # Ok::<(), floe_dialects::Error>(())
/// ```
pub fn mark_placeholders(statement: &mut Statement) -> usize {
    number_placeholders(statement);
    let mut marked = 0usize;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan { value, .. }) = expr
            && let Value::Placeholder(name) = value
            && let Some(n) = numbered(name)
        {
            *value = Value::SingleQuotedString(format!("{MARK}{n}"));
            marked += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    marked
}

/// Turns the literals [`mark_placeholders`] wrote back into parameters of
/// `dialect` (`?` for MySQL, `$n` otherwise) and returns how many it found.
/// MySQL binds by position only: there each marked literal becomes one `?`,
/// so a statement that uses a parameter twice (or out of order) takes more
/// values than the client's; Floe writes the values in as literals when it
/// runs such a statement, and uses the prepared one only to describe it.
pub fn unmark_placeholders(statement: &mut Statement, dialect: Dialect) -> usize {
    let mut found = 0usize;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan { value, .. }) = expr
            && let Value::SingleQuotedString(text) = value
            && let Some(n) = text
                .strip_prefix(MARK)
                .and_then(|n| n.parse::<usize>().ok())
        {
            *value = Value::Placeholder(if dialect == Dialect::MySql {
                "?".to_owned()
            } else {
                format!("${n}")
            });
            found += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// How many parameters `statement` takes: the highest `$n`, or the number of
/// `?` placeholders, whichever is larger.
pub fn count_placeholders(statement: &Statement) -> usize {
    let mut questions = 0usize;
    let mut highest = 0usize;
    let _ = visit_expressions(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(name),
            ..
        }) = expr
        {
            if name == "?" {
                questions += 1;
            } else if let Some(n) = numbered(name) {
                highest = highest.max(n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    questions.max(highest)
}

/// For each parameter (index `n - 1` for `$n`), the column whose value it
/// stands for, where the statement says: `col = $1`, `col IN ($1, $2)`,
/// `col BETWEEN $1 AND $2`, `col LIKE $1`, `INSERT INTO t (col) VALUES ($1)`,
/// `UPDATE t SET col = $1`. A parameter has the type of that column, as
/// PostgreSQL infers it; an engine that cannot describe its parameters
/// (MySQL) is described this way. Columns are named without their table.
/// Only numbered (`$n`) parameters are placed: number a MySQL statement's `?`
/// first with [`number_placeholders`].
///
/// ```
/// use floe_dialects::{analyze_statement, param_columns, Dialect};
///
/// let analysis = analyze_statement("SELECT * FROM t WHERE t.a = $2 AND $1 < b", Dialect::Postgres)?;
/// assert_eq!(param_columns(&analysis.statement), vec![Some("b".to_owned()), Some("a".to_owned())]);
/// # Ok::<(), floe_dialects::Error>(())
/// ```
pub fn param_columns(statement: &Statement) -> Vec<Option<String>> {
    let mut columns: Vec<Option<String>> = vec![None; count_placeholders(statement)];
    let mut set = |param: &Expr, column: &Expr| {
        let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(name),
            ..
        }) = param
        else {
            return;
        };
        let Some(index) = numbered(name).and_then(|n| n.checked_sub(1)) else {
            return;
        };
        let Some(column) = column_name(column) else {
            return;
        };
        if let Some(slot) = columns.get_mut(index)
            && slot.is_none()
        {
            *slot = Some(column.to_lowercase());
        }
    };
    match statement {
        Statement::Insert(Insert {
            columns: names,
            source: Some(source),
            ..
        }) => {
            if let SetExpr::Values(values) = source.body.as_ref() {
                for row in &values.rows {
                    for (value, name) in row.iter().zip(names) {
                        set(value, &Expr::Identifier(name.clone()));
                    }
                }
            }
        }
        Statement::Update(update) => {
            for assignment in &update.assignments {
                if let AssignmentTarget::ColumnName(name) = &assignment.target
                    && let Some(last) = name.0.last().and_then(|p| p.as_ident())
                {
                    set(&assignment.value, &Expr::Identifier(last.clone()));
                }
            }
        }
        _ => {}
    }
    let _ = visit_expressions(statement, |expr| {
        match expr {
            Expr::BinaryOp { left, right, .. } => {
                set(right, left);
                set(left, right);
            }
            Expr::InList { expr, list, .. } => {
                for item in list {
                    set(item, expr);
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                set(low, expr);
                set(high, expr);
            }
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
                set(pattern, expr);
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    columns
}

/// The number of a `$n` placeholder.
fn numbered(name: &str) -> Option<usize> {
    name.strip_prefix('$')?.parse().ok()
}

/// The column `expr` names, without its table; `(col)` names `col`.
fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(ident) => Some(&ident.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|ident| ident.value.as_str()),
        Expr::Nested(inner) => column_name(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dialect, analyze_statement};

    fn numbered(sql: &str) -> (String, usize) {
        let mut analysis = analyze_statement(sql, Dialect::MySql).expect("parses");
        let n = number_placeholders(&mut analysis.statement);
        (analysis.statement.to_string(), n)
    }

    #[test]
    fn question_marks_are_numbered_in_text_order() {
        let (sql, n) = numbered("SELECT ?, a FROM t WHERE b IN (?, ?) LIMIT 1");
        assert_eq!(n, 3);
        assert_eq!(sql, "SELECT $1, a FROM t WHERE b IN ($2, $3) LIMIT 1");
    }

    #[test]
    fn placeholders_in_subqueries_and_inserts_count() {
        let (sql, n) =
            numbered("INSERT INTO t (a, b) VALUES (?, (SELECT max(x) FROM u WHERE y = ?))");
        assert_eq!(n, 2);
        assert!(sql.contains("$1") && sql.contains("$2"), "{sql}");
    }

    #[test]
    fn a_statement_without_placeholders_takes_none() {
        assert_eq!(numbered("SELECT '?' FROM t").1, 0);
    }

    #[test]
    fn marked_parameters_come_back_in_the_target_dialect() {
        let mut analysis = analyze_statement(
            "SELECT $1, a FROM t WHERE b = $1 AND c < $3",
            Dialect::Postgres,
        )
        .expect("parses");
        assert_eq!(count_placeholders(&analysis.statement), 3);
        assert_eq!(mark_placeholders(&mut analysis.statement), 3);
        assert_eq!(count_placeholders(&analysis.statement), 0);
        let text = analysis.statement.to_string();
        let mut my = analyze_statement(&text, Dialect::MySql).expect("parses");
        assert_eq!(unmark_placeholders(&mut my.statement, Dialect::MySql), 3);
        assert_eq!(
            my.statement.to_string(),
            "SELECT ?, a FROM t WHERE b = ? AND c < ?"
        );
        let mut pg = analyze_statement(&text, Dialect::Postgres).expect("parses");
        unmark_placeholders(&mut pg.statement, Dialect::Postgres);
        assert_eq!(
            pg.statement.to_string(),
            "SELECT $1, a FROM t WHERE b = $1 AND c < $3"
        );
    }

    #[test]
    fn parameters_take_the_column_they_are_compared_with() {
        let columns = |sql: &str| {
            param_columns(
                &analyze_statement(sql, Dialect::Postgres)
                    .expect("parses")
                    .statement,
            )
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            columns(
                "SELECT * FROM t WHERE a IN ($1, $2) AND b BETWEEN $3 AND $4 AND c LIKE $5 AND $6 + 1 > d"
            ),
            vec![some("a"), some("a"), some("b"), some("b"), some("c"), None]
        );
        assert_eq!(
            columns("INSERT INTO t (x, y) VALUES ($2, $1)"),
            vec![some("y"), some("x")]
        );
        assert_eq!(
            columns("UPDATE t SET x = $1 WHERE id = $2"),
            vec![some("x"), some("id")]
        );
    }
}
