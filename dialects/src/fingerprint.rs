//! Fingerprints: what stays of a statement when its constants are taken out.
//!
//! Two statements that differ only in literal values, parameter placeholders or
//! the length of an `IN` list have the same fingerprint, like
//! `pg_stat_statements.queryid` in PostgreSQL. Telemetry aggregates by it, the
//! latency strategy learns per fingerprint, and the translation cache is keyed
//! by it.

use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Statement, Value, ValueWithSpan, visit_expressions_mut};

/// A statement's shape: normalised text and its stable 64-bit id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// FNV-1a of [`Fingerprint::normalized`]: stable across runs, machines and
    /// Floe versions that print the same normalised text.
    pub id: u64,
    /// The statement with every constant and placeholder printed as `?` and
    /// every `IN (...)` list as `IN (?)`.
    pub normalized: String,
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.id)
    }
}

/// The fingerprint of a parsed statement.
pub fn fingerprint(statement: &Statement) -> Fingerprint {
    let mut normalized = statement.clone();
    let _: ControlFlow<()> = visit_expressions_mut(&mut normalized, |expr| {
        match expr {
            Expr::Value(value) => value.value = Value::Placeholder("?".to_owned()),
            Expr::TypedString(typed) => typed.value = placeholder(),
            Expr::InList { list, .. } => *list = vec![Expr::Value(placeholder())],
            _ => {}
        }
        ControlFlow::Continue(())
    });
    let normalized = normalized.to_string();
    Fingerprint {
        id: fnv1a(normalized.as_bytes()),
        normalized,
    }
}

fn placeholder() -> ValueWithSpan {
    Value::Placeholder("?".to_owned()).into()
}

/// 64-bit FNV-1a: tiny, fast on short texts, and fixed by its specification,
/// so ids never change with a hashing library's version.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dialect, analyze_statement};

    fn fp(sql: &str) -> Fingerprint {
        fingerprint(
            &analyze_statement(sql, Dialect::Postgres)
                .expect("parses")
                .statement,
        )
    }

    #[test]
    fn constants_and_placeholders_do_not_change_the_fingerprint() {
        let a = fp("SELECT * FROM demo.trips WHERE trip_id = 7 AND payment = 'cash' LIMIT 10");
        let b = fp("SELECT * FROM demo.trips WHERE trip_id = 12345 AND payment = 'card' LIMIT 5");
        let c = fp("SELECT * FROM demo.trips WHERE trip_id = $1 AND payment = $2 LIMIT $3");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a.normalized,
            "SELECT * FROM demo.trips WHERE trip_id = ? AND payment = ? LIMIT ?"
        );
    }

    #[test]
    fn in_lists_of_any_length_collapse() {
        let a = fp("SELECT 1 FROM t WHERE a IN (1, 2, 3) AND d > DATE '2024-01-01'");
        let b = fp("SELECT 1 FROM t WHERE a IN (9) AND d > DATE '2025-06-30'");
        assert_eq!(a, b);
        assert_eq!(
            a.normalized,
            "SELECT ? FROM t WHERE a IN (?) AND d > DATE ?"
        );
    }

    #[test]
    fn a_different_shape_gives_a_different_id() {
        assert_ne!(
            fp("SELECT a FROM t WHERE b = 1").id,
            fp("SELECT a FROM t WHERE c = 1").id
        );
        assert_ne!(fp("SELECT a FROM t").id, fp("SELECT a FROM u").id);
    }

    #[test]
    fn the_hash_is_fnv1a_as_specified() {
        // Published FNV-1a 64-bit test vectors: ids must never change.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
