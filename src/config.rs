//! The settings the daemon runs with: command-line flags (argh) merged over
//! environment variables and embedded defaults. Nothing here touches the disk
//! or the network; `server` acts on the result.

use std::path::PathBuf;

use argh::FromArgs;

use crate::limits;

/// Access key used when none is configured (development only; logged as a warning).
pub const DEV_ACCESS_KEY: &str = "bleepstore";
/// Secret key used when none is configured (development only; logged as a warning).
pub const DEV_SECRET_KEY: &str = "bleepstore-secret";

/// BleepStore: an S3-compatible object storage daemon.
#[derive(FromArgs, Debug)]
pub struct Flags {
    /// address to listen on (default 0.0.0.0)
    #[argh(option)]
    pub host: Option<String>,
    /// TCP port to serve S3 on (default 9000)
    #[argh(option)]
    pub port: Option<u16>,
    /// directory holding object data and the metadata database (default ./data)
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
    /// number of serving threads, one io_uring runtime each (default: number of cores)
    #[argh(option)]
    pub threads: Option<usize>,
    /// region this server answers for (default us-east-1)
    #[argh(option)]
    pub region: Option<String>,
    /// access key of the key pair seeded at startup (env BLEEPSTORE_ACCESS_KEY)
    #[argh(option)]
    pub access_key: Option<String>,
    /// secret key of the key pair seeded at startup (env BLEEPSTORE_SECRET_KEY)
    #[argh(option)]
    pub secret_key: Option<String>,
    /// host suffix for virtual-hosted-style requests, e.g. s3.example.com (default: path style only)
    #[argh(option)]
    pub domain: Option<String>,
    /// largest object a single PUT accepts, in bytes (default 5 GiB)
    #[argh(option)]
    pub max_object_size: Option<u64>,
    /// log level: error, warn, info, debug or trace (default info; env RUST_LOG also works)
    #[argh(option)]
    pub log_level: Option<String>,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// Administrative commands that act on the data dir instead of serving.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Credentials(CredentialsCommand),
}

/// manage key pairs (each its own user) in the data dir's metadata database
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "credentials")]
pub struct CredentialsCommand {
    #[argh(subcommand)]
    pub action: CredentialsAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum CredentialsAction {
    Add(CredentialsAdd),
    List(CredentialsList),
    Remove(CredentialsRemove),
}

/// add a key pair (replacing the secret of an existing access key)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct CredentialsAdd {
    /// the access key id
    #[argh(option)]
    pub access_key: String,
    /// the secret key
    #[argh(option)]
    pub secret_key: String,
    /// the user's display name (default: the access key)
    #[argh(option)]
    pub display_name: Option<String>,
}

/// list key pairs (secrets are not printed)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct CredentialsList {}

/// remove a key pair
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "remove")]
pub struct CredentialsRemove {
    /// the access key id to remove
    #[argh(option)]
    pub access_key: String,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub threads: usize,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// True when the development key pair is in use (no key pair was configured).
    pub dev_credentials: bool,
    pub domain: Option<String>,
    pub max_object_size: u64,
    pub log_level: String,
}

impl Config {
    /// Merges flags over the environment (`env` looks a variable up) over defaults.
    pub fn resolve(flags: Flags, env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let flags = Flags {
            command: None,
            ..flags
        };
        let access_key = flags.access_key.or_else(|| env("BLEEPSTORE_ACCESS_KEY"));
        let secret_key = flags.secret_key.or_else(|| env("BLEEPSTORE_SECRET_KEY"));
        let (access_key, secret_key, dev_credentials) = match (access_key, secret_key) {
            (Some(a), Some(s)) => (a, s, false),
            (None, None) => (DEV_ACCESS_KEY.to_string(), DEV_SECRET_KEY.to_string(), true),
            _ => return Err("--access-key and --secret-key must be given together".into()),
        };
        if access_key.is_empty() || secret_key.is_empty() {
            return Err("--access-key and --secret-key must not be empty".into());
        }
        let threads = match flags.threads {
            Some(0) => return Err("--threads must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let log_level = flags.log_level.unwrap_or_else(|| "info".to_string());
        if !["error", "warn", "info", "debug", "trace", "off"].contains(&log_level.as_str()) {
            return Err(format!(
                "--log-level {log_level:?}: expected error, warn, info, debug or trace"
            ));
        }
        let domain = flags
            .domain
            .filter(|d| !d.is_empty())
            .map(|d| d.to_ascii_lowercase());
        Ok(Config {
            host: flags.host.unwrap_or_else(|| "0.0.0.0".to_string()),
            port: flags.port.unwrap_or(9000),
            data_dir: flags.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            threads,
            region: flags.region.unwrap_or_else(|| "us-east-1".to_string()),
            access_key,
            secret_key,
            dev_credentials,
            domain,
            max_object_size: flags
                .max_object_size
                .unwrap_or(limits::OBJECT_BYTES_DEFAULT_MAX),
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::from_args(&["bleepstore"], args).unwrap()
    }

    #[test]
    fn defaults_use_dev_credentials() {
        let config = Config::resolve(flags(&[]), |_| None).unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.access_key, DEV_ACCESS_KEY);
        assert!(config.dev_credentials);
        assert_eq!(config.region, "us-east-1");
    }

    #[test]
    fn flags_win_over_environment() {
        let env = |name: &str| match name {
            "BLEEPSTORE_ACCESS_KEY" => Some("envkey".to_string()),
            "BLEEPSTORE_SECRET_KEY" => Some("envsecret".to_string()),
            _ => None,
        };
        let config = Config::resolve(flags(&[]), env).unwrap();
        assert_eq!(config.access_key, "envkey");
        assert!(!config.dev_credentials);
        let args = ["--access-key", "a", "--secret-key", "b"];
        let config = Config::resolve(flags(&args), env).unwrap();
        assert_eq!(
            (config.access_key.as_str(), config.secret_key.as_str()),
            ("a", "b")
        );
    }

    #[test]
    fn half_a_key_pair_is_an_error() {
        assert!(Config::resolve(flags(&["--access-key", "a"]), |_| None).is_err());
        assert!(Config::resolve(flags(&["--threads", "0"]), |_| None).is_err());
        assert!(Config::resolve(flags(&["--log-level", "loud"]), |_| None).is_err());
    }
}
