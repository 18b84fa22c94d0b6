//! The benchmark's payload: deterministic pseudo-random bytes, generated piece by piece.
//!
//! Every client writes exactly the same bytes (same seed), and the bytes do not repeat, so a
//! deduplicating server (Garage stores blocks by content hash) cannot make one client's upload
//! cheaper than another's. Pieces are generated on demand so that the caller's side of the
//! measurement holds only the piece being handed over, not the object.

use bytes::Bytes;

/// Size of the pieces the benchmark hands to a writer, one `write` call each.
pub const PIECE: usize = 1024 * 1024;

// SplitMix64's output function (the one generator of regstore's tests and benchmarks): fast,
// stateless per index, good enough to defeat block deduplication.
use regstore_driver_conformance::splitmix64 as mix;

/// Piece `index` of the payload (`len` bytes; every piece but the last is [`PIECE`] long).
pub fn piece(seed: u64, index: u64, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    let base = mix(seed ^ mix(index));
    let mut i = 0u64;
    while out.len() + 8 <= len {
        out.extend_from_slice(&mix(base.wrapping_add(i)).to_le_bytes());
        i += 1;
    }
    let tail = mix(base.wrapping_add(i)).to_le_bytes();
    let rest = len - out.len();
    out.extend_from_slice(&tail[..rest]);
    Bytes::from(out)
}

/// A seed of its own for `label` (a key prefix), so that runs which must not share blocks
/// (two attempts measured against each other) write different bytes.
pub fn seed_for(seed: u64, label: &str) -> u64 {
    // FNV-1a over the label, then mixed with the run's seed.
    let h = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    mix(seed ^ mix(h))
}

/// The pieces of a payload of `size` bytes, as (index, length) pairs.
pub fn pieces(size: u64) -> impl Iterator<Item = (u64, usize)> {
    let piece = PIECE as u64;
    let n = size.div_ceil(piece);
    (0..n).map(move |i| {
        let len = (size - i * piece).min(piece) as usize;
        (i, len)
    })
}

/// Writes the whole payload to `path` (the file curl uploads), in pieces.
pub fn write_file(path: &std::path::Path, seed: u64, size: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (i, len) in pieces(size) {
        f.write_all(&piece(seed, i, len))?;
    }
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_size_exactly() {
        let size = 3 * PIECE as u64 + 5;
        let v: Vec<_> = pieces(size).collect();
        assert_eq!(v.len(), 4);
        assert_eq!(v.iter().map(|(_, l)| *l as u64).sum::<u64>(), size);
        assert_eq!(v[3], (3, 5));
    }

    #[test]
    fn pieces_are_deterministic_and_distinct() {
        assert_eq!(piece(7, 1, 100), piece(7, 1, 100));
        assert_ne!(piece(7, 1, 100), piece(7, 2, 100));
        assert_ne!(piece(7, 1, 100), piece(8, 1, 100));
        assert_eq!(piece(7, 1, 13).len(), 13);
    }
}
