//! Differential tests of `regstore gc` against distribution's own `garbage-collect` (Debian's
//! `docker-registry` 2.8.2) on the filesystem backend: a real Go registry on 127.0.0.1, images
//! pushed with skopeo from OCI layouts written here (and Docker manifests PUT over the API),
//! deletes through the registry API. For every scenario both collectors run in dry-run mode,
//! with and without `-m`, and the eligible sets must be equal — except for distribution
//! #3178 (with `-m`, 2.8.2 frees the children of a tagged index), which is asserted as the one
//! expected difference. Then a real `regstore gc -m` runs while the registry keeps serving;
//! every kept tag must still pull with skopeo, distribution must find nothing left to free,
//! and `regstore fsck` must find nothing wrong.
//!
//! Needs `docker-registry` and `skopeo`, so the tests are `#[ignore]`d in a plain `cargo test`
//! (reported as ignored, never as passed); `cargo xtask gc-diff` installs the tools and runs them
//! with `--include-ignored`. Without the tools a test prints `skipped: …`, unless `CI` is set:
//! then it fails.

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

/// A Go registry on a free loopback port with a filesystem root in a temp dir.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let mut r = Registry {
            dir,
            port,
            child: None,
        };
        r.serve();
        r
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2")
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
                let tree = Command::new("find").arg(reg.data()).output().unwrap();
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

#[test]
#[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
fn shared_layers_and_manifest_deleted_by_digest() {
    if !tools_present() {
        return;
    }
    let mut reg = Registry::start();
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

#[test]
#[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
fn tag_moved_and_only_tag_deleted() {
    if !tools_present() {
        return;
    }
    let mut reg = Registry::start();
    let base = rand_bytes("base");
    push_image(&reg, "app", "latest", &[&base, &rand_bytes("1")]);
    push_image(&reg, "app", "latest", &[&base, &rand_bytes("2")]); // moved
    push_image(&reg, "app", "stable", &[&base]);
    // An image whose only tag was deleted: distribution's tag delete removes tags/<tag>.
    let lone = push_image(&reg, "lone", "only", &[&rand_bytes("lone")]);
    push_image(&reg, "lone", "keep", &[&rand_bytes("keep")]);
    std::fs::remove_dir_all(reg.data().join("repositories/lone/_manifests/tags/only")).unwrap();
    assert!(!lone.manifest.is_empty());
    compare(
        "moved+untagged",
        &mut reg,
        IndexBug::default(),
        &[("app", "latest"), ("app", "stable"), ("lone", "keep")],
    );
}

#[test]
#[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
fn oci_index_and_docker_manifest_list() {
    if !tools_present() {
        return;
    }
    let mut reg = Registry::start();
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

#[test]
#[ignore = "needs docker-registry and skopeo; run by `cargo xtask gc-diff`"]
fn upload_in_progress_is_left_alone() {
    if !tools_present() {
        return;
    }
    let mut reg = Registry::start();
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
    let uploads = reg.data().join("repositories/up/_uploads");
    assert!(std::fs::read_dir(&uploads).unwrap().count() == 1);
    compare("upload", &mut reg, IndexBug::default(), &[("up", "v1")]);
    assert_eq!(
        std::fs::read_dir(&uploads).unwrap().count(),
        1,
        "gc touched _uploads"
    );
}
