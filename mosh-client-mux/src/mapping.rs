//! Which outer socket carries the datagrams of which mosh-client socket.
//!
//! mosh-client hops to a fresh source port after 10 s without a round trip
//! and keeps its old sockets for about 60 s to receive late replies. The relay
//! mirrors that one to one: each mosh-client source address owns one outer
//! socket (so a hop gets a new NAT mapping too), and replies arriving on that
//! outer socket go back to that address. This table is the bookkeeping, with
//! no sockets and no clock: time is passed in. It stays small (a cap with
//! least-recently-used eviction) and forgets idle mappings lazily, when a new
//! one is made, so an idle relay never needs a timer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most mosh-client sockets mirrored at once (mosh-client keeps a handful).
pub const MAX_MAPPINGS: usize = 16;
/// A mapping with no datagram from mosh-client for this long is forgotten
/// (mosh-client closes an old socket after 60 s).
pub const IDLE_EXPIRY: Duration = Duration::from_secs(120);

/// Why a mapping left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// No datagram from its source for the idle expiry.
    Idle,
    /// The table was full and this was the least recently used.
    LeastRecentlyUsed,
    /// The same source was inserted again.
    Replaced,
}

/// A mapping that left the table, with the value it held (for the caller to close).
#[derive(Debug)]
pub struct Removed<T> {
    pub source: SocketAddr,
    pub value: T,
    pub why: Removal,
}

#[derive(Debug)]
struct Entry<T> {
    source: SocketAddr,
    last_used: Instant,
    value: T,
}

/// Source address -> `T` (the outer socket), bounded and LRU-ordered.
#[derive(Debug)]
pub struct MappingTable<T> {
    cap: usize,
    idle: Duration,
    entries: Vec<Entry<T>>,
}

impl<T> Default for MappingTable<T> {
    fn default() -> Self {
        Self::new(MAX_MAPPINGS, IDLE_EXPIRY)
    }
}

impl<T> MappingTable<T> {
    /// A table holding at most `cap` (at least 1) mappings.
    pub fn new(cap: usize, idle: Duration) -> Self {
        let cap = cap.max(1);
        MappingTable {
            cap,
            idle,
            entries: Vec::with_capacity(cap),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, source: SocketAddr) -> bool {
        self.entries.iter().any(|e| e.source == source)
    }

    /// The value for `source`, marking it used at `now`.
    pub fn get(&mut self, source: SocketAddr, now: Instant) -> Option<&T> {
        let entry = self.entries.iter_mut().find(|e| e.source == source)?;
        // A clock that steps back never makes a mapping look older.
        entry.last_used = entry.last_used.max(now);
        Some(&entry.value)
    }

    /// Adds `source -> value` used at `now`. First forgets mappings idle for
    /// the expiry, then, if still full, the least recently used one.
    /// Returns what left the table; the new mapping is always kept.
    pub fn insert(&mut self, source: SocketAddr, value: T, now: Instant) -> Vec<Removed<T>> {
        let mut removed = Vec::new();
        if let Some(at) = self.entries.iter().position(|e| e.source == source) {
            let old = self.entries.swap_remove(at);
            removed.push(Removed {
                source: old.source,
                value: old.value,
                why: Removal::Replaced,
            });
        }
        let idle = self.idle;
        let mut at = 0;
        while let Some(entry) = self.entries.get(at) {
            if now.saturating_duration_since(entry.last_used) >= idle {
                let old = self.entries.swap_remove(at);
                removed.push(Removed {
                    source: old.source,
                    value: old.value,
                    why: Removal::Idle,
                });
            } else {
                at += 1;
            }
        }
        while self.entries.len() >= self.cap {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(at, _)| at)
            else {
                break;
            };
            let old = self.entries.swap_remove(oldest);
            removed.push(Removed {
                source: old.source,
                value: old.value,
                why: Removal::LeastRecentlyUsed,
            });
        }
        self.entries.push(Entry {
            source,
            last_used: now,
            value,
        });
        removed
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|e| &e.value)
    }

    /// Forgets `source`, returning its value.
    pub fn remove(&mut self, source: SocketAddr) -> Option<T> {
        let at = self.entries.iter().position(|e| e.source == source)?;
        Some(self.entries.swap_remove(at).value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn secs(base: Instant, s: u64) -> Instant {
        base + Duration::from_secs(s)
    }

    #[test]
    fn lookup_after_insert_and_touch() {
        let t0 = Instant::now();
        let mut t = MappingTable::default();
        assert!(t.get(addr(1), t0).is_none());
        assert!(t.insert(addr(1), "a", t0).is_empty());
        assert_eq!(t.get(addr(1), secs(t0, 1)), Some(&"a"));
        assert_eq!(t.len(), 1);
        assert_eq!(t.values().collect::<Vec<_>>(), vec![&"a"]);
        assert_eq!(t.remove(addr(1)), Some("a"));
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_evicts_least_recently_used() {
        let t0 = Instant::now();
        let mut t = MappingTable::new(3, IDLE_EXPIRY);
        for p in 1..=3 {
            assert!(t.insert(addr(p), p, secs(t0, p.into())).is_empty());
        }
        // Port 1 is used again, so port 2 is now the oldest.
        assert_eq!(t.get(addr(1), secs(t0, 10)), Some(&1));
        let removed = t.insert(addr(4), 4, secs(t0, 11));
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].source, addr(2));
        assert_eq!(removed[0].value, 2);
        assert_eq!(removed[0].why, Removal::LeastRecentlyUsed);
        assert_eq!(t.len(), 3);
        assert!(t.contains(addr(1)) && t.contains(addr(3)) && t.contains(addr(4)));
    }

    #[test]
    fn idle_mappings_go_only_when_a_new_one_is_made() {
        let t0 = Instant::now();
        let mut t = MappingTable::default();
        t.insert(addr(1), 1, t0);
        t.insert(addr(2), 2, secs(t0, 100));
        // Long idle, but nothing new: still there, and use revives it.
        assert_eq!(t.get(addr(1), secs(t0, 500)), Some(&1));
        let removed = t.insert(addr(3), 3, secs(t0, 500));
        assert_eq!(removed.len(), 1);
        assert_eq!(
            (removed[0].source, removed[0].why),
            (addr(2), Removal::Idle)
        );
        // Exactly at the expiry counts as idle.
        let removed = t.insert(addr(4), 4, secs(t0, 620));
        let gone: Vec<_> = removed.iter().map(|r| r.source).collect();
        assert_eq!(gone.len(), 2);
        assert!(gone.contains(&addr(1)) && gone.contains(&addr(3)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn reinsert_replaces() {
        let t0 = Instant::now();
        let mut t = MappingTable::default();
        t.insert(addr(1), 1, t0);
        let removed = t.insert(addr(1), 9, t0);
        assert_eq!(removed.len(), 1);
        assert_eq!((removed[0].value, removed[0].why), (1, Removal::Replaced));
        assert_eq!(t.get(addr(1), t0), Some(&9));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn clock_stepping_back_does_not_age_a_mapping() {
        let t0 = Instant::now();
        let mut t = MappingTable::new(2, IDLE_EXPIRY);
        t.insert(addr(1), 1, secs(t0, 50));
        t.insert(addr(2), 2, secs(t0, 60));
        t.get(addr(2), secs(t0, 10));
        let removed = t.insert(addr(3), 3, secs(t0, 61));
        assert_eq!(removed[0].source, addr(1));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Datagram { port: u16, advance: u64 },
        Remove { port: u16 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u16..24, 0u64..90).prop_map(|(port, advance)| Op::Datagram { port, advance }),
            1 => (0u16..24).prop_map(|port| Op::Remove { port }),
        ]
    }

    proptest! {
        /// Drives the table the way the relay does (look up, insert on a
        /// miss) and checks it against a plain model.
        #[test]
        fn behaves_like_the_model(cap in 1usize..6, ops in proptest::collection::vec(op(), 0..200)) {
            let t0 = Instant::now();
            let idle = Duration::from_secs(120);
            let mut now = 0u64;
            let mut table = MappingTable::new(cap, idle);
            // port -> (last used second, value)
            let mut model: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
            for (n, op) in ops.into_iter().enumerate() {
                let value = n as u64;
                match op {
                    Op::Remove { port } => {
                        prop_assert_eq!(table.remove(addr(port)), model.remove(&port).map(|(_, v)| v));
                    }
                    Op::Datagram { port, advance } => {
                        now += advance;
                        let at = secs(t0, now);
                        let got = table.get(addr(port), at).copied();
                        if let Some(entry) = model.get_mut(&port) {
                            prop_assert_eq!(got, Some(entry.1));
                            entry.0 = now;
                            continue;
                        }
                        prop_assert_eq!(got, None);
                        let removed = table.insert(addr(port), value, at);
                        let mut expect_idle: Vec<u16> = model.iter()
                            .filter(|(_, (used, _))| now - used >= idle.as_secs())
                            .map(|(p, _)| *p).collect();
                        for p in &expect_idle { model.remove(p); }
                        let mut expect_lru = Vec::new();
                        while model.len() >= cap {
                            let oldest = model.iter().map(|(p, (used, _))| (*used, *p)).min();
                            let Some((oldest_used, _)) = oldest else { break };
                            // Ties may go either way: accept any port at that age.
                            let removed_lru: Vec<u16> = removed.iter()
                                .filter(|r| r.why == Removal::LeastRecentlyUsed)
                                .map(|r| r.source.port()).collect();
                            let pick = removed_lru.iter().copied()
                                .find(|p| model.get(p).is_some_and(|(u, _)| *u == oldest_used) && !expect_lru.contains(p));
                            prop_assert!(pick.is_some(), "LRU eviction did not take an oldest mapping");
                            let pick = pick.unwrap_or_default();
                            model.remove(&pick);
                            expect_lru.push(pick);
                        }
                        let mut got_idle: Vec<u16> = removed.iter()
                            .filter(|r| r.why == Removal::Idle).map(|r| r.source.port()).collect();
                        got_idle.sort_unstable();
                        expect_idle.sort_unstable();
                        prop_assert_eq!(got_idle, expect_idle);
                        prop_assert_eq!(removed.iter().filter(|r| r.why == Removal::LeastRecentlyUsed).count(), expect_lru.len());
                        prop_assert!(removed.iter().all(|r| r.why != Removal::Replaced));
                        model.insert(port, (now, value));
                    }
                }
                prop_assert!(table.len() <= cap);
                prop_assert_eq!(table.len(), model.len());
                for p in model.keys() { prop_assert!(table.contains(addr(*p))); }
            }
        }
    }
}
