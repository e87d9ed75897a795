//! Who may hold control connections, and how many: a pure admission table.
//!
//! moshd serves a bounded number of control connections at once; without a
//! per-user share, one local user holding them open (or dribbling bytes)
//! would lock every other user out of registering sessions. Each uid gets a
//! share of the concurrent connections and a rate of new ones.

use crate::rate::{Rate, TokenBucket};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControlLimits {
    /// Connections served at once, in all.
    pub max_connections: usize,
    /// Connections one uid may hold at once.
    pub max_per_uid: usize,
    /// New connections per uid.
    pub per_uid_rate: Rate,
    /// uids tracked at once (beyond this, new uids are refused until some go idle).
    pub max_uids: usize,
}

impl Default for ControlLimits {
    fn default() -> Self {
        ControlLimits {
            max_connections: 1024,
            max_per_uid: 8,
            per_uid_rate: Rate { per_second: 10.0, burst: 20.0 },
            max_uids: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    UidFull,
    UidRate,
    TooManyUids,
}

struct Entry {
    active: usize,
    bucket: TokenBucket,
}

pub struct ControlBudget {
    limits: ControlLimits,
    active: usize,
    uids: HashMap<u32, Entry>,
}

impl ControlBudget {
    pub fn new(limits: ControlLimits) -> Self {
        ControlBudget { limits, active: 0, uids: HashMap::new() }
    }

    /// Admits a connection of `uid`; pair every success with `release`.
    pub fn admit(&mut self, now: Instant, uid: u32) -> Result<(), Refused> {
        if self.active >= self.limits.max_connections {
            return Err(Refused::Full);
        }
        if !self.uids.contains_key(&uid) {
            if self.uids.len() >= self.limits.max_uids {
                self.prune(now);
            }
            if self.uids.len() >= self.limits.max_uids {
                return Err(Refused::TooManyUids);
            }
        }
        let rate = self.limits.per_uid_rate;
        let entry = self
            .uids
            .entry(uid)
            .or_insert_with(|| Entry { active: 0, bucket: TokenBucket::new(now, rate) });
        if entry.active >= self.limits.max_per_uid {
            return Err(Refused::UidFull);
        }
        if !entry.bucket.try_take(now, rate) {
            return Err(Refused::UidRate);
        }
        entry.active += 1;
        self.active += 1;
        Ok(())
    }

    /// Why a connection was refused, in words the refused user can act on
    /// (mosh-server-mux prints it).
    pub fn reason(&self, why: Refused) -> String {
        let l = &self.limits;
        match why {
            Refused::Full => format!(
                "moshd is serving {} control connections, the most it serves at once; try again in a moment",
                l.max_connections
            ),
            Refused::UidFull => format!(
                "you already have {} control connections open to moshd, the most one user may",
                l.max_per_uid
            ),
            Refused::UidRate => format!(
                "too many new control connections from you (more than {} a second); try again in a moment",
                l.per_uid_rate.per_second
            ),
            Refused::TooManyUids => {
                "moshd is serving too many users at once; try again in a moment".to_owned()
            }
        }
    }

    pub fn release(&mut self, uid: u32) {
        if let Some(e) = self.uids.get_mut(&uid) {
            if e.active > 0 {
                e.active -= 1;
                self.active = self.active.saturating_sub(1);
            }
        }
    }

    /// Forgets uids with nothing open whose budget would be full again.
    fn prune(&mut self, now: Instant) {
        let rate = self.limits.per_uid_rate;
        let refill = std::time::Duration::from_secs_f64(rate.burst / rate.per_second.max(1e-3));
        self.uids
            .retain(|_, e| e.active > 0 || now.saturating_duration_since(e.bucket.last()) < refill);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn one_uid_cannot_take_every_slot() {
        let t0 = Instant::now();
        let mut b = ControlBudget::new(ControlLimits::default());
        for _ in 0..8 {
            b.admit(t0, 1000).unwrap();
        }
        assert_eq!(b.admit(t0, 1000), Err(Refused::UidFull));
        // Another user still gets in.
        assert_eq!(b.admit(t0, 1001), Ok(()));
        b.release(1000);
        assert_eq!(b.admit(t0, 1000), Ok(()));
    }

    #[test]
    fn new_connections_are_rate_limited_per_uid() {
        let t0 = Instant::now();
        let mut b = ControlBudget::new(ControlLimits { max_per_uid: 1000, ..ControlLimits::default() });
        for _ in 0..20 {
            b.admit(t0, 7).unwrap();
            b.release(7);
        }
        assert_eq!(b.admit(t0, 7), Err(Refused::UidRate));
        assert_eq!(b.admit(t0 + Duration::from_millis(100), 7), Ok(()));
    }

    #[test]
    fn each_refusal_names_its_limit() {
        let b = ControlBudget::new(ControlLimits::default());
        assert!(b.reason(Refused::Full).contains("serving 1024 control connections"));
        assert!(b.reason(Refused::UidFull).contains("you already have 8 control connections open"));
        assert!(b.reason(Refused::UidRate).contains("more than 10 a second"));
        assert!(b.reason(Refused::TooManyUids).contains("too many users"));
    }

    proptest! {
        #[test]
        fn totals_stay_within_limits(ops in proptest::collection::vec((0u32..20, any::<bool>(), 0u64..200), 1..400)) {
            let limits = ControlLimits { max_connections: 16, max_per_uid: 3, max_uids: 8, ..ControlLimits::default() };
            let mut b = ControlBudget::new(limits);
            let mut now = Instant::now();
            let mut held: Vec<u32> = Vec::new();
            for (uid, open, dt) in ops {
                now += Duration::from_millis(dt);
                if open {
                    if b.admit(now, uid).is_ok() { held.push(uid); }
                } else if let Some(i) = held.iter().position(|u| *u == uid) {
                    held.swap_remove(i);
                    b.release(uid);
                }
                prop_assert_eq!(b.active, held.len());
                prop_assert!(b.active <= 16);
                prop_assert!(b.uids.len() <= 8);
                for u in 0..20 { prop_assert!(held.iter().filter(|h| **h == u).count() <= 3); }
            }
        }
    }
}
