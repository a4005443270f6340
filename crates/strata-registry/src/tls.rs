//! TLS with rustls: the certificate chain and key come from PEM files and are reloaded when
//! they change (a renewed certificate needs no restart; a broken new pair is logged and the
//! old one kept).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::error::RegistryError;

fn tls_err(path: &Path, message: impl Into<String>) -> RegistryError {
    RegistryError::Tls {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, RegistryError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_err(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls_err(cert, "no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, e.to_string()))?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(|e| tls_err(key, e.to_string()))
}

/// The current certificate, swapped when the files change.
#[derive(Debug)]
pub(crate) struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>, Option<SystemTime>)>,
}

impl ReloadingCert {
    /// Re-reads the files when either changed since the last load.
    pub(crate) fn reload_if_changed(&self) {
        let (c, k) = (mtime(&self.cert), mtime(&self.key));
        {
            let cur = self.current.read().unwrap_or_else(|p| p.into_inner());
            if cur.1 == c && cur.2 == k {
                return;
            }
        }
        match load(&self.cert, &self.key, &self.provider) {
            Ok(ck) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(ck), c, k);
                tracing::info!(cert = %self.cert.display(), "tls certificate reloaded");
            }
            Err(e) => {
                // Keep serving the old pair; try again at the next change.
                let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
                cur.1 = c;
                cur.2 = k;
                tracing::error!(error = %e, "tls certificate not reloaded, keeping the old one");
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .clone(),
        )
    }
}

/// An acceptor for the configured files, and the resolver to poll for changes.
pub(crate) fn acceptor(
    config: &TlsConfig,
) -> Result<(TlsAcceptor, Arc<ReloadingCert>), RegistryError> {
    let provider = Arc::new(ring::default_provider());
    let ck = load(&config.cert, &config.key, &provider)?;
    let resolver = Arc::new(ReloadingCert {
        cert: config.cert.clone(),
        key: config.key.clone(),
        provider: provider.clone(),
        current: RwLock::new((Arc::new(ck), mtime(&config.cert), mtime(&config.key))),
    });
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&config.cert, e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(server)), resolver))
}
