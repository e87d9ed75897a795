//! Open-loop pacing: how many datagrams are due by now at a fixed rate,
//! without drift (the schedule is `start + k / rate`, not a chain of sleeps).

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    per_second: f64,
    issued: u64,
    /// Datagrams skipped because the sender fell behind by more than `max_lag`.
    pub skipped: u64,
    max_lag: u64,
}

impl Pacer {
    /// `per_second` datagrams a second from `start`; a backlog larger than
    /// `max_lag` of schedule is skipped (and counted) rather than burst out.
    pub fn new(start: Instant, per_second: f64, max_lag: Duration) -> Self {
        let max_lag = (per_second * max_lag.as_secs_f64()).ceil().max(1.0) as u64;
        Pacer {
            start,
            per_second: per_second.max(0.0),
            issued: 0,
            skipped: 0,
            max_lag,
        }
    }

    /// How many datagrams to send now (the caller sends them all).
    pub fn due(&mut self, now: Instant) -> u64 {
        if self.per_second <= 0.0 {
            return 0;
        }
        let target =
            (now.saturating_duration_since(self.start).as_secs_f64() * self.per_second) as u64;
        let mut due = target.saturating_sub(self.issued);
        if due > self.max_lag {
            self.skipped += due - self.max_lag;
            due = self.max_lag;
        }
        self.issued = target.max(self.issued);
        due
    }

    /// When the next datagram falls due.
    pub fn next_at(&self) -> Option<Instant> {
        if self.per_second <= 0.0 {
            return None;
        }
        Some(self.start + Duration::from_secs_f64((self.issued + 1) as f64 / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_without_drift_and_caps_backlog() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1000.0, Duration::from_millis(10));
        assert_eq!(p.due(t0), 0);
        assert_eq!(p.due(t0 + Duration::from_millis(5)), 5);
        assert_eq!(p.due(t0 + Duration::from_millis(5)), 0);
        assert_eq!(p.due(t0 + Duration::from_millis(105)), 10);
        assert_eq!(p.skipped, 90);
        assert!(p.next_at().unwrap() > t0 + Duration::from_millis(105));
        assert_eq!(
            Pacer::new(t0, 0.0, Duration::ZERO).due(t0 + Duration::from_secs(1)),
            0
        );
    }
}
