//! The admin API of the maintenance engine: telemetry, the planner's view,
//! a pass on demand, policies.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use floe_maintenance::adaptive::Maintainer;
use floe_maintenance::policy::Policy;
use floe_maintenance::telemetry::Heat;
use serde::{Deserialize, Serialize};

use super::{AdminState, starting};

/// What the maintenance endpoints need, once the daemon has built it.
#[derive(Clone)]
pub struct AdminMaintenance {
    /// The scheduler.
    pub maintainer: Arc<Maintainer>,
    /// The telemetry aggregator, when telemetry is on.
    pub heat: Option<Arc<Heat>>,
    /// Where a pass on demand runs: the daemon's CPU runtime.
    pub cpu: tokio::runtime::Handle,
}

fn maintenance(state: &AdminState) -> Option<AdminMaintenance> {
    state.maintenance.read().ok().and_then(|m| m.clone())
}

fn bad(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// Answers `f(heat)`, or why there is no telemetry to ask.
fn with_heat(state: &AdminState, f: impl FnOnce(&Heat) -> Response) -> Response {
    match maintenance(state) {
        None => starting(),
        Some(AdminMaintenance { heat: None, .. }) => bad(
            StatusCode::NOT_FOUND,
            "telemetry is disabled (maintenance.telemetry.enabled)",
        ),
        Some(AdminMaintenance {
            heat: Some(heat), ..
        }) => f(&heat),
    }
}

/// `GET /api/telemetry`: every queried table, hottest first.
pub async fn telemetry(State(state): State<AdminState>) -> Response {
    with_heat(&state, |heat| {
        Json(heat.tables(floe_maintenance::now_ms())).into_response()
    })
}

#[derive(Deserialize)]
pub struct EventsQuery {
    table: Option<String>,
    since_ms: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/telemetry/events?table=&since_ms=&limit=`: raw events, oldest first.
pub async fn events(State(state): State<AdminState>, Query(q): Query<EventsQuery>) -> Response {
    with_heat(&state, |heat| {
        Json(heat.events(q.table.as_deref(), q.since_ms, q.limit.unwrap_or(100))).into_response()
    })
}

/// `GET /api/maintenance/plan`: what a pass would do now, best job first.
pub async fn plan(State(state): State<AdminState>) -> Response {
    let Some(m) = maintenance(&state) else {
        return starting();
    };
    match m.maintainer.plan().await {
        Ok(plan) => Json(plan).into_response(),
        Err(e) => bad(StatusCode::BAD_GATEWAY, e),
    }
}

/// `POST /api/maintenance/run`: one pass now; answers what ran.
pub async fn run(State(state): State<AdminState>) -> Response {
    let Some(m) = maintenance(&state) else {
        return starting();
    };
    // Compaction would hold the clients' runtime for the whole pass. A pass
    // goes on if the caller hangs up; its jobs are in the audit trail.
    let maintainer = Arc::clone(&m.maintainer);
    let outcome = match m.cpu.spawn(async move { maintainer.tick().await }).await {
        Ok(outcome) => outcome,
        Err(e) => return bad(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    match outcome {
        Ok(jobs) => Json(jobs).into_response(),
        Err(e) => bad(StatusCode::BAD_GATEWAY, e),
    }
}

#[derive(Serialize)]
struct Listed {
    origin: floe_maintenance::policy::Origin,
    #[serde(flatten)]
    policy: Policy,
}

#[derive(Deserialize)]
pub struct PolicyQuery {
    table: Option<String>,
    scope: Option<String>,
}

/// `GET /api/policies`: every policy with its origin; with `?table=`, that
/// table's effective policy and where each setting came from.
pub async fn policies(State(state): State<AdminState>, Query(q): Query<PolicyQuery>) -> Response {
    let Some(m) = maintenance(&state) else {
        return starting();
    };
    if let Some(table) = q.table {
        return Json(m.maintainer.resolve(&table)).into_response();
    }
    let list: Vec<Listed> = m
        .maintainer
        .policies()
        .into_iter()
        .map(|(origin, policy)| Listed { origin, policy })
        .collect();
    Json(list).into_response()
}

/// `PUT /api/policies` with a policy as JSON: sets the API policy of its
/// scope (replacing an earlier one), persisted in the state store.
pub async fn put_policy(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    let Some(m) = maintenance(&state) else {
        return starting();
    };
    let policy: Policy = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("policy: {e}")),
    };
    match m.maintainer.set_policy(policy).await {
        Ok(()) => (StatusCode::OK, "policy set\n").into_response(),
        Err(floe_maintenance::Error::Invalid(e)) => bad(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `DELETE /api/policies?scope=`: removes the API policy of a scope.
pub async fn delete_policy(
    State(state): State<AdminState>,
    Query(q): Query<PolicyQuery>,
) -> Response {
    let Some(m) = maintenance(&state) else {
        return starting();
    };
    let Some(scope) = q.scope else {
        return bad(StatusCode::BAD_REQUEST, "scope is required");
    };
    match m.maintainer.delete_policy(&scope).await {
        Ok(true) => (StatusCode::OK, "policy removed\n").into_response(),
        Ok(false) => bad(
            StatusCode::NOT_FOUND,
            format!("no API policy for `{scope}`"),
        ),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
