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
        }
    }
}
