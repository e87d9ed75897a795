//! Tools for benchmarking mosh-mux (issue 5), used by `scripts/bench`.
//!
//! The binaries are thin: `loadgen` (synthetic client sessions: paced or
//! closed-loop load, round-trip times), `udpecho` (synthetic inner
//! mosh-servers that register with moshd and echo), `minfwd` (the minimal
//! userspace forwarder baseline), `udprtt` (a ping-pong latency probe,
//! also usable as the "mosh-client" child of mosh-client-mux) and `probertt`
//! (what moshd's probe of a new stock-client source costs). Two more serve
//! the namespace lab's tests: `flood` (a bounded random-datagram flood, TEST-NET
//! only; issue 3) and `nfdelay` (delays forwarded packets through NFQUEUE where
//! the kernel has no tc netem; issue 4). What they share lives here, one
//! concept per module.

pub mod control;
pub mod cpuclock;
pub mod epoll;
pub mod identity;
pub mod mmsg;
pub mod pacer;
pub mod payload;
pub mod pingpong;
pub mod rlimit;
pub mod sids;
pub mod stats;
