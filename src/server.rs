//! One-time setup and the per-core runtimes. Startup is recovery: the storage
//! layer removes interrupted temp files and the orphan sweep removes data files
//! no metadata row points at, before any runtime serves. Then one monoio
//! runtime per thread (io_uring, or the legacy driver where the kernel refuses
//! io_uring), each with its own SO_REUSEPORT listener and its own `CoreState`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use monoio::io::Canceller;
use monoio::net::{ListenerOpts, TcpListener};
use sha2::{Digest, Sha256};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::checksum::hex_encode;
use crate::clock;
use crate::config::{Config, IoDriver, StorageBackend};
use crate::core_state::CoreState;
use crate::http::{server_config, Certificate, TlsStream, Transport};
use crate::limits;
use crate::meta::{self, CredentialRow, MetaClient};
use crate::ops::lifecycle::{Control, Lifecycle};
use crate::reclaim::ReadFence;
use crate::s3::service::Front;
use crate::storage::{SqliteStorage, Storage};

/// How long startup waits for a busy port to be released.
const PORT_WAIT_MAX: Duration = Duration::from_secs(limits::PORT_WAIT_SECS_MAX);

/// Runs the daemon until every serving thread ends.
pub fn run(config: Config) -> Result<(), String> {
    let started = std::time::Instant::now();
    if config.dev_credentials {
        log::warn!(
            "no key pair configured: using development credentials {} / {}; set --access-key and --secret-key (or BLEEPSTORE_ACCESS_KEY / BLEEPSTORE_SECRET_KEY) for real use",
            config.access_key,
            config.secret_key.expose()
        );
    }
    let addr = claim_address(&config)?;
    // A bad certificate or key stops startup here, before anything is opened.
    let certificate = match &config.tls {
        Some(files) => Some(Arc::new(Certificate::load(
            &files.cert_file,
            &files.key_file,
        )?)),
        None => None,
    };
    let tls = certificate.clone().map(server_config).transpose()?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    let storage = open_storage(&config)?;
    let db_path = config.metadata_path.clone();
    if let Some(parent) = db_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let identity = config.storage.identity();
    let claimed = meta::admin::claim_storage(&db_path, &identity)
        .map_err(|e| format!("cannot open metadata {}: {e}", db_path.display()))?;
    if claimed != identity {
        return Err(format!(
            "the metadata database {} describes objects in the {claimed} storage backend, and this configuration uses {identity}: refusing to serve it (use another metadata path or data dir for {identity})",
            db_path.display()
        ));
    }
    if let Some(Storage::Memory(memory)) = &storage {
        // Bytes published after the last snapshot (or all, without one) are gone: so
        // are the rows that named them.
        let present = memory.list_ids().into_iter().collect();
        let forgotten = meta::admin::forget_missing_data(&db_path, &present)
            .map_err(|e| format!("cannot reconcile metadata {}: {e}", db_path.display()))?;
        if forgotten != Default::default() {
            log::warn!(
                "recovery: {} objects and {} upload parts whose bytes the memory backend no longer holds were forgotten",
                forgotten.objects,
                forgotten.upload_parts
            );
        }
    }
    // The sqlite backend's objects, and the local backend's small ones, are chunk rows.
    let blobs_in_db = matches!(
        config.storage,
        StorageBackend::Sqlite | StorageBackend::Local
    );
    if blobs_in_db {
        let removed = meta::admin::remove_unsealed_blobs(&db_path).map_err(|e| {
            format!(
                "cannot recover the sqlite backend in {}: {e}",
                db_path.display()
            )
        })?;
        log::info!("recovery: {removed} interrupted uploads removed from the database");
    }
    let (released_tx, released_rx) = flume::unbounded();
    let (meta, meta_thread) = meta::start(&db_path, released_tx, blobs_in_db)
        .map_err(|e| format!("cannot open metadata {}: {e}", db_path.display()))?;
    let storage = match storage {
        Some(Storage::Local(local)) => Storage::Local(local.with_inline(inline_store(&meta)?)),
        Some(storage) => storage,
        None => open_sqlite(&meta, &db_path)?,
    };
    startup_with_metadata(&config, &meta, &storage)?;
    // What startup just released has no reader; what a running daemon releases waits
    // for its readers, in the reclaimer on core 0.
    released_rx.drain().for_each(drop);
    // Recovery is done: injected faults (a test build's) count from here.
    #[cfg(feature = "fault-injection")]
    crate::fault::arm();
    let mut released_rx = Some(released_rx);
    let fence = ReadFence::new(config.threads);

    // Registered before serving, so a SIGTERM from here on drains instead of killing
    // (and a SIGHUP re-reads the TLS certificate instead of ending the process).
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let config = Arc::new(config);
    let nonce = startup_nonce();
    let (lifecycle, controls) = Lifecycle::new(config.threads);
    let (bound_tx, bound_rx) = mpsc::channel::<Result<(), String>>();
    for (core, control) in controls.into_iter().enumerate() {
        let core_parts = CoreParts {
            core,
            addr,
            config: config.clone(),
            meta: meta.clone(),
            storage: storage.clone(),
            lifecycle: lifecycle.clone(),
            fence: fence.clone(),
            released: released_rx.take(),
            control,
            nonce,
            tls: tls.clone(),
        };
        let bound_tx = bound_tx.clone();
        thread::Builder::new()
            .name(format!("bleepstore-core-{core}"))
            .spawn(move || run_core(core_parts, bound_tx))
            .map_err(|e| format!("cannot start thread: {e}"))?;
    }
    drop(bound_tx);
    for _ in 0..config.threads {
        bound_rx
            .recv()
            .map_err(|_| "a serving thread died at startup".to_string())??;
    }
    lifecycle.set_ready();
    sweep_orphans_in_background(db_path.clone(), storage.clone());
    log::info!(
        "listening on {}://{addr} with {} threads, data in {} (started in {} ms)",
        if tls.is_some() { "https" } else { "http" },
        config.threads,
        config.data_dir.display(),
        started.elapsed().as_millis()
    );
    let name = loop {
        match signals.forever().next() {
            Some(SIGHUP) => reload_certificate(certificate.as_deref()),
            Some(SIGINT) => break "SIGINT",
            _ => break "SIGTERM",
        }
    };
    drain(&lifecycle, &mut signals, name, config.shutdown_timeout);
    if let Err(error) = storage.shutdown() {
        log::error!("storage shutdown: {error}");
    }
    drop(meta);
    drop(meta_thread);
    Ok(())
}

/// Opens the configured backend, after its startup recovery. The sqlite backend lives
/// in the metadata database, and opens (`open_sqlite`) once the metadata threads run:
/// here it is `None`.
fn open_storage(config: &Config) -> Result<Option<Storage>, String> {
    match &config.storage {
        StorageBackend::Local => {
            let (storage, recovery) = Storage::open_local(&config.data_dir).map_err(|e| {
                format!(
                    "cannot open storage under {}: {e}",
                    config.data_dir.display()
                )
            })?;
            log::info!(
                "recovery: {} interrupted writes removed from tmp/",
                recovery.temp_files_removed
            );
            Ok(Some(storage))
        }
        StorageBackend::Memory { max_size, snapshot } => {
            let (storage, loaded) = Storage::open_memory(*max_size, snapshot.clone())
                .map_err(|e| format!("cannot open the memory backend: {e}"))?;
            match snapshot {
                Some(snapshot) => log::info!(
                    "memory backend: at most {max_size} bytes, {loaded} objects loaded from {}, snapshot every {} s",
                    snapshot.path.display(),
                    snapshot.interval.as_secs()
                ),
                None => log::info!(
                    "memory backend: at most {max_size} bytes, no persistence (a restart starts empty)"
                ),
            }
            Ok(Some(storage))
        }
        StorageBackend::Sqlite => Ok(None),
        StorageBackend::Aws(settings) => {
            let storage = Storage::open_aws(settings.clone())?;
            check_upstream(&storage, "aws")?;
            log::info!(
                "aws backend: objects in bucket {} at {} under prefix {:?}",
                settings.bucket,
                settings.endpoint(),
                settings.prefix
            );
            Ok(Some(storage))
        }
        StorageBackend::Azure(settings) => {
            let storage = Storage::open_azure(settings.clone())?;
            check_upstream(&storage, "azure")?;
            log::info!(
                "azure backend: objects in container {} at {} under prefix {:?}",
                settings.container,
                settings.account_url,
                settings.prefix
            );
            Ok(Some(storage))
        }
        StorageBackend::Gcp(settings) => {
            let gcp = crate::storage::GcpStorage::open(settings.clone())?;
            let project = gcp.settings().project.clone();
            let storage = Storage::Gcp(gcp);
            check_upstream(&storage, "gcp")?;
            log::info!(
                "gcp backend: objects in bucket {} (project {}) at {} under prefix {:?}, {}",
                settings.bucket,
                project.as_deref().unwrap_or("not given"),
                settings.endpoint(),
                settings.prefix,
                match &settings.credentials_file {
                    Some(path) => format!("service account of {}", path.display()),
                    None => "no credentials (anonymous requests)".to_string(),
                }
            );
            Ok(Some(storage))
        }
    }
}

/// A gateway's startup check of its upstream bucket or container: a missing one,
/// refused credentials or an unreachable endpoint stop startup here, clearly.
fn check_upstream(storage: &Storage, backend: &str) -> Result<(), String> {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot build startup runtime: {e}"))?
        .block_on(async {
            let healthy = storage.health().await;
            storage.leave_runtime();
            healthy
        })
        .map_err(|e| format!("storage.backend {backend}: {e}"))
}

/// The local backend's store of small objects: chunk rows in the metadata database,
/// as the sqlite backend keeps all of its objects.
fn inline_store(meta: &MetaClient) -> Result<SqliteStorage, String> {
    let blobs = meta
        .blobs()
        .ok_or("the metadata threads were started without blob readers")?;
    SqliteStorage::open(blobs).map_err(|e| format!("cannot open the store of small objects: {e}"))
}

/// The sqlite backend, over the metadata threads' blob readers and writer.
fn open_sqlite(meta: &MetaClient, db_path: &Path) -> Result<Storage, String> {
    let blobs = meta
        .blobs()
        .ok_or("the metadata threads were started without blob readers")?;
    let storage =
        Storage::open_sqlite(blobs).map_err(|e| format!("cannot open the sqlite backend: {e}"))?;
    log::info!(
        "sqlite backend: object bytes in {} with their metadata",
        db_path.display()
    );
    Ok(storage)
}

/// SIGHUP: re-reads the TLS certificate and key, for the handshakes that follow. A
/// file that fails to load leaves the certificate in use unchanged.
fn reload_certificate(certificate: Option<&Certificate>) {
    match certificate.map(Certificate::reload) {
        None => log::info!("SIGHUP received: not serving TLS, nothing to reload"),
        Some(Ok(())) => log::info!("SIGHUP received: TLS certificate reloaded"),
        Some(Err(error)) => {
            log::error!("SIGHUP received: {error}; still serving the previous certificate")
        }
    }
}

/// The graceful drain: stop accepting, report not ready, wait for in-flight
/// requests up to `timeout` (a second signal ends the wait), then return so the
/// process exits. Nothing is flushed or closed that a crash would not also
/// leave behind: every acknowledged write is already durable.
fn drain(lifecycle: &Lifecycle, signals: &mut Signals, name: &str, timeout: Duration) {
    log::info!(
        "{name} received: draining, {} requests in flight, waiting up to {} s",
        lifecycle.in_flight(),
        timeout.as_secs()
    );
    lifecycle.begin_drain();
    let interrupted = || signals.pending().any(|signal| signal != SIGHUP);
    if lifecycle.wait_idle(timeout, interrupted) {
        log::info!("drained: no request in flight; exiting");
    } else {
        log::warn!(
            "exiting with {} requests still in flight",
            lifecycle.in_flight()
        );
    }
    crate::ops::logging::flush(Duration::from_secs(1));
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

/// Seeds the configured key pair, reaps expired multipart uploads and removes every
/// data file the reclaim table holds (released before a crash, or just now by the
/// reaping: no reader exists yet), on a short-lived runtime. All quick whatever the
/// size of the database.
fn startup_with_metadata(
    config: &Config,
    meta: &MetaClient,
    storage: &Storage,
) -> Result<(), String> {
    let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot build startup runtime: {e}"))?;
    let (reaped, reclaimed) = runtime.block_on(async {
        meta.put_credential(seed_credential(config))
            .await
            .map_err(|e| format!("cannot seed credentials: {e}"))?;
        let reaped = meta
            .reap_uploads(reap_cutoff(config.multipart_ttl))
            .await
            .map_err(|e| format!("cannot reap expired uploads: {e}"))?;
        let released = meta
            .reclaimable()
            .await
            .map_err(|e| format!("cannot read the reclaim table: {e}"))?;
        let mut removed = Vec::with_capacity(released.len());
        for data_id in released {
            match storage.remove(&data_id).await {
                Ok(()) => removed.push(data_id),
                Err(error) => log::warn!("could not remove released data file {data_id}: {error}"),
            }
        }
        storage.leave_runtime();
        let count = removed.len();
        // The runtime ends here: a gateway's connections on it go with it.
        storage.leave_runtime();
        meta.forget_reclaimed(removed)
            .await
            .map_err(|e| format!("cannot update the reclaim table: {e}"))?;
        Ok::<_, String>((reaped, count))
    })?;
    log::info!(
        "recovery: {} multipart uploads older than {} s aborted ({} parts), {} released data files removed",
        reaped.uploads,
        config.multipart_ttl.as_secs(),
        reaped.parts,
        reclaimed
    );
    Ok(())
}

/// Sweeps orphan data files (published, but a crash came before their metadata
/// commit) on a background thread, so startup does not wait for a walk of every
/// object. A file is an orphan when no row and no reclaim entry names it and this run
/// did not write it: files of this run may be published and not yet recorded, and
/// their ids tell them apart (not their times, which a quick restart leaves ambiguous).
fn sweep_orphans_in_background(db_path: PathBuf, storage: Storage) {
    let spawned = thread::Builder::new()
        .name("bleepstore-sweep".into())
        .spawn(move || {
            #[cfg(feature = "fault-injection")]
            crate::fault::exempt_thread();
            let begun = std::time::Instant::now();
            let referenced = match meta::admin::referenced_data_ids(&db_path) {
                Ok(ids) => ids,
                Err(error) => {
                    log::warn!("orphan sweep skipped: cannot read metadata: {error}");
                    return;
                }
            };
            let runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build();
            let swept = match runtime {
                Ok(mut runtime) => runtime.block_on(async {
                    let swept = sweep(&storage, &referenced).await;
                    storage.leave_runtime();
                    swept
                }),
                Err(error) => Err(error),
            };
            match swept {
                Ok((examined, removed)) => log::info!(
                    "recovery: orphan sweep examined {examined} data files, removed {removed} orphans in {} ms",
                    begun.elapsed().as_millis()
                ),
                Err(error) => log::warn!("orphan sweep failed: {error}"),
            }
        });
    if let Err(error) = spawned {
        log::warn!("orphan sweep not started: {error}");
    }
}

/// Removes the objects no one references; returns (examined, removed).
async fn sweep(
    storage: &Storage,
    referenced: &std::collections::HashSet<String>,
) -> std::io::Result<(u64, u64)> {
    let ids = storage.list_ids().await?;
    let mut removed = 0;
    for id in &ids {
        if !referenced.contains(id) && !storage.issued(id) {
            storage.remove(id).await?;
            removed += 1;
        }
    }
    Ok((ids.len() as u64, removed))
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

/// What one serving thread starts from.
struct CoreParts {
    core: usize,
    addr: SocketAddr,
    config: Arc<Config>,
    meta: MetaClient,
    storage: Storage,
    lifecycle: Arc<Lifecycle>,
    fence: Arc<ReadFence>,
    /// The released-files channel, for the core that runs the reclaimer.
    released: Option<flume::Receiver<meta::Released>>,
    control: flume::Receiver<Control>,
    nonce: u64,
    /// The TLS setup when serving HTTPS.
    tls: Option<Arc<rustls::ServerConfig>>,
}

fn run_core(parts: CoreParts, bound: mpsc::Sender<Result<(), String>>) {
    let CoreParts {
        core,
        addr,
        config,
        meta,
        storage,
        lifecycle,
        fence,
        released,
        control,
        nonce,
        tls,
    } = parts;
    let driver = config.io_driver;
    let state = Rc::new(CoreState::new(
        config, meta, storage, lifecycle, fence, core, nonce,
    ));
    let uring = match driver {
        IoDriver::Epoll => None,
        IoDriver::Auto | IoDriver::IoUring => Some(
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build(),
        ),
    };
    match uring {
        Some(Ok(mut runtime)) => {
            runtime.block_on(serve(state, addr, released, control, bound, tls))
        }
        Some(Err(error)) if driver == IoDriver::IoUring => {
            let _ = bound.send(Err(format!(
                "core {core}: io_uring unavailable ({error}) and --io-driver io_uring was asked for"
            )));
        }
        fallback => {
            match fallback {
                Some(Err(error)) => log::warn!(
                    "core {core}: io_uring unavailable ({error}); using the legacy epoll driver"
                ),
                _ => log::info!("core {core}: using the epoll driver (--io-driver epoll)"),
            }
            match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
            {
                Ok(mut runtime) => {
                    runtime.block_on(serve(state, addr, released, control, bound, tls))
                }
                Err(error) => {
                    let _ =
                        bound.send(Err(format!("core {core}: cannot build a runtime: {error}")));
                }
            }
        }
    }
}

/// Binds this core's listener and accepts until the drain begins; then the
/// runtime keeps serving the connections it has until the process exits.
async fn serve(
    state: Rc<CoreState>,
    addr: SocketAddr,
    released: Option<flume::Receiver<meta::Released>>,
    control: flume::Receiver<Control>,
    bound: mpsc::Sender<Result<(), String>>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
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
    if let Some(released) = released {
        monoio::spawn(crate::reclaim::run_reclaimer(state.clone(), released));
    }
    monoio::spawn(sweep_idle_periodically(state.clone()));
    monoio::spawn(trim_buffers_periodically(state.clone()));
    let front = Rc::new(Front {
        state: state.clone(),
    });
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    monoio::spawn(answer_controls(state.clone(), control, stop_tx));
    let mut stop = std::pin::pin!(stop_rx.recv_async());
    loop {
        let canceller = Canceller::new();
        let mut accept = std::pin::pin!(listener.cancelable_accept(canceller.handle()));
        let accepted = monoio::select! {
            accepted = &mut accept => accepted,
            _ = &mut stop => {
                // Cancel the accept and wait for the kernel to let go of it; a
                // connection that arrived meanwhile is still served.
                let _canceller = canceller.cancel();
                if let Ok((stream, _)) = accept.await {
                    monoio::spawn(serve_connection(front.clone(), stream, tls.clone()));
                }
                break;
            }
        };
        match accepted {
            Ok((stream, _peer)) => {
                monoio::spawn(admit(front.clone(), stream, tls.clone()));
            }
            Err(error) => {
                // Out of descriptors or memory: back off briefly instead of spinning.
                log::warn!("accept failed: {error}");
                monoio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    drop(listener);
    log::debug!("core {}: listener closed", state.core_id());
    // The runtime lives on: its connections finish their requests, and the close of
    // the listener is submitted to the ring at the next park. The main thread ends
    // the process once nothing is in flight.
    std::future::pending::<()>().await;
}

/// Admits a new connection under the cap (`--max-connections`, counted across all
/// cores): at the cap, the longest-idle keep-alive connection (of this core, else of
/// another) is closed to make room; with none idle, the newcomer gets 503 SlowDown.
async fn admit(
    front: Rc<Front>,
    stream: monoio::net::TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let state = &front.state;
    if state.lifecycle.connections() >= state.config.max_connections {
        // Boxed, like the refusal below: the connection's task is as large as its
        // largest step, and an idle connection holds its task.
        let room = state.idle.reap_oldest()
            || Box::pin(state.lifecycle.reap_idle_elsewhere(state.core_id())).await;
        if !room {
            log::debug!(
                "connection refused: {} open, at the cap",
                state.lifecycle.connections()
            );
            // A TLS client could not read a plain answer, and a handshake is the
            // expensive part of what the cap protects: it is just closed.
            if tls.is_none() {
                let answer = front.slow_down();
                let buffers = state.buffers.clone();
                Box::pin(crate::http::refuse(
                    Transport::Plain(stream),
                    answer,
                    buffers,
                ))
                .await;
            }
            return;
        }
    }
    serve_connection(front, stream, tls).await;
}

/// Serves one connection (after its TLS handshake, for HTTPS), counted among the
/// open ones while it lasts.
async fn serve_connection(
    front: Rc<Front>,
    stream: monoio::net::TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let _open = front.state.lifecycle.connection(front.state.core_id());
    let _ = stream.set_nodelay(true);
    let transport = match tls {
        None => Transport::Plain(stream),
        // Boxed: the handshake's state (the session, its futures) is large and done
        // with before the connection idles.
        Some(config) => match Box::pin(TlsStream::accept(stream, config)).await {
            Ok(tls) => Transport::Tls(Box::new(tls)),
            Err(error) => {
                log::debug!("TLS handshake failed: {error}");
                return;
            }
        },
    };
    crate::http::serve(&*front, transport).await;
}

/// Answers the process's requests to this core: metrics snapshots, stop accepting.
async fn answer_controls(
    state: Rc<CoreState>,
    control: flume::Receiver<Control>,
    stop: flume::Sender<()>,
) {
    while let Ok(request) = control.recv_async().await {
        match request {
            Control::Snapshot(reply) => {
                let _ = reply.send(state.metrics.borrow().clone());
            }
            Control::StopAccepting => {
                let _ = stop.try_send(());
            }
            Control::ReapIdle(reply) => {
                let _ = reply.send(state.idle.reap_oldest());
            }
        }
    }
}

/// Ends, every `IDLE_SWEEP_MILLIS`, the holds and the idle waits of this core's idle
/// connections whose time is up.
async fn sweep_idle_periodically(state: Rc<CoreState>) {
    let period = Duration::from_millis(limits::IDLE_SWEEP_MILLIS);
    loop {
        monoio::time::sleep(period).await;
        state.idle.sweep(std::time::Instant::now());
    }
}

/// Frees, every `BUFFER_POOL_TRIM_MILLIS`, the spare connection buffers that no
/// request of this core needed since the last time, so a quiet core holds none.
async fn trim_buffers_periodically(state: Rc<CoreState>) {
    let period = Duration::from_millis(limits::BUFFER_POOL_TRIM_MILLIS);
    loop {
        monoio::time::sleep(period).await;
        state.buffers.trim();
    }
}

/// Uploads initiated before this instant (Unix milliseconds) are past `ttl`.
fn reap_cutoff(ttl: Duration) -> i64 {
    clock::now_unix_millis() - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// How often the serving daemon looks for expired uploads: a quarter of the TTL, so
/// an upload outlives it by at most 25%, between once a second and once an hour.
fn reap_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(
        Duration::from_secs(1),
        Duration::from_secs(limits::MULTIPART_REAP_INTERVAL_MAX_SECS),
    )
}

/// Aborts multipart uploads older than the TTL, every interval; their parts go to the
/// reclaimer like any released data.
async fn reap_uploads_periodically(state: Rc<CoreState>) {
    let ttl = state.config.multipart_ttl;
    loop {
        monoio::time::sleep(reap_interval(ttl)).await;
        match state.meta.reap_uploads(reap_cutoff(ttl)).await {
            Ok(reaped) if reaped.uploads > 0 => log::info!(
                "{} multipart uploads older than {} s aborted, {} part files released",
                reaped.uploads,
                ttl.as_secs(),
                reaped.parts
            ),
            Ok(_) => {}
            Err(error) => log::warn!("reaping multipart uploads failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `make` returns, without making one.
    fn future_size<A, F: std::future::Future>(_make: impl FnOnce(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A connection's task holds the future of `admit` for the connection's life, idle
    /// or not: every step of it that is large and brief (a TLS handshake, a request, a
    /// timed read, a refusal, the close) is boxed, and the idle wait has no timer, so
    /// the task stays small. It was 10.6 KiB before; 10,000 idle connections paid
    /// 100 MiB for it.
    #[test]
    fn a_connection_task_is_small() {
        type Tls = Option<Arc<rustls::ServerConfig>>;
        let task = future_size(
            |(front, stream, tls): (Rc<Front>, monoio::net::TcpStream, Tls)| {
                admit(front, stream, tls)
            },
        );
        assert!(task <= 1536, "a connection's task takes {task} bytes");
    }
}
