//! One-time setup and the per-core runtimes. Startup is recovery: the storage
//! layer removes interrupted temp files and the orphan sweep removes data files
//! no metadata row points at, before any runtime serves. Then one monoio
//! runtime per thread (io_uring, or the legacy driver where the kernel refuses
//! io_uring), each with its own SO_REUSEPORT listener and its own `CoreState`.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use monoio::net::{ListenerOpts, TcpListener};
use sha2::{Digest, Sha256};

use crate::checksum::hex_encode;
use crate::clock;
use crate::config::Config;
use crate::core_state::CoreState;
use crate::limits;
use crate::meta::{self, CredentialRow, MetaClient};
use crate::s3::service::serve_connection;
use crate::storage::LocalStorage;

/// How long startup waits for a busy port to be released.
const PORT_WAIT_MAX: Duration = Duration::from_secs(3);

/// Runs the daemon until every serving thread ends.
pub fn run(config: Config) -> Result<(), String> {
    if config.dev_credentials {
        log::warn!(
            "no key pair configured: using development credentials {} / {}; set --access-key and --secret-key (or BLEEPSTORE_ACCESS_KEY / BLEEPSTORE_SECRET_KEY) for real use",
            config.access_key,
            config.secret_key
        );
    }
    let addr = claim_address(&config)?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    let (storage, recovery) = LocalStorage::open(&config.data_dir).map_err(|e| {
        format!(
            "cannot open storage under {}: {e}",
            config.data_dir.display()
        )
    })?;
    log::info!("storage recovery: {recovery:?}");
    let db_path = config.data_dir.join("metadata.db");
    let (meta, meta_thread) = meta::start(&db_path)
        .map_err(|e| format!("cannot open metadata {}: {e}", db_path.display()))?;
    startup_with_metadata(&config, &meta, &storage)?;

    let config = Arc::new(config);
    let nonce = startup_nonce();
    let (bound_tx, bound_rx) = mpsc::channel::<Result<(), String>>();
    let mut cores = Vec::with_capacity(config.threads);
    for core in 0..config.threads {
        let (config, meta, storage, bound_tx) = (
            config.clone(),
            meta.clone(),
            storage.clone(),
            bound_tx.clone(),
        );
        let handle = thread::Builder::new()
            .name(format!("bleepstore-core-{core}"))
            .spawn(move || run_core(core, addr, config, meta, storage, nonce, bound_tx))
            .map_err(|e| format!("cannot start thread: {e}"))?;
        cores.push(handle);
    }
    drop(bound_tx);
    drop(meta);
    for _ in 0..config.threads {
        bound_rx
            .recv()
            .map_err(|_| "a serving thread died at startup".to_string())??;
    }
    log::info!(
        "listening on http://{addr} with {} threads, data in {}",
        config.threads,
        config.data_dir.display()
    );
    for core in cores {
        let _ = core.join();
    }
    meta_thread.join();
    Ok(())
}

/// Resolves the listen address and makes sure no other process holds the port.
/// monoio binds with SO_REUSEPORT, so a second daemon on a busy port would bind
/// silently and take half the connections; a plain bind first turns that into an error.
fn claim_address(config: &Config) -> Result<SocketAddr, String> {
    let addr = (config.host.as_str(), config.port)
        .to_socket_addrs()
        .map_err(|e| format!("bad --host {}: {e}", config.host))?
        .next()
        .ok_or_else(|| format!("--host {} resolves to no address", config.host))?;
    // A process killed a moment ago can hold its port a little longer: io_uring
    // tears down its listeners after the process is reaped. Wait for that, briefly.
    let mut waited = Duration::ZERO;
    let probe = loop {
        match std::net::TcpListener::bind(addr) {
            Ok(probe) => break probe,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && waited < PORT_WAIT_MAX => {
                if waited.is_zero() {
                    log::info!(
                        "port {} is busy; waiting up to {PORT_WAIT_MAX:?} for it",
                        addr.port()
                    );
                }
                thread::sleep(Duration::from_millis(50));
                waited += Duration::from_millis(50);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!(
                    "port {} on {} is already in use by another process",
                    addr.port(),
                    addr.ip()
                ))
            }
            Err(e) => return Err(format!("cannot bind {addr}: {e}")),
        }
    };
    // Port 0 picks a free port once, so that every core binds the same one.
    let addr = probe
        .local_addr()
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    drop(probe);
    Ok(addr)
}

/// Seeds the configured key pair and sweeps orphan data files, on a short-lived runtime.
fn startup_with_metadata(
    config: &Config,
    meta: &MetaClient,
    storage: &LocalStorage,
) -> Result<(), String> {
    let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot build startup runtime: {e}"))?;
    let referenced = runtime.block_on(async {
        meta.put_credential(seed_credential(config))
            .await
            .map_err(|e| format!("cannot seed credentials: {e}"))?;
        meta.all_data_ids()
            .await
            .map_err(|e| format!("cannot read metadata: {e}"))
    })?;
    let referenced: HashSet<String> = referenced.into_iter().collect();
    let swept = storage
        .sweep_orphans(&referenced)
        .map_err(|e| format!("orphan sweep failed: {e}"))?;
    log::info!(
        "startup: {} objects referenced, {swept} orphan data files removed",
        referenced.len()
    );
    Ok(())
}

/// The key pair from the configuration, as a metadata row. The owner id is a
/// stable 64-hex canonical id derived from the access key.
pub fn seed_credential(config: &Config) -> CredentialRow {
    CredentialRow {
        access_key: config.access_key.clone(),
        secret_key: config.secret_key.clone(),
        owner_id: canonical_user_id(&config.access_key),
        display_name: config.access_key.clone(),
        created_ms: clock::now_unix_millis(),
    }
}

/// A 64-hex-digit canonical user id for an access key.
pub fn canonical_user_id(access_key: &str) -> String {
    hex_encode(&Sha256::digest(access_key.as_bytes()))
}

fn startup_nonce() -> u64 {
    let mut bytes = [0u8; 8];
    if let Ok(random) = std::fs::read("/proc/sys/kernel/random/uuid") {
        let digest = Sha256::digest(&random);
        bytes.copy_from_slice(&digest[..8]);
        return u64::from_le_bytes(bytes) & 0x00FF_FFFF_FFFF_FFFF;
    }
    (clock::now_unix_millis() as u64) & 0x00FF_FFFF_FFFF_FFFF
}

fn run_core(
    core: usize,
    addr: SocketAddr,
    config: Arc<Config>,
    meta: MetaClient,
    storage: LocalStorage,
    nonce: u64,
    bound: mpsc::Sender<Result<(), String>>,
) {
    let state = Rc::new(CoreState::new(config, meta, storage, core, nonce));
    match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut runtime) => runtime.block_on(serve(state, addr, bound)),
        Err(error) => {
            log::warn!(
                "core {core}: io_uring unavailable ({error}); using the legacy epoll driver"
            );
            match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
            {
                Ok(mut runtime) => runtime.block_on(serve(state, addr, bound)),
                Err(error) => {
                    let _ =
                        bound.send(Err(format!("core {core}: cannot build a runtime: {error}")));
                }
            }
        }
    }
}

/// Binds this core's listener and accepts until the process ends.
async fn serve(state: Rc<CoreState>, addr: SocketAddr, bound: mpsc::Sender<Result<(), String>>) {
    let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
    let listener = match TcpListener::bind_with_config(addr, &opts) {
        Ok(listener) => {
            let _ = bound.send(Ok(()));
            listener
        }
        Err(error) => {
            let _ = bound.send(Err(format!("cannot bind {addr}: {error}")));
            return;
        }
    };
    drop(bound);
    if state.core_id() == 0 {
        monoio::spawn(reap_uploads_periodically(state.clone()));
    }
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                monoio::spawn(serve_connection(state.clone(), stream));
            }
            Err(error) => {
                // Out of descriptors or memory: back off briefly instead of spinning.
                log::warn!("accept failed: {error}");
                monoio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Aborts multipart uploads older than the TTL, every interval, and deletes their parts.
async fn reap_uploads_periodically(state: Rc<CoreState>) {
    loop {
        monoio::time::sleep(Duration::from_secs(limits::MULTIPART_REAP_INTERVAL_SECS)).await;
        let cutoff = clock::now_unix_millis() - limits::MULTIPART_UPLOAD_TTL_SECS * 1000;
        match state.meta.reap_uploads(cutoff).await {
            Ok(freed) => {
                for data_id in &freed {
                    if let Err(error) = state.storage.remove_object(data_id).await {
                        log::warn!("could not remove part {data_id}: {error}");
                    }
                }
                if !freed.is_empty() {
                    log::info!(
                        "reaped expired multipart uploads: {} parts removed",
                        freed.len()
                    );
                }
            }
            Err(error) => log::warn!("reaping multipart uploads failed: {error}"),
        }
    }
}
