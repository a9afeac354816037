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
//!
//! In front of that sits a cache by *text shape* ([`shape_key`]): a statement
//! whose only difference from one translated before is in the constants it
//! compares columns with (`WHERE id = 48213`) gets that translation with its
//! own constants written in, found with one pass over its bytes and no parse
//! at all. The template is made (and proven, as above) at the shape's second
//! sighting.

use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlparser::ast::{Expr, Statement, Value, ValueWithSpan, visit_expressions_mut};

use crate::shape::{ConstantClass, ShapeCache, ShapeKey};
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

/// What the shape cache knows of a text shape's translation into one dialect.
#[derive(Debug)]
enum ShapeEntry {
    /// The translation of the shape with its masked constants as markers:
    /// the text, and where each marker is in it (byte range, index of the
    /// masked constant), in text order.
    Template {
        text: String,
        slots: Vec<(std::ops::Range<usize>, usize)>,
    },
    /// The translation depends on the constants' values, or the markers did
    /// not survive it: such texts take the parsing path.
    Direct,
}

/// The number of target dialects, one shape cache each.
const DIALECTS: usize = 5;

/// The shape cache of translations into `to`.
fn dialect_slot(to: Dialect) -> usize {
    // A match, not `as usize`: a new dialect must be given its slot here.
    match to {
        Dialect::Postgres => 0,
        Dialect::MySql => 1,
        Dialect::DataFusion => 2,
        Dialect::DuckDb => 3,
        Dialect::Trino => 4,
    }
}

/// Counters of a [`TranslationCache`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Translations answered from a template.
    pub hits: u64,
    /// Translations computed.
    pub misses: u64,
    /// Templates dropped to make room.
    pub evictions: u64,
    /// Templates held now (by statement shape and by text shape).
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
    /// Translations by text shape, one cache per target dialect (the key's
    /// hash includes the source dialect).
    shapes: [ShapeCache<ShapeEntry>; DIALECTS],
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
            shapes: std::array::from_fn(|_| ShapeCache::new(capacity.get())),
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
            entries: self.entries.lock().map_or(0, |e| e.len() as u64)
                + self.shapes.iter().map(|s| s.len() as u64).sum::<u64>(),
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
        // A text of a shape seen before: no parse. Such texts are not kept
        // in the exact cache, where their constants would make each one new.
        let shapes = &self.shapes[dialect_slot(to)];
        let (key, shaped) = shapes.lookup(sql, from);
        let plain = plain_constants(sql, &key);
        if let Some(shaped) = shaped
            && let ShapeEntry::Template { text, slots } = &shaped.value
            && plain
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(vec![fill(text, slots, sql, &key)]);
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
        if let [translated] = out.as_slice()
            && !key.constants.is_empty()
            && plain
        {
            shapes.keep_if_seen(sql, &key, || {
                shape_template(sql, &key, from, to, translated).unwrap_or(ShapeEntry::Direct)
            });
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
            // Quotes, backslashes and control characters are escaped
            // differently by different dialects: such strings are translated
            // directly.
            l.iter()
                .all(|lit| !matches!(lit, Literal::Text(t) if !plain_text(t)))
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

/// The translation template of the shape of `sql` (whose key is `key` and
/// whose translation is `translated`): the text with its masked constants as
/// markers, translated, kept only if no rule read a constant's value and
/// filling it with this text's constants gives `translated` exactly. `None`
/// when the marked text does not translate.
fn shape_template(
    sql: &str,
    key: &ShapeKey,
    from: Dialect,
    to: Dialect,
    translated: &str,
) -> Option<ShapeEntry> {
    if key.constants.len() > MAX_LITERALS {
        return None;
    }
    let mut marked = String::with_capacity(sql.len() + 16 * key.constants.len());
    let mut markers = Vec::with_capacity(key.constants.len());
    let mut at = 0;
    for (index, (range, class)) in key.constants.iter().enumerate() {
        let marker = match class {
            ConstantClass::Int4 | ConstantClass::Int8 => number_marker(index, "0"),
            ConstantClass::Text => format!("'{}'", text_marker(index)),
        };
        marked.push_str(sql.get(at..range.start)?);
        marked.push_str(&marker);
        markers.push(marker);
        at = range.end;
    }
    marked.push_str(sql.get(at..)?);
    let (template, literal_read) =
        crate::translate::translate_tracked(&marked, from, to, &crate::ColumnTypes::default())
            .ok()?;
    let [text] = template.as_slice() else {
        return None;
    };
    if literal_read {
        return Some(ShapeEntry::Direct);
    }
    let mut slots = Vec::with_capacity(markers.len());
    for (index, marker) in markers.iter().enumerate() {
        slots.extend(
            text.match_indices(marker.as_str())
                .map(|(start, found)| (start..start + found.len(), index)),
        );
    }
    slots.sort_by_key(|(range, _)| range.start);
    // A marker found inside a longer number (or overlapping another) is not
    // a marker: the proof below would fail anyway, but say so plainly.
    let isolated = slots.windows(2).all(|w| w[0].0.end <= w[1].0.start)
        && slots.iter().all(|(range, _)| {
            let digit = |i: Option<u8>| i.is_some_and(|c| c.is_ascii_digit());
            !digit(range.start.checked_sub(1).map(|i| text.as_bytes()[i]))
                && !digit(text.as_bytes().get(range.end).copied())
        });
    Some(if isolated && fill(text, &slots, sql, key) == translated {
        ShapeEntry::Template {
            text: text.clone(),
            slots,
        }
    } else {
        ShapeEntry::Direct
    })
}

/// Whether every masked string constant of `sql` (whose key is `key`) is
/// written the same in every target dialect: no quote, backslash or control
/// character inside, which dialects escape each their own way.
fn plain_constants(sql: &str, key: &ShapeKey) -> bool {
    key.constants.iter().all(|(range, class)| {
        *class != ConstantClass::Text
            || sql
                .get(range.start + 1..range.end - 1)
                .is_some_and(plain_text)
    })
}

/// Whether a string's content is written the same in every dialect: no
/// quote, backslash or control character.
fn plain_text(text: &str) -> bool {
    !text
        .bytes()
        .any(|b| b == b'\'' || b == b'\\' || b < 0x20 || b == 0x7f)
}

/// A shape's template with the masked constants of `sql` (whose key is
/// `key`) written in, each as the text wrote it: integers, and strings that
/// [`plain_constants`] admits, which every target dialect reads alike.
fn fill(
    template: &str,
    slots: &[(std::ops::Range<usize>, usize)],
    sql: &str,
    key: &ShapeKey,
) -> String {
    let mut out = String::with_capacity(template.len() + 8 * slots.len());
    let mut at = 0;
    for (range, index) in slots {
        out.push_str(&template[at..range.start]);
        if let Some(constant) = key
            .constants
            .get(*index)
            .and_then(|(r, _)| sql.get(r.clone()))
        {
            out.push_str(constant);
        }
        at = range.end;
    }
    out.push_str(&template[at..]);
    out
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
