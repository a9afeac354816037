//! What routing reads from a statement's tree, remembered per statement shape.
//!
//! Every statement's tables and predicate columns (which engines may run it,
//! what telemetry records) and its fingerprint (whose latency the cost and
//! latency strategies predict) come from walking its syntax tree; the
//! fingerprint also clones and prints it. A prepared statement executed again,
//! or a query text an application repeats, has the same answers every time:
//! a profile of sysbench's point select through the MySQL front end put these
//! walks at about a tenth of Floe's CPU per statement. A simple-protocol
//! client writes its constants into each text, so the cache is keyed by the
//! text's shape; a hit costs one scan of the text, a hash and a comparison.

use std::sync::{Arc, OnceLock};

use floe_dialects::{Analysis, References, ShapeCache, Shaped};

/// Statement shapes remembered.
const CAPACITY: usize = 4096;

/// The tree-derived facts of one statement shape.
pub(super) struct Shape {
    /// The tables and columns the statement uses, unqualified.
    pub(super) references: References,
    /// Its fingerprint id, computed the first time a strategy needs it.
    fingerprint: OnceLock<u64>,
}

impl Shape {
    /// The fingerprint id of `analysis`, a statement of this shape.
    pub(super) fn fingerprint(&self, analysis: &Analysis) -> u64 {
        *self.fingerprint.get_or_init(|| analysis.fingerprint().id)
    }
}

/// [`Shape`]s keyed by statement shape ([`floe_dialects::shape_key`]): the
/// text with the constants it compares masked, so `WHERE aid = 7` and
/// `WHERE aid = 48213` share one entry. A shape is kept from its second
/// sighting, so texts that never repeat do not evict those that do.
pub(super) struct Shapes(ShapeCache<Shape>);

impl Shapes {
    pub(super) fn new() -> Self {
        Shapes(ShapeCache::new(CAPACITY))
    }

    /// The shape of `analysis`, from the cache when its shape was seen.
    ///
    /// Keyed by text, not by tree: callers may have rewritten parameters
    /// (`?` numbered `$1`) or constants in the tree, which changes neither
    /// the tables, the predicate columns and their operator classes, nor the
    /// fingerprint (constants and parameters normalise alike).
    pub(super) fn of(&self, analysis: &Analysis) -> Arc<Shaped<Shape>> {
        self.0
            .get_keyed(analysis.sql(), analysis.shape_key(), || Shape {
                references: analysis.references(),
                fingerprint: OnceLock::new(),
            })
    }
}

#[cfg(test)]
mod tests {
    use floe_dialects::{Dialect, analyze_statement};

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
        assert_eq!(first.value.references, a.references());
        assert_eq!(first.value.fingerprint(&a), a.fingerprint().id);

        let b = analyze_statement("SELECT c FROM u WHERE k > 3", Dialect::MySql).expect("parses");
        let other = shapes.of(&b);
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.value.references.tables, b.references().tables);
        assert_eq!(other.value.fingerprint(&b), b.fingerprint().id);

        // Other constants compared: the same shape.
        let c =
            analyze_statement("SELECT c FROM u WHERE k > 3000", Dialect::MySql).expect("parses");
        shapes.of(&c);
        assert!(Arc::ptr_eq(&shapes.of(&b), &shapes.of(&c)));

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
        for n in 0..2 * CAPACITY {
            let once = analyze_statement(
                &format!("SELECT c{n} FROM t WHERE id = 1"),
                Dialect::Postgres,
            )
            .expect("parses");
            shapes.of(&once);
        }
        assert!(Arc::ptr_eq(&kept, &shapes.of(&hot)));
    }
}
