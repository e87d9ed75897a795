//! Every bound moshd enforces, in one place, with defaults an operator can
//! override. Nothing moshd holds grows without one of these.

use crate::rate::Rate;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Sessions in all.
    pub max_sessions: usize,
    /// Sessions of one uid.
    pub max_sessions_per_uid: usize,
    /// Candidate sockets (client addresses) per session.
    pub max_candidates: usize,
    /// New candidates per session.
    pub session_candidate_rate: Rate,
    /// New candidates across all sessions.
    pub global_candidate_rate: Rate,
    /// An unconfirmed candidate silent this long is closed.
    pub candidate_idle: Duration,
    /// Sessions one unmapped stock-client datagram is offered to, at most.
    pub probe_fanout: usize,
    /// Probes per unmapped source IP.
    pub probe_source_rate: Rate,
    /// Probes from all unmapped sources together.
    pub probe_global_rate: Rate,
    /// Unmapped source IPs whose probe budgets are tracked at once.
    pub max_probe_sources: usize,
    /// Offer unmapped datagrams to stock-client sessions that went silent,
    /// whatever their sshd address (a stock client that roamed). Off by
    /// default: it shows those sessions' mosh-servers others' ciphertext.
    pub roaming_probe: bool,
    /// How long a stock client must be silent to count as roamed.
    pub roam_silence: Duration,
    /// Notices ("this session is unknown") sent to clients, in all.
    pub notice_rate: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 20_000,
            max_sessions_per_uid: 100,
            max_candidates: 8,
            session_candidate_rate: Rate { per_second: 1.0, burst: 8.0 },
            global_candidate_rate: Rate { per_second: 2000.0, burst: 4000.0 },
            candidate_idle: Duration::from_secs(120),
            probe_fanout: 8,
            probe_source_rate: Rate { per_second: 2.0, burst: 8.0 },
            probe_global_rate: Rate { per_second: 500.0, burst: 1000.0 },
            max_probe_sources: 4096,
            roaming_probe: false,
            roam_silence: Duration::from_secs(4),
            notice_rate: Rate { per_second: 20.0, burst: 40.0 },
        }
    }
}

/// Descriptors moshd may hold besides its sessions': the control
/// connections it serves at once, and a few of its own (stdio, the public
/// and control sockets, the runtime's, files and sockets open for a moment).
pub fn fd_reserve() -> u64 {
    crate::control_budget::ControlLimits::default().max_connections as u64 + 64
}

/// A descriptor limit too low for the session cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdShortfall {
    /// Descriptors `max_sessions` sessions can need.
    pub needed: u64,
    /// About how many sessions get their descriptors within the limit.
    pub sessions_fit: u64,
}

/// Each session holds a pidfd, and once its client is heard a candidate
/// socket (more only while the client roams): `max_sessions` sessions need
/// 2 × max_sessions descriptors and the reserve. `None` when `fd_limit`
/// (RLIMIT_NOFILE) allows that.
pub fn fd_shortfall(max_sessions: usize, fd_limit: u64) -> Option<FdShortfall> {
    let needed = (max_sessions as u64).saturating_mul(2).saturating_add(fd_reserve());
    (needed > fd_limit).then(|| FdShortfall { needed, sessions_fit: fd_limit.saturating_sub(fd_reserve()) / 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_limit_against_the_session_cap() {
        let reserve = fd_reserve();
        assert_eq!(reserve, 1024 + 64);
        // The default cap needs 2 × 20,000 and the reserve.
        assert_eq!(fd_shortfall(20_000, 1_048_576), None);
        assert_eq!(fd_shortfall(20_000, 40_000 + reserve), None);
        assert_eq!(
            fd_shortfall(20_000, 40_000 + reserve - 1),
            Some(FdShortfall { needed: 40_000 + reserve, sessions_fit: 19_999 })
        );
        assert_eq!(fd_shortfall(20_000, 20_000), Some(FdShortfall { needed: 40_000 + reserve, sessions_fit: 9_456 }));
        // A limit below the reserve, and no limit at all.
        assert_eq!(fd_shortfall(10, 1024), Some(FdShortfall { needed: 20 + reserve, sessions_fit: 0 }));
        assert_eq!(fd_shortfall(usize::MAX, u64::MAX), None);
    }
}
