//! What routing reads from a statement's tree, remembered by exact text.
//!
//! Every statement's tables and predicate columns (which engines may run it,
//! what telemetry records) and its fingerprint (whose latency the cost and
//! latency strategies predict) come from walking its syntax tree; the
//! fingerprint also clones and prints it. A prepared statement executed again,
//! or a query text an application repeats, has the same answers every time:
//! a profile of sysbench's point select through the MySQL front end put these
//! walks at about a tenth of Floe's CPU per statement. A hit here costs a hash
//! of the text and one comparison.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use floe_dialects::{Analysis, Dialect, References};

/// Statement texts remembered; each entry holds its text and references.
const CAPACITY: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

/// The tree-derived facts of one statement text.
pub(super) struct Shape {
    dialect: Dialect,
    sql: String,
    /// The tables and columns the statement uses, unqualified.
    pub(super) references: References,
    /// Its fingerprint id, computed the first time a strategy needs it.
    fingerprint: OnceLock<u64>,
}

impl Shape {
    fn of(analysis: &Analysis) -> Self {
        Shape {
            dialect: analysis.dialect,
            sql: analysis.sql.clone(),
            references: analysis.references(),
            fingerprint: OnceLock::new(),
        }
    }

    /// The fingerprint id of `analysis`, the statement this shape was made
    /// from (or one of the same text).
    pub(super) fn fingerprint(&self, analysis: &Analysis) -> u64 {
        *self.fingerprint.get_or_init(|| analysis.fingerprint().id)
    }
}

/// An LRU of [`Shape`]s keyed by statement text and dialect.
pub(super) struct Shapes {
    entries: Mutex<lru::LruCache<u64, Arc<Shape>>>,
}

impl Shapes {
    pub(super) fn new() -> Self {
        Shapes {
            entries: Mutex::new(lru::LruCache::new(CAPACITY)),
        }
    }

    /// The shape of `analysis`, from the cache when its text was seen.
    ///
    /// Keyed by text, not by tree: callers may have rewritten parameters
    /// (`?` numbered `$1`) or constants in the tree, which changes neither
    /// the tables, the predicate columns and their operator classes, nor the
    /// fingerprint (constants and parameters normalise alike).
    pub(super) fn of(&self, analysis: &Analysis) -> Arc<Shape> {
        let key = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (analysis.dialect, analysis.sql.as_str()).hash(&mut hasher);
            hasher.finish()
        };
        if let Ok(mut entries) = self.entries.lock()
            && let Some(shape) = entries.get(&key)
            && shape.dialect == analysis.dialect
            && shape.sql == analysis.sql
        {
            return Arc::clone(shape);
        }
        // Walk outside the lock: other sessions' hits need not wait.
        let shape = Arc::new(Shape::of(analysis));
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(key, Arc::clone(&shape));
        }
        shape
    }
}

#[cfg(test)]
mod tests {
    use floe_dialects::analyze_statement;

    use super::*;

    #[test]
    fn the_same_text_is_walked_once_and_other_texts_are_not_confused() {
        let shapes = Shapes::new();
        let a = analyze_statement("SELECT c FROM t WHERE id = ?", Dialect::MySql).expect("parses");
        let first = shapes.of(&a);
        let again = shapes.of(&a);
        assert!(Arc::ptr_eq(&first, &again), "a second lookup is a hit");
        assert_eq!(first.references, a.references());
        assert_eq!(first.fingerprint(&a), a.fingerprint().id);

        let b = analyze_statement("SELECT c FROM u WHERE k > 3", Dialect::MySql).expect("parses");
        let other = shapes.of(&b);
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.references.tables, b.references().tables);
        assert_eq!(other.fingerprint(&b), b.fingerprint().id);

        // The same text in another dialect is another entry.
        let my = analyze_statement("SELECT 1 FROM t", Dialect::MySql).expect("parses");
        let pg = analyze_statement("SELECT 1 FROM t", Dialect::Postgres).expect("parses");
        assert!(!Arc::ptr_eq(&shapes.of(&my), &shapes.of(&pg)));
    }
}
