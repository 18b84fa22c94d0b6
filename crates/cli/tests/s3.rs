//! The `regstore` binary against a real S3 server (RGW or moto) through a real `config.yml`
//! with an `s3:` section.
//!
//! The server comes from the S3 test environment contract of `regstore-test-support` (set by
//! `cargo xtask test`); without it the tests fail if `CI` is set and otherwise print
//! `skipped: <reason>`.

mod common;

use std::path::PathBuf;

use common::{content, fs_driver, tree_hashes, write_registry_tree, Sandbox};
use regstore_driver_api::Driver;
use regstore_test_support::{s3_env, unique, S3Env};

/// A root directory no other run uses (`rootdirectory` of the config and the seeding driver).
fn unique_root(test: &str) -> String {
    unique(&format!("cli-tests/{test}-"))
}

/// What these tests build from the S3 environment: a registry `config.yml` and a driver.
trait S3EnvExt {
    /// Writes a registry-style config.yml for this server and returns its path.
    fn config(&self, sb: &Sandbox, name: &str, root: &str) -> PathBuf;
    /// A driver on `root` (for seeding and verifying), with the bucket created if missing.
    async fn driver(&self, root: &str) -> (Driver, regstore_driver_s3::S3Driver);
}

impl S3EnvExt for S3Env {
    fn config(&self, sb: &Sandbox, name: &str, root: &str) -> PathBuf {
        sb.file(
            name,
            &format!(
                "version: 0.1\nstorage:\n  s3:\n    accesskey: {}\n    secretkey: {}\n    \
                 region: {}\n    regionendpoint: {}\n    bucket: {}\n    rootdirectory: /{root}\n    \
                 v4auth: {}\n    chunksize: 5242880\n  delete:\n    enabled: true\n  \
                 redirect:\n    disable: false\n",
                self.access_key,
                self.secret_key,
                self.region,
                self.endpoint,
                self.bucket,
                self.v4auth
            ),
        )
    }

    async fn driver(&self, root: &str) -> (Driver, regstore_driver_s3::S3Driver) {
        let cfg =
            regstore_driver_s3::S3Config::from_parameters(&self.params(root)).expect("S3 config");
        let s3 = regstore_driver_s3::S3Driver::new(cfg).expect("S3 driver");
        s3.ensure_bucket().await.expect("create bucket");
        (Driver::new(std::sync::Arc::new(s3.clone())), s3)
    }
}

/// Removes everything under `root` (objects and open uploads).
async fn cleanup(driver: &Driver, s3: &regstore_driver_s3::S3Driver) {
    let _ = s3.abort_uploads_under_root().await;
    match driver.delete("/docker").await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => panic!("cleanup failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_commands_on_s3() {
    let Some(env) = s3_env() else { return };
    let sb = Sandbox::new();
    let root = unique_root("files");
    let (driver, s3) = env.driver(&root).await;
    let c = env.config(&sb, "s3.yml", &root);
    let c = c.to_str().unwrap();

    let data = content(5, 6 * 1024 * 1024 + 1);
    let local = sb.path("blob");
    std::fs::write(&local, &data).unwrap();
    sb.run(&[
        "--config",
        c,
        "put",
        "/docker/a/blob",
        local.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        common::sha256_hex(
            &sb.run(&["--config", c, "cat", "/docker/a/blob"])
                .ok()
                .stdout
        ),
        common::sha256_hex(&data)
    );
    let st = sb
        .run(&["--config", c, "--json", "stat", "/docker/a/blob"])
        .ok()
        .json();
    assert_eq!(st["size"], data.len() as u64);
    let st = sb
        .run(&["--config", c, "--json", "stat", "/docker/a"])
        .ok()
        .json();
    assert_eq!(st["type"], "directory");
    assert_eq!(
        sb.run(&["--config", c, "ls", "/docker"]).ok().out(),
        "/docker/a\n"
    );
    sb.run(&["--config", c, "mv", "/docker/a/blob", "/docker/b/blob"])
        .ok();
    sb.run(&["--config", c, "stat", "/docker/a/blob"])
        .fails_with(3);
    let du = sb
        .run(&["--config", c, "--json", "du", "/docker"])
        .ok()
        .json();
    assert_eq!(du["bytes"], data.len() as u64);
    assert_eq!(du["files"], 1);

    // S3 answers with a presigned URL for the object's key.
    let url = sb.run(&["--config", c, "url", "/docker/b/blob"]).ok().out();
    assert!(
        url.starts_with(&env.endpoint) && url.contains(&format!("{root}/docker/b/blob")),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-Signature=") || url.contains("Signature="),
        "{url}"
    );

    let line = sb.run(&["--config", c, "rm", "/docker/b"]).fails_with(2);
    assert!(line.contains("directory"), "{line}");
    sb.run(&["--config", c, "rm", "-r", "/docker"]).ok();
    sb.run(&["--config", c, "stat", "/docker/b/blob"])
        .fails_with(3);
    cleanup(&driver, &s3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_filesystem_to_s3_and_back_preserves_every_byte() {
    let Some(env) = s3_env() else { return };
    let sb = Sandbox::new();
    let root = unique_root("cp");
    let (s3_driver, s3) = env.driver(&root).await;

    let src = fs_driver(&sb.path("src"));
    let expected = write_registry_tree(&src).await;
    let from = sb.fs_config("fs.yml", "src");
    let to = env.config(&sb, "s3.yml", &root);
    let back = sb.fs_config("back.yml", "back");

    let up = sb
        .run(&[
            "--json",
            "cp",
            "--from",
            from.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(up["copied"], expected.len() as u64);
    assert_eq!(up["failed"], 0);
    assert_eq!(tree_hashes(&s3_driver).await, expected);

    // Resumable against S3 too.
    let again = sb
        .run(&[
            "--json",
            "cp",
            "--from",
            from.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(again["copied"], 0);
    assert_eq!(again["skipped"], expected.len() as u64);

    let down = sb
        .run(&[
            "--json",
            "cp",
            "--from",
            to.to_str().unwrap(),
            "--to",
            back.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(down["copied"], expected.len() as u64);
    assert_eq!(tree_hashes(&fs_driver(&sb.path("back"))).await, expected);
    cleanup(&s3_driver, &s3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_on_s3_cleans_its_scratch_prefix() {
    let Some(env) = s3_env() else { return };
    let sb = Sandbox::new();
    let root = unique_root("check");
    let (driver, s3) = env.driver(&root).await;
    driver
        .put_content("/docker/registry/v2/keep", b"keep".to_vec())
        .await
        .unwrap();
    let c = env.config(&sb, "s3.yml", &root);
    // A subset keeps the test short; the xtask runs the whole suite against S3.
    let r = sb.run(&[
        "--config",
        c.to_str().unwrap(),
        "--json",
        "check",
        "--filter",
        "write_read",
        "--no-bench",
    ]);
    let doc = r.json();
    assert_eq!(r.code, 0, "{}\n{}", r.out(), r.stderr);
    assert_eq!(doc["failed"], 0);
    assert!(doc["passed"].as_u64().unwrap() >= 5);
    // Only the registry's own data is left under the root.
    let top = driver.list("/").await.unwrap();
    assert_eq!(
        top.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["/docker"]
    );
    cleanup(&driver, &s3).await;
}

/// Leaves an incomplete multipart upload at `path`: a writer closed without commit after
/// 6 MiB (one 5 MiB part is on the server).
async fn leave_upload(driver: &Driver, path: &str) {
    let mut w = driver.writer(path, false).await.unwrap();
    w.write(content(1, 6 * 1024 * 1024)).await.unwrap();
    w.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_ls_and_abort_by_age() {
    let Some(env) = s3_env() else { return };
    let sb = Sandbox::new();
    let root = unique_root("uploads");
    let (driver, s3) = env.driver(&root).await;
    let c = env.config(&sb, "s3.yml", &root);
    let c = c.to_str().unwrap();
    let data = "/docker/registry/v2/repositories/app/_uploads/u1/data";
    leave_upload(&driver, data).await;
    leave_upload(&driver, "/docker/elsewhere").await;

    // Human listing: a header and one row per upload, with its path, id and age.
    let ids: Vec<String> = s3
        .list_incomplete_uploads(&regstore_driver_api::StoragePath::root())
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(ids.len(), 2);
    let out = sb.run(&["--config", c, "uploads", "ls"]).ok().out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].contains("UPLOAD ID") && lines[0].contains("PATH"),
        "{out}"
    );
    assert!(
        lines[1].ends_with("/docker/elsewhere") && lines[1].contains(&ids[0]),
        "{out}"
    );
    assert!(
        lines[2].ends_with(data) && lines[2].contains(&ids[1]),
        "{out}"
    );

    // JSON, restricted to a subtree: only the upload below it, with a recent start time.
    let doc = sb
        .run(&["--config", c, "--json", "uploads", "ls", "/docker/registry"])
        .ok()
        .json();
    let listed = doc["uploads"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{doc}");
    assert_eq!(listed[0]["path"], data);
    assert_eq!(listed[0]["upload_id"], ids[1].as_str());
    assert!(
        listed[0]["initiated"].as_str().unwrap().ends_with('Z'),
        "{doc}"
    );
    assert!(listed[0]["age_seconds"].as_u64().unwrap() < 600, "{doc}");
    // Nothing is an hour old yet.
    let doc = sb
        .run(&[
            "--config",
            c,
            "--json",
            "uploads",
            "ls",
            "--older-than",
            "1h",
        ])
        .ok()
        .json();
    assert_eq!(doc["uploads"].as_array().unwrap().len(), 0, "{doc}");

    // Without --all or --older-than, abort refuses to guess; a bad path is invalid input.
    let line = sb.run(&["--config", c, "uploads", "abort"]).fails_with(2);
    assert!(line.contains("--older-than"), "{line}");
    sb.run(&["--config", c, "uploads", "abort", "--all", "docker"])
        .fails_with(2);
    // clap's own usage error (several lines), also exit 2.
    let r = sb.run(&[
        "--config",
        c,
        "uploads",
        "abort",
        "--all",
        "--older-than",
        "1h",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // --older-than 1h keeps both.
    let doc = sb
        .run(&[
            "--config",
            c,
            "--json",
            "uploads",
            "abort",
            "--older-than",
            "1h",
        ])
        .ok()
        .json();
    assert_eq!(
        (doc["aborted"].as_u64(), doc["kept"].as_u64()),
        (Some(0), Some(2)),
        "{doc}"
    );
    assert_eq!(
        s3.list_incomplete_uploads(&regstore_driver_api::StoragePath::root())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(driver.writer(data, true).await.is_ok());

    // --older-than 0s below the registry tree takes exactly that one.
    let out = sb
        .run(&[
            "--config",
            c,
            "uploads",
            "abort",
            "--older-than",
            "0s",
            "/docker/registry",
        ])
        .ok()
        .out();
    assert!(
        out.contains(&format!("aborted {data} ({}", ids[1])),
        "{out}"
    );
    assert!(
        out.contains("aborted 1 incomplete multipart upload(s)"),
        "{out}"
    );
    let err = driver.writer(data, true).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let out = sb.run(&["--config", c, "uploads", "ls"]).ok().out();
    assert!(
        out.contains("/docker/elsewhere") && !out.contains(data),
        "{out}"
    );

    // --all takes the rest; afterwards the listing says there is nothing.
    let doc = sb
        .run(&["--config", c, "--json", "uploads", "abort", "--all"])
        .ok()
        .json();
    assert_eq!(doc["aborted"].as_u64(), Some(1), "{doc}");
    assert_eq!(doc["uploads"][0]["path"], "/docker/elsewhere");
    assert_eq!(doc["uploads"][0]["result"], "aborted");
    let out = sb.run(&["--config", c, "uploads", "ls"]).ok().out();
    assert!(out.starts_with("no incomplete multipart uploads"), "{out}");
    assert_eq!(s3.abort_uploads_under_root().await.unwrap(), 0);
    cleanup(&driver, &s3).await;
}
