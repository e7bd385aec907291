//! The `bleepstore` binary: flags to configuration to the server; nothing else.

use std::process::ExitCode;

use bleepstore::config::{Config, Flags};

fn main() -> ExitCode {
    let flags: Flags = argh::from_env();
    let config = match Config::resolve(flags, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("bleepstore: {message}");
            return ExitCode::from(2);
        }
    };
    bleepstore::ops::logging::init(&config.log_level);
    match bleepstore::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            eprintln!("bleepstore: {message}");
            ExitCode::from(1)
        }
    }
}
