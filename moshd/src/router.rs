//! The routing table: which session a datagram belongs to, which candidate
//! socket carries it, and where mosh-server's replies go. Pure: the I/O layer
//! passes datagrams and the time in, and acts on what comes back.
//!
//! Lookups are O(1) in the number of sessions: a framed datagram's sid
//! indexes the table, a candidate key indexes its session, and a stock
//! client's confirmed address indexes its session; within a session the
//! candidate list is at most `max_candidates` long.

use crate::limits::Limits;
use crate::rate::TokenBucket;
use crate::registration::{check_ownership, Facts, Refusal};
use crate::session::{CandKey, Candidate, Session, Traffic};
use mosh_mux_proto::control::{Registration, SessionStatus};
use mosh_mux_proto::header::{classify, Datagram, Malformed, HEADER_LEN};
use mosh_mux_proto::{Notice, Sid};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What to do with a datagram from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientRoute {
    /// Send `datagram[payload_at..]` on candidate `key`.
    Forward { key: CandKey, payload_at: usize },
    /// Open candidate `key` (a loopback socket connected to
    /// 127.0.0.1:`server_port`), close `evicted` if any, then forward.
    Open {
        key: CandKey,
        server_port: u16,
        payload_at: usize,
        evicted: Option<CandKey>,
    },
    /// A stock client's datagram from a source not yet mapped: send the
    /// whole datagram on each of these (`Forward` or `Open`, `payload_at` 0).
    /// Whichever session's mosh-server answers owns the source from then on.
    Probe(Vec<ClientRoute>),
    /// Answer the sender with this notice (it is smaller than what it sent).
    Notify(Notice),
    Drop(DropReason),
}

/// Why a datagram went nowhere. Each reason has a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed(Malformed),
    UnknownSid,
    UnknownSource,
    SessionCandidateRate,
    GlobalCandidateRate,
    UnknownCandidate,
    /// Probes from this source IP are over their rate.
    ProbeSourceRate,
    /// Probes from all sources are over their rate.
    ProbeGlobalRate,
    /// Too many unmapped sources are being probed at once.
    ProbeSourcesFull,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed(Malformed::TooShort),
        DropReason::Malformed(Malformed::UnknownMagic),
        DropReason::UnknownSid,
        DropReason::UnknownSource,
        DropReason::SessionCandidateRate,
        DropReason::GlobalCandidateRate,
        DropReason::UnknownCandidate,
        DropReason::ProbeSourceRate,
        DropReason::ProbeGlobalRate,
        DropReason::ProbeSourcesFull,
    ];

    pub fn index(self) -> usize {
        match self {
            DropReason::Malformed(Malformed::TooShort) => 0,
            DropReason::Malformed(Malformed::UnknownMagic) => 1,
            DropReason::UnknownSid => 2,
            DropReason::UnknownSource => 3,
            DropReason::SessionCandidateRate => 4,
            DropReason::GlobalCandidateRate => 5,
            DropReason::UnknownCandidate => 6,
            DropReason::ProbeSourceRate => 7,
            DropReason::ProbeGlobalRate => 8,
            DropReason::ProbeSourcesFull => 9,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed(m) => m.as_str(),
            DropReason::UnknownSid => "unknown_sid",
            DropReason::UnknownSource => "unknown_source",
            DropReason::SessionCandidateRate => "session_candidate_rate",
            DropReason::GlobalCandidateRate => "global_candidate_rate",
            DropReason::UnknownCandidate => "unknown_candidate",
            DropReason::ProbeSourceRate => "probe_source_rate",
            DropReason::ProbeGlobalRate => "probe_global_rate",
            DropReason::ProbeSourcesFull => "probe_sources_full",
        }
    }
}

/// Where a reply from mosh-server goes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct ServerRoute {
    pub listener: usize,
    pub addr: SocketAddr,
}

/// Something worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Registered { sid: Sid, uid: u32, port: u16, pid: u32 },
    ClientConfirmed { sid: Sid, addr: SocketAddr, framed: bool },
    ClientMoved { sid: Sid, from: SocketAddr, to: SocketAddr },
    Ended { sid: Sid, uid: u32 },
}

/// A session as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub uid: u32,
    pub user: String,
    pub since_unix: u64,
    #[serde(flatten)]
    pub registration: Registration,
}

pub struct Router {
    limits: Limits,
    sessions: HashMap<Sid, Session>,
    by_key: HashMap<CandKey, Sid>,
    /// Confirmed addresses of stock (unframed) clients.
    by_raw_source: HashMap<SocketAddr, Sid>,
    /// Sessions by the client address sshd reported when they started.
    by_ssh_ip: HashMap<IpAddr, Vec<Sid>>,
    /// Probe budgets of unmapped source IPs.
    probe_sources: HashMap<IpAddr, TokenBucket>,
    probe_budget: TokenBucket,
    per_uid: HashMap<u32, usize>,
    next_key: u64,
    new_candidates: TokenBucket,
    drops: [u64; DropReason::ALL.len()],
    /// Datagrams sent as probes (one per probed session).
    probes: u64,
    notice_budget: TokenBucket,
    /// Notices sent to clients.
    notices: u64,
    events: VecDeque<Event>,
    /// The roaming probe's targets: stock-client sessions that were silent
    /// when last scanned, most recently heard first, and when that was.
    roam_scan: Option<(Instant, Vec<Silent>)>,
}

/// A session and when its client was last heard from.
type Silent = (Option<Instant>, Sid);

/// How often the roaming probe's list of silent sessions is rebuilt at
/// most: a flood of strangers costs at most this many scans of the table.
const ROAM_SCAN_EVERY: Duration = Duration::from_millis(250);

/// Events kept for the I/O layer to log; more than this unread are dropped.
const MAX_EVENTS: usize = 1024;

impl Router {
    pub fn new(now: Instant, limits: Limits) -> Self {
        let new_candidates = TokenBucket::new(now, limits.global_candidate_rate);
        let probe_budget = TokenBucket::new(now, limits.probe_global_rate);
        let notice_budget = TokenBucket::new(now, limits.notice_rate);
        Router {
            limits,
            sessions: HashMap::new(),
            by_key: HashMap::new(),
            by_raw_source: HashMap::new(),
            by_ssh_ip: HashMap::new(),
            probe_sources: HashMap::new(),
            probe_budget,
            per_uid: HashMap::new(),
            next_key: 1,
            new_candidates,
            drops: [0; DropReason::ALL.len()],
            probes: 0,
            notice_budget,
            notices: 0,
            events: VecDeque::new(),
            roam_scan: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn session(&self, sid: &Sid) -> Option<&Session> {
        self.sessions.get(sid)
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Datagrams sent as probes so far.
    pub fn probes(&self) -> u64 {
        self.probes
    }

    /// Every counter, by name, for status and tests.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = DropReason::ALL
            .iter()
            .map(|r| (r.as_str(), self.drops[r.index()]))
            .collect();
        out.push(("probes", self.probes));
        out.push(("notices", self.notices));
        out
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(event);
        }
    }

    /// Accepts a registration from `uid` if the facts show the port and pid
    /// are its own, the sid is free and no cap is reached.
    pub fn register(
        &mut self,
        now: Instant,
        now_unix: u64,
        uid: u32,
        user: &str,
        reg: &Registration,
        facts: &Facts,
    ) -> Result<(), Refusal> {
        if self.sessions.contains_key(&reg.sid) {
            return Err(Refusal::SidInUse);
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Err(Refusal::Full(self.sessions.len()));
        }
        let mine = self.per_uid.get(&uid).copied().unwrap_or(0);
        if mine >= self.limits.max_sessions_per_uid {
            return Err(Refusal::UserFull(mine));
        }
        check_ownership(uid, reg.port, reg.pid, facts)?;
        let session = Session {
            sid: reg.sid,
            uid,
            user: user.to_owned(),
            server_port: reg.port,
            server_pid: reg.pid,
            ssh_client: reg.ssh_client,
            since_unix: now_unix,
            candidates: Vec::new(),
            confirmed: None,
            last_heard: None,
            to_server: Traffic::default(),
            to_client: Traffic::default(),
            new_candidates: TokenBucket::new(now, self.limits.session_candidate_rate),
        };
        self.sessions.insert(reg.sid, session);
        if let Some(ip) = reg.ssh_client {
            self.by_ssh_ip.entry(ip.to_canonical()).or_default().push(reg.sid);
        }
        *self.per_uid.entry(uid).or_insert(0) += 1;
        self.emit(Event::Registered { sid: reg.sid, uid, port: reg.port, pid: reg.pid });
        Ok(())
    }

    /// Routes a datagram that arrived on public socket `listener` from `from`.
    pub fn route_from_client(
        &mut self,
        now: Instant,
        listener: usize,
        from: SocketAddr,
        datagram: &[u8],
    ) -> ClientRoute {
        match classify(datagram) {
            Err(m) => self.drop(DropReason::Malformed(m)),
            Ok(Datagram::Framed { sid, payload }) => {
                if !self.sessions.contains_key(&sid) {
                    // Tell the relay, so its user learns why nothing happens;
                    // within a global budget, as every answer to strangers is.
                    let drop = self.drop(DropReason::UnknownSid);
                    if self.notice_budget.try_take(now, self.limits.notice_rate) {
                        self.notices += 1;
                        return ClientRoute::Notify(Notice::UnknownSession);
                    }
                    return drop;
                }
                self.route_to(now, sid, listener, from, true, HEADER_LEN, payload.len(), false)
            }
            Ok(Datagram::Raw(_)) => match self.by_raw_source.get(&from) {
                Some(&sid) => self.route_to(now, sid, listener, from, false, 0, datagram.len(), false),
                None => self.probe(now, listener, from, datagram.len()),
            },
        }
    }

    /// Routes to `sid` through the candidate for `from`, opening one if new.
    /// A probe does not count as hearing from the session's client.
    #[allow(clippy::too_many_arguments)]
    fn route_to(
        &mut self,
        now: Instant,
        sid: Sid,
        listener: usize,
        from: SocketAddr,
        framed: bool,
        payload_at: usize,
        len: usize,
        probe: bool,
    ) -> ClientRoute {
        let Some(session) = self.sessions.get_mut(&sid) else {
            return self.drop(DropReason::UnknownSid);
        };
        if !probe {
            session.last_heard = Some(now);
            session.to_server.add(len);
        }
        if let Some(c) = session
            .candidates
            .iter_mut()
            .find(|c| c.addr == from && c.listener == listener)
        {
            if !probe {
                c.last_from_client = now;
            }
            return ClientRoute::Forward { key: c.key, payload_at };
        }
        // A new address for this session: a candidate, within the limits.
        if !session
            .new_candidates
            .try_take(now, self.limits.session_candidate_rate)
        {
            return self.drop(DropReason::SessionCandidateRate);
        }
        if !self
            .new_candidates
            .try_take(now, self.limits.global_candidate_rate)
        {
            return self.drop(DropReason::GlobalCandidateRate);
        }
        let mut evicted = None;
        if session.candidates.len() >= self.limits.max_candidates.max(2) {
            // max(2): the confirmed candidate is never evicted, so a cap of
            // one would lock a roaming client out.
            if let Some(i) = session.evictable() {
                let old = session.candidates.swap_remove(i);
                self.by_key.remove(&old.key);
                evicted = Some(old.key);
            }
        }
        let key = CandKey(self.next_key);
        self.next_key += 1;
        session.candidates.push(Candidate {
            key,
            addr: from,
            listener,
            framed,
            last_from_client: now,
        });
        let server_port = session.server_port;
        self.by_key.insert(key, sid);
        ClientRoute::Open { key, server_port, payload_at, evicted }
    }

    /// A raw datagram from a source no session has confirmed: offer it to a
    /// few sessions whose mosh-server may own it. First those whose sshd
    /// reported this client IP; then, only if the operator enabled roaming
    /// probes, stock-client sessions whose client has gone silent. Capped in
    /// fan-out, per source IP and in total; mosh-server's reply settles it.
    fn probe(&mut self, now: Instant, listener: usize, from: SocketAddr, len: usize) -> ClientRoute {
        let ip = from.ip().to_canonical();
        let fanout = self.limits.probe_fanout;
        let mut targets: Vec<(Option<Instant>, Sid)> = self
            .by_ssh_ip
            .get(&ip)
            .into_iter()
            .flatten()
            .filter_map(|sid| self.sessions.get(sid))
            .filter(|s| !s.confirmed_candidate().is_some_and(|c| c.framed))
            .map(|s| (s.last_heard, s.sid))
            .collect();
        // Sessions never heard from, then the longest silent, come first:
        // a client that just started, or one whose port hopped.
        targets.sort_unstable();
        targets.truncate(fanout);
        // Roaming targets are chosen before any budget is charged: a source
        // that matches nothing, with no silent session to offer it to, is a
        // stranger and must not take a place in the table or a token.
        let roamed = if self.limits.roaming_probe && targets.len() < fanout {
            self.silent_stock_sessions(now, &targets, fanout - targets.len())
        } else {
            Vec::new()
        };
        if targets.is_empty() && roamed.is_empty() {
            return self.drop(DropReason::UnknownSource);
        }
        // The budgets come before any probe is sent.
        if !self.probe_sources.contains_key(&ip) && self.probe_sources.len() >= self.limits.max_probe_sources {
            return self.drop(DropReason::ProbeSourcesFull);
        }
        let rate = self.limits.probe_source_rate;
        let bucket = self.probe_sources.entry(ip).or_insert_with(|| TokenBucket::new(now, rate));
        if !bucket.try_take(now, rate) {
            return self.drop(DropReason::ProbeSourceRate);
        }
        if !self.probe_budget.try_take(now, self.limits.probe_global_rate) {
            return self.drop(DropReason::ProbeGlobalRate);
        }
        targets.extend(roamed);
        let routes: Vec<ClientRoute> = targets
            .into_iter()
            .map(|(_, sid)| self.route_to(now, sid, listener, from, false, 0, len, true))
            .filter(|r| !matches!(r, ClientRoute::Drop(_)))
            .collect();
        self.probes += routes.len() as u64;
        ClientRoute::Probe(routes)
    }

    /// Up to `want` stock-client sessions silent for `roam_silence`, not in
    /// `taken`, most recently heard first (the likeliest to have just
    /// roamed). The table is scanned at most every `ROAM_SCAN_EVERY`; each
    /// call looks at no more than a few entries of that scan.
    fn silent_stock_sessions(&mut self, now: Instant, taken: &[Silent], want: usize) -> Vec<Silent> {
        let silence = self.limits.roam_silence;
        let is_silent = |s: &Session| {
            s.last_heard.is_some_and(|t| now.saturating_duration_since(t) >= silence)
                && !s.confirmed_candidate().is_some_and(|c| c.framed)
        };
        let fresh = self
            .roam_scan
            .as_ref()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) < ROAM_SCAN_EVERY && *at <= now);
        if !fresh {
            let mut silent: Vec<Silent> = self
                .by_raw_source
                .values()
                .filter_map(|sid| self.sessions.get(sid))
                .filter(|s| is_silent(s))
                .map(|s| (s.last_heard, s.sid))
                .collect();
            silent.sort_unstable_by(|a, b| b.cmp(a));
            silent.dedup_by_key(|e| e.1);
            self.roam_scan = Some((now, silent));
        }
        let Some((_, silent)) = &self.roam_scan else { return Vec::new() };
        silent
            .iter()
            .take(want.saturating_mul(4))
            .filter(|(_, sid)| !taken.iter().any(|(_, t)| t == sid))
            .filter(|(_, sid)| self.sessions.get(sid).is_some_and(&is_silent))
            .take(want)
            .copied()
            .collect()
    }

    fn drop(&mut self, reason: DropReason) -> ClientRoute {
        self.drops[reason.index()] += 1;
        ClientRoute::Drop(reason)
    }

    /// Routes a reply that mosh-server sent on candidate `key`. The
    /// candidate becomes the confirmed one: mosh-server answers only the
    /// newest authenticated client address.
    pub fn route_from_server(&mut self, key: CandKey, len: usize) -> Option<ServerRoute> {
        let Some(sid) = self.by_key.get(&key).copied() else {
            self.drops[DropReason::UnknownCandidate.index()] += 1;
            return None;
        };
        let session = self.sessions.get_mut(&sid)?;
        let cand = session.candidates.iter().find(|c| c.key == key)?.clone();
        session.to_client.add(len);
        if session.confirmed != Some(key) {
            let previous = session.confirmed_candidate().map(|c| (c.addr, c.framed));
            session.confirmed = Some(key);
            if let Some((old_addr, false)) = previous {
                self.forget_raw_source(old_addr, sid);
            }
            if !cand.framed {
                self.by_raw_source.insert(cand.addr, sid);
            }
            let event = match previous {
                Some((from, _)) if from != cand.addr => {
                    Event::ClientMoved { sid, from, to: cand.addr }
                }
                Some(_) => return Some(ServerRoute { listener: cand.listener, addr: cand.addr }),
                None => Event::ClientConfirmed { sid, addr: cand.addr, framed: cand.framed },
            };
            self.emit(event);
        }
        Some(ServerRoute { listener: cand.listener, addr: cand.addr })
    }

    /// Forgets a session; returns the candidates the I/O layer must close.
    pub fn end_session(&mut self, sid: &Sid) -> Vec<CandKey> {
        let Some(session) = self.sessions.remove(sid) else {
            return Vec::new();
        };
        if let Some(n) = self.per_uid.get_mut(&session.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_uid.remove(&session.uid);
            }
        }
        if let Some(c) = session.confirmed_candidate() {
            if !c.framed {
                let addr = c.addr;
                self.forget_raw_source(addr, *sid);
            }
        }
        if let Some(ip) = session.ssh_client {
            let ip = ip.to_canonical();
            if let Some(sids) = self.by_ssh_ip.get_mut(&ip) {
                sids.retain(|s| s != sid);
                if sids.is_empty() {
                    self.by_ssh_ip.remove(&ip);
                }
            }
        }
        let keys: Vec<CandKey> = session.candidates.iter().map(|c| c.key).collect();
        for k in &keys {
            self.by_key.remove(k);
        }
        self.emit(Event::Ended { sid: *sid, uid: session.uid });
        keys
    }

    /// Unmaps a stock client's address, if it still maps to `sid`.
    fn forget_raw_source(&mut self, addr: SocketAddr, sid: Sid) {
        if self.by_raw_source.get(&addr) == Some(&sid) {
            self.by_raw_source.remove(&addr);
        }
    }

    /// Forgets one candidate whose socket could not be opened.
    pub fn remove_candidate(&mut self, key: CandKey) {
        let Some(sid) = self.by_key.remove(&key) else { return };
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.candidates.retain(|c| c.key != key);
            if session.confirmed == Some(key) {
                session.confirmed = None;
            }
        }
    }

    /// The session a candidate belongs to.
    pub fn session_of(&self, key: CandKey) -> Option<Sid> {
        self.by_key.get(&key).copied()
    }

    /// Closes unconfirmed candidates silent for `candidate_idle`.
    pub fn expire(&mut self, now: Instant) -> Vec<CandKey> {
        let idle = self.limits.candidate_idle;
        let mut closed = Vec::new();
        for session in self.sessions.values_mut() {
            let confirmed = session.confirmed;
            session.candidates.retain(|c| {
                let keep = Some(c.key) == confirmed
                    || now.saturating_duration_since(c.last_from_client) < idle;
                if !keep {
                    closed.push(c.key);
                }
                keep
            });
        }
        for k in &closed {
            self.by_key.remove(k);
        }
        // A source's probe budget is forgotten once it would be full again.
        let refill = self.limits.probe_source_rate;
        let full_after = std::time::Duration::from_secs_f64(refill.burst / refill.per_second.max(1e-3));
        self.probe_sources
            .retain(|_, b| now.saturating_duration_since(b.last()) < full_after);
        closed
    }

    /// Status of the sessions `viewer` may see (`None`: all, for root).
    pub fn status(&self, now: Instant, viewer: Option<u32>) -> Vec<SessionStatus> {
        let mut out: Vec<SessionStatus> = self
            .sessions
            .values()
            .filter(|s| viewer.is_none_or(|uid| uid == s.uid))
            .map(|s| {
                let confirmed = s.confirmed_candidate();
                SessionStatus {
                    sid: s.sid,
                    user: s.user.clone(),
                    uid: s.uid,
                    client: confirmed.map(|c| c.addr.to_string()),
                    client_kind: confirmed
                        .map(|c| if c.framed { "framed" } else { "stock" }.to_owned()),
                    server_pid: s.server_pid,
                    server_port: s.server_port,
                    since_unix: s.since_unix,
                    last_heard_ms: s
                        .last_heard
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    candidates: s.candidates.len(),
                    to_server_packets: s.to_server.packets,
                    to_server_bytes: s.to_server.bytes,
                    to_client_packets: s.to_client.packets,
                    to_client_bytes: s.to_client.bytes,
                }
            })
            .collect();
        out.sort_by_key(|a| (a.since_unix, a.sid));
        out
    }

    /// What the state file keeps, to revalidate after a restart.
    pub fn records(&self) -> Vec<SessionRecord> {
        let mut out: Vec<SessionRecord> = self
            .sessions
            .values()
            .map(|s| SessionRecord {
                uid: s.uid,
                user: s.user.clone(),
                since_unix: s.since_unix,
                registration: Registration {
                    sid: s.sid,
                    port: s.server_port,
                    pid: s.server_pid,
                    ssh_client: s.ssh_client,
                },
            })
            .collect();
        out.sort_by_key(|r| (r.since_unix, r.registration.sid));
        out
    }

    /// Every session's sid and pid, to watch after a restart.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
