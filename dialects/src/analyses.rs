//! [`Analyses`]: statements of a known shape analysed without parsing.
//!
//! Parsing and classifying a statement costs more than anything else Floe
//! does to it before it reaches an engine, and a simple-protocol client sends
//! every statement with its constants inline. For a text whose
//! [shape](crate::shape_key) was analysed before, the analysis is the earlier
//! tree with this text's constants put in: the two texts are byte for byte the
//! same outside the masked constants, so the tokenizer sees the same tokens
//! and the parser builds the same tree, with other constant values.
//!
//! A shape is templated only when every masked constant is found in the first
//! text's tree as exactly one constant of its class at exactly its span (so a
//! scan that read the text differently from the parser — a comment, a
//! quote — cannot template it); other shapes are parsed every time.

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use sqlparser::ast::{Expr, Statement, Value, visit_expressions};
use sqlparser::tokenizer::Location;

use crate::classify::{byte_offset, line_starts, lone_statement, strip_explain_route};
use crate::shape::{ConstantClass, ShapeCache, ShapeKey};
use crate::tree::Tree;
use crate::{Analysis, Dialect, Result, StatementKind, analyze, analyze_statement};

/// What a shape's first analysis found, and where its masked constants are
/// in its tree.
#[derive(Debug)]
struct Template {
    dialect: Dialect,
    kind: StatementKind,
    read_only: bool,
    command: &'static str,
    tree: Arc<Statement>,
    /// Where each masked constant's value starts in `tree`, in the order of
    /// [`ShapeKey::constants`].
    slots: Arc<[Location]>,
}

/// A bounded cache of statement analyses by shape, safe to share: a drop-in
/// for [`analyze`] on the hot path of a front end.
///
/// ```
/// use floe_dialects::{Analyses, Dialect};
///
/// let analyses = Analyses::new(64);
/// for id in [1, 2, 3] {
///     let sql = format!("SELECT * FROM t WHERE id = {id}");
///     let analysis = analyses.analyze(&sql, Dialect::Postgres)?.remove(0);
///     assert_eq!(analysis.sql(), sql);
///     assert_eq!(analysis.statement.to_string(), sql);
/// }
/// # Ok::<(), floe_dialects::Error>(())
/// ```
#[derive(Debug)]
pub struct Analyses {
    cache: ShapeCache<Option<Template>>,
}

impl Analyses {
    /// A cache of at most `capacity` shapes.
    pub fn new(capacity: usize) -> Self {
        Analyses {
            cache: ShapeCache::new(capacity),
        }
    }

    /// What [`analyze`] gives for `sql`, from the cached shape when `sql` is
    /// one statement of a shape seen before.
    ///
    /// The analyses of a cached shape have the first text's spans in their
    /// tree (nothing but [`parameterize`](crate::parameterize) reads them, and
    /// it leaves such an analysis alone), and build that tree only when it is
    /// read ([`Tree`]).
    ///
    /// # Errors
    ///
    /// As [`analyze`].
    pub fn analyze(&self, sql: &str, dialect: Dialect) -> Result<Vec<Analysis>> {
        match self.lone(sql, dialect) {
            Some(analysis) => analysis.map(|analysis| vec![analysis]),
            None => analyze(sql, dialect),
        }
    }

    /// What [`analyze_statement`] gives for `sql`, from the cached shape as
    /// [`Analyses::analyze`] does.
    ///
    /// # Errors
    ///
    /// As [`analyze_statement`].
    pub fn analyze_statement(&self, sql: &str, dialect: Dialect) -> Result<Analysis> {
        match self.lone(sql, dialect) {
            Some(analysis) => analysis,
            None => analyze_statement(sql, dialect),
        }
    }

    /// The analysis of `sql` if it is plainly one statement and its shape is
    /// new or templated; `None` when the caller is to parse it.
    fn lone(&self, sql: &str, dialect: Dialect) -> Option<Result<Analysis>> {
        let text = lone_statement(sql).filter(|t| strip_explain_route(t).is_none())?;
        let (key, hit) = self.cache.lookup(text, dialect);
        if let Some(shaped) = hit {
            return shaped.value.as_ref()?.instantiate(text, key).map(Ok);
        }
        let analysis = analyze_statement(text, dialect);
        Some(analysis.inspect(|analysis| {
            // Only a shape seen before pays for its template (a copy of the
            // tree): most texts of a one-off shape are never seen again.
            self.cache
                .keep_if_seen(text, &key, || Template::of(analysis, &key));
            // `analyze_statement` keeps a lone statement's text as it is,
            // so the key is of `analysis.sql`: later readers need not scan.
            let _ = analysis.shape.set(key);
        }))
    }
}

impl Template {
    /// The template of `analysis`'s shape, if each masked constant of `key`
    /// (the key of its text) is exactly one constant of its tree.
    fn of(analysis: &Analysis, key: &ShapeKey) -> Option<Template> {
        let sql = analysis.sql.as_str();
        let lines = line_starts(sql);
        let mut slots: Vec<Option<Location>> = vec![None; key.constants.len()];
        let flow = visit_expressions(&*analysis.statement, |expr| {
            let Expr::Value(value) = expr else {
                return ControlFlow::Continue(());
            };
            let start = byte_offset(sql, &lines, value.span.start.line, value.span.start.column);
            let end = byte_offset(sql, &lines, value.span.end.line, value.span.end.column);
            let Some(slot) = key.constants.iter().position(|(r, _)| r.start == start) else {
                return ControlFlow::Continue(());
            };
            let (range, class) = &key.constants[slot];
            let same = range.end == end
                && slots[slot].is_none()
                && constant(&sql[range.clone()], *class).as_ref() == Some(&value.value);
            if !same {
                return ControlFlow::Break(());
            }
            slots[slot] = Some(value.span.start);
            ControlFlow::Continue(())
        });
        if flow.is_break() {
            return None;
        }
        // Each slot is the start of exactly one value of the tree (a second
        // value there broke the walk above): the built tree has every
        // constant put in, and nothing else changed.
        let slots: Arc<[Location]> = slots.into_iter().collect::<Option<Vec<_>>>()?.into();
        Some(Template {
            dialect: analysis.dialect,
            kind: analysis.kind,
            read_only: analysis.read_only,
            command: analysis.command,
            tree: Arc::new(Statement::clone(&analysis.statement)),
            slots,
        })
    }

    /// The analysis of `sql`, whose key `key` is of this template's shape:
    /// its tree is built when first read.
    fn instantiate(&self, sql: &str, key: ShapeKey) -> Option<Analysis> {
        let mut values = Vec::with_capacity(self.slots.len());
        for (range, class) in &key.constants {
            values.push(constant(sql.get(range.clone())?, *class)?);
        }
        Some(Analysis {
            dialect: self.dialect,
            sql: sql.to_owned(),
            statement: Tree::shaped(Arc::clone(&self.tree), Arc::clone(&self.slots), values),
            kind: self.kind,
            read_only: self.read_only,
            command: self.command,
            explain_route: false,
            exact_spans: false,
            shape: OnceLock::from(key),
        })
    }
}

/// The tree's value of a masked constant written `text`.
fn constant(text: &str, class: ConstantClass) -> Option<Value> {
    match class {
        ConstantClass::Int4 | ConstantClass::Int8 => Some(Value::Number(text.to_owned(), false)),
        ConstantClass::Text => class.value(text).map(Value::SingleQuotedString),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each text analysed through the cache, three times over, is what
    /// analysing it directly gives.
    #[test]
    fn cached_shapes_give_what_parsing_gives() {
        let analyses = Analyses::new(64);
        for (dialect, texts) in [
            (
                Dialect::Postgres,
                vec![
                    "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
                    "SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
                    "SELECT abalance FROM pgbench_accounts WHERE aid = 3000000000",
                    "SELECT a FROM t WHERE s = 'x' AND n >= 5 AND d = '2024-01-01'::date;",
                    "SELECT a FROM t WHERE s = 'it''s é' AND n >= 0007 AND d = '1999-12-31'::date",
                    "  select a\n from t where s <> 'multi\nline' and 5 = 5  ",
                    "select a\n from t where s <> 'b' and 5 = 6",
                ],
            ),
            (
                Dialect::MySql,
                vec![
                    "SELECT c FROM sbtest1 WHERE id = 10",
                    "SELECT c FROM sbtest1 WHERE id = 99",
                    "SELECT c FROM `t` WHERE a = 'x' AND b = \"y\"",
                    "SELECT c FROM `t` WHERE a = 'z' AND b = \"y\"",
                ],
            ),
        ] {
            for _ in 0..3 {
                for sql in &texts {
                    let cached = analyses.analyze(sql, dialect).expect("parses");
                    let direct = analyze(sql, dialect).expect("parses");
                    assert_eq!(cached.len(), 1);
                    assert_eq!(cached[0].sql, direct[0].sql);
                    assert_eq!(
                        cached[0].statement.to_string(),
                        direct[0].statement.to_string()
                    );
                    assert_eq!(cached[0].kind, direct[0].kind);
                    assert_eq!(cached[0].read_only, direct[0].read_only);
                }
            }
        }
        // Errors and several statements go the direct way.
        assert!(
            analyses
                .analyze("SELECT * FROM t WHERE", Dialect::Postgres)
                .is_err()
        );
        assert!(
            analyses
                .analyze("SELECT * FROM t WHERE", Dialect::Postgres)
                .is_err()
        );
        assert_eq!(
            analyses
                .analyze("SELECT 1; SELECT 2", Dialect::Postgres)
                .expect("parses")
                .len(),
            2
        );
    }

    #[test]
    fn a_text_of_a_known_shape_builds_its_tree_only_when_read() {
        let analyses = Analyses::new(8);
        for n in [1, 2] {
            let sql = format!("SELECT a FROM t WHERE id = {n} AND s = 'x'");
            let analysis = analyses
                .analyze_statement(&sql, Dialect::Postgres)
                .expect("parses");
            assert!(analysis.statement.is_built(), "parsed: {sql}");
        }
        let sql = "SELECT a FROM t WHERE id = 42 AND s = 'it''s'";
        let analysis = analyses
            .analyze_statement(sql, Dialect::Postgres)
            .expect("parses");
        assert!(
            !analysis.statement.is_built(),
            "a known shape is not copied"
        );
        assert_eq!(
            (analysis.kind, analysis.read_only),
            (StatementKind::Read, true)
        );
        assert_eq!(analysis.command, "SELECT");
        let copy = analysis.clone();
        assert_eq!(analysis.statement.to_string(), sql);
        assert!(analysis.statement.is_built());
        assert!(
            !copy.statement.is_built(),
            "a copy builds its own when read"
        );
        assert_eq!(copy.statement, analysis.statement);
        let mut changed = copy;
        crate::number_placeholders(&mut changed.statement);
        assert_eq!(changed.statement.into_statement().to_string(), sql);
    }

    #[test]
    fn an_instantiated_analysis_is_not_parameterised_from_its_stale_spans() {
        let analyses = Analyses::new(64);
        let sql = |n| format!("SELECT a FROM t WHERE x = {n} AND 7 <> y");
        for n in [1, 10, 100] {
            let analysis = analyses
                .analyze(&sql(n), Dialect::Postgres)
                .expect("parses")
                .remove(0);
            let p = crate::parameterize(&analysis);
            if analysis.exact_spans {
                assert_eq!(p.expect("two").values, [n.to_string(), "7".to_owned()]);
            } else {
                assert_eq!(p, None);
            }
        }
    }

    #[test]
    fn an_analysis_carries_its_texts_shape_key_until_its_text_changes() {
        let analyses = Analyses::new(8);
        for n in [1, 2, 3] {
            let sql = format!("SELECT a FROM t WHERE id = {n} AND s = 'x'");
            let mut analysis = analyses
                .analyze_statement(&sql, Dialect::Postgres)
                .expect("parses");
            assert!(analysis.shape.get().is_some(), "the cache's key is kept");
            assert_eq!(
                *analysis.shape_key(),
                crate::shape_key(&sql, Dialect::Postgres)
            );
            let copy = analysis.clone();
            let other = format!("SELECT a FROM t WHERE  id = {n} AND s = 'xyz'");
            analysis.set_sql(other.clone());
            assert_eq!(analysis.sql(), other);
            assert_eq!(
                *analysis.shape_key(),
                crate::shape_key(&other, Dialect::Postgres)
            );
            assert_eq!(*copy.shape_key(), crate::shape_key(&sql, Dialect::Postgres));
        }
        let direct = analyze_statement("SELECT 1 WHERE 2 = 3", Dialect::MySql).expect("parses");
        assert!(direct.shape.get().is_none(), "computed only when read");
        assert_eq!(
            *direct.shape_key(),
            crate::shape_key("SELECT 1 WHERE 2 = 3", Dialect::MySql)
        );
    }
}
