//! Operational surfaces: logging setup (metrics, health and docs come with their issue).

pub mod logging;
