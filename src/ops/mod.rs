//! Operational surfaces: logging, the process lifecycle (readiness, drain, per-core
//! figures), request metrics, and the unauthenticated health, metrics and API
//! description endpoints.

pub mod endpoints;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
