//! The `--config` file: BleepStore's YAML format, read into optional settings that
//! `Config::resolve` layers under the environment and the flags. Unknown keys are
//! collected as warnings (a typo must not silently change nothing); a value of the
//! wrong kind is an error naming its dotted key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::SecretKey;

use yaml_rust2::{Yaml, YamlLoader};

/// Every setting the file can carry; `None` where the file is silent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub threads: Option<usize>,
    pub shutdown_timeout: Option<Duration>,
    pub max_object_size: Option<u64>,
    pub max_connections: Option<usize>,
    pub io_driver: Option<String>,
    pub multipart_ttl: Option<Duration>,
    pub access_key: Option<String>,
    pub secret_key: Option<SecretKey>,
    pub metadata_path: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub storage_backend: Option<String>,
    pub memory_max_size: Option<u64>,
    pub memory_persistence: Option<String>,
    pub memory_snapshot_path: Option<PathBuf>,
    pub memory_snapshot_interval: Option<Duration>,
    pub aws: AwsFile,
    pub azure: AzureFile,
    pub gcp: GcpFile,
    pub upstream: UpstreamFile,
}

/// `storage.upstream.*`: the gateways' HTTP client (each unset one keeps its default).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpstreamFile {
    pub connect_timeout: Option<Duration>,
    pub first_byte_timeout: Option<Duration>,
    pub stall_timeout: Option<Duration>,
    pub max_attempts: Option<u32>,
}

/// `storage.aws.*`: the aws gateway backend's bucket and how to reach it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AwsFile {
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub prefix: Option<String>,
    pub endpoint_url: Option<String>,
    pub use_path_style: Option<bool>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretKey>,
    pub ca_file: Option<PathBuf>,
    pub orphan_grace: Option<Duration>,
}

/// `storage.azure.*`: the azure gateway backend's container and how to reach it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AzureFile {
    pub container: Option<String>,
    pub account: Option<String>,
    pub account_url: Option<String>,
    pub prefix: Option<String>,
    /// Holds the account key: kept as a secret, never printed.
    pub connection_string: Option<SecretKey>,
    pub ca_file: Option<PathBuf>,
    pub orphan_grace: Option<Duration>,
}

/// `storage.gcp.*`: the gcp gateway backend's bucket and how to reach it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcpFile {
    pub bucket: Option<String>,
    pub project: Option<String>,
    pub prefix: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub endpoint_url: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub orphan_grace: Option<Duration>,
}

/// A parsed file and what it said that we ignore.
#[derive(Debug, Default)]
pub struct Loaded {
    pub settings: FileSettings,
    pub warnings: Vec<String>,
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Parses the text of a config file.
pub fn parse(text: &str) -> Result<Loaded, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    let mut loaded = Loaded::default();
    let Some(root) = docs.into_iter().next() else {
        return Ok(loaded);
    };
    let mut reader = Reader {
        warnings: &mut loaded.warnings,
    };
    let sections = reader.section(&root, "")?;
    let s = &mut loaded.settings;
    for (name, value) in sections {
        match name.as_str() {
            "server" => {
                for (key, v) in reader.section(value, "server")? {
                    let path = format!("server.{key}");
                    match key.as_str() {
                        "host" => s.host = Some(string(v, &path)?),
                        "port" => s.port = Some(port(v, &path)?),
                        "region" => s.region = Some(string(v, &path)?),
                        "domain" => s.domain = Some(string(v, &path)?),
                        "threads" => s.threads = Some(count(v, &path)?),
                        "shutdown_timeout" => s.shutdown_timeout = Some(duration(v, &path)?),
                        "max_object_size" => s.max_object_size = Some(size(v, &path)?),
                        "max_connections" => s.max_connections = Some(count(v, &path)?),
                        "io_driver" => s.io_driver = Some(string(v, &path)?),
                        "multipart_ttl" => s.multipart_ttl = Some(duration(v, &path)?),
                        "tls" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("server.tls.{key}");
                                match key.as_str() {
                                    "cert_file" => s.tls_cert = Some(string(v, &path)?.into()),
                                    "key_file" => s.tls_key = Some(string(v, &path)?.into()),
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        _ => reader.unknown(&path),
                    }
                }
            }
            "auth" => {
                for (key, v) in reader.section(value, "auth")? {
                    let path = format!("auth.{key}");
                    match key.as_str() {
                        "access_key" => s.access_key = Some(string(v, &path)?),
                        "secret_key" => s.secret_key = Some(SecretKey::new(string(v, &path)?)),
                        _ => reader.unknown(&path),
                    }
                }
            }
            "metadata" => {
                for (key, v) in reader.section(value, "metadata")? {
                    let path = format!("metadata.{key}");
                    match key.as_str() {
                        "engine" => only(v, &path, "sqlite")?,
                        "sqlite" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("metadata.sqlite.{key}");
                                match key.as_str() {
                                    "path" => s.metadata_path = Some(string(v, &path)?.into()),
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        _ => reader.unknown(&path),
                    }
                }
            }
            "storage" => {
                for (key, v) in reader.section(value, "storage")? {
                    let path = format!("storage.{key}");
                    match key.as_str() {
                        "backend" => s.storage_backend = Some(string(v, &path)?),
                        "memory" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("storage.memory.{key}");
                                match key.as_str() {
                                    "max_size_bytes" => s.memory_max_size = Some(size(v, &path)?),
                                    "persistence" => s.memory_persistence = Some(string(v, &path)?),
                                    "snapshot_path" => {
                                        s.memory_snapshot_path = Some(string(v, &path)?.into())
                                    }
                                    "snapshot_interval_seconds" => {
                                        s.memory_snapshot_interval =
                                            Some(Duration::from_secs(count(v, &path)? as u64))
                                    }
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        "aws" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("storage.aws.{key}");
                                let aws = &mut s.aws;
                                match key.as_str() {
                                    "bucket" => aws.bucket = Some(string(v, &path)?),
                                    "region" => aws.region = Some(string(v, &path)?),
                                    "prefix" => aws.prefix = Some(string(v, &path)?),
                                    "endpoint_url" => aws.endpoint_url = Some(string(v, &path)?),
                                    "use_path_style" => {
                                        aws.use_path_style = Some(boolean(v, &path)?)
                                    }
                                    "access_key_id" => aws.access_key_id = Some(string(v, &path)?),
                                    "secret_access_key" => {
                                        aws.secret_access_key =
                                            Some(SecretKey::new(string(v, &path)?))
                                    }
                                    "ca_file" => aws.ca_file = Some(string(v, &path)?.into()),
                                    "orphan_grace_seconds" => {
                                        aws.orphan_grace = Some(Duration::from_secs(integer(
                                            v,
                                            &path,
                                            "a number of seconds",
                                        )?))
                                    }
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        "azure" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("storage.azure.{key}");
                                let azure = &mut s.azure;
                                match key.as_str() {
                                    "container" => azure.container = Some(string(v, &path)?),
                                    "account" => azure.account = Some(string(v, &path)?),
                                    "account_url" => azure.account_url = Some(string(v, &path)?),
                                    "prefix" => azure.prefix = Some(string(v, &path)?),
                                    "connection_string" => {
                                        azure.connection_string =
                                            Some(SecretKey::new(string(v, &path)?))
                                    }
                                    "ca_file" => azure.ca_file = Some(string(v, &path)?.into()),
                                    "orphan_grace_seconds" => {
                                        azure.orphan_grace = Some(Duration::from_secs(integer(
                                            v,
                                            &path,
                                            "a number of seconds",
                                        )?))
                                    }
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        "gcp" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("storage.gcp.{key}");
                                let gcp = &mut s.gcp;
                                match key.as_str() {
                                    "bucket" => gcp.bucket = Some(string(v, &path)?),
                                    "project" => gcp.project = Some(string(v, &path)?),
                                    "prefix" => gcp.prefix = Some(string(v, &path)?),
                                    "credentials_file" => {
                                        gcp.credentials_file = Some(string(v, &path)?.into())
                                    }
                                    "endpoint_url" => gcp.endpoint_url = Some(string(v, &path)?),
                                    "ca_file" => gcp.ca_file = Some(string(v, &path)?.into()),
                                    "orphan_grace_seconds" => {
                                        gcp.orphan_grace = Some(Duration::from_secs(integer(
                                            v,
                                            &path,
                                            "a number of seconds",
                                        )?))
                                    }
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        "upstream" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("storage.upstream.{key}");
                                let upstream = &mut s.upstream;
                                let seconds = |v| {
                                    integer(v, &path, "a number of seconds")
                                        .map(|n| Some(Duration::from_secs(n)))
                                };
                                match key.as_str() {
                                    "connect_timeout_seconds" => {
                                        upstream.connect_timeout = seconds(v)?
                                    }
                                    "first_byte_timeout_seconds" => {
                                        upstream.first_byte_timeout = seconds(v)?
                                    }
                                    "stall_timeout_seconds" => upstream.stall_timeout = seconds(v)?,
                                    "max_attempts" => {
                                        upstream.max_attempts =
                                            Some(integer(v, &path, "a number of attempts")? as u32)
                                    }
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        // The sqlite backend keeps its bytes in the metadata database
                        // (metadata.sqlite.path): it has no settings of its own.
                        "sqlite" => {
                            for (key, _) in reader.section(v, &path)? {
                                reader.unknown(&format!("storage.sqlite.{key}"));
                            }
                        }
                        "local" => {
                            for (key, v) in reader.section(v, &path)? {
                                let path = format!("storage.local.{key}");
                                match key.as_str() {
                                    "root_dir" => s.data_dir = Some(string(v, &path)?.into()),
                                    _ => reader.unknown(&path),
                                }
                            }
                        }
                        _ => reader.unknown(&path),
                    }
                }
            }
            "logging" => {
                for (key, v) in reader.section(value, "logging")? {
                    let path = format!("logging.{key}");
                    match key.as_str() {
                        "level" => s.log_level = Some(string(v, &path)?),
                        "format" => s.log_format = Some(string(v, &path)?),
                        _ => reader.unknown(&path),
                    }
                }
            }
            other => reader.unknown(other),
        }
    }
    Ok(loaded)
}

struct Reader<'a> {
    warnings: &'a mut Vec<String>,
}

impl Reader<'_> {
    /// The (key, value) pairs of a mapping; an empty or null section has none.
    fn section<'y>(
        &mut self,
        value: &'y Yaml,
        path: &str,
    ) -> Result<Vec<(String, &'y Yaml)>, String> {
        match value {
            Yaml::Hash(hash) => hash
                .iter()
                .map(|(k, v)| match k {
                    Yaml::String(name) => Ok((name.clone(), v)),
                    other => Err(format!(
                        "{}: keys must be names, got {other:?}",
                        shown(path)
                    )),
                })
                .collect(),
            Yaml::Null => Ok(Vec::new()),
            _ => Err(format!("{}: expected a mapping of settings", shown(path))),
        }
    }

    fn unknown(&mut self, path: &str) {
        self.warnings
            .push(format!("config file: unknown key `{path}` ignored"));
    }
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "the document"
    } else {
        path
    }
}

fn string(v: &Yaml, path: &str) -> Result<String, String> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Integer(n) => Ok(n.to_string()),
        Yaml::Real(r) => Ok(r.clone()),
        Yaml::Boolean(b) => Ok(b.to_string()),
        _ => Err(format!("{path}: expected a string")),
    }
}

fn boolean(v: &Yaml, path: &str) -> Result<bool, String> {
    match v {
        Yaml::Boolean(b) => Ok(*b),
        _ => Err(format!("{path}: expected true or false")),
    }
}

/// A setting with a single supported value in this build (the sibling daemons have more).
fn only(v: &Yaml, path: &str, supported: &str) -> Result<(), String> {
    let value = string(v, path)?;
    if value.eq_ignore_ascii_case(supported) {
        Ok(())
    } else {
        Err(format!(
            "{path}: {value:?} is not supported by this build; use {supported:?}"
        ))
    }
}

fn integer(v: &Yaml, path: &str, what: &str) -> Result<u64, String> {
    match v {
        Yaml::Integer(n) if *n >= 0 => Ok(*n as u64),
        Yaml::String(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{path}: expected {what}, got {s:?}")),
        _ => Err(format!("{path}: expected {what}")),
    }
}

fn port(v: &Yaml, path: &str) -> Result<u16, String> {
    let n = integer(v, path, "a port number (1-65535)")?;
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{path}: expected a port number (1-65535), got {n}"))
}

fn count(v: &Yaml, path: &str) -> Result<usize, String> {
    let n = integer(v, path, "a positive whole number")?;
    if n == 0 {
        return Err(format!("{path}: must be at least 1"));
    }
    usize::try_from(n).map_err(|_| format!("{path}: {n} is too large"))
}

/// Bytes: a whole number, or one with a unit (`512KiB`, `5GiB`, `100MB`).
fn size(v: &Yaml, path: &str) -> Result<u64, String> {
    match v {
        Yaml::String(s) => parse_size(s).ok_or_else(|| {
            format!("{path}: expected a size in bytes such as 5368709120 or \"5GiB\", got {s:?}")
        }),
        other => integer(other, path, "a size in bytes"),
    }
}

/// Parses `123`, `64KiB`, `5GiB`, `100MB` (the SI units are powers of ten).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "tib" | "t" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// A duration: whole seconds, or a number with `ms`, `s`, `m`, `h` or `d`.
fn duration(v: &Yaml, path: &str) -> Result<Duration, String> {
    match v {
        Yaml::String(s) => parse_duration(s)
            .ok_or_else(|| format!("{path}: expected a duration such as 30 or \"30s\", got {s:?}")),
        other => integer(other, path, "a duration in seconds").map(Duration::from_secs),
    }
}

/// Parses `30`, `30s`, `500ms`, `2m`, `1h`, `7d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(24 * 3600).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_key() {
        let text = "
server:
  host: 127.0.0.1
  port: 9100
  region: eu-west-1
  shutdown_timeout: 45s
  max_object_size: 1GiB
  max_connections: 500
auth:
  access_key: ak
  secret_key: sk
metadata:
  engine: sqlite
  sqlite:
    path: /var/lib/bleepstore/meta.db
storage:
  backend: local
  local:
    root_dir: /var/lib/bleepstore/data
logging:
  level: debug
  format: json
";
        let loaded = parse(text).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let s = loaded.settings;
        assert_eq!(s.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.port, Some(9100));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.shutdown_timeout, Some(Duration::from_secs(45)));
        assert_eq!(s.max_object_size, Some(1 << 30));
        assert_eq!(s.max_connections, Some(500));
        assert_eq!(
            (
                s.access_key.as_deref(),
                s.secret_key.as_ref().map(SecretKey::expose)
            ),
            (Some("ak"), Some("sk"))
        );
        assert_eq!(
            s.metadata_path,
            Some(PathBuf::from("/var/lib/bleepstore/meta.db"))
        );
        assert_eq!(s.data_dir, Some(PathBuf::from("/var/lib/bleepstore/data")));
        assert_eq!(s.log_level.as_deref(), Some("debug"));
        assert_eq!(s.log_format.as_deref(), Some("json"));
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let loaded = parse("server:\n  prot: 1\nobservability:\n  metrics: true\n").unwrap();
        assert_eq!(loaded.warnings.len(), 2);
        assert!(loaded.warnings[0].contains("server.prot"));
        assert!(loaded.warnings[1].contains("observability"));
        assert_eq!(loaded.settings, FileSettings::default());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("server:\n  port: 70000\n", "server.port"),
            ("server:\n  port: nine\n", "server.port"),
            (
                "server:\n  max_object_size: lots\n",
                "server.max_object_size",
            ),
            (
                "server:\n  shutdown_timeout: soon\n",
                "server.shutdown_timeout",
            ),
            (
                "storage:\n  memory:\n    max_size_bytes: lots\n",
                "storage.memory.max_size_bytes",
            ),
            ("server: 3\n", "server"),
            ("auth:\n  access_key: [a]\n", "auth.access_key"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(key), "{text:?} gave {error:?}");
        }
        assert!(parse("server: [unclosed")
            .unwrap_err()
            .contains("invalid YAML"));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("5GiB"), Some(5 << 30));
        assert_eq!(parse_size("100 MB"), Some(100_000_000));
        assert_eq!(parse_size("42"), Some(42));
        assert_eq!(parse_size("1.5GiB"), None);
        assert_eq!(parse_size("99999999999TiB"), None);
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("-1"), None);
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap().settings, FileSettings::default());
        assert_eq!(
            parse("# only a comment\n").unwrap().settings,
            FileSettings::default()
        );
    }
}
