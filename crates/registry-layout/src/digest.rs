//! Content digests as distribution stores them, and a compact set of them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A content digest `<algorithm>:<lowercase hex>`, validated as strictly as distribution's
/// `digest.Parse`: the algorithm is `sha256`, `sha384` or `sha512`, the hex part has that
/// algorithm's length and no uppercase letter, and nothing surrounds it (no newline).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// Parses `alg:hex` strictly (see the type's contract).
    pub fn parse(s: &str) -> Result<Self, InvalidDigest> {
        let bad = || InvalidDigest(s.chars().take(80).collect());
        let (alg, hex) = s.split_once(':').ok_or_else(bad)?;
        let len = match alg {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(bad()),
        };
        if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        Ok(Digest(s.to_owned()))
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }

    /// Builds a digest from an algorithm and hex part as found in a storage path.
    pub fn from_parts(alg: &str, hex: &str) -> Result<Self, InvalidDigest> {
        Digest::parse(&format!("{alg}:{hex}"))
    }

    /// The algorithm (`sha256`, …).
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }

    /// The whole digest string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32 raw bytes of a sha256 digest; `None` for other algorithms.
    pub fn sha256_bytes(&self) -> Option<[u8; 32]> {
        if self.algorithm() != "sha256" {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.hex(), &mut out).ok()?;
        Some(out)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

/// A set of digests that costs 32 bytes per sha256 entry once [sealed](Self::seal).
///
/// While it is built, inserts append to a vector that is sorted and de-duplicated whenever it
/// doubles, so duplicates never hold more than half of it; a sealed set answers
/// [`contains`](Self::contains) by binary search. Other algorithms (rare in practice) live in
/// an ordinary ordered set beside it. A hash set would cost 38–75 bytes per entry (load factor
/// and control bytes) for the same 32-byte keys.
#[derive(Debug, Default, Clone)]
pub struct DigestSet {
    sha256: Vec<[u8; 32]>,
    /// Length of the sorted, de-duplicated prefix of `sha256`.
    sorted: usize,
    other: BTreeSet<String>,
}

impl DigestSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a digest.
    pub fn insert(&mut self, d: &Digest) {
        match d.sha256_bytes() {
            Some(b) => {
                self.sha256.push(b);
                if self.sha256.len() >= 2 * self.sorted.max(1024) {
                    self.compact();
                }
            }
            None => {
                self.other.insert(d.as_str().to_owned());
            }
        }
    }

    fn compact(&mut self) {
        self.sha256.sort_unstable();
        self.sha256.dedup();
        self.sorted = self.sha256.len();
    }

    /// Sorts, de-duplicates and releases spare capacity; call before querying.
    pub fn seal(&mut self) {
        self.compact();
        self.sha256.shrink_to_fit();
    }

    /// Whether `d` is in the set. Exact only on a sealed set (entries added since the last
    /// seal are searched linearly, so it stays correct but slow).
    pub fn contains(&self, d: &Digest) -> bool {
        match d.sha256_bytes() {
            Some(b) => {
                self.sha256[..self.sorted].binary_search(&b).is_ok()
                    || self.sha256[self.sorted..].contains(&b)
            }
            None => self.other.contains(d.as_str()),
        }
    }

    /// Number of distinct digests (exact after [`seal`](Self::seal)).
    pub fn len(&self) -> usize {
        self.sha256.len() + self.other.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held by the set (the sha256 vector's capacity; other algorithms estimated).
    pub fn heap_bytes(&self) -> usize {
        self.sha256.capacity() * 32 + self.other.iter().map(|s| s.len() + 48).sum::<usize>()
    }

    /// Merges another set into this one.
    pub fn extend(&mut self, other: &DigestSet) {
        for b in &other.sha256 {
            self.sha256.push(*b);
        }
        self.other.extend(other.other.iter().cloned());
        self.compact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_strict() {
        let hex = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{hex}")).is_ok());
        assert!(Digest::parse(&format!("sha256:{hex}\n")).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(63))).is_err());
        assert!(Digest::parse(&format!("md5:{hex}")).is_err());
        assert!(Digest::parse("").is_err());
        assert!(Digest::parse(&format!("sha512:{}", "0".repeat(128))).is_ok());
    }

    #[test]
    fn set_membership_and_size() {
        let mut s = DigestSet::new();
        let n = 100_000u32;
        for i in 0..n {
            let d = Digest::sha256_of(&i.to_le_bytes());
            s.insert(&d);
            s.insert(&d); // duplicates are folded
        }
        s.seal();
        assert_eq!(s.len(), n as usize);
        for i in 0..n {
            assert!(s.contains(&Digest::sha256_of(&i.to_le_bytes())));
        }
        assert!(!s.contains(&Digest::sha256_of(b"absent")));
        let per_entry = s.heap_bytes() as f64 / s.len() as f64;
        println!("DigestSet: {per_entry:.1} bytes per entry at {n} entries");
        assert!(per_entry <= 32.5, "{per_entry} bytes per entry");
    }
}
