//! Statement shapes read from the text alone, without parsing.
//!
//! A client of a simple protocol writes its constants into the text
//! (`... WHERE aid = 48213`), so nearly every text it sends is new, yet what
//! Floe derives from a statement's tree — its tables and predicate columns,
//! its fingerprint, which of its constants may become parameters — is the same
//! for every text of one shape. [`shape_key`] finds that shape with one pass
//! over the bytes: the key of two texts is the same only when they are equal
//! byte for byte except in the *masked constants*, and there both hold a
//! constant of the same [`ConstantClass`]. [`ShapeCache`] keeps one value per
//! shape, comparing the unmasked text on every hit, so a hash collision can
//! never hand one shape's facts to another.
//!
//! Masked are only plain integer and plain quoted-string constants written
//! right after a comparison operator (`=`, `<>`, `!=`, `<`, `<=`, `>`,
//! `>=`): the facts cached per shape do not depend on such a constant's value
//! (a comparison's operator class does not; a `LIKE` pattern's prefix would,
//! and `LIKE` is not a comparison here), while anything whose value could
//! change the tree — a number with a point or exponent, an escape string, a
//! string holding a backslash, a constant in a `LIMIT` — stays in the key as
//! written. Integers are classed by the type PostgreSQL gives them (`int4`
//! if the value fits, else `int8`), since a parameter must keep that type.
//! The key is therefore never coarser than the fingerprint, which normalises
//! every constant.

use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::Dialect;

/// What a masked constant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConstantClass {
    /// Digits only, with a value that fits `int4`.
    Int4,
    /// Digits only, with a value that fits `int8` but not `int4`.
    Int8,
    /// A plain single-quoted string with no backslash.
    Text,
}

impl ConstantClass {
    /// The class of an integer constant of value `value`.
    pub(crate) fn of_integer(value: i64) -> Self {
        if i32::try_from(value).is_ok() {
            ConstantClass::Int4
        } else {
            ConstantClass::Int8
        }
    }

    /// PostgreSQL's type OID for a constant of this class; 0 (left to the
    /// context, as for a quoted constant) for text.
    pub fn oid(self) -> u32 {
        match self {
            ConstantClass::Int4 => crate::INT4_OID,
            ConstantClass::Int8 => crate::INT8_OID,
            ConstantClass::Text => 0,
        }
    }

    /// The value of a constant of this class written `written`: the integer
    /// as PostgreSQL prints it, or the string without its quotes.
    pub fn value(self, written: &str) -> Option<String> {
        match self {
            ConstantClass::Int4 | ConstantClass::Int8 => {
                written.parse::<i64>().ok().map(|n| n.to_string())
            }
            ConstantClass::Text => written
                .strip_prefix('\'')?
                .strip_suffix('\'')
                .map(|inner| inner.replace("''", "'")),
        }
    }
}

/// A statement text's shape: its key and where its masked constants are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeKey {
    /// A hash of the dialect and of the text with each masked constant
    /// replaced by its class.
    pub id: u64,
    /// The masked constants, in text order: byte range (quotes included for
    /// a string) and class.
    pub constants: Vec<(Range<usize>, ConstantClass)>,
}

impl ShapeKey {
    /// Whether `sql` (whose key is `self`) and `other_sql` (whose key is
    /// `other`) are the same shape: the same masked classes, and the same
    /// bytes everywhere else.
    pub fn same_shape(&self, sql: &str, other: &ShapeKey, other_sql: &str) -> bool {
        if self.id != other.id || self.constants.len() != other.constants.len() {
            return false;
        }
        let (mut at, mut other_at) = (0, 0);
        for ((range, class), (other_range, other_class)) in
            self.constants.iter().zip(&other.constants)
        {
            if class != other_class
                || sql.get(at..range.start) != other_sql.get(other_at..other_range.start)
            {
                return false;
            }
            at = range.end;
            other_at = other_range.end;
        }
        sql.get(at..) == other_sql.get(other_at..)
    }
}

/// The shape of one statement's text in `dialect` (see the module's
/// documentation). Never fails: a text the scan does not follow (a dollar
/// quote, an unterminated comment) gets a key with nothing masked.
///
/// ```
/// use floe_dialects::{shape_key, ConstantClass, Dialect};
///
/// let a = shape_key("SELECT * FROM t WHERE id = 7 AND s = 'x'", Dialect::Postgres);
/// let b = shape_key("SELECT * FROM t WHERE id = 48213 AND s = 'it''s'", Dialect::Postgres);
/// assert_eq!(a.id, b.id);
/// assert_eq!(b.constants[0], (27..32, ConstantClass::Int4));
/// let c = shape_key("SELECT * FROM t WHERE id = 7 LIMIT 5", Dialect::Postgres);
/// assert_ne!(a.id, c.id);
/// ```
pub fn shape_key(sql: &str, dialect: Dialect) -> ShapeKey {
    let constants = scan(sql.as_bytes(), dialect).unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dialect.hash(&mut hasher);
    let mut at = 0;
    for (range, class) in &constants {
        hasher.write(&sql.as_bytes()[at..range.start]);
        // 0xFF never occurs in UTF-8: the marker cannot be mistaken for text.
        hasher.write(&[0xFF, *class as u8]);
        at = range.end;
    }
    hasher.write(&sql.as_bytes()[at..]);
    ShapeKey {
        id: hasher.finish(),
        constants,
    }
}

/// The masked constants of `b`, or `None` when the scan cannot follow it.
fn scan(b: &[u8], dialect: Dialect) -> Option<Vec<(Range<usize>, ConstantClass)>> {
    let mysql = dialect == Dialect::MySql;
    let mut constants = Vec::new();
    // The last significant token was a comparison operator.
    let mut after_comparison = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let mut comparison = false;
        match c {
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = line_end(b, i);
                continue;
            }
            b'#' if mysql => {
                i = line_end(b, i);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = block_comment_end(b, i, !mysql)?;
                continue;
            }
            b'\'' => {
                let (end, backslash) = quoted(b, i, b'\'', mysql)?;
                i = end;
                if after_comparison && !backslash && !string_follows(b, i) {
                    constants.push((start..i, ConstantClass::Text));
                }
            }
            // MySQL reads backslashes in a double-quoted string, never in an identifier.
            b'"' | b'`' => i = quoted(b, i, c, mysql && c == b'"')?.0,
            b'$' => {
                // `$1` is a placeholder; anything else may open a dollar quote.
                i += 1;
                if !b.get(i).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            b'0'..=b'9' => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if b.get(i).is_some_and(|&n| is_word(n) || n == b'.') {
                    // `1.5`, `1e3`, `0x1f`, `1_000`: not a plain integer.
                    while b.get(i).is_some_and(|&n| is_word(n) || n == b'.') {
                        i += 1;
                    }
                } else if after_comparison && let Some(class) = integer_class(&b[start..i]) {
                    constants.push((start..i, class));
                }
            }
            _ if is_word(c) => {
                while b.get(i).is_some_and(|&n| is_word(n) || n == b'$') {
                    i += 1;
                }
                if b.get(i) == Some(&b'\'') {
                    // A prefixed string (`E'..'`, `X'..'`, `_utf8mb4'..'`):
                    // never masked. Only `E` strings read backslashes in
                    // PostgreSQL; every string does in MySQL.
                    let escapes = mysql || matches!(&b[start..i], b"E" | b"e");
                    i = quoted(b, i, b'\'', escapes)?.0;
                }
            }
            _ if is_operator(c) => {
                while b.get(i).is_some_and(|&n| is_operator(n))
                    && !(b[i] == b'-' && b.get(i + 1) == Some(&b'-'))
                    && !(b[i] == b'/' && b.get(i + 1) == Some(&b'*'))
                    && !(mysql && b[i] == b'#')
                {
                    i += 1;
                }
                comparison = matches!(
                    &b[start..i],
                    b"=" | b"<>" | b"!=" | b"<" | b"<=" | b">" | b">="
                );
            }
            _ => i += 1,
        }
        after_comparison = comparison;
    }
    Some(constants)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn is_operator(c: u8) -> bool {
    b"+-*/<>=~!@#%^&|?".contains(&c)
}

/// The class of an integer written as `digits`, if it fits `int8`.
fn integer_class(digits: &[u8]) -> Option<ConstantClass> {
    let value: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(ConstantClass::of_integer(value))
}

/// The index just past the line comment starting at `i`.
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| i + n + 1)
}

/// The index just past the block comment opening at `i`; PostgreSQL's nest.
fn block_comment_end(b: &[u8], mut i: usize, nests: bool) -> Option<usize> {
    let mut depth = 0usize;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') if depth == 0 || nests => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The index just past the quoted token whose opening `quote` is at `i`
/// (a doubled quote stands for itself; with `escapes`, so does a quote after
/// a backslash), and whether it holds a backslash.
fn quoted(b: &[u8], mut i: usize, quote: u8, escapes: bool) -> Option<(usize, bool)> {
    let mut backslash = false;
    i += 1;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            backslash = true;
            i += if escapes { 2 } else { 1 };
        } else if c == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return Some((i + 1, backslash));
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Whether another string follows the one ending at `i` across whitespace:
/// PostgreSQL joins `'a'` newline `'b'` into one constant.
fn string_follows(b: &[u8], i: usize) -> bool {
    b[i..]
        .iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|&c| c == b'\'')
}

/// Slots of a [`ShapeCache`]'s door keeper.
const DOOR_SLOTS: usize = 4096;

/// One shape's cached value, with the text it was made from.
#[derive(Debug)]
pub struct Shaped<T> {
    sql: String,
    key: ShapeKey,
    /// What the caller made from the first text of this shape.
    pub value: T,
}

/// A bounded (least recently used) map from statement shapes to what a caller
/// derives from them, safe to share.
///
/// A shape enters the cache the second time it is seen: a door keeper (one
/// key per slot, direct-mapped, no allocation) remembers shapes seen once, so
/// texts that never repeat do not evict the shapes that do.
#[derive(Debug)]
pub struct ShapeCache<T> {
    entries: Mutex<lru::LruCache<u64, Arc<Shaped<T>>>>,
    door: Mutex<Box<[u64; DOOR_SLOTS]>>,
}

impl<T> ShapeCache<T> {
    /// A cache of at most `capacity` shapes (at least one).
    pub fn new(capacity: usize) -> Self {
        ShapeCache {
            entries: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            door: Mutex::new(Box::new([0; DOOR_SLOTS])),
        }
    }

    /// The value for the shape of `sql`, made by `make` from `sql` and its key
    /// when the shape is not cached; also returns the key of `sql`, whose
    /// constants' ranges are where this text holds them.
    ///
    /// `make` runs outside the cache's lock: other callers' hits do not wait.
    pub fn get(
        &self,
        sql: &str,
        dialect: Dialect,
        make: impl FnOnce(&ShapeKey) -> T,
    ) -> (ShapeKey, Arc<Shaped<T>>) {
        let key = shape_key(sql, dialect);
        let shaped = self.get_keyed(sql, &key, || make(&key));
        (key, shaped)
    }

    /// [`ShapeCache::get`] for a text whose key is known (`key`, the key of
    /// `sql`): the text is not scanned again.
    pub fn get_keyed(&self, sql: &str, key: &ShapeKey, make: impl FnOnce() -> T) -> Arc<Shaped<T>> {
        if let Some(shaped) = self.find(sql, key) {
            return shaped;
        }
        self.keep(sql, key, make())
    }

    /// The number of shapes held.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether no shape is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of `sql` and the cached value of its shape, if any.
    pub fn lookup(&self, sql: &str, dialect: Dialect) -> (ShapeKey, Option<Arc<Shaped<T>>>) {
        let key = shape_key(sql, dialect);
        let hit = self.find(sql, &key);
        (key, hit)
    }

    /// The cached value of the shape of `sql`, whose key is `key`, if any.
    pub fn find(&self, sql: &str, key: &ShapeKey) -> Option<Arc<Shaped<T>>> {
        self.entries.lock().ok().and_then(|mut entries| {
            entries
                .get(&key.id)
                .filter(|shaped| key.same_shape(sql, &shaped.key, &shaped.sql))
                .map(Arc::clone)
        })
    }

    /// `value` as the value of the shape of `sql` (whose key is `key`):
    /// kept if the shape was seen before, returned either way.
    pub fn keep(&self, sql: &str, key: &ShapeKey, value: T) -> Arc<Shaped<T>> {
        let shaped = Arc::new(Shaped {
            sql: sql.to_owned(),
            key: key.clone(),
            value,
        });
        if self.seen_before(key.id)
            && let Ok(mut entries) = self.entries.lock()
        {
            entries.put(key.id, Arc::clone(&shaped));
        }
        shaped
    }

    /// Keeps what `make` gives as the value of the shape of `sql` (whose key
    /// is `key`) if the shape was seen before; `make` runs only then.
    pub fn keep_if_seen(&self, sql: &str, key: &ShapeKey, make: impl FnOnce() -> T) {
        if self.seen_before(key.id) {
            let shaped = Arc::new(Shaped {
                sql: sql.to_owned(),
                key: key.clone(),
                value: make(),
            });
            if let Ok(mut entries) = self.entries.lock() {
                entries.put(key.id, shaped);
            }
        }
    }

    /// Whether `id` was seen before; remembers it either way.
    fn seen_before(&self, id: u64) -> bool {
        let Ok(mut door) = self.door.lock() else {
            return true;
        };
        #[allow(clippy::cast_possible_truncation)] // a slot index: the low bits
        let slot = &mut door[id as usize % DOOR_SLOTS];
        let seen = *slot == id;
        *slot = id;
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(sql: &str) -> Vec<&str> {
        shape_key(sql, Dialect::Postgres)
            .constants
            .iter()
            .map(|(range, _)| &sql[range.clone()])
            .collect()
    }

    #[test]
    fn only_plain_constants_after_a_comparison_are_masked() {
        assert_eq!(
            masked(
                "SELECT 5, 'a' FROM t WHERE a=1 AND b <> 'x''y' AND c >= 3000000000 ORDER BY 1 LIMIT 2"
            ),
            ["1", "'x''y'", "3000000000"]
        );
        for sql in [
            "SELECT * FROM t WHERE x = 1.5",
            "SELECT * FROM t WHERE x = 1e5",
            "SELECT * FROM t WHERE x = 99999999999999999999",
            "SELECT * FROM t WHERE x = E'a'",
            "SELECT * FROM t WHERE x = 'a\\b'",
            "SELECT * FROM t WHERE x = 'a'\n'b'",
            "SELECT * FROM t WHERE x =-5",
            "SELECT * FROM t WHERE x LIKE 'a%'",
            "SELECT * FROM t WHERE x = $1",
            "SELECT * FROM t WHERE x = $$a = 1$$",
            "SELECT * FROM t WHERE x = DATE '2024-01-01'",
            "SELECT * FROM t /* x = 1 /* nested */ y = 2 */ WHERE x IN (1, 2)",
            "SELECT * FROM t -- x = 1\n",
            "SELECT \"a = 1\" FROM t",
            "SELECT * FROM t /* x = 1",
        ] {
            assert_eq!(masked(sql), Vec::<&str>::new(), "{sql}");
        }
        let mysql = "SELECT * FROM t WHERE a = 'it\\'s' # b = 1\n AND `c = 2` = 3";
        let key = shape_key(mysql, Dialect::MySql);
        let constants: Vec<&str> = key
            .constants
            .iter()
            .map(|(r, _)| &mysql[r.clone()])
            .collect();
        assert_eq!(constants, ["3"]);
    }

    #[test]
    fn texts_of_one_shape_share_a_key_and_others_do_not() {
        let key = |sql| shape_key(sql, Dialect::Postgres);
        let a = "SELECT * FROM t WHERE id = 7 AND s = 'é'";
        let b = "SELECT * FROM t WHERE id = 123456 AND s = 'it''s'";
        assert_eq!(key(a).id, key(b).id);
        assert!(key(a).same_shape(a, &key(b), b));
        for other in [
            "SELECT * FROM t WHERE id = 3000000000 AND s = 'x'",
            "SELECT * FROM t WHERE id = 'x' AND s = 'x'",
            "SELECT * FROM t WHERE id = 7 AND s = 'x' LIMIT 1",
            "SELECT * FROM u WHERE id = 7 AND s = 'x'",
            "select * FROM t WHERE id = 7 AND s = 'x'",
        ] {
            assert_ne!(key(a).id, key(other).id, "{other}");
            assert!(!key(a).same_shape(a, &key(other), other), "{other}");
        }
        assert_ne!(
            shape_key(a, Dialect::Postgres).id,
            shape_key(a, Dialect::MySql).id
        );
    }

    #[test]
    fn the_cache_keeps_a_shape_from_its_second_sighting_and_checks_the_text() {
        let cache: ShapeCache<String> = ShapeCache::new(8);
        fn make(sql: &str) -> impl FnOnce(&ShapeKey) -> String + '_ {
            move |_| sql.to_owned()
        }
        let first = "SELECT * FROM t WHERE id = 1";
        let (_, made) = cache.get(first, Dialect::Postgres, make(first));
        assert_eq!(made.value, first);
        let second = "SELECT * FROM t WHERE id = 2";
        let (_, made) = cache.get(second, Dialect::Postgres, make(second));
        assert_eq!(made.value, second, "seen once: not kept");
        let third = "SELECT * FROM t WHERE id = 3";
        let (key, made) = cache.get(third, Dialect::Postgres, make(third));
        assert_eq!(made.value, second, "kept at the second sighting");
        assert_eq!(&third[key.constants[0].0.clone()], "3");
        let other = "SELECT * FROM u WHERE id = 3";
        let (_, made) = cache.get(other, Dialect::Postgres, make(other));
        assert_eq!(made.value, other);
    }
}
