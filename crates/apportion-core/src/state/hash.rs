//! A small stable 64-bit hasher for [`State::solver_hash`](super::State::solver_hash).
//!
//! The hash must be equal in every process that sees the same inputs, so neither std's
//! randomly seeded hasher nor the `Hash` trait (whose integer encoding follows the
//! platform's byte order and width) is used: bytes are fed as explicit little-endian
//! words. Each word is mixed with a folded 64x64->128 multiply, which spreads every input
//! bit over the state at the cost of one multiplication per 8 bytes. It detects changes;
//! it is not a defence against someone crafting collisions.

use std::hash::Hasher;

/// Digits of pi, as "nothing up my sleeve" constants.
const SEED: u64 = 0x243f_6a88_85a3_08d3;
const MULTIPLIER: u64 = 0x1319_8a2e_0370_7344;
const INCREMENT: u64 = 0xa409_3822_299f_31d0;

/// Accumulates words and strings into a 64-bit hash that is the same on every platform.
/// It also serves as the (unseeded, fast) hasher of the build's member lookup table.
#[derive(Clone, Copy)]
pub(crate) struct StableHasher {
    state: u64,
}

impl Default for StableHasher {
    /// A hasher in its fixed starting state.
    fn default() -> Self {
        Self { state: SEED }
    }
}

/// One mixing step: a folded 64x64->128 multiply of the state with the word.
fn mix(state: u64, word: u64) -> u64 {
    let product = u128::from(state ^ word) * u128::from(MULTIPLIER);
    ((product as u64) ^ ((product >> 64) as u64)).wrapping_add(INCREMENT)
}

impl StableHasher {
    /// Mixes one 64-bit word into the state.
    pub(crate) fn write_u64(&mut self, word: u64) {
        self.state = mix(self.state, word);
    }

    /// Mixes a string, preceded by its length so that `("ab", "c")` and `("a", "bc")`
    /// hash differently.
    pub(crate) fn write_str(&mut self, text: &str) {
        self.write_u64(text.len() as u64);
        self.write(text.as_bytes());
    }
}

impl Hasher for StableHasher {
    /// Mixes bytes as little-endian words, the last one padded with zeros. Callers that
    /// need unambiguous boundaries write lengths first (as [`StableHasher::write_str`] does).
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    /// The hash, after one more mixing round so that the last word also reaches every
    /// output bit.
    fn finish(&self) -> u64 {
        mix(self.state, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::StableHasher;
    use std::hash::Hasher;

    fn hash_strs(parts: &[&str]) -> u64 {
        let mut hasher = StableHasher::default();
        for part in parts {
            hasher.write_str(part);
        }
        hasher.finish()
    }

    #[test]
    fn equal_inputs_give_equal_hashes_and_a_fixed_value() {
        assert_eq!(
            hash_strs(&["zone#a", "item-1"]),
            hash_strs(&["zone#a", "item-1"])
        );
        // Pinned so that a change to the algorithm, which would make processes of two
        // versions disagree, is a deliberate one.
        assert_eq!(hash_strs(&["apportion"]), 0xe79f_c525_131c_6ee5);
    }

    #[test]
    fn boundaries_and_tails_matter() {
        assert_ne!(hash_strs(&["ab", "c"]), hash_strs(&["a", "bc"]));
        assert_ne!(hash_strs(&["abcdefgh"]), hash_strs(&["abcdefgh\0"]));
        assert_ne!(hash_strs(&[""]), hash_strs(&[]));
        assert_ne!(hash_strs(&["0123456789"]), hash_strs(&["0123456788"]));
    }
}
