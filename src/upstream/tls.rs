//! The client side of TLS to upstream servers: which certificates are trusted (the
//! compiled-in Mozilla roots of `webpki-roots`, plus an optional PEM bundle for a
//! private CA) and the handshake over a monoio socket. The session itself runs
//! through the daemon's own adapter (`crate::http::TlsStream`), the one the HTTPS
//! server uses, so its reads and writes are cancelable like plain ones.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::http::TlsStream;

/// What the client trusts, built once at startup and shared by every core (it is
/// `Send + Sync`; cloning shares it, and with it the TLS session-resumption cache).
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &"http/1.1")
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// TLS 1.3 and 1.2 with the ring provider, server names verified against the
    /// Mozilla roots and, when `extra_ca_file` is given, the CA certificates in that
    /// PEM file as well (for an upstream behind a private CA). ALPN offers http/1.1.
    pub fn new(extra_ca_file: Option<&Path>) -> Result<TlsConfig, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(file) = extra_ca_file {
            add_pem_roots(&mut roots, file)?;
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS client setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }

    /// Runs the handshake with `host` over `tcp` for at most `limit`; the certificate
    /// must be valid for `host` (a DNS name, or an IP address in its subjectAltName).
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
        limit: Duration,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        TlsStream::connect(tcp, self.config.clone(), name, limit).await
    }
}

fn add_pem_roots(roots: &mut RootCertStore, file: &Path) -> Result<(), String> {
    let certificates = CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read CA bundle {}: {e}", file.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "CA bundle {} holds no CERTIFICATE block",
            file.display()
        ));
    }
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| format!("CA bundle {}: unusable certificate: {e}", file.display()))?;
    }
    Ok(())
}

/// The rustls verdict inside an IO error of the handshake, if that is what it was.
pub(crate) fn rustls_error(error: &io::Error) -> Option<rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
}
