//! The tail record of a writer: the bytes after its last full part, kept under a hidden key.
//!
//! A multipart upload can only hold parts of at least 5 MiB (R2: exactly `chunksize`) before
//! its last one, and an incomplete upload's parts cannot be read back. So a `close` does not
//! upload its short remainder as a part: it stores it, with the state of the upload, as one
//! small object under `<rootdirectory>.regstore~tails/`. `~` is not a storage-path character,
//! so no `list`, `stat` or `walk` of regstore ever reports these keys, and a Go registry never
//! looks outside `docker/registry/v2/`. The record says which part number it follows:
//! parts with that number or above are left-overs of a writer that crashed after this close,
//! and a resume ignores them, so a resumed writer always starts exactly where the last
//! `close` left it.
//!
//! Format (text header, then the payload):
//!
//! ```text
//! regstore-tail 1
//! key <object key>
//! next-part <n>
//! part-size <bytes>
//! length <payload bytes>
//! sha256 <hex of the payload>
//!
//! <payload>
//! ```
//!
//! Everything is checked when read back: a record for another key, a payload of the wrong
//! length or digest, or values S3 cannot have are errors, never bytes.

use bytes::{Bytes, BytesMut};

use crate::sigv4::sha256_hex;

/// The hidden directory below the root directory that holds tail records.
pub(crate) const TAILS_DIR: &str = ".regstore~tails";

/// First line of every record; the number is the format version.
const MAGIC: &str = "regstore-tail 1";

/// S3's minimum size of a non-final part.
pub(crate) const MIN_PART: u64 = 5 * 1024 * 1024;

/// The largest part S3 accepts (5 GiB).
pub(crate) const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;

/// The highest part number S3 accepts.
pub(crate) const MAX_PART_NUMBER: i64 = 10_000;

/// Longest header accepted when reading a record (the key is at most 1,024 bytes).
const MAX_HEADER: usize = 4096;

/// The largest record a reader accepts: a header and a payload shorter than the largest part.
pub(crate) const MAX_RECORD: u64 = MAX_PART + MAX_HEADER as u64;

/// The key prefix of every tail record under `root` (`""` or ending in `/`).
pub(crate) fn tails_prefix(root: &str) -> String {
    format!("{root}{TAILS_DIR}/")
}

/// The key of the tail record of upload `upload_id` of `key`. Hashed: upload ids are long and
/// may hold characters that are awkward in keys.
pub(crate) fn tail_key(root: &str, key: &str, upload_id: &str) -> String {
    let id = sha256_hex(format!("{key}\n{upload_id}").as_bytes());
    format!("{}{}", tails_prefix(root), &id[..40])
}

/// A writer's state at its last `close`: the parts before `next_part` are full (each
/// `part_size` bytes) and belong to the content; `payload` follows them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    pub(crate) next_part: i64,
    pub(crate) part_size: u64,
    pub(crate) payload: Bytes,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("next_part", &self.next_part)
            .field("part_size", &self.part_size)
            .field("payload", &self.payload.len())
            .finish()
    }
}

impl Tail {
    /// The record's bytes for the upload of `key`.
    pub(crate) fn encode(&self, key: &str) -> Bytes {
        let header = format!(
            "{MAGIC}\nkey {key}\nnext-part {}\npart-size {}\nlength {}\nsha256 {}\n\n",
            self.next_part,
            self.part_size,
            self.payload.len(),
            sha256_hex(&self.payload)
        );
        let mut out = BytesMut::with_capacity(header.len() + self.payload.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.payload);
        out.freeze()
    }

    /// Reads a record that must belong to `key`; the error says what is wrong with it.
    pub(crate) fn decode(raw: Bytes, key: &str) -> Result<Tail, String> {
        let window = &raw[..raw.len().min(MAX_HEADER)];
        let end = window
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or("no header end")?;
        let header = std::str::from_utf8(&raw[..end]).map_err(|_| "header is not UTF-8")?;
        let mut lines = header.split('\n');
        if lines.next() != Some(MAGIC) {
            return Err("not a regstore tail record of version 1".to_owned());
        }
        let mut field = |name: &str| -> Result<&str, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| format!("missing field {name}"))
        };
        let number = |name: &str, v: &str| -> Result<u64, String> {
            // Plain decimal only: no sign, no spaces, no leading `+`.
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{name} {v:?} is not a number"));
            }
            v.parse()
                .map_err(|_| format!("{name} {v:?} is not a number"))
        };
        let recorded_key = field("key")?;
        if recorded_key != key {
            return Err(format!("record is for key {recorded_key:?}"));
        }
        let next_part = number("next-part", field("next-part")?)?;
        let part_size = number("part-size", field("part-size")?)?;
        let length = number("length", field("length")?)?;
        let digest = field("sha256")?.to_owned();
        if lines.next().is_some() {
            return Err("unexpected header field".to_owned());
        }
        if !(1..=MAX_PART_NUMBER as u64).contains(&next_part) {
            return Err(format!("next-part {next_part} is out of range"));
        }
        if !(MIN_PART..=MAX_PART).contains(&part_size) {
            return Err(format!("part-size {part_size} is out of range"));
        }
        if length >= part_size {
            return Err(format!(
                "length {length} is not shorter than part-size {part_size}"
            ));
        }
        let payload = raw.slice(end + 2..);
        if payload.len() as u64 != length {
            return Err(format!(
                "payload is {} bytes, header says {length}",
                payload.len()
            ));
        }
        if sha256_hex(&payload) != digest {
            return Err("payload does not match its sha256".to_owned());
        }
        Ok(Tail {
            next_part: next_part as i64,
            part_size,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn tail(payload: &'static [u8]) -> Tail {
        Tail {
            next_part: 3,
            part_size: 10 * MIB,
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn records_round_trip() {
        for payload in [&b""[..], b"x", b"hello\n\nworld"] {
            let t = tail(payload);
            let raw = t.encode("a/b/data");
            assert_eq!(Tail::decode(raw, "a/b/data"), Ok(t));
        }
    }

    #[test]
    fn keys_are_hidden_from_storage_paths() {
        let k = tail_key("registry/", "registry/a/data", "id-1");
        assert!(k.starts_with("registry/.regstore~tails/"), "{k}");
        assert_ne!(k, tail_key("registry/", "registry/a/data", "id-2"));
        assert_ne!(k, tail_key("registry/", "registry/b/data", "id-1"));
        let mapper = crate::keys::KeyMapper::new("registry");
        assert_eq!(mapper.path(&k), None);
        assert_eq!(mapper.path(&tails_prefix("registry/")), None);
        assert_eq!(
            crate::keys::KeyMapper::new("").path(&tails_prefix("")),
            None
        );
    }

    #[test]
    fn damaged_records_are_refused() {
        let good = tail(b"payload").encode("k");
        let text = String::from_utf8(good.to_vec()).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (
                text.replace("regstore-tail 1", "regstore-tail 2"),
                "version",
            ),
            (text.replace("payload", "paylo4d"), "sha256"),
            (text.replace("length 7", "length 8"), "payload is"),
            (text.replace("next-part 3", "next-part 0"), "next-part"),
            (text.replace("next-part 3", "next-part 10001"), "next-part"),
            (text.replace("next-part 3", "next-part -1"), "not a number"),
            (text.replace("next-part 3", "next-part +3"), "not a number"),
            (
                text.replace("part-size 10485760", "part-size 5"),
                "part-size",
            ),
            (text.replace("\n\n", "\nextra 1\n\n"), "unexpected"),
            (text.replace("\n\n", "\n"), "header end"),
            (text.replace("key k", "key other"), "for key"),
            (String::new(), "header end"),
        ];
        for (raw, want) in cases {
            let e = Tail::decode(Bytes::from(raw.clone()), "k").expect_err(&raw);
            assert!(e.contains(want), "{raw:?}: {e}");
        }
        // A payload as long as a part would have been uploaded as one.
        let full = Tail {
            next_part: 1,
            part_size: 5 * MIB,
            payload: Bytes::from(vec![0u8; 5 * MIB as usize]),
        };
        let e = Tail::decode(full.encode("k"), "k").unwrap_err();
        assert!(e.contains("not shorter"), "{e}");
    }
}
