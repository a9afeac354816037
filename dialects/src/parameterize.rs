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

use std::ops::{ControlFlow, Range};

use sqlparser::ast::{BinaryOperator, Expr, Value, ValueWithSpan, visit_expressions};
use sqlparser::tokenizer::{Location, Span};

use crate::classify::{byte_offset, line_starts};
use crate::shape::ConstantClass;
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
    let taken = take(analysis)?;
    if taken.is_empty() {
        return None;
    }
    let pieces = located(&analysis.sql, taken)?;
    Some(cut(&analysis.sql, pieces.into_iter()))
}

/// How every text of one shape ([`ShapeKey`](crate::ShapeKey)) is parameterised: the same
/// tree, so the same constants are taken, and they are the shape's masked
/// constants. Made once per shape from its first text with
/// [`ParameterShape::of`]; [`ParameterShape::apply`] then cuts any text of
/// the shape without walking its tree.
///
/// ```
/// use floe_dialects::{analyze_statement, Dialect, ParameterShape};
///
/// let first = analyze_statement("SELECT * FROM t WHERE id = 7", Dialect::Postgres)?;
/// let shape = ParameterShape::of(&first).expect("a parsed analysis");
/// let later = analyze_statement("SELECT * FROM t WHERE id = 0042", Dialect::Postgres)?;
/// let p = shape.apply(&later).expect("one");
/// assert_eq!((p.sql.as_str(), p.values[0].as_str()), ("SELECT * FROM t WHERE id = $1", "42"));
/// # Ok::<(), floe_dialects::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterShape {
    /// These masked constants (indexes into [`ShapeKey::constants`](crate::ShapeKey::constants)), in
    /// text order, become the parameters.
    Slots(Vec<usize>),
    /// The shape has no constant to take.
    Never,
    /// The constants taken are not all masked ones (`7 < x`), or the text
    /// has a `$`: each text is parameterised on its own.
    Each,
}

impl ParameterShape {
    /// The parameterisation of `analysis`'s shape ([`Analysis::shape_key`]).
    /// `None` when `analysis` cannot tell: it came from a cached shape
    /// ([`Analyses`](crate::Analyses)), whose tree has another text's spans.
    pub fn of(analysis: &Analysis) -> Option<Self> {
        if !analysis.exact_spans {
            return None;
        }
        if analysis.sql.contains('$') {
            // Perhaps only inside a masked string, which another text of the
            // shape would not have.
            return Some(ParameterShape::Each);
        }
        let Some(taken) = take(analysis).filter(|taken| !taken.is_empty()) else {
            return Some(ParameterShape::Never);
        };
        let Some(pieces) = located(&analysis.sql, taken) else {
            return Some(ParameterShape::Never);
        };
        let constants = &analysis.shape_key().constants;
        let slots: Option<Vec<usize>> = pieces
            .iter()
            .map(|(range, ..)| constants.iter().position(|(r, _)| r == range))
            .collect();
        Some(slots.map_or(ParameterShape::Each, ParameterShape::Slots))
    }

    /// `analysis` parameterised as its shape says; `analysis` is of the
    /// same shape as the text this was made from.
    pub fn apply(&self, analysis: &Analysis) -> Option<Parameterized> {
        match self {
            ParameterShape::Never => None,
            ParameterShape::Each => parameterize(analysis),
            ParameterShape::Slots(slots) => {
                let sql = analysis.sql.as_str();
                let constants = &analysis.shape_key().constants;
                let mut pieces = Vec::with_capacity(slots.len());
                for &slot in slots {
                    let (range, class) = constants.get(slot)?;
                    let value = class.value(sql.get(range.clone())?)?;
                    pieces.push((range.clone(), value, class.oid()));
                }
                Some(cut(sql, pieces.into_iter()))
            }
        }
    }
}

/// The constants of `analysis` a parameter can stand for; `None` when the
/// statement is not to be parameterised at all.
fn take(analysis: &Analysis) -> Option<Vec<Taken>> {
    if !analysis.exact_spans
        || analysis.dialect != Dialect::Postgres
        || analysis.kind != StatementKind::Read
        || analysis.explain_route
        || analysis.sql.contains('$')
    {
        return None;
    }
    let mut taken: Vec<Taken> = Vec::new();
    let flow = visit_expressions(&*analysis.statement, |expr| {
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
    if flow.is_break() {
        return None;
    }
    Some(taken)
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
                (
                    digits.clone(),
                    n.to_string(),
                    ConstantClass::of_integer(n).oid(),
                )
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

/// Where each constant of `taken` is in `sql`, in text order, with its
/// parameter's value and type, after checking that the text there is exactly
/// the constant as written; `None` if any is not, or two overlap.
fn located(sql: &str, taken: Vec<Taken>) -> Option<Vec<(Range<usize>, String, u32)>> {
    let lines = line_starts(sql);
    let offset = |location: Location| byte_offset(sql, &lines, location.line, location.column);
    let mut pieces = Vec::with_capacity(taken.len());
    for constant in taken {
        let (start, end) = (offset(constant.span.start), offset(constant.span.end));
        if sql.get(start..end)? != constant.written {
            return None;
        }
        pieces.push((start..end, constant.value, constant.oid));
    }
    pieces.sort_by_key(|p| p.0.start);
    if pieces.windows(2).any(|w| w[0].0.end > w[1].0.start) {
        return None;
    }
    Some(pieces)
}

/// `sql` with each piece's range (in text order, not overlapping) replaced
/// by its parameter.
fn cut(
    sql: &str,
    pieces: impl ExactSizeIterator<Item = (Range<usize>, String, u32)>,
) -> Parameterized {
    let mut out = String::with_capacity(sql.len());
    let mut values = Vec::with_capacity(pieces.len());
    let mut types = Vec::with_capacity(pieces.len());
    let mut at = 0;
    for (n, (range, text, oid)) in pieces.enumerate() {
        out.push_str(&sql[at..range.start]);
        out.push('$');
        out.push_str(&(n + 1).to_string());
        values.push(text);
        types.push(oid);
        at = range.end;
    }
    out.push_str(&sql[at..]);
    Parameterized {
        sql: out,
        values,
        types,
    }
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
    fn a_shape_parameterises_its_other_texts_as_parameterize_does() {
        let analyze = |sql| analyze_statement(sql, Dialect::Postgres).expect("parses");
        let key = |sql| crate::shape_key(sql, Dialect::Postgres);
        for (first, later, expected) in [
            (
                "SELECT a FROM t WHERE id = 1 AND s = 'x' AND n >= 3000000000 LIMIT 3",
                "SELECT a FROM t WHERE id = 0099 AND s = 'it''s é' AND n >= 4000000000 LIMIT 3",
                "slots",
            ),
            (
                "SELECT a FROM t WHERE 7 <> b AND c = 1",
                "SELECT a FROM t WHERE 7 <> b AND c = 2",
                "each",
            ),
            (
                "SELECT a FROM t WHERE s = '$'",
                "SELECT a FROM t WHERE s = 'x'",
                "each",
            ),
            (
                "SELECT a FROM t WHERE lower(s) = 'a'",
                "SELECT a FROM t WHERE lower(s) = 'b'",
                "never",
            ),
            ("SELECT 1", "SELECT 1", "never"),
        ] {
            let shape = ParameterShape::of(&analyze(first)).expect("parsed");
            let kind = match shape {
                ParameterShape::Slots(_) => "slots",
                ParameterShape::Each => "each",
                ParameterShape::Never => "never",
            };
            assert_eq!(kind, expected, "{first}");
            assert_eq!(key(first).id, key(later).id, "{later}");
            let later_analysis = analyze(later);
            assert_eq!(
                shape.apply(&later_analysis),
                parameterize(&later_analysis),
                "{later}"
            );
        }
    }

    #[test]
    fn the_same_shape_with_other_constants_gives_the_same_text() {
        let a = shape("SELECT abalance FROM pgbench_accounts WHERE aid = 1").expect("one");
        let b = shape("SELECT abalance FROM pgbench_accounts WHERE aid = 984312").expect("one");
        assert_eq!(a.sql, b.sql);
        assert_eq!(a.types, b.types);
    }
}
