//! A token bucket with time passed in: the one rate limiter moshd uses for
//! new candidates, probes and control connections.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held at once (the allowed burst).
    pub burst: f64,
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(now: Instant, rate: Rate) -> Self {
        TokenBucket {
            tokens: rate.burst,
            last: now,
        }
    }

    /// When a token was last asked for.
    pub fn last(&self) -> Instant {
        self.last
    }

    /// Takes one token if there is one. Time going backwards adds nothing.
    pub fn try_take(&mut self, now: Instant, rate: Rate) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let rate = Rate { per_second: 2.0, burst: 3.0 };
        let mut b = TokenBucket::new(t0, rate);
        assert!((0..3).all(|_| b.try_take(t0, rate)));
        assert!(!b.try_take(t0, rate));
        assert!(b.try_take(t0 + Duration::from_millis(500), rate));
        assert!(!b.try_take(t0 + Duration::from_millis(500), rate));
    }

    proptest! {
        #[test]
        fn never_exceeds_burst_plus_rate(steps in proptest::collection::vec(0u64..2000, 1..200)) {
            let t0 = Instant::now();
            let rate = Rate { per_second: 5.0, burst: 4.0 };
            let mut b = TokenBucket::new(t0, rate);
            let mut now = t0;
            let mut taken = 0u32;
            for ms in steps {
                now += Duration::from_millis(ms);
                if b.try_take(now, rate) { taken += 1; }
            }
            let secs = now.duration_since(t0).as_secs_f64();
            prop_assert!(f64::from(taken) <= 4.0 + secs * 5.0 + 1e-9);
        }
    }
}
