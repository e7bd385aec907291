//! The settings the daemon runs with: command-line flags (argh) over environment
//! variables (`BLEEPSTORE_*`) over the `--config` YAML file over embedded defaults.
//! Only `file::load` touches the disk; `server` acts on the result.

pub mod file;

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::auth::SecretKey;
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
    pub secret_key: Option<SecretKey>,
    /// host suffix for virtual-hosted-style requests, e.g. s3.example.com (default: path style only)
    #[argh(option)]
    pub domain: Option<String>,
    /// largest object a single PUT accepts, in bytes (default 5 GiB)
    #[argh(option)]
    pub max_object_size: Option<u64>,
    /// log level: error, warn, info, debug or trace (default info; env RUST_LOG also works)
    #[argh(option)]
    pub log_level: Option<String>,
    /// log format: text or json (one JSON object per line) (default text)
    #[argh(option)]
    pub log_format: Option<String>,
    /// YAML config file (BleepStore format); flags and environment override it
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// seconds a SIGTERM/SIGINT waits for in-flight requests before exiting (default 30)
    #[argh(option)]
    pub shutdown_timeout: Option<u64>,
    /// most connections served at once, across all threads (default 10000)
    #[argh(option)]
    pub max_connections: Option<usize>,
    /// i/o driver: auto (io_uring, falling back to epoll), io_uring, or epoll (default auto)
    #[argh(option)]
    pub io_driver: Option<String>,
    /// seconds after which an unfinished multipart upload is aborted and its parts
    /// deleted, at startup and while serving (default 604800, 7 days)
    #[argh(option)]
    pub multipart_ttl: Option<u64>,
    /// where object bytes live: local (files under --data-dir), memory (bounded by
    /// storage.memory.max_size_bytes of the config file) or sqlite (in the metadata
    /// database) (default local; env BLEEPSTORE_STORAGE_BACKEND)
    #[argh(option)]
    pub storage_backend: Option<String>,
    /// serve HTTPS with this PEM certificate chain, leaf first; re-read on SIGHUP
    /// (env BLEEPSTORE_TLS_CERT)
    #[argh(option)]
    pub tls_cert: Option<PathBuf>,
    /// the PEM private key of --tls-cert (env BLEEPSTORE_TLS_KEY)
    #[argh(option)]
    pub tls_key: Option<PathBuf>,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// Administrative commands that act on the data dir instead of serving.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Credentials(CredentialsCommand),
    Routes(RoutesCommand),
}

/// print every S3 operation the router knows, as JSON (method, subresource, whether served)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "routes")]
pub struct RoutesCommand {}

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
    pub secret_key: SecretKey,
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
    pub secret_key: SecretKey,
    /// True when the development key pair is in use (no key pair was configured).
    pub dev_credentials: bool,
    pub domain: Option<String>,
    pub max_object_size: u64,
    pub log_level: String,
    pub log_format: LogFormat,
    /// The SQLite database (default `<data_dir>/metadata.db`).
    pub metadata_path: PathBuf,
    pub shutdown_timeout: Duration,
    pub max_connections: usize,
    pub io_driver: IoDriver,
    /// Age at which an unfinished multipart upload is reaped.
    pub multipart_ttl: Duration,
    /// HTTPS: the certificate chain and key files (plain HTTP when `None`).
    pub tls: Option<TlsFiles>,
    /// Where object bytes live.
    pub storage: StorageBackend,
}

/// The storage backend and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// Files under the data dir.
    Local,
    /// Process memory, at most `max_size` bytes, snapshotted to a file if configured.
    Memory {
        max_size: u64,
        snapshot: Option<crate::storage::Snapshot>,
    },
    /// Chunk rows in the metadata database, committed with the rows that name them.
    Sqlite,
    /// Objects in a bucket of AWS S3 or an S3-compatible store.
    Aws(crate::storage::AwsSettings),
    /// Objects in a container of Azure Blob Storage (or the Azurite emulator).
    Azure(crate::storage::AzureSettings),
    /// Objects in a Google Cloud Storage bucket, through its JSON API.
    Gcp(crate::storage::GcpSettings),
}

impl StorageBackend {
    /// The name a metadata database records for the backend that holds its bytes (a
    /// gateway's names its upstream bucket and prefix too).
    pub fn identity(&self) -> String {
        match self {
            StorageBackend::Local => "local".to_string(),
            StorageBackend::Memory { .. } => "memory".to_string(),
            StorageBackend::Sqlite => "sqlite".to_string(),
            StorageBackend::Aws(settings) => settings.identity(),
            StorageBackend::Azure(settings) => settings.identity(),
            StorageBackend::Gcp(settings) => settings.identity(),
        }
    }
}

/// The PEM files HTTPS is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Which monoio driver the serving threads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// io_uring, or epoll with a warning where the kernel refuses io_uring.
    Auto,
    /// io_uring or a startup error.
    IoUring,
    /// epoll (monoio's legacy driver), for kernels or sandboxes without io_uring.
    Epoll,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `<timestamp> <LEVEL> <target> <message> key=value...`, for people.
    Text,
    /// One JSON object per line with level, timestamp, target, message and fields.
    Json,
}

/// Reads an environment variable as `T`, naming the variable when it does not parse.
fn env_parsed<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, String> {
    env_with(env, name, |text| text.trim().parse().ok())
}

/// Reads an environment variable with `parse`, naming the variable when it fails.
fn env_with<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    match env(name) {
        None => Ok(None),
        Some(text) => parse(&text)
            .map(Some)
            .ok_or_else(|| format!("environment {name}={text:?} is not a valid value")),
    }
}

impl Config {
    /// Merges flags over the environment (`env` looks a variable up) over the config
    /// file's settings over defaults.
    pub fn resolve(
        flags: Flags,
        env: impl Fn(&str) -> Option<String>,
        file: file::FileSettings,
    ) -> Result<Config, String> {
        let flags = Flags {
            command: None,
            ..flags
        };
        let text = |flag: Option<String>, var: &str, from_file: Option<String>| {
            flag.or_else(|| env(var)).or(from_file)
        };
        let access_key = text(flags.access_key, "BLEEPSTORE_ACCESS_KEY", file.access_key);
        let secret_key = flags
            .secret_key
            .or_else(|| env("BLEEPSTORE_SECRET_KEY").map(SecretKey::new))
            .or(file.secret_key);
        let (access_key, secret_key, dev_credentials) = match (access_key, secret_key) {
            (Some(a), Some(s)) => (a, s, false),
            (None, None) => (
                DEV_ACCESS_KEY.to_string(),
                SecretKey::new(DEV_SECRET_KEY.to_string()),
                true,
            ),
            _ => return Err("--access-key and --secret-key must be given together".into()),
        };
        if access_key.is_empty() || secret_key.expose().is_empty() {
            return Err("--access-key and --secret-key must not be empty".into());
        }
        let threads = match flags
            .threads
            .or(env_parsed(&env, "BLEEPSTORE_THREADS")?)
            .or(file.threads)
        {
            Some(0) => return Err("--threads must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let log_level = text(flags.log_level, "BLEEPSTORE_LOG_LEVEL", file.log_level)
            .unwrap_or_else(|| "info".to_string())
            .to_ascii_lowercase();
        if !["error", "warn", "info", "debug", "trace", "off"].contains(&log_level.as_str()) {
            return Err(format!(
                "--log-level {log_level:?}: expected error, warn, info, debug or trace"
            ));
        }
        let log_format = match text(flags.log_format, "BLEEPSTORE_LOG_FORMAT", file.log_format)
            .unwrap_or_else(|| "text".to_string())
            .to_ascii_lowercase()
            .as_str()
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(format!("--log-format {other:?}: expected text or json")),
        };
        let domain = text(flags.domain, "BLEEPSTORE_DOMAIN", file.domain)
            .filter(|d| !d.is_empty())
            .map(|d| d.to_ascii_lowercase());
        let data_dir = flags
            .data_dir
            .or_else(|| env("BLEEPSTORE_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let metadata_path = env("BLEEPSTORE_METADATA_PATH")
            .map(PathBuf::from)
            .or(file.metadata_path)
            .unwrap_or_else(|| data_dir.join("metadata.db"));
        // Flags take whole seconds and bytes; the environment and the file also take
        // units (`30s`, `7d`, `5GiB`).
        let seconds = |flag: Option<u64>| flag.map(Duration::from_secs);
        let shutdown_timeout = seconds(flags.shutdown_timeout)
            .or(env_with(
                &env,
                "BLEEPSTORE_SHUTDOWN_TIMEOUT",
                file::parse_duration,
            )?)
            .or(file.shutdown_timeout)
            .unwrap_or(Duration::from_secs(limits::SHUTDOWN_TIMEOUT_DEFAULT_SECS));
        let multipart_ttl = seconds(flags.multipart_ttl)
            .or(env_with(
                &env,
                "BLEEPSTORE_MULTIPART_TTL",
                file::parse_duration,
            )?)
            .or(file.multipart_ttl)
            .unwrap_or(Duration::from_secs(limits::MULTIPART_TTL_DEFAULT_SECS));
        if multipart_ttl.is_zero() {
            return Err("--multipart-ttl must be at least 1 second".into());
        }
        let max_object_size = flags
            .max_object_size
            .or(env_with(
                &env,
                "BLEEPSTORE_MAX_OBJECT_SIZE",
                file::parse_size,
            )?)
            .or(file.max_object_size)
            .unwrap_or(limits::OBJECT_BYTES_DEFAULT_MAX);
        let max_connections = flags
            .max_connections
            .or(env_parsed(&env, "BLEEPSTORE_MAX_CONNECTIONS")?)
            .or(file.max_connections)
            .unwrap_or(limits::CONNECTIONS_DEFAULT_MAX);
        if max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        let io_driver = match text(flags.io_driver, "BLEEPSTORE_IO_DRIVER", file.io_driver)
            .unwrap_or_else(|| "auto".to_string())
            .to_ascii_lowercase()
            .as_str()
        {
            "auto" => IoDriver::Auto,
            "io_uring" | "iouring" | "uring" => IoDriver::IoUring,
            "epoll" | "legacy" => IoDriver::Epoll,
            other => {
                return Err(format!(
                    "--io-driver {other:?}: expected auto, io_uring or epoll"
                ))
            }
        };
        let path = |flag: Option<PathBuf>, var: &str, from_file: Option<PathBuf>| {
            flag.or_else(|| env(var).map(PathBuf::from)).or(from_file)
        };
        let tls = match (
            path(flags.tls_cert, "BLEEPSTORE_TLS_CERT", file.tls_cert),
            path(flags.tls_key, "BLEEPSTORE_TLS_KEY", file.tls_key),
        ) {
            (Some(cert_file), Some(key_file)) => Some(TlsFiles {
                cert_file,
                key_file,
            }),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key must be given together".into()),
        };
        let client = upstream_client(&file.upstream)?;
        let storage = match text(
            flags.storage_backend,
            "BLEEPSTORE_STORAGE_BACKEND",
            file.storage_backend,
        )
        .unwrap_or_else(|| "local".to_string())
        .to_ascii_lowercase()
        .as_str()
        {
            "local" => StorageBackend::Local,
            "memory" => {
                let snapshot = match file.memory_persistence.as_deref().unwrap_or("none") {
                    "none" => None,
                    "snapshot" => Some(crate::storage::Snapshot {
                        path: file
                            .memory_snapshot_path
                            .unwrap_or_else(|| data_dir.join("memory.snapshot")),
                        interval: file.memory_snapshot_interval.unwrap_or(Duration::from_secs(
                            limits::MEMORY_SNAPSHOT_INTERVAL_DEFAULT_SECS,
                        )),
                    }),
                    other => {
                        return Err(format!(
                            "storage.memory.persistence {other:?}: expected none or snapshot"
                        ))
                    }
                };
                if snapshot.as_ref().is_some_and(|s| s.interval.is_zero()) {
                    return Err(
                        "storage.memory.snapshot_interval_seconds must be at least 1".into(),
                    );
                }
                StorageBackend::Memory {
                    max_size: file
                        .memory_max_size
                        .unwrap_or(limits::MEMORY_BYTES_DEFAULT_MAX),
                    snapshot,
                }
            }
            "sqlite" => StorageBackend::Sqlite,
            "aws" => {
                let aws = file.aws;
                let bucket = aws
                    .bucket
                    .filter(|b| !b.is_empty())
                    .ok_or("storage.aws.bucket is required for storage.backend aws")?;
                let credentials = crate::upstream_auth::sigv4::AwsCredentials::resolve(
                    aws.access_key_id.as_deref(),
                    aws.secret_access_key.as_ref().map(|s| s.expose()),
                    None,
                    &env,
                )
                .map_err(|e| format!("storage.aws: {e}"))?;
                StorageBackend::Aws(crate::storage::AwsSettings {
                    bucket,
                    region: aws.region.unwrap_or_else(|| "us-east-1".to_string()),
                    prefix: aws.prefix.unwrap_or_default(),
                    endpoint_url: aws.endpoint_url.filter(|u| !u.is_empty()),
                    use_path_style: aws.use_path_style,
                    credentials,
                    ca_file: aws.ca_file,
                    orphan_grace: aws.orphan_grace.unwrap_or(Duration::from_secs(
                        limits::UPSTREAM_SWEEP_GRACE_DEFAULT_SECS,
                    )),
                    client,
                })
            }
            "azure" => {
                let mut settings = resolve_azure(file.azure, &env)?;
                settings.client = client;
                StorageBackend::Azure(settings)
            }
            "gcp" => {
                let gcp = file.gcp;
                let bucket = gcp
                    .bucket
                    .filter(|b| !b.is_empty())
                    .ok_or("storage.gcp.bucket is required for storage.backend gcp")?;
                let credentials_file = gcp
                    .credentials_file
                    .filter(|p| !p.as_os_str().is_empty())
                    .or_else(|| {
                        env("GOOGLE_APPLICATION_CREDENTIALS")
                            .filter(|p| !p.is_empty())
                            .map(Into::into)
                    });
                StorageBackend::Gcp(crate::storage::GcpSettings {
                    bucket,
                    project: gcp.project.filter(|p| !p.is_empty()),
                    prefix: gcp.prefix.unwrap_or_default(),
                    credentials_file,
                    endpoint_url: gcp.endpoint_url.filter(|u| !u.is_empty()),
                    ca_file: gcp.ca_file,
                    orphan_grace: gcp.orphan_grace.unwrap_or(Duration::from_secs(
                        limits::UPSTREAM_SWEEP_GRACE_DEFAULT_SECS,
                    )),
                    client,
                })
            }
            other => {
                return Err(format!(
                    "storage.backend {other:?}: expected local, memory, sqlite, aws, gcp or azure"
                ))
            }
        };
        Ok(Config {
            host: text(flags.host, "BLEEPSTORE_HOST", file.host)
                .unwrap_or_else(|| "0.0.0.0".to_string()),
            port: flags
                .port
                .or(env_parsed(&env, "BLEEPSTORE_PORT")?)
                .or(file.port)
                .unwrap_or(9000),
            data_dir,
            threads,
            region: text(flags.region, "BLEEPSTORE_REGION", file.region)
                .unwrap_or_else(|| "us-east-1".to_string()),
            access_key,
            secret_key,
            dev_credentials,
            domain,
            max_object_size,
            log_level,
            log_format,
            metadata_path,
            shutdown_timeout,
            max_connections,
            io_driver,
            multipart_ttl,
            tls,
            storage,
        })
    }
}

/// The gateways' upstream client: `storage.upstream.*` over the defaults of `limits`.
fn upstream_client(file: &file::UpstreamFile) -> Result<crate::upstream::ClientConfig, String> {
    let mut client = crate::upstream::ClientConfig::default();
    let positive = |value: Option<Duration>, key: &str| match value {
        Some(d) if d.is_zero() => Err(format!("storage.upstream.{key} must be at least 1")),
        other => Ok(other),
    };
    if let Some(d) = positive(file.connect_timeout, "connect_timeout_seconds")? {
        client.connect_timeout = d;
    }
    if let Some(d) = positive(file.first_byte_timeout, "first_byte_timeout_seconds")? {
        client.first_byte_timeout = d;
    }
    if let Some(d) = positive(file.stall_timeout, "stall_timeout_seconds")? {
        client.stall_timeout = d;
    }
    match file.max_attempts {
        Some(0) => return Err("storage.upstream.max_attempts must be at least 1".into()),
        Some(n) => client.retry.max_attempts = n,
        None => {}
    }
    Ok(client)
}

/// The azure backend's settings: the container (required), then the account and its
/// key from `storage.azure.connection_string` or else the environment's
/// `AZURE_STORAGE_CONNECTION_STRING`; without either, `storage.azure.account` with
/// the key in `AZURE_STORAGE_KEY`. `storage.azure.account_url` overrides the Blob
/// endpoint (by default the connection string's, or the account's public one).
fn resolve_azure(
    azure: file::AzureFile,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<crate::storage::AzureSettings, String> {
    use crate::upstream_auth::azure::{parse_connection_string, AzureAccount};
    let container = azure
        .container
        .filter(|c| !c.is_empty())
        .ok_or("storage.azure.container is required for storage.backend azure")?;
    let connection = match azure.connection_string {
        Some(text) => Some((text.expose().to_string(), "storage.azure.connection_string")),
        None => env("AZURE_STORAGE_CONNECTION_STRING")
            .filter(|t| !t.trim().is_empty())
            .map(|t| (t, "AZURE_STORAGE_CONNECTION_STRING")),
    };
    let account_name = azure.account.filter(|a| !a.is_empty());
    let (account, endpoint) = match connection {
        Some((text, source)) => {
            let parsed = parse_connection_string(&text).map_err(|e| format!("{source}: {e}"))?;
            if let Some(name) = &account_name {
                if name != parsed.account.name() {
                    return Err(format!(
                        "storage.azure.account {name:?} is not the account of {source} ({:?})",
                        parsed.account.name()
                    ));
                }
            }
            (parsed.account, parsed.blob_endpoint)
        }
        None => {
            let name = account_name.ok_or(
                "storage.backend azure needs storage.azure.connection_string, \
                 AZURE_STORAGE_CONNECTION_STRING, or storage.azure.account with AZURE_STORAGE_KEY",
            )?;
            let key = env("AZURE_STORAGE_KEY").ok_or_else(|| {
                format!("storage.azure.account {name:?} needs its key in AZURE_STORAGE_KEY")
            })?;
            let account =
                AzureAccount::new(&name, key.trim()).map_err(|e| format!("storage.azure: {e}"))?;
            (account, format!("https://{name}.blob.core.windows.net"))
        }
    };
    let account_url = azure
        .account_url
        .filter(|u| !u.is_empty())
        .unwrap_or(endpoint);
    Ok(crate::storage::AzureSettings::new(
        container,
        azure.prefix.unwrap_or_default(),
        account_url,
        account,
        azure.ca_file,
        azure.orphan_grace.unwrap_or(Duration::from_secs(
            limits::UPSTREAM_SWEEP_GRACE_DEFAULT_SECS,
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::from_args(&["bleepstore"], args).unwrap()
    }

    #[test]
    fn defaults_use_dev_credentials() {
        let config = Config::resolve(flags(&[]), |_| None, Default::default()).unwrap();
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
        let config = Config::resolve(flags(&[]), env, Default::default()).unwrap();
        assert_eq!(config.access_key, "envkey");
        assert!(!config.dev_credentials);
        let args = ["--access-key", "a", "--secret-key", "b"];
        let config = Config::resolve(flags(&args), env, Default::default()).unwrap();
        assert_eq!(
            (config.access_key.as_str(), config.secret_key.expose()),
            ("a", "b")
        );
    }

    #[test]
    fn storage_backends_and_their_settings() {
        let resolve = |yaml: &str| {
            let file = file::parse(yaml).unwrap().settings;
            Config::resolve(flags(&["--data-dir", "/d"]), |_| None, file)
        };
        assert_eq!(resolve("").unwrap().storage, StorageBackend::Local);
        let memory = resolve(
            "storage:\n  backend: memory\n  memory:\n    max_size_bytes: 2GiB\n    persistence: snapshot\n    snapshot_interval_seconds: 60\n",
        )
        .unwrap();
        assert_eq!(
            memory.storage,
            StorageBackend::Memory {
                max_size: 2 << 30,
                snapshot: Some(crate::storage::Snapshot {
                    path: PathBuf::from("/d/memory.snapshot"),
                    interval: Duration::from_secs(60),
                }),
            }
        );
        let sqlite = resolve("storage:\n  backend: sqlite\n").unwrap();
        assert_eq!(sqlite.storage, StorageBackend::Sqlite);
        assert_eq!(sqlite.storage.identity(), "sqlite");
        let volatile = resolve("storage:\n  backend: memory\n").unwrap();
        assert_eq!(
            volatile.storage,
            StorageBackend::Memory {
                max_size: limits::MEMORY_BYTES_DEFAULT_MAX,
                snapshot: None,
            }
        );
        let flag = Config::resolve(
            flags(&["--storage-backend", "memory"]),
            |_| None,
            Default::default(),
        );
        assert!(matches!(
            flag.unwrap().storage,
            StorageBackend::Memory { .. }
        ));
        // The aws gateway: every key, then the environment's credentials.
        let aws = resolve(
            "storage:\n  backend: aws\n  aws:\n    bucket: up\n    region: eu-west-1\n    prefix: p/\n    endpoint_url: http://127.0.0.1:9\n    use_path_style: false\n    access_key_id: AK\n    secret_access_key: SK\n    orphan_grace_seconds: 5\n",
        )
        .unwrap();
        let StorageBackend::Aws(settings) = &aws.storage else {
            panic!("{:?}", aws.storage)
        };
        assert_eq!(
            (
                settings.bucket.as_str(),
                settings.region.as_str(),
                settings.prefix.as_str()
            ),
            ("up", "eu-west-1", "p/")
        );
        assert_eq!(settings.use_path_style, Some(false));
        assert_eq!(settings.orphan_grace, Duration::from_secs(5));
        assert_eq!(settings.credentials.access_key_id, "AK");
        assert_eq!(aws.storage.identity(), "aws http://127.0.0.1:9/up/p/");
        assert_eq!(settings.client, crate::upstream::ClientConfig::default());
        // The gateways' client: timeouts and attempts, each over its default.
        let timed = resolve(
            "storage:\n  backend: aws\n  aws:\n    bucket: up\n    access_key_id: AK\n    secret_access_key: SK\n  upstream:\n    connect_timeout_seconds: 2\n    first_byte_timeout_seconds: 3\n    stall_timeout_seconds: 4\n    max_attempts: 1\n",
        )
        .unwrap();
        let StorageBackend::Aws(settings) = &timed.storage else {
            panic!("{:?}", timed.storage)
        };
        assert_eq!(settings.client.connect_timeout, Duration::from_secs(2));
        assert_eq!(settings.client.first_byte_timeout, Duration::from_secs(3));
        assert_eq!(settings.client.stall_timeout, Duration::from_secs(4));
        assert_eq!(settings.client.retry.max_attempts, 1);
        let zero = resolve("storage:\n  backend: aws\n  aws:\n    bucket: up\n    access_key_id: AK\n    secret_access_key: SK\n  upstream:\n    max_attempts: 0\n");
        assert!(zero.unwrap_err().contains("storage.upstream.max_attempts"));
        let from_env = Config::resolve(
            flags(&[]),
            |name| match name {
                "AWS_ACCESS_KEY_ID" => Some("ENVAK".into()),
                "AWS_SECRET_ACCESS_KEY" => Some("ENVSK".into()),
                "AWS_SESSION_TOKEN" => Some("TOKEN".into()),
                _ => None,
            },
            file::parse("storage:\n  backend: aws\n  aws:\n    bucket: up\n")
                .unwrap()
                .settings,
        )
        .unwrap();
        let StorageBackend::Aws(settings) = &from_env.storage else {
            panic!("{:?}", from_env.storage)
        };
        assert_eq!(settings.credentials.access_key_id, "ENVAK");
        assert!(settings.credentials.session_token.is_some());
        assert_eq!(settings.endpoint(), "https://s3.us-east-1.amazonaws.com");
        // The azure gateway: a connection string in the file, with an endpoint and
        // account check; then the environment's.
        let azure = resolve(
            "storage:\n  backend: azure\n  azure:\n    container: up\n    account: devstoreaccount1\n    prefix: p/\n    connection_string: UseDevelopmentStorage=true\n    account_url: http://127.0.0.1:10001/devstoreaccount1/\n    orphan_grace_seconds: 7\n",
        )
        .unwrap();
        let StorageBackend::Azure(settings) = &azure.storage else {
            panic!("{:?}", azure.storage)
        };
        assert_eq!(
            (settings.container.as_str(), settings.prefix.as_str()),
            ("up", "p/")
        );
        assert_eq!(settings.account.name(), "devstoreaccount1");
        assert_eq!(settings.orphan_grace, Duration::from_secs(7));
        assert_eq!(
            settings.put_blob_bytes_max,
            limits::AZURE_PUT_BLOB_BYTES_MAX
        );
        assert_eq!(
            azure.storage.identity(),
            "azure http://127.0.0.1:10001/devstoreaccount1/up/p/"
        );
        let key = crate::upstream_auth::azure::DEV_ACCOUNT_KEY;
        let azure_env = |vars: Vec<(&'static str, String)>, yaml: &str| {
            Config::resolve(
                flags(&[]),
                move |name| {
                    vars.iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.clone())
                },
                file::parse(yaml).unwrap().settings,
            )
        };
        let from_env = azure_env(
            vec![(
                "AZURE_STORAGE_CONNECTION_STRING",
                format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"),
            )],
            "storage:\n  backend: azure\n  azure:\n    container: c\n",
        )
        .unwrap();
        let StorageBackend::Azure(settings) = &from_env.storage else {
            panic!("{:?}", from_env.storage)
        };
        assert_eq!(settings.account_url, "https://acct.blob.core.windows.net");
        assert_eq!(
            settings.orphan_grace,
            Duration::from_secs(limits::UPSTREAM_SWEEP_GRACE_DEFAULT_SECS)
        );
        let by_key = azure_env(
            vec![("AZURE_STORAGE_KEY", key.to_string())],
            "storage:\n  backend: azure\n  azure:\n    container: c\n    account: other\n",
        )
        .unwrap();
        let StorageBackend::Azure(settings) = &by_key.storage else {
            panic!("{:?}", by_key.storage)
        };
        assert_eq!(
            (settings.account.name(), settings.account_url.as_str()),
            ("other", "https://other.blob.core.windows.net")
        );
        assert!(
            !format!("{by_key:?}").contains(key),
            "the key is never printed"
        );
        let mismatch = azure_env(
            Vec::new(),
            "storage:\n  backend: azure\n  azure:\n    container: c\n    account: other\n    connection_string: UseDevelopmentStorage=true\n",
        )
        .unwrap_err();
        assert!(mismatch.contains("is not the account of"), "{mismatch}");
        for (yaml, why) in [
            (
                "storage:\n  backend: azure\n",
                "storage.azure.container is required",
            ),
            (
                "storage:\n  backend: azure\n  azure:\n    container: c\n",
                "needs storage.azure.connection_string",
            ),
            (
                "storage:\n  backend: azure\n  azure:\n    container: c\n    account: a\n",
                "needs its key in AZURE_STORAGE_KEY",
            ),
            (
                "storage:\n  backend: azure\n  azure:\n    container: c\n    connection_string: AccountName=a\n",
                "storage.azure.connection_string",
            ),
        ] {
            let error = resolve(yaml).unwrap_err();
            assert!(error.contains(why), "{yaml:?} gave {error:?}");
        }
        // The gcp gateway: every key, then the environment's credentials file.
        let gcp = resolve(
            "storage:\n  backend: gcp\n  gcp:\n    bucket: up\n    project: proj\n    prefix: p/\n    credentials_file: /etc/sa.json\n    endpoint_url: http://127.0.0.1:9\n    ca_file: /etc/ca.pem\n    orphan_grace_seconds: 7\n",
        )
        .unwrap();
        let StorageBackend::Gcp(settings) = &gcp.storage else {
            panic!("{:?}", gcp.storage)
        };
        assert_eq!(
            (
                settings.bucket.as_str(),
                settings.project.as_deref(),
                settings.prefix.as_str()
            ),
            ("up", Some("proj"), "p/")
        );
        assert_eq!(
            settings.credentials_file.as_deref(),
            Some(std::path::Path::new("/etc/sa.json"))
        );
        assert_eq!(
            settings.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(settings.orphan_grace, Duration::from_secs(7));
        assert_eq!(gcp.storage.identity(), "gcp http://127.0.0.1:9/up/p/");
        let gcp_env = |yaml: &str| {
            Config::resolve(
                flags(&[]),
                |name| match name {
                    "GOOGLE_APPLICATION_CREDENTIALS" => Some("/env/sa.json".into()),
                    _ => None,
                },
                file::parse(yaml).unwrap().settings,
            )
            .unwrap()
        };
        let from_env = gcp_env("storage:\n  backend: gcp\n  gcp:\n    bucket: up\n");
        let StorageBackend::Gcp(settings) = &from_env.storage else {
            panic!("{:?}", from_env.storage)
        };
        assert_eq!(
            settings.credentials_file.as_deref(),
            Some(std::path::Path::new("/env/sa.json"))
        );
        assert_eq!(settings.endpoint(), "https://storage.googleapis.com");
        assert_eq!(settings.project, None);
        assert_eq!(
            from_env.storage.identity(),
            "gcp https://storage.googleapis.com/up/"
        );
        // The file's own credentials win over the environment's.
        let explicit = gcp_env(
            "storage:\n  backend: gcp\n  gcp:\n    bucket: up\n    credentials_file: /mine.json\n",
        );
        let StorageBackend::Gcp(settings) = &explicit.storage else {
            panic!("{:?}", explicit.storage)
        };
        assert_eq!(
            settings.credentials_file.as_deref(),
            Some(std::path::Path::new("/mine.json"))
        );
        for (yaml, why) in [
            (
                "storage:\n  backend: azure\n",
                "storage.azure.container is required",
            ),
            (
                "storage:\n  backend: gcp\n",
                "storage.gcp.bucket is required",
            ),
            (
                "storage:\n  backend: aws\n",
                "storage.aws.bucket is required",
            ),
            ("storage:\n  backend: tape\n", "expected local, memory"),
            (
                "storage:\n  backend: memory\n  memory:\n    persistence: sometimes\n",
                "expected none or snapshot",
            ),
        ] {
            let error = resolve(yaml).unwrap_err();
            assert!(error.contains(why), "{yaml:?} gave {error:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secret = "s3cr3t-do-not-print";
        let args = ["--access-key", "a", "--secret-key", secret];
        let printed = format!("{:?}", flags(&args));
        assert!(!printed.contains(secret), "{printed}");
        let config = Config::resolve(flags(&args), |_| None, Default::default()).unwrap();
        let printed = format!("{config:?}");
        assert!(
            !printed.contains(secret) && printed.contains("***"),
            "{printed}"
        );
        let row = crate::server::seed_credential(&config);
        let printed = format!("{row:?}");
        assert!(
            !printed.contains(secret) && printed.contains("***"),
            "{printed}"
        );
        let add: Flags = Flags::from_args(
            &["bleepstore"],
            &[
                "credentials",
                "add",
                "--access-key",
                "a",
                "--secret-key",
                secret,
            ],
        )
        .unwrap();
        assert!(!format!("{add:?}").contains(secret));
    }

    #[test]
    fn half_a_key_pair_is_an_error() {
        assert!(
            Config::resolve(flags(&["--access-key", "a"]), |_| None, Default::default()).is_err()
        );
        assert!(Config::resolve(flags(&["--threads", "0"]), |_| None, Default::default()).is_err());
        assert!(Config::resolve(
            flags(&["--log-level", "loud"]),
            |_| None,
            Default::default()
        )
        .is_err());
    }

    #[test]
    fn precedence_is_flags_then_environment_then_file() {
        let from_file = file::parse(
            "server:\n  port: 7000\n  region: file-region\n  host: 10.0.0.1\n\
             logging:\n  format: json\nstorage:\n  local:\n    root_dir: /srv/data\n",
        )
        .unwrap()
        .settings;
        let env = |name: &str| (name == "BLEEPSTORE_PORT").then(|| "8000".to_string());
        let config = Config::resolve(flags(&["--region", "flag-region"]), env, from_file).unwrap();
        assert_eq!(config.port, 8000, "environment beats file");
        assert_eq!(config.region, "flag-region", "flag beats file");
        assert_eq!(config.host, "10.0.0.1", "file beats default");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.data_dir, PathBuf::from("/srv/data"));
        assert_eq!(config.metadata_path, PathBuf::from("/srv/data/metadata.db"));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(30));
        let bad_env = |name: &str| (name == "BLEEPSTORE_PORT").then(|| "x".to_string());
        let error = Config::resolve(flags(&[]), bad_env, Default::default()).unwrap_err();
        assert!(error.contains("BLEEPSTORE_PORT"), "{error}");
    }

    #[test]
    fn multipart_ttl_from_each_layer() {
        let resolve = |args: &[&str], env_value: Option<&str>, yaml: &str| {
            let env = |name: &str| {
                (name == "BLEEPSTORE_MULTIPART_TTL")
                    .then(|| env_value.map(str::to_string))
                    .flatten()
            };
            let settings = file::parse(yaml).unwrap().settings;
            Config::resolve(flags(args), env, settings).map(|c| c.multipart_ttl)
        };
        let days = |n: u64| Duration::from_secs(n * 24 * 3600);
        assert_eq!(resolve(&[], None, ""), Ok(days(7)));
        let yaml = "server:\n  multipart_ttl: 2d\n";
        assert_eq!(resolve(&[], None, yaml), Ok(days(2)));
        assert_eq!(
            resolve(&[], Some("3h"), yaml),
            Ok(Duration::from_secs(3 * 3600))
        );
        let flag = ["--multipart-ttl", "60"];
        assert_eq!(
            resolve(&flag, Some("3h"), yaml),
            Ok(Duration::from_secs(60))
        );
        let error = resolve(&[], Some("later"), "").unwrap_err();
        assert!(error.contains("BLEEPSTORE_MULTIPART_TTL"), "{error}");
        assert!(resolve(&["--multipart-ttl", "0"], None, "").is_err());
        let error = file::parse("server:\n  multipart_ttl: [1]\n").unwrap_err();
        assert!(error.contains("server.multipart_ttl"), "{error}");
    }
}
