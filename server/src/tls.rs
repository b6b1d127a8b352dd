//! TLS served by the hub (and the edge) itself, with `--tls-cert` and `--tls-key`: rustls with
//! ALPN offering HTTP/2 and HTTP/1.1. The certificate is held behind a lock that a reload swaps,
//! so a rotated certificate is served to every new connection without a restart; connections
//! already open keep the one they were made with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate chain and its key are, both PEM.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `--tls-cert` and `--tls-key` come together or not at all.
    pub fn from_flags(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<TlsFiles>, String> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
            (None, None) => Ok(None),
            _ => Err("--tls-cert and --tls-key go together: give both, or neither".into()),
        }
    }

    /// Reads and checks both files: the chain parses, the key parses and matches its first certificate.
    fn load(&self) -> anyhow::Result<Arc<CertifiedKey>> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("reading the certificate {}: {e}", self.cert.display()))?;
        anyhow::ensure!(!chain.is_empty(), "{}: no certificate in the file", self.cert.display());
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| anyhow::anyhow!("reading the key {}: {e}", self.key.display()))?;
        let certified = CertifiedKey::from_der(chain, key, &ring::default_provider())
            .map_err(|e| anyhow::anyhow!("{} and {} do not go together: {e}", self.cert.display(), self.key.display()))?;
        Ok(Arc::new(certified))
    }

    pub fn paths(&self) -> [&Path; 2] {
        [&self.cert, &self.key]
    }
}

/// The certificate being served, swapped on reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().expect("certificate lock").clone())
    }
}

/// What the listener needs: the acceptor, and the handle that reloads its certificate.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    files: TlsFiles,
    current: Arc<Current>,
}

impl Tls {
    /// Loads the certificate; fails at start on a missing, unreadable or mismatched file.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let current = Arc::new(Current(RwLock::new(files.load()?)));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), files, current })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again; on any error the certificate in force stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = self.files.load()?;
        *self.current.0.write().expect("certificate lock") = fresh;
        Ok(())
    }
}
