//! Certificates made in the test: a CA of its own and server certificates it signs, written as
//! PEM files for `--tls-cert`, `--tls-key` and `--hub-ca`.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    /// The CA certificate as a PEM file.
    pub file: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/name.pem`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        let file = dir.join(format!("{name}.pem"));
        std::fs::write(&file, &pem).unwrap();
        TestCa { issuer: Issuer::new(params, key), pem, file }
    }

    /// A server certificate for `names` (host names or IP addresses), valid now unless `expired`:
    /// `(certificate PEM, key PEM)`.
    pub fn issue(&self, names: &[&str], expired: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let now = time::OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = if expired {
            (now - time::Duration::days(30), now - time::Duration::days(1))
        } else {
            (now - time::Duration::hours(1), now + time::Duration::days(30))
        };
        (params.signed_by(&key, &self.issuer).unwrap().pem(), key.serialize_pem())
    }

    /// Issues a certificate for `names` and writes it to `dir/cert.pem` and `dir/key.pem`
    /// (each replaced whole, by rename): the paths.
    pub fn write(&self, dir: &Path, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(names, expired);
        let paths = (dir.join("cert.pem"), dir.join("key.pem"));
        for (path, pem) in [(&paths.1, key), (&paths.0, cert)] {
            let part = path.with_extension("part");
            std::fs::write(&part, pem).unwrap();
            std::fs::rename(&part, path).unwrap();
        }
        paths
    }

    /// A client that trusts this CA only.
    pub fn client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap())
    }
}
