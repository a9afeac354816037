//! Constants of a PostgreSQL statement taken out as typed parameters.
//!
//! A client of the simple query protocol writes its constants into the text
//! (`... WHERE aid = 48213`), so a server parses, analyses and plans every
//! statement anew. [`parameterize`] turns such a statement into its shape
//! (`... WHERE aid = $1`) and the values, so that a proxy can prepare the
//! shape once per server connection and only bind the values after: on a
//! point select PostgreSQL's parse and plan are about half of its work.
//!
//! The result must mean exactly what the text meant, so only constants whose
//! meaning a parameter keeps are taken, and only where that is certain:
//!
//! - an integer constant is typed by its value in PostgreSQL (`int4` if it
//!   fits, else `int8`), so its parameter gets that type explicitly;
//! - a quoted string constant has type `unknown` and takes its type from its
//!   context; so does a parameter of unspecified type — in the one context
//!   taken here, an operand of a comparison whose other operand is a column,
//!   both become the column's type;
//! - only operands of `=`, `<>`, `<`, `<=`, `>` and `>=` whose other operand
//!   is a column are taken: never a positional `ORDER BY 1`, a `LIMIT`, a
//!   `LIKE` pattern (a constant one lets the planner use an index prefix) or
//!   a function argument.
//!
//! Each constant is cut out of the original text at its span, after checking
//! that the text there is exactly the constant as written; anything unusual
//! (a `$` anywhere, escape strings, a span that does not match) leaves the
//! statement as it is.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, Value, ValueWithSpan, visit_expressions};
use sqlparser::tokenizer::{Location, Span};

use crate::classify::{byte_offset, line_starts};
use crate::{Analysis, Dialect, StatementKind};

/// PostgreSQL's type OID of `int4`.
pub const INT4_OID: u32 = 23;
/// PostgreSQL's type OID of `int8`.
pub const INT8_OID: u32 = 20;

/// Parameters taken at most from one statement.
const MAX_PARAMETERS: usize = 64;

/// A statement's shape and the constants taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameterized {
    /// The text with each constant taken replaced by `$1`, `$2`, ...
    pub sql: String,
    /// Each parameter's value, in the text form PostgreSQL reads.
    pub values: Vec<String>,
    /// Each parameter's type OID; 0 leaves it to the server, as for a
    /// quoted constant.
    pub types: Vec<u32>,
}

/// The shape and constants of a PostgreSQL read, when it has constants that
/// can be taken out without changing its meaning (see the module's
/// documentation); `None` otherwise.
///
/// ```
/// use floe_dialects::{analyze_statement, parameterize, Dialect};
///
/// let analysis = analyze_statement(
///     "SELECT abalance FROM pgbench_accounts WHERE aid = 48213 AND name = 'x'",
///     Dialect::Postgres,
/// )?;
/// let p = parameterize(&analysis).expect("two constants");
/// assert_eq!(p.sql, "SELECT abalance FROM pgbench_accounts WHERE aid = $1 AND name = $2");
/// assert_eq!(p.values, ["48213", "x"]);
/// assert_eq!(p.types, [23, 0]);
/// # Ok::<(), floe_dialects::Error>(())
/// ```
pub fn parameterize(analysis: &Analysis) -> Option<Parameterized> {
    if analysis.dialect != Dialect::Postgres
        || analysis.kind != StatementKind::Read
        || analysis.explain_route
        || analysis.sql.contains('$')
    {
        return None;
    }
    let mut taken: Vec<Taken> = Vec::new();
    let flow = visit_expressions(&analysis.statement, |expr| {
        if let Expr::BinaryOp { left, op, right } = expr
            && matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
            )
        {
            let constant = match (left.as_ref(), right.as_ref()) {
                (column, Expr::Value(value)) | (Expr::Value(value), column)
                    if matches!(column, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) =>
                {
                    Some(value)
                }
                _ => None,
            };
            if let Some(constant) = constant.and_then(Taken::of) {
                if taken.len() == MAX_PARAMETERS {
                    return ControlFlow::Break(());
                }
                taken.push(constant);
            }
        }
        ControlFlow::Continue(())
    });
    if flow.is_break() || taken.is_empty() {
        return None;
    }
    cut(&analysis.sql, taken)
}

/// A constant a parameter can stand for.
struct Taken {
    span: Span,
    /// The constant as the text must spell it at `span`.
    written: String,
    /// The parameter's value, as PostgreSQL reads it.
    value: String,
    /// The parameter's type OID (0: unspecified).
    oid: u32,
}

impl Taken {
    fn of(constant: &ValueWithSpan) -> Option<Taken> {
        let (written, value, oid) = match &constant.value {
            Value::Number(digits, false) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                let n: i64 = digits.parse().ok()?;
                let oid = if i32::try_from(n).is_ok() {
                    INT4_OID
                } else {
                    INT8_OID
                };
                (digits.clone(), n.to_string(), oid)
            }
            Value::SingleQuotedString(text) => {
                (format!("'{}'", text.replace('\'', "''")), text.clone(), 0)
            }
            _ => return None,
        };
        Some(Taken {
            span: constant.span,
            written,
            value,
            oid,
        })
    }
}

/// Replaces each constant of `taken` in `sql` by its parameter, checking that
/// the text at each span is that constant as written.
fn cut(sql: &str, taken: Vec<Taken>) -> Option<Parameterized> {
    let lines = line_starts(sql);
    let offset = |location: Location| byte_offset(sql, &lines, location.line, location.column);
    let mut pieces: Vec<(usize, usize, String, u32)> = Vec::with_capacity(taken.len());
    for constant in taken {
        let (start, end) = (offset(constant.span.start), offset(constant.span.end));
        if sql.get(start..end)? != constant.written {
            return None;
        }
        pieces.push((start, end, constant.value, constant.oid));
    }
    pieces.sort_by_key(|p| p.0);
    if pieces.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut values = Vec::with_capacity(pieces.len());
    let mut types = Vec::with_capacity(pieces.len());
    let mut at = 0;
    for (n, (start, end, text, oid)) in pieces.into_iter().enumerate() {
        out.push_str(&sql[at..start]);
        out.push('$');
        out.push_str(&(n + 1).to_string());
        values.push(text);
        types.push(oid);
        at = end;
    }
    out.push_str(&sql[at..]);
    Some(Parameterized {
        sql: out,
        values,
        types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze_statement;

    fn shape(sql: &str) -> Option<Parameterized> {
        parameterize(&analyze_statement(sql, Dialect::Postgres).expect("parses"))
    }

    #[test]
    fn comparisons_with_columns_give_typed_parameters() {
        let p = shape(
            "SELECT a.x, 'lit' FROM t AS a\n  WHERE a.id >= 3000000000 AND 7 <> b\tAND s = 'it''s é'\nORDER BY 1 LIMIT 5",
        )
        .expect("three constants");
        assert_eq!(
            p.sql,
            "SELECT a.x, 'lit' FROM t AS a\n  WHERE a.id >= $1 AND $2 <> b\tAND s = $3\nORDER BY 1 LIMIT 5"
        );
        assert_eq!(p.values, ["3000000000", "7", "it's é"]);
        assert_eq!(p.types, [INT8_OID, INT4_OID, 0]);
    }

    #[test]
    fn what_a_parameter_would_change_is_left_alone() {
        for sql in [
            "SELECT 1",
            "SELECT * FROM t ORDER BY 1 LIMIT 10",
            "SELECT * FROM t WHERE name LIKE 'ab%'",
            "SELECT * FROM t WHERE x = 1.5",
            "SELECT * FROM t WHERE x = 99999999999999999999",
            "SELECT * FROM t WHERE x = E'a\\nb'",
            "SELECT * FROM t WHERE x = $$a$$",
            "SELECT * FROM t WHERE lower(x) = 'a'",
            "SELECT * FROM t WHERE x + 1 = 2",
            "SELECT * FROM t WHERE x = DATE '2024-01-01'",
        ] {
            assert_eq!(shape(sql), None, "{sql}");
        }
        let write =
            analyze_statement("DELETE FROM t WHERE id = 1", Dialect::Postgres).expect("parses");
        assert_eq!(parameterize(&write), None);
        let mysql =
            analyze_statement("SELECT * FROM t WHERE id = 1", Dialect::MySql).expect("parses");
        assert_eq!(parameterize(&mysql), None);
    }

    #[test]
    fn the_same_shape_with_other_constants_gives_the_same_text() {
        let a = shape("SELECT abalance FROM pgbench_accounts WHERE aid = 1").expect("one");
        let b = shape("SELECT abalance FROM pgbench_accounts WHERE aid = 984312").expect("one");
        assert_eq!(a.sql, b.sql);
        assert_eq!(a.types, b.types);
    }
}
