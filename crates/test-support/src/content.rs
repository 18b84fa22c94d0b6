//! Reproducible pseudo-random content. The generator itself is the conformance crate's
//! (published, so driver authors' suites and ours write the same bytes); this module gives the
//! shapes tests want.

pub use regstore_driver_conformance::{splitmix64, Stream64 as SplitMix64};

/// `len` bytes of the SplitMix64 sequence from `seed`: the same seed gives the same bytes on
/// every run and version (a failure can be reproduced), different seeds give different bytes.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    SplitMix64::new(seed).fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_reproducible_and_seeded() {
        assert_eq!(content(1, 100), content(1, 100));
        assert_ne!(content(1, 100), content(2, 100));
        assert_eq!(&content(1, 100)[..13], &content(1, 13)[..]);
        // The first word of the sequence from 0 is SplitMix64's published first output.
        assert_eq!(content(0, 8), 0xE220_A839_7B1D_CDAFu64.to_le_bytes());
    }
}
