//! Differential tests of `regstore gc` against distribution's own `garbage-collect` (Debian's
//! `docker-registry` 2.8.2), on the filesystem (`fs::*`) and on S3 (`s3::*`, the RGW bucket of
//! `REGSTORE_S3_*`, the Go registry and regstore sharing one root): a real Go registry on 127.0.0.1, images
//! pushed with skopeo from OCI layouts written here (and Docker manifests PUT over the API),
//! deletes through the registry API. For every scenario both collectors run in dry-run mode,
//! with and without `-m`, and the eligible sets must be equal — except for distribution
//! #3178 (with `-m`, 2.8.2 frees the children of a tagged index), which is asserted as the one
//! expected difference. Then a real `regstore gc -m` runs while the registry keeps serving;
//! every kept tag must still pull with skopeo, distribution must find nothing left to free,
//! and `regstore fsck` must find nothing wrong.
//!
//! Beside the scenarios: `live_gc_beside_pushes` and `s3_live_gc_beside_pushes` (gc in a loop
//! while skopeo pushes keep running, on the filesystem and on RGW) and `s3_sweep_cut_off_midway`
//! (RGW stops answering part way through a sweep).
//!
//! Needs `docker-registry` and `skopeo`, so the tests are `#[ignore]`d in a plain `cargo test`
//! (reported as ignored, never as passed); `cargo xtask gc-diff` installs the tools and runs them
//! with `--include-ignored`, with RGW running. Without the tools (or, for the S3 tests, the
//! server) a test prints `skipped: …`, unless `CI` is set: then it fails.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when the tools are present; otherwise skip, or fail under CI.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["docker-registry", "skopeo"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "skipped: {} not installed (cargo xtask gc-diff installs them)",
        missing.join(", ")
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("{msg}");
    false
}

/// Where a test's Go registry keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    /// A filesystem root in a temp dir.
    Fs,
    /// A unique root directory in the bucket of the S3 server named by `REGSTORE_S3_*`
    /// (Ceph RGW under `cargo xtask gc-diff`).
    S3,
}

/// The S3 server of the test environment contract (`REGSTORE_S3_*`, as `cargo xtask` sets it).
struct S3Env {
    endpoint: String,
    access_key: String,
    secret_key: String,
    region: String,
    bucket: String,
    v4auth: bool,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The S3 server, or `None` (a skip) when it is not configured — a failure when `CI` is set.
fn s3_env() -> Option<S3Env> {
    let (Some(endpoint), Some(access_key), Some(secret_key)) = (
        var("REGSTORE_S3_ENDPOINT"),
        var("REGSTORE_S3_ACCESS_KEY"),
        var("REGSTORE_S3_SECRET_KEY"),
    ) else {
        let msg = "skipped: REGSTORE_S3_ENDPOINT, REGSTORE_S3_ACCESS_KEY and \
                   REGSTORE_S3_SECRET_KEY are not all set (cargo xtask gc-diff starts RGW)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("{msg}");
        return None;
    };
    Some(S3Env {
        endpoint,
        access_key,
        secret_key,
        region: var("REGSTORE_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        bucket: var("REGSTORE_S3_BUCKET").unwrap_or_else(|| "regstore-test".into()),
        v4auth: var("REGSTORE_S3_V4AUTH").is_none_or(|v| !v.eq_ignore_ascii_case("false")),
    })
}

/// Creates the bucket when missing (the Go registry does not).
fn ensure_bucket(e: &S3Env) {
    let params = regstore_driver_api::Parameters::new()
        .with("accesskey", e.access_key.as_str())
        .with("secretkey", e.secret_key.as_str())
        .with("region", e.region.as_str())
        .with("regionendpoint", e.endpoint.as_str())
        .with("bucket", e.bucket.as_str())
        .with("v4auth", e.v4auth);
    let cfg = regstore_driver_s3::S3Config::from_parameters(&params).expect("S3 config");
    let s3 = regstore_driver_s3::S3Driver::new(cfg).expect("S3 driver");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(s3.ensure_bucket())
        .expect("create bucket");
}

/// A Go registry on a free loopback port, on a filesystem root in a temp dir or on a unique
/// root directory of the S3 bucket (removed on drop).
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    store: Store,
}

impl Registry {
    /// `None` when the store is S3 and no server is configured (a skip outside CI).
    fn start(store: Store) -> Option<Registry> {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = match store {
            Store::Fs => format!(
                "  filesystem:\n    rootdirectory: {}\n",
                dir.path().join("data").display()
            ),
            Store::S3 => {
                let e = s3_env()?;
                ensure_bucket(&e);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                // Path style is implied by `regionendpoint` in both distribution 2.8 and
                // regstore; `redirect: disable` makes the registry serve blob bytes itself.
                format!(
                    "  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {}\n    \
                     regionendpoint: {}\n    bucket: {}\n    rootdirectory: /gc-diff/{}-{nanos:x}\n    \
                     v4auth: {}\n  redirect:\n    disable: true\n",
                    e.access_key,
                    e.secret_key,
                    e.region,
                    e.endpoint,
                    e.bucket,
                    std::process::id(),
                    e.v4auth
                )
            }
        };
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n{storage}  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let mut r = Registry {
            dir,
            port,
            child: None,
            store,
        };
        r.serve();
        Some(r)
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// Deletes a directory of the store (as `regstore rm -r`).
    fn rm_r(&self, path: &str) {
        let out = regstore(self, &["rm", "-r", path]);
        assert!(
            out.status.success(),
            "rm -r {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every path below `path` with its size (as `regstore walk`).
    fn walk(&self, path: &str) -> String {
        let out = regstore(self, &["walk", path]);
        assert!(
            out.status.success(),
            "walk {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The children of a directory of the store (as `regstore ls`).
    fn ls(&self, path: &str) -> Vec<String> {
        let out = regstore(self, &["ls", path]);
        assert!(
            out.status.success(),
            "ls {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn serve(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.config())
            // distribution's S3 transport panics on it; keep the environment uniform.
            .env_remove("AWS_CA_BUNDLE")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HTTP/1.1 request; returns status, headers (lowercased names) and body.
    fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("http response");
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        (status, headers, resp[split + 4..].to_vec())
    }

    fn header(h: &[(String, String)], name: &str) -> String {
        h.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Monolithic blob upload.
    fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        let (st, h, _) = self.http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(st, 202, "start upload");
        let loc = Self::header(&h, "location");
        let loc = loc
            .strip_prefix(&format!("http://127.0.0.1:{}", self.port))
            .unwrap_or(&loc)
            .to_owned();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let (st, _, b) = self.http(
            "PUT",
            &format!("{loc}{sep}digest={d}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(st, 201, "blob put: {}", String::from_utf8_lossy(&b));
        d
    }

    fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
        let (st, _, b) = self.http(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            body,
        );
        assert_eq!(st, 201, "manifest put: {}", String::from_utf8_lossy(&b));
        sha256(body)
    }

    fn delete_manifest(&self, repo: &str, digest: &str) {
        let (st, _, b) = self.http(
            "DELETE",
            &format!("/v2/{repo}/manifests/{digest}"),
            &[],
            b"",
        );
        assert_eq!(st, 202, "delete: {}", String::from_utf8_lossy(&b));
    }

    /// The manifest as stored (skopeo may rewrite what it pushes, e.g. compress layers).
    fn get_manifest(&self, repo: &str, reference: &str) -> (String, serde_json::Value) {
        let accept =
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";
        let (st, _, body) = self.http(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", accept)],
            b"",
        );
        assert_eq!(st, 200, "GET {repo}:{reference}");
        (sha256(&body), serde_json::from_slice(&body).unwrap())
    }

    /// An image manifest's digest, config and layers as stored.
    fn image(&self, repo: &str, reference: &str) -> Image {
        let (manifest, v) = self.get_manifest(repo, reference);
        let d = |x: &serde_json::Value| x["digest"].as_str().unwrap().to_owned();
        Image {
            manifest,
            config: d(&v["config"]),
            layers: v["layers"].as_array().unwrap().iter().map(d).collect(),
        }
    }

    /// The children of an index as stored.
    fn children(&self, repo: &str, reference: &str) -> Vec<Image> {
        let (_, v) = self.get_manifest(repo, reference);
        v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| self.image(repo, c["digest"].as_str().unwrap()))
            .collect()
    }

    fn target(&self, repo: &str, tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo}:{tag}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.store == Store::S3 {
            let _ = regstore(self, &["rm", "-r", "/docker"]);
        }
    }
}

/// An OCI image layout on disk, for skopeo to push from.
struct OciLayout {
    dir: tempfile::TempDir,
    refs: Vec<String>,
}

/// What an image consists of.
#[derive(Clone, Debug)]
struct Image {
    manifest: String,
    config: String,
    layers: Vec<String>,
}

impl OciLayout {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        OciLayout {
            dir,
            refs: Vec::new(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        std::fs::write(
            self.dir
                .path()
                .join("blobs/sha256")
                .join(&d["sha256:".len()..]),
            bytes,
        )
        .unwrap();
        d
    }

    fn desc(media_type: &str, digest: &str, size: usize) -> String {
        format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}}}"#)
    }

    /// An OCI image with the given layer contents; `arch` varies the config.
    fn image(&self, layers: &[&[u8]], arch: &str) -> (Image, String) {
        let layer_descs: Vec<String> = layers
            .iter()
            .map(|l| {
                Self::desc(
                    "application/vnd.oci.image.layer.v1.tar",
                    &self.blob(l),
                    l.len(),
                )
            })
            .collect();
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| format!("\"{}\"", sha256(l)))
            .collect();
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}},"config":{{}}}}"#,
            diff_ids.join(",")
        );
        let config_d = self.blob(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
            Self::desc(
                "application/vnd.oci.image.config.v1+json",
                &config_d,
                config.len()
            ),
            layer_descs.join(",")
        );
        let m = self.blob(manifest.as_bytes());
        (
            Image {
                manifest: m,
                config: config_d,
                layers: layers.iter().map(|l| sha256(l)).collect(),
            },
            manifest,
        )
    }

    /// Names `digest` (of `media_type`, `size`) as `tag` in index.json.
    fn name(&mut self, tag: &str, media_type: &str, digest: &str, size: usize) {
        self.refs.push(format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#
        ));
        std::fs::write(
            self.dir.path().join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
                self.refs.join(",")
            ),
        )
        .unwrap();
    }

    /// Pushes `tag` of this layout to the registry; returns the digest of the manifest as
    /// pushed (skopeo's `--digestfile`).
    fn push_digest(&self, tag: &str, to: &str) -> String {
        let file = self.dir.path().join("pushed-digest");
        let out = Command::new("skopeo")
            .args(["copy", "--all", "--dest-tls-verify=false", "--quiet"])
            .arg("--digestfile")
            .arg(&file)
            .arg(format!("oci:{}:{tag}", self.dir.path().display()))
            .arg(to)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo push {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(file).unwrap().trim().to_owned()
    }

    /// Pushes `tag` of this layout to the registry.
    fn push(&self, tag: &str, to: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "--all", "--dest-tls-verify=false", "--quiet"])
            .arg(format!("oci:{}:{tag}", self.dir.path().display()))
            .arg(to)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo push {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Pushes one OCI image as `repo:tag` with skopeo.
fn push_image(reg: &Registry, repo: &str, tag: &str, layers: &[&[u8]]) -> Image {
    let mut l = OciLayout::new();
    let (img, body) = l.image(layers, "amd64");
    l.name(
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &img.manifest,
        body.len(),
    );
    l.push(tag, &reg.target(repo, tag));
    let _ = img;
    reg.image(repo, tag)
}

fn rand_bytes(label: &str) -> Vec<u8> {
    use rand::RngCore;
    let mut b = vec![0u8; 2048];
    rand::thread_rng().fill_bytes(&mut b);
    b.extend_from_slice(label.as_bytes());
    b
}

/// The eligible sets and summary of one collector run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Sets {
    marked: usize,
    blobs: BTreeSet<String>,
    manifests: Vec<String>,
}

fn parse(stdout: &str) -> Sets {
    let mut s = Sets::default();
    for line in stdout.lines() {
        if let Some(d) = line.strip_prefix("blob eligible for deletion: ") {
            s.blobs.insert(d.trim().to_owned());
        } else if let Some(d) = line.strip_prefix("manifest eligible for deletion: ") {
            s.manifests.push(d.trim().to_owned());
        } else if line.contains("blobs marked,") {
            s.marked = line.split_whitespace().next().unwrap().parse().unwrap();
            let n: Vec<usize> = line
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            assert_eq!(n.len(), 3, "{line}");
        }
    }
    s.manifests.sort();
    s
}

fn distribution_gc(reg: &Registry, m: bool) -> Sets {
    let mut c = Command::new("docker-registry");
    c.arg("garbage-collect").arg("--dry-run");
    if m {
        c.arg("--delete-untagged");
    }
    let out = c
        .arg(reg.config())
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "distribution gc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&String::from_utf8_lossy(&out.stdout))
}

fn regstore(reg: &Registry, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_regstore"))
        .arg("--config")
        .arg(reg.config())
        .args(args)
        .output()
        .unwrap()
}

fn regstore_gc(reg: &Registry, m: bool, dry_run: bool) -> Sets {
    let mut args = vec!["gc", "--min-age", "0s"];
    if dry_run {
        args.push("--dry-run");
    }
    if m {
        args.push("-m");
    }
    let out = regstore(reg, &args);
    assert!(
        out.status.success(),
        "regstore gc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// What distribution 2.8.2 frees in excess with `-m` (#3178): the children of tagged indexes
/// (as manifests) and their configs and layers (as blobs) that nothing else marks.
#[derive(Default)]
struct IndexBug {
    manifests: Vec<String>,
    blobs: BTreeSet<String>,
}

/// Compares both collectors in both modes, then runs a real `regstore gc -m` and checks the
/// registry still serves `kept` tags and has nothing left to free.
fn compare(name: &str, reg: &mut Registry, bug: IndexBug, kept: &[(&str, &str)]) {
    let name = &format!("{:?} {name}", reg.store);
    // Timestamps: everything must be older than the start of `--min-age 0s` marking.
    std::thread::sleep(Duration::from_millis(1100));
    for m in [false, true] {
        let theirs = distribution_gc(reg, m);
        let ours = regstore_gc(reg, m, true);
        if m && !bug.manifests.is_empty() {
            let mut want_manifests: Vec<String> = theirs
                .manifests
                .iter()
                .filter(|d| !bug.manifests.contains(d))
                .cloned()
                .collect();
            want_manifests.sort();
            let want_blobs: BTreeSet<String> =
                theirs.blobs.difference(&bug.blobs).cloned().collect();
            // The bug's sets really are in distribution's output (else this proves nothing).
            assert!(
                bug.blobs.is_subset(&theirs.blobs),
                "{name}: distribution no longer shows #3178?"
            );
            assert_eq!(ours.manifests, want_manifests, "{name} -m manifests");
            assert_eq!(ours.blobs, want_blobs, "{name} -m blobs");
            eprintln!(
                "{name} -m: equal except #3178: distribution also frees {} child manifests and \
                 {} of their blobs; marked {} vs ours {}",
                bug.manifests.len(),
                bug.blobs.len(),
                theirs.marked,
                ours.marked
            );
        } else {
            if ours != theirs {
                let mut args = vec!["--json", "gc", "--dry-run", "--min-age", "0s"];
                if m {
                    args.push("-m");
                }
                let out = regstore(reg, &args);
                eprintln!(
                    "{name}: regstore says {}",
                    String::from_utf8_lossy(&out.stdout)
                );
                let tree = regstore(reg, &["walk", "/docker/registry/v2"]);
                eprintln!("{}", String::from_utf8_lossy(&tree.stdout));
            }
            assert_eq!(ours, theirs, "{name} m={m}");
            eprintln!(
                "{name} m={m}: equal ({} marked, {} blobs, {} manifests)",
                ours.marked,
                ours.blobs.len(),
                ours.manifests.len()
            );
        }
    }
    // A real collection with the registry still serving.
    regstore_gc(reg, true, false);
    let pulled = tempfile::tempdir().unwrap();
    for (repo, tag) in kept {
        let out = Command::new("skopeo")
            .args(["copy", "--all", "--src-tls-verify=false", "--quiet"])
            .arg(reg.target(repo, tag))
            .arg(format!(
                "oci:{}:{tag}",
                pulled.path().join(repo.replace('/', "_")).display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: pull {repo}:{tag} after gc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = distribution_gc(reg, false);
    assert!(
        after.blobs.is_empty() && after.manifests.is_empty(),
        "{name}: left behind: {after:?}"
    );
    let after_m = distribution_gc(reg, true);
    assert!(
        after_m.manifests.iter().all(|d| bug.manifests.contains(d)),
        "{name}: -m left behind: {after_m:?}"
    );
    let fsck = regstore(reg, &["fsck"]);
    assert!(
        fsck.status.success(),
        "{name}: fsck after gc: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

fn shared_layers_and_manifest_deleted_by_digest(store: Store) {
    if !tools_present() {
        return;
    }
    let Some(mut reg) = Registry::start(store) else {
        return;
    };
    let shared = rand_bytes("shared");
    let (la, lb) = (rand_bytes("a"), rand_bytes("b"));
    let a = push_image(&reg, "team/a", "v1", &[&shared, &la]);
    push_image(&reg, "team/b", "v1", &[&shared, &lb]);
    let gone = push_image(&reg, "team/a", "old", &[&shared, &rand_bytes("old")]);
    reg.delete_manifest("team/a", &gone.manifest);
    assert_eq!(a.layers.len(), 2);
    compare(
        "shared+deleted",
        &mut reg,
        IndexBug::default(),
        &[("team/a", "v1"), ("team/b", "v1")],
    );
}

fn tag_moved_and_only_tag_deleted(store: Store) {
    if !tools_present() {
        return;
    }
    let Some(mut reg) = Registry::start(store) else {
        return;
    };
    let base = rand_bytes("base");
    push_image(&reg, "app", "latest", &[&base, &rand_bytes("1")]);
    push_image(&reg, "app", "latest", &[&base, &rand_bytes("2")]); // moved
    push_image(&reg, "app", "stable", &[&base]);
    // An image whose only tag was deleted: distribution's tag delete removes tags/<tag>.
    let lone = push_image(&reg, "lone", "only", &[&rand_bytes("lone")]);
    push_image(&reg, "lone", "keep", &[&rand_bytes("keep")]);
    reg.rm_r("/docker/registry/v2/repositories/lone/_manifests/tags/only");
    assert!(!lone.manifest.is_empty());
    compare(
        "moved+untagged",
        &mut reg,
        IndexBug::default(),
        &[("app", "latest"), ("app", "stable"), ("lone", "keep")],
    );
}

fn oci_index_and_docker_manifest_list(store: Store) {
    if !tools_present() {
        return;
    }
    let Some(mut reg) = Registry::start(store) else {
        return;
    };
    // A multi-arch OCI index pushed with skopeo --all.
    let mut l = OciLayout::new();
    let (amd, amd_body) = l.image(&[&rand_bytes("amd")], "amd64");
    let (arm, arm_body) = l.image(&[&rand_bytes("arm")], "arm64");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{}]}}"#,
        OciLayout::desc(
            "application/vnd.oci.image.manifest.v1+json",
            &amd.manifest,
            amd_body.len()
        )
        .replace('}', r#","platform":{"architecture":"amd64","os":"linux"}}"#),
        OciLayout::desc(
            "application/vnd.oci.image.manifest.v1+json",
            &arm.manifest,
            arm_body.len()
        )
        .replace('}', r#","platform":{"architecture":"arm64","os":"linux"}}"#),
    );
    let index_d = l.blob(index.as_bytes());
    l.name(
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &index_d,
        index.len(),
    );
    l.push("multi", &reg.target("multi", "multi"));
    let _ = index_d;
    let oci_children = reg.children("multi", "multi");
    assert_eq!(oci_children.len(), 2);

    // A Docker manifest list over two Docker schema 2 images, PUT through the API.
    let docker_image = |arch: &str| -> Image {
        let layer = rand_bytes(arch);
        let ld = reg.put_blob("dlist", &layer);
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{ld}"]}}}}"#
        );
        let cd = reg.put_blob("dlist", config.as_bytes());
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[{}]}}"#,
            OciLayout::desc(
                "application/vnd.docker.container.image.v1+json",
                &cd,
                config.len()
            ),
            OciLayout::desc(
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                &ld,
                layer.len()
            ),
        );
        let md = sha256(body.as_bytes());
        reg.put_manifest(
            "dlist",
            &md,
            "application/vnd.docker.distribution.manifest.v2+json",
            body.as_bytes(),
        );
        Image {
            manifest: format!("{md}\n{}", body.len()),
            config: cd,
            layers: vec![ld],
        }
    };
    let d1 = docker_image("amd64");
    let d2 = docker_image("arm64");
    let entry = |img: &Image, arch: &str| {
        let (d, size) = img.manifest.split_once('\n').unwrap();
        format!(
            r#"{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{d}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
        )
    };
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{},{}]}}"#,
        entry(&d1, "amd64"),
        entry(&d2, "arm64")
    );
    reg.put_manifest(
        "dlist",
        "v1",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        list.as_bytes(),
    );

    let mut bug = IndexBug::default();
    let _ = (amd, arm);
    for img in &oci_children {
        bug.manifests.push(img.manifest.clone());
        bug.blobs.insert(img.config.clone());
        bug.blobs.extend(img.layers.iter().cloned());
    }
    for img in [&d1, &d2] {
        bug.manifests
            .push(img.manifest.split_once('\n').unwrap().0.to_owned());
        bug.blobs.insert(img.config.clone());
        bug.blobs.extend(img.layers.iter().cloned());
    }
    compare(
        "oci-index+docker-list",
        &mut reg,
        bug,
        &[("multi", "multi"), ("dlist", "v1")],
    );
}

fn upload_in_progress_is_left_alone(store: Store) {
    if !tools_present() {
        return;
    }
    let Some(mut reg) = Registry::start(store) else {
        return;
    };
    push_image(&reg, "up", "v1", &[&rand_bytes("x")]);
    let (st, h, _) = reg.http("POST", "/v2/up/blobs/uploads/", &[], b"");
    assert_eq!(st, 202);
    let loc = Registry::header(&h, "location");
    let loc = loc
        .strip_prefix(&format!("http://127.0.0.1:{}", reg.port))
        .unwrap_or(&loc)
        .to_owned();
    let (st, _, _) = reg.http(
        "PATCH",
        &loc,
        &[("Content-Type", "application/octet-stream")],
        &rand_bytes("partial"),
    );
    assert_eq!(st, 202);
    let uploads = "/docker/registry/v2/repositories/up/_uploads";
    let before = reg.walk(uploads);
    assert_eq!(reg.ls(uploads).len(), 1, "{before:?}");
    compare("upload", &mut reg, IndexBug::default(), &[("up", "v1")]);
    assert_eq!(reg.walk(uploads), before, "gc touched _uploads");
}

/// The scenarios, as `#[ignore]`d tests on one store.
macro_rules! scenarios {
    ($module:ident, $store:expr) => {
        mod $module {
            #[test]
            #[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
            fn shared_layers_and_manifest_deleted_by_digest() {
                super::shared_layers_and_manifest_deleted_by_digest($store)
            }

            #[test]
            #[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
            fn tag_moved_and_only_tag_deleted() {
                super::tag_moved_and_only_tag_deleted($store)
            }

            #[test]
            #[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
            fn oci_index_and_docker_manifest_list() {
                super::oci_index_and_docker_manifest_list($store)
            }

            #[test]
            #[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
            fn upload_in_progress_is_left_alone() {
                super::upload_in_progress_is_left_alone($store)
            }
        }
    };
}

scenarios!(fs, super::Store::Fs);
scenarios!(s3, super::Store::S3);

/// Sets every file's modification time below `dir` to `age` ago, so gc with its default
/// `--min-age` sees the seeded state as old (a filesystem store only).
fn backdate(dir: &std::path::Path, age: Duration) {
    let when = std::time::SystemTime::now() - age;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            backdate(&p, age);
        } else {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
    }
}

/// What a live run did: the images pushed (repository, manifest digest), and the gc runs beside
/// them with the blobs they deleted.
struct LiveRun {
    pushed: Vec<(String, String)>,
    gc_runs: usize,
    gc_deleted: u64,
}

/// Two threads push generated images with skopeo through `reg` until `deadline` (repositories
/// `live/{a,b,c}`, a base layer from `bases`, a layer shared by all of a worker's pushes, a
/// fresh unique layer; tags `t0`/`t1` moved on every push), while this thread runs
/// `regstore --json` with `gc_args(i)` for run `i`, in a loop until `deadline` and until two
/// runs (so both kinds of a loop that alternates) have started after `gc_until`. Every gc run
/// must succeed.
fn pushes_beside_gc(
    reg: &Registry,
    deadline: Instant,
    gc_until: Instant,
    bases: [&[u8]; 2],
    gc_args: impl Fn(usize) -> Vec<&'static str>,
) -> LiveRun {
    let pushed = std::sync::Mutex::new(Vec::<(String, String)>::new());
    let mut gc_runs = 0usize;
    let mut gc_deleted = 0u64;
    std::thread::scope(|s| {
        for w in 0..2usize {
            let pushed = &pushed;
            s.spawn(move || {
                let shared = rand_bytes(&format!("live-shared-{w}"));
                let mut i = 0usize;
                while Instant::now() < deadline {
                    let repo = format!("live/{}", ["a", "b", "c"][(i + w) % 3]);
                    let tag = format!("t{}", i % 2);
                    let base = bases[(i + w) % 2];
                    let mut l = OciLayout::new();
                    let (img, body) = l.image(&[base, &shared, &rand_bytes("unique")], "amd64");
                    l.name(
                        &tag,
                        "application/vnd.oci.image.manifest.v1+json",
                        &img.manifest,
                        body.len(),
                    );
                    let d = l.push_digest(&tag, &reg.target(&repo, &tag));
                    pushed.lock().unwrap().push((repo, d));
                    i += 1;
                }
            });
        }
        let mut i = 0;
        let mut started_after = 0;
        while Instant::now() < deadline || started_after < 2 {
            started_after += usize::from(Instant::now() > gc_until);
            let mut args = vec!["--json"];
            args.extend(gc_args(i));
            let out = regstore(reg, &args);
            assert!(
                out.status.success(),
                "live gc run {i} ({args:?}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            gc_deleted += doc["deleted"]["blobs"].as_u64().unwrap();
            gc_runs += 1;
            i += 1;
        }
    });
    LiveRun {
        pushed: pushed.into_inner().unwrap(),
        gc_runs,
        gc_deleted,
    }
}

/// The end of a live test: every image in `all` (repository, tag or digest) pulls with skopeo,
/// four pulls at a time; `regstore fsck` finds nothing wrong; distribution finds nothing
/// unreferenced.
fn nothing_lost(reg: &Registry, all: &[(String, String)]) {
    let pulled = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for (k, chunk) in all.chunks(all.len().div_ceil(4)).enumerate() {
            let pulled = &pulled;
            s.spawn(move || {
                for (n, (repo, reference)) in chunk.iter().enumerate() {
                    let src = if reference.starts_with("sha256:") {
                        format!("docker://127.0.0.1:{}/{repo}@{reference}", reg.port)
                    } else {
                        reg.target(repo, reference)
                    };
                    let out = Command::new("skopeo")
                        .args(["copy", "--src-tls-verify=false", "--quiet"])
                        .arg(&src)
                        .arg(format!(
                            "oci:{}:x",
                            pulled.path().join(format!("{k}-{n}")).display()
                        ))
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "pull {src} after live gc: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    let fsck = regstore(reg, &["fsck"]);
    assert!(
        fsck.status.success(),
        "fsck after live gc: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let after = distribution_gc(reg, false);
    assert!(
        after.blobs.is_empty() && after.manifests.is_empty(),
        "distribution finds garbage after the live run: {after:?}"
    );
}

fn live_seconds() -> u64 {
    var("REGSTORE_GC_LIVE_SECONDS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

/// A Go registry on `store` holding the two base images every live test keeps (`base:one`,
/// `base:two`, whose layers the pushes reuse), or `None` when a tool or the server is missing
/// (a skip outside CI).
fn live_registry(store: Store) -> Option<(Registry, [Vec<u8>; 2])> {
    if !tools_present() {
        return None;
    }
    let reg = Registry::start(store)?;
    let bases = [rand_bytes("base1"), rand_bytes("base2")];
    push_image(&reg, "base", "one", &[&bases[0]]);
    push_image(&reg, "base", "two", &[&bases[1]]);
    Some((reg, bases))
}

/// Garbage that needs no `-m`, in `old/y`: an image on `base` deleted by digest (its manifest
/// blob, config and layer are referenced by nothing) and a blob uploaded by a push that never
/// sent its manifest.
fn seed_unreferenced(reg: &Registry, base: &[u8]) {
    let gone = push_image(reg, "old/y", "gone", &[base, &rand_bytes("y")]);
    reg.delete_manifest("old/y", &gone.manifest);
    reg.put_blob("old/y", &rand_bytes("orphan"));
}

/// What a dry run at `--min-age 0s` (with `-m` or not) finds once a second has passed, so the
/// seeded state is older than its start; it must be `want` (blobs, manifests).
fn seeded_garbage(reg: &Registry, m: bool, want: (usize, usize)) -> Sets {
    std::thread::sleep(Duration::from_millis(1100));
    let garbage = regstore_gc(reg, m, true);
    assert_eq!(
        (garbage.blobs.len(), garbage.manifests.len()),
        want,
        "seeded garbage: {garbage:?}"
    );
    garbage
}

/// The end of a live test: enough happened, the gc loop deleted exactly the blobs of `garbage`
/// (`present(d)` tells whether blob `d` is still stored), and [`nothing_lost`] holds for every
/// pushed image and both base tags.
fn finish_live(
    reg: &Registry,
    what: &str,
    run: LiveRun,
    garbage: &Sets,
    present: impl Fn(&str) -> bool,
) {
    eprintln!(
        "live ({what}): {} pushes in {} s beside {} gc runs that deleted {} blobs",
        run.pushed.len(),
        live_seconds(),
        run.gc_runs,
        run.gc_deleted
    );
    assert!(
        run.gc_runs >= 2 && run.pushed.len() >= 10,
        "{what}: too little happened"
    );
    assert_eq!(
        run.gc_deleted,
        garbage.blobs.len() as u64,
        "{what}: the old garbage, and only it, was deleted"
    );
    for d in &garbage.blobs {
        assert!(!present(d), "{what}: old garbage blob {d} survived");
    }
    let mut all = run.pushed;
    all.push(("base".into(), "one".into()));
    all.push(("base".into(), "two".into()));
    nothing_lost(reg, &all);
}

/// Prints what a failing S3 test needs to be understood: a second dry run (was the first a
/// transient answer?) and what a walk of the store finds.
fn explain(reg: &Registry, what: &str) {
    let again = regstore(reg, &["--json", "gc", "--dry-run", "-m", "--min-age", "0s"]);
    eprintln!(
        "{what}: a second dry run says {}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    let tree = regstore(reg, &["walk", "/docker/registry/v2"]);
    eprintln!(
        "{what}: a walk finds {} entries:\n{}",
        tree.stdout.iter().filter(|&&b| b == b'\n').count(),
        String::from_utf8_lossy(&tree.stdout)
    );
}

/// Live safety on the filesystem: skopeo pushes keep running through the Go registry
/// ([`pushes_beside_gc`]) while `regstore gc -m` runs in a loop with the default `--min-age`
/// and with `--min-age 10m`. The store starts with old garbage of every kind (backdated by two
/// days), which the loop must delete. At the end every pushed image still pulls with skopeo by
/// digest (including those whose tag moved on), the old garbage is gone, `regstore fsck` finds
/// nothing wrong, and distribution finds nothing unreferenced. `REGSTORE_GC_LIVE_SECONDS` sets
/// how long pushes run (default 30).
#[test]
#[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
fn live_gc_beside_pushes() {
    // The old state: two base layers kept by tagged images, and garbage of every kind.
    let Some((reg, [b1, b2])) = live_registry(Store::Fs) else {
        return;
    };
    push_image(&reg, "old/x", "t", &[&b1, &rand_bytes("x1")]);
    push_image(&reg, "old/x", "t", &[&b1, &rand_bytes("x2")]); // moved: x1 untagged
    seed_unreferenced(&reg, &b2);
    let garbage = seeded_garbage(&reg, true, (7, 1));
    let data = reg.dir.path().join("data");
    backdate(&data, Duration::from_secs(48 * 3600));
    let blob_file = |d: &str| {
        let hex = &d["sha256:".len()..];
        data.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    };

    let deadline = Instant::now() + Duration::from_secs(live_seconds());
    let run = pushes_beside_gc(&reg, deadline, deadline, [&b1, &b2], |i| {
        let mut args = vec!["gc", "-m", "--jobs", "4"];
        if i % 2 == 1 {
            args.extend(["--min-age", "10m"]);
        }
        args
    });
    finish_live(&reg, "filesystem", run, &garbage, |d| blob_file(d).exists());
}

/// Live safety on S3 (RGW, flat listings): as [`live_gc_beside_pushes`], but S3 sets every
/// object's modification time itself, so the seeded garbage cannot be backdated. It ages
/// instead: the loop alternates `regstore gc --min-age 20s` (it deletes what nothing references
/// once it is 20 s old, while pushes run — a push's blobs wait under a second for their
/// manifest) with `gc -m` at the default `--min-age` (it marks and deletes nothing young), and
/// runs until a run of each kind has started after the garbage turned 20 s. Untagged revisions
/// are not garbage without `-m`, so every pushed image must still pull by digest, the garbage
/// ([`seed_unreferenced`]: 4 blobs) must be gone, and nothing else may have been deleted.
#[test]
#[ignore = "needs docker-registry, skopeo and RGW; run by `cargo xtask gc-diff`"]
fn s3_live_gc_beside_pushes() {
    let Some((reg, [b1, b2])) = live_registry(Store::S3) else {
        return;
    };
    seed_unreferenced(&reg, &b2);
    let seeded = Instant::now();
    let garbage = seeded_garbage(&reg, false, (4, 0));

    let deadline = Instant::now() + Duration::from_secs(live_seconds());
    // One second past 20 s, for the clocks of the test and of the server.
    let aged = seeded + Duration::from_secs(21);
    let run = pushes_beside_gc(&reg, deadline, aged, [&b1, &b2], |i| {
        if i % 2 == 0 {
            vec!["gc", "--min-age", "20s", "--jobs", "4"]
        } else {
            vec!["gc", "-m", "--jobs", "4"]
        }
    });
    let blobs = reg.walk("/docker/registry/v2/blobs");
    finish_live(&reg, "S3", run, &garbage, |d| {
        blobs.contains(&d["sha256:".len()..])
    });
}

/// A store failure in the middle of a sweep on RGW: `regstore gc -m` runs through the fault
/// proxy with no retries and a connection budget that runs out a few requests into the sweep
/// (the budget is the request count of a dry run of the same plan, plus 1, 2, 3, 6 and 15; the
/// batched sweep is one DeleteObjects per step, so every cut after the first may outlast it),
/// so S3
/// answers nothing more — a partition. After each cut-off run the store must be consistent
/// (`regstore fsck` directly on RGW finds nothing); an undisturbed run then finishes, every
/// kept tag pulls, and neither collector finds anything left.
#[test]
#[ignore = "needs docker-registry, skopeo and RGW; run by `cargo xtask gc-diff`"]
fn s3_sweep_cut_off_midway() {
    if !tools_present() {
        return;
    }
    let Some(reg) = Registry::start(Store::S3) else {
        return;
    };
    let e = s3_env().expect("S3 server");
    let base = rand_bytes("base");
    for n in 1..=3 {
        push_image(&reg, "app", "latest", &[&base, &rand_bytes(&n.to_string())]);
    }
    let gone = push_image(&reg, "other", "v1", &[&base, &rand_bytes("o")]);
    reg.delete_manifest("other", &gone.manifest);
    push_image(&reg, "other", "v2", &[&base]);
    reg.put_blob("other", &rand_bytes("orphan"));
    std::thread::sleep(Duration::from_millis(1100));
    let want = regstore_gc(&reg, true, true);
    if (want.blobs.len(), want.manifests.len()) != (10, 2) {
        explain(&reg, "unexpected garbage");
    }
    assert_eq!(
        (want.blobs.len(), want.manifests.len()),
        (10, 2),
        "the garbage (2 untagged images, 1 deleted, 1 orphan blob): {want:?}"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let upstream: std::net::SocketAddr = e
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("RGW endpoint is http://127.0.0.1:<port>");
    let config = std::fs::read_to_string(reg.config()).unwrap();
    // A proxy accepting `budget` connections (one request each) and a config that uses it,
    // with retries off so the first refused connection is the run's error.
    let through = |budget: u64| {
        let proxy = rt
            .block_on(regstore_fault_proxy::FaultProxy::start(
                regstore_fault_proxy::ProxyConfig::new(upstream).with_max_connections(budget),
            ))
            .unwrap();
        let cfg = reg.dir.path().join(format!("through-{budget}.yml"));
        std::fs::write(
            &cfg,
            config
                .replace(&e.endpoint, &proxy.endpoint())
                .replace("    v4auth:", "    maxretries: 0\n    v4auth:"),
        )
        .unwrap();
        (proxy, cfg)
    };
    let gc_via = |cfg: &std::path::Path, dry_run: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_regstore"));
        c.arg("--config")
            .arg(cfg)
            .args(["--json", "gc", "-m", "--min-age", "0s", "--jobs", "1"]);
        if dry_run {
            c.arg("--dry-run");
        }
        c.output().unwrap()
    };
    for (cut_off, extra) in [1u64, 2, 3, 6, 15].into_iter().enumerate() {
        // The requests of the plan, counted on an undisturbed dry run.
        let (proxy, cfg) = through(1_000_000);
        let out = gc_via(&cfg, true);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan_requests = proxy.counts().requests;
        drop(proxy);
        let (proxy, cfg) = through(plan_requests + extra);
        let out = gc_via(&cfg, false);
        drop(proxy);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if out.status.success() && cut_off >= 1 {
            // The remaining sweep needed fewer requests than this cut: with batched deletes it
            // is one DeleteObjects per step. The first cut must fail; every N is covered in
            // memory by registry-layout's sweep_faults test.
            eprintln!("the sweep finished within {plan_requests}+{extra} requests");
            break;
        }
        assert!(
            !out.status.success() && doc["deleted"].is_object() && doc["error"].is_string(),
            "cut {extra} requests into the sweep: exit {:?}, {doc}",
            out.status.code()
        );
        eprintln!(
            "cut-off after {plan_requests}+{extra} requests: deleted {}; {}",
            doc["deleted"], doc["error"]
        );
        let fsck = regstore(&reg, &["fsck"]);
        assert!(
            fsck.status.success(),
            "fsck after a sweep cut off {extra} requests in: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }
    let done = regstore_gc(&reg, true, false);
    assert!(done.blobs.is_subset(&want.blobs), "new garbage: {done:?}");
    let left = regstore_gc(&reg, true, true);
    assert!(
        left.blobs.is_empty() && left.manifests.is_empty(),
        "left: {left:?}"
    );
    let pulled = tempfile::tempdir().unwrap();
    for (repo, tag) in [("app", "latest"), ("other", "v2")] {
        let out = Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", "--quiet"])
            .arg(reg.target(repo, tag))
            .arg(format!("oci:{}:{tag}", pulled.path().join(repo).display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pull {repo}:{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for m in [false, true] {
        let after = distribution_gc(&reg, m);
        assert!(
            after.blobs.is_empty() && after.manifests.is_empty(),
            "distribution m={m} finds: {after:?}"
        );
    }
}
