//! Arbitrary and mutated SQL through every entry point (analysis, references,
//! placeholders, translation with and without the cache), in every dialect.
//!
//! The number of cases is bounded (`PROPTEST_CASES`, default 256 per
//! property here) so the test command stays fast; raise it for a longer run:
//! `PROPTEST_CASES=100000 cargo test -p floe-dialects --test it fuzz`.

use floe_dialects::{
    Analyses, Dialect, TranslationCache, analyze, number_placeholders, references, shape_key,
    split, translate,
};
use proptest::prelude::*;

const DIALECTS: [Dialect; 5] = [
    Dialect::Postgres,
    Dialect::MySql,
    Dialect::DataFusion,
    Dialect::DuckDb,
    Dialect::Trino,
];

/// Statements to mutate: real shapes reach deeper into the parser than noise.
const SEEDS: &[&str] = &[
    "SELECT a, count(*) FROM t WHERE b = 1 AND c IN (1, 2) GROUP BY a ORDER BY 2 DESC LIMIT 5",
    "WITH x AS (SELECT * FROM t) SELECT * FROM x JOIN u ON x.id = u.id WHERE u.name LIKE 'a%'",
    "INSERT INTO t (a, b) VALUES (?, $1), ('x''y', NULL)",
    "SELECT `a` FROM `db`.`t` WHERE d BETWEEN '2024-01-01' AND now() - INTERVAL '1' DAY",
    "UPDATE t SET a = a + 1 WHERE id = (SELECT max(id) FROM u); DELETE FROM t WHERE a IS NULL",
    "SELECT CASE WHEN a > 0 THEN 'p' ELSE 'n' END, sum(x) OVER (PARTITION BY y ORDER BY z) FROM t",
    "SET search_path = public; SHOW ALL; BEGIN; COMMIT",
    "SELECT $$dollar ; quoted$$, E'\\n', /* comment ; */ 1 -- trailing ;",
];

/// Runs every entry point on `sql` in every dialect; any panic fails the test.
fn exercise(sql: &str) {
    let cache = TranslationCache::new(16);
    for dialect in DIALECTS {
        for target in [Dialect::Postgres, Dialect::MySql] {
            let _ = translate(sql, dialect, target);
            let _ = cache.translate(sql, dialect, target);
        }
        let _ = split(sql, dialect);
        let _ = shape_key(sql, dialect);
        // Seen three times, the text's shape is cached: the analysis must
        // still be the parse's.
        let shapes = Analyses::new(16);
        for _ in 0..3 {
            assert_same_analyses(&shapes, sql, dialect);
        }
        if let Ok(analyses) = analyze(sql, dialect) {
            for mut analysis in analyses {
                let _ = analysis.fingerprint();
                let _ = references(&analysis.statement);
                let _ = number_placeholders(&mut analysis.statement);
            }
        }
    }
}

/// `Analyses` gives for `sql` what `analyze` gives: the same statements, or
/// an error both times.
fn assert_same_analyses(shapes: &Analyses, sql: &str, dialect: Dialect) {
    let direct = analyze(sql, dialect);
    let cached = shapes.analyze(sql, dialect);
    match (direct, cached) {
        (Ok(direct), Ok(cached)) => {
            let text = |a: &[floe_dialects::Analysis]| {
                a.iter()
                    .map(|a| {
                        (
                            a.sql().to_owned(),
                            a.statement.to_string(),
                            a.kind,
                            a.read_only,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(text(&cached), text(&direct), "{sql}");
        }
        (Err(_), Err(_)) => {}
        (direct, cached) => panic!(
            "{sql}: analyze gave {:?}, Analyses {:?}",
            direct.map(|a| a.len()),
            cached.map(|a| a.len())
        ),
    }
}

/// Statement shapes with constants to fill in: `{i}` an integer, `{s}` the
/// inside of a quoted string.
const SHAPES: &[&str] = &[
    "SELECT abalance FROM pgbench_accounts WHERE aid = {i}",
    "SELECT a, b FROM t WHERE a >= {i} AND b <> '{s}' AND c < {i} ORDER BY 1 LIMIT 3",
    "SELECT count(*) FROM t JOIN u ON t.id = u.id WHERE u.name = '{s}' OR t.n != {i}",
    "SELECT * FROM t WHERE d > '{s}'::date AND x IN (SELECT y FROM u WHERE z = {i})",
    "UPDATE t SET a = {i} WHERE b = '{s}'",
    "SELECT c FROM sbtest1 WHERE id={i}",
];

/// A seed with bytes deleted, duplicated or replaced at random places.
fn mutated() -> impl Strategy<Value = String> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..8),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, kind, c) in edits {
                if chars.is_empty() {
                    chars.push(c);
                    continue;
                }
                let i = at.index(chars.len());
                match kind {
                    0 => {
                        chars.remove(i);
                    }
                    1 => chars.insert(i, c),
                    2 => chars[i] = c,
                    _ => {
                        let tail: Vec<char> = chars[i..].to_vec();
                        chars.extend(tail);
                    }
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn arbitrary_text_never_panics(sql in "\\PC{0,200}") {
        exercise(&sql);
    }

    #[test]
    fn sql_like_tokens_never_panic(
        tokens in prop::collection::vec(
            prop::sample::select(vec![
                "SELECT", "FROM", "WHERE", "(", ")", ",", ";", "'", "\"", "`", "$1", "?", "$$",
                "--", "/*", "*/", "a", "t.b", "1", "1.5e3", "=", "IN", "LIKE", "JOIN", "ON",
                "WITH", "AS", "GROUP BY", "ORDER BY", "@@x", "@y", "E'", "\\", "INTERVAL",
            ]),
            0..40,
        )
    ) {
        exercise(&tokens.join(" "));
    }

    #[test]
    fn mutated_statements_never_panic(sql in mutated()) {
        exercise(&sql);
    }

    /// Texts of one shape with other constants (integers of every size,
    /// strings with quotes, non-ASCII, what looks like SQL): from the third
    /// on, `Analyses` builds them from the cached tree, which must give what
    /// parsing gives.
    #[test]
    fn texts_of_one_shape_analyse_as_they_parse(
        shape in prop::sample::select(SHAPES),
        constants in prop::collection::vec((any::<u64>(), "[^\\\\]{0,12}"), 4..8),
    ) {
        for dialect in [Dialect::Postgres, Dialect::MySql] {
            let shapes = Analyses::new(16);
            for (i, text) in &constants {
                let sql = shape
                    .replace("{i}", &i.to_string())
                    .replace("{s}", &text.replace('\'', "''"));
                assert_same_analyses(&shapes, &sql, dialect);
            }
        }
    }

    /// The same texts through the translation cache, whose text-shape
    /// templates answer them from the third on: exactly what translating
    /// each directly gives.
    #[test]
    fn texts_of_one_shape_translate_through_the_cache_as_directly(
        shape in prop::sample::select(SHAPES),
        constants in prop::collection::vec((any::<u64>(), "[^\\\\]{0,12}"), 4..8),
    ) {
        for (from, to) in [
            (Dialect::MySql, Dialect::Postgres),
            (Dialect::Postgres, Dialect::MySql),
            (Dialect::MySql, Dialect::DataFusion),
        ] {
            let cache = TranslationCache::new(16);
            for (i, text) in &constants {
                let sql = shape
                    .replace("{i}", &i.to_string())
                    .replace("{s}", &text.replace('\'', "''"));
                let cached = cache.translate(&sql, from, to);
                let direct = translate(&sql, from, to);
                match (&cached, &direct) {
                    (Ok(cached), Ok(direct)) => prop_assert_eq!(cached, direct, "{}", sql),
                    (Err(_), Err(_)) => {}
                    _ => prop_assert!(false, "{}: cache {:?}, direct {:?}", sql, cached, direct),
                }
            }
        }
    }
}

#[test]
fn the_seeds_analyze_cleanly_somewhere() {
    for seed in SEEDS {
        assert!(
            DIALECTS.iter().any(|d| analyze(seed, *d).is_ok()),
            "no dialect parses the seed {seed}"
        );
        exercise(seed);
    }
}
