//! `regstore gc` and `fsck` on bad input, through the binary on a filesystem store: a corrupt
//! manifest stops gc before any delete (exit 1, one stderr line naming the path) unless
//! `--skip-bad-manifests`, and fsck reports it.

mod common;

use std::path::Path;

use common::{sha256_hex, Sandbox};

const V2: &str = "docker/registry/v2";

/// Writes `bytes` as a blob under `root`; returns its digest.
fn blob(root: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    let dir = root.join(format!("{V2}/blobs/sha256/{}/{hex}", &hex[..2]));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data"), bytes).unwrap();
    format!("sha256:{hex}")
}

fn link(root: &Path, rel: &str, digest: &str) {
    let p = root.join(format!("{V2}/repositories/{rel}/link"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, digest).unwrap();
}

fn hex(d: &str) -> &str {
    &d["sha256:".len()..]
}

fn blob_path(d: &str) -> String {
    format!("/{V2}/blobs/sha256/{}/{}/data", &hex(d)[..2], hex(d))
}

#[test]
fn corrupt_manifest_stops_gc_before_any_delete_unless_skipped() {
    let sb = Sandbox::new();
    let cfg = sb.fs_config("config.yml", "data").display().to_string();
    let root = sb.path("data");
    // A good tagged image.
    let layer = blob(&root, b"layer");
    let config = blob(&root, b"{}");
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"{config}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":5,"digest":"{layer}"}}]}}"#
    );
    let good = blob(&root, body.as_bytes());
    for d in [&layer, &config] {
        link(&root, &format!("good/_layers/sha256/{}", hex(d)), d);
    }
    link(
        &root,
        &format!("good/_manifests/revisions/sha256/{}", hex(&good)),
        &good,
    );
    link(&root, "good/_manifests/tags/v1/current", &good);
    // Garbage that a successful run would delete: an orphan blob and an untagged manifest.
    let orphan = blob(&root, b"orphan");
    let untagged = blob(
        &root,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#,
    );
    link(
        &root,
        &format!("good/_manifests/revisions/sha256/{}", hex(&untagged)),
        &untagged,
    );
    // A corrupt manifest (truncated JSON), tagged in its own repository.
    let bad = blob(
        &root,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.im"#,
    );
    link(
        &root,
        &format!("bad/_manifests/revisions/sha256/{}", hex(&bad)),
        &bad,
    );
    link(&root, "bad/_manifests/tags/t/current", &bad);
    std::thread::sleep(std::time::Duration::from_millis(50));

    let exists = |d: &str| root.join(&blob_path(d)[1..]).exists();
    let revision = |d: &str| {
        root.join(format!(
            "{V2}/repositories/good/_manifests/revisions/sha256/{}",
            hex(d)
        ))
        .exists()
    };
    for extra in [
        &[][..],
        &["-m"][..],
        &["--dry-run"][..],
        &["--jobs", "1"][..],
    ] {
        let mut args = vec!["--config", &cfg, "gc", "--min-age", "0s"];
        args.extend_from_slice(extra);
        let line = sb.run(&args).fails_with(1);
        assert!(line.contains(&blob_path(&bad)), "{extra:?}: {line}");
        assert!(exists(&orphan) && revision(&untagged), "{extra:?} deleted");
    }
    // --json: the error is also a JSON document on stdout.
    let run = sb.run(&["--config", &cfg, "--json", "gc", "--min-age", "0s"]);
    let line = run.fails_with(1);
    assert!(line.contains(&blob_path(&bad)), "{line}");
    let doc = run.json();
    assert_eq!(doc["exit_code"], 1);
    assert!(doc["error"].as_str().unwrap().contains(&blob_path(&bad)));
    assert!(exists(&orphan));

    // fsck names it too (exit 1, nothing modified).
    let run = sb.run(&["--config", &cfg, "--json", "fsck"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let problems = run.json()["problems"].clone();
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "bad-manifest" && p["path"] == blob_path(&bad).as_str()),
        "{problems}"
    );

    // With --skip-bad-manifests the run goes on: the garbage goes, the good image and the
    // unreadable manifest stay, and the skipped manifest is named on stderr.
    let run = sb
        .run(&[
            "--config",
            &cfg,
            "gc",
            "-m",
            "--min-age",
            "0s",
            "--skip-bad-manifests",
        ])
        .ok();
    assert!(
        run.stderr.contains(&blob_path(&bad)) && run.stderr.contains("skipped"),
        "{}",
        run.stderr
    );
    assert!(!exists(&orphan) && !revision(&untagged), "garbage stayed");
    for d in [&good, &layer, &config, &bad] {
        assert!(exists(d), "{d} deleted");
    }
    assert!(revision(&good));
}
