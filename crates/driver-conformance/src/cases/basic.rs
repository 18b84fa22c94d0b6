//! Distribution's conformance cases (reference §4.1, items 1–32).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use regstore_driver_api::{Error, RedirectMethod, RedirectRequest};
use sha2::{Digest, Sha256};

use super::{ensure, fail, short_debug, CaseError, CaseResult, Ctx, Step};
use crate::data::{self, random_bytes, random_name, random_path, Stream64};

const MIB: usize = 1024 * 1024;

pub async fn root_exists(c: Ctx) -> CaseResult {
    c.d.list("/").await.step("list(/) on an empty store")?;
    Ok(())
}

pub async fn valid_paths(c: Ctx) -> CaseResult {
    const PATHS: &[&str] = &[
        "/a",
        "/2",
        "/aa",
        "/a.a",
        "/0-9/abcdefg",
        "/abcdefg/z.75",
        "/abc/1.2.3.4.5-6_zyx/123.z/4",
        "/docker/docker-registry",
        "/123.abc",
        "/abc./abc",
        "/.abc",
        "/a--b",
        "/a-.b",
        "/_.abc",
        "/Docker/docker-registry",
        "/Abc/Cba",
    ];
    let mut rng = c.rng("contents");
    let mut written = Vec::new();
    for p in PATHS {
        let content = random_bytes(&mut rng, 64);
        c.put(p, content.clone()).await?;
        written.push((*p, content));
    }
    // Read back after all writes, so `/Docker/…` and `/docker/…` are proven distinct.
    for (p, content) in &written {
        c.expect_content(p, content).await?;
    }
    for p in PATHS {
        let top = format!(
            "/{}",
            p.trim_start_matches('/').split('/').next().unwrap_or("")
        );
        match c.d.delete(&top).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {} // already gone with an earlier top-level delete
            Err(e) => fail!("delete({top}): unexpected error: {e}"),
        }
    }
    Ok(())
}

pub async fn invalid_paths(c: Ctx) -> CaseResult {
    for p in ["", "/", "abc", "123.abc", "//bcd", "/abc_123/"] {
        c.expect_invalid_path(
            format!("put_content({p:?})"),
            c.d.put_content(p, &b"content"[..]).await,
            p,
        )?;
        c.expect_invalid_path(format!("get_content({p:?})"), c.d.get_content(p).await, p)?;
    }
    Ok(())
}

async fn write_read(c: &Ctx, content: Vec<u8>) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    c.put(&path, content.clone()).await?;
    c.expect_content(&path, &content).await?;
    c.delete(&first_part(&path)).await
}

/// The top-level component of `p` (`/a` for `/a/b/c`), which cases delete to clean up.
pub fn first_part(p: &str) -> String {
    format!(
        "/{}",
        p.trim_start_matches('/').split('/').next().unwrap_or("")
    )
}

pub async fn write_read_1(c: Ctx) -> CaseResult {
    write_read(&c, b"a".to_vec()).await
}

pub async fn write_read_2(c: Ctx) -> CaseResult {
    write_read(&c, "\u{df}".as_bytes().to_vec()).await
}

pub async fn write_read_3(c: Ctx) -> CaseResult {
    let content = random_bytes(&mut c.rng("content"), 32);
    write_read(&c, content).await
}

pub async fn write_read_4(c: Ctx) -> CaseResult {
    let content = random_bytes(&mut c.rng("content"), MIB);
    write_read(&c, content).await
}

pub async fn write_read_non_utf8(c: Ctx) -> CaseResult {
    write_read(&c, vec![0x80, 0x80, 0x80, 0x80]).await
}

pub async fn truncate(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    let mut rng = c.rng("content");
    let big = random_bytes(&mut rng, MIB);
    let small = random_bytes(&mut rng, 1024);
    c.put(&path, big).await?;
    c.put(&path, small.clone()).await?;
    c.expect_content(&path, &small).await?;
    c.delete(&first_part(&path)).await
}

pub async fn read_nonexistent(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    c.expect_not_found(
        "get_content of a missing path",
        c.d.get_content(&path).await,
        &path,
    )
}

async fn write_read_stream(c: &Ctx, content: Vec<u8>) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    c.write_stream(&path, &content).await?;
    c.expect_stream(&path, 0, &content).await?;
    c.delete(&first_part(&path)).await
}

pub async fn write_read_streams_1(c: Ctx) -> CaseResult {
    write_read_stream(&c, b"a".to_vec()).await
}

pub async fn write_read_streams_2(c: Ctx) -> CaseResult {
    write_read_stream(&c, "\u{df}".as_bytes().to_vec()).await
}

pub async fn write_read_streams_3(c: Ctx) -> CaseResult {
    let content = random_bytes(&mut c.rng("content"), 32);
    write_read_stream(&c, content).await
}

pub async fn write_read_streams_4(c: Ctx) -> CaseResult {
    let content = random_bytes(&mut c.rng("content"), MIB);
    write_read_stream(&c, content).await
}

pub async fn write_read_streams_non_utf8(c: Ctx) -> CaseResult {
    write_read_stream(&c, vec![0x80, 0x80, 0x80, 0x80]).await
}

/// 5 GiB through one writer from a generator, compared by SHA-256 of the read-back stream;
/// memory stays at one 1 MiB chunk on each side.
pub async fn write_read_large_streams(c: Ctx) -> CaseResult {
    use futures::TryStreamExt;
    const TOTAL: u64 = 5 * 1024 * 1024 * 1024;
    const CHUNK: usize = MIB;
    if !c.caps.large_streams {
        return Err(CaseError::Skipped(
            "writes 5 GiB; enable with REGSTORE_CONFORMANCE_LARGE=1 (or Capabilities::large_streams)"
                .to_owned(),
        ));
    }
    let path = random_path(&mut c.rng("path"), 32);
    let mut gen = Stream64::new(0x5eed_0005);
    let mut hasher = Sha256::new();
    let mut w = c.d.writer(&path, false).await.step("writer(false)")?;
    let mut written = 0u64;
    while written < TOTAL {
        let n = CHUNK.min((TOTAL - written) as usize);
        let mut buf = vec![0u8; n];
        gen.fill(&mut buf);
        hasher.update(&buf);
        w.write(buf)
            .await
            .step(format!("write at offset {written}"))?;
        written += n as u64;
    }
    w.commit().await.step("commit")?;
    w.close().await.step("close after commit")?;
    ensure!(
        w.size() == TOTAL,
        "size after commit is {}, expected {TOTAL}",
        w.size()
    );
    let expected = hasher.finalize();

    let mut stream = c.d.reader(&path, 0).await.step("reader(0)")?;
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stream.try_next().await.step(format!("reading at {read}"))? {
        hasher.update(&chunk);
        read += chunk.len() as u64;
    }
    ensure!(read == TOTAL, "read back {read} bytes, expected {TOTAL}");
    ensure!(
        hasher.finalize() == expected,
        "SHA-256 of the read-back stream differs from what was written"
    );
    c.delete(&first_part(&path)).await
}

pub async fn reader_with_offset(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    let mut rng = c.rng("content");
    let chunk1 = random_bytes(&mut rng, 32);
    let chunk2 = random_bytes(&mut rng, 32);
    let chunk3 = random_bytes(&mut rng, 32);
    let all = [chunk1.clone(), chunk2.clone(), chunk3.clone()].concat();
    c.put(&path, all.clone()).await?;
    c.expect_stream(&path, 0, &all).await?;
    c.expect_stream(&path, 32, &all[32..]).await?;
    c.expect_stream(&path, 64, &chunk3).await?;
    match c.d.reader(&path, -1).await {
        Err(
            ref e @ Error::InvalidOffset {
                ref driver,
                path: ref p,
                offset,
            },
        ) => {
            ensure!(
                offset == -1,
                "InvalidOffset reports offset {offset}, expected -1"
            );
            ensure!(
                p == &path,
                "InvalidOffset names path {p:?}, expected {path:?}"
            );
            ensure!(
                driver == c.name() && e.to_string().contains(c.name()),
                "InvalidOffset names driver {driver:?}, expected {:?}",
                c.name()
            );
        }
        Err(e) => fail!("reader(-1): expected InvalidOffset, got {e}"),
        Ok(_) => fail!("reader(-1): expected InvalidOffset, got a stream"),
    }
    c.expect_stream(&path, 96, &[]).await?;
    c.expect_stream(&path, 95, &all[95..]).await?;
    c.delete(&first_part(&path)).await
}

/// Distribution's `testContinueStreamAppend`: three writers on one path, the first two
/// closed (not committed) and resumed with append, sizes checked at each step.
async fn continue_stream_append(c: &Ctx, chunk: usize) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    let all = random_bytes(&mut c.rng("content"), 3 * chunk);
    let chunk_u = chunk as u64;

    let mut w = c.d.writer(&path, false).await.step("writer(false)")?;
    let mut src = &all[..chunk];
    let n = w
        .copy_from(&mut src, 32 * 1024)
        .await
        .step("write chunk 1")?;
    ensure!(n == chunk_u, "chunk 1: copied {n}, expected {chunk}");
    w.close().await.step("close after chunk 1")?;
    ensure!(
        w.size() == chunk_u,
        "size after close is {}, expected {chunk}",
        w.size()
    );

    let mut w = c.d.writer(&path, true).await.step("writer(append) #2")?;
    ensure!(
        w.size() == chunk_u,
        "resumed size is {}, expected {chunk}",
        w.size()
    );
    let mut src = &all[chunk..2 * chunk];
    let n = w
        .copy_from(&mut src, 32 * 1024)
        .await
        .step("write chunk 2")?;
    ensure!(n == chunk_u, "chunk 2: copied {n}, expected {chunk}");
    w.close().await.step("close after chunk 2")?;
    ensure!(
        w.size() == 2 * chunk_u,
        "size after second close is {}, expected {}",
        w.size(),
        2 * chunk
    );

    let mut w = c.d.writer(&path, true).await.step("writer(append) #3")?;
    ensure!(
        w.size() == 2 * chunk_u,
        "resumed size is {}, expected {}",
        w.size(),
        2 * chunk
    );
    let mut src = &all[2 * chunk..];
    let n = w
        .copy_from(&mut src, 32 * 1024)
        .await
        .step("write chunk 3")?;
    ensure!(n == chunk_u, "chunk 3: copied {n}, expected {chunk}");
    w.commit().await.step("commit")?;
    w.close().await.step("close after commit")?;
    ensure!(
        w.size() == 3 * chunk_u,
        "size after commit is {}, expected {}",
        w.size(),
        3 * chunk
    );
    c.expect_content(&path, &all).await?;
    c.delete(&first_part(&path)).await
}

pub async fn continue_stream_append_large(c: Ctx) -> CaseResult {
    let chunk = usize::try_from(c.part_size().saturating_mul(2)).unwrap_or(10 * MIB);
    continue_stream_append(&c, chunk).await
}

pub async fn continue_stream_append_small(c: Ctx) -> CaseResult {
    continue_stream_append(&c, 32).await
}

pub async fn read_nonexistent_stream(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    c.expect_not_found(
        "reader(missing, 0)",
        c.d.reader(&path, 0).await.map(|_| ()),
        &path,
    )?;
    c.expect_not_found(
        "reader(missing, 64)",
        c.d.reader(&path, 64).await.map(|_| ()),
        &path,
    )
}

pub async fn write_zero_byte_stream_then_append(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    let mut w = c.d.writer(&path, false).await.step("writer(false)")?;
    w.commit().await.step("commit of an empty writer")?;
    w.close().await.step("close after commit")?;
    ensure!(w.size() == 0, "empty writer reports size {}", w.size());
    c.expect_stream(&path, 0, &[]).await?;

    let content = random_bytes(&mut c.rng("content"), 32);
    let mut w =
        c.d.writer(&path, true)
            .await
            .step("writer(append) on a committed empty object")?;
    let mut src = &content[..];
    let n = w
        .copy_from(&mut src, 32 * 1024)
        .await
        .step("append 32 bytes")?;
    ensure!(n == 32, "copied {n} bytes, expected 32");
    w.commit().await.step("commit")?;
    w.close().await.step("close after commit")?;
    ensure!(
        w.size() == 32,
        "size after append is {}, expected 32",
        w.size()
    );
    c.expect_stream(&path, 0, &content).await?;
    c.delete(&first_part(&path)).await
}

pub async fn write_zero_byte_content_then_append(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    c.put(&path, Bytes::new()).await?;
    c.expect_stream(&path, 0, &[]).await?;

    let content = random_bytes(&mut c.rng("content"), 32);
    let mut w =
        c.d.writer(&path, true)
            .await
            .step("writer(append) on empty put_content")?;
    w.write(content.clone()).await.step("append 32 bytes")?;
    w.commit().await.step("commit")?;
    w.close().await.step("close after commit")?;
    ensure!(
        w.size() == 32,
        "size after append is {}, expected 32",
        w.size()
    );
    c.expect_content(&path, &content).await?;
    c.delete(&first_part(&path)).await
}

pub async fn list(c: Ctx) -> CaseResult {
    let mut rng = c.rng("names");
    let root = format!("/{}", random_name(&mut rng, 8, 15));
    let missing = format!("{root}/nonexistent");
    c.expect_not_found(
        "list of a missing directory",
        c.d.list(&missing).await,
        &missing,
    )?;

    let parent = format!("{root}/parent");
    let mut children = Vec::new();
    for _ in 0..50 {
        let p = format!("{parent}/{}", random_name(&mut rng, 8, 15));
        if !children.contains(&p) {
            children.push(p);
        }
    }
    let content = random_bytes(&mut c.rng("content"), 32);
    for p in &children {
        c.put(p, content.clone()).await?;
    }
    let got = c.list_sorted("/").await?;
    ensure!(
        got == [root.clone()],
        "list(/) = {got:?}, expected [{root:?}]"
    );
    let got = c.list_sorted(&root).await?;
    ensure!(
        got == [parent.clone()],
        "list({root}) = {got:?}, expected [{parent:?}]"
    );
    let got = c.list_sorted(&parent).await?;
    children.sort();
    if got != children {
        let missing: Vec<&String> = children.iter().filter(|p| !got.contains(p)).collect();
        let extra: Vec<&String> = got.iter().filter(|p| !children.contains(p)).collect();
        fail!(
            "list({parent}) returned {} entries, expected {}; missing {}, unexpected {}",
            got.len(),
            children.len(),
            short_debug(&missing),
            short_debug(&extra)
        );
    }
    c.delete(&root).await
}

pub async fn move_(c: Ctx) -> CaseResult {
    let mut rng = c.rng("paths");
    let src = random_path(&mut rng, 32);
    let dst = random_path(&mut rng, 32);
    let content = random_bytes(&mut c.rng("content"), 32);
    c.put(&src, content.clone()).await?;
    c.d.move_object(&src, &dst)
        .await
        .step(format!("move({src}, {dst})"))?;
    c.expect_content(&dst, &content).await?;
    c.expect_not_found(
        "get_content of the moved source",
        c.d.get_content(&src).await,
        &src,
    )?;
    c.delete(&first_part(&dst)).await?;
    if first_part(&src) != first_part(&dst) {
        match c.d.delete(&first_part(&src)).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => fail!("delete({}): unexpected error: {e}", first_part(&src)),
        }
    }
    Ok(())
}

pub async fn move_overwrite(c: Ctx) -> CaseResult {
    let mut rng = c.rng("paths");
    let src = random_path(&mut rng, 32);
    let dst = random_path(&mut rng, 32);
    let mut rng = c.rng("content");
    let src_content = random_bytes(&mut rng, 32);
    let dst_content = random_bytes(&mut rng, 64);
    c.put(&src, src_content.clone()).await?;
    c.put(&dst, dst_content).await?;
    c.d.move_object(&src, &dst)
        .await
        .step(format!("move({src}, {dst})"))?;
    c.expect_content(&dst, &src_content).await?;
    c.expect_not_found(
        "get_content of the moved source",
        c.d.get_content(&src).await,
        &src,
    )?;
    c.delete(&first_part(&dst)).await?;
    delete_if_present(&c, &first_part(&src)).await
}

/// Deletes `path`, tolerating that an earlier delete already removed it.
pub async fn delete_if_present(c: &Ctx, path: &str) -> CaseResult {
    match c.d.delete(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => fail!("delete({path}): unexpected error: {e}"),
    }
}

pub async fn move_nonexistent(c: Ctx) -> CaseResult {
    let mut rng = c.rng("paths");
    let src = random_path(&mut rng, 32);
    let dst = random_path(&mut rng, 32);
    let content = random_bytes(&mut c.rng("content"), 32);
    c.put(&dst, content.clone()).await?;
    c.expect_not_found(
        "move of a missing source",
        c.d.move_object(&src, &dst).await,
        &src,
    )?;
    c.expect_content(&dst, &content).await?;
    c.delete(&first_part(&dst)).await
}

pub async fn move_invalid(c: Ctx) -> CaseResult {
    c.put("/notadir", &b"content"[..]).await?;
    match c.d.move_object("/notadir/foo", "/notadir/bar").await {
        Err(_) => {}
        Ok(()) => fail!("move(/notadir/foo, /notadir/bar) under a file succeeded"),
    }
    c.delete("/notadir").await
}

pub async fn delete(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    c.put(&path, random_bytes(&mut c.rng("content"), 32))
        .await?;
    c.delete(&path).await?;
    c.expect_not_found(
        "get_content after delete",
        c.d.get_content(&path).await,
        &path,
    )
}

pub async fn redirect_url(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    let content = random_bytes(&mut c.rng("content"), 32);
    c.put(&path, content.clone()).await?;
    let result = redirect_checks(&c, &path, &content).await;
    c.delete(&first_part(&path)).await?;
    result
}

async fn redirect_checks(c: &Ctx, path: &str, content: &[u8]) -> CaseResult {
    let other =
        c.d.redirect_url(&RedirectRequest::new(RedirectMethod::Other), path)
            .await
            .step("redirect_url(other method)")?;
    ensure!(
        other.is_none(),
        "redirect_url for a method other than GET/HEAD returned a URL; expected no redirect"
    );
    let get =
        c.d.redirect_url(&RedirectRequest::get(), path)
            .await
            .step("redirect_url(GET)")?;
    let Some(get) = get else {
        ensure!(
            !c.caps.redirect,
            "redirect_url(GET) answered no redirect, but the suite expects redirects"
        );
        return Ok(());
    };
    // A URL that is not fetched proves nothing, and a skip would read as a pass in `cargo
    // test`: the backend's suite must declare that it redirects.
    ensure!(
        c.caps.redirect,
        "redirect_url(GET) returned a URL, but Capabilities::redirect is false; declare \
         it (Capabilities::with_redirect) so the suite fetches and checks the URL"
    );
    let skip_verify = c.caps.redirect_skip_tls_verify;
    let retries = c.caps.redirect_retries;
    let (status, body, _) = crate::redirect::fetch_with_retries(&get, false, skip_verify, retries)
        .await
        .map_err(|e| CaseError::Failed(format!("GET of the redirect URL: {e}")))?;
    ensure!(status == 200, "GET of the redirect URL answered {status}");
    data::compare("GET of the redirect URL", &body, content)?;

    let head =
        c.d.redirect_url(&RedirectRequest::head(), path)
            .await
            .step("redirect_url(HEAD)")?;
    let Some(head) = head else {
        return Ok(());
    };
    let (status, _, length) =
        crate::redirect::fetch_with_retries(&head, true, skip_verify, retries)
            .await
            .map_err(|e| CaseError::Failed(format!("HEAD of the redirect URL: {e}")))?;
    ensure!(status == 200, "HEAD of the redirect URL answered {status}");
    ensure!(
        length == Some(content.len() as u64),
        "HEAD of the redirect URL: Content-Length {length:?}, expected {}",
        content.len()
    );
    Ok(())
}

pub async fn delete_nonexistent(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    c.expect_not_found("delete of a missing path", c.d.delete(&path).await, &path)
}

pub async fn delete_folder(c: Ctx) -> CaseResult {
    let mut rng = c.rng("paths");
    let dir = random_path(&mut rng, 32);
    let f1 = format!("{dir}{}", random_path(&mut rng, 32));
    let f2 = format!("{dir}{}", random_path(&mut rng, 32));
    let f3 = format!("{dir}{}", random_path(&mut rng, 32));
    let content = random_bytes(&mut c.rng("content"), 32);
    for p in [&f1, &f2, &f3] {
        c.put(p, content.clone()).await?;
    }
    c.delete(&f1).await?;
    c.expect_not_found(
        "get_content of the deleted file",
        c.d.get_content(&f1).await,
        &f1,
    )?;
    c.expect_content(&f2, &content).await?;
    c.expect_content(&f3, &content).await?;
    c.delete(&dir).await?;
    for p in [&f1, &f2, &f3] {
        c.expect_not_found(
            "get_content after deleting the folder",
            c.d.get_content(p).await,
            p,
        )?;
    }
    delete_if_present(&c, &first_part(&dir)).await
}

pub async fn delete_only_deletes_subpaths(c: Ctx) -> CaseResult {
    let mut rng = c.rng("names");
    let dir = random_name(&mut rng, 8, 12);
    let file = random_name(&mut rng, 8, 12);
    let content = random_bytes(&mut c.rng("content"), 32);
    let f = format!("/{dir}/{file}");
    let f_suffix = format!("/{dir}/{file}suffix");
    let dd = format!("/{dir}/{dir}");
    let dd_f = format!("/{dir}/{dir}/{file}");
    let dsuffix_f = format!("/{dir}/{dir}suffix/{file}");
    for p in [&f, &f_suffix, &dd_f, &dsuffix_f] {
        c.put(p, content.clone()).await?;
    }
    c.delete(&f).await?;
    c.expect_not_found(
        "get_content of the deleted file",
        c.d.get_content(&f).await,
        &f,
    )?;
    c.expect_content(&f_suffix, &content).await?;
    c.delete(&dd).await?;
    c.expect_not_found(
        "get_content under the deleted folder",
        c.d.get_content(&dd_f).await,
        &dd_f,
    )?;
    c.expect_content(&dsuffix_f, &content).await?;
    c.delete(&format!("/{dir}")).await
}

pub async fn stat_call(c: Ctx) -> CaseResult {
    match c.d.stat("/").await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => fail!("stat(/) on an empty store: expected Ok or PathNotFound, got {e}"),
    }
    let mut rng = c.rng("paths");
    let dir = random_path(&mut rng, 32);
    let file = format!("{dir}{}", random_path(&mut rng, 32));
    c.expect_not_found("stat of a missing directory", c.d.stat(&dir).await, &dir)?;
    c.expect_not_found("stat of a missing file", c.d.stat(&file).await, &file)?;

    let mut rng = c.rng("content");
    c.put(&file, random_bytes(&mut rng, 4096)).await?;
    let fi = c.stat(&file).await?;
    ensure!(
        fi.path.as_str() == file,
        "stat({file}).path = {}",
        fi.path.as_str()
    );
    ensure!(
        fi.size == 4096,
        "stat({file}).size = {}, expected 4096",
        fi.size
    );
    ensure!(!fi.is_dir, "stat({file}) says directory");
    let Some(first) = fi.mod_time else {
        fail!("stat({file}) reports no modification time");
    };

    // Distribution sleeps 10 s; 1.5 s is enough for backends with one-second resolution.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.put(&file, random_bytes(&mut rng, 4096)).await?;
    let fi = c.stat(&file).await?;
    let Some(second) = fi.mod_time else {
        fail!("stat({file}) after the second put reports no modification time");
    };
    ensure!(
        second > first,
        "modification time did not advance: {first:?} then {second:?}"
    );

    let di = c.stat(&dir).await?;
    ensure!(
        di.path.as_str() == dir,
        "stat({dir}).path = {}",
        di.path.as_str()
    );
    ensure!(di.size == 0, "stat({dir}).size = {}, expected 0", di.size);
    ensure!(di.is_dir, "stat({dir}) does not say directory");
    match c.d.stat("/").await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => fail!("stat(/): expected Ok or PathNotFound, got {e}"),
    }
    c.delete(&first_part(&dir)).await
}

pub async fn put_content_multiple_times(c: Ctx) -> CaseResult {
    let path = random_path(&mut c.rng("path"), 32);
    let mut rng = c.rng("content");
    c.put(&path, random_bytes(&mut rng, 4096)).await?;
    let second = random_bytes(&mut rng, 2048);
    c.put(&path, second.clone()).await?;
    c.expect_content(&path, &second).await?;
    c.delete(&first_part(&path)).await
}

fn join_error(e: tokio::task::JoinError) -> CaseError {
    CaseError::Failed(format!("a concurrent task failed: {e}"))
}

pub async fn concurrent_stream_reads(c: Ctx) -> CaseResult {
    let size = if c.caps.full_size {
        128 * MIB
    } else {
        10 * MIB
    };
    let path = random_path(&mut c.rng("path"), 32);
    let content = Arc::new(random_bytes(&mut c.rng("content"), size));
    c.put(&path, content.to_vec()).await?;
    let mut rng = c.rng("offsets");
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let offset = rng.gen_range(0..size);
        let (c2, content, path) = (c.clone(), content.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            c2.expect_stream(&path, offset as i64, &content[offset..])
                .await
        }));
    }
    for t in tasks {
        t.await.map_err(join_error)??;
    }
    c.delete(&first_part(&path)).await
}

pub async fn concurrent_file_streams(c: Ctx) -> CaseResult {
    let streams = if c.caps.full_size { 32 } else { 8 };
    let mut tasks = Vec::new();
    for i in 0..streams {
        let c2 = c.clone();
        tasks.push(tokio::spawn(async move {
            let label = format!("stream-{i}");
            let path = format!("/concurrent/{}", random_name(&mut c2.rng(&label), 8, 15));
            let content = random_bytes(&mut c2.rng(&label), streams * MIB);
            c2.write_stream(&path, &content).await?;
            c2.expect_stream(&path, 0, &content).await?;
            c2.delete(&path).await
        }));
    }
    let mut first_err = None;
    for t in tasks {
        if let Err(e) = t.await.map_err(join_error).and_then(|r| r) {
            first_err.get_or_insert(e);
        }
    }
    if let Some(e) = first_err {
        delete_if_present(&c, "/concurrent").await?;
        return Err(e);
    }
    Ok(())
}
