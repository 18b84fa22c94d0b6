//! The TLS stack chosen at build time (Cargo features `native-tls`, the default, or
//! `rustls-webpki-roots` / `rustls-native-roots`), behind one small API: build a client
//! context once, wrap a connected TCP stream.
//!
//! Trust: a custom CA bundle from `AWS_CA_BUNDLE` (the AWS SDKs' variable), else
//! `SSL_CERT_FILE`, replaces the stack's default roots — as the Go SDK does (it builds its
//! pool from the bundle alone) and as Go's crypto/x509 does with `SSL_CERT_FILE`. Without
//! either: the system store (native-tls, rustls-native-roots) or Mozilla's roots compiled in
//! (rustls-webpki-roots). Certificates and host names are verified unless the configuration
//! says `skipverify: true`.

use std::path::PathBuf;

use tokio::net::TcpStream;

/// Where the trusted roots come from, when not from the stack's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaBundle {
    /// The variable that named the file (for errors and logs).
    pub(crate) variable: &'static str,
    /// The PEM file.
    pub(crate) path: PathBuf,
}

/// `AWS_CA_BUNDLE`, else `SSL_CERT_FILE` (the first non-empty), from `get`.
pub(crate) fn ca_bundle_from(get: &dyn Fn(&str) -> Option<String>) -> Option<CaBundle> {
    ["AWS_CA_BUNDLE", "SSL_CERT_FILE"]
        .into_iter()
        .find_map(|variable| {
            get(variable)
                .filter(|v| !v.trim().is_empty())
                .map(|v| CaBundle {
                    variable,
                    path: PathBuf::from(v.trim()),
                })
        })
}

/// The DER certificates of `bundle`; an error names the variable and the file when the file
/// cannot be read, is not PEM, or (for `AWS_CA_BUNDLE`) holds no certificate.
pub(crate) fn read_bundle(bundle: &CaBundle) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let where_ = format!("{}={}", bundle.variable, bundle.path.display());
    let pem = std::fs::read(&bundle.path).map_err(|e| format!("{where_}: cannot read: {e}"))?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{where_}: not a PEM certificate bundle: {e}"))?;
        certs.push(cert.as_ref().to_vec());
    }
    if certs.is_empty() {
        // As the AWS SDKs refuse an AWS_CA_BUNDLE without certificates. SSL_CERT_FILE follows
        // Go's crypto/x509 instead: a file without certificates is an empty trust set (every
        // verified connection then fails), which is how tests point at "no CA at all".
        if bundle.variable == "AWS_CA_BUNDLE" {
            return Err(format!("{where_}: no certificate in the file"));
        }
        tracing::warn!(
            variable = bundle.variable,
            path = %bundle.path.display(),
            "CA file holds no certificate: no TLS server will be trusted"
        );
    }
    Ok(certs)
}

/// Which stack this build uses, for logs and docs.
pub(crate) const STACK: &str = if cfg!(feature = "_rustls") {
    "rustls"
} else if cfg!(feature = "native-tls") {
    "native-tls"
} else {
    "none"
};

/// A TLS client context. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Tls {
    #[cfg(feature = "_rustls")]
    connector: tokio_rustls::TlsConnector,
    #[cfg(all(feature = "native-tls", not(feature = "_rustls")))]
    connector: tokio_native_tls::TlsConnector,
}

/// A TLS stream over TCP.
#[cfg(feature = "_rustls")]
pub(crate) type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;
/// A TLS stream over TCP.
#[cfg(all(feature = "native-tls", not(feature = "_rustls")))]
pub(crate) type TlsStream = tokio_native_tls::TlsStream<TcpStream>;
/// No TLS stack in this build: never constructed.
#[cfg(not(any(feature = "native-tls", feature = "_rustls")))]
pub(crate) type TlsStream = TcpStream;

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Tls {
    /// A context trusting `bundle` (or the stack's default roots), verifying certificates and
    /// host names unless `skip_verify`.
    pub(crate) fn new(skip_verify: bool, bundle: Option<&CaBundle>) -> Result<Self, String> {
        let extra = match bundle {
            Some(b) => Some(read_bundle(b)?),
            None => None,
        };
        Self::build(skip_verify, extra)
    }

    #[cfg(feature = "_rustls")]
    fn build(skip_verify: bool, bundle: Option<Vec<Vec<u8>>>) -> Result<Self, String> {
        use std::sync::Arc;
        // ring, the crypto the workspace already builds on. rustls 0.23.48 deprecates ring's
        // provider for lacking post-quantum key exchange; aws-lc-rs (which has it) would bring
        // a C/CMake build into an image that is meant to be simple to build. TLS 1.3 with
        // X25519 and the usual suites stays available.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match bundle {
            Some(certs) => {
                for c in certs {
                    roots
                        .add(rustls_pki_types::CertificateDer::from(c))
                        .map_err(|e| format!("CA bundle: certificate refused: {e}"))?;
                }
            }
            None => {
                #[cfg(feature = "rustls-webpki-roots")]
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                #[cfg(feature = "rustls-native-roots")]
                {
                    let found = rustls_native_certs::load_native_certs();
                    let (added, _) = roots.add_parsable_certificates(found.certs);
                    if added == 0 {
                        return Err(format!(
                            "no usable CA certificate in the system store ({} errors); set \
                             AWS_CA_BUNDLE or SSL_CERT_FILE",
                            found.errors.len()
                        ));
                    }
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?;
        let config = if skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(danger::AcceptAny(provider)))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    #[cfg(all(feature = "native-tls", not(feature = "_rustls")))]
    fn build(skip_verify: bool, bundle: Option<Vec<Vec<u8>>>) -> Result<Self, String> {
        let mut b = native_tls::TlsConnector::builder();
        if let Some(certs) = bundle {
            b.disable_built_in_roots(true);
            for c in certs {
                let cert = native_tls::Certificate::from_der(&c)
                    .map_err(|e| format!("CA bundle: certificate refused: {e}"))?;
                b.add_root_certificate(cert);
            }
        }
        if skip_verify {
            b.danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        let tls = b.build().map_err(|e| format!("TLS set-up: {e}"))?;
        Ok(Tls {
            connector: tokio_native_tls::TlsConnector::from(tls),
        })
    }

    #[cfg(not(any(feature = "native-tls", feature = "_rustls")))]
    fn build(_skip_verify: bool, _bundle: Option<Vec<Vec<u8>>>) -> Result<Self, String> {
        Ok(Tls {})
    }

    /// Runs the TLS handshake for `host` over `tcp`.
    pub(crate) async fn connect(&self, host: &str, tcp: TcpStream) -> std::io::Result<TlsStream> {
        #[cfg(feature = "_rustls")]
        {
            let name = rustls_pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| io_error(format!("{host:?} is not a TLS server name: {e}")))?;
            self.connector.connect(name, tcp).await
        }
        #[cfg(all(feature = "native-tls", not(feature = "_rustls")))]
        {
            self.connector.connect(host, tcp).await.map_err(io_error)
        }
        #[cfg(not(any(feature = "native-tls", feature = "_rustls")))]
        {
            let _ = (host, tcp);
            Err(io_error(
                "https is not available: regstore-driver-s3 was built without a TLS feature \
                 (native-tls, rustls-webpki-roots or rustls-native-roots)",
            ))
        }
    }
}

#[cfg(feature = "_rustls")]
mod danger {
    //! `skipverify: true` with rustls: every certificate and host name accepted (signatures
    //! still checked, so the handshake itself is sound).
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub(super) struct AcceptAny(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_ca_bundle_wins_over_ssl_cert_file() {
        let both = |k: &str| match k {
            "AWS_CA_BUNDLE" => Some("/a.pem".to_owned()),
            "SSL_CERT_FILE" => Some("/b.pem".to_owned()),
            _ => None,
        };
        let b = ca_bundle_from(&both).unwrap();
        assert_eq!(
            (b.variable, b.path),
            ("AWS_CA_BUNDLE", PathBuf::from("/a.pem"))
        );
        let only = |k: &str| (k == "SSL_CERT_FILE").then(|| "/b.pem".to_owned());
        assert_eq!(ca_bundle_from(&only).unwrap().variable, "SSL_CERT_FILE");
        assert!(ca_bundle_from(&|_| Some(String::new())).is_none());
    }

    #[test]
    fn unreadable_or_empty_bundles_name_the_variable_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = CaBundle {
            variable: "AWS_CA_BUNDLE",
            path: dir.path().join("nope.pem"),
        };
        let e = Tls::new(false, Some(&missing)).err().unwrap();
        assert!(
            e.starts_with("AWS_CA_BUNDLE=") && e.contains("nope.pem"),
            "{e}"
        );
        // AWS_CA_BUNDLE without a certificate is refused (the AWS SDKs' rule); SSL_CERT_FILE
        // without one is an empty trust set (Go's crypto/x509), so the client builds.
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Tls::new(
            false,
            Some(&CaBundle {
                variable: "AWS_CA_BUNDLE",
                path: empty.clone(),
            }),
        )
        .err()
        .unwrap();
        assert!(
            e.starts_with("AWS_CA_BUNDLE=") && e.contains("no certificate"),
            "{e}"
        );
        let ssl_cert_file = CaBundle {
            variable: "SSL_CERT_FILE",
            path: empty,
        };
        assert_eq!(read_bundle(&ssl_cert_file).unwrap(), Vec::<Vec<u8>>::new());
        assert!(Tls::new(false, Some(&ssl_cert_file)).is_ok());
    }
}
