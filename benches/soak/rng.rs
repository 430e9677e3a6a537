//! A small deterministic generator (SplitMix64): every random choice of a
//! connection comes from the run's seed and the connection's id, so the
//! plan of a connection named in a failure can be made again.

/// SplitMix64's finaliser: a good 64-bit mix of `x`.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// SplitMix64.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(mix(seed))
    }

    /// The generator for `(a, b)`: a connection's plan from the seed and
    /// its id, a message's body from its connection and sequence number.
    pub(crate) fn of(a: u64, b: u64) -> Self {
        Self::new(mix(a) ^ b.rotate_left(17))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True `percent` times in a hundred.
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed of a run: `SOAK_SEED`, else a fresh one from the OS.
pub(crate) fn run_seed() -> u64 {
    if let Some(seed) = std::env::var(crate::process::SEED)
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    let mut bytes = [0; 8];
    getrandom::getrandom(&mut bytes).expect("getrandom");
    u64::from_le_bytes(bytes) >> 1
}
