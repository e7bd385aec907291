//! The operations endpoints, served without authentication: `/health` (JSON with
//! the metadata and storage checks), `/healthz`, `/readyz` (503 while starting or
//! draining, or while a gateway's upstream does not answer), `/metrics` (Prometheus), `/openapi.json` and `/docs` (Swagger UI,
//! whose assets are vendored under `swagger-ui/` and served from here). A request is
//! one of these only when it is an unsigned GET or HEAD of exactly that path, so a
//! signed request to a bucket named `health` still reaches S3.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::core_state::CoreState;
use crate::http::{Body, Labels, RequestHead, Response, ResponseHead};
use crate::ops::metrics::{self, Gauges, ProcessStats};

const OPENAPI: &str = include_str!("openapi.json");

/// A fixed file `/docs` needs, compiled into the binary.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// The Swagger UI page and everything it loads: nothing comes from another host.
static DOCS_ASSETS: [Asset; 5] = [
    Asset {
        path: "/docs",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("docs.html"),
    },
    Asset {
        path: "/docs/init.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("docs-init.js"),
    },
    Asset {
        path: "/docs/swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        path: "/docs/swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("swagger-ui/swagger-ui.css"),
    },
    Asset {
        path: "/docs/favicon-32x32.png",
        content_type: "image/png",
        bytes: include_bytes!("swagger-ui/favicon-32x32.png"),
    },
];

/// What the docs page may load and run: only this origin's files (Swagger UI sets
/// inline styles, and shows inline SVG and data: images).
const DOCS_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";
/// How long a scrape waits for each core's metrics and for the metadata counts.
const SCRAPE_WAIT: Duration = Duration::from_secs(crate::limits::SCRAPE_WAIT_SECS);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Health,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Docs(&'static Asset),
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
            Endpoint::Docs(asset) => asset.path,
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
    if head.header("authorization").is_some()
        || head.query.contains("X-Amz-Signature")
        || head.query.contains("AWSAccessKeyId")
    {
        return None;
    }
    let endpoint = match head.path.as_str() {
        "/health" => Endpoint::Health,
        "/healthz" => Endpoint::Healthz,
        "/readyz" => Endpoint::Readyz,
        "/metrics" => Endpoint::Metrics,
        "/openapi.json" => Endpoint::OpenApi,
        path => Endpoint::Docs(DOCS_ASSETS.iter().find(|asset| asset.path == path)?),
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
            // A gateway without its upstream serves nothing: not ready either.
            let upstream_up = !state.storage.is_gateway()
                || matches!(
                    monoio::time::timeout(SCRAPE_WAIT, state.storage.health()).await,
                    Ok(Ok(()))
                );
            if state.lifecycle.is_ready() && upstream_up {
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
            let scheme = if state.config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            (
                200,
                "application/json",
                Cow::Owned(OPENAPI.replace("__SERVER_URL__", &format!("{scheme}://{host}"))),
            )
        }
        Endpoint::Docs(asset) => {
            let mut response_head = ResponseHead::new(200);
            response_head.header("Content-Type", asset.content_type);
            response_head.header("Cache-Control", "public, max-age=3600");
            response_head.header("Content-Security-Policy", DOCS_POLICY);
            response_head.header("X-Content-Type-Options", "nosniff");
            return labelled(
                Response::new(response_head, Body::Static(asset.bytes)),
                endpoint,
            );
        }
    };
    let mut response_head = ResponseHead::new(status);
    response_head.header("Content-Type", content_type);
    response_head.header("Cache-Control", "no-store");
    labelled(
        Response::new(response_head, Body::Bytes(body.into_owned().into_bytes())),
        endpoint,
    )
}

fn labelled<S>(mut response: Response<S>, endpoint: Endpoint) -> Response<S> {
    response.labels = Labels {
        path: endpoint.path(),
        quiet: endpoint.is_quiet(),
        ..Labels::default()
    };
    response
}

/// Runs the metadata and storage checks; returns (all healthy, the JSON document).
/// The document names a failing check and how it failed (no answer, or an error)
/// but not the error's text, which can carry paths and SQL: that goes to the log.
async fn health(state: &CoreState) -> (bool, String) {
    let started = Instant::now();
    let metadata = match monoio::time::timeout(SCRAPE_WAIT, state.meta.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(failed("metadata", &error)),
        Err(_) => Err("no answer in time"),
    };
    let metadata_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    // The write path's first step: create a temp file in the data dir, then remove it
    // (a gateway asks its upstream about the bucket).
    let storage = match monoio::time::timeout(SCRAPE_WAIT, state.storage.health()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(failed("storage", &error)),
        Err(_) => Err("no answer in time"),
    };
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
        ("metadata", metadata, metadata_ms),
        ("storage", storage, storage_ms),
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
        if let Err(what) = result {
            let _ = write!(json, ",\"error\":\"{what}\"");
        }
        json.push('}');
    }
    json.push_str("}}");
    (healthy, json)
}

/// Logs a failed check's cause for the operator; returns what `/health` says of it.
fn failed(check: &str, error: &dyn std::fmt::Display) -> &'static str {
    log::warn!("health check {check} failed: {error}");
    "check failed; the server log has the cause"
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
        memory: match &state.storage {
            crate::storage::Storage::Memory(memory) => {
                Some((memory.object_count(), memory.used(), memory.max_size()))
            }
            _ => None,
        },
    };
    metrics::render(&merged, &gauges)
}
