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
