//! Floe's translation rules: rewrites of the source statement, on `sqlparser`'s
//! AST, of what polyglot-sql 0.13 would otherwise print as SQL that fails or,
//! worse, runs and means something else.
//!
//! A rule writes its replacement as text in the *source* dialect (polyglot-sql
//! reads it next). What the target has and the source does not is written as
//! a call to `floe_keep_<name>(..)`, which polyglot-sql passes through as an
//! unknown function and `restore` turns into the target's `<name>(..)` (or
//! into the operator or cast a few special markers stand for) afterwards.
//! Every rule is covered by the execution-verified corpus in `conformance/`.

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, DateTimeField, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArguments, Interval, UnaryOperator, Value, ValueWithSpan,
};
use sqlparser::parser::Parser;

use crate::types::{ColumnTypes, TypeClass, class_of};
use crate::{Dialect, Error, Result};

/// The prefix of the functions the rules write for the target's own
/// functions; `restore` turns them back after polyglot-sql.
pub(crate) const KEEP: &str = "floe_keep_";

/// The rules for one translation.
pub(crate) struct Rules<'a> {
    pub from: Dialect,
    pub to: Dialect,
    pub types: &'a ColumnTypes,
}

fn untranslatable(construct: impl Into<String>, from: Dialect, to: Dialect) -> Error {
    Error::Untranslatable {
        construct: construct.into(),
        from,
        to,
    }
}

/// The plain positional arguments of a call, or `None` for anything fancier
/// (`DISTINCT`, named arguments, `ORDER BY` inside the call).
pub(crate) fn args(function: &Function) -> Option<Vec<&Expr>> {
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

/// Parses an expression Floe wrote, in `dialect`.
fn parse_expr(text: &str, dialect: Dialect) -> Result<Expr> {
    let parser_dialect = dialect.parser_dialect();
    Ok(Parser::new(parser_dialect.as_ref())
        .try_with_sql(text)?
        .parse_expr()?)
}

thread_local! {
    /// Set when a rule reads a literal's value: such a translation holds for
    /// that value only, and the translation cache must not reuse it for the
    /// statement's shape.
    static LITERAL_READ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a rule read a literal's value since the last call; resets.
pub(crate) fn take_literal_read() -> bool {
    LITERAL_READ.with(|read| read.replace(false))
}

fn note_literal_read() {
    LITERAL_READ.with(|read| read.set(true));
}

fn string_literal(expr: &Expr) -> Option<&str> {
    let value = string_literal_value(expr);
    if value.is_some() {
        note_literal_read();
    }
    value
}

fn string_literal_value(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

fn integer_literal(expr: &Expr) -> Option<i64> {
    let value = integer_literal_value(expr);
    if value.is_some() {
        note_literal_read();
    }
    value
}

fn integer_literal_value(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::Number(n, _),
            ..
        }) => n.parse().ok(),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => integer_literal_value(expr).map(|n| -n),
        _ => None,
    }
}

/// The unit of an interval of one field, and its amount as written.
fn interval_unit(interval: &Interval) -> Option<(String, DateTimeField)> {
    if interval.last_field.is_some() {
        return None;
    }
    match &interval.leading_field {
        Some(field) => Some((interval.value.to_string(), field.clone())),
        // PostgreSQL's `INTERVAL '2 hours'`.
        None => {
            let text = string_literal(&interval.value)?;
            let mut words = text.split_whitespace();
            let (amount, unit) = (words.next()?, words.next()?);
            if words.next().is_some() || amount.parse::<i64>().is_err() {
                return None;
            }
            let unit = unit.to_ascii_lowercase();
            let field = match unit.strip_suffix('s').unwrap_or(&unit) {
                "year" => DateTimeField::Year,
                "month" | "mon" => DateTimeField::Month,
                "week" => DateTimeField::Week(None),
                "day" => DateTimeField::Day,
                "hour" => DateTimeField::Hour,
                "minute" | "min" => DateTimeField::Minute,
                "second" | "sec" => DateTimeField::Second,
                _ => return None,
            };
            Some((format!("'{amount}'"), field))
        }
    }
}

/// True when a unit keeps a MySQL `DATE` a `DATE` in `DATE_ADD`.
fn whole_days(field: &DateTimeField) -> bool {
    matches!(
        field,
        DateTimeField::Year
            | DateTimeField::Quarter
            | DateTimeField::Month
            | DateTimeField::Week(_)
            | DateTimeField::Day
    )
}

/// The interval operand of `DATE_ADD` / `DATE_SUB` / `d ± INTERVAL ..`.
fn interval_of(expr: &Expr) -> Option<&Interval> {
    match expr {
        Expr::Interval(interval) => Some(interval),
        _ => None,
    }
}

impl Rules<'_> {
    fn class(&self, expr: &Expr) -> Option<TypeClass> {
        class_of(expr, self.types, self.from)
    }

    fn parse(&self, text: &str) -> Result<Option<Expr>> {
        parse_expr(text, self.from).map(Some)
    }

    fn refuse(&self, construct: impl Into<String>) -> Error {
        untranslatable(construct, self.from, self.to)
    }

    /// A string literal used as a date or time: typed, so that the target's
    /// overloaded functions know what it is.
    fn temporal(&self, expr: &Expr) -> String {
        match string_literal(expr) {
            Some(_) if self.from == Dialect::MySql => format!("CAST({expr} AS DATETIME)"),
            Some(_) => format!("CAST({expr} AS TIMESTAMP)"),
            None => expr.to_string(),
        }
    }

    /// One expression's rewrite, if a rule applies.
    pub(crate) fn rewrite(&self, expr: &Expr) -> Result<Option<Expr>> {
        let (from, to) = (self.from, self.to);
        if from == Dialect::MySql && to != Dialect::MySql {
            self.rewrite_from_mysql(expr)
        } else if to == Dialect::MySql && from != Dialect::MySql {
            self.rewrite_to_mysql(expr)
        } else if from == Dialect::Postgres && to == Dialect::DataFusion {
            self.rewrite_postgres_to_datafusion(expr)
        } else {
            Ok(None)
        }
    }

    /// MySQL → PostgreSQL, DataFusion, DuckDB, Trino.
    fn rewrite_from_mysql(&self, expr: &Expr) -> Result<Option<Expr>> {
        let to = self.to;
        let postgres = to == Dialect::Postgres;
        let datafusion = to == Dialect::DataFusion;
        let pg_like = postgres || datafusion;
        match expr {
            // MySQL's CAST to CHAR gives a string of any length (CHAR) or cut to n
            // characters (CHAR(n)), never padded; elsewhere CHAR is CHAR(1) and
            // CHAR(n) pads with spaces.
            Expr::Cast {
                expr: inner,
                data_type: DataType::Char(length) | DataType::Character(length),
                ..
            } => match length {
                None => Ok(Some(cast(inner, DataType::Varchar(None)))),
                // polyglot-sql prints a MySQL VARCHAR(n) cast as CHAR(n): cut instead.
                Some(length) => self.parse(&format!("LEFT(CAST({inner} AS VARCHAR), {length})")),
            },
            // SIGNED / UNSIGNED are MySQL's integer cast targets; both round.
            Expr::Cast {
                expr: inner,
                data_type:
                    DataType::Signed
                    | DataType::SignedInteger
                    | DataType::Unsigned
                    | DataType::UnsignedInteger,
                ..
            } => match self.class(inner) {
                // DataFusion truncates a decimal cast to an integer; MySQL rounds.
                Some(TypeClass::Exact | TypeClass::Float) if datafusion => {
                    self.parse(&format!("{KEEP}cast_bigint(ROUND({inner}))"))
                }
                _ => self.parse(&format!("{KEEP}cast_bigint({inner})")),
            },
            // DataFusion plans MySQL's cast targets (`DATETIME`, `TINYINT
            // UNSIGNED`, ...) itself; polyglot-sql would rename them.
            Expr::Cast {
                kind: CastKind::Cast,
                expr: inner,
                data_type,
                ..
            } if datafusion => self.parse(&format!(
                "{KEEP}cast_as({inner}, '{}')",
                data_type.to_string().replace('\'', "''")
            )),
            // polyglot-sql prints MySQL integer cast targets as SIGNED, which
            // the others lack (MySQL itself refuses BIGINT there; Floe's
            // embedded engine always took it).
            Expr::Cast {
                expr: inner,
                data_type:
                    DataType::BigInt(_)
                    | DataType::Int(_)
                    | DataType::Integer(_)
                    | DataType::SmallInt(_)
                    | DataType::TinyInt(_),
                ..
            } => {
                let marker = match expr {
                    Expr::Cast {
                        data_type: DataType::BigInt(_),
                        ..
                    } => "cast_bigint",
                    _ => "cast_integer",
                };
                self.parse(&format!("{KEEP}{marker}({inner})"))
            }
            // ... and turns a cast to TIMESTAMP into MySQL's TIMESTAMP() call.
            Expr::Cast {
                expr: inner,
                data_type: DataType::Timestamp(_, sqlparser::ast::TimezoneInfo::None),
                ..
            } => self.parse(&format!("{KEEP}cast_timestamp({inner})")),
            // `CONVERT(x, type)` is a cast (polyglot-sql swaps its operands).
            Expr::Convert {
                expr: inner,
                data_type: Some(data_type),
                charset: None,
                ..
            } => {
                let as_cast = cast(inner, data_type.clone());
                Ok(Some(self.rewrite_from_mysql(&as_cast)?.unwrap_or(as_cast)))
            }
            // A negative start counts from the end in MySQL only.
            Expr::Substring {
                expr: s,
                substring_from: Some(start),
                substring_for,
                ..
            } => match (integer_literal(start), substring_for) {
                (Some(n), None) if n < 0 => self.parse(&format!("RIGHT({s}, {})", -n)),
                (Some(n), Some(len)) if n < 0 => self.parse(&format!(
                    "SUBSTRING({s}, CHAR_LENGTH({s}) - {} + 1, {len})",
                    -n
                )),
                _ => Ok(None),
            },
            // A DATE plus whole days, months or years stays a DATE in MySQL.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Plus | BinaryOperator::Minus,
                right,
            } if interval_of(right)
                .is_some_and(|i| interval_unit(i).is_some_and(|(_, f)| whole_days(&f)))
                && self.class(left) == Some(TypeClass::Date) =>
            {
                self.parse(&format!("CAST({expr} AS DATE)"))
            }
            // DataFusion has no DIV; it divides integers as integers.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::MyIntegerDivide,
                right,
            } if datafusion => self.parse(&format!(
                "({KEEP}cast_bigint({left}) / {KEEP}cast_bigint({right}))"
            )),
            // MySQL's `/` always gives a decimal; DataFusion divides integers
            // as integers.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Divide,
                right,
            } if datafusion
                && !matches!(self.class(left), Some(TypeClass::Exact | TypeClass::Float))
                && !matches!(self.class(right), Some(TypeClass::Exact | TypeClass::Float)) =>
            {
                self.parse(&format!("(CAST({left} AS DOUBLE) / {right})"))
            }
            Expr::Function(function)
                if function
                    .name
                    .to_string()
                    .eq_ignore_ascii_case("group_concat") =>
            {
                Ok(text_aggregate(function).map(Expr::Function))
            }
            Expr::Function(function) => {
                let name = function.name.to_string().to_lowercase();
                let Some(args) = args(function) else {
                    return Ok(None);
                };
                let t = |e: &Expr| e.to_string();
                let list = |a: &[&Expr]| a.iter().map(|e| t(e)).collect::<Vec<_>>().join(", ");
                let date_part = |part: &str, x: &Expr| {
                    format!(
                        "{KEEP}cast_integer({KEEP}date_part('{part}', {}))",
                        self.temporal(x)
                    )
                };
                let rewritten = match (name.as_str(), args.as_slice()) {
                    // Natural logarithm in MySQL, decimal in the others.
                    ("log", [x]) => format!("LN({})", t(x)),
                    ("log", [base, x]) if postgres => format!("{KEEP}log({}, {})", t(base), t(x)),
                    ("log2", [x]) if postgres => format!("{KEEP}log(2, {})", t(x)),
                    // Bytes in MySQL, characters in the others.
                    ("length", [s]) => format!("OCTET_LENGTH({})", t(s)),
                    ("if", [c, a, b]) => {
                        format!("CASE WHEN {} THEN {} ELSE {} END", t(c), t(a), t(b))
                    }
                    // MySQL's LEAST/GREATEST are NULL when any argument is; the
                    // others skip NULLs.
                    ("least" | "greatest", list_args) if list_args.len() >= 2 => format!(
                        "CASE WHEN {} THEN NULL ELSE {}({}) END",
                        any_null(list_args),
                        name.to_uppercase(),
                        list(list_args)
                    ),
                    // MySQL's CONCAT is NULL when any argument is; the others
                    // skip NULLs.
                    ("concat", list_args) if !list_args.is_empty() => format!(
                        "CASE WHEN {} THEN NULL ELSE CONCAT({}) END",
                        any_null(list_args),
                        list(list_args)
                    ),
                    ("date_format", [d, format]) if to != Dialect::Trino => {
                        let Some(format) = string_literal(format) else {
                            return Err(
                                self.refuse("DATE_FORMAT with a format that is not a literal")
                            );
                        };
                        date_format(&t(d), format, self.from, to)?
                    }
                    // Date parts: MySQL's own functions for EXTRACT's fields.
                    (
                        "year" | "month" | "day" | "dayofmonth" | "hour" | "minute" | "quarter",
                        [x],
                    ) if pg_like => {
                        let part = if name == "dayofmonth" {
                            "day"
                        } else {
                            name.as_str()
                        };
                        date_part(part, x)
                    }
                    ("second", [x]) if pg_like => format!(
                        "{KEEP}cast_integer(FLOOR({KEEP}date_part('second', {})))",
                        self.temporal(x)
                    ),
                    ("dayofyear", [x]) if pg_like => date_part("doy", x),
                    // 1 = Sunday in MySQL, 0 = Sunday in PostgreSQL.
                    ("dayofweek", [x]) if pg_like => format!("({} + 1)", date_part("dow", x)),
                    // 0 = Monday in MySQL, 1 = Monday (isodow) in PostgreSQL.
                    ("weekday", [x]) if pg_like => {
                        format!("(({} + 6) % 7)", date_part("dow", x))
                    }
                    ("dayname" | "monthname", [x]) if pg_like => {
                        let pattern = match (name.as_str(), postgres) {
                            ("dayname", true) => "FMDay",
                            ("dayname", false) => "%A",
                            (_, true) => "FMMonth",
                            (_, false) => "%B",
                        };
                        format!("{KEEP}to_char({}, '{pattern}')", self.temporal(x))
                    }
                    ("date", [x]) if datafusion => format!("CAST({} AS DATE)", self.temporal(x)),
                    // DataFusion adds intervals to dates (a DATE stays a DATE
                    // for whole days, as in MySQL) but has no DATE_ADD.
                    ("date_add" | "adddate", [d, interval]) if datafusion => match interval {
                        Expr::Interval(_) => format!("({} + {})", self.temporal(d), t(interval)),
                        days => format!("({} + INTERVAL {} DAY)", self.temporal(d), t(days)),
                    },
                    ("date_sub" | "subdate", [d, interval]) if datafusion => match interval {
                        Expr::Interval(_) => format!("({} - {})", self.temporal(d), t(interval)),
                        days => format!("({} - INTERVAL {} DAY)", self.temporal(d), t(days)),
                    },
                    ("curdate", []) if datafusion => "CURRENT_DATE".to_owned(),
                    ("last_day", [x]) if datafusion => format!(
                        "CAST({KEEP}date_trunc('month', {}) + INTERVAL '1' MONTH - INTERVAL '1' DAY AS DATE)",
                        self.temporal(x)
                    ),
                    ("datediff", [a, b]) if datafusion => format!(
                        "{KEEP}cast_bigint({KEEP}date_part('day', {KEEP}date_trunc('day', {}) - {KEEP}date_trunc('day', {})))",
                        self.temporal(a),
                        self.temporal(b)
                    ),
                    ("sign", [x]) if datafusion => format!("{KEEP}signum({})", t(x)),
                    ("mod", [a, b]) if datafusion => format!("({} % {})", t(a), t(b)),
                    ("ceiling", [x]) if datafusion => format!("CEIL({})", t(x)),
                    ("truncate", [x, d]) if datafusion => {
                        format!("{KEEP}trunc({}, {})", t(x), t(d))
                    }
                    ("unix_timestamp", [x]) if datafusion => {
                        format!("{KEEP}cast_bigint({KEEP}to_unixtime({}))", self.temporal(x))
                    }
                    ("time", [x]) if pg_like => format!("CAST({} AS TIME)", self.temporal(x)),
                    // A DATETIME string is read in the session's time zone in
                    // MySQL; PostgreSQL's timezone() does the same with its own.
                    ("unix_timestamp", [x]) if postgres => format!(
                        "{KEEP}cast_bigint({KEEP}date_part('epoch', {KEEP}timezone({KEEP}current_setting('TimeZone'), CAST({} AS DATETIME))))",
                        t(x)
                    ),
                    ("str_to_date", [s, format]) if pg_like => {
                        let Some(format) = string_literal(format) else {
                            return Err(
                                self.refuse("STR_TO_DATE with a format that is not a literal")
                            );
                        };
                        str_to_date(&t(s), format, self.from, to)?
                    }
                    ("timestampdiff", [unit, a, b]) if pg_like => {
                        timestampdiff(&t(unit), &self.temporal(a), &self.temporal(b), to)
                            .ok_or_else(|| self.refuse(format!("TIMESTAMPDIFF by {unit}")))?
                    }
                    // The date functions with a DATE argument give a DATE in MySQL.
                    ("date_add" | "date_sub" | "adddate" | "subdate", [d, interval])
                        if interval_of(interval)
                            .and_then(interval_unit)
                            .is_some_and(|(_, f)| whole_days(&f))
                            && self.class(d) == Some(TypeClass::Date) =>
                    {
                        format!("CAST({expr} AS DATE)")
                    }
                    // MySQL's default collations ignore case; so does its search.
                    ("locate", [needle, haystack]) if pg_like => locate(needle, haystack, None),
                    ("locate", [needle, haystack, start]) if pg_like => {
                        locate(needle, haystack, Some(start))
                    }
                    ("instr", [haystack, needle]) if pg_like => locate(needle, haystack, None),
                    // DataFusion's substr_index is MySQL's SUBSTRING_INDEX.
                    ("substring_index", [s, delimiter, count]) if datafusion => format!(
                        "{KEEP}substr_index({}, {}, {})",
                        t(s),
                        t(delimiter),
                        t(count)
                    ),
                    ("strcmp", [a, b]) => format!(
                        "CASE WHEN {a} = {b} THEN 0 WHEN {a} < {b} THEN -1 WHEN {a} > {b} THEN 1 END",
                        a = t(a),
                        b = t(b)
                    ),
                    ("space", [n]) => format!("REPEAT(' ', {})", t(n)),
                    ("field", [x, rest @ ..]) if !rest.is_empty() => format!(
                        "CASE {} ELSE 0 END",
                        rest.iter()
                            .enumerate()
                            .map(|(i, v)| format!("WHEN {} = {} THEN {}", t(x), t(v), i + 1))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    ("elt", [n, rest @ ..]) if !rest.is_empty() => format!(
                        "CASE {} {} END",
                        t(n),
                        rest.iter()
                            .enumerate()
                            .map(|(i, v)| format!("WHEN {} THEN {}", i + 1, t(v)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    ("substring_index", [s, delimiter, count]) if postgres => {
                        match integer_literal(count) {
                            Some(n) if n >= 0 => format!(
                                "COALESCE({KEEP}array_to_string({KEEP}trim_array({parts}, GREATEST({KEEP}cardinality({parts}) - {n}, 0)), {d}), CASE WHEN {s} IS NOT NULL AND {d} IS NOT NULL THEN '' END)",
                                parts = format_args!(
                                    "{KEEP}string_to_array({}, {})",
                                    t(s),
                                    t(delimiter)
                                ),
                                d = t(delimiter),
                                s = t(s),
                            ),
                            _ => return Err(self.refuse(
                                "SUBSTRING_INDEX with a count that is not a non-negative literal",
                            )),
                        }
                    }
                    ("hex", [x]) if pg_like => match integer_literal(x) {
                        Some(_) => format!("UPPER({KEEP}to_hex({}))", t(x)),
                        None => return Err(self.refuse("HEX of anything but an integer literal")),
                    },
                    ("conv", _) => return Err(self.refuse("CONV")),
                    // ORD combines the bytes of a multi-byte character.
                    ("ord", _) => return Err(self.refuse("ORD")),
                    _ => return Ok(None),
                };
                self.parse(&rewritten)
            }
            _ => Ok(None),
        }
    }

    /// PostgreSQL → DataFusion: the embedded engine reads PostgreSQL's syntax
    /// but some functions differ.
    fn rewrite_postgres_to_datafusion(&self, expr: &Expr) -> Result<Option<Expr>> {
        match expr {
            // PostgreSQL rounds a decimal cast to an integer; DataFusion truncates.
            Expr::Cast {
                expr: inner,
                data_type:
                    DataType::Int(_)
                    | DataType::Integer(_)
                    | DataType::BigInt(_)
                    | DataType::SmallInt(_)
                    | DataType::Int2(_)
                    | DataType::Int4(_)
                    | DataType::Int8(_),
                ..
            } if matches!(self.class(inner), Some(TypeClass::Exact | TypeClass::Float))
                && !matches!(inner.as_ref(), Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("round")) =>
            {
                let mut rounded = expr.clone();
                if let Expr::Cast { expr: inner, .. } = &mut rounded {
                    **inner = parse_expr(&format!("ROUND({inner})"), self.from)?;
                }
                Ok(Some(rounded))
            }
            // A date plus an interval is a timestamp in PostgreSQL.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Plus | BinaryOperator::Minus,
                right,
            } if interval_of(right).is_some() && self.class(left) == Some(TypeClass::Date) => {
                self.parse(&format!("CAST({expr} AS TIMESTAMP)"))
            }
            Expr::Function(function) => {
                let name = function.name.to_string().to_lowercase();
                let Some(args) = args(function) else {
                    return Ok(None);
                };
                let t = |e: &Expr| e.to_string();
                let rewritten = match (name.as_str(), args.as_slice()) {
                    ("to_char", [x, pattern]) => {
                        let Some(pattern) = string_literal(pattern) else {
                            return Err(self.refuse("to_char with a pattern that is not a literal"));
                        };
                        let chrono = postgres_pattern_to_chrono(pattern)
                            .ok_or_else(|| self.refuse(format!("to_char pattern '{pattern}'")))?;
                        format!("to_char({}, '{}')", t(x), chrono.replace('\'', "''"))
                    }
                    ("mod", [a, b]) => format!("({} % {})", t(a), t(b)),
                    ("sign", [x]) => format!("signum({})", t(x)),
                    ("ceiling", [x]) => format!("ceil({})", t(x)),
                    ("age", _) => return Err(self.refuse("age")),
                    _ => return Ok(None),
                };
                self.parse(&rewritten)
            }
            _ => Ok(None),
        }
    }

    /// PostgreSQL, DataFusion, DuckDB, Trino → MySQL.
    fn rewrite_to_mysql(&self, expr: &Expr) -> Result<Option<Expr>> {
        let from = self.from;
        let postgres_like = matches!(
            from,
            Dialect::Postgres | Dialect::DataFusion | Dialect::Trino
        );
        match expr {
            // Integers divide as integers in PostgreSQL (and DataFusion,
            // Trino); MySQL's `/` gives a decimal, its `DIV` truncates.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Divide,
                right,
            } if postgres_like => match (self.class(left), self.class(right)) {
                (Some(TypeClass::Integer), Some(TypeClass::Integer)) => {
                    self.parse(&format!("{KEEP}int_div({left}, {right})"))
                }
                (Some(l), Some(r)) if l != TypeClass::Integer || r != TypeClass::Integer => Ok(None),
                (Some(l), _) | (_, Some(l)) if matches!(l, TypeClass::Exact | TypeClass::Float) => {
                    Ok(None)
                }
                _ => Err(self.refuse(format!(
                    "`{expr}`: division of values of unknown type (integers divide as integers in {from}, not in MySQL)"
                ))),
            },
            // Date arithmetic in days, and intervals: MySQL adds numbers to a
            // DATE as to a number.
            Expr::BinaryOp { left, op, right }
                if from == Dialect::Postgres
                    && matches!(op, BinaryOperator::Plus | BinaryOperator::Minus) =>
            {
                let minus = *op == BinaryOperator::Minus;
                let (l, r) = (self.class(left), self.class(right));
                if let Some(interval) = interval_of(right).or(interval_of(left).filter(|_| !minus)) {
                    let date = if interval_of(right).is_some() { left } else { right };
                    let Some((amount, field)) = interval_unit(interval) else {
                        return Err(self.refuse(format!("interval {interval}")));
                    };
                    let field = match field {
                        DateTimeField::Week(_) => "WEEK".to_owned(),
                        other => other.to_string(),
                    };
                    // PostgreSQL's date ± interval is a timestamp.
                    return self.parse(&format!(
                        "{KEEP}cast_datetime({KEEP}{}({}, {KEEP}interval({amount}, '{field}')))",
                        if minus { "date_sub" } else { "date_add" },
                        self.temporal(date)
                    ));
                }
                match (l, r, minus) {
                    (Some(TypeClass::Date), Some(TypeClass::Integer), _) => self.parse(&format!(
                        "{KEEP}{}({left}, {right})",
                        if minus { "subdate" } else { "adddate" }
                    )),
                    (Some(TypeClass::Integer), Some(TypeClass::Date), false) => {
                        self.parse(&format!("{KEEP}adddate({right}, {left})"))
                    }
                    (Some(TypeClass::Date), Some(TypeClass::Date), true) => {
                        self.parse(&format!("{KEEP}datediff({left}, {right})"))
                    }
                    (Some(TypeClass::Date), None, _) | (None, Some(TypeClass::Date), _) => Err(self
                        .refuse(format!(
                            "`{expr}`: date arithmetic with a value of unknown type"
                        ))),
                    _ => Ok(None),
                }
            }
            // A negative start counts from the end in MySQL only.
            Expr::Substring {
                substring_from: Some(start),
                ..
            } if integer_literal(start).is_some_and(|n| n < 0) => Err(self.refuse(
                "SUBSTRING with a start before the first character",
            )),
            // PostgreSQL's search is case-sensitive; MySQL's follows the
            // (usually case-insensitive) collation, so pin a binary one.
            Expr::Position { expr: needle, r#in } => {
                self.parse(&format!("{KEEP}locate_cs({needle}, {in})", r#in = r#in))
            }
            Expr::Extract { field, expr: x, .. } if from == Dialect::Postgres => {
                let x = self.temporal(x);
                let text = match field {
                    DateTimeField::Dow => format!("({KEEP}dayofweek({x}) - 1)"),
                    DateTimeField::Isodow => format!("({KEEP}weekday({x}) + 1)"),
                    DateTimeField::Doy => format!("{KEEP}dayofyear({x})"),
                    DateTimeField::Epoch => format!("{KEEP}unix_timestamp({x})"),
                    // ISO weeks; MySQL's EXTRACT(WEEK) counts from Sundays.
                    DateTimeField::Week(_) => format!("{KEEP}week({x}, 3)"),
                    _ => return Ok(None),
                };
                self.parse(&text)
            }
            Expr::Function(function) if function.filter.is_some() => {
                Ok(filtered_aggregate(function).map(Expr::Function))
            }
            Expr::Function(function) => {
                let name = function.name.to_string().to_lowercase();
                let Some(args) = args(function) else {
                    return Ok(None);
                };
                let t = |e: &Expr| e.to_string();
                let rewritten = match (name.as_str(), args.as_slice()) {
                    ("log", [x]) => format!("{KEEP}log10({})", t(x)),
                    ("length" | "char_length" | "character_length", [s]) => {
                        format!("{KEEP}char_length({})", t(s))
                    }
                    ("strpos", [haystack, needle]) => {
                        format!("{KEEP}locate_cs({}, {})", t(needle), t(haystack))
                    }
                    ("btrim", [s]) => format!("TRIM({})", t(s)),
                    ("btrim", [s, chars]) if string_literal(chars).is_some_and(|c| c.chars().count() == 1) => {
                        format!("TRIM(BOTH {} FROM {})", t(chars), t(s))
                    }
                    ("trunc", [x]) => format!("{KEEP}truncate({}, 0)", t(x)),
                    ("trunc", [x, n]) => format!("{KEEP}truncate({}, {})", t(x), t(n)),
                    ("bool_and", [x]) => format!("MIN({})", t(x)),
                    ("bool_or", [x]) => format!("MAX({})", t(x)),
                    ("split_part", [s, delimiter, n]) => {
                        let (Some(d), Some(n)) = (string_literal(delimiter), integer_literal(n)) else {
                            return Err(self.refuse("split_part with a delimiter or field that is not a literal"));
                        };
                        if d.is_empty() || n < 1 {
                            return Err(self.refuse("split_part with an empty delimiter or a field below 1"));
                        }
                        format!(
                            "CASE WHEN {s} IS NULL THEN NULL WHEN {n} <= ({KEEP}char_length({s}) - {KEEP}char_length(REPLACE({s}, {d}, ''))) / {len} + 1 THEN {KEEP}substring_index({KEEP}substring_index({s}, {d}, {n}), {d}, -1) ELSE '' END",
                            s = t(s),
                            d = t(delimiter),
                            len = d.chars().count(),
                        )
                    }
                    // LEAST/GREATEST skip NULLs here and not in MySQL.
                    ("least" | "greatest", list) if list.len() >= 2 => {
                        let coalesced: Vec<String> = (0..list.len())
                            .map(|i| {
                                let mut order = vec![t(list[i])];
                                order.extend(
                                    list.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| t(a)),
                                );
                                format!("COALESCE({})", order.join(", "))
                            })
                            .collect();
                        format!("{}({})", name.to_uppercase(), coalesced.join(", "))
                    }
                    // polyglot-sql turns every date_trunc into DATE(x).
                    ("date_trunc", [unit, x]) => {
                        let pattern = match string_literal(unit).map(str::to_lowercase).as_deref() {
                            Some("year") => "%Y-01-01 00:00:00",
                            Some("month") => "%Y-%m-01 00:00:00",
                            Some("day") => "%Y-%m-%d 00:00:00",
                            Some("hour") => "%Y-%m-%d %H:00:00",
                            Some("minute") => "%Y-%m-%d %H:%i:00",
                            Some("second") => "%Y-%m-%d %H:%i:%s",
                            _ => return Err(self.refuse("date_trunc to this unit")),
                        };
                        format!("CAST({KEEP}date_format({}, '{pattern}') AS TIMESTAMP)", t(x))
                    }
                    ("initcap" | "age" | "regexp_replace" | "array_agg" | "generate_series", _) => {
                        return Err(self.refuse(name));
                    }
                    _ => return Ok(None),
                };
                self.parse(&rewritten)
            }
            _ => Ok(None),
        }
    }
}

fn cast(expr: &Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr.clone()),
        data_type,
        array: false,
        format: None,
    }
}

fn any_null(args: &[&Expr]) -> String {
    args.iter()
        .map(|a| format!("{a} IS NULL"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// `GROUP_CONCAT(x ...)` of a non-text `x`: PostgreSQL's `string_agg` takes
/// text only, so the value is cast first (as MySQL converts it).
fn text_aggregate(function: &Function) -> Option<Function> {
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    // With DISTINCT, PostgreSQL wants the ORDER BY expressions among the
    // arguments: a cast would break that.
    if list.duplicate_treatment.is_some() {
        return None;
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice() else {
        return None;
    };
    if matches!(arg, Expr::Cast { .. }) || string_literal(arg).is_some() {
        return None;
    }
    let mut out = function.clone();
    if let FunctionArguments::List(list) = &mut out.args {
        list.args[0] =
            FunctionArg::Unnamed(FunctionArgExpr::Expr(cast(arg, DataType::Varchar(None))));
    }
    Some(out)
}

/// `agg(x) FILTER (WHERE c)` as `agg(CASE WHEN c THEN x END)`, which MySQL
/// reads the same (aggregates skip NULLs); `count(*)` counts a constant.
fn filtered_aggregate(function: &Function) -> Option<Function> {
    let name = function.name.to_string().to_lowercase();
    if !matches!(
        name.as_str(),
        "count" | "sum" | "avg" | "min" | "max" | "bool_and" | "bool_or"
    ) {
        return None;
    }
    let condition = function.filter.as_deref()?.clone();
    let mut out = function.clone();
    out.filter = None;
    let FunctionArguments::List(list) = &mut out.args else {
        return None;
    };
    let [arg] = list.args.as_mut_slice() else {
        return None;
    };
    let value = match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => {
            Expr::value(Value::Number("1".into(), false))
        }
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => e.clone(),
        _ => return None,
    };
    *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Case {
        case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        operand: None,
        conditions: vec![sqlparser::ast::CaseWhen {
            condition,
            result: value,
        }],
        else_result: None,
    }));
    Some(out)
}

/// MySQL's `LOCATE(needle, haystack[, start])` under a case-insensitive
/// collation, in PostgreSQL.
fn locate(needle: &Expr, haystack: &Expr, start: Option<&Expr>) -> String {
    match start {
        None => format!("{KEEP}strpos(LOWER({haystack}), LOWER({needle}))"),
        Some(start) => format!(
            "CASE WHEN {start} < 1 THEN 0 WHEN {KEEP}strpos(LOWER(SUBSTRING({haystack}, {start})), LOWER({needle})) = 0 THEN 0 \
             ELSE {KEEP}strpos(LOWER(SUBSTRING({haystack}, {start})), LOWER({needle})) + {start} - 1 END"
        ),
    }
}

/// MySQL's `TIMESTAMPDIFF(unit, a, b)` in PostgreSQL: whole units from `a` to
/// `b`, truncated toward zero.
fn timestampdiff(unit: &str, a: &str, b: &str, to: Dialect) -> Option<String> {
    let seconds = match unit.to_ascii_uppercase().as_str() {
        "SECOND" => 1,
        "MINUTE" => 60,
        "HOUR" => 3600,
        "DAY" => 86_400,
        "WEEK" => 604_800,
        "MONTH" | "QUARTER" | "YEAR" if to != Dialect::Postgres => return None,
        "MONTH" | "QUARTER" | "YEAR" => {
            let age = format!("{KEEP}age(CAST({b} AS DATETIME), CAST({a} AS DATETIME))");
            let months =
                format!("({KEEP}date_part('year', {age}) * 12 + {KEEP}date_part('month', {age}))");
            return Some(match unit.to_ascii_uppercase().as_str() {
                "MONTH" => format!("{KEEP}cast_bigint({months})"),
                "QUARTER" => format!("{KEEP}cast_bigint({KEEP}trunc({months} / 3))"),
                _ => format!("{KEEP}cast_bigint({KEEP}date_part('year', {age}))"),
            });
        }
        _ => return None,
    };
    Some(if to == Dialect::Postgres {
        format!(
            "{KEEP}cast_bigint({KEEP}trunc({KEEP}date_part('epoch', CAST({b} AS DATETIME) - CAST({a} AS DATETIME)) / {seconds}))"
        )
    } else {
        format!(
            "{KEEP}cast_bigint({KEEP}trunc(({KEEP}to_unixtime(CAST({b} AS DATETIME)) - {KEEP}to_unixtime(CAST({a} AS DATETIME))) / {seconds}))"
        )
    })
}

/// MySQL's `STR_TO_DATE(s, 'fmt')` in PostgreSQL: a `DATE` when the format
/// has no time of day (as in MySQL), a timestamp otherwise.
fn str_to_date(s: &str, format: &str, from: Dialect, to: Dialect) -> Result<String> {
    let has_time = format
        .split('%')
        .skip(1)
        .any(|code| code.starts_with(['H', 'k', 'h', 'I', 'l', 'i', 's', 'S', 'f', 'p', 'T', 'r']));
    let pattern = convert_format(format, from, to)?.replace('\'', "''");
    Ok(if has_time {
        format!("CAST({KEEP}to_timestamp({s}, '{pattern}') AS DATETIME)")
    } else {
        format!("{KEEP}to_date({s}, '{pattern}')")
    })
}

/// MySQL's `DATE_FORMAT(d, 'fmt')` in the target's own function and codes.
fn date_format(date: &str, format: &str, from: Dialect, to: Dialect) -> Result<String> {
    let quoted = convert_format(format, from, to)?.replace('\'', "''");
    Ok(match to {
        Dialect::Postgres | Dialect::DataFusion => format!("TO_CHAR({date}, '{quoted}')"),
        _ => format!("STRFTIME({date}, '{quoted}')"),
    })
}

/// A MySQL date format in PostgreSQL's `TO_CHAR` codes (for PostgreSQL) or
/// strftime / chrono codes (for the others).
fn convert_format(format: &str, from: Dialect, to: Dialect) -> Result<String> {
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
    Ok(pattern)
}

/// A PostgreSQL `to_char` pattern in chrono's codes (DataFusion's
/// `to_char`); `None` for what chrono cannot print the same way (PostgreSQL
/// pads `Month` and `Day` to nine characters unless `FM` precedes them).
fn postgres_pattern_to_chrono(pattern: &str) -> Option<String> {
    // Longest first, so that `YYYY` is not read as two `YY`.
    const CODES: &[(&str, &str)] = &[
        ("FMMonth", "%B"),
        ("FMDay", "%A"),
        ("FMHH24", "%-H"),
        ("FMHH12", "%-I"),
        ("FMDD", "%-d"),
        ("FMMM", "%-m"),
        ("YYYY", "%Y"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("Mon", "%b"),
        ("DDD", "%j"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%I"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("MS", "%3f"),
        ("US", "%6f"),
        ("AM", "%p"),
        ("PM", "%p"),
        ("Dy", "%a"),
    ];
    let mut out = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            out.push_str(&quoted[..end].replace('%', "%%"));
            rest = &quoted[end + 1..];
            continue;
        }
        if let Some((code, chrono)) = CODES.iter().find(|(code, _)| rest.starts_with(code)) {
            out.push_str(chrono);
            rest = &rest[code.len()..];
            continue;
        }
        let c = rest.chars().next()?;
        if c.is_ascii_alphabetic() {
            return None;
        }
        if c == '%' {
            out.push('%');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}
