//! Deterministic session ids for synthetic sessions: the echo servers that
//! register them and the load generator that sends on them derive the same
//! sid from (seed, index) without talking to each other.

use mosh_mux_proto::Sid;

/// splitmix64: a cheap, well-mixed bijection of u64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sid of synthetic session `index` in run `seed`.
pub fn sid(seed: u64, index: u32) -> Sid {
    Sid(mix(mix(seed) ^ u64::from(index)).to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_and_stable() {
        let all: HashSet<Sid> = (0..20_000).map(|i| sid(42, i)).collect();
        assert_eq!(all.len(), 20_000);
        assert_eq!(sid(42, 5), sid(42, 5));
        assert_ne!(sid(42, 5), sid(43, 5));
    }
}
