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
    BinaryOperator, CastKind, DataType, DateTimeField, Expr, Ident, Interval, ObjectName,
    Statement, visit_expressions_mut,
};
use sqlparser::parser::Parser;

use crate::rules::{KEEP, Rules, args};
use crate::{ColumnTypes, Dialect, Error, Result, analyze, split};

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
/// Column types are unknown here: a construct whose meaning depends on them
/// (dividing two columns for MySQL, a date column plus a number) is refused;
/// [`translate_with`] takes the types.
///
/// # Errors
///
/// [`Error::Syntax`] when the text is not valid in `from`;
/// [`Error::Untranslatable`] naming the construct when `to` cannot express it.
pub fn translate(sql: &str, from: Dialect, to: Dialect) -> Result<Vec<String>> {
    translate_with(sql, from, to, &ColumnTypes::default())
}

/// [`translate`], knowing the types of the columns the statement may use.
///
/// ```
/// use floe_dialects::{translate_with, ColumnTypes, Dialect};
///
/// let mut types = ColumnTypes::default();
/// types.insert("qty", "integer").insert("signup", "date");
/// let my = translate_with("SELECT qty / 2, signup + 7 FROM t", Dialect::Postgres, Dialect::MySql, &types)?;
/// assert_eq!(my, vec!["SELECT qty DIV 2, ADDDATE(signup, 7) FROM t"]);
/// # Ok::<(), floe_dialects::Error>(())
/// ```
///
/// # Errors
///
/// As [`translate`].
pub fn translate_with(
    sql: &str,
    from: Dialect,
    to: Dialect,
    types: &ColumnTypes,
) -> Result<Vec<String>> {
    Ok(translate_tracked(sql, from, to, types)?.0)
}

/// [`translate_with`], also saying whether a rule read a literal's value
/// (then the translation holds for those values only).
pub(crate) fn translate_tracked(
    sql: &str,
    from: Dialect,
    to: Dialect,
    types: &ColumnTypes,
) -> Result<(Vec<String>, bool)> {
    crate::rules::take_literal_read();
    let result = translate_untracked(sql, from, to, types);
    let literal_read = crate::rules::take_literal_read();
    Ok((result?, literal_read))
}

fn translate_untracked(
    sql: &str,
    from: Dialect,
    to: Dialect,
    types: &ColumnTypes,
) -> Result<Vec<String>> {
    if from == to {
        return Ok(split(sql, from)?.into_iter().map(str::to_owned).collect());
    }
    let rules = Rules { from, to, types };
    let mut out = Vec::new();
    for mut analysis in analyze(sql, from)? {
        let mut changed = rewrite(&mut analysis.statement, &rules)?;
        if to == Dialect::DataFusion {
            changed |= fetch_to_limit(&mut analysis.statement);
        }
        if from == Dialect::MySql {
            changed |= mysql_null_order(&mut analysis.statement);
        }
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

/// Applies Floe's rules for `from` → `to` to a parsed statement in place,
/// without printing it: for an engine that plans `sqlparser`'s AST itself
/// (the embedded DataFusion engine reads PostgreSQL's syntax, but some
/// functions differ). True when anything changed.
///
/// ```
/// use floe_dialects::{adapt, analyze, ColumnTypes, Dialect};
///
/// let mut statement = analyze("SELECT mod(a, 3) FROM t FETCH FIRST 2 ROWS ONLY", Dialect::Postgres)?
///     .remove(0)
///     .statement;
/// adapt(&mut statement, Dialect::Postgres, Dialect::DataFusion, &ColumnTypes::default())?;
/// assert_eq!(statement.to_string(), "SELECT (a % 3) FROM t LIMIT 2");
/// # Ok::<(), floe_dialects::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Untranslatable`] naming the construct `to` cannot express.
pub fn adapt(
    statement: &mut Statement,
    from: Dialect,
    to: Dialect,
    types: &ColumnTypes,
) -> Result<bool> {
    let rules = Rules { from, to, types };
    let mut changed = rewrite(statement, &rules)?;
    if to == Dialect::DataFusion {
        changed |= fetch_to_limit(statement);
    }
    Ok(changed)
}

/// MySQL sorts NULLs first ascending and last descending; the others'
/// defaults differ (and differ among themselves), so every `ORDER BY` item of
/// a MySQL statement gets its NULL order spelled out.
fn mysql_null_order(statement: &mut Statement) -> bool {
    use sqlparser::ast::{OrderByKind, Query, VisitMut, VisitorMut};
    struct Nulls(bool);
    impl VisitorMut for Nulls {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let Some(order_by) = &mut query.order_by
                && let OrderByKind::Expressions(items) = &mut order_by.kind
            {
                for item in items {
                    if item.options.nulls_first.is_none() {
                        item.options.nulls_first = Some(item.options.asc != Some(false));
                        self.0 = true;
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Nulls(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

/// `FETCH FIRST n ROWS ONLY` as `LIMIT n`, which DataFusion plans.
fn fetch_to_limit(statement: &mut Statement) -> bool {
    use sqlparser::ast::{LimitClause, Query, VisitMut, VisitorMut};
    struct Fetches(bool);
    impl VisitorMut for Fetches {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let Some(fetch) = &query.fetch else {
                return ControlFlow::Continue(());
            };
            if fetch.percent || fetch.with_ties {
                return ControlFlow::Continue(());
            }
            let quantity = fetch
                .quantity
                .clone()
                .unwrap_or_else(|| Expr::value(sqlparser::ast::Value::Number("1".into(), false)));
            let offset = match query.limit_clause.take() {
                Some(LimitClause::LimitOffset { offset, .. }) => offset,
                Some(other) => {
                    query.limit_clause = Some(other);
                    return ControlFlow::Continue(());
                }
                None => None,
            };
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(quantity),
                offset,
                limit_by: Vec::new(),
            });
            query.fetch = None;
            self.0 = true;
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Fetches(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

/// Replaces the marker functions in polyglot-sql's output: `floe_keep_f(..)`
/// becomes `f(..)`; a few stand for what is not a call: `int_div(a, b)` is
/// MySQL's `a DIV b`, `locate_cs(n, h)` a case-sensitive `LOCATE`,
/// `cast_datetime(x)`, `cast_timestamp(x)`, `cast_bigint(x)`,
/// `cast_integer(x)` and `cast_as(x, 'type')` casts, `interval(n, 'UNIT')` MySQL's
/// `INTERVAL n UNIT`.
fn restore(text: String, to: Dialect) -> Result<String> {
    let lower = text.to_lowercase();
    // DataFusion has no GROUP_CONCAT, which polyglot-sql leaves as is.
    let group_concat = to == Dialect::DataFusion && lower.contains("group_concat");
    if !lower.contains(KEEP) && !group_concat {
        return Ok(text);
    }
    let parser_dialect = to.parser_dialect();
    let mut statements = Parser::parse_sql(parser_dialect.as_ref(), &text)?;
    for statement in &mut statements {
        let _ = visit_expressions_mut(statement, |expr| {
            if let Some(new) = restore_marker(expr) {
                *expr = new;
            } else if group_concat && let Some(new) = string_agg(expr) {
                *expr = new;
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

/// MySQL's `GROUP_CONCAT(x ORDER BY .. SEPARATOR s)` as DataFusion's
/// `STRING_AGG(x, s ORDER BY ..)` (the separator defaults to a comma).
fn string_agg(expr: &Expr) -> Option<Expr> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments};
    let Expr::Function(function) = expr else {
        return None;
    };
    if !function
        .name
        .to_string()
        .eq_ignore_ascii_case("group_concat")
    {
        return None;
    }
    let mut out = function.clone();
    let FunctionArguments::List(list) = &mut out.args else {
        return None;
    };
    if list.args.len() != 1 {
        return None;
    }
    let mut separator = sqlparser::ast::Value::SingleQuotedString(",".to_owned());
    list.clauses.retain(|clause| match clause {
        FunctionArgumentClause::Separator(value) => {
            separator = value.clone();
            false
        }
        _ => true,
    });
    list.args
        .push(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
            separator,
        ))));
    out.name = ObjectName::from(vec![Ident::new("STRING_AGG")]);
    Some(Expr::Function(out))
}

fn restore_marker(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let name = function.name.to_string().to_lowercase();
    let real = name.strip_prefix(KEEP)?;
    let args = args(function);
    let boxed = |e: &Expr| Box::new(e.clone());
    Some(match (real, args.as_deref()) {
        ("int_div", Some([a, b])) => Expr::BinaryOp {
            left: boxed(a),
            op: BinaryOperator::MyIntegerDivide,
            right: boxed(b),
        },
        // polyglot-sql prints MySQL's integer cast targets as SIGNED
        // whatever the target: the rules write these markers instead.
        ("cast_datetime" | "cast_timestamp" | "cast_bigint" | "cast_integer", Some([x])) => {
            Expr::Cast {
                kind: CastKind::Cast,
                expr: boxed(x),
                data_type: match real {
                    "cast_datetime" => DataType::Datetime(None),
                    "cast_timestamp" => {
                        DataType::Timestamp(None, sqlparser::ast::TimezoneInfo::None)
                    }
                    "cast_bigint" => DataType::BigInt(None),
                    _ => DataType::Integer(None),
                },
                array: false,
                format: None,
            }
        }
        ("locate_cs", Some([needle, haystack])) => {
            let mut locate = function.clone();
            locate.name = ObjectName::from(vec![Ident::new("LOCATE")]);
            if let sqlparser::ast::FunctionArguments::List(list) = &mut locate.args {
                list.args[0] = sqlparser::ast::FunctionArg::Unnamed(
                    sqlparser::ast::FunctionArgExpr::Expr(Expr::Collate {
                        expr: boxed(needle),
                        collation: ObjectName::from(vec![Ident::new("utf8mb4_bin")]),
                    }),
                );
                list.args[1] = sqlparser::ast::FunctionArg::Unnamed(
                    sqlparser::ast::FunctionArgExpr::Expr((*haystack).clone()),
                );
            }
            Expr::Function(locate)
        }
        ("cast_as", Some([x, ty])) => {
            let Expr::Value(sqlparser::ast::ValueWithSpan {
                value: sqlparser::ast::Value::SingleQuotedString(ty),
                ..
            }) = ty
            else {
                return None;
            };
            let parser_dialect = Dialect::MySql.parser_dialect();
            let data_type = Parser::new(parser_dialect.as_ref())
                .try_with_sql(ty)
                .and_then(|mut p| p.parse_data_type())
                .ok()?;
            Expr::Cast {
                kind: CastKind::Cast,
                expr: boxed(x),
                data_type,
                array: false,
                format: None,
            }
        }
        ("interval", Some([amount, unit])) => {
            let unit = unit.to_string().trim_matches('\'').to_uppercase();
            let field = match unit.as_str() {
                "YEAR" => DateTimeField::Year,
                "MONTH" => DateTimeField::Month,
                "WEEK" => DateTimeField::Week(None),
                "DAY" => DateTimeField::Day,
                "HOUR" => DateTimeField::Hour,
                "MINUTE" => DateTimeField::Minute,
                _ => DateTimeField::Second,
            };
            Expr::Interval(Interval {
                value: boxed(amount),
                leading_field: Some(field),
                leading_precision: None,
                last_field: None,
                fractional_seconds_precision: None,
            })
        }
        _ => {
            let mut renamed = function.clone();
            renamed.name = ObjectName::from(vec![Ident::new(real.to_uppercase())]);
            Expr::Function(renamed)
        }
    })
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

/// Applies the rules to every expression; true when anything changed.
fn rewrite(statement: &mut Statement, rules: &Rules<'_>) -> Result<bool> {
    let mut changed = false;
    let mut failure = None;
    let _ = visit_expressions_mut(statement, |expr| {
        match rules.rewrite(expr) {
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

    fn typed() -> ColumnTypes {
        let mut types = ColumnTypes::default();
        types
            .insert("qty", "int")
            .insert("amount", "decimal(10,2)")
            .insert("signup", "date")
            .insert("placed_at", "timestamp");
        types
    }

    fn with_types(sql: &str, from: Dialect, to: Dialect) -> String {
        let mut out =
            translate_with(sql, from, to, &typed()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(out.len(), 1, "{out:?}");
        out.remove(0)
    }

    #[test]
    fn mysql_date_functions_become_date_parts() {
        let pg = one(
            "SELECT YEAR(d), DAYOFWEEK(d), WEEKDAY(d), DAYNAME(d), TIME(d) FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(pg.contains("DATE_PART('year', d)"), "{pg}");
        assert!(pg.contains("DATE_PART('dow', d)"), "{pg}");
        assert!(pg.contains("+ 6) % 7)"), "{pg}");
        assert!(pg.contains("TO_CHAR(d, 'FMDay')"), "{pg}");
        let pg = one(
            "SELECT TIMESTAMPDIFF(DAY, a, b), STR_TO_DATE('2024-03-05', '%Y-%m-%d') FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(pg.contains("86400"), "{pg}");
        assert!(pg.contains("TO_DATE('2024-03-05', 'YYYY-MM-DD')"), "{pg}");
    }

    #[test]
    fn mysql_string_functions_keep_their_meaning() {
        let pg = one(
            "SELECT LOCATE('a', s), FIELD(s, 'x', 'y'), ELT(2, 'a', 'b'), SPACE(2), CAST(x AS SIGNED), CONVERT(n, CHAR) FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(pg.contains("STRPOS(LOWER(s), LOWER('a'))"), "{pg}");
        assert!(pg.contains("WHEN s = 'x' THEN 1"), "{pg}");
        assert!(pg.contains("REPEAT(' ', 2)"), "{pg}");
        assert!(pg.contains("AS BIGINT)"), "{pg}");
        assert!(pg.contains("CAST(n AS TEXT)"), "{pg}");
        let err =
            translate("SELECT ORD(s) FROM t", Dialect::MySql, Dialect::Postgres).expect_err("ORD");
        assert!(err.to_string().contains("ORD"), "{err}");
        let pg = one(
            "SELECT GROUP_CONCAT(id ORDER BY id) FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(pg.contains("CAST(id AS TEXT)"), "{pg}");
    }

    #[test]
    fn date_arithmetic_follows_the_column_types() {
        let pg = with_types(
            "SELECT DATE_ADD(signup, INTERVAL 7 DAY), placed_at + INTERVAL 1 DAY FROM t",
            Dialect::MySql,
            Dialect::Postgres,
        );
        assert!(pg.starts_with("SELECT CAST("), "{pg}");
        assert!(!pg.contains("placed_at + INTERVAL '1 DAY' AS DATE"), "{pg}");
        let my = with_types(
            "SELECT qty / 2, amount / 2, signup + 7, DATE '2024-12-31' - signup, placed_at + INTERVAL '2 hours' FROM t",
            Dialect::Postgres,
            Dialect::MySql,
        );
        assert!(my.contains("qty DIV 2"), "{my}");
        assert!(my.contains("amount / 2"), "{my}");
        assert!(my.contains("ADDDATE(signup, 7)"), "{my}");
        assert!(my.contains("DATEDIFF("), "{my}");
        assert!(my.contains("INTERVAL '2' HOUR) AS DATETIME)"), "{my}");
        let err = translate("SELECT a / b FROM t", Dialect::Postgres, Dialect::MySql)
            .expect_err("unknown types");
        assert!(err.to_string().contains("division"), "{err}");
    }

    #[test]
    fn postgres_functions_become_mysql_equivalents() {
        let my = one(
            "SELECT btrim(s), strpos(s, 'a'), trunc(x), split_part(s, ',', 2), count(*) FILTER (WHERE x > 2), bool_and(b), extract(dow FROM d) FROM t",
            Dialect::Postgres,
            Dialect::MySql,
        );
        assert!(my.contains("TRIM(s)"), "{my}");
        assert!(my.contains("LOCATE('a' COLLATE utf8mb4_bin, s)"), "{my}");
        assert!(my.contains("TRUNCATE(x, 0)"), "{my}");
        assert!(
            my.contains("SUBSTRING_INDEX(SUBSTRING_INDEX(s, ',', 2), ',', -1)"),
            "{my}"
        );
        assert!(my.contains("COUNT(CASE WHEN x > 2 THEN 1 END)"), "{my}");
        assert!(my.contains("MIN(b)"), "{my}");
        assert!(my.contains("DAYOFWEEK(d) - 1"), "{my}");
        let err = translate(
            "SELECT initcap(s) FROM t",
            Dialect::Postgres,
            Dialect::MySql,
        )
        .expect_err("initcap");
        assert!(err.to_string().contains("initcap"), "{err}");
    }

    #[test]
    fn mysql_becomes_datafusion_with_mysql_meaning() {
        let df = one(
            "SELECT GROUP_CONCAT(name ORDER BY name SEPARATOR ';'), 7 DIV 2, qty / 2, DATE_ADD(d, INTERVAL 7 DAY) FROM t ORDER BY city DESC",
            Dialect::MySql,
            Dialect::DataFusion,
        );
        assert!(
            df.contains("STRING_AGG(CAST(name AS TEXT), ';' ORDER BY name"),
            "{df}"
        );
        assert!(df.contains("CAST(7 AS BIGINT) / CAST(2 AS BIGINT)"), "{df}");
        assert!(df.contains("CAST(qty AS DOUBLE) / 2"), "{df}");
        assert!(df.contains("(d + INTERVAL '7' DAY)"), "{df}");
        assert!(df.contains("city DESC NULLS LAST"), "{df}");
        let df = one(
            "SELECT CAST(x AS TINYINT UNSIGNED), CAST(y AS DATETIME) FROM t",
            Dialect::MySql,
            Dialect::DataFusion,
        );
        assert!(df.contains("CAST(x AS TINYINT UNSIGNED)"), "{df}");
        assert!(df.contains("CAST(y AS DATETIME)"), "{df}");
    }

    #[test]
    fn postgres_is_adapted_for_datafusion() {
        let mut types = ColumnTypes::default();
        types.insert("amount", "numeric(10,2)").insert("d", "date");
        let mut statement = crate::analyze(
            "SELECT to_char(ts, 'FMDay DD/MM/YYYY HH24:MI'), CAST(amount AS integer), d + INTERVAL '1 month', sign(x) FROM t FETCH FIRST 3 ROWS ONLY",
            Dialect::Postgres,
        )
        .expect("parse")
        .remove(0)
        .statement;
        assert!(
            adapt(
                &mut statement,
                Dialect::Postgres,
                Dialect::DataFusion,
                &types
            )
            .expect("adapt")
        );
        let text = statement.to_string();
        assert!(text.contains("'%A %d/%m/%Y %H:%M'"), "{text}");
        assert!(text.contains("CAST(ROUND(amount) AS INTEGER)"), "{text}");
        assert!(text.contains("AS TIMESTAMP)"), "{text}");
        assert!(text.contains("signum(x)"), "{text}");
        assert!(text.ends_with("LIMIT 3"), "{text}");
        // Month names are padded in PostgreSQL unless FM precedes them.
        let mut padded = crate::analyze("SELECT to_char(ts, 'Month') FROM t", Dialect::Postgres)
            .expect("parse")
            .remove(0)
            .statement;
        let err = adapt(&mut padded, Dialect::Postgres, Dialect::DataFusion, &types)
            .expect_err("padded month");
        assert!(err.to_string().contains("Month"), "{err}");
    }

    #[test]
    fn syntax_errors_are_errors() {
        assert!(matches!(
            translate("SELEC 1", Dialect::MySql, Dialect::Postgres),
            Err(Error::Syntax { .. })
        ));
    }
}
