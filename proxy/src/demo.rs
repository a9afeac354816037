//! The demo dataset a fresh `floe serve` creates, so that a new user has a lake
//! to query and the maintenance engine has work to do.
//!
//! `demo.trips` is a fact table written as many small appends: many small data
//! files and many snapshots, exactly the shape that compaction and snapshot
//! expiry exist for. `demo.zones` is a small dimension table. Every value is a
//! pure function of the row number, so the content is the same on every machine
//! and tests can check it against sums they compute themselves.
//!
//! Creation is crash-safe: tables are created with `floe.demo = loading` and
//! marked `ready` after the last append; a start that finds `loading` drops the
//! half-written tables and begins again.

use std::sync::Arc;

use anyhow::Context as _;
use floe_dialects::{Dialect, analyze_statement};
use floe_router::engine::{Engine, QueryOutput, Request};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};

use crate::config::DemoConfig;

/// The namespace the demo tables live in.
pub const NAMESPACE: &str = "demo";
/// The table property that records how far creation got.
const STATE_PROPERTY: &str = "floe.demo";
/// Number of zones in `demo.zones`; `trips.zone_id` is in `1..=ZONES`.
pub const ZONES: i64 = 263;

/// What [`prepare`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoState {
    /// The dataset is complete, or disabled.
    Ready,
    /// The tables exist and are empty; [`load`] must fill them.
    NeedsLoad,
}

/// Creates the demo tables (empty) if they are missing or half-written.
///
/// Runs before the engine is built, because the engine lists tables when it
/// starts.
///
/// # Errors
///
/// When the catalog fails.
pub async fn prepare(catalog: &dyn Catalog, config: &DemoConfig) -> anyhow::Result<DemoState> {
    if !config.enabled {
        return Ok(DemoState::Ready);
    }
    let namespace = NamespaceIdent::new(NAMESPACE.to_owned());
    let trips = TableIdent::new(namespace.clone(), "trips".to_owned());
    let zones = TableIdent::new(namespace.clone(), "zones".to_owned());
    if catalog.table_exists(&trips).await? {
        let table = catalog.load_table(&trips).await?;
        if table
            .metadata()
            .properties()
            .get(STATE_PROPERTY)
            .map(String::as_str)
            != Some("loading")
        {
            return Ok(DemoState::Ready);
        }
        tracing::warn!(
            "the demo dataset was left half-written by an earlier start; creating it again"
        );
        catalog.drop_table(&trips).await?;
    }
    if catalog.table_exists(&zones).await? {
        catalog.drop_table(&zones).await?;
    }
    let optional =
        |id, name: &str, ty| Arc::new(NestedField::optional(id, name, Type::Primitive(ty)));
    let trips_schema = Schema::builder()
        .with_fields(vec![
            optional(1, "trip_id", PrimitiveType::Long),
            optional(2, "pickup_at", PrimitiveType::Timestamp),
            optional(3, "dropoff_at", PrimitiveType::Timestamp),
            optional(4, "pickup_date", PrimitiveType::Date),
            optional(5, "zone_id", PrimitiveType::Int),
            optional(6, "passengers", PrimitiveType::Int),
            optional(7, "distance_km", PrimitiveType::Double),
            optional(
                8,
                "fare",
                PrimitiveType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            optional(9, "payment", PrimitiveType::String),
            optional(10, "shared", PrimitiveType::Boolean),
        ])
        .build()?;
    let zones_schema = Schema::builder()
        .with_fields(vec![
            optional(1, "zone_id", PrimitiveType::Int),
            optional(2, "name", PrimitiveType::String),
            optional(3, "borough", PrimitiveType::String),
        ])
        .build()?;
    for (name, schema) in [("zones", zones_schema), ("trips", trips_schema)] {
        let creation = TableCreation::builder()
            .name(name.to_owned())
            .schema(schema)
            .properties([(STATE_PROPERTY.to_owned(), "loading".to_owned())])
            .build();
        catalog
            .create_table(&namespace, creation)
            .await
            .with_context(|| format!("cannot create demo.{name}"))?;
    }
    Ok(DemoState::NeedsLoad)
}

/// Fills the demo tables through the engine, one append per batch of rows, and
/// marks them ready.
///
/// # Errors
///
/// When an append fails; the tables stay marked `loading` and the next start
/// creates them again.
pub async fn load(
    engine: &dyn Engine,
    catalog: &dyn Catalog,
    config: &DemoConfig,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    run(engine, &zones_insert()).await?;
    let per_append = config.rows.div_ceil(config.appends);
    let mut first = 1;
    while first <= config.rows {
        let last = (first + per_append - 1).min(config.rows);
        run(engine, &trips_insert(first, last)).await?;
        first = last + 1;
    }
    for name in ["zones", "trips"] {
        let ident = TableIdent::new(NamespaceIdent::new(NAMESPACE.to_owned()), name.to_owned());
        let table = catalog.load_table(&ident).await?;
        let tx = Transaction::new(&table);
        let tx = tx
            .update_table_properties()
            .set(STATE_PROPERTY.to_owned(), "ready".to_owned())
            .apply(tx)?;
        tx.commit(catalog).await?;
    }
    tracing::info!(
        rows = config.rows,
        appends = config.appends,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "demo dataset created"
    );
    Ok(())
}

async fn run(engine: &dyn Engine, sql: &str) -> anyhow::Result<()> {
    let statement = analyze_statement(sql, Dialect::DataFusion)?;
    match engine.execute(Request::new(&statement)).await? {
        QueryOutput::Command { .. } => Ok(()),
        QueryOutput::Rows { .. } => anyhow::bail!("demo insert returned rows"),
    }
}

fn zones_insert() -> String {
    format!(
        "INSERT INTO {NAMESPACE}.zones \
         SELECT CAST(value AS INT) AS zone_id, concat('Zone ', CAST(value AS VARCHAR)) AS name, \
                CASE value % 5 WHEN 0 THEN 'Manhattan' WHEN 1 THEN 'Brooklyn' WHEN 2 THEN 'Queens' \
                               WHEN 3 THEN 'Bronx' ELSE 'Staten Island' END AS borough \
         FROM generate_series(1, {ZONES})"
    )
}

/// The rows `first..=last` of `demo.trips`. Each column is a pure function of
/// the row number `n` (`value`), so tests can recompute any aggregate.
fn trips_insert(first: u64, last: u64) -> String {
    format!(
        "INSERT INTO {NAMESPACE}.trips \
         SELECT value AS trip_id, \
                to_timestamp_micros({EPOCH_US} + value * {STEP_US}) AS pickup_at, \
                to_timestamp_micros({EPOCH_US} + value * {STEP_US} + (300 + (value * 7919) % 3300) * 1000000) AS dropoff_at, \
                CAST(to_timestamp_micros({EPOCH_US} + value * {STEP_US}) AS DATE) AS pickup_date, \
                CAST(1 + (value * 2654435761) % {ZONES} AS INT) AS zone_id, \
                CAST(1 + (value * 31) % 5 AS INT) AS passengers, \
                CAST((value * 7919) % 40000 AS DOUBLE) / 1000.0 AS distance_km, \
                CAST(CAST(250 + ((value * 7919) % 40000) * 2 AS DECIMAL(12, 0)) / 100 AS DECIMAL(10, 2)) AS fare, \
                CASE value % 4 WHEN 0 THEN 'card' WHEN 1 THEN 'cash' WHEN 2 THEN 'card' ELSE 'app' END AS payment, \
                value % 10 = 0 AS shared \
         FROM generate_series({first}, {last})"
    )
}

/// 2024-01-01T00:00:00Z in microseconds.
const EPOCH_US: i64 = 1_704_067_200_000_000;
/// Microseconds between two trips' pickups: 1 M trips span a year.
const STEP_US: i64 = 31_536_000;
