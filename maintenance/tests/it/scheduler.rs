//! The scheduler: each trigger fires on its threshold, cron schedules fire at
//! their time on an injected clock, policies inherit catalog → namespace →
//! table (a later table too, API over configuration, persisted), and
//! configuration policies report or correct drift.

use std::sync::Arc;
use std::time::Duration;

use floe_dialects::telemetry::{QueryEvent, QueryOutcome};
use floe_dialects::{Dialect, Operator};
use floe_maintenance::adaptive::{Maintainer, MaintainerConfig, TablePlan};
use floe_maintenance::policy::{Bytes, Enforce, Mode, Policy, Triggers};
use floe_maintenance::schedule::{Clock, ManualClock, SystemClock};
use floe_maintenance::telemetry::{Heat, TelemetryConfig};
use floe_maintenance::{now_ms, ops::Operation};
use iceberg::TableIdent;

use crate::lake::{Lake, expected};

fn config(mode: Mode) -> MaintainerConfig {
    MaintainerConfig {
        base: Policy {
            mode: Some(mode),
            ..Policy::default()
        },
        interval: Duration::from_secs(3600),
        concurrency: 2,
        max_bytes_per_hour: None,
    }
}

fn policy(scope: &str, f: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = Policy {
        scope: scope.to_owned(),
        ..Policy::default()
    };
    f(&mut p);
    p
}

async fn small_files(lake: &Lake, name: &str, appends: i64) -> TableIdent {
    let ident = lake.create(name, false).await;
    for i in 0..appends {
        lake.append(&ident, i * 50..(i + 1) * 50).await;
    }
    ident
}

async fn maintainer(
    lake: &Lake,
    heat: Option<Arc<Heat>>,
    clock: Arc<dyn Clock>,
    mode: Mode,
    policies: Vec<Policy>,
) -> Maintainer {
    Maintainer::new(
        vec![lake.target.clone()],
        heat,
        clock,
        config(mode),
        policies,
        Some(&lake.dir.path().join("state.db")),
    )
    .await
    .expect("maintainer")
}

fn find<'a>(plan: &'a [TablePlan], table: &str) -> &'a TablePlan {
    plan.iter()
        .find(|p| p.assessment.table == table)
        .unwrap_or_else(|| panic!("{table} not planned: {plan:#?}"))
}

fn filter_event(table: &str, column: &str) -> QueryEvent {
    QueryEvent {
        at_ms: now_ms(),
        protocol: "postgres",
        user: "analyst".to_owned(),
        tag: None,
        fingerprint: None,
        sql: format!("SELECT * FROM t WHERE {column} = 1"),
        dialect: Dialect::Postgres,
        tables: vec![table.to_owned()],
        columns: vec![(0, column.to_owned(), Operator::Equality)],
        engine: "local".to_owned(),
        latency: Duration::from_millis(5),
        rows: 1,
        bytes: 16,
        scanned_files: Some(6),
        scanned_bytes: Some(6000),
        outcome: QueryOutcome::Ok,
    }
}

#[tokio::test]
async fn each_trigger_fires_on_its_threshold() {
    let lake = Lake::new().await;
    for name in [
        "share",
        "commits",
        "count",
        "age",
        "manifests",
        "hot",
        "quiet",
    ] {
        small_files(&lake, name, 6).await;
    }
    let heat = Arc::new(Heat::in_memory(TelemetryConfig::default()));
    for _ in 0..10 {
        heat.record(filter_event("lake.ns.hot", "value"));
    }
    for _ in 0..2 {
        heat.record(filter_event("lake.ns.quiet", "value"));
    }
    let only = |ops: &[Operation]| Some(ops.to_vec());
    let policies = vec![
        policy("lake.ns.commits", |p| {
            p.compact.min_input_files = Some(100);
            p.triggers.commits = Some(3);
        }),
        policy("lake.ns.count", |p| {
            p.operations = only(&[Operation::Expire, Operation::Orphans]);
            p.expire.older_than = Some(Duration::ZERO);
            p.triggers.snapshots = Some(5);
        }),
        policy("lake.ns.age", |p| {
            p.operations = only(&[Operation::Expire]);
            p.expire.older_than = Some(Duration::from_secs(3600));
        }),
        policy("lake.ns.manifests", |p| {
            p.operations = only(&[Operation::Manifests]);
            p.triggers.manifests = Some(3);
        }),
        policy("lake.ns.hot", |p| {
            p.operations = only(&[Operation::Compact]);
            p.compact.target_file_size = Some(Bytes(1024));
            p.triggers = Triggers {
                hotness: Some(5.0),
                small_file_share: Some(1.0),
                commits: Some(1000),
                ..Triggers::default()
            };
            p.compact.min_input_files = Some(100);
        }),
        policy("lake.ns.quiet", |p| {
            p.operations = only(&[Operation::Compact]);
            p.compact.target_file_size = Some(Bytes(1024));
            p.compact.min_input_files = Some(100);
            p.triggers.hotness = Some(5.0);
            p.triggers.commits = Some(1000);
        }),
    ];
    // Two hours on, so that `age`'s one-hour expiry sees old snapshots.
    let clock = Arc::new(ManualClock::at(now_ms() + 2 * 3600 * 1000));
    let m = maintainer(
        &lake,
        Some(Arc::clone(&heat)),
        clock,
        Mode::Adaptive,
        policies,
    )
    .await;
    let plan = m.plan().await.expect("plan");

    let share = find(&plan, "lake.ns.share");
    assert_eq!(
        share.assessment.operations,
        vec![Operation::Compact],
        "{share:#?}"
    );
    assert_eq!(share.assessment.started_by, "trigger:small_file_share");
    assert!(share.assessment.sort_by.is_empty(), "cold: binpack");

    let commits = find(&plan, "lake.ns.commits");
    assert_eq!(
        commits.assessment.started_by, "trigger:commits",
        "{commits:#?}"
    );

    let count = find(&plan, "lake.ns.count");
    assert_eq!(
        count.assessment.operations,
        vec![Operation::Expire, Operation::Orphans],
        "{count:#?}"
    );
    assert_eq!(count.assessment.started_by, "trigger:snapshots");

    let age = find(&plan, "lake.ns.age");
    assert_eq!(
        age.assessment.operations,
        vec![Operation::Expire],
        "{age:#?}"
    );
    assert_eq!(age.assessment.started_by, "trigger:snapshot_age");

    let manifests = find(&plan, "lake.ns.manifests");
    assert_eq!(
        manifests.assessment.operations,
        vec![Operation::Manifests],
        "{manifests:#?}"
    );
    assert_eq!(manifests.assessment.started_by, "trigger:manifests");

    let hot = find(&plan, "lake.ns.hot");
    assert_eq!(hot.assessment.sort_by, vec!["value"], "{hot:#?}");
    assert_eq!(hot.assessment.started_by, "adaptive:hot_predicates");
    assert!(
        hot.layout.as_ref().is_some_and(|l| l.overlap > 0.9),
        "{hot:#?}"
    );

    let quiet = find(&plan, "lake.ns.quiet");
    assert!(
        quiet.assessment.operations.is_empty(),
        "2 queries < hotness 5: {quiet:#?}"
    );
    assert!(
        quiet
            .assessment
            .reasons
            .iter()
            .any(|r| r.contains("below the hotness trigger")),
        "{quiet:#?}"
    );

    // The pass runs them, keeps every row, and the hot table ends sorted.
    let jobs = m.tick().await.expect("tick");
    assert!(jobs.iter().all(|j| j.error.is_none()), "{jobs:#?}");
    assert_eq!(jobs.len(), 6, "{jobs:#?}");
    let hot_ident = TableIdent::from_strs(["ns", "hot"]).expect("ident");
    lake.assert_reads(&hot_ident, expected(0..300)).await;
    let files = lake.data_files(&hot_ident).await;
    assert!(
        files.len() > 1 && files.iter().all(|(_, _, order)| order.is_some()),
        "{files:?}"
    );
    // Once sorted, the layout prunes: nothing more to do for it.
    let again = m.plan().await.expect("plan");
    let hot = find(&again, "lake.ns.hot");
    assert!(hot.assessment.operations.is_empty(), "{hot:#?}");
    assert!(
        hot.layout.as_ref().is_some_and(|l| l.overlap < 0.5),
        "{hot:#?}"
    );
    let count = find(&again, "lake.ns.count");
    assert!(
        count.assessment.operations.is_empty(),
        "expired down to one snapshot: {count:#?}"
    );
}

#[tokio::test]
async fn a_cron_schedule_fires_at_its_time_in_its_zone() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "nightly", 6).await;
    let utc = |d: u32, h: u32, mi: u32| {
        use chrono::TimeZone;
        chrono::Utc
            .with_ymd_and_hms(2026, 1, d, h, mi, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .expect("time")
    };
    let clock = Arc::new(ManualClock::at(utc(1, 0, 0)));
    let policies = vec![policy("lake.ns", |p| {
        p.mode = Some(Mode::Scheduled);
        p.schedule = Some("0 2 * * *".to_owned());
        p.timezone = Some("America/New_York".to_owned());
        p.operations = Some(vec![Operation::Compact]);
    })];
    let m = maintainer(
        &lake,
        None,
        Arc::clone(&clock) as Arc<dyn Clock>,
        Mode::Manual,
        policies,
    )
    .await;
    let due = |plan: &[TablePlan]| {
        !find(plan, "lake.ns.nightly")
            .assessment
            .operations
            .is_empty()
    };

    // 02:00 in New York is 07:00 UTC in January.
    clock.set(utc(1, 6, 59));
    assert!(!due(&m.plan().await.expect("plan")), "not before its time");
    clock.set(utc(1, 7, 0));
    let plan = m.plan().await.expect("plan");
    assert!(due(&plan), "{plan:#?}");
    assert_eq!(
        find(&plan, "lake.ns.nightly").assessment.started_by,
        "schedule"
    );
    let jobs = m.tick().await.expect("tick");
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert!(jobs[0].error.is_none(), "{jobs:#?}");
    lake.assert_reads(&ident, expected(0..300)).await;

    clock.set(utc(1, 12, 0));
    assert!(!due(&m.plan().await.expect("plan")), "once per occurrence");
    assert!(m.tick().await.expect("tick").is_empty());
    clock.set(utc(2, 7, 0));
    assert!(
        due(&m.plan().await.expect("plan")),
        "and again the next night"
    );
}

#[tokio::test]
async fn policies_inherit_and_the_api_overrides_and_persists() {
    let lake = Lake::new().await;
    small_files(&lake, "t", 2).await;
    let configured = vec![
        policy("lake", |p| {
            p.compact.target_file_size = Some(Bytes(3 << 20));
            p.expire.retain_last = Some(9);
        }),
        policy("lake.ns", |p| {
            p.compact.target_file_size = Some(Bytes(2 << 20))
        }),
        policy("lake.ns.t", |p| {
            p.compact.target_file_size = Some(Bytes(1 << 20))
        }),
    ];
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let m = maintainer(
        &lake,
        None,
        Arc::clone(&clock),
        Mode::Manual,
        configured.clone(),
    )
    .await;
    let t = m.resolve("lake.ns.t");
    assert_eq!(t.policy.compact.target_file_size, Some(Bytes(1 << 20)));
    assert_eq!(t.sources["compact.target_file_size"], "config:lake.ns.t");
    assert_eq!(t.policy.expire.retain_last, Some(9));
    assert_eq!(t.sources["expire.retain_last"], "config:lake");

    // A table created later inherits with nothing to do.
    small_files(&lake, "later", 1).await;
    let later = m.resolve("lake.ns.later");
    assert_eq!(later.policy.compact.target_file_size, Some(Bytes(2 << 20)));
    assert_eq!(later.sources["compact.target_file_size"], "config:lake.ns");

    // The API wins over the file at the same scope, and is kept.
    m.set_policy(policy("lake.ns", |p| p.expire.retain_last = Some(4)))
        .await
        .expect("set");
    assert_eq!(
        m.resolve("lake.ns.later").policy.expire.retain_last,
        Some(4)
    );
    assert!(
        m.set_policy(policy("lake..x", |_| {})).await.is_err(),
        "bad scope refused"
    );
    drop(m);
    let reopened = maintainer(&lake, None, clock, Mode::Manual, configured).await;
    let later = reopened.resolve("lake.ns.later");
    assert_eq!(later.policy.expire.retain_last, Some(4));
    assert_eq!(later.sources["expire.retain_last"], "api:lake.ns");
    assert!(reopened.delete_policy("lake.ns").await.expect("delete"));
    assert_eq!(
        reopened.resolve("lake.ns.later").policy.expire.retain_last,
        Some(9)
    );
}

#[tokio::test]
async fn configuration_policies_report_or_correct_drift() {
    let lake = Lake::new().await;
    let reported = small_files(&lake, "reported", 1).await;
    let corrected = small_files(&lake, "corrected", 1).await;
    let codec = "write.parquet.compression-codec";
    let policies = vec![
        policy("lake.ns", |p| {
            p.operations = Some(Vec::new());
            p.properties.insert(codec.to_owned(), "snappy".to_owned());
            p.enforce = Some(Enforce::Report);
        }),
        policy("lake.ns.corrected", |p| p.enforce = Some(Enforce::Correct)),
    ];
    let m = maintainer(&lake, None, Arc::new(SystemClock), Mode::Adaptive, policies).await;
    let plan = m.plan().await.expect("plan");
    for table in ["lake.ns.reported", "lake.ns.corrected"] {
        let drift = &find(&plan, table).drift;
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].property, codec);
        assert_eq!(drift[0].expected, "snappy");
    }
    m.tick().await.expect("tick");
    let property = |t: &iceberg::table::Table| t.metadata().properties().get(codec).cloned();
    assert_eq!(
        property(&lake.table(&corrected).await).as_deref(),
        Some("snappy")
    );
    assert_eq!(property(&lake.table(&reported).await), None, "report only");
    let plan = m.plan().await.expect("plan");
    assert!(find(&plan, "lake.ns.corrected").drift.is_empty());
    assert_eq!(find(&plan, "lake.ns.reported").drift.len(), 1);
}

#[tokio::test]
async fn two_equally_hot_range_columns_are_z_ordered() {
    let lake = Lake::new().await;
    let ident = small_files(&lake, "z", 20).await;
    let heat = Arc::new(Heat::in_memory(TelemetryConfig::default()));
    for column in ["id", "value"] {
        for _ in 0..10 {
            let mut event = filter_event("lake.ns.z", column);
            event.columns = vec![(0, column.to_owned(), Operator::Range)];
            heat.record(event);
        }
    }
    let policies = vec![policy("lake.ns.z", |p| {
        p.compact.target_file_size = Some(Bytes(1024));
        p.compact.zorder = Some(true);
        p.compact.min_input_files = Some(100);
    })];
    let m = maintainer(
        &lake,
        Some(heat),
        Arc::new(SystemClock),
        Mode::Adaptive,
        policies,
    )
    .await;
    let plan = m.plan().await.expect("plan");
    let z = find(&plan, "lake.ns.z");
    assert!(z.assessment.zorder, "{z:#?}");
    assert_eq!(z.assessment.sort_by, vec!["id", "value"], "{z:#?}");
    let table = lake.table(&ident).await;
    let before = floe_maintenance::planner::layout(&table, "value")
        .await
        .expect("layout")
        .expect("column");
    let jobs = m.tick().await.expect("tick");
    assert!(jobs.iter().all(|j| j.error.is_none()), "{jobs:#?}");
    lake.assert_reads(&ident, expected(0..1000)).await;
    let table = lake.table(&ident).await;
    let value = floe_maintenance::planner::layout(&table, "value")
        .await
        .expect("layout")
        .expect("column");
    let id = floe_maintenance::planner::layout(&table, "id")
        .await
        .expect("layout")
        .expect("column");
    assert!(value.files > 2, "{value:?}");
    assert!(
        value.overlap < before.overlap * 0.7 && id.overlap < 0.7,
        "z-order narrows both columns: value {} → {}, id {}",
        before.overlap,
        value.overlap,
        id.overlap
    );
}
