//! What the translation rules know of a value's type.
//!
//! Some constructs mean different things by type alone: `a / b` divides
//! integers as integers in PostgreSQL and gives a decimal in MySQL; `d + 7`
//! adds days to a PostgreSQL date and makes a number of a MySQL one;
//! `DATE_ADD(d, INTERVAL 1 DAY)` gives a MySQL `DATE` but a PostgreSQL
//! `timestamp`. The rules take the types of literals and casts from the
//! statement and the types of columns from a [`ColumnTypes`] the caller fills
//! (from the engine's catalog); where a type stays unknown a rule that needs it
//! refuses rather than guess.

use std::collections::HashMap;

use sqlparser::ast::{BinaryOperator, DataType, Expr, UnaryOperator, Value, ValueWithSpan};

use crate::Dialect;

/// The classes of type the translation rules tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeClass {
    /// Any integer type.
    Integer,
    /// `DECIMAL` / `NUMERIC`.
    Exact,
    /// `REAL`, `FLOAT`, `DOUBLE`.
    Float,
    /// Character strings.
    Text,
    /// A calendar date without time.
    Date,
    /// A date and time (with or without zone).
    Timestamp,
    /// A time of day.
    Time,
    /// `BOOLEAN`.
    Boolean,
    /// An interval.
    Interval,
}

impl TypeClass {
    /// The class of a type as a catalog spells it (`integer`, `bigint`,
    /// `decimal(10,2)`, `character varying`, `timestamp without time zone`,
    /// `datetime`, ...); `None` for types the rules do not reason about.
    pub fn from_type_name(name: &str) -> Option<TypeClass> {
        let base = base_type_name(name);
        Some(match base.as_str() {
            "int" | "integer" | "bigint" | "smallint" | "tinyint" | "mediumint" | "int2"
            | "int4" | "int8" | "serial" | "bigserial" | "smallserial" | "signed" | "unsigned"
            | "signed integer" | "unsigned integer" | "hugeint" => TypeClass::Integer,
            "decimal" | "numeric" | "dec" | "fixed" => TypeClass::Exact,
            "float" | "double" | "real" | "double precision" | "float4" | "float8" => {
                TypeClass::Float
            }
            "char" | "varchar" | "text" | "character" | "character varying" | "string"
            | "tinytext" | "mediumtext" | "longtext" | "bpchar" | "utf8" | "largeutf8" => {
                TypeClass::Text
            }
            "date" | "date32" => TypeClass::Date,
            "datetime"
            | "timestamp"
            | "timestamptz"
            | "timestamp without time zone"
            | "timestamp with time zone" => TypeClass::Timestamp,
            "time" | "time without time zone" => TypeClass::Time,
            "bool" | "boolean" => TypeClass::Boolean,
            "interval" => TypeClass::Interval,
            _ if base.starts_with("timestamp") => TypeClass::Timestamp,
            _ => return None,
        })
    }

    fn of_data_type(data_type: &DataType) -> Option<TypeClass> {
        TypeClass::from_type_name(&data_type.to_string())
    }

    fn numeric(self) -> bool {
        matches!(
            self,
            TypeClass::Integer | TypeClass::Exact | TypeClass::Float
        )
    }
}

/// A catalog's type name without its length, precision or `unsigned`, in
/// lower case: `decimal(10,2)` → `decimal`, `INT(11) UNSIGNED` → `int`.
pub fn base_type_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or("").trim();
    base.strip_suffix(" unsigned")
        .unwrap_or(base)
        .trim()
        .to_owned()
}

/// The types of the columns a statement may use, by column name.
///
/// Names are matched without their table (a statement over tables that give
/// one name two different types leaves that name unknown), in lower case.
///
/// ```
/// use floe_dialects::{ColumnTypes, TypeClass};
///
/// let mut types = ColumnTypes::default();
/// types.insert("qty", "integer").insert("signup", "date");
/// assert_eq!(types.get("QTY"), Some(TypeClass::Integer));
/// types.insert("qty", "decimal(10,2)");
/// assert_eq!(types.get("qty"), None, "two tables disagree: unknown");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ColumnTypes {
    columns: HashMap<String, Known>,
}

/// What the tables say of one column name; `None` where they disagree.
#[derive(Debug, Clone)]
struct Known {
    class: Option<TypeClass>,
    /// The type name itself, for callers that need the exact type (a
    /// parameter's type in a PostgreSQL `ParameterDescription`, say).
    name: Option<String>,
}

impl ColumnTypes {
    /// Records that `column` has the type named `type_name`.
    pub fn insert(&mut self, column: &str, type_name: &str) -> &mut Self {
        let class = TypeClass::from_type_name(type_name);
        let name = type_name.trim().to_ascii_lowercase();
        self.columns
            .entry(column.to_lowercase())
            .and_modify(|known| {
                if known.class != class {
                    known.class = None;
                }
                if known.name.as_deref() != Some(name.as_str()) {
                    known.name = None;
                }
            })
            .or_insert_with(|| Known {
                class,
                name: Some(name.clone()),
            });
        self
    }

    /// The class of `column`, when known and unambiguous.
    pub fn get(&self, column: &str) -> Option<TypeClass> {
        self.columns.get(&column.to_lowercase())?.class
    }

    /// The type name of `column` in lower case as the catalog spells it, when
    /// known and unambiguous.
    pub fn type_name(&self, column: &str) -> Option<&str> {
        self.columns.get(&column.to_lowercase())?.name.as_deref()
    }

    /// True when no column is known.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// The class of `expr`'s value in `dialect`, where the statement and `types`
/// tell it.
pub(crate) fn class_of(expr: &Expr, types: &ColumnTypes, dialect: Dialect) -> Option<TypeClass> {
    let class = |e: &Expr| class_of(e, types, dialect);
    match expr {
        Expr::Value(ValueWithSpan { value, .. }) => match value {
            Value::Number(n, _) if n.contains(['.', 'e', 'E']) => Some(TypeClass::Exact),
            Value::Number(..) => Some(TypeClass::Integer),
            Value::SingleQuotedString(_) | Value::DoubleQuotedString(_) => Some(TypeClass::Text),
            Value::Boolean(_) => Some(TypeClass::Boolean),
            _ => None,
        },
        Expr::TypedString(typed) => TypeClass::of_data_type(&typed.data_type),
        Expr::Cast { data_type, .. } => TypeClass::of_data_type(data_type),
        Expr::Identifier(ident) => types.get(&ident.value),
        Expr::CompoundIdentifier(parts) => parts.last().and_then(|i| types.get(&i.value)),
        Expr::Nested(inner) => class(inner),
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => class(expr),
        Expr::Interval(_) => Some(TypeClass::Interval),
        Expr::BinaryOp { left, op, right } => {
            let (l, r) = (class(left)?, class(right)?);
            match op {
                BinaryOperator::Plus | BinaryOperator::Minus if dialect != Dialect::MySql => {
                    match (l, r) {
                        (TypeClass::Date, TypeClass::Integer) => Some(TypeClass::Date),
                        (TypeClass::Date, TypeClass::Date) => Some(TypeClass::Integer),
                        (TypeClass::Date | TypeClass::Timestamp, TypeClass::Interval) => {
                            Some(TypeClass::Timestamp)
                        }
                        _ => arithmetic(l, r),
                    }
                }
                BinaryOperator::Divide if dialect == Dialect::MySql => {
                    (l.numeric() && r.numeric()).then_some(TypeClass::Exact)
                }
                BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::Divide
                | BinaryOperator::Modulo => arithmetic(l, r),
                _ => None,
            }
        }
        Expr::Function(function) => {
            let name = function.name.to_string().to_ascii_lowercase();
            match name.as_str() {
                "count" | "length" | "char_length" | "character_length" | "octet_length"
                | "strpos" | "locate" | "instr" => Some(TypeClass::Integer),
                "avg" => Some(TypeClass::Exact),
                "sum" | "min" | "max" | "abs" => {
                    let sqlparser::ast::FunctionArguments::List(list) = &function.args else {
                        return None;
                    };
                    let Some(sqlparser::ast::FunctionArg::Unnamed(
                        sqlparser::ast::FunctionArgExpr::Expr(arg),
                    )) = list.args.first()
                    else {
                        return None;
                    };
                    match (name.as_str(), class(arg)?) {
                        // MySQL sums integers into a DECIMAL.
                        ("sum", TypeClass::Integer) if dialect == Dialect::MySql => {
                            Some(TypeClass::Exact)
                        }
                        (_, c) => Some(c),
                    }
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The class of `l op r` for `+ - * / %` over numbers.
fn arithmetic(l: TypeClass, r: TypeClass) -> Option<TypeClass> {
    use TypeClass::{Exact, Float, Integer};
    match (l, r) {
        (Integer, Integer) => Some(Integer),
        (Float, x) | (x, Float) if x.numeric() => Some(Float),
        (Exact, x) | (x, Exact) if x.numeric() => Some(Exact),
        _ => None,
    }
}
