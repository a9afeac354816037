//! The translation cache's text-shape path: a text whose comparison
//! constants differ from a shape translated before is answered from that
//! shape's template without parsing; it must be exactly what translating the
//! text directly gives, on every statement of the conformance corpus.

use std::path::Path;

use floe_dialects::{ConstantClass, Dialect, TranslationCache, shape_key, translate};

/// The corpus statements of one file (one per line, `--` comments skipped).
fn corpus(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/corpus")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(str::to_owned)
        .collect()
}

/// `sql` with its masked constants replaced: the `n`th variant of each.
fn variant(sql: &str, dialect: Dialect, n: u32) -> String {
    let key = shape_key(sql, dialect);
    let mut out = String::new();
    let mut at = 0;
    for (range, class) in &key.constants {
        out.push_str(&sql[at..range.start]);
        let written = &sql[range.clone()];
        match class {
            ConstantClass::Int4 | ConstantClass::Int8 => {
                let value: i64 = written.parse().expect("a masked integer");
                out.push_str(&(value / 2 + i64::from(n)).to_string());
            }
            ConstantClass::Text => {
                let inner = &written[1..written.len() - 1];
                out.push('\'');
                out.push_str(&"x".repeat(n as usize));
                out.push_str(inner);
                if n == 2 {
                    out.push_str("''q");
                }
                out.push('\'');
            }
        }
        at = range.end;
    }
    out.push_str(&sql[at..]);
    out
}

#[test]
fn corpus_texts_of_a_known_shape_translate_as_they_do_directly() {
    let (mut templated, mut shapes) = (0, 0);
    for (file, from, targets) in [
        (
            "mysql.sql",
            Dialect::MySql,
            [Dialect::Postgres, Dialect::DataFusion],
        ),
        (
            "postgres.sql",
            Dialect::Postgres,
            [Dialect::MySql, Dialect::DataFusion],
        ),
    ] {
        for to in targets {
            let cache = TranslationCache::new(1024);
            for sql in corpus(file) {
                if shape_key(&sql, from).constants.is_empty() {
                    continue;
                }
                shapes += 1;
                // The first two sightings make the template; the third and
                // fourth text are answered from it where it holds.
                let before = cache.stats();
                for n in 0..4 {
                    let text = variant(&sql, from, n);
                    let cached = cache.translate(&text, from, to);
                    let direct = translate(&text, from, to);
                    match (&cached, &direct) {
                        (Ok(cached), Ok(direct)) => {
                            assert_eq!(cached, direct, "{from}→{to}: {text}")
                        }
                        (Err(_), Err(_)) => {}
                        _ => panic!("{from}→{to}: {text}: cache {cached:?}, direct {direct:?}"),
                    }
                }
                if cache.stats().misses - before.misses <= 2 {
                    templated += 1;
                }
            }
        }
    }
    // Most of the corpus's shapes with comparison constants are templated
    // (the others read a constant's value, or their constants need escaping).
    assert!(
        templated * 2 > shapes,
        "only {templated} of {shapes} shapes were answered from a template"
    );
}

#[test]
fn a_known_shape_is_answered_from_its_template_unless_a_constant_needs_escaping() {
    let cache = TranslationCache::new(16);
    let shape =
        |id: &str, s: &str| format!("SELECT IFNULL(c, 0) FROM t WHERE id = {id} AND s = '{s}'");
    for (id, s) in [("7", "x"), ("8", "yy")] {
        cache
            .translate(&shape(id, s), Dialect::MySql, Dialect::Postgres)
            .expect("translate");
    }
    let misses = cache.stats().misses;
    let out = cache
        .translate(
            &shape("123456", "zz top"),
            Dialect::MySql,
            Dialect::Postgres,
        )
        .expect("translate");
    assert_eq!(
        out,
        vec!["SELECT COALESCE(c, 0) FROM t WHERE id = 123456 AND s = 'zz top'"]
    );
    assert_eq!(cache.stats().misses, misses, "answered without translating");
    // A quote is escaped each dialect its own way: translated afresh.
    let quoted = shape("9", "it''s");
    let out = cache
        .translate(&quoted, Dialect::MySql, Dialect::Postgres)
        .expect("translate");
    assert_eq!(
        out,
        translate(&quoted, Dialect::MySql, Dialect::Postgres).expect("direct")
    );
    assert_eq!(cache.stats().misses, misses + 1);
}

#[test]
fn a_shape_whose_translation_reads_a_constant_is_translated_every_time() {
    let cache = TranslationCache::new(16);
    for (pattern, year, expected) in [
        ("%Y", "2024", "'YYYY'"),
        ("%Y", "2025", "'YYYY'"),
        ("%Y", "2026", "'YYYY'"),
    ] {
        let sql = format!("SELECT id FROM t WHERE DATE_FORMAT(d, '{pattern}') = '{year}'");
        let out = cache
            .translate(&sql, Dialect::MySql, Dialect::Postgres)
            .expect("translate");
        assert!(
            out[0].contains(expected) && out[0].contains(year),
            "{out:?}"
        );
        assert_eq!(
            out,
            translate(&sql, Dialect::MySql, Dialect::Postgres).expect("direct")
        );
    }
}
