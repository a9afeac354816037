//! `floe-bench dialects`: Floe's `translate` against sqlglot's `transpile` on
//! the translation corpus, statement by statement, plus `analyze`, the
//! translation cache (the same text again; a text of a known shape with other
//! constants) and two floors: `sqlparser`'s parse alone, which any translator
//! that parses pays, and polyglot-sql's `transpile` without Floe's rules.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use floe_dialects::sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use floe_dialects::sqlparser::parser::Parser;
use floe_dialects::{
    Analyses, ConstantClass, Dialect, TranslationCache, analyze, shape_key, translate,
};

/// Times `f` `rounds` times and returns the median in microseconds.
fn median_us(rounds: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn statements(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(str::to_owned)
        .collect())
}

/// sqlglot's per-statement median in microseconds, measured in Python.
fn sqlglot(
    python: &Path,
    sql: &[String],
    read: &str,
    write: &str,
    rounds: usize,
) -> anyhow::Result<Vec<f64>> {
    const SCRIPT: &str = r#"
import json, sys, time
import sqlglot
read, write, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
for sql in json.load(sys.stdin):
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        try:
            sqlglot.transpile(sql, read=read, write=write)
        except Exception:
            pass
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    out.append(samples[len(samples) // 2])
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT, read, write, &rounds.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {} (pip install sqlglot)", python.display()))?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(serde_json::to_string(sql)?.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "sqlglot timing failed; is sqlglot installed in {}?",
            python.display()
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// `sql` with each constant its shape masks replaced by another of the same
/// class, different for each `salt`: a text the translation cache has not
/// seen, of a shape it has.
fn other_constants(sql: &str, dialect: Dialect, salt: usize) -> Option<String> {
    let key = shape_key(sql, dialect);
    if key.constants.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut at = 0;
    for (range, class) in &key.constants {
        out.push_str(sql.get(at..range.start)?);
        let written = sql.get(range.clone())?;
        match class {
            ConstantClass::Int4 | ConstantClass::Int8 => {
                let value: i64 = written.parse().ok()?;
                out.push_str(&(value / 2 + 1 + i64::try_from(salt).ok()?).to_string());
            }
            ConstantClass::Text => {
                out.push_str(&format!("'z{salt}"));
                out.push_str(written.get(1..)?);
            }
        }
        at = range.end;
    }
    out.push_str(sql.get(at..)?);
    Some(out)
}

/// `sqlparser`'s parse of `sql` alone, in `dialect`.
fn parse_only(sql: &str, dialect: Dialect) {
    let parsed = match dialect {
        Dialect::MySql => Parser::parse_sql(&MySqlDialect {}, sql),
        _ => Parser::parse_sql(&PostgreSqlDialect {}, sql),
    };
    drop(parsed);
}

/// polyglot-sql's own translation, without Floe's rules.
fn polyglot_only(sql: &str, from: Dialect, to: Dialect) {
    use polyglot_sql::DialectType;
    let kind = |d: Dialect| match d {
        Dialect::MySql => DialectType::MySQL,
        _ => DialectType::PostgreSQL,
    };
    drop(polyglot_sql::transpile(sql, kind(from), kind(to)));
}

pub fn run(corpus: PathBuf, python: PathBuf, rounds: usize) -> anyhow::Result<()> {
    println!(
        "# floe-bench dialects: per-statement medians over {rounds} rounds; table rows are the median and p99 across statements"
    );
    println!();
    println!(
        "| pair | statements | floe translate p50 (µs) | p99 | sqlglot p50 (µs) | p99 | sqlglot/floe (p50) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut analyze_times = Vec::new();
    let mut shaped_times = Vec::new();
    let mut hit_times = Vec::new();
    let mut route_times = Vec::new();
    let mut floors = Vec::new();
    // The engines' pools and channels belong to a runtime, though routing
    // decisions never await.
    let runtime = tokio::runtime::Runtime::new()?;
    let _entered = runtime.enter();
    let router = router()?;
    for (file, from, to, read, write) in [
        (
            "mysql.sql",
            Dialect::MySql,
            Dialect::Postgres,
            "mysql",
            "postgres",
        ),
        (
            "postgres.sql",
            Dialect::Postgres,
            Dialect::MySql,
            "postgres",
            "mysql",
        ),
    ] {
        let sql = statements(&corpus.join(file))?;
        let floe: Vec<f64> = sql
            .iter()
            .map(|s| median_us(rounds, || drop(translate(s, from, to))))
            .collect();
        analyze_times.extend(
            sql.iter()
                .map(|s| median_us(rounds, || drop(analyze(s, from)))),
        );
        // A text of a shape seen before: the shape's tree with the text's
        // constants put in, as the front ends analyse simple queries.
        let analyses = Analyses::new(4096);
        for s in &sql {
            for _ in 0..2 {
                let _ = analyses.analyze(s, from);
            }
            shaped_times.push(median_us(rounds, || drop(analyses.analyze(s, from))));
        }
        let cache = TranslationCache::new(4096);
        for s in &sql {
            let _ = cache.translate(s, from, to);
            hit_times.push(median_us(rounds, || drop(cache.translate(s, from, to))));
        }
        // The whole decision a statement costs on the query path: analysis,
        // routing over three engines (fingerprint, tables, rules, strategy)
        // and the translation for the chosen engine from the cache.
        let ctx = floe_router::RouteContext {
            user: "bench",
            protocol: read,
            ..floe_router::RouteContext::default()
        };
        for s in &sql {
            route_times.push(median_us(rounds, || {
                if let Ok(analysis) = floe_dialects::analyze_statement(s, from) {
                    drop(router.explain(&ctx, &analysis));
                    drop(cache.translate(s, from, to));
                }
            }));
        }
        // A text of a shape seen twice before (the text-shape template is
        // made at the second sighting), with other constants: what a client
        // of a simple protocol sends, statement after statement.
        let glot = sqlglot(&python, &sql, read, write, rounds)?;
        let shaped = TranslationCache::new(4096);
        let mut known_shape = Vec::new();
        let mut known_glot = Vec::new();
        for (s, g) in sql.iter().zip(&glot) {
            // A new text each round: the same text again would be an exact hit.
            let Some(others) = (0..rounds)
                .map(|salt| other_constants(s, from, salt))
                .collect::<Option<Vec<String>>>()
            else {
                continue;
            };
            for _ in 0..2 {
                let _ = shaped.translate(s, from, to);
            }
            let mut others = others.iter();
            known_shape.push(median_us(rounds, || {
                if let Some(other) = others.next() {
                    drop(shaped.translate(other, from, to));
                }
            }));
            known_glot.push(*g);
        }
        let parse: Vec<f64> = sql
            .iter()
            .map(|s| median_us(rounds, || parse_only(s, from)))
            .collect();
        let polyglot: Vec<f64> = sql
            .iter()
            .map(|s| median_us(rounds, || polyglot_only(s, from, to)))
            .collect();
        let (f50, f99) = (percentile(&floe, 0.5), percentile(&floe, 0.99));
        let (g50, g99) = (percentile(&glot, 0.5), percentile(&glot, 0.99));
        println!(
            "| {from}→{to} | {} | {f50:.1} | {f99:.1} | {g50:.1} | {g99:.1} | {:.1} |",
            sql.len(),
            g50 / f50
        );
        floors.push((from, to, known_shape, known_glot, parse, polyglot, g50));
    }
    println!();
    println!(
        "| pair | known shape, other constants: statements | p50 (µs) | p99 | sqlglot p50 on them | sqlglot/floe | floor: sqlparser parse alone p50 | sqlglot/parse | polyglot-sql transpile alone p50 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (from, to, known, known_glot, parse, polyglot, g50) in floors {
        let (k50, k99, kg50) = (
            percentile(&known, 0.5),
            percentile(&known, 0.99),
            percentile(&known_glot, 0.5),
        );
        let p50 = percentile(&parse, 0.5);
        println!(
            "| {from}→{to} | {} | {k50:.2} | {k99:.2} | {kg50:.1} | {:.0} | {p50:.1} | {:.1} | {:.1} |",
            known.len(),
            kg50 / k50,
            g50 / p50,
            percentile(&polyglot, 0.5)
        );
    }
    println!();
    println!("| measure | p50 (µs) | p99 (µs) |");
    println!("|---|---|---|");
    println!(
        "| analyze, per statement | {:.1} | {:.1} |",
        percentile(&analyze_times, 0.5),
        percentile(&analyze_times, 0.99)
    );
    println!(
        "| analyze, a text of a shape seen before (`Analyses`) | {:.1} | {:.1} |",
        percentile(&shaped_times, 0.5),
        percentile(&shaped_times, 0.99)
    );
    println!(
        "| translation cache hit, the same text again (hash + compare) | {:.2} | {:.2} |",
        percentile(&hit_times, 0.5),
        percentile(&hit_times, 0.99)
    );
    println!(
        "| routing decision: analyze + route over 3 engines + cached translation | {:.1} | {:.1} |",
        percentile(&route_times, 0.5),
        percentile(&route_times, 0.99)
    );
    Ok(())
}

/// A router over a PostgreSQL, a MySQL and a Flight SQL engine (none is
/// connected: routing decisions do not touch them), with the cost strategy
/// and one rule.
fn router() -> anyhow::Result<floe_router::Router> {
    use floe_router::engine::{
        Engine, FlightSqlEngine, FlightSqlEngineOptions, MySqlEngine, PostgresEngine,
        ServerEngineOptions,
    };
    use std::sync::Arc;
    let timeout = std::time::Duration::from_secs(1);
    let engines: Vec<Arc<dyn Engine>> = vec![
        Arc::new(PostgresEngine::new(ServerEngineOptions {
            name: "pg".into(),
            url: "host=127.0.0.1 port=1 user=bench".into(),
            password: None,
            max_connections: 1,
            connect_timeout: timeout,
            pass_through: true,
            parameterize: true,
        })?),
        Arc::new(MySqlEngine::new(ServerEngineOptions {
            name: "maria".into(),
            url: "mysql://bench@127.0.0.1:1/bench".into(),
            password: None,
            max_connections: 1,
            connect_timeout: timeout,
            pass_through: true,
            parameterize: true,
        })?),
        Arc::new(FlightSqlEngine::new(FlightSqlEngineOptions {
            name: "flight".into(),
            url: "http://127.0.0.1:1".into(),
            dialect: Dialect::DataFusion,
            credentials: None,
            connect_timeout: timeout,
        })?),
    ];
    let config = floe_router::RoutingConfig {
        rules: vec![floe_router::routing::Rule {
            tag: Some("agent".into()),
            engines: vec!["pg".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    Ok(floe_router::Router::new(
        config,
        engines
            .into_iter()
            .map(|e| (e, floe_router::routing::EngineSpec::default()))
            .collect(),
    )?)
}
