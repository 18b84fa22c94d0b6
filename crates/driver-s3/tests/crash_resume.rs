//! Crash safety of the S3 writer against the server of `REGSTORE_S3_*` (see `common`):
//!
//! * A process killed (SIGKILL) mid-upload — after it closed a writer at a byte count that
//!   straddles the 5 MiB part size, reopened it with `append` and written more without closing —
//!   leaves an incomplete upload that `list_incomplete_uploads` shows, and a new process's
//!   `writer(path, append = true)` resumes at exactly the bytes closed before the kill; the
//!   committed object's SHA-256 is that of the closed bytes followed by the new ones.
//! * If the child had handed a full part to an upload task after the reopen, the resumed size
//!   is still exactly the closed bytes, whether the kill came before or after that part reached
//!   S3: the upload's tail record names the part number the closed content ends before, and a
//!   resume ignores parts from there on. The committed object is exactly the closed bytes and
//!   the new ones, SHA-256 checked.
//! * A writer dropped without `close`/`cancel` (fresh, and after a resume) leaves exactly one
//!   incomplete upload, no visible object, and `abort_incomplete_upload` (what `regstore
//!   uploads abort` calls) removes it.
//!
//! The child process is this test binary itself, re-executed with [`CHILD_ENV`] set and told
//! to run only the ignored test [`crash_child`]; `cargo test` builds nothing extra.
//!
//! Without a configured server the tests print `skipped: …` and return; under `CI` they fail.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt as _;
use regstore_driver_api::{StorageDriver, StoragePath};
use regstore_driver_s3::S3Driver;

use common::{content, MIB};

/// Set (to the root directory to use) in the child's environment only.
const CHILD_ENV: &str = "REGSTORE_CRASH_RESUME_CHILD_ROOT";
/// Set in the child's environment to the number of bytes it writes after the reopen (default
/// [`UNCLOSED`]).
const UNCLOSED_ENV: &str = "REGSTORE_CRASH_RESUME_CHILD_UNCLOSED";
/// Set in the child's environment to how long (ms) it waits after its last write before it
/// says it is ready (default 0).
const SETTLE_ENV: &str = "REGSTORE_CRASH_RESUME_CHILD_SETTLE_MS";
/// What the child prints once it has closed, reopened and written the unclosed bytes.
const READY: &str = "CRASH-CHILD-READY";
/// Bytes written and closed before the kill: one full 5 MiB part and a short one.
const CLOSED: usize = 5 * MIB as usize + 123;
/// Bytes written after the reopen and never closed (less than a part, so only buffered).
const UNCLOSED: usize = MIB as usize + 7;
/// Bytes written after the reopen in the in-flight variant: one full part is handed to an
/// upload task, then the child is killed at once, while that part may still be on its way.
const UNCLOSED_WITH_PART: usize = 6 * MIB as usize + 7;
/// The driver's part size in these tests (`chunksize` of `common::Env::params`).
const PART: usize = 5 * MIB as usize;
/// Bytes the resuming process adds after the closed ones.
const REST: usize = 3 * MIB as usize + 5;
/// The upload's path, shaped like a registry's upload data path.
const OBJECT: &str = "/docker/registry/v2/repositories/crash/_uploads/u1/data";
/// How long the parent waits for the child to be ready before failing.
const CHILD_READY_TIMEOUT: Duration = Duration::from_secs(180);

fn path(s: &str) -> StoragePath {
    StoragePath::parse(s).unwrap_or_else(|| panic!("test path {s:?} is valid"))
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// The object's final content: the closed bytes, then the resuming process's bytes.
fn whole() -> Bytes {
    content(0xC7A5_0001, CLOSED + REST)
}

/// What the child writes after the reopen and never closes.
fn unclosed_bytes(len: usize) -> Bytes {
    content(0xDEAD_0002, len)
}

/// Writes `data` in 1 MiB pieces (several part-buffer refills, like a registry's copy loop).
async fn write_pieces(w: &mut dyn regstore_driver_api::FileWriter, data: &Bytes) {
    for piece in data.chunks(MIB as usize) {
        if let Err(e) = w.write(data.slice_ref(piece)).await {
            panic!("write of {} bytes: {e}", piece.len());
        }
    }
}

async fn read_all(driver: &S3Driver, p: &StoragePath) -> Vec<u8> {
    let stream = match driver.reader(p, 0).await {
        Ok(s) => s,
        Err(e) => panic!("reader {p}: {e}"),
    };
    match stream.try_collect::<Vec<Bytes>>().await {
        Ok(chunks) => chunks.concat(),
        Err(e) => panic!("reading {p}: {e}"),
    }
}

/// Removes everything under the driver's root and checks nothing (object or upload) is left.
async fn clean_up(driver: &S3Driver) {
    common::cleanup(driver).await;
    let left = driver.list(&StoragePath::root()).await;
    assert!(
        matches!(&left, Ok(v) if v.is_empty()) || matches!(&left, Err(e) if e.is_not_found()),
        "objects left after clean-up: {left:?}"
    );
    match driver.list_incomplete_uploads(&StoragePath::root()).await {
        Ok(u) => assert!(u.is_empty(), "uploads left after clean-up: {u:?}"),
        Err(e) => panic!("list uploads after clean-up: {e}"),
    }
}

/// The child half of the `killed_*` tests; does nothing useful alone. It closes [`CLOSED`]
/// bytes, reopens with `append`, writes [`UNCLOSED_ENV`] (default [`UNCLOSED`]) other bytes,
/// waits [`SETTLE_ENV`] ms, prints [`READY`] and waits to be killed.
#[tokio::test]
#[ignore = "child process of killed_process_resumes_at_closed_bytes, which runs it"]
async fn crash_child() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        panic!("crash_child is run by killed_process_resumes_at_closed_bytes ({CHILD_ENV} unset)");
    };
    let Some(env) = common::s3_env() else {
        panic!("the child needs the REGSTORE_S3_* environment of its parent");
    };
    let driver = env.driver_with(env.params(&root)).await;
    let p = path(OBJECT);
    let data = whole();

    let mut w = match driver.writer(&p, false).await {
        Ok(w) => w,
        Err(e) => panic!("child: writer: {e}"),
    };
    write_pieces(w.as_mut(), &data.slice(..CLOSED)).await;
    if let Err(e) = w.close().await {
        panic!("child: close: {e}");
    }
    assert_eq!(w.size(), CLOSED as u64, "child: size after close");
    drop(w);

    let mut w = match driver.writer(&p, true).await {
        Ok(w) => w,
        Err(e) => panic!("child: writer(append): {e}"),
    };
    assert_eq!(w.size(), CLOSED as u64, "child: size after reopen");
    let unclosed = match std::env::var(UNCLOSED_ENV) {
        Ok(v) => match v.parse::<usize>() {
            Ok(n) => n,
            Err(e) => panic!("child: {UNCLOSED_ENV}={v:?}: {e}"),
        },
        Err(_) => UNCLOSED,
    };
    // Different from what the parent writes at that offset, so they are recognised if they
    // show up.
    write_pieces(w.as_mut(), &unclosed_bytes(unclosed)).await;
    assert_eq!(
        w.size(),
        (CLOSED + unclosed) as u64,
        "child: size before kill"
    );

    let settle = std::env::var(SETTLE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(settle)).await;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{READY} {CLOSED}");
    let _ = out.flush();
    // Hold the open writer until the parent's SIGKILL; never close, commit or drop it.
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop(w);
    panic!("child: not killed within 600 s");
}

/// Runs [`crash_child`] on `root` with `unclosed` bytes after the reopen, kills it with SIGKILL
/// once it is ready, and returns a driver on `root` (on `runtime`) after checking that it was
/// killed by the signal; a child that fails or hangs fails the test after its root is cleaned.
fn run_and_kill_child(
    env: &common::Env,
    runtime: &tokio::runtime::Runtime,
    root: &str,
    unclosed: usize,
    settle: Duration,
) -> S3Driver {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => panic!("cannot find this test binary to re-execute: {e}"),
    };
    let mut child = match Command::new(exe)
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, root)
        .env(UNCLOSED_ENV, unclosed.to_string())
        .env(SETTLE_ENV, settle.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start the child process: {e}"),
    };
    let Some(stdout) = child.stdout.take() else {
        panic!("child has no stdout pipe");
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + CHILD_READY_TIMEOUT;
    let ready = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            // libtest prints `test crash_child ... ` without a newline before the case runs.
            Ok(line) if line.contains(READY) => break Ok(line),
            Ok(line) => println!("child: {line}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(format!("not ready after {CHILD_READY_TIMEOUT:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err("exited before it was ready (its panic is above)".to_owned())
            }
        }
    };
    // `Child::kill` is SIGKILL on Unix: no destructor, no close, no abort runs in the child.
    let killed = child.kill();
    let status = child.wait();

    runtime.block_on(async {
        let driver = env.driver_with(env.params(root)).await;
        if let Err(why) = ready {
            // Whatever the child got to write is removed before failing.
            clean_up(&driver).await;
            panic!("child {why}; status {status:?}");
        }
        if let Err(e) = killed {
            panic!("cannot kill the child: {e}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            match &status {
                Ok(s) => assert_eq!(s.signal(), Some(9), "child ended by SIGKILL, got {s:?}"),
                Err(e) => panic!("waiting for the child: {e}"),
            }
        }
        driver
    })
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("cannot build a runtime: {e}"),
    }
}

#[test]
fn killed_process_resumes_at_closed_bytes() {
    let Some(env) = common::s3_env() else { return };
    let root = format!("/{}/", common::unique("regstore-crash-"));
    let runtime = runtime();
    let driver = run_and_kill_child(&env, &runtime, &root, UNCLOSED, Duration::ZERO);
    runtime.block_on(async {
        let p = path(OBJECT);
        let data = whole();

        // What `regstore uploads ls` would show after the crash: the killed writer's upload.
        let uploads = match driver.list_incomplete_uploads(&StoragePath::root()).await {
            Ok(u) => u,
            Err(e) => panic!("list uploads after the kill: {e}"),
        };
        let listed: Vec<&str> = uploads.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(listed, [OBJECT], "incomplete uploads after the kill");
        assert!(
            matches!(driver.stat(&p).await, Err(e) if e.is_not_found()),
            "nothing is visible at the path before commit"
        );

        let mut w = match driver.writer(&p, true).await {
            Ok(w) => w,
            Err(e) => panic!("writer(append) after the kill: {e}"),
        };
        assert_eq!(
            w.size(),
            CLOSED as u64,
            "resumed size is exactly the bytes closed before the kill"
        );
        write_pieces(w.as_mut(), &data.slice(CLOSED..)).await;
        if let Err(e) = w.commit().await {
            panic!("commit after resume: {e}");
        }
        assert_eq!(w.size(), data.len() as u64, "size after commit");
        drop(w);

        let got = match driver.get_content(&p).await {
            Ok(b) => b,
            Err(e) => panic!("get_content after commit: {e}"),
        };
        assert_eq!(got.len(), data.len(), "length of the committed object");
        assert_eq!(sha256(&got), sha256(&data), "SHA-256 of get_content");
        let streamed = read_all(&driver, &p).await;
        assert_eq!(sha256(&streamed), sha256(&data), "SHA-256 of the reader");
        match driver.stat(&p).await {
            Ok(info) => assert_eq!(info.size, data.len() as u64, "stat size"),
            Err(e) => panic!("stat after commit: {e}"),
        }
        match driver.list_incomplete_uploads(&StoragePath::root()).await {
            Ok(u) => assert!(u.is_empty(), "uploads left after commit: {u:?}"),
            Err(e) => panic!("list uploads after commit: {e}"),
        }
        clean_up(&driver).await;
    });
}

/// The variant with a full part handed to an upload task after the reopen: the kill may come
/// before or after that part reached S3. Either way the upload resumes exactly at the closed
/// bytes: the writer stored a tail record before its first part, and a resume ignores parts
/// numbered from the record's on. The committed object is the closed bytes followed by the
/// new ones — never other bytes.
#[test]
fn killed_with_a_part_in_flight_resumes_at_closed_bytes() {
    killed_after_unclosed_part(Duration::ZERO);
}

/// The same, with the kill two seconds after the part was handed over, so it has reached S3:
/// the part is there, and is still not content (it came after the last `close`).
#[test]
fn killed_after_an_unclosed_part_landed_resumes_at_closed_bytes() {
    killed_after_unclosed_part(Duration::from_secs(2));
}

fn killed_after_unclosed_part(settle: Duration) {
    let Some(env) = common::s3_env() else { return };
    let root = format!("/{}/", common::unique("regstore-crash-"));
    let runtime = runtime();
    let driver = run_and_kill_child(&env, &runtime, &root, UNCLOSED_WITH_PART, settle);
    runtime.block_on(async {
        let p = path(OBJECT);
        let written = [whole().slice(..CLOSED), unclosed_bytes(UNCLOSED_WITH_PART)].concat();
        let mut w = match driver.writer(&p, true).await {
            Ok(w) => w,
            Err(e) => panic!("writer(append) after the kill: {e}"),
        };
        let size = w.size() as usize;
        println!("resumed at {size} bytes ({CLOSED} closed, part size {PART})");
        assert_eq!(
            size, CLOSED,
            "resumed size: expected exactly the {CLOSED} closed bytes (part size {PART})"
        );
        let rest = content(0xC7A5_0003, REST);
        write_pieces(w.as_mut(), &rest).await;
        if let Err(e) = w.commit().await {
            panic!("commit after resume: {e}");
        }
        drop(w);
        let expected = [&written[..CLOSED], &rest[..]].concat();
        let got = match driver.get_content(&p).await {
            Ok(b) => b,
            Err(e) => panic!("get_content after commit: {e}"),
        };
        assert_eq!(got.len(), expected.len(), "length of the committed object");
        assert_eq!(sha256(&got), sha256(&expected), "SHA-256 of get_content");
        match driver.list_incomplete_uploads(&StoragePath::root()).await {
            Ok(u) => assert!(u.is_empty(), "uploads left after commit: {u:?}"),
            Err(e) => panic!("list uploads after commit: {e}"),
        }
        clean_up(&driver).await;
    });
}

/// Opens a writer on `p`, writes `len` bytes and drops it without close, commit or cancel.
async fn dropped_writer(driver: &S3Driver, p: &StoragePath, append: bool, len: usize) {
    let mut w = match driver.writer(p, append).await {
        Ok(w) => w,
        Err(e) => panic!("writer({p}, append={append}): {e}"),
    };
    write_pieces(w.as_mut(), &content(len as u64, len)).await;
    drop(w);
}

/// Exactly one incomplete upload at `p`, nothing visible; aborting it removes it, a second
/// abort says it is gone, and `append` then finds nothing to resume.
async fn abort_the_only_upload(driver: &S3Driver, p: &StoragePath) {
    let uploads = match driver.list_incomplete_uploads(&StoragePath::root()).await {
        Ok(u) => u,
        Err(e) => panic!("list uploads: {e}"),
    };
    let listed: Vec<&str> = uploads.iter().map(|u| u.path.as_str()).collect();
    assert_eq!(listed, [p.as_str()], "incomplete uploads after the drop");
    assert!(
        matches!(driver.stat(p).await, Err(e) if e.is_not_found()),
        "a dropped writer's bytes are not visible at {p}"
    );
    if let Err(e) = driver.abort_incomplete_upload(&uploads[0]).await {
        panic!("abort_incomplete_upload: {e}");
    }
    match driver.list_incomplete_uploads(&StoragePath::root()).await {
        Ok(u) => assert!(u.is_empty(), "uploads left after abort: {u:?}"),
        Err(e) => panic!("list uploads after abort: {e}"),
    }
    match driver.abort_incomplete_upload(&uploads[0]).await {
        Err(e) if e.is_not_found() => {}
        other => panic!("second abort: expected PathNotFound, got {other:?}"),
    }
    match driver.writer(p, true).await {
        Err(e) if e.is_not_found() => {}
        Err(e) => panic!("append after abort: expected PathNotFound, got {e}"),
        Ok(w) => panic!("append after abort found something of {} bytes", w.size()),
    }
}

#[tokio::test]
async fn dropped_writer_leaves_an_upload_that_abort_removes() {
    let Some(env) = common::s3_env() else { return };
    let driver = env.driver().await;
    let p = path("/docker/_uploads/dropped/data");
    // More than a part: one part is handed to an upload task, the rest is buffered.
    dropped_writer(&driver, &p, false, 6 * MIB as usize + 1).await;
    abort_the_only_upload(&driver, &p).await;
    clean_up(&driver).await;
}

#[tokio::test]
async fn writer_dropped_after_resume_leaves_one_upload_that_abort_removes() {
    let Some(env) = common::s3_env() else { return };
    let driver = env.driver().await;
    let p = path("/docker/_uploads/dropped-resumed/data");
    let mut w = match driver.writer(&p, false).await {
        Ok(w) => w,
        Err(e) => panic!("writer: {e}"),
    };
    write_pieces(w.as_mut(), &content(1, CLOSED)).await;
    if let Err(e) = w.close().await {
        panic!("close: {e}");
    }
    drop(w);
    // The reopened writer re-bases the short last part before its first byte; what it leaves
    // when dropped must still be one upload and no visible object.
    dropped_writer(&driver, &p, true, MIB as usize).await;
    abort_the_only_upload(&driver, &p).await;
    clean_up(&driver).await;
}
