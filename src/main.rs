//! The `bleepstore` binary: flags to configuration to the server; nothing else.

use std::process::ExitCode;

use bleepstore::config::{file, Command, Config, CredentialsAction, Flags};
use bleepstore::meta::{admin, CredentialRow};

fn main() -> ExitCode {
    bleepstore::allocator::tune();
    let mut flags: Flags = argh::from_env();
    if let Some(Command::Routes(_)) = flags.command {
        println!("{}", bleepstore::routes_json());
        return ExitCode::SUCCESS;
    }
    let env = |name: &str| std::env::var(name).ok();
    let file = match flags
        .config
        .clone()
        .or_else(|| env("BLEEPSTORE_CONFIG").map(Into::into))
    {
        Some(path) => match file::load(&path) {
            Ok(loaded) => Some((path, loaded)),
            Err(message) => {
                eprintln!("bleepstore: {message}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let settings = file
        .as_ref()
        .map(|(_, loaded)| loaded.settings.clone())
        .unwrap_or_default();
    let command = flags.command.take();
    let config = match Config::resolve(flags, env, settings) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("bleepstore: {message}");
            return ExitCode::from(2);
        }
    };
    match command {
        Some(Command::Credentials(command)) => {
            return credentials(&config.metadata_path, command.action)
        }
        Some(Command::Routes(_)) | None => {}
    }
    bleepstore::init_logging(&config.log_level, config.log_format);
    if let Some((path, loaded)) = &file {
        log::info!("configuration read from {}", path.display());
        for warning in &loaded.warnings {
            log::warn!("{warning}");
        }
    }
    match bleepstore::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            eprintln!("bleepstore: {message}");
            ExitCode::from(1)
        }
    }
}

/// `bleepstore credentials add|list|remove`: key pairs in the metadata database
/// (`<data-dir>/metadata.db`, or `metadata.sqlite.path` of the config file).
fn credentials(db: &std::path::Path, action: CredentialsAction) -> ExitCode {
    if let Some(dir) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Err(error) = std::fs::create_dir_all(dir) {
            eprintln!("bleepstore: cannot create {}: {error}", dir.display());
            return ExitCode::from(1);
        }
    }
    let result = match action {
        CredentialsAction::Add(add) => {
            let row = CredentialRow {
                owner_id: bleepstore::server::canonical_user_id(&add.access_key),
                display_name: add.display_name.unwrap_or_else(|| add.access_key.clone()),
                access_key: add.access_key,
                secret_key: add.secret_key,
                created_ms: bleepstore::clock::now_unix_millis(),
            };
            admin::add_credential(db, &row)
                .map(|()| println!("added {} (owner id {})", row.access_key, row.owner_id))
        }
        CredentialsAction::List(_) => admin::list_credentials(db).map(|rows| {
            for row in rows {
                println!("{}\t{}\t{}", row.access_key, row.display_name, row.owner_id);
            }
        }),
        CredentialsAction::Remove(remove) => {
            admin::remove_credential(db, &remove.access_key).map(|found| {
                if found {
                    println!("removed {}", remove.access_key);
                } else {
                    println!("no key pair {}", remove.access_key);
                }
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bleepstore: {error}");
            ExitCode::from(1)
        }
    }
}
