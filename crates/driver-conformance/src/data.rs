//! Deterministic content and names, and comparisons that report offsets instead of bytes.

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// A generator seeded from a case name and a label, so every run of a case sees the same bytes
/// and names and a failure reproduces.
pub fn rng(case: &str, label: &str) -> StdRng {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in case.bytes().chain([0u8]).chain(label.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    StdRng::seed_from_u64(h)
}

/// `n` pseudo-random bytes.
pub fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// A random component of `min..=max` characters from `[a-z0-9]`.
pub fn random_name(rng: &mut StdRng, min: usize, max: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let len = rng.gen_range(min..=max.max(min));
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// A random absolute path of about `len` characters in components of 3–8 characters, like
/// distribution's `randomPath`.
pub fn random_path(rng: &mut StdRng, len: usize) -> String {
    let mut p = String::new();
    while p.len() < len {
        p.push('/');
        p.push_str(&random_name(rng, 3, 8));
    }
    p
}

/// Where two byte strings first differ, or `None` if equal.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b.iter())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// `Ok` if equal; otherwise a message with both lengths and the first differing offset.
pub fn compare(what: &str, actual: &[u8], expected: &[u8]) -> Result<(), String> {
    match first_difference(actual, expected) {
        None => Ok(()),
        Some(at) => Err(format!(
            "{what}: content differs: got {} bytes, expected {} bytes, first difference at offset {at}{}",
            actual.len(),
            expected.len(),
            match (actual.get(at), expected.get(at)) {
                (Some(a), Some(e)) => format!(" (got 0x{a:02x}, expected 0x{e:02x})"),
                _ => String::new(),
            }
        )),
    }
}

/// A cheap deterministic byte source for multi-GiB streams (SplitMix64), so the 5 GiB case
/// neither holds the data in memory nor spends its time in a cryptographic generator. Also the
/// generator of regstore's own tests (through `regstore-test-support`).
#[derive(Debug, Clone)]
pub struct Stream64 {
    state: u64,
}

impl Stream64 {
    /// A source starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Stream64 { state: seed }
    }

    /// Fills `buf` with the next bytes of the sequence (buffers must be multiples of 8 for the
    /// sequence to be independent of the buffer size; the suite always uses such sizes).
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// The next word of the sequence (SplitMix64's output for the advanced state).
    pub fn next_u64(&mut self) -> u64 {
        let z = splitmix64(self.state);
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        z
    }

    /// A draw in `0..n` (0 when `n` is 0): reproducible choices for randomised tests and soaks.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// SplitMix64's increment (2^64 divided by the golden ratio).
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function for `state`: `state` plus the golden gamma, mixed. A tiny,
/// well-mixed, version-independent function (a `rand` upgrade cannot change what a recorded
/// seed produces), usable statelessly as a hash of an index (`splitmix64(seed ^ i)`). Every
/// deterministic generator of regstore's tests, fault plans and benchmarks is built on it.
pub fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_reports_offset_and_lengths() {
        assert!(compare("x", b"abc", b"abc").is_ok());
        let e = compare("x", b"abd", b"abc").unwrap_err();
        assert!(e.contains("offset 2"), "{e}");
        let e = compare("x", b"ab", b"abc").unwrap_err();
        assert!(e.contains("got 2 bytes, expected 3 bytes"), "{e}");
        assert!(e.contains("offset 2"), "{e}");
    }

    #[test]
    fn generators_are_deterministic() {
        let a = random_bytes(&mut rng("c", "l"), 64);
        let b = random_bytes(&mut rng("c", "l"), 64);
        let c = random_bytes(&mut rng("c", "m"), 64);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let p = random_path(&mut rng("c", "p"), 32);
        assert!(regstore_driver_api::StoragePath::is_valid(&p), "{p}");
        let mut s1 = Stream64::new(7);
        let mut s2 = Stream64::new(7);
        let mut x = [0u8; 16];
        let mut y = [0u8; 8];
        s1.fill(&mut x);
        s2.fill(&mut y);
        assert_eq!(&x[..8], &y[..]);
    }
}
