//! [`TranslationCache`]: translations of a statement shape, reused for every
//! statement of that shape whatever its constants.
//!
//! A statement's literals (numbers and plain strings) are replaced by markers
//! and the marked statement is translated once; later statements of the same
//! shape get that template back with their own literals put in. A template is
//! kept only if no translation rule read a literal's value (a `DATE_FORMAT`
//! pattern, a `SUBSTR` start) and it is proven, on the statement that created
//! it, to give exactly what translating that statement directly gives; other
//! shapes are always translated directly.

use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlparser::ast::{Expr, Statement, Value, ValueWithSpan, visit_expressions_mut};

use crate::{Dialect, Result, analyze, translate};

/// The first number marker; markers are this plus the literal's index, all 13
/// digits, so none is a prefix of another.
const NUMBER_MARKER: u64 = 7_350_000_000_000;
/// At most this many literals per statement are templated.
const MAX_LITERALS: usize = 1000;

/// A literal taken out of a statement.
#[derive(Debug, Clone)]
enum Literal {
    Number(String),
    Text(String),
}

#[derive(Debug, Clone)]
enum Entry {
    /// The translation with markers where the literals go.
    Template(String),
    /// This shape's translation depends on its literals' values.
    Direct,
}

/// A translated text: (source text, from, to, translations).
type ExactEntry = (String, Dialect, Dialect, Vec<String>);

/// Counters of a [`TranslationCache`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Translations answered from a template.
    pub hits: u64,
    /// Translations computed.
    pub misses: u64,
    /// Templates dropped to make room.
    pub evictions: u64,
    /// Templates held now.
    pub entries: u64,
}

/// A bounded (least recently used) cache of translation templates keyed by
/// (statement shape, source dialect, target dialect). Safe to share.
#[derive(Debug)]
pub struct TranslationCache {
    /// Exact statement texts already translated, by a hash of (text, from,
    /// to): a hit costs a hash and a comparison, no parsing.
    exact: Mutex<lru::LruCache<u64, ExactEntry>>,
    entries: Mutex<lru::LruCache<(String, Dialect, Dialect), Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl TranslationCache {
    /// A cache of at most `capacity` shapes (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        TranslationCache {
            exact: Mutex::new(lru::LruCache::new(capacity)),
            entries: Mutex::new(lru::LruCache::new(capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries: self.entries.lock().map_or(0, |e| e.len() as u64),
        }
    }

    /// [`translate`], through the cache.
    ///
    /// ```
    /// use floe_dialects::{Dialect, TranslationCache};
    ///
    /// let cache = TranslationCache::new(1000);
    /// let a = cache.translate("SELECT IFNULL(x, 1) FROM t WHERE id = 7", Dialect::MySql, Dialect::Postgres)?;
    /// let b = cache.translate("SELECT IFNULL(x, 2) FROM t WHERE id = 8", Dialect::MySql, Dialect::Postgres)?;
    /// assert_eq!(b, vec!["SELECT COALESCE(x, 2) FROM t WHERE id = 8"]);
    /// assert_eq!(cache.stats().hits, 1);
    /// # let _ = a;
    /// # Ok::<(), floe_dialects::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`translate`].
    pub fn translate(&self, sql: &str, from: Dialect, to: Dialect) -> Result<Vec<String>> {
        if from == to {
            return translate(sql, from, to);
        }
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (sql, from, to).hash(&mut hasher);
            hasher.finish()
        };
        if let Ok(mut exact) = self.exact.lock()
            && let Some((text, f, t, out)) = exact.get(&hash)
            && text == sql
            && *f == from
            && *t == to
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(out.clone());
        }
        let mut out = Vec::new();
        for analysis in analyze(sql, from)? {
            out.push(self.translate_one(
                &analysis.sql,
                analysis.statement.into_statement(),
                from,
                to,
            )?);
        }
        if let Ok(mut exact) = self.exact.lock() {
            exact.put(hash, (sql.to_owned(), from, to, out.clone()));
        }
        Ok(out)
    }

    fn translate_one(
        &self,
        sql: &str,
        mut statement: Statement,
        from: Dialect,
        to: Dialect,
    ) -> Result<String> {
        let literals = mark(&mut statement);
        let templatable = literals.as_ref().is_some_and(|l| {
            // Quotes and backslashes are quoted differently by different
            // dialects: such strings are translated directly.
            l.iter()
                .all(|lit| !matches!(lit, Literal::Text(t) if t.contains(['\'', '\\'])))
        });
        let key = (statement.to_string(), from, to);
        if templatable
            && let Some(literals) = &literals
            && let Ok(mut entries) = self.entries.lock()
            && let Some(Entry::Template(template)) = entries.get(&key)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(substitute(template, literals));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (direct, literal_read) =
            crate::translate::translate_tracked(sql, from, to, &crate::ColumnTypes::default())?;
        let direct = one(direct)?;
        let entry = match (&literals, templatable && !literal_read) {
            (Some(literals), true) => {
                let template = one(translate(&key.0, from, to)?)?;
                if substitute(&template, literals) == direct {
                    Entry::Template(template)
                } else {
                    Entry::Direct
                }
            }
            _ => Entry::Direct,
        };
        if let Ok(mut entries) = self.entries.lock() {
            // `push` hands back what it displaced: the same key's old entry,
            // or the least recently used one when full.
            let replaced_same_key = entries.contains(&key);
            if entries.push(key, entry).is_some() && !replaced_same_key {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(direct)
    }
}

fn one(mut statements: Vec<String>) -> Result<String> {
    match statements.len() {
        1 => Ok(statements.remove(0)),
        n => Err(crate::Error::Unsupported(format!(
            "translation gave {n} statements for one"
        ))),
    }
}

/// Replaces the statement's number and string literals with markers, in
/// order; `None` when there are too many to template.
fn mark(statement: &mut Statement) -> Option<Vec<Literal>> {
    let mut literals = Vec::new();
    let mut too_many = false;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan { value, .. }) = expr {
            let index = literals.len();
            if index >= MAX_LITERALS {
                too_many = true;
                return ControlFlow::Break(());
            }
            match value {
                Value::Number(n, long) if !*long => {
                    let marker = number_marker(index, n);
                    literals.push(Literal::Number(std::mem::replace(n, marker)));
                }
                Value::SingleQuotedString(s) => {
                    literals.push(Literal::Text(s.clone()));
                    *s = text_marker(index);
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    });
    (!too_many).then_some(literals)
}

/// The marker of the `index`th literal, the number `n`: an integer for an
/// integer, a decimal for a decimal, so that rules that tell them apart (the
/// integer division for MySQL) see the same kind in the template.
fn number_marker(index: usize, n: &str) -> String {
    let marker = NUMBER_MARKER + index as u64;
    if n.contains(['.', 'e', 'E']) {
        format!("{marker}.5")
    } else {
        marker.to_string()
    }
}

fn text_marker(index: usize) -> String {
    format!("floe_lit_{index:03}_q7z")
}

/// The template with each marker replaced by its literal.
fn substitute(template: &str, literals: &[Literal]) -> String {
    let mut out = template.to_owned();
    // Highest index first, so that no marker is a prefix of a later one.
    for (index, literal) in literals.iter().enumerate().rev() {
        match literal {
            Literal::Number(n) => {
                out = out.replace(&number_marker(index, n), n);
            }
            Literal::Text(t) => {
                out = out.replace(&format!("'{}'", text_marker(index)), &format!("'{t}'"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_whose_translation_reads_a_literal_are_not_reused() {
        let cache = TranslationCache::new(10);
        let short = cache
            .translate(
                "SELECT DATE_FORMAT(d, '%Y-%m') FROM t",
                Dialect::MySql,
                Dialect::DataFusion,
            )
            .expect("translate");
        assert_eq!(short, vec!["SELECT to_char(d, '%Y-%m') FROM t"]);
        // Same shape; `%i` is MySQL's minutes and must become chrono's `%M`.
        let long = cache
            .translate(
                "SELECT DATE_FORMAT(d, '%H:%i') FROM t",
                Dialect::MySql,
                Dialect::DataFusion,
            )
            .expect("translate");
        assert_eq!(long, vec!["SELECT to_char(d, '%H:%M') FROM t"]);
    }

    #[test]
    fn integer_and_decimal_literals_are_different_shapes() {
        let cache = TranslationCache::new(10);
        let int = cache
            .translate("SELECT 7 / 2", Dialect::Postgres, Dialect::MySql)
            .expect("translate");
        assert_eq!(int, vec!["SELECT 7 DIV 2"]);
        let decimal = cache
            .translate("SELECT 7.0 / 2", Dialect::Postgres, Dialect::MySql)
            .expect("translate");
        assert_eq!(decimal, vec!["SELECT 7.0 / 2"]);
    }

    #[test]
    fn shapes_are_reused_with_their_own_constants() {
        let cache = TranslationCache::new(10);
        let first = cache
            .translate(
                "SELECT LOG(a) FROM t WHERE b = 'x' AND c > 3",
                Dialect::MySql,
                Dialect::Postgres,
            )
            .expect("translate");
        let second = cache
            .translate(
                "SELECT LOG(a) FROM t WHERE b = 'yy' AND c > 40",
                Dialect::MySql,
                Dialect::Postgres,
            )
            .expect("translate");
        assert_eq!(first, vec!["SELECT LN(a) FROM t WHERE b = 'x' AND c > 3"]);
        assert_eq!(
            second,
            vec!["SELECT LN(a) FROM t WHERE b = 'yy' AND c > 40"]
        );
        assert_eq!(cache.stats().hits, 1);
        assert_eq!(cache.stats().misses, 1);
    }

    #[test]
    fn value_dependent_translations_are_never_templated() {
        let cache = TranslationCache::new(10);
        for (pattern, expected) in [("%Y", "YYYY"), ("%m", "MM"), ("%d", "DD")] {
            let out = cache
                .translate(
                    &format!("SELECT DATE_FORMAT(d, '{pattern}') FROM t"),
                    Dialect::MySql,
                    Dialect::Postgres,
                )
                .expect("translate");
            assert!(out[0].contains(expected), "{out:?}");
        }
        assert_eq!(cache.stats().hits, 0);
    }

    #[test]
    fn repeated_texts_are_answered_without_parsing() {
        let cache = TranslationCache::new(10);
        let sql = "SELECT DATE_FORMAT(d, '%Y') FROM t";
        let first = cache
            .translate(sql, Dialect::MySql, Dialect::Postgres)
            .expect("translate");
        let again = cache
            .translate(sql, Dialect::MySql, Dialect::Postgres)
            .expect("translate");
        assert_eq!(first, again);
        assert_eq!(
            cache.stats().hits,
            1,
            "the exact text hits even where shapes cannot"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = TranslationCache::new(2);
        for table in ["a", "b", "c", "d"] {
            cache
                .translate(
                    &format!("SELECT 1 FROM {table}"),
                    Dialect::MySql,
                    Dialect::Postgres,
                )
                .expect("translate");
        }
        let stats = cache.stats();
        assert_eq!(stats.entries, 2);
        assert_eq!(stats.evictions, 2);
    }

    #[test]
    fn strings_with_quotes_go_around_the_cache() {
        let cache = TranslationCache::new(10);
        for s in ["it''s", "it''s not"] {
            let out = cache
                .translate(&format!("SELECT '{s}'"), Dialect::MySql, Dialect::Postgres)
                .expect("translate");
            assert!(out[0].contains(s), "{out:?}");
        }
        assert_eq!(cache.stats().hits, 0);
    }
}
