//! Logging setup: env_logger at the configured level; `RUST_LOG` refines it when set.

/// Installs the global logger. `level` is one of error, warn, info, debug, trace, off.
pub fn init(level: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder.format_timestamp_millis();
    // A second init (tests) is harmless: keep the first logger.
    let _ = builder.try_init();
}
