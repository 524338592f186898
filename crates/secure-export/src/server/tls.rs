//! Native TLS for [`serve`](super::serve): rustls with the aws-lc-rs provider, a certificate
//! chain and key from PEM files, reloaded when the files change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The PEM files of a TLS listener (`[server] tls_cert` and `tls_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// Certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often the files' modification times are checked (default 10 s).
    pub reload_interval: Duration,
}

impl TlsFiles {
    /// The files at `cert` and `key`, checked for changes every 10 s.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            reload_interval: Duration::from_secs(10),
        }
    }

    /// Sets [`reload_interval`](Self::reload_interval).
    #[must_use]
    pub fn reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval = interval;
        self
    }

    /// Loads and checks the files now (the receiver does this at start-up so that a bad
    /// certificate is a configuration error, not a listener that fails every handshake).
    pub fn check(&self) -> Result<(), TlsError> {
        load(self, &provider()).map(drop)
    }
}

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("TLS certificate and key: {0}")]
    Invalid(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let file_error = |path: &Path, message: String| TlsError::File {
        path: path.to_owned(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            &files.cert,
            "no CERTIFICATE found in the PEM file".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_error(&files.key, format!("no usable private key: {e}")))?;
    let certified = CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    Ok(Arc::new(certified))
}

fn modified(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((at(&files.cert)?, at(&files.key)?))
}

/// Serves the current certificate; [`Acceptor`]'s reload task replaces it.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A TLS acceptor whose certificate follows the files.
#[derive(Clone)]
pub(super) struct Acceptor {
    inner: TlsAcceptor,
}

impl Acceptor {
    /// Loads the files (an error here fails [`serve`](super::serve)) and starts the reload
    /// task, which ends when the acceptor is dropped.
    pub(super) fn load(files: TlsFiles, listener: &str) -> Result<Self, TlsError> {
        let provider = provider();
        let resolver = Arc::new(Resolver {
            current: RwLock::new(load(&files, &provider)?),
        });
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let weak = Arc::downgrade(&resolver);
        let listener = listener.to_owned();
        tokio::spawn(async move {
            let mut seen = modified(&files);
            loop {
                tokio::time::sleep(files.reload_interval).await;
                let Some(resolver) = weak.upgrade() else {
                    return;
                };
                let now = modified(&files);
                if now == seen || now.is_none() {
                    continue;
                }
                match load(&files, &provider) {
                    Ok(key) => {
                        *resolver
                            .current
                            .write()
                            .unwrap_or_else(PoisonError::into_inner) = key;
                        seen = now;
                        tracing::info!(event = "server.tls_reloaded", listener = %listener, cert = %files.cert.display());
                    }
                    // Half-written files during a renewal are normal: keep serving the old
                    // certificate and try again at the next tick.
                    Err(e) => {
                        tracing::warn!(event = "server.tls_reload_failed", listener = %listener, error = %e, "keeping the current certificate");
                    }
                }
            }
        });
        Ok(Self {
            inner: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub(super) async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.inner.accept(stream).await
    }
}
