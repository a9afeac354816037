//! Strategy, failover and limit tests over fake engines whose latency is set
//! by the test (an engine wrapper that sleeps), so every decision is
//! deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use floe_dialects::{Analysis, Dialect, analyze_statement};
use futures::TryStreamExt;

use super::*;

/// An engine that answers every query with one row after `delay`, or fails
/// as an unreachable engine would.
#[derive(Debug)]
struct Fake {
    name: String,
    delay: Duration,
    /// Extra delay for statements whose text contains this marker.
    slow_on: Option<(&'static str, Duration)>,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl Fake {
    fn new(name: &str, delay_ms: u64) -> Arc<Fake> {
        Arc::new(Fake {
            name: name.to_owned(),
            delay: Duration::from_millis(delay_ms),
            slow_on: None,
            down: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Engine for Fake {
    fn name(&self) -> &str {
        &self.name
    }
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn probe(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(unavailable(&self.name));
        }
        Ok(())
    }
    async fn prepare(&self, _: &Analysis, _: Scope<'_>) -> Result<Prepared> {
        Ok(Prepared::command())
    }
    async fn execute(&self, request: Request<'_>) -> Result<QueryOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(unavailable(&self.name));
        }
        let mut delay = self.delay;
        if let Some((marker, slow)) = self.slow_on
            && request.statement.sql().contains(marker)
        {
            delay = slow;
        }
        tokio::time::sleep(delay).await;
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(QueryOutput::Rows {
            schema,
            stream: Box::pin(futures::stream::iter(vec![Ok(batch)])),
        })
    }
}

fn unavailable(name: &str) -> Error {
    Error::EngineUnavailable {
        engine: name.to_owned(),
        message: "connection refused".to_owned(),
        retryable: true,
    }
}

fn router(config: RoutingConfig, engines: &[(&Arc<Fake>, EngineSpec)]) -> Router {
    let engines = engines
        .iter()
        .map(|(e, spec)| (Arc::clone(*e) as Arc<dyn Engine>, spec.clone()))
        .collect();
    Router::new(config, engines).expect("valid configuration")
}

fn cost(per_query: f64) -> EngineSpec {
    EngineSpec {
        cost: CostModel {
            per_query,
            ..CostModel::default()
        },
        ..EngineSpec::default()
    }
}

fn statement(sql: &str) -> Analysis {
    analyze_statement(sql, Dialect::Postgres).expect("parses")
}

const CTX: RouteContext<'static> = RouteContext {
    user: "app",
    protocol: "postgres",
    schema: None,
    tag: None,
    strategy: None,
    engine: None,
    settings: &[],
};

async fn run(router: &Router, ctx: &RouteContext<'_>, sql: &str) -> Result<String> {
    let analysis = statement(sql);
    let routed = router.execute(ctx, Request::new(&analysis)).await?;
    if let QueryOutput::Rows { stream, .. } = routed.output {
        let _: Vec<RecordBatch> = stream.try_collect().await?;
    }
    Ok(routed.engine)
}

#[tokio::test]
async fn cost_picks_the_cheapest_engine_within_the_slo() -> Result<()> {
    let cheap_slow = Fake::new("cheap_slow", 60);
    let mid = Fake::new("mid", 5);
    let dear_fast = Fake::new("dear_fast", 1);
    let config = RoutingConfig {
        strategy: Strategy::Cost,
        latency_slo: Duration::from_millis(30),
        ..RoutingConfig::default()
    };
    let router = router(
        config,
        &[
            (&cheap_slow, cost(0.001)),
            (&mid, cost(0.01)),
            (&dear_fast, cost(0.1)),
        ],
    );
    // Measure every engine once on this shape.
    for name in ["cheap_slow", "mid", "dear_fast"] {
        let ctx = RouteContext {
            engine: Some(name),
            ..CTX
        };
        run(&router, &ctx, "SELECT 1 FROM t WHERE id = 1").await?;
    }
    // cheap_slow misses the 30 ms SLO; mid is the cheapest that meets it.
    for id in 2..6 {
        let sql = format!("SELECT 1 FROM t WHERE id = {id}");
        assert_eq!(run(&router, &CTX, &sql).await?, "mid");
    }
    let explanation = router.explain(&CTX, &statement("SELECT 1 FROM t WHERE id = 9"))?;
    assert_eq!(explanation.chosen.as_deref(), Some("mid"));
    assert!(
        explanation.reason.contains("cheapest"),
        "{}",
        explanation.reason
    );

    // With an SLO nothing meets, the fastest wins.
    let strict = Router::new(
        RoutingConfig {
            latency_slo: Duration::from_micros(1),
            ..RoutingConfig::default()
        },
        router
            .engines()
            .iter()
            .map(|e| (Arc::clone(&e.engine), e.spec.clone()))
            .collect(),
    )?;
    for name in ["cheap_slow", "mid", "dear_fast"] {
        let ctx = RouteContext {
            engine: Some(name),
            ..CTX
        };
        run(&strict, &ctx, "SELECT 1 FROM t WHERE id = 1").await?;
    }
    assert_eq!(
        run(&strict, &CTX, "SELECT 1 FROM t WHERE id = 3").await?,
        "dear_fast"
    );
    Ok(())
}

#[tokio::test]
async fn latency_learns_the_faster_engine_per_query_shape() -> Result<()> {
    // `a` is fast on point lookups and slow on scans; `b` the other way round.
    let a = Arc::new(Fake {
        slow_on: Some(("scan", Duration::from_millis(40))),
        ..Arc::into_inner(Fake::new("a", 2)).expect("one owner")
    });
    let b = Arc::new(Fake {
        slow_on: Some(("scan", Duration::from_millis(2))),
        ..Arc::into_inner(Fake::new("b", 40)).expect("one owner")
    });
    let config = RoutingConfig {
        strategy: Strategy::Latency,
        exploration: 0.0,
        ..RoutingConfig::default()
    };
    let router = router(
        config,
        &[(&a, EngineSpec::default()), (&b, EngineSpec::default())],
    );
    // The first two runs of each shape measure both engines.
    for id in 0..2 {
        run(&router, &CTX, &format!("SELECT 1 FROM t WHERE id = {id}")).await?;
        run(
            &router,
            &CTX,
            &format!("SELECT 1 AS scan FROM t WHERE v > {id}"),
        )
        .await?;
    }
    for id in 10..15 {
        let point = run(&router, &CTX, &format!("SELECT 1 FROM t WHERE id = {id}")).await?;
        let scan = run(
            &router,
            &CTX,
            &format!("SELECT 1 AS scan FROM t WHERE v > {id}"),
        )
        .await?;
        assert_eq!((point.as_str(), scan.as_str()), ("a", "b"));
    }
    Ok(())
}

#[tokio::test]
async fn throughput_spreads_load_and_honours_limits_and_queue_timeouts() -> Result<()> {
    let a = Fake::new("a", 50);
    let b = Fake::new("b", 50);
    let limited = EngineSpec {
        max_concurrency: 2,
        queue_len: 1,
        queue_timeout: Duration::from_millis(20),
        ..EngineSpec::default()
    };
    let config = RoutingConfig {
        strategy: Strategy::Throughput,
        ..RoutingConfig::default()
    };
    let router = Arc::new(router(config, &[(&a, limited.clone()), (&b, limited)]));
    // Four concurrent statements fill both engines' two slots: two each.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let router = Arc::clone(&router);
            tokio::spawn(async move { run(&router, &CTX, "SELECT 1").await })
        })
        .collect();
    let mut engines = Vec::new();
    for task in tasks {
        engines.push(task.await.map_err(|e| Error::Internal(e.to_string()))??);
    }
    assert_eq!(a.calls(), 2, "{engines:?}");
    assert_eq!(b.calls(), 2, "{engines:?}");

    // Six at once: four run, the rest queue 20 ms and give up with a clear error.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let router = Arc::clone(&router);
            tokio::spawn(async move { run(&router, &CTX, "SELECT 1").await })
        })
        .collect();
    let mut refused = 0;
    for task in tasks {
        match task.await.map_err(|e| Error::Internal(e.to_string()))? {
            Ok(_) => {}
            Err(Error::EngineUnavailable { message, .. }) => {
                assert!(message.contains("queue"), "{message}");
                refused += 1;
            }
            Err(other) => return Err(other),
        }
    }
    assert_eq!(refused, 2);
    Ok(())
}

#[tokio::test]
async fn reads_fail_over_and_writes_do_not() -> Result<()> {
    let primary = Fake::new("primary", 1);
    let replica = Fake::new("replica", 1);
    let read_only = EngineSpec {
        writes: false,
        ..cost(1.0)
    };
    let router = router(
        RoutingConfig::default(),
        &[(&primary, cost(0.0)), (&replica, read_only)],
    );
    let health = Arc::clone(&router.engines()[0].health);
    assert_eq!(run(&router, &CTX, "SELECT 1").await?, "primary");
    primary.down.store(true, Ordering::SeqCst);
    // The read fails on primary before any row and is retried on replica.
    assert_eq!(run(&router, &CTX, "SELECT 1").await?, "replica");
    assert_eq!(health.state(), HealthState::Degraded);
    // A write is never retried elsewhere: the client sees the engine failure.
    let write = run(&router, &CTX, "INSERT INTO t VALUES (1)").await;
    assert!(
        matches!(write, Err(Error::EngineUnavailable { .. })),
        "{write:?}"
    );
    // A third engine failure opens primary's circuit.
    let pinned = RouteContext {
        engine: Some("primary"),
        ..CTX
    };
    assert!(run(&router, &pinned, "SELECT 1").await.is_err());
    assert_eq!(health.state(), HealthState::Down);
    // Reads then skip it without trying it.
    let before = primary.calls();
    assert_eq!(run(&router, &CTX, "SELECT 1").await?, "replica");
    assert_eq!(primary.calls(), before);
    Ok(())
}

#[tokio::test]
async fn probes_mark_engines_down_and_back_up() -> Result<()> {
    let engine = Fake::new("e", 1);
    let spec = EngineSpec {
        probe_interval: Duration::from_millis(50),
        ..EngineSpec::default()
    };
    let router = Arc::new(router(RoutingConfig::default(), &[(&engine, spec)]));
    let cancel = CancellationToken::new();
    let prober = tokio::spawn(Arc::clone(&router).run_probes(cancel.clone()));
    let health = Arc::clone(&router.engines()[0].health);
    engine.down.store(true, Ordering::SeqCst);
    wait_for(&health, HealthState::Down).await;
    engine.down.store(false, Ordering::SeqCst);
    wait_for(&health, HealthState::Healthy).await;
    cancel.cancel();
    prober.await.map_err(|e| Error::Internal(e.to_string()))?;
    Ok(())
}

async fn wait_for(health: &Health, state: HealthState) {
    for _ in 0..100 {
        if health.state() == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("health stayed {} instead of {state}", health.state());
}

#[tokio::test]
async fn rules_pin_and_exclude_by_user_table_and_tag() -> Result<()> {
    let pg = Fake::new("pg", 1);
    let local = Fake::new("local", 1);
    let config = RoutingConfig {
        rules: vec![
            Rule {
                name: Some("agents".into()),
                tag: Some("agent".into()),
                engines: vec!["pg".into()],
                ..Rule::default()
            },
            Rule {
                tables: Some("lake.secret.*".into()),
                exclude: vec!["pg".into()],
                ..Rule::default()
            },
        ],
        ..RoutingConfig::default()
    };
    let router = router(config, &[(&local, cost(0.0)), (&pg, cost(1.0))]);
    assert_eq!(run(&router, &CTX, "SELECT 1").await?, "local");
    let tagged = RouteContext {
        tag: Some("agent"),
        ..CTX
    };
    assert_eq!(run(&router, &tagged, "SELECT 1").await?, "pg");
    assert_eq!(
        run(&router, &CTX, "/* floe:tag=agent */ SELECT 1").await?,
        "pg"
    );
    assert_eq!(
        run(&router, &CTX, "/* floe:engine=pg */ SELECT 1").await?,
        "pg"
    );
    let explanation = router.explain(&tagged, &statement("SELECT * FROM secret.keys"))?;
    assert_eq!(explanation.chosen, None);
    assert_eq!(
        explanation.rules,
        vec!["agents".to_owned(), "rule #2".to_owned()]
    );
    let refused = run(&router, &tagged, "SELECT * FROM secret.keys").await;
    assert!(matches!(refused, Err(Error::Unsupported(_))), "{refused:?}");
    Ok(())
}

#[tokio::test]
async fn engines_serve_only_their_tables_and_writes() -> Result<()> {
    let lake = Fake::new("lake", 1);
    let pg = Fake::new("pg", 1);
    let router = router(
        RoutingConfig::default(),
        &[
            (&lake, cost(1.0)),
            (
                &pg,
                EngineSpec {
                    serves: vec!["lake.demo.*".into()],
                    writes: false,
                    ..cost(0.0)
                },
            ),
        ],
    );
    assert_eq!(run(&router, &CTX, "SELECT * FROM demo.trips").await?, "pg");
    assert_eq!(run(&router, &CTX, "SELECT * FROM other.t").await?, "lake");
    assert_eq!(run(&router, &CTX, "DELETE FROM demo.trips").await?, "lake");
    Ok(())
}

#[tokio::test]
async fn reconfiguring_keeps_history_of_engines_that_stay() -> Result<()> {
    let a = Fake::new("a", 1);
    let b = Fake::new("b", 1);
    let router = router(RoutingConfig::default(), &[(&a, cost(0.0))]);
    run(&router, &CTX, "SELECT 1").await?;
    let kept = Arc::clone(&router.engines()[0].latency);
    router.reconfigure(
        RoutingConfig::default(),
        vec![
            (Arc::clone(&a) as Arc<dyn Engine>, cost(2.0)),
            (Arc::clone(&b) as Arc<dyn Engine>, cost(1.0)),
        ],
    )?;
    assert!(Arc::ptr_eq(&kept, &router.engines()[0].latency));
    assert_eq!(run(&router, &CTX, "SELECT 1").await?, "b");
    let bad = router.reconfigure(
        RoutingConfig {
            rules: vec![Rule {
                engines: vec!["missing".into()],
                ..Rule::default()
            }],
            ..RoutingConfig::default()
        },
        vec![(Arc::clone(&a) as Arc<dyn Engine>, cost(0.0))],
    );
    assert!(bad.is_err());
    assert_eq!(
        router.engines().len(),
        2,
        "a failed reload keeps the old configuration"
    );
    Ok(())
}

#[tokio::test]
async fn a_block_reports_fingerprints_and_prepares_on_its_engine() -> Result<()> {
    let a = Fake::new("a", 0);
    let b = Fake::new("b", 0);
    let router = router(
        RoutingConfig::default(),
        &[(&a, EngineSpec::default()), (&b, EngineSpec::default())],
    );
    let analysis = statement("SELECT n FROM t WHERE id = 5");
    let mut pinned = router.begin(&CTX, &analysis).await?;
    let engine = pinned.engine().to_owned();
    let routed = router
        .execute_pinned(&mut pinned, Request::new(&analysis))
        .await?;
    // Telemetry gets the id instead of parsing the statement again.
    assert_eq!(routed.touched.fingerprint, Some(analysis.fingerprint().id));
    // An engine without a transaction connection plans on the pinned engine.
    let prepared = router.prepare_pinned(&CTX, &mut pinned, &analysis).await?;
    assert_eq!(prepared.engine.as_deref(), Some(engine.as_str()));
    Ok(())
}
