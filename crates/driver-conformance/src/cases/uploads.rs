//! Resumable uploads as the registry uses them (a blob upload closed between PATCH requests and
//! resumed with `writer(path, true)`): the contract every backend's own tests used to repeat.

use regstore_driver_api::Error;

use super::basic::delete_if_present;
use super::{ensure, fail, short_debug, CaseResult, Ctx, Step};
use crate::data::random_bytes;

/// A closed, uncommitted upload is invisible (no content, no stat, not listed) and resumable
/// any number of times at its size; the commit publishes every resumed piece in order and
/// consumes the upload, so appending afterwards meets the committed content.
pub async fn closed_upload_invisible_and_resumable(c: Ctx) -> CaseResult {
    let path = "/resumable/upload/data";
    let result = async {
        c.expect_not_found(
            "writer(append) with nothing to resume",
            c.d.writer(path, true).await.map(|_| ()),
            path,
        )?;
        let pieces: Vec<Vec<u8>> = ["first", "second", "third"]
            .iter()
            .map(|l| random_bytes(&mut c.rng(l), 32))
            .collect();

        let mut w = c.d.writer(path, false).await.step("writer(false)")?;
        w.write(pieces[0].clone()).await.step("write piece 1")?;
        w.close().await.step("close after piece 1")?;
        ensure!(w.size() == 32, "closed writer reports size {}", w.size());
        c.expect_not_found(
            "get_content of a closed upload",
            c.d.get_content(path).await,
            path,
        )?;
        c.expect_not_found("stat of a closed upload", c.d.stat(path).await, path)?;
        match c.d.list("/resumable/upload").await {
            Err(e) if e.is_not_found() => {}
            Ok(v) if v.is_empty() => {}
            other => fail!(
                "list(/resumable/upload) shows an uncommitted upload: {}",
                short_debug(&other)
            ),
        }

        let mut want = pieces[0].clone();
        for (i, piece) in pieces.iter().enumerate().skip(1) {
            let mut w =
                c.d.writer(path, true)
                    .await
                    .step(format!("writer(append) #{i}"))?;
            ensure!(
                w.size() == want.len() as u64,
                "resumed writer #{i} reports size {}, expected {}",
                w.size(),
                want.len()
            );
            w.write(piece.clone())
                .await
                .step(format!("write piece {}", i + 1))?;
            want.extend_from_slice(piece);
            if i + 1 == pieces.len() {
                w.commit().await.step("commit")?;
            }
            w.close()
                .await
                .step(format!("close of resumed writer #{i}"))?;
            ensure!(
                w.size() == want.len() as u64,
                "writer #{i} reports size {} after close, expected {}",
                w.size(),
                want.len()
            );
        }
        c.expect_content(path, &want).await?;
        match c.d.writer(path, true).await {
            Err(Error::AppendToCommitted { size, .. }) if size == want.len() as u64 => Ok(()),
            Err(e) => fail!("writer(append) after commit: expected AppendToCommitted, got {e}"),
            Ok(w) => fail!(
                "writer(append) after commit: expected AppendToCommitted, got a writer of size {}",
                w.size()
            ),
        }
    }
    .await;
    let cleanup = delete_if_present(&c, "/resumable").await;
    result.and(cleanup)
}

/// Cancelling a resumed upload discards all of it (the bytes of earlier sessions too): nothing
/// is left to resume and nothing was published.
pub async fn cancel_discards_resumed_upload(c: Ctx) -> CaseResult {
    let path = "/cancelled/upload/data";
    let result = async {
        let mut w = c.d.writer(path, false).await.step("writer(false)")?;
        w.write(&b"abc"[..]).await.step("write")?;
        w.close().await.step("close")?;
        let mut w = c.d.writer(path, true).await.step("writer(append)")?;
        ensure!(w.size() == 3, "resumed writer reports size {}", w.size());
        w.write(&b"def"[..])
            .await
            .step("write to the resumed writer")?;
        w.cancel().await.step("cancel of the resumed writer")?;
        c.expect_not_found(
            "writer(append) after cancel",
            c.d.writer(path, true).await.map(|_| ()),
            path,
        )?;
        c.expect_not_found(
            "get_content after cancel",
            c.d.get_content(path).await,
            path,
        )
    }
    .await;
    let cleanup = delete_if_present(&c, "/cancelled").await;
    result.and(cleanup)
}
