//! One registered session and its candidates: the state moshd keeps per
//! mosh-server, and nothing more (no key, no payload).

use crate::rate::TokenBucket;
use mosh_mux_proto::Sid;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Names one candidate socket in the I/O layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CandKey(pub u64);

/// A client address seen for a session, with its own loopback socket to
/// mosh-server. mosh-server replies only to the newest authenticated source,
/// so the candidate it answers on is the client's real address.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: CandKey,
    pub addr: SocketAddr,
    /// Which public socket the client's datagrams arrive on (and replies leave by).
    pub listener: usize,
    /// Framed by mosh-client-mux, or a stock client's raw datagrams.
    pub framed: bool,
    pub last_from_client: Instant,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl Traffic {
    pub fn add(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

#[derive(Debug)]
pub struct Session {
    pub sid: Sid,
    pub uid: u32,
    pub user: String,
    pub server_port: u16,
    pub server_pid: u32,
    pub ssh_client: Option<IpAddr>,
    pub since_unix: u64,
    pub candidates: Vec<Candidate>,
    /// The candidate mosh-server last answered on.
    pub confirmed: Option<CandKey>,
    pub last_heard: Option<Instant>,
    pub to_server: Traffic,
    pub to_client: Traffic,
    pub new_candidates: TokenBucket,
}

impl Session {
    pub fn candidate(&self, key: CandKey) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.key == key)
    }

    pub fn confirmed_candidate(&self) -> Option<&Candidate> {
        self.confirmed.and_then(|k| self.candidate(k))
    }

    /// The least recently heard candidate that is not the confirmed one.
    pub fn evictable(&self) -> Option<usize> {
        self.candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| Some(c.key) != self.confirmed)
            .min_by_key(|(_, c)| c.last_from_client)
            .map(|(i, _)| i)
    }
}
