//! The admin HTTP listener: Prometheus metrics, health and readiness probes,
//! and the JSON API.
//!
//! | path | answers |
//! |---|---|
//! | `GET /metrics` | every metric in Prometheus text format |
//! | `GET /healthz` | `200 ok` while the process serves HTTP at all |
//! | `GET /readyz` | `200 ready` once every front end listens and the demo data exists; `503` before that and while draining |
//! | `GET /api/tables` | the inventory: every table with its snapshot and file counts |

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Catalogs by configured name.
pub type NamedCatalogs = Vec<(String, Arc<dyn iceberg::Catalog>)>;

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// Set once the daemon serves clients.
    pub ready: Arc<AtomicBool>,
    /// Cancelled when shutdown begins.
    pub shutdown: CancellationToken,
    /// The catalogs, by configured name, for the inventory.
    pub catalogs: Arc<std::sync::RwLock<NamedCatalogs>>,
}

/// Serves the admin API on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: AdminState) {
    let shutdown = state.shutdown.clone();
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/tables", get(tables))
        .with_state(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn metrics(State(state): State<AdminState>) -> String {
    state.prometheus.render()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

#[derive(Serialize)]
struct CatalogTables {
    catalog: String,
    tables: Vec<floe_maintenance::inventory::TableSignals>,
}

async fn tables(State(state): State<AdminState>) -> Response {
    let catalogs = match state.catalogs.read() {
        Ok(catalogs) => catalogs.clone(),
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "catalog list poisoned\n").into_response();
        }
    };
    let mut out = Vec::with_capacity(catalogs.len());
    for (name, catalog) in catalogs {
        match floe_maintenance::inventory::inventory(catalog.as_ref()).await {
            Ok(tables) => out.push(CatalogTables {
                catalog: name,
                tables,
            }),
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("catalog {name}: {e}\n")).into_response();
            }
        }
    }
    Json(out).into_response()
}
