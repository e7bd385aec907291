//! The `bleepstore` binary: flags to configuration to the server; nothing else.

use std::process::ExitCode;

use bleepstore::config::{Command, Config, CredentialsAction, Flags};
use bleepstore::meta::{admin, CredentialRow};

fn main() -> ExitCode {
    let mut flags: Flags = argh::from_env();
    if let Some(Command::Credentials(command)) = flags.command.take() {
        let data_dir = flags.data_dir.unwrap_or_else(|| "./data".into());
        return credentials(&data_dir, command.action);
    }
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

/// `bleepstore credentials add|list|remove`: key pairs in the data dir's database.
fn credentials(data_dir: &std::path::Path, action: CredentialsAction) -> ExitCode {
    if let Err(error) = std::fs::create_dir_all(data_dir) {
        eprintln!("bleepstore: cannot create {}: {error}", data_dir.display());
        return ExitCode::from(1);
    }
    let db = data_dir.join("metadata.db");
    let result = match action {
        CredentialsAction::Add(add) => {
            let row = CredentialRow {
                owner_id: bleepstore::server::canonical_user_id(&add.access_key),
                display_name: add.display_name.unwrap_or_else(|| add.access_key.clone()),
                access_key: add.access_key,
                secret_key: add.secret_key,
                created_ms: bleepstore::clock::now_unix_millis(),
            };
            admin::add_credential(&db, &row)
                .map(|()| println!("added {} (owner id {})", row.access_key, row.owner_id))
        }
        CredentialsAction::List(_) => admin::list_credentials(&db).map(|rows| {
            for row in rows {
                println!("{}\t{}\t{}", row.access_key, row.display_name, row.owner_id);
            }
        }),
        CredentialsAction::Remove(remove) => {
            admin::remove_credential(&db, &remove.access_key).map(|found| {
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
