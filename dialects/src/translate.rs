//! Translation between dialects.
//!
//! polyglot-sql parses the source and prints the target. Before that, Floe's
//! own rules rewrite, on `sqlparser`'s AST of the source, what polyglot-sql
//! 0.13 translates into SQL that runs but means something else (MySQL's
//! `LOG(x)` is the natural log, PostgreSQL's the decimal one; `LENGTH` counts
//! bytes in MySQL and characters in PostgreSQL; `DATE_FORMAT` codes are not
//! `TO_CHAR` codes; ...), and refuse, naming the construct, what the target
//! cannot express. Each rule has a test here; the execution-verified corpus
//! (issue #7) measures the whole.

use std::ops::ControlFlow;

use polyglot_sql::DialectType;
use sqlparser::ast::{
    BinaryOperator, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    Statement, Value, ValueWithSpan, visit_expressions_mut,
};
use sqlparser::parser::Parser;

use crate::{Dialect, Error, Result, analyze, split};

/// Translates every statement of `sql` from `from` to `to`, one string each.
///
/// ```
/// use floe_dialects::{translate, Dialect};
///
/// let pg = translate("SELECT IFNULL(a, 0), LOG(b) FROM t", Dialect::MySql, Dialect::Postgres)?;
/// assert_eq!(pg, vec!["SELECT COALESCE(a, 0), LN(b) FROM t"]);
/// # Ok::<(), floe_dialects::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Syntax`] when the text is not valid in `from`;
/// [`Error::Untranslatable`] naming the construct when `to` cannot express it.
pub fn translate(sql: &str, from: Dialect, to: Dialect) -> Result<Vec<String>> {
    if from == to {
        return Ok(split(sql, from)?.into_iter().map(str::to_owned).collect());
    }
    let mut out = Vec::new();
    for mut analysis in analyze(sql, from)? {
        let changed = rewrite(&mut analysis.statement, from, to)?;
        // Print the source again only when a rule changed it: the client's own
        // text is what polyglot-sql reads best.
        let source = if changed {
            analysis.statement.to_string()
        } else {
            analysis.sql.clone()
        };
        let translated = polyglot_sql::transpile(&source, polyglot(from), polyglot(to))
            .map_err(|e| polyglot_error(e, from, to))?;
        for text in translated {
            out.push(restore(text, to)?);
        }
    }
    Ok(out)
}

/// The prefix of the functions Floe's rules write for what polyglot-sql would
/// otherwise print wrongly; `restore` turns them back after it.
const KEEP: &str = "floe_keep_";

/// Replaces the marker functions in polyglot-sql's output: `floe_keep_f(..)`
/// becomes `f(..)`, and `floe_keep_int_div(a, b)` MySQL's `a DIV b`.
fn restore(text: String, to: Dialect) -> Result<String> {
    if !text.to_lowercase().contains(KEEP) {
        return Ok(text);
    }
    let parser_dialect = to.parser_dialect();
    let mut statements = Parser::parse_sql(parser_dialect.as_ref(), &text)?;
    for statement in &mut statements {
        let _ = visit_expressions_mut(statement, |expr| {
            if let Expr::Function(function) = expr {
                let name = function.name.to_string().to_lowercase();
                if let Some(real) = name.strip_prefix(KEEP) {
                    if real == "int_div"
                        && let Some([a, b]) = args(function).as_deref()
                    {
                        *expr = Expr::BinaryOp {
                            left: Box::new((*a).clone()),
                            op: BinaryOperator::MyIntegerDivide,
                            right: Box::new((*b).clone()),
                        };
                    } else {
                        function.name =
                            sqlparser::ast::ObjectName::from(vec![sqlparser::ast::Ident::new(
                                real.to_uppercase(),
                            )]);
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    Ok(statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; "))
}

fn polyglot(dialect: Dialect) -> DialectType {
    match dialect {
        Dialect::Postgres => DialectType::PostgreSQL,
        Dialect::MySql => DialectType::MySQL,
        Dialect::DataFusion => DialectType::DataFusion,
        Dialect::DuckDb => DialectType::DuckDB,
        Dialect::Trino => DialectType::Trino,
    }
}

fn polyglot_error(e: polyglot_sql::Error, from: Dialect, to: Dialect) -> Error {
    match e {
        polyglot_sql::Error::Unsupported { feature, .. } => Error::Untranslatable {
            construct: feature,
            from,
            to,
        },
        polyglot_sql::Error::Tokenize { message, .. }
        | polyglot_sql::Error::Parse { message, .. } => Error::Syntax { message },
        other => Error::Unsupported(format!("translating {from} to {to}: {other}")),
    }
}

fn untranslatable(construct: impl Into<String>, from: Dialect, to: Dialect) -> Error {
    Error::Untranslatable {
        construct: construct.into(),
        from,
        to,
    }
}

/// Applies Floe's rules for `from` → `to`; true when anything changed.
fn rewrite(statement: &mut Statement, from: Dialect, to: Dialect) -> Result<bool> {
    let mut changed = false;
    let mut failure = None;
    let _ = visit_expressions_mut(statement, |expr| {
        match rewrite_expr(expr, from, to) {
            Ok(Some(new)) => {
                *expr = new;
                changed = true;
            }
            Ok(None) => {}
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(changed),
    }
}

/// The plain positional arguments of a call, or `None` for anything fancier
/// (`DISTINCT`, named arguments, `ORDER BY` inside the call).
fn args(function: &Function) -> Option<Vec<&Expr>> {
    let FunctionArguments::List(list) = &function.args else {
        return matches!(function.args, FunctionArguments::None).then(Vec::new);
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// Parses an expression Floe wrote, in the source dialect.
fn parse_expr(text: &str, dialect: Dialect) -> Result<Expr> {
    let parser_dialect = dialect.parser_dialect();
    Ok(Parser::new(parser_dialect.as_ref())
        .try_with_sql(text)?
        .parse_expr()?)
}

fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

fn negative_integer(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(ValueWithSpan {
                value: Value::Number(n, _),
                ..
            }) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn is_integer_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) if n.parse::<i64>().is_ok())
}

/// One expression's rewrite, if a rule applies.
fn rewrite_expr(expr: &Expr, from: Dialect, to: Dialect) -> Result<Option<Expr>> {
    let mysql_source = from == Dialect::MySql;
    let mysql_target = to == Dialect::MySql;
    match expr {
        // MySQL's CAST to CHAR gives a string of any length (CHAR) or cut to n
        // characters (CHAR(n)), never padded; elsewhere CHAR is CHAR(1) and
        // CHAR(n) pads with spaces.
        Expr::Cast {
            expr: inner,
            data_type: DataType::Char(length) | DataType::Character(length),
            ..
        } if mysql_source => match length {
            None => {
                let mut cast = expr.clone();
                if let Expr::Cast { data_type, .. } = &mut cast {
                    *data_type = DataType::Varchar(None);
                }
                Ok(Some(cast))
            }
            // polyglot-sql prints a MySQL VARCHAR(n) cast as CHAR(n): cut instead.
            Some(length) => Ok(Some(parse_expr(
                &format!("LEFT(CAST({inner} AS VARCHAR), {length})"),
                from,
            )?)),
        },
        // PostgreSQL divides integers as integers; MySQL's `/` gives a
        // decimal. (polyglot-sql prints MySQL's `DIV` as a function MySQL does
        // not have, so the operator is put back after it: see `restore`.)
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Divide,
            right,
        } if mysql_target && is_integer_literal(left) && is_integer_literal(right) => Ok(Some(
            parse_expr(&format!("{KEEP}int_div({left}, {right})"), from)?,
        )),
        // A negative start counts from the end in MySQL only.
        Expr::Substring {
            expr: s,
            substring_from: Some(start),
            substring_for,
            ..
        } => match (negative_integer(start), substring_for) {
            (Some(n), None) if mysql_source => {
                Ok(Some(parse_expr(&format!("RIGHT({s}, {n})"), from)?))
            }
            (Some(n), Some(len)) if mysql_source => Ok(Some(parse_expr(
                &format!("SUBSTRING({s}, CHAR_LENGTH({s}) - {n} + 1, {len})"),
                from,
            )?)),
            (Some(_), _) if mysql_target => Err(untranslatable(
                "SUBSTRING with a start before the first character",
                from,
                to,
            )),
            _ => Ok(None),
        },
        Expr::Function(function) => {
            let name = function.name.to_string().to_lowercase();
            let Some(args) = args(function) else {
                return Ok(None);
            };
            let text = |e: &Expr| e.to_string();
            let rewritten = match (name.as_str(), args.as_slice()) {
                // Natural logarithm in MySQL, decimal in the others.
                ("log", [x]) if mysql_source => Some(format!("LN({})", text(x))),
                ("log", [x]) if mysql_target => Some(format!("LOG10({})", text(x))),
                // Bytes in MySQL, characters in the others.
                ("length", [s]) if mysql_source => Some(format!("OCTET_LENGTH({})", text(s))),
                ("length" | "char_length" | "character_length", [s]) if mysql_target => {
                    Some(format!("{KEEP}char_length({})", text(s)))
                }
                ("if", [c, a, b]) if mysql_source => Some(format!(
                    "CASE WHEN {} THEN {} ELSE {} END",
                    text(c),
                    text(a),
                    text(b)
                )),
                // MySQL's LEAST/GREATEST are NULL when any argument is; the
                // others skip NULLs.
                ("least" | "greatest", list) if mysql_source && list.len() >= 2 => Some(format!(
                    "CASE WHEN {} THEN NULL ELSE {}({}) END",
                    list.iter()
                        .map(|a| format!("{} IS NULL", text(a)))
                        .collect::<Vec<_>>()
                        .join(" OR "),
                    name.to_uppercase(),
                    list.iter().map(|a| text(a)).collect::<Vec<_>>().join(", ")
                )),
                ("least" | "greatest", list) if mysql_target && list.len() >= 2 => {
                    let coalesced: Vec<String> = (0..list.len())
                        .map(|i| {
                            let mut order = vec![text(list[i])];
                            order.extend(
                                list.iter()
                                    .enumerate()
                                    .filter(|(j, _)| *j != i)
                                    .map(|(_, a)| text(a)),
                            );
                            format!("COALESCE({})", order.join(", "))
                        })
                        .collect();
                    Some(format!("{}({})", name.to_uppercase(), coalesced.join(", ")))
                }
                // MySQL's CONCAT is NULL when any argument is; the others
                // skip NULLs.
                ("concat", list) if mysql_source && !list.is_empty() => Some(format!(
                    "CASE WHEN {} THEN NULL ELSE CONCAT({}) END",
                    list.iter()
                        .map(|a| format!("{} IS NULL", text(a)))
                        .collect::<Vec<_>>()
                        .join(" OR "),
                    list.iter().map(|a| text(a)).collect::<Vec<_>>().join(", ")
                )),
                // polyglot-sql turns every date_trunc into DATE(x).
                ("date_trunc", [unit, x]) if mysql_target => {
                    let pattern = match string_literal(unit).map(str::to_lowercase).as_deref() {
                        Some("year") => "%Y-01-01 00:00:00",
                        Some("month") => "%Y-%m-01 00:00:00",
                        Some("day") => "%Y-%m-%d 00:00:00",
                        Some("hour") => "%Y-%m-%d %H:00:00",
                        Some("minute") => "%Y-%m-%d %H:%i:00",
                        Some("second") => "%Y-%m-%d %H:%i:%s",
                        _ => {
                            return Err(untranslatable("date_trunc to this unit", from, to));
                        }
                    };
                    Some(format!(
                        "CAST({KEEP}date_format({}, '{pattern}') AS TIMESTAMP)",
                        text(x)
                    ))
                }
                ("date_format", [d, format]) if mysql_source && to != Dialect::Trino => {
                    let Some(format) = string_literal(format) else {
                        return Err(untranslatable(
                            "DATE_FORMAT with a format that is not a literal",
                            from,
                            to,
                        ));
                    };
                    Some(date_format(&text(d), format, from, to)?)
                }
                _ => None,
            };
            rewritten.map(|text| parse_expr(&text, from)).transpose()
        }
        _ => Ok(None),
    }
}

/// MySQL's `DATE_FORMAT(d, 'fmt')` in the target's own function and codes.
fn date_format(date: &str, format: &str, from: Dialect, to: Dialect) -> Result<String> {
    // (MySQL code, PostgreSQL TO_CHAR pattern, strftime / chrono pattern)
    const CODES: &[(char, &str, &str)] = &[
        ('Y', "YYYY", "%Y"),
        ('y', "YY", "%y"),
        ('m', "MM", "%m"),
        ('c', "FMMM", "%-m"),
        ('d', "DD", "%d"),
        ('e', "FMDD", "%-d"),
        ('H', "HH24", "%H"),
        ('k', "FMHH24", "%-H"),
        ('h', "HH12", "%I"),
        ('I', "HH12", "%I"),
        ('l', "FMHH12", "%-I"),
        ('i', "MI", "%M"),
        ('s', "SS", "%S"),
        ('S', "SS", "%S"),
        ('f', "US", "%6f"),
        ('p', "AM", "%p"),
        ('M', "FMMonth", "%B"),
        ('b', "Mon", "%b"),
        ('W', "FMDay", "%A"),
        ('a', "Dy", "%a"),
        ('j', "DDD", "%j"),
        ('T', "HH24:MI:SS", "%H:%M:%S"),
        ('r', "HH12:MI:SS AM", "%I:%M:%S %p"),
    ];
    let postgres = matches!(to, Dialect::Postgres);
    let mut pattern = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            if postgres && c.is_ascii_alphabetic() {
                // Letters are pattern codes in TO_CHAR; quote them.
                pattern.push('"');
                pattern.push(c);
                pattern.push('"');
            } else if !postgres && c == '%' {
                pattern.push_str("%%");
            } else {
                pattern.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('%') => pattern.push_str(if postgres { "%" } else { "%%" }),
            Some(code) => match CODES.iter().find(|(k, _, _)| *k == code) {
                Some((_, pg, strftime)) => pattern.push_str(if postgres { pg } else { strftime }),
                None => {
                    return Err(untranslatable(
                        format!("DATE_FORMAT code %{code}"),
                        from,
                        to,
                    ));
                }
            },
            None => pattern.push('%'),
        }
    }
    let quoted = pattern.replace('\'', "''");
    Ok(match to {
        Dialect::Postgres | Dialect::DataFusion => format!("TO_CHAR({date}, '{quoted}')"),
        _ => format!("STRFTIME({date}, '{quoted}')"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str, from: Dialect, to: Dialect) -> String {
        let mut out = translate(sql, from, to).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(out.len(), 1, "{out:?}");
        out.remove(0)
    }

    #[test]
    fn same_dialect_passes_text_through() {
        assert_eq!(
            translate("SELECT 1; SELECT 2", Dialect::MySql, Dialect::MySql).expect("ok"),
            vec!["SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn mysql_functions_keep_their_meaning_in_postgres() {
        let pg = one(
            "SELECT LOG(x), LENGTH(s), IF(a > 1, 'y', 'n'), SUBSTR(s, -4), CAST(n AS CHAR) FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(pg.contains("LN(x)"), "{pg}");
        assert!(pg.to_uppercase().contains("OCTET_LENGTH(S)"), "{pg}");
        assert!(pg.contains("CASE WHEN a > 1 THEN 'y' ELSE 'n' END"), "{pg}");
        assert!(pg.to_uppercase().contains("RIGHT(S, 4)"), "{pg}");
        assert!(!pg.contains("AS CHAR)"), "{pg}");
        let pg = one(
            "SELECT LEAST(a, b) FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(pg.contains("IS NULL"), "{pg}");
    }

    #[test]
    fn date_format_codes_become_the_targets_codes() {
        let pg = one(
            "SELECT DATE_FORMAT(d, '%Y-%m at %H:%i') FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(
            pg.contains(r#"TO_CHAR(d, 'YYYY-MM "a""t" HH24:MI')"#),
            "{pg}"
        );
        let df = one(
            "SELECT DATE_FORMAT(d, '%Y-%m') FROM t",
            Dialect::MySql,
            Dialect::DataFusion,
        );
        assert!(
            df.contains("'%Y-%m'") && df.to_uppercase().contains("TO_CHAR"),
            "{df}"
        );
        let err = translate(
            "SELECT DATE_FORMAT(d, '%X') FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        )
        .expect_err("unknown code");
        assert!(err.to_string().contains("%X"), "{err}");
        let err = translate(
            "SELECT DATE_FORMAT(d, f) FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        )
        .expect_err("not a literal");
        assert!(err.to_string().contains("DATE_FORMAT"), "{err}");
    }

    #[test]
    fn postgres_functions_keep_their_meaning_in_mysql() {
        let my = one(
            "SELECT log(x), length(s), 7 / 2, least(a, b) FROM t",
            Dialect::Postgres,
            Dialect::MySql,
        );
        assert!(my.to_uppercase().contains("LOG10(X)"), "{my}");
        assert!(my.to_uppercase().contains("CHAR_LENGTH(S)"), "{my}");
        assert!(my.contains("7 DIV 2"), "{my}");
        assert!(my.to_uppercase().contains("COALESCE(A, B)"), "{my}");
        let err = translate(
            "SELECT substr(s, -1, 3) FROM t",
            Dialect::Postgres,
            Dialect::MySql,
        )
        .expect_err("negative start");
        assert!(err.to_string().contains("SUBSTRING"), "{err}");
    }

    #[test]
    fn syntax_errors_are_errors() {
        assert!(matches!(
            translate("SELEC 1", Dialect::MySql, Dialect::Postgres),
            Err(Error::Syntax { .. })
        ));
    }
}
