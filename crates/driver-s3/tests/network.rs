//! The driver's network set-up against real servers: `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`
//! through Debian's tinyproxy (started here on a free loopback port), and custom CA bundles
//! (`AWS_CA_BUNDLE`, `SSL_CERT_FILE`) against an HTTPS loopback server whose certificate is
//! signed by a CA made for the run (rcgen).
//!
//! Go's proxy rules never proxy `localhost` or loopback IP literals, and neither does the
//! driver; the endpoints are therefore addressed as `0.0.0.0:port`, which is not a loopback
//! literal (so it is proxied) yet reaches the loopback listener on Linux.
//!
//! tinyproxy missing (`apt-get install tinyproxy-bin`; `cargo xtask test` installs it) or no
//! moto (`REGSTORE_MOTO_ENDPOINT`): skipped, or a failure when `CI` is set. The tests change
//! the process environment, which the driver reads when it is built: one mutex serialises them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use regstore_driver_api::{Error, Parameters, StorageDriver, StoragePath};
use regstore_driver_s3::{S3Config, S3Driver};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const NETWORK_VARS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "AWS_CA_BUNDLE",
    "SSL_CERT_FILE",
];

/// Clears every proxy and CA variable, then sets `vars`.
fn network_env(vars: &[(&str, &str)]) {
    for v in NETWORK_VARS {
        std::env::remove_var(v);
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
}

/// tinyproxy on a free loopback port, logging every request; killed on drop.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tinyproxy {
    fn start() -> Option<Tinyproxy> {
        let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists());
        let Some(bin) = bin else {
            return common::unavailable(
                "tinyproxy is not installed (`apt-get install tinyproxy-bin`, or run `cargo \
                 xtask test`, which installs it)",
            );
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT is allowed to any port (the test server's).
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nLogLevel Connect\n\
                 LogFile \"{}\"\nPidFile \"{}\"\nAllow 127.0.0.1\n",
                log.display(),
                dir.path().join("tinyproxy.pid").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tinyproxy");
        let mut tp = Tinyproxy {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = tp.child.try_wait() {
                panic!("tinyproxy exited during start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(tp)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines tinyproxy logged so far (`GET http://…`, `CONNECT host:port`).
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, r)| r.to_owned()))
            .filter(|r| r.contains(" HTTP/1."))
            .collect()
    }
}

/// `url` with its host replaced by 0.0.0.0 (proxied, unlike 127.0.0.1; see the module docs).
fn via_unspecified(url: &str) -> String {
    let mut u = url::Url::parse(url).expect("endpoint URL");
    u.set_host(Some("0.0.0.0")).unwrap();
    u.as_str().trim_end_matches('/').to_owned()
}

async fn roundtrip(d: &S3Driver, name: &str) -> Result<(), String> {
    let path = StoragePath::parse(&format!("/net/{name}")).unwrap();
    d.put_content(&path, Bytes::from(name.to_owned()))
        .await
        .map_err(|e| e.to_string())?;
    let got = d.get_content(&path).await.map_err(|e| e.to_string())?;
    assert_eq!(got, name.as_bytes());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_from_the_environment_through_tinyproxy() {
    let _g = ENV.lock().await;
    let Some(env) = common::moto_env() else {
        return;
    };
    let Some(tp) = Tinyproxy::start() else {
        return;
    };
    let endpoint = via_unspecified(&env.endpoint);
    let port = url::Url::parse(&endpoint).unwrap().port().unwrap();
    let root = format!("/{}/", common::unique("proxy-"));
    let driver = |timeout: &str| {
        let mut p = env.params(&root);
        p.insert("regionendpoint", endpoint.clone());
        p.insert("connecttimeout", timeout.to_owned());
        // No retries: the dead-proxy case below should fail at once, not after back-offs.
        p.insert("maxretries", "0");
        // tinyproxy 1.11 does not serve a second request on a client connection (it waits for
        // its Timeout, then closes): no idle pool, one connection per request.
        p.insert("maxidleconnsperhost", "0");
        S3Driver::new(S3Config::from_parameters(&p).unwrap()).unwrap()
    };

    // Through the proxy: absolute-form requests, visible in tinyproxy's log.
    network_env(&[
        ("HTTP_PROXY", &tp.url()),
        ("NO_PROXY", "example.com,10.0.0.0/8"),
    ]);
    let d = driver("5s");
    d.ensure_bucket().await.expect("bucket through the proxy");
    roundtrip(&d, "proxied")
        .await
        .expect("put/get through tinyproxy");
    let seen = tp.requests();
    let prefix = format!("http://0.0.0.0:{port}/{}/", env.bucket);
    assert!(
        seen.iter()
            .any(|r| r.starts_with(&format!("PUT {prefix}")) && r.contains("net/proxied")),
        "no proxied PUT in tinyproxy's log: {seen:#?}"
    );
    assert!(
        seen.iter().any(|r| r.starts_with(&format!("GET {prefix}"))),
        "no proxied GET in tinyproxy's log: {seen:#?}"
    );

    // NO_PROXY naming the endpoint's IP: direct, tinyproxy sees nothing more.
    let before = tp.requests().len();
    network_env(&[("http_proxy", &tp.url()), ("no_proxy", "0.0.0.0")]);
    roundtrip(&driver("5s"), "direct")
        .await
        .expect("direct with NO_PROXY");
    assert_eq!(
        tp.requests().len(),
        before,
        "NO_PROXY request went through the proxy"
    );

    // A proxy that is not there: the request fails (it is not silently sent directly).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    network_env(&[("HTTP_PROXY", &dead_url)]);
    let e = roundtrip(&driver("2s"), "dead-proxy")
        .await
        .expect_err("a dead proxy must fail the request");
    assert!(e.contains("proxy"), "the error names the proxy: {e}");

    // An unsupported proxy scheme is refused when the driver is built, naming the variable.
    network_env(&[("HTTPS_PROXY", "socks5://127.0.0.1:1080")]);
    let mut p = env.params(&root);
    p.insert("regionendpoint", endpoint.clone());
    let Err(e) = S3Driver::new(S3Config::from_parameters(&p).unwrap()) else {
        panic!("socks5 proxy accepted");
    };
    let e = e.to_string();
    assert!(e.contains("HTTPS_PROXY"), "{e}");
    network_env(&[]);
}

/// A CA and a server certificate it signed, for 127.0.0.1, 0.0.0.0 and localhost.
struct Pki {
    ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "regstore test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf.subject_alt_names
        .push(SanType::IpAddress([0, 0, 0, 0].into()));
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// An HTTPS server on a free loopback port answering every request `404 NoSuchKey` (so a
/// driver that got through TLS reports "path not found"). Returns the port.
async fn https_server(p: &Pki) -> (u16, tokio::task::JoinHandle<()>) {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    #[allow(deprecated)] // ring: no post-quantum key exchange, fine for a loopback test server
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(p.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.key_der.clone())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                loop {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body =
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
                                <Message>The specified key does not exist.</Message></Error>";
                    let head_only = head.starts_with(b"HEAD ");
                    let answer = format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\n\
                         Content-Length: {}\r\n\r\n{}",
                        body.len(),
                        if head_only { "" } else { body }
                    );
                    if tls.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, task)
}

fn tls_driver(endpoint: &str, skip_verify: bool) -> Result<S3Driver, String> {
    let p = Parameters::new()
        .with("regionendpoint", endpoint)
        .with("region", "us-east-1")
        .with("bucket", "tls-bucket")
        .with("accesskey", "AK")
        .with("secretkey", "SK")
        .with("forcepathstyle", "true")
        .with("connecttimeout", "3s")
        .with("skipverify", skip_verify);
    S3Driver::new(S3Config::from_parameters(&p).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())
}

/// Ok(()) when the request got through TLS (the server's 404 came back), else the error.
async fn probe(d: &S3Driver) -> Result<(), String> {
    let path = StoragePath::parse("/probe").unwrap();
    match d.get_content(&path).await {
        Err(Error::PathNotFound { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
        Ok(_) => Err("unexpected content".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_ca_bundles_and_https_through_a_connect_tunnel() {
    let _g = ENV.lock().await;
    let started = Instant::now();
    let ca = pki();
    let other = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let other_file = dir.path().join("other-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    std::fs::write(&other_file, &other.ca_pem).unwrap();
    let (ca_s, other_s) = (ca_file.to_str().unwrap(), other_file.to_str().unwrap());
    let (port, server) = https_server(&ca).await;
    let endpoint = format!("https://127.0.0.1:{port}");

    // Verification is on: the unknown CA is refused.
    network_env(&[]);
    let e = probe(&tls_driver(&endpoint, false).unwrap())
        .await
        .expect_err("a certificate from an unknown CA must be refused");
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // Either variable makes it trusted.
    for var in ["AWS_CA_BUNDLE", "SSL_CERT_FILE"] {
        network_env(&[(var, ca_s)]);
        probe(&tls_driver(&endpoint, false).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{var}: {e}"));
    }
    // AWS_CA_BUNDLE wins over SSL_CERT_FILE, and it replaces (not extends) the roots.
    network_env(&[("AWS_CA_BUNDLE", other_s), ("SSL_CERT_FILE", ca_s)]);
    probe(&tls_driver(&endpoint, false).unwrap())
        .await
        .expect_err("AWS_CA_BUNDLE with another CA must be used, not SSL_CERT_FILE");
    // skipverify still turns verification off explicitly.
    network_env(&[]);
    probe(&tls_driver(&endpoint, true).unwrap())
        .await
        .expect("skipverify accepts the certificate");
    // A bundle that cannot be read stops the driver at start-up, naming the variable.
    network_env(&[("AWS_CA_BUNDLE", "/nonexistent/regstore-ca.pem")]);
    let Err(e) = tls_driver(&endpoint, false) else {
        panic!("missing bundle accepted");
    };
    assert!(
        e.contains("AWS_CA_BUNDLE") && e.contains("/nonexistent/regstore-ca.pem"),
        "{e}"
    );

    // HTTPS through tinyproxy: a CONNECT tunnel, TLS verified end to end with the bundle.
    if let Some(tp) = Tinyproxy::start() {
        let proxied = format!("https://0.0.0.0:{port}");
        network_env(&[("HTTPS_PROXY", &tp.url()), ("AWS_CA_BUNDLE", ca_s)]);
        probe(&tls_driver(&proxied, false).unwrap())
            .await
            .expect("https through the CONNECT tunnel");
        let seen = tp.requests();
        assert!(
            seen.iter()
                .any(|r| r.starts_with(&format!("CONNECT 0.0.0.0:{port} "))),
            "no CONNECT in tinyproxy's log: {seen:#?}"
        );
        // And the tunnel does not weaken verification.
        network_env(&[("HTTPS_PROXY", &tp.url())]);
        probe(&tls_driver(&proxied, false).unwrap())
            .await
            .expect_err("unknown CA through the tunnel must be refused");
    }
    network_env(&[]);
    server.abort();
    println!("TLS scenarios took {:?}", started.elapsed());
}
