//! The operations endpoints, served without authentication: `/health` (JSON with
//! the metadata and storage checks), `/healthz`, `/readyz` (503 while starting or
//! draining), `/metrics` (Prometheus), `/openapi.json` and `/docs`. A request is
//! one of these only when it is an unsigned GET or HEAD of exactly that path, so a
//! signed request to a bucket named `health` still reaches S3.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::core_state::CoreState;
use crate::http::{Body, Labels, RequestHead, Response, ResponseHead};
use crate::ops::logging::json_string;
use crate::ops::metrics::{self, Gauges, ProcessStats};

const OPENAPI: &str = include_str!("openapi.json");
const DOCS: &str = include_str!("docs.html");
/// How long a scrape waits for each core's metrics and for the metadata counts.
const SCRAPE_WAIT: Duration = Duration::from_secs(crate::limits::SCRAPE_WAIT_SECS);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Health,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Docs,
}

impl Endpoint {
    /// The path, which is also its label in metrics.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Health => "/health",
            Endpoint::Healthz => "/healthz",
            Endpoint::Readyz => "/readyz",
            Endpoint::Metrics => "/metrics",
            Endpoint::OpenApi => "/openapi.json",
            Endpoint::Docs => "/docs",
        }
    }

    /// Probes and scrapes are neither access-logged nor counted in request metrics.
    pub(crate) fn is_quiet(self) -> bool {
        matches!(
            self,
            Endpoint::Health | Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics
        )
    }
}

/// The endpoint an unsigned GET or HEAD names, if any.
pub(crate) fn endpoint_for(head: &RequestHead) -> Option<Endpoint> {
    if head.method != "GET" && head.method != "HEAD" {
        return None;
    }
    if head.header("authorization").is_some() || head.query.contains("X-Amz-Signature") {
        return None;
    }
    let endpoint = match head.path.as_str() {
        "/health" => Endpoint::Health,
        "/healthz" => Endpoint::Healthz,
        "/readyz" => Endpoint::Readyz,
        "/metrics" => Endpoint::Metrics,
        "/openapi.json" => Endpoint::OpenApi,
        "/docs" => Endpoint::Docs,
        _ => return None,
    };
    Some(endpoint)
}

/// Answers an endpoint.
pub(crate) async fn serve<S>(
    state: &CoreState,
    head: &RequestHead,
    endpoint: Endpoint,
) -> Response<S> {
    let (status, content_type, body): (u16, &str, Cow<'static, str>) = match endpoint {
        Endpoint::Healthz => (200, "text/plain", Cow::Borrowed("")),
        Endpoint::Readyz => {
            if state.lifecycle.is_ready() {
                (200, "text/plain", Cow::Borrowed(""))
            } else {
                (503, "text/plain", Cow::Borrowed(""))
            }
        }
        Endpoint::Health => {
            let (healthy, json) = health(state).await;
            (
                if healthy { 200 } else { 503 },
                "application/json",
                Cow::Owned(json),
            )
        }
        Endpoint::Metrics => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            Cow::Owned(scrape(state).await),
        ),
        Endpoint::OpenApi => {
            let host = head
                .header("host")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}:{}", state.config.host, state.config.port));
            (
                200,
                "application/json",
                Cow::Owned(OPENAPI.replace("__SERVER_URL__", &format!("http://{host}"))),
            )
        }
        Endpoint::Docs => (200, "text/html; charset=utf-8", Cow::Borrowed(DOCS)),
    };
    let mut response_head = ResponseHead::new(status);
    response_head.header("Content-Type", content_type);
    response_head.header("Cache-Control", "no-store");
    let mut response = Response::new(response_head, Body::Bytes(body.into_owned().into_bytes()));
    response.labels = Labels {
        path: endpoint.path(),
        quiet: endpoint.is_quiet(),
        ..Labels::default()
    };
    response
}

/// Runs the metadata and storage checks; returns (all healthy, the JSON document).
async fn health(state: &CoreState) -> (bool, String) {
    let started = Instant::now();
    let metadata = match monoio::time::timeout(SCRAPE_WAIT, state.meta.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 2 s".to_string()),
    };
    let metadata_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    // The write path's first step: create a temp file in the data dir, then remove it.
    let storage = state.storage.health().await.map_err(|e| e.to_string());
    let storage_ms = started.elapsed().as_secs_f64() * 1000.0;
    let healthy = metadata.is_ok() && storage.is_ok();
    let mut json = String::with_capacity(256);
    let _ = write!(
        json,
        "{{\"status\":\"{}\",\"version\":\"{}\",\"uptime_seconds\":{},\"checks\":{{",
        if healthy { "ok" } else { "error" },
        env!("CARGO_PKG_VERSION"),
        state.lifecycle.uptime().as_secs()
    );
    for (i, (name, result, ms)) in [
        ("metadata", &metadata, metadata_ms),
        ("storage", &storage, storage_ms),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "\"{name}\":{{\"status\":\"{}\",\"latency_ms\":{ms:.3}",
            if result.is_ok() { "ok" } else { "error" }
        );
        if let Err(message) = result {
            json.push_str(",\"error\":");
            json_string(&mut json, message);
        }
        json.push('}');
    }
    json.push_str("}}");
    (healthy, json)
}

async fn scrape(state: &CoreState) -> String {
    let merged = state.lifecycle.gather_metrics(SCRAPE_WAIT).await;
    let counts = match monoio::time::timeout(SCRAPE_WAIT, state.meta.counts()).await {
        Ok(Ok(counts)) => Some(counts),
        _ => None,
    };
    let gauges = Gauges {
        counts,
        process: ProcessStats::read(state.lifecycle.start_unix_seconds()),
        connections: state.lifecycle.connections() as u64,
        in_flight: state.lifecycle.in_flight() as u64,
        log_lines_dropped: crate::ops::logging::dropped_lines(),
        reclaimed: state.reads.fence().reclaimed(),
    };
    metrics::render(&merged, &gauges)
}
