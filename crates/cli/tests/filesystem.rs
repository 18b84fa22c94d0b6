//! The `regstore` binary against the filesystem backend, configured by a real `config.yml`.

mod common;

use common::{content, fs_driver, sha256_hex, tree_hashes, write_registry_tree, Sandbox};

fn cfg(sb: &Sandbox) -> String {
    sb.fs_config("config.yml", "data").display().to_string()
}

#[test]
fn put_cat_stat_ls_roundtrip() {
    let sb = Sandbox::new();
    let c = cfg(&sb);
    // Larger than the 4 MiB write chunk, so put streams it in several pieces.
    let data = content(7, 9 * 1024 * 1024 + 3);
    let local = sb.path("big.bin");
    std::fs::write(&local, &data).unwrap();
    let put = sb
        .run(&[
            "--config",
            &c,
            "--json",
            "put",
            "/a/b/big",
            local.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(put["size"], data.len() as u64);

    let cat = sb.run(&["--config", &c, "cat", "/a/b/big"]).ok();
    assert_eq!(cat.stdout.len(), data.len());
    assert_eq!(sha256_hex(&cat.stdout), sha256_hex(&data));

    // stdin, and `-` for stdin.
    sb.run_with(&["--config", &c, "put", "/a/small"], &[], Some(b"hello\n"))
        .ok();
    sb.run_with(&["--config", &c, "put", "/a/dash", "-"], &[], Some(b"dash"))
        .ok();
    assert_eq!(
        sb.run(&["--config", &c, "cat", "/a/small"]).ok().stdout,
        b"hello\n"
    );
    assert_eq!(
        sb.run(&["--config", &c, "cat", "/a/dash"]).ok().stdout,
        b"dash"
    );

    let st = sb
        .run(&["--config", &c, "--json", "stat", "/a/b/big"])
        .ok()
        .json();
    assert_eq!(st["type"], "file");
    assert_eq!(st["size"], data.len() as u64);
    assert!(st["mod_time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let st = sb
        .run(&["--config", &c, "--json", "stat", "/a"])
        .ok()
        .json();
    assert_eq!(st["type"], "directory");
    let human = sb.run(&["--config", &c, "stat", "/a/small"]).ok().out();
    assert!(human.contains("size:     6"), "{human}");

    let ls = sb.run(&["--config", &c, "ls", "/a"]).ok().out();
    assert_eq!(ls, "/a/b\n/a/dash\n/a/small\n");
    let ls = sb
        .run(&["--config", &c, "--json", "ls", "-l", "/a"])
        .ok()
        .json();
    let entries = ls["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["path"], "/a/b");
    assert_eq!(entries[0]["type"], "directory");
    assert_eq!(entries[2]["size"], 6);
    // ls of a file shows the file.
    let ls = sb.run(&["--config", &c, "ls", "-l", "/a/small"]).ok().out();
    assert!(ls.contains("/a/small") && ls.contains(" 6 "), "{ls}");
    // ls -R shows everything below, directories marked.
    let ls = sb.run(&["--config", &c, "ls", "-R", "/"]).ok().out();
    assert_eq!(ls, "/a/\n/a/b/\n/a/b/big\n/a/dash\n/a/small\n");
}

#[test]
fn mv_rm_walk_du_url() {
    let sb = Sandbox::new();
    let c = cfg(&sb);
    for (p, body) in [
        ("/r/x/1", "one"),
        ("/r/x/2", "two!"),
        ("/r/y/3", "three"),
        ("/r/z", ""),
    ] {
        sb.run_with(&["--config", &c, "put", p], &[], Some(body.as_bytes()))
            .ok();
    }
    sb.run(&["--config", &c, "mv", "/r/z", "/r/y/moved"]).ok();
    assert_eq!(
        sb.run(&["--config", &c, "stat", "/r/z"]).fails_with(3),
        "regstore: filesystem: Path not found: /r/z"
    );

    let walk = sb
        .run(&["--config", &c, "--json", "walk", "/r"])
        .ok()
        .json();
    let paths: Vec<&str> = walk["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/r/x", "/r/x/1", "/r/x/2", "/r/y", "/r/y/3", "/r/y/moved"]
    );
    let walk = sb
        .run(&[
            "--config",
            &c,
            "--json",
            "walk",
            "--start-after",
            "/r/x/2",
            "/r",
        ])
        .ok()
        .json();
    let paths: Vec<&str> = walk["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/r/y", "/r/y/3", "/r/y/moved"]);

    let du = sb.run(&["--config", &c, "--json", "du", "/r"]).ok().json();
    assert_eq!(du["bytes"], 3 + 4 + 5);
    assert_eq!(du["files"], 4);
    assert_eq!(du["directories"], 2);
    let du = sb.run(&["--config", &c, "du"]).ok().out();
    assert!(du.contains("12 bytes") && du.contains("4 files"), "{du}");

    // The filesystem backend has no redirects: said clearly, exit 0.
    let url = sb.run(&["--config", &c, "url", "/r/x/1"]).ok().out();
    assert!(url.starts_with("no redirect: "), "{url}");
    let url = sb
        .run(&[
            "--config", &c, "--json", "url", "--method", "HEAD", "/r/x/1",
        ])
        .ok()
        .json();
    assert_eq!(url["redirect"], false);
    assert_eq!(url["method"], "HEAD");
    assert!(url["url"].is_null());

    // rm refuses a directory without -r and leaves it intact.
    let line = sb.run(&["--config", &c, "rm", "/r/x"]).fails_with(2);
    assert!(
        line.contains("/r/x is a directory") && line.contains("-r"),
        "{line}"
    );
    sb.run(&["--config", &c, "stat", "/r/x/1"]).ok();
    sb.run(&["--config", &c, "rm", "/r/x/1"]).ok();
    sb.run(&["--config", &c, "rm", "-r", "/r/x"]).ok();
    sb.run(&["--config", &c, "stat", "/r/x"]).fails_with(3);
    sb.run(&["--config", &c, "stat", "/r/y/3"]).ok();
}

#[test]
fn missing_and_invalid_paths_have_distinct_exit_codes() {
    let sb = Sandbox::new();
    let c = cfg(&sb);
    sb.run_with(&["--config", &c, "put", "/there"], &[], Some(b"x"))
        .ok();
    for args in [
        &["stat", "/missing"][..],
        &["cat", "/missing"],
        &["ls", "/missing"],
        &["rm", "/missing"],
        &["mv", "/missing", "/elsewhere"],
        &["url", "/missing"],
        &["walk", "/missing"],
        &["du", "/missing"],
    ] {
        let mut full = vec!["--config", c.as_str()];
        full.extend_from_slice(args);
        let line = sb.run(&full).fails_with(3);
        assert!(line.contains("/missing"), "{args:?}: {line}");
    }
    sb.run(&["--config", &c, "stat", "/elsewhere"])
        .fails_with(3);
    for bad in ["relative", "/a/../b", "/a b", "/a/"] {
        let line = sb.run(&["--config", &c, "stat", bad]).fails_with(2);
        assert!(line.contains("invalid path"), "{bad}: {line}");
    }
    // --json errors are one JSON document with the exit code.
    let r = sb.run(&["--config", &c, "--json", "stat", "/missing"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.json()["exit_code"], 3);
    // A missing local file for put is not found too.
    sb.run(&["--config", &c, "put", "/p", "/nonexistent/file"])
        .fails_with(3);
    // Unknown command line: clap's usage error, exit 2.
    assert_eq!(sb.run(&["frobnicate"]).code, 2);
}

#[test]
fn embedded_default_and_env_overrides() {
    let sb = Sandbox::new();
    // No config at all: the embedded filesystem backend in REGSTORE_DATA_DIR, created on demand.
    sb.run_with(&["put", "/docker/x"], &[], Some(b"default"))
        .ok();
    assert_eq!(
        std::fs::read(sb.path("default-data/docker/x")).unwrap(),
        b"default"
    );
    // XDG_DATA_HOME when REGSTORE_DATA_DIR is not set.
    let xdg = sb.path("xdg");
    let r = {
        let mut cmd = std::process::Command::new(common::BIN);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("REGISTRY_") || k.starts_with("REGSTORE_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("XDG_DATA_HOME", &xdg)
            .args(["--json", "du"])
            .output()
            .unwrap()
    };
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(xdg.join("regstore").is_dir());

    // REGSTORE_CONFIG names the file; REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY overrides it.
    let c = cfg(&sb);
    let other = sb.path("other-root");
    sb.run_with(
        &["put", "/o"],
        &[
            ("REGSTORE_CONFIG", &c),
            (
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
                other.to_str().unwrap(),
            ),
        ],
        Some(b"o"),
    )
    .ok();
    assert_eq!(std::fs::read(other.join("o")).unwrap(), b"o");
    sb.run_with(&["stat", "/o"], &[("REGSTORE_CONFIG", &c)], None)
        .fails_with(3);
    // REGISTRY_STORAGE switches backends (inmemory: nothing persists, the root is empty).
    let r = sb
        .run_with(
            &["--config", &c, "--json", "ls", "/"],
            &[("REGISTRY_STORAGE", "inmemory")],
            None,
        )
        .ok()
        .json();
    assert_eq!(r["entries"].as_array().unwrap().len(), 0);
    // A variable for another backend than the configured one names itself.
    let line = sb
        .run_with(
            &["--config", &c, "ls", "/"],
            &[("REGISTRY_STORAGE_S3_BUCKET", "b")],
            None,
        )
        .fails_with(2);
    assert!(line.contains("REGISTRY_STORAGE_S3_BUCKET"), "{line}");
}

#[test]
fn bad_configs_exit_2_with_one_line_naming_the_key() {
    let sb = Sandbox::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "storage:\n  floppy:\n    size: 3\n",
            "storage.floppy",
            "unknown backend",
        ),
        (
            "storage:\n  filesystem:\n    rootdirectory: /tmp/x\n  s3:\n    bucket: b\n",
            "storage",
            "filesystem, s3",
        ),
        (
            "storage:\n  filesystem:\n    rootdirectory: /tmp/x\n    maxthreads: lots\n",
            "storage.filesystem.maxthreads",
            "\"lots\"",
        ),
        (
            "storage:\n  filesystem:\n    rootdirectory: /tmp/x\n    maxthreads: 3\n",
            "storage.filesystem.maxthreads",
            "between",
        ),
        (
            "storage:\n  s3:\n    bucket: b\n    region: us-east-1\n    chunksize: 1024\n",
            "storage.s3.chunksize",
            "chunksize",
        ),
        (
            "storage:\n  delete:\n    enabled: true\n",
            "storage",
            "no backend",
        ),
        ("http:\n  addr: :5000\n", "storage", "missing"),
        ("storage: [\n", "yaml", ""),
        (
            "storage:\n  inmemory:\nmiddleware:\n  storage:\n    - name: teleport\n",
            "middleware.storage[0].name",
            "teleport",
        ),
    ];
    for (i, (yaml, key, hint)) in cases.iter().enumerate() {
        let c = sb.file(&format!("bad{i}.yml"), yaml);
        let r = sb.run(&["--config", c.to_str().unwrap(), "ls", "/"]);
        let line = r.fails_with(2);
        assert!(
            line.contains(&format!(": {key}: ")) && line.contains(hint),
            "config {i} ({yaml:?}): {line}"
        );
        assert!(line.contains(c.to_str().unwrap()), "names the file: {line}");
    }
    let line = sb
        .run(&["--config", sb.path("nope.yml").to_str().unwrap(), "ls"])
        .fails_with(2);
    assert!(line.contains("nope.yml"), "{line}");
}

#[test]
fn uploads_is_unsupported_on_filesystem() {
    let sb = Sandbox::new();
    let c = cfg(&sb);
    for action in [
        &["uploads", "ls"][..],
        &["uploads", "ls", "/docker"],
        &["uploads", "abort", "--older-than", "24h"],
        &["uploads", "abort", "--all"],
    ] {
        let mut full = vec!["--config", c.as_str()];
        full.extend_from_slice(action);
        let line = sb.run(&full).fails_with(2);
        assert!(
            line.contains("filesystem") && line.contains("unsupported") && line.contains("S3"),
            "{line}"
        );
    }
    let r = sb.run(&["--config", &c, "uploads", "ls", "--older-than", "soon"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_registry_tree_preserves_bytes_and_resumes() {
    let sb = Sandbox::new();
    let src_root = sb.path("src");
    let dst_root = sb.path("dst");
    let src = fs_driver(&src_root);
    let expected = write_registry_tree(&src).await;
    assert!(expected.len() >= 20);
    let from = sb.fs_config("from.yml", "src");
    let to = sb.fs_config("to.yml", "dst");
    let args = [
        "--json",
        "cp",
        "--from",
        from.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ];

    let first = sb.run(&args).ok().json();
    let total_bytes: u64 = walk_sizes(&src).await;
    assert_eq!(first["files"], expected.len() as u64);
    assert_eq!(first["copied"], expected.len() as u64);
    assert_eq!(first["skipped"], 0);
    assert_eq!(first["failed"], 0);
    assert_eq!(first["bytes_copied"], total_bytes);

    let dst = fs_driver(&dst_root);
    assert_eq!(tree_hashes(&dst).await, expected);

    // Resumable: nothing left to copy.
    let second = sb.run(&args).ok().json();
    assert_eq!(second["copied"], 0);
    assert_eq!(second["skipped"], expected.len() as u64);

    // A lost file and a truncated one are copied again; the rest is skipped.
    let mut paths = expected.keys();
    let lost = paths.next().unwrap().clone();
    let truncated = expected
        .keys()
        .find(|p| p.contains("_uploads") && p.ends_with("/data"))
        .unwrap()
        .clone();
    dst.delete(&lost).await.unwrap();
    dst.put_content(&truncated, b"short".to_vec())
        .await
        .unwrap();
    let third = sb.run(&args).ok().json();
    assert_eq!(third["copied"], 2);
    assert_eq!(third["skipped"], expected.len() as u64 - 2);
    assert_eq!(tree_hashes(&dst).await, expected);

    // A subtree only, in human output.
    let sub_to = sb.fs_config("sub.yml", "sub");
    let out = sb
        .run(&[
            "cp",
            "--from",
            from.to_str().unwrap(),
            "--to",
            sub_to.to_str().unwrap(),
            "/docker/registry/v2/repositories/team",
        ])
        .ok()
        .out();
    assert!(out.contains("9 files: 9 copied"), "{out}");
    let sub = tree_hashes(&fs_driver(&sb.path("sub"))).await;
    assert!(sub
        .keys()
        .all(|k| k.starts_with("/docker/registry/v2/repositories/team/")));
    assert_eq!(sub.len(), 9);
}

/// Re-runs compare content, not sizes: a tag link that moved to another digest (same 71 bytes)
/// and a destination blob corrupted in place are copied again; `--size-only` skips both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_recopies_same_size_files_whose_content_differs() {
    let sb = Sandbox::new();
    let src = fs_driver(&sb.path("src"));
    let dst = fs_driver(&sb.path("dst"));
    let expected = write_registry_tree(&src).await;
    let from = sb.fs_config("from.yml", "src");
    let to = sb.fs_config("to.yml", "dst");
    let (from, to) = (from.to_str().unwrap(), to.to_str().unwrap());
    sb.run(&["--json", "cp", "--from", from, "--to", to]).ok();

    // The tag moves to another manifest digest on the source: same size, other bytes.
    let tag = "/docker/registry/v2/repositories/library/alpine/_manifests/tags/latest/current/link";
    let old = src.get_content(tag).await.unwrap();
    let other = expected
        .keys()
        .filter_map(|p| p.strip_suffix("/data"))
        .filter_map(|p| p.rsplit('/').next())
        .find(|d| d.len() == 64 && !old.ends_with(d.as_bytes()))
        .unwrap()
        .to_owned();
    let moved = format!("sha256:{other}");
    assert_eq!(moved.len(), old.len());
    src.put_content(tag, moved.clone().into_bytes())
        .await
        .unwrap();
    // A destination blob rots in place: same size, one byte flipped.
    let blob = blob_of_size(&src, &expected, 1000).await;
    let mut rotten = dst.get_content(&blob).await.unwrap().to_vec();
    rotten[500] ^= 0x40;
    dst.put_content(&blob, rotten.clone()).await.unwrap();

    let fast = sb
        .run(&["--json", "cp", "--size-only", "--from", from, "--to", to])
        .ok()
        .json();
    assert_eq!(fast["compare"], "size");
    assert_eq!(fast["copied"], 0);
    assert_eq!(fast["skipped"], expected.len() as u64);
    assert_eq!(&dst.get_content(tag).await.unwrap()[..], &old[..]);
    assert_eq!(&dst.get_content(&blob).await.unwrap()[..], &rotten[..]);

    let full = sb
        .run(&["--json", "cp", "--from", from, "--to", to])
        .ok()
        .json();
    assert_eq!(full["compare"], "content");
    assert_eq!(full["copied"], 2, "{full}");
    assert_eq!(full["replaced"], 2, "{full}");
    assert_eq!(full["skipped"], expected.len() as u64 - 2);
    assert_eq!(&dst.get_content(tag).await.unwrap()[..], moved.as_bytes());
    assert_eq!(tree_hashes(&dst).await, tree_hashes(&src).await);

    // Human output says what was compared and how many were replaced.
    src.put_content(tag, old.clone()).await.unwrap();
    let out = sb.run(&["cp", "--from", from, "--to", to]).ok().out();
    assert!(out.contains("1 copied (71 B, 1 replacing"), "{out}");
    assert!(out.contains("already present (same content)"), "{out}");
}

/// A source blob whose bytes do not hash to the digest in its path is not copied: the file is
/// reported as failed (exit 1, the message names the path) and nothing reaches the destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_refuses_a_source_blob_that_does_not_match_its_digest() {
    let sb = Sandbox::new();
    let src = fs_driver(&sb.path("src"));
    let dst = fs_driver(&sb.path("dst"));
    let expected = write_registry_tree(&src).await;
    let blob = blob_of_size(&src, &expected, 64 * 1024).await;
    let mut bad = src.get_content(&blob).await.unwrap().to_vec();
    bad[0] ^= 1;
    src.put_content(&blob, bad).await.unwrap();
    let from = sb.fs_config("from.yml", "src");
    let to = sb.fs_config("to.yml", "dst");
    let (from, to) = (from.to_str().unwrap(), to.to_str().unwrap());

    let r = sb.run(&["--json", "cp", "--from", from, "--to", to]);
    assert_eq!(r.code, 1, "{}\n{}", r.out(), r.stderr);
    let doc = r.json();
    assert_eq!(doc["failed"], 1);
    assert_eq!(doc["copied"], expected.len() as u64 - 1);
    let msg = doc["errors"][0].as_str().unwrap();
    assert!(msg.contains(&blob) && msg.contains("corrupt"), "{msg}");
    assert!(dst.stat(&blob).await.unwrap_err().is_not_found());

    // Human output: one line per failed file naming it, then the summary; still exit 1.
    let r = sb.run(&["cp", "--from", from, "--to", to]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let line = r.stderr.lines().next().unwrap();
    assert!(
        line.starts_with("regstore: cp: ") && line.contains(&blob),
        "{line}"
    );
    assert!(dst.stat(&blob).await.unwrap_err().is_not_found());
}

/// The blob of `size` bytes among `files` (a tree from `write_registry_tree`).
async fn blob_of_size(
    d: &regstore_driver_api::Driver,
    files: &std::collections::BTreeMap<String, String>,
    size: u64,
) -> String {
    for p in files.keys().filter(|p| p.contains("/blobs/sha256/")) {
        if d.stat(p).await.unwrap().size == size {
            return p.clone();
        }
    }
    panic!("no blob of {size} bytes");
}

async fn walk_sizes(d: &regstore_driver_api::Driver) -> u64 {
    let mut total = 0;
    d.walk("/", &Default::default(), |i| {
        total += i.size;
        Ok(regstore_driver_api::WalkControl::Continue)
    })
    .await
    .unwrap();
    total
}

#[test]
fn check_runs_the_suite_in_a_scratch_root_and_cleans_up() {
    let sb = Sandbox::new();
    let c = cfg(&sb);
    // Existing registry data next to the scratch area must survive untouched.
    sb.run_with(
        &["--config", &c, "put", "/docker/registry/v2/keep"],
        &[],
        Some(b"keep"),
    )
    .ok();
    let r = sb.run(&["--config", &c, "--json", "check"]);
    let doc = r.json();
    assert_eq!(r.code, 0, "check failed: {}\n{}", r.out(), r.stderr);
    assert_eq!(doc["failed"], 0);
    let passed = doc["passed"].as_u64().unwrap();
    assert!(passed >= 30, "only {passed} cases passed");
    assert_eq!(
        doc["report"]["cases"].as_array().unwrap().len() as u64,
        passed + doc["skipped"].as_u64().unwrap()
    );
    assert!(!doc["bench"].as_array().unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(sb.path("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // The filesystem driver keeps its work area in a dot directory of the root.
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(leftovers, ["docker"], "scratch area not removed");
    assert_eq!(
        sb.run(&["--config", &c, "cat", "/docker/registry/v2/keep"])
            .ok()
            .stdout,
        b"keep"
    );
    // Human table with a filter.
    let out = sb
        .run(&["--config", &c, "check", "--no-bench", "--filter", "walk"])
        .ok()
        .out();
    assert!(out.contains("CASE") && out.contains("pass"), "{out}");
    assert!(
        out.contains("check: ") && out.contains(" 0 failed"),
        "{out}"
    );
    assert!(!out.contains("throughput"), "{out}");
    // A filter matching nothing is invalid input, not a pass.
    sb.run(&["--config", &c, "check", "--filter", "no-such-case"])
        .fails_with(2);
}

#[test]
fn bench_runs_and_cleans_up() {
    let sb = Sandbox::new();
    let c = cfg(&sb);
    let doc = sb
        .run(&[
            "--config",
            &c,
            "--json",
            "bench",
            "--filter",
            "list_",
            "--iterations",
            "2",
        ])
        .ok()
        .json();
    let names: Vec<&str> = doc["bench"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["list_5", "list_50"]);
    assert!(doc["bench"][0]["ops"].as_u64().unwrap() >= 2);
    let data = sb.path("data");
    assert!(
        !data.exists()
            || std::fs::read_dir(&data).unwrap().all(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')),
        "scratch area not removed"
    );
}

#[test]
fn url_goes_through_the_middleware_chain() {
    let sb = Sandbox::new();
    let root = sb.path("data");
    let c = sb.file(
        "mw.yml",
        &format!(
            "storage:\n  filesystem:\n    rootdirectory: {}\nmiddleware:\n  storage:\n    \
             - name: cloudfront\n      disabled: true\n      options: {{}}\n    \
             - name: redirect\n      options:\n        baseurl: https://cdn.example.com/base\n",
            root.display()
        ),
    );
    let c = c.to_str().unwrap();
    sb.run_with(&["--config", c, "put", "/docker/blob"], &[], Some(b"b"))
        .ok();
    assert_eq!(
        sb.run(&["--config", c, "url", "/docker/blob"]).ok().out(),
        "https://cdn.example.com/base/docker/blob\n"
    );
    let doc = sb
        .run(&[
            "--config",
            c,
            "--json",
            "url",
            "--method",
            "HEAD",
            "/docker/blob",
        ])
        .ok()
        .json();
    assert_eq!(doc["redirect"], true);
    assert_eq!(doc["url"], "https://cdn.example.com/base/docker/blob");
    // storage.redirect.disable wins over the chain, and says so.
    let off = sb.file(
        "off.yml",
        &format!(
            "storage:\n  filesystem:\n    rootdirectory: {}\n  redirect:\n    disable: true\n\
             middleware:\n  storage:\n    - name: redirect\n      options:\n        \
             baseurl: https://cdn.example.com/base\n",
            root.display()
        ),
    );
    let out = sb
        .run(&["--config", off.to_str().unwrap(), "url", "/docker/blob"])
        .ok()
        .out();
    assert!(
        out.starts_with("no redirect: storage.redirect.disable is true"),
        "{out}"
    );
    // A middleware option error names the entry and the option.
    let bad = sb.file(
        "badmw.yml",
        "storage:\n  inmemory:\nmiddleware:\n  storage:\n    - name: cloudfront\n      \
         options:\n        baseurl: https://d.example.net\n",
    );
    let line = sb
        .run(&["--config", bad.to_str().unwrap(), "ls", "/"])
        .fails_with(2);
    assert!(line.contains("middleware.storage[0].options."), "{line}");
}
