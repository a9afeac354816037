//! Parameter placeholders across dialects.
//!
//! MySQL clients mark parameters with `?`; PostgreSQL and DataFusion number them
//! `$1`, `$2`, ... Engines that take numbered parameters get the statement
//! after [`number_placeholders`], which numbers the question marks in the order
//! they appear in the text, as MySQL binds them.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Statement, Value, ValueWithSpan, visit_expressions_mut};

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
            } else if let Some(n) = name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                highest = highest.max(n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    highest
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
}
