//! HTTPS on the S3 port: the certificate the server presents (re-read on SIGHUP)
//! and a TLS session over a monoio socket. rustls does the protocol; this module
//! only moves its records through the socket with the same cancelable reads and
//! writes a plain connection uses, so every deadline of `connection` holds for
//! TLS too (a record read, like a plain read, is cancelled when its time is up).
//! The session is either side's: the upstream client (`crate::upstream`) runs its
//! TLS through the same stream, transport and timed read.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncWriteRent, CancelHandle, CancelableAsyncReadRent, CancelableAsyncWriteRent};
use monoio::net::TcpStream;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use crate::limits;

/// The certificate chain and key files, and what was last read from them.
#[derive(Debug)]
pub(crate) struct Certificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Reads the PEM chain (leaf first) and private key; the key must match the leaf.
    pub(crate) fn load(cert_file: &Path, key_file: &Path) -> Result<Certificate, String> {
        let key = read_pair(cert_file, key_file)?;
        Ok(Certificate {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Re-reads both files. On any error the certificate in use stays, so a bad
    /// renewal never takes HTTPS down.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let key = read_pair(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert_file.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS certificate {} holds no CERTIFICATE block",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("cannot read TLS key {}: {e}", key_file.display()))?;
    CertifiedKey::from_der(chain, key, &ring::default_provider()).map_err(|e| {
        format!(
            "TLS key {} does not fit certificate {}: {e}",
            key_file.display(),
            cert_file.display()
        )
    })
}

/// The server side of TLS 1.2 and 1.3, presenting `certificate`; HTTP/1.1 only.
pub(crate) fn server_config(certificate: Arc<Certificate>) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One TLS session over a socket, the server's or the client's.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    session: Connection,
    /// Ciphertext read from the socket; `incoming[fed..]` is not in the session yet
    /// (it takes more only once its plaintext has been read). Of no capacity while
    /// the connection idles (`release_buffers`): the next read is a small probe.
    incoming: Vec<u8>,
    fed: usize,
    /// Ciphertext waiting to be written.
    outgoing: Vec<u8>,
}

fn tls_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl TlsStream {
    /// Runs the server's handshake, for at most `limits::TLS_HANDSHAKE_SECS`.
    pub(crate) async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let session = ServerConnection::new(config).map_err(tls_error)?;
        let limit = Duration::from_secs(limits::TLS_HANDSHAKE_SECS);
        TlsStream::establish(tcp, Connection::Server(session), limit).await
    }

    /// Runs the client's handshake with the server `name` (checked against its
    /// certificate), for at most `limit`. A handshake rustls refuses (a certificate
    /// not trusted or not for `name`, an alert) fails with `InvalidData` wrapping the
    /// `rustls::Error`; one out of time with `TimedOut`.
    pub(crate) async fn connect(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        limit: Duration,
    ) -> io::Result<TlsStream> {
        let session = ClientConnection::new(config, name).map_err(tls_error)?;
        TlsStream::establish(tcp, Connection::Client(session), limit).await
    }

    /// Wraps the socket in `session` and runs the handshake for at most `limit`.
    async fn establish(
        tcp: TcpStream,
        session: Connection,
        limit: Duration,
    ) -> io::Result<TlsStream> {
        let mut stream = TlsStream {
            tcp,
            session,
            incoming: Vec::with_capacity(limits::TLS_RECORD_BUFFER_BYTES),
            fed: 0,
            outgoing: Vec::with_capacity(limits::TLS_RECORD_BUFFER_BYTES),
        };
        stream
            .session
            .set_buffer_limit(Some(limits::TLS_SEND_BUFFER_BYTES));
        let canceller = monoio::io::Canceller::new();
        let handle = canceller.handle();
        let result = {
            let mut handshake = std::pin::pin!(stream.handshake(handle));
            match monoio::time::timeout(limit, &mut handshake).await {
                Ok(done) => done,
                Err(_) => {
                    canceller.cancel();
                    let _ = handshake.await;
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the TLS handshake did not finish in time",
                    ))
                }
            }
        };
        result.map(|()| stream)
    }

    async fn handshake(&mut self, handle: CancelHandle) -> io::Result<()> {
        while self.session.is_handshaking() {
            self.flush(&handle).await?;
            if self.session.is_handshaking() && !self.receive(&handle).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.flush(&handle).await
    }

    /// Reads plaintext into `buf[begin..end]` (its spare capacity; `buf.len()` is
    /// `begin`). `Ok(0)` is the end of the stream.
    pub(crate) async fn read(
        &mut self,
        mut buf: Vec<u8>,
        end: usize,
        handle: CancelHandle,
    ) -> (io::Result<usize>, Vec<u8>) {
        loop {
            let want = end - buf.len();
            match self.session.reader().fill_buf() {
                Ok(chunk) if !chunk.is_empty() => {
                    let n = chunk.len().min(want);
                    buf.extend_from_slice(&chunk[..n]);
                    self.session.reader().consume(n);
                    return (Ok(n), buf);
                }
                // The peer's close_notify, or the socket closed without one.
                Ok(_) => return (Ok(0), buf),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return (Ok(0), buf),
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return (Err(e), buf),
                Err(_) => {}
            }
            // A session also writes while reading (key updates, alerts).
            if let Err(e) = self.flush(&handle).await {
                return (Err(e), buf);
            }
            match self.receive(&handle).await {
                Ok(true) => {}
                Ok(false) => return (Ok(0), buf),
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// Lets go of the record buffers while the connection idles (nothing is pending
    /// in them between requests): the wait for the next request reads a probe of
    /// `IDLE_PROBE_BYTES`, and full buffers come back with its first bytes.
    pub(crate) fn release_buffers(&mut self) {
        if self.fed == self.incoming.len() {
            self.incoming = Vec::new();
            self.fed = 0;
        }
        self.outgoing = Vec::new();
    }

    /// Moves ciphertext into the session (from the buffer, else from the socket) and
    /// decrypts it; false at the socket's end.
    async fn receive(&mut self, handle: &CancelHandle) -> io::Result<bool> {
        if self.fed == self.incoming.len() {
            let mut incoming = std::mem::take(&mut self.incoming);
            incoming.clear();
            // Released while idle: a probe read; after it (the idle wait is over),
            // the full buffer again.
            match incoming.capacity() {
                0 => incoming.reserve_exact(limits::IDLE_PROBE_BYTES),
                cap if cap < limits::TLS_RECORD_BUFFER_BYTES => {
                    incoming = Vec::with_capacity(limits::TLS_RECORD_BUFFER_BYTES)
                }
                _ => {}
            }
            let cap = incoming.capacity();
            let (result, slice) = self
                .tcp
                .cancelable_read(incoming.slice_mut(0..cap), handle.clone())
                .await;
            self.incoming = slice.into_inner();
            self.fed = 0;
            if result? == 0 {
                return Ok(false);
            }
        }
        let mut ciphertext = &self.incoming[self.fed..];
        let taken = self.session.read_tls(&mut ciphertext)?;
        self.fed += taken;
        if let Err(error) = self.session.process_new_packets() {
            // Tell the peer why (the alert is queued), then give up.
            let _ = self.flush(handle).await;
            return Err(tls_error(error));
        }
        Ok(true)
    }

    /// Encrypts what it can of `buf[from..]` and sends it; returns the plaintext
    /// bytes taken.
    pub(crate) async fn write(
        &mut self,
        buf: Vec<u8>,
        from: usize,
        handle: CancelHandle,
    ) -> (io::Result<usize>, Vec<u8>) {
        let taken = match self.session.writer().write(&buf[from..]) {
            Ok(n) => n,
            Err(e) => return (Err(e), buf),
        };
        (self.flush(&handle).await.map(|()| taken), buf)
    }

    /// Writes every record the session has ready.
    async fn flush(&mut self, handle: &CancelHandle) -> io::Result<()> {
        while self.session.wants_write() {
            let mut outgoing = std::mem::take(&mut self.outgoing);
            outgoing.clear();
            if outgoing.capacity() == 0 {
                outgoing.reserve_exact(limits::TLS_RECORD_BUFFER_BYTES);
            }
            let produced = self.session.write_tls(&mut outgoing);
            self.outgoing = outgoing;
            produced?;
            let mut sent = 0;
            while sent < self.outgoing.len() {
                let outgoing = std::mem::take(&mut self.outgoing);
                let len = outgoing.len();
                let (result, slice) = self
                    .tcp
                    .cancelable_write(outgoing.slice(sent..len), handle.clone())
                    .await;
                self.outgoing = slice.into_inner();
                match result? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    n => sent += n,
                }
            }
        }
        Ok(())
    }

    /// Sends close_notify, then ends the socket's sending side.
    pub(crate) async fn shutdown(&mut self) {
        self.session.send_close_notify();
        let canceller = monoio::io::Canceller::new();
        let handle = canceller.handle();
        let limit = Duration::from_secs(limits::TLS_HANDSHAKE_SECS);
        {
            let mut flush = std::pin::pin!(self.flush(&handle));
            if monoio::time::timeout(limit, &mut flush).await.is_err() {
                canceller.cancel();
                let _ = flush.await;
            }
        }
        let _ = self.tcp.shutdown().await;
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Transport {
    /// Reads into `buf[buf.len()..end]`; `Ok(0)` is the end of the stream.
    pub(crate) async fn read(
        &mut self,
        buf: Vec<u8>,
        end: usize,
        handle: CancelHandle,
    ) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Transport::Plain(tcp) => {
                let begin = buf.len();
                let (result, slice) = tcp.cancelable_read(buf.slice_mut(begin..end), handle).await;
                (result, slice.into_inner())
            }
            // Boxed: a TLS read's future (flushes, record reads) is large, and a
            // connection's task, which an idle connection holds, would carry its room.
            Transport::Tls(tls) => Box::pin(tls.read(buf, end, handle)).await,
        }
    }

    /// Writes from `buf[from..]`; returns how many of those bytes were taken.
    pub(crate) async fn write(
        &mut self,
        buf: Vec<u8>,
        from: usize,
        handle: CancelHandle,
    ) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Transport::Plain(tcp) => {
                let len = buf.len();
                let (result, slice) = tcp.cancelable_write(buf.slice(from..len), handle).await;
                (result, slice.into_inner())
            }
            Transport::Tls(tls) => Box::pin(tls.write(buf, from, handle)).await,
        }
    }

    /// Ends our sending side (after close_notify, for TLS).
    pub(crate) async fn shutdown(&mut self) {
        match self {
            Transport::Plain(tcp) => {
                let _ = tcp.shutdown().await;
            }
            Transport::Tls(tls) => Box::pin(tls.shutdown()).await,
        }
    }

    /// Lets go of a TLS session's record buffers while the connection idles.
    pub(crate) fn release_buffers(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.release_buffers();
        }
    }
}

/// Why a timed read returned no data.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    Eof,
    TimedOut,
    Failed(io::Error),
}

/// Appends to `buf` what one read brings, up to `end` bytes in all, waiting at most
/// `timeout` (the read is cancelled then): `read_with_timeout` for a buffer kept in place.
pub(crate) async fn read_appending(
    stream: &mut Transport,
    buf: &mut Vec<u8>,
    end: usize,
    timeout: Duration,
) -> Result<usize, ReadEnd> {
    let canceller = monoio::io::Canceller::new();
    let handle = canceller.handle();
    let taken = std::mem::take(buf);
    let begin = taken.len();
    let (result, returned) =
        read_with_timeout(stream, taken, begin, end, timeout, handle, move || {
            canceller.cancel();
        })
        .await;
    *buf = returned;
    result
}

/// Reads into `buf[begin..end]` (spare capacity), waiting at most `timeout`; then
/// `on_timeout` cancels the read (through the canceller `handle` belongs to), which
/// is awaited, so the kernel no longer holds the buffer or the socket when this
/// returns. A read cancelled from elsewhere (a reaped idle connection) fails.
pub(crate) async fn read_with_timeout(
    stream: &mut Transport,
    buf: Vec<u8>,
    begin: usize,
    end: usize,
    timeout: Duration,
    handle: CancelHandle,
    on_timeout: impl FnOnce(),
) -> (Result<usize, ReadEnd>, Vec<u8>) {
    debug_assert_eq!(buf.len(), begin, "reads append at the end of the buffer");
    let read = stream.read(buf, end, handle);
    let mut read = std::pin::pin!(read);
    let (result, buf) = match monoio::time::timeout(timeout, &mut read).await {
        Ok(done) => done,
        Err(_) => {
            on_timeout();
            let (result, buf) = read.await;
            return match result {
                Ok(n) if n > 0 => (Ok(n), buf),
                _ => (Err(ReadEnd::TimedOut), buf),
            };
        }
    };
    let result = match result {
        Ok(0) => Err(ReadEnd::Eof),
        Ok(n) => Ok(n),
        Err(error) => Err(ReadEnd::Failed(error)),
    };
    (result, buf)
}
