//! `spooldir`: a writer's part being filled lives in a file instead of memory (distribution
//! PR #4920).
//!
//! Without it, every open writer holds up to `chunksize` bytes in memory while its caller is
//! still sending the part, for as long as the caller takes; a registry with many slow
//! concurrent pushes holds `chunksize` per push. With it, those bytes go to one temporary file
//! per writer in the directory, and are read back only when the part is full (or at `close`,
//! for the tail record) and handed to the upload; a part is in memory only while it uploads.
//!
//! The file is created with a unique name (`regstore-part-*`), readable by this user only, and
//! removed when the writer commits, cancels or is dropped — also after a crash of the writer
//! (not of the process: files of a killed process stay, named so they can be swept).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Checks that `dir` is a directory where spool files can be created and written, by
/// creating, writing and removing one. The error says what failed, for the `spooldir` error.
pub(crate) fn probe(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let mut f = tempfile::Builder::new()
        .prefix("regstore-part-probe-")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    std::io::Write::write_all(&mut f, b"probe")
        .map_err(|e| format!("cannot write a file in {}: {e}", dir.display()))?;
    f.close()
        .map_err(|e| format!("cannot remove a file in {}: {e}", dir.display()))
}

/// One writer's spool file. Removed from disk when dropped.
pub(crate) struct Spool {
    file: tokio::fs::File,
    /// Deletes the file when dropped.
    path: tempfile::TempPath,
    len: usize,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path.display())
            .field("len", &self.len)
            .finish()
    }
}

impl Spool {
    /// A new, empty spool file in `dir`.
    pub(crate) fn create(dir: &Path) -> std::io::Result<Spool> {
        let named = tempfile::Builder::new()
            .prefix("regstore-part-")
            .tempfile_in(dir)?;
        let (file, path) = named.into_parts();
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
            path,
            len: 0,
        })
    }

    /// Where the file is (for error messages).
    pub(crate) fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    /// Bytes spooled.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `data`. Waits until the write reached the file: tokio's `File` otherwise
    /// finishes it in the background, and a failure (disk full) must surface here, at the write
    /// whose bytes it lost.
    pub(crate) async fn push(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data).await?;
        self.file.flush().await?;
        self.len += data.len();
        Ok(())
    }

    /// Everything spooled, read back into memory; the file keeps it.
    pub(crate) async fn contents(&mut self) -> std::io::Result<Bytes> {
        self.file.flush().await?;
        self.file.seek(SeekFrom::Start(0)).await?;
        let mut buf = BytesMut::zeroed(self.len);
        let read = self.file.read_exact(&mut buf).await;
        // Back to the end for the next append, whatever the read did.
        self.file.seek(SeekFrom::Start(self.len as u64)).await?;
        read?;
        Ok(buf.freeze())
    }

    /// Everything spooled, read back; the file is emptied.
    pub(crate) async fn take(&mut self) -> std::io::Result<Bytes> {
        let all = self.contents().await?;
        self.clear().await?;
        Ok(all)
    }

    /// Empties the file.
    pub(crate) async fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0).await?;
        self.file.seek(SeekFrom::Start(0)).await?;
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spools_reads_back_empties_and_removes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::create(dir.path()).unwrap();
        let path = s.path();
        assert!(path.exists());
        s.push(b"abc").await.unwrap();
        s.push(b"").await.unwrap();
        s.push(&[7u8; 100_000]).await.unwrap();
        assert_eq!(s.len(), 100_003);
        let c = s.contents().await.unwrap();
        assert_eq!(&c[..3], b"abc");
        assert_eq!(c.len(), 100_003);
        // Appending after a read goes at the end.
        s.push(b"z").await.unwrap();
        let all = s.take().await.unwrap();
        assert_eq!(all.len(), 100_004);
        assert_eq!(all.last(), Some(&b'z'));
        assert_eq!(s.len(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        s.push(b"again").await.unwrap();
        assert_eq!(&s.contents().await.unwrap()[..], b"again");
        s.clear().await.unwrap();
        assert!(s.contents().await.unwrap().is_empty());
        drop(s);
        assert!(!path.exists(), "the spool file is removed on drop");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn probe_refuses_missing_and_unwritable_directories() {
        let dir = tempfile::tempdir().unwrap();
        probe(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let e = probe(&dir.path().join("missing")).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(probe(&file).unwrap_err().contains("not a directory"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.path().join("ro");
            std::fs::create_dir(&ro).unwrap();
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
            // Root ignores directory permissions; only check when they apply.
            let writable_anyway = std::fs::write(ro.join("t"), b"x").is_ok();
            if !writable_anyway {
                let e = probe(&ro).unwrap_err();
                assert!(e.contains("cannot create"), "{e}");
            }
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        // A directory nobody may create files in, root included.
        #[cfg(target_os = "linux")]
        {
            let e = probe(Path::new("/proc")).unwrap_err();
            assert!(e.contains("cannot create a file in /proc"), "{e}");
        }
    }
}
