//! Operational surfaces: logging, the process lifecycle (readiness, drain, per-core
//! figures), request metrics, and the unauthenticated health, metrics and API
//! description endpoints.

pub(crate) mod endpoints;
pub(crate) mod lifecycle;
pub(crate) mod logging;
pub(crate) mod metrics;
