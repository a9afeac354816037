//! What a statement touches: its tables, and the columns its predicates,
//! `GROUP BY` and `ORDER BY` use, each with the table it belongs to.
//!
//! The router routes on the tables; the maintenance engine chooses sort orders
//! from the predicate columns, so they are resolved through table aliases and
//! qualified names, scope by scope (a subquery sees its own `FROM` first, then
//! the enclosing one's), and CTE names are never mistaken for tables.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectName,
    OrderByKind, Query, Select, SetExpr, Statement, TableFactor, TableWithJoins, Value,
    ValueWithSpan, Visit, Visitor, visit_relations,
};

/// A table as the statement names it: one to three parts, unquoted parts in
/// lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableRef {
    /// `catalog.schema.table`, `schema.table` or `table`.
    pub parts: Vec<String>,
}

impl TableRef {
    fn from_name(name: &ObjectName) -> TableRef {
        TableRef {
            parts: name
                .0
                .iter()
                .filter_map(|part| part.as_ident())
                .map(normal)
                .collect(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        self.parts.last().map_or("", String::as_str)
    }

    /// `catalog.schema.table`, filling what the statement left out from the
    /// session's current catalog and schema.
    pub fn qualified(&self, catalog: &str, schema: &str) -> String {
        // Joined by hand: made for every table of every statement routed,
        // and `format!` costs several times the copy.
        match self.parts.as_slice() {
            [table] => [catalog, schema, table.as_str()].join("."),
            [s, table] => [catalog, s.as_str(), table.as_str()].join("."),
            parts => parts.join("."),
        }
    }
}

/// How a predicate uses a column: what a file layout sorted on it speeds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// `col = value`, `col = other_col`.
    Equality,
    /// `<`, `<=`, `>`, `>=`, `BETWEEN`.
    Range,
    /// `col IN (...)`, `col IN (SELECT ...)`.
    In,
    /// `col LIKE 'prefix%'`.
    LikePrefix,
    /// `col IS [NOT] NULL`.
    IsNull,
}

impl Operator {
    /// Every operator class.
    pub const ALL: [Operator; 5] = [
        Operator::Equality,
        Operator::Range,
        Operator::In,
        Operator::LikePrefix,
        Operator::IsNull,
    ];

    /// The class's name in telemetry and the admin API: `eq`, `range`, `in`,
    /// `like_prefix`, `is_null`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equality => "eq",
            Operator::Range => "range",
            Operator::In => "in",
            Operator::LikePrefix => "like_prefix",
            Operator::IsNull => "is_null",
        }
    }

    /// The operator named `name` ([`Operator::as_str`]).
    pub fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// A column of a table, as a statement uses it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnRef {
    /// The table it belongs to.
    pub table: TableRef,
    /// The column, lower case unless quoted.
    pub column: String,
}

/// Everything [`references`] finds in a statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Every table read or written, once each, CTE names excluded.
    pub tables: Vec<TableRef>,
    /// Columns in `WHERE`, `JOIN ... ON` and `HAVING` predicates, with how each
    /// is compared; once per (column, operator).
    pub predicates: Vec<(ColumnRef, Operator)>,
    /// Columns in `GROUP BY`.
    pub group_by: Vec<ColumnRef>,
    /// Columns in `ORDER BY`.
    pub order_by: Vec<ColumnRef>,
}

/// The tables and column uses of a statement. Columns whose table cannot be
/// told without the catalog (an unqualified column with several tables in
/// scope) are left out rather than guessed.
///
/// ```
/// use floe_dialects::{analyze_statement, references, Dialect, Operator};
///
/// let a = analyze_statement(
///     "SELECT z.borough, count(*) FROM demo.trips t JOIN demo.zones z ON t.zone_id = z.zone_id \
///      WHERE t.pickup_date >= '2024-01-01' AND z.borough IN ('Queens', 'Bronx') GROUP BY z.borough",
///     Dialect::Postgres,
/// )?;
/// let refs = references(&a.statement);
/// assert_eq!(refs.tables.len(), 2);
/// assert!(refs.predicates.iter().any(|(c, op)| c.column == "pickup_date" && *op == Operator::Range));
/// assert!(refs.predicates.iter().any(|(c, op)| c.table.name() == "zones" && c.column == "borough" && *op == Operator::In));
/// # Ok::<(), floe_dialects::Error>(())
/// ```
pub fn references(statement: &Statement) -> References {
    let mut walker = Walker::default();
    // CTE names anywhere in the statement, so that no scope mistakes one for a table.
    let _ = statement.visit(&mut CteNames(&mut walker.ctes));
    let mut tables = BTreeSet::new();
    let _ = visit_relations(statement, |name| {
        let table = TableRef::from_name(name);
        if !(table.parts.len() == 1 && walker.ctes.contains(table.name())) {
            tables.insert(table);
        }
        ControlFlow::<()>::Continue(())
    });
    match statement {
        Statement::Query(query) => walker.query(query, &[]),
        Statement::Insert(insert) => {
            if let Some(source) = &insert.source {
                walker.query(source, &[]);
            }
        }
        _ => {}
    }
    References {
        tables: tables.into_iter().collect(),
        predicates: walker.predicates.into_iter().collect(),
        group_by: walker.group_by.into_iter().collect(),
        order_by: walker.order_by.into_iter().collect(),
    }
}

fn normal(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// Collects the name of every CTE of every query in a statement.
struct CteNames<'a>(&'a mut BTreeSet<String>);

impl Visitor for CteNames<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(normal(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// One `FROM` scope: each visible name (alias or table name) and its table.
type Scope = Vec<(String, TableRef)>;

#[derive(Default)]
struct Walker {
    ctes: BTreeSet<String>,
    predicates: BTreeSet<(ColumnRef, Operator)>,
    group_by: BTreeSet<ColumnRef>,
    order_by: BTreeSet<ColumnRef>,
}

impl Walker {
    /// Walks a query with `outer` the scopes that enclose it, innermost last.
    fn query(&mut self, query: &Query, outer: &[Scope]) {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.query(&cte.query, outer);
            }
        }
        let scope = self.set_expr(&query.body, outer);
        if let Some(order_by) = &query.order_by
            && let OrderByKind::Expressions(items) = &order_by.kind
        {
            let scopes = with(outer, scope);
            for item in items {
                for column in columns(&item.expr, &scopes) {
                    self.order_by.insert(column);
                }
            }
        }
    }

    /// Walks a query body; returns the scope of its (first) `SELECT`, against
    /// which `ORDER BY` resolves.
    fn set_expr(&mut self, body: &SetExpr, outer: &[Scope]) -> Scope {
        match body {
            SetExpr::Select(select) => self.select(select, outer),
            SetExpr::Query(query) => {
                self.query(query, outer);
                Scope::new()
            }
            SetExpr::SetOperation { left, right, .. } => {
                let scope = self.set_expr(left, outer);
                self.set_expr(right, outer);
                scope
            }
            _ => Scope::new(),
        }
    }

    fn select(&mut self, select: &Select, outer: &[Scope]) -> Scope {
        let mut scope = Scope::new();
        let mut join_conditions = Vec::new();
        for from in &select.from {
            self.from(from, outer, &mut scope, &mut join_conditions);
        }
        let scopes = with(outer, scope.clone());
        for condition in join_conditions {
            self.predicate(condition, &scopes);
        }
        if let Some(selection) = &select.selection {
            self.predicate(selection, &scopes);
        }
        if let Some(having) = &select.having {
            self.predicate(having, &scopes);
        }
        if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
            for expr in exprs {
                for column in columns(expr, &scopes) {
                    self.group_by.insert(column);
                }
            }
        }
        scope
    }

    fn from<'a>(
        &mut self,
        from: &'a TableWithJoins,
        outer: &[Scope],
        scope: &mut Scope,
        conditions: &mut Vec<&'a Expr>,
    ) {
        self.factor(&from.relation, outer, scope, conditions);
        for join in &from.joins {
            self.factor(&join.relation, outer, scope, conditions);
            if let Some(JoinConstraint::On(on)) = constraint(&join.join_operator) {
                conditions.push(on);
            }
        }
    }

    fn factor<'a>(
        &mut self,
        factor: &'a TableFactor,
        outer: &[Scope],
        scope: &mut Scope,
        conditions: &mut Vec<&'a Expr>,
    ) {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let table = TableRef::from_name(name);
                if table.parts.len() == 1 && self.ctes.contains(table.name()) {
                    return;
                }
                let visible = alias
                    .as_ref()
                    .map_or_else(|| table.name().to_owned(), |a| normal(&a.name));
                scope.push((visible, table));
            }
            TableFactor::Derived { subquery, .. } => self.query(subquery, outer),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.from(table_with_joins, outer, scope, conditions),
            _ => {}
        }
    }

    /// Records the column uses of a boolean expression.
    fn predicate(&mut self, expr: &Expr, scopes: &[Scope]) {
        match expr {
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And | BinaryOperator::Or => {
                    self.predicate(left, scopes);
                    self.predicate(right, scopes);
                }
                BinaryOperator::Eq => {
                    self.compare(left, right, Operator::Equality, scopes);
                    self.compare(right, left, Operator::Equality, scopes);
                }
                BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq => {
                    self.compare(left, right, Operator::Range, scopes);
                    self.compare(right, left, Operator::Range, scopes);
                }
                _ => self.subqueries(expr, scopes),
            },
            Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => {
                self.predicate(inner, scopes)
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.column(expr, Operator::Range, scopes);
                self.subqueries(low, scopes);
                self.subqueries(high, scopes);
            }
            Expr::InList { expr, list, .. } => {
                self.column(expr, Operator::In, scopes);
                for item in list {
                    self.subqueries(item, scopes);
                }
            }
            Expr::InSubquery { expr, subquery, .. } => {
                self.column(expr, Operator::In, scopes);
                self.query(subquery, scopes);
            }
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
                if is_prefix_pattern(pattern) {
                    self.column(expr, Operator::LikePrefix, scopes);
                }
            }
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                self.column(inner, Operator::IsNull, scopes)
            }
            other => self.subqueries(other, scopes),
        }
    }

    /// `column <op> value`: a column compared with a constant, a parameter or
    /// another column (a join key).
    fn compare(&mut self, column: &Expr, other: &Expr, op: Operator, scopes: &[Scope]) {
        let other_is_operand = matches!(
            strip(other),
            Expr::Value(_)
                | Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::TypedString { .. }
                | Expr::Cast { .. }
                | Expr::UnaryOp { .. }
        ) || matches!(strip(other), Expr::Function(_));
        if other_is_operand {
            self.column(column, op, scopes);
        }
        self.subqueries(other, scopes);
    }

    fn column(&mut self, expr: &Expr, op: Operator, scopes: &[Scope]) {
        if let Some(column) = resolve(strip(expr), scopes) {
            self.predicates.insert((column, op));
        }
    }

    /// Walks the subqueries inside an expression (`EXISTS`, scalar ones).
    fn subqueries(&mut self, expr: &Expr, scopes: &[Scope]) {
        match expr {
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => {
                self.query(subquery, scopes)
            }
            Expr::BinaryOp { left, right, .. } => {
                self.subqueries(left, scopes);
                self.subqueries(right, scopes);
            }
            Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => {
                self.subqueries(inner, scopes)
            }
            _ => {}
        }
    }
}

/// The scopes `outer` with `inner` innermost.
fn with(outer: &[Scope], inner: Scope) -> Vec<Scope> {
    let mut scopes = outer.to_vec();
    scopes.push(inner);
    scopes
}

fn constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c) => Some(c),
        _ => None,
    }
}

/// The expression under casts and parentheses: `CAST(col AS date) = ...`
/// still filters on `col`.
fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => strip(inner),
        other => other,
    }
}

fn is_prefix_pattern(pattern: &Expr) -> bool {
    match strip(pattern) {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(p) | Value::DoubleQuotedString(p),
            ..
        }) => !p.is_empty() && !p.starts_with('%') && !p.starts_with('_'),
        // A parameter: the prefix is unknown but usually is one.
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(_),
            ..
        }) => true,
        _ => false,
    }
}

/// The table column an identifier names, looking in the innermost scope
/// first; `None` when it is not a column of a known table or is ambiguous.
fn resolve(expr: &Expr, scopes: &[Scope]) -> Option<ColumnRef> {
    match expr {
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let column = normal(parts.last()?);
            let qualifier: Vec<String> = parts[..parts.len() - 1].iter().map(normal).collect();
            for scope in scopes.iter().rev() {
                for (visible, table) in scope {
                    let matches = match qualifier.as_slice() {
                        [name] => name == visible,
                        longer => table.parts.ends_with(longer),
                    };
                    if matches {
                        return Some(ColumnRef {
                            table: table.clone(),
                            column,
                        });
                    }
                }
            }
            None
        }
        Expr::Identifier(ident) => {
            // Unqualified: certain only when the innermost scope with tables
            // has exactly one.
            let scope = scopes.iter().rev().find(|s| !s.is_empty())?;
            match scope.as_slice() {
                [(_, table)] => Some(ColumnRef {
                    table: table.clone(),
                    column: normal(ident),
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Every column an expression mentions (for `GROUP BY` and `ORDER BY`).
fn columns(expr: &Expr, scopes: &[Scope]) -> Vec<ColumnRef> {
    let mut found = Vec::new();
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if let Some(column) = resolve(e, scopes) {
            found.push(column);
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dialect, analyze_statement};

    fn refs(sql: &str) -> References {
        references(
            &analyze_statement(sql, Dialect::Postgres)
                .expect("parses")
                .statement,
        )
    }

    fn has(r: &References, table: &str, column: &str, op: Operator) -> bool {
        r.predicates
            .iter()
            .any(|(c, o)| c.table.name() == table && c.column == column && *o == op)
    }

    #[test]
    fn aliases_and_qualified_names_resolve_to_their_tables() {
        let r = refs(
            "SELECT t.fare FROM demo.trips AS t JOIN demo.zones z ON t.zone_id = z.zone_id \
             WHERE z.borough = 'Queens' AND t.pickup_at BETWEEN $1 AND $2 AND demo.trips.payment LIKE 'ca%'",
        );
        assert_eq!(
            r.tables
                .iter()
                .map(|t| t.parts.join("."))
                .collect::<Vec<_>>(),
            vec!["demo.trips", "demo.zones"]
        );
        assert!(has(&r, "trips", "zone_id", Operator::Equality));
        assert!(has(&r, "zones", "zone_id", Operator::Equality));
        assert!(has(&r, "zones", "borough", Operator::Equality));
        assert!(has(&r, "trips", "pickup_at", Operator::Range));
        assert!(has(&r, "trips", "payment", Operator::LikePrefix));
    }

    #[test]
    fn ctes_are_not_tables_and_subqueries_have_their_own_scope() {
        let r = refs(
            "WITH recent AS (SELECT * FROM trips WHERE pickup_date > '2024-01-01') \
             SELECT count(*) FROM recent r WHERE r.zone_id IN (SELECT zone_id FROM zones WHERE borough IS NULL)",
        );
        assert_eq!(
            r.tables
                .iter()
                .map(|t| t.parts.join("."))
                .collect::<Vec<_>>(),
            vec!["trips", "zones"]
        );
        assert!(has(&r, "trips", "pickup_date", Operator::Range));
        assert!(has(&r, "zones", "borough", Operator::IsNull));
    }

    #[test]
    fn group_and_order_columns_and_ambiguity() {
        let r = refs("SELECT zone_id, count(*) FROM trips GROUP BY zone_id ORDER BY zone_id");
        assert_eq!(r.group_by.len(), 1);
        assert_eq!(r.order_by.len(), 1);
        // Two tables, an unqualified column: left out, not guessed.
        let r = refs("SELECT 1 FROM trips, zones WHERE borough = 'x'");
        assert!(r.predicates.is_empty());
        // A leading wildcard is no prefix.
        assert!(
            refs("SELECT 1 FROM t WHERE a LIKE '%x'")
                .predicates
                .is_empty()
        );
    }

    #[test]
    fn qualified_names_take_the_session_defaults() {
        let t = TableRef {
            parts: vec!["trips".into()],
        };
        assert_eq!(t.qualified("lake", "demo"), "lake.demo.trips");
        let t = TableRef {
            parts: vec!["public".into(), "t".into()],
        };
        assert_eq!(t.qualified("lake", "demo"), "lake.public.t");
    }
}
