//! The HTTP client every outbound call uses (the edge's forwarding and following, `simulate`,
//! `fanout`): HTTPS with rustls, trusting the platform's certificate store plus, with
//! `--hub-ca`, a private CA. There is no way to skip verification.
//!
//! [`explain`] turns a failed request into the sentence `/v1/sync` and the logs show: which of
//! name resolution, connecting and the TLS handshake failed, and for a certificate, why.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rustls::{CertificateError, Error as TlsError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// How to trust the hub: the flag shared by every command that calls one.
#[derive(Args, Debug, Clone, Default)]
pub struct TrustArgs {
    /// A PEM file of CA certificates to trust for the hub, besides the platform's (a private CA).
    #[arg(long, env = "SHELFCAST_HUB_CA")]
    pub hub_ca: Option<PathBuf>,
}

/// A client builder that trusts the platform's CAs and the certificates in `ca`, and offers
/// HTTP/2 and HTTP/1.1.
pub fn builder(ca: Option<&Path>) -> anyhow::Result<reqwest::ClientBuilder> {
    Ok(with_tls(rustls_config(ca, &[b"h2", b"http/1.1"])?))
}

/// A client builder over an already made TLS configuration (many clients, one configuration).
pub fn with_tls(tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder().use_preconfigured_tls(tls)
}

/// The TLS side of every client: the platform's trust store plus `ca`, ALPN offering `alpn`.
pub fn rustls_config(ca: Option<&Path>, alpn: &[&[u8]]) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a certificate of the platform's store could not be read");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("--hub-ca {}: {e}", path.display()))?;
        anyhow::ensure!(!certs.is_empty(), "--hub-ca {}: no certificate in the file", path.display());
        for cert in certs {
            roots.add(cert).map_err(|e| anyhow::anyhow!("--hub-ca {}: {e}", path.display()))?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The edge's client: short connection timeout, long enough for a long poll.
/// `shelfcast healthcheck`: Ok when `url` answers 2xx within 5 s.
pub async fn healthcheck(url: &str, ca: Option<&Path>) -> anyhow::Result<()> {
    let client = builder(ca)?.timeout(Duration::from_secs(5)).build()?;
    let answer = client.get(url).send().await.map_err(|e| anyhow::anyhow!("{url}: {}", explain(&e)))?;
    anyhow::ensure!(answer.status().is_success(), "{url} answered {}", answer.status());
    Ok(())
}

pub fn for_hub(ca: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    Ok(builder(ca)?.connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(60)).build()?)
}

/// What went wrong with a request to `hub`, as one sentence for a person.
pub fn explain(error: &reqwest::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = error.source();
    let mut io_kind = None;
    let mut words = Vec::new();
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<TlsError>() {
            return format!("the hub's TLS handshake failed: {}", tls_sentence(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An I/O error's `source` skips the error it wraps: look inside, through any
            // I/O errors wrapped in one another, for the TLS one.
            let mut inner = io.get_ref();
            while let Some(wrapped) = inner {
                if let Some(tls) = wrapped.downcast_ref::<TlsError>() {
                    return format!("the hub's TLS handshake failed: {}", tls_sentence(tls));
                }
                inner = wrapped.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
            }
            io_kind.get_or_insert(io.kind());
        }
        words.push(e.to_string());
        cause = e.source();
    }
    let detail = words.last().cloned().unwrap_or_else(|| error.to_string());
    if error.is_timeout() {
        return "the hub did not answer in time (timeout)".into();
    }
    if words.iter().any(|w| w.contains("dns error")) {
        return format!("the hub's name cannot be resolved (DNS: {detail})");
    }
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "the hub refused the connection (nothing listens on that port)".into(),
        Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::UnexpectedEof) => {
            format!("the connection to the hub was cut ({detail})")
        }
        _ if error.is_connect() => format!("the hub cannot be reached ({detail})"),
        _ => format!("the request to the hub failed ({detail})"),
    }
}

fn tls_sentence(e: &TlsError) -> String {
    match e {
        TlsError::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "its certificate is not trusted (unknown issuer: give its CA with --hub-ca, or use a publicly trusted certificate)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "its certificate does not name this host (name mismatch)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "its certificate has expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "its certificate is not valid yet (check this machine's clock)".into()
            }
            CertificateError::Revoked => "its certificate has been revoked".into(),
            other => format!("its certificate is invalid ({other:?})"),
        },
        TlsError::NoApplicationProtocol => "no common application protocol (ALPN)".into(),
        other => other.to_string(),
    }
}
