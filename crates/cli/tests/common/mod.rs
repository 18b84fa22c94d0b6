//! Shared helpers of the CLI integration tests: a sandbox with its own data directory and
//! config files, running the built `regstore` binary with a controlled environment, and a
//! registry-shaped tree for copy tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use regstore_driver_api::{Driver, WalkControl, WalkOptions};
#[allow(unused_imports)] // not every test binary uses it
pub use regstore_test_support::content;
use sha2::{Digest, Sha256};

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_regstore");

/// A temporary directory holding data roots and config files; removed on drop.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", self.out()))
    }

    /// Asserts exit code 0 and returns self.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            0,
            "expected success; stdout: {}\nstderr: {}",
            self.out(),
            self.stderr
        );
        self
    }

    /// Asserts the exit code and that stderr is exactly one line; returns that line.
    pub fn fails_with(&self, code: i32) -> String {
        assert_eq!(
            self.code,
            code,
            "wrong exit code; stdout: {}\nstderr: {}",
            self.out(),
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got: {:?}",
            self.stderr
        );
        lines[0].to_owned()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `name` with `text` and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// A filesystem config rooted at `<sandbox>/<root>`.
    pub fn fs_config(&self, name: &str, root: &str) -> PathBuf {
        let root = self.path(root);
        self.file(
            name,
            &format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\nhttp:\n  addr: :5000\n",
                root.display()
            ),
        )
    }

    /// Runs the binary with `args`, no stdin, an environment without any registry override,
    /// and the default data directory inside the sandbox.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Like [`run_with`](Self::run_with), without any inherited `AWS_*`, proxy or CA variable
    /// (so the credential chain sees only `env`).
    #[allow(dead_code)] // used by some test binaries only
    pub fn run_clean_aws(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all: Vec<(String, Option<String>)> = std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .filter(|k| {
                k.starts_with("AWS_")
                    || k.eq_ignore_ascii_case("http_proxy")
                    || k.eq_ignore_ascii_case("https_proxy")
                    || k.eq_ignore_ascii_case("no_proxy")
                    || k == "SSL_CERT_FILE"
            })
            .map(|k| (k, None))
            .collect();
        all.extend(
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned()))),
        );
        self.run_env(args, &all, None)
    }

    /// Like [`run`](Self::run) with extra environment variables and optional stdin bytes.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        let env: Vec<(String, Option<String>)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect();
        self.run_env(args, &env, stdin)
    }

    /// Runs the binary with `env` applied in order (`None` removes the variable).
    fn run_env(
        &self,
        args: &[&str],
        env: &[(String, Option<String>)],
        stdin: Option<&[u8]>,
    ) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("REGISTRY_") || k.starts_with("REGSTORE_") || k == "XDG_DATA_HOME" {
                cmd.env_remove(&k);
            }
        }
        cmd.env("REGSTORE_DATA_DIR", self.path("default-data"));
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn regstore");
        if let Some(data) = stdin {
            let mut input = child.stdin.take().expect("stdin");
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = input.write_all(&data);
            });
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("wait for regstore");
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a registry-shaped tree through `driver` and returns path → SHA-256 of every file.
///
/// Blobs under `docker/registry/v2/blobs/sha256/<2 hex>/<64 hex>/data` (one of them larger
/// than a 5 MiB S3 part, one empty), repositories with `_manifests` revisions and tags,
/// `_layers` links and an `_uploads` directory with `startedat`, `data` and hash state.
pub async fn write_registry_tree(driver: &Driver) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut put = |path: String, data: Vec<u8>| {
        files.insert(path.clone(), (path, data));
    };
    let sizes = [0usize, 1, 1000, 64 * 1024, 6 * 1024 * 1024 + 17, 300_000];
    let mut digests = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data = content(i as u64 + 1, *size);
        let digest = sha256_hex(&data);
        put(
            format!(
                "/docker/registry/v2/blobs/sha256/{}/{digest}/data",
                &digest[..2]
            ),
            data,
        );
        digests.push(digest);
    }
    for repo in ["library/alpine", "team/app"] {
        let base = format!("/docker/registry/v2/repositories/{repo}");
        for d in &digests[..3] {
            put(
                format!("{base}/_layers/sha256/{d}/link"),
                format!("sha256:{d}").into_bytes(),
            );
        }
        let m = &digests[3];
        put(
            format!("{base}/_manifests/revisions/sha256/{m}/link"),
            format!("sha256:{m}").into_bytes(),
        );
        put(
            format!("{base}/_manifests/tags/latest/current/link"),
            format!("sha256:{m}").into_bytes(),
        );
        put(
            format!("{base}/_manifests/tags/latest/index/sha256/{m}/link"),
            format!("sha256:{m}").into_bytes(),
        );
        let upload = "2d8b8a0c-7f06-4a3e-9d3e-5b0f5b0c1a2b";
        put(
            format!("{base}/_uploads/{upload}/startedat"),
            b"2026-11-23T15:00:00Z".to_vec(),
        );
        put(
            format!("{base}/_uploads/{upload}/data"),
            content(99, 123_457),
        );
        put(
            format!("{base}/_uploads/{upload}/hashstates/sha256/0"),
            content(100, 212),
        );
    }
    let mut hashes = BTreeMap::new();
    for (path, data) in files.into_values() {
        let mut w = driver.writer(&path, false).await.expect("writer");
        for chunk in data.chunks(1024 * 1024) {
            w.write(chunk.to_vec()).await.expect("write");
        }
        w.commit().await.expect("commit");
        hashes.insert(path, sha256_hex(&data));
    }
    hashes
}

/// Path → SHA-256 of every file below `/` of `driver`, reading each object as a stream.
pub async fn tree_hashes(driver: &Driver) -> BTreeMap<String, String> {
    use futures::StreamExt;
    let mut paths = Vec::new();
    driver
        .walk("/", &WalkOptions::default(), |info| {
            if !info.is_dir {
                paths.push(info.path.to_string());
            }
            Ok(WalkControl::Continue)
        })
        .await
        .expect("walk");
    let mut out = BTreeMap::new();
    for p in paths {
        let mut hasher = Sha256::new();
        let mut stream = driver.reader(&p, 0).await.expect("reader");
        while let Some(chunk) = stream.next().await {
            hasher.update(chunk.expect("chunk"));
        }
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.insert(p, hex);
    }
    out
}

/// A filesystem driver on a local directory (for seeding and verifying trees).
pub fn fs_driver(root: &Path) -> Driver {
    Driver::new(std::sync::Arc::new(
        regstore_driver_filesystem::FilesystemDriver::new(root),
    ))
}
