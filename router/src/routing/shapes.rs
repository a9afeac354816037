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

/// Slots of the door keeper: the keys of texts seen once, direct-mapped.
const DOOR_SLOTS: usize = 4096;

/// An LRU of [`Shape`]s keyed by statement text and dialect.
///
/// A text enters the LRU the second time it is seen: the door keeper (one
/// key per slot, no allocation) remembers texts seen once. Clients of the
/// simple protocols send each statement with its constants inline, so most
/// texts are never seen again; without the door keeper each would evict a
/// shape that repeats (a prepared statement's) and pay for its own entry.
pub(super) struct Shapes {
    entries: Mutex<lru::LruCache<u64, Arc<Shape>>>,
    door: Mutex<Box<[u64; DOOR_SLOTS]>>,
}

impl Shapes {
    pub(super) fn new() -> Self {
        Shapes {
            entries: Mutex::new(lru::LruCache::new(CAPACITY)),
            door: Mutex::new(Box::new([0; DOOR_SLOTS])),
        }
    }

    /// Whether `key` was seen before; remembers it either way.
    fn seen_before(&self, key: u64) -> bool {
        let Ok(mut door) = self.door.lock() else {
            return true;
        };
        #[allow(clippy::cast_possible_truncation)] // a slot index: the low bits
        let slot = &mut door[key as usize % DOOR_SLOTS];
        let seen = *slot == key;
        *slot = key;
        seen
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
        if self.seen_before(key)
            && let Ok(mut entries) = self.entries.lock()
        {
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
        let once = shapes.of(&a);
        let first = shapes.of(&a);
        assert!(
            !Arc::ptr_eq(&once, &first),
            "a text seen once is not kept: it is remembered the second time"
        );
        let again = shapes.of(&a);
        assert!(Arc::ptr_eq(&first, &again), "a third lookup is a hit");
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
        for _ in 0..2 {
            shapes.of(&my);
            shapes.of(&pg);
        }
        assert!(!Arc::ptr_eq(&shapes.of(&my), &shapes.of(&pg)));
    }

    #[test]
    fn texts_seen_once_do_not_evict_shapes_that_repeat() {
        let shapes = Shapes::new();
        let hot =
            analyze_statement("SELECT c FROM t WHERE id = $1", Dialect::Postgres).expect("parses");
        shapes.of(&hot);
        let kept = shapes.of(&hot);
        for n in 0..2 * CAPACITY.get() {
            let once = analyze_statement(
                &format!("SELECT c FROM t WHERE id = {n}"),
                Dialect::Postgres,
            )
            .expect("parses");
            shapes.of(&once);
        }
        assert!(Arc::ptr_eq(&kept, &shapes.of(&hot)));
    }
}
