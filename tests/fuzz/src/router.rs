//! The router target: moshd's routing table driven by a script of client
//! datagrams, server replies, clock steps, expiries, session ends and new
//! registrations, read from the fuzz input. After every step it checks the
//! promises the table makes:
//!
//! - a datagram is forwarded only on a candidate of a registered session
//!   whose address and listener are the datagram's own, and a framed one only
//!   to the session its sid names (no open relay, no cross-session routing);
//! - a new candidate connects only to its session's registered port;
//! - the confirmed candidate is never evicted; candidates stay under the cap;
//! - a server reply goes back to the address its candidate was opened for,
//!   and only on a live candidate (the key index stays consistent);
//! - only a framed datagram naming no session gets a notice, smaller than it;
//! - probes of unmapped stock datagrams go only to sessions whose sshd
//!   address is the source's (unless roaming probes are on), within the fan-out;
//! - `status` shows a user only their own sessions.
//!
//! Input format (see tests/fuzz/gen_seeds.py): one flags byte, then ops.
//! Each op is one byte (`op % 11`) and its arguments; a missing argument
//! reads as 0 and the script ends with the input.

use moshd::limits::Limits;
use moshd::proc_net::UdpSocketEntry;
use moshd::rate::Rate;
use moshd::registration::Facts;
use moshd::router::{ClientRoute, Router};
use moshd::session::CandKey;
use mosh_mux_proto::control::Registration;
use mosh_mux_proto::header::{HEADER_LEN, MAGIC_V1};
use mosh_mux_proto::{Notice, Sid};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The sessions every run starts with: (sid, port, ssh_client, uid). The
/// sids are those of docs/PROTOCOL.md's keys (sid-2, sid-1, sid-3), so the
/// seeds can carry real mosh-client datagrams framed for a live session.
const INITIAL: [([u8; 8], u16, Option<&str>, u32); 3] = [
    ([0x71, 0xdb, 0x44, 0x7e, 0x1d, 0xe5, 0x33, 0x7e], 51251, None, 1000),
    ([0x01, 0x2e, 0xee, 0xf2, 0x09, 0x8c, 0xb4, 0x17], 51252, Some("198.51.100.2"), 1000),
    ([0xf2, 0xc5, 0xc9, 0x4f, 0xdf, 0x0b, 0x9b, 0x96], 51253, Some("2001:db8::2"), 1001),
];

/// Client source addresses an op can pick (low 3 bits of its source byte).
const SOURCES: [&str; 8] = [
    "198.51.100.2:40000",
    "198.51.100.2:40001",
    "203.0.113.5:5000",
    "[2001:db8::2]:6000",
    "[::ffff:198.51.100.2]:40002",
    "0.0.0.0:0",
    "127.0.0.1:60001",
    "198.51.100.3:1",
];

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
    fn done(&self) -> bool {
        self.data.is_empty()
    }
}

/// What the harness knows about a session it registered.
#[derive(Clone)]
struct Known {
    port: u16,
    ssh_client: Option<IpAddr>,
    uid: u32,
}

struct Model {
    limits: Limits,
    sessions: BTreeMap<Sid, Known>,
    /// Every key the router ever handed out, with its session and whether it
    /// is still open (not evicted, expired, removed or ended).
    keys: Vec<CandKey>,
    live: BTreeSet<CandKey>,
}

fn facts(uid: u32, port: u16) -> Facts {
    Facts {
        port_sockets: vec![UdpSocketEntry { ip: "127.0.0.1".parse().unwrap(), port, uid, inode: 7 }],
        pid_uid: Some(uid),
        pid_inodes: Some(vec![7]),
    }
}

fn source(b: u8) -> (usize, SocketAddr) {
    let mut addr: SocketAddr = SOURCES[usize::from(b & 7)].parse().unwrap();
    if b & 0x10 != 0 {
        addr.set_port(addr.port().wrapping_add(u16::from(b >> 5)));
    }
    (usize::from((b >> 3) & 1), addr)
}

/// What a script did, for the seed tests (tests/seeds.rs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub opened: usize,
    pub forwarded: usize,
    pub probes: usize,
    pub dropped: usize,
    pub notices: usize,
    pub replies: usize,
    pub registered: usize,
    pub ended: usize,
}

pub fn run(data: &[u8]) {
    run_counting(data);
}

pub fn run_counting(data: &[u8]) -> Stats {
    let mut stats = Stats::default();
    let mut input = Input { data };
    let flags = input.u8();
    let mut limits = Limits::default();
    limits.roaming_probe = flags & 1 != 0;
    if flags & 2 != 0 {
        // Tight limits, so that caps and rate limits are reached quickly.
        limits.max_sessions = 4;
        limits.max_sessions_per_uid = 3;
        limits.max_candidates = usize::from(flags >> 4) % 4;
        limits.session_candidate_rate = Rate { per_second: 1.0, burst: 3.0 };
        limits.global_candidate_rate = Rate { per_second: 4.0, burst: 6.0 };
        limits.probe_fanout = 1 + usize::from(flags >> 6);
    }
    let t0 = Instant::now();
    let mut now = t0;
    let mut r = Router::new(t0, limits.clone());
    let mut m = Model { limits, sessions: BTreeMap::new(), keys: Vec::new(), live: BTreeSet::new() };
    for (sid, port, ssh, uid) in INITIAL {
        let ssh_client = ssh.map(|s| s.parse().unwrap());
        let reg = Registration { sid: Sid(sid), port, pid: 4242, ssh_client };
        r.register(now, 0, uid, "user", &reg, &facts(uid, port)).expect("initial registration");
        m.sessions.insert(Sid(sid), Known { port, ssh_client, uid });
    }
    let mut steps = 0;
    let mut fail_next_open = false;
    while !input.done() && steps < 4096 {
        steps += 1;
        match input.u8() % 11 {
            // A datagram, bytes as given.
            0 | 1 => {
                let (listener, from) = source(input.u8());
                let len = usize::from(input.u16());
                let dgram = input.bytes(len).to_vec();
                client(&mut r, &mut m, &mut stats, now, listener, from, &dgram, &mut fail_next_open);
            }
            // A datagram framed for one of the sessions (sid by index).
            2 | 3 => {
                let (listener, from) = source(input.u8());
                let pick = usize::from(input.u8());
                let len = usize::from(input.u16());
                let sid = nth_sid(&m, pick).unwrap_or(Sid([0xee; 8]));
                let mut dgram = vec![MAGIC_V1];
                dgram.extend_from_slice(&sid.0);
                dgram.extend_from_slice(input.bytes(len));
                client(&mut r, &mut m, &mut stats, now, listener, from, &dgram, &mut fail_next_open);
            }
            // mosh-server answers on a candidate.
            4 => {
                let pick = usize::from(input.u8());
                let len = usize::from(input.u8()) * 8;
                if let Some(&key) = m.keys.get(pick % m.keys.len().max(1)) {
                    stats.replies += usize::from(server(&mut r, &m, key, len));
                }
            }
            5 => now += Duration::from_millis(50 * u64::from(input.u8())),
            6 => {
                for key in r.expire(now) {
                    assert!(m.live.remove(&key), "expired a key that was not open: {key:?}");
                }
            }
            // A mosh-server exits.
            7 => {
                let pick = usize::from(input.u8());
                if let Some(sid) = nth_sid(&m, pick) {
                    for key in r.end_session(&sid) {
                        assert!(m.live.remove(&key), "ended session closed a dead key");
                    }
                    m.sessions.remove(&sid);
                    stats.ended += 1;
                }
            }
            // A registration (the facts always check out: this target is
            // about the table, registration.rs has its own tests).
            8 => {
                let mut sid = [0u8; 8];
                sid.copy_from_slice(&pad8(input.bytes(8)));
                let port = input.u16();
                let ssh_pick = input.u8();
                let uid = 1000 + u32::from(input.u8() % 3);
                let ssh_client = match ssh_pick % 4 {
                    0 => None,
                    1 => Some("198.51.100.2".parse().unwrap()),
                    2 => Some("::ffff:198.51.100.2".parse().unwrap()),
                    _ => Some("2001:db8::2".parse().unwrap()),
                };
                let reg = Registration { sid: Sid(sid), port, pid: 4242, ssh_client };
                let before = r.session_count();
                let result = r.register(now, 0, uid, "user", &reg, &facts(uid, port));
                let existed = m.sessions.contains_key(&Sid(sid));
                match result {
                    Ok(()) => {
                        assert!(!existed, "a sid in use was registered again");
                        m.sessions.insert(Sid(sid), Known { port, ssh_client, uid });
                        stats.registered += 1;
                    }
                    Err(_) => assert_eq!(r.session_count(), before),
                }
                assert!(r.session_count() <= m.limits.max_sessions.max(INITIAL.len()));
            }
            // The next candidate socket cannot be opened (out of descriptors,
            // say): as the daemon does, the router is told to forget it.
            9 => fail_next_open = true,
            _ => {
                let viewer = 1000 + u32::from(input.u8() % 3);
                for s in r.status(now, Some(viewer)) {
                    assert_eq!(s.uid, viewer, "status shows another user's session");
                }
                assert_eq!(r.status(now, None).len(), m.sessions.len());
                assert_eq!(r.records().len(), m.sessions.len());
                let _ = r.counters();
            }
        }
        while r.poll_event().is_some() {}
        check(&r, &m);
    }
    stats
}

fn pad8(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..b.len()].copy_from_slice(b);
    out
}

fn nth_sid(m: &Model, pick: usize) -> Option<Sid> {
    let n = m.sessions.len();
    (n > 0).then(|| *m.sessions.keys().nth(pick % n).unwrap())
}

fn client(
    r: &mut Router,
    m: &mut Model,
    stats: &mut Stats,
    now: Instant,
    listener: usize,
    from: SocketAddr,
    dgram: &[u8],
    fail_next_open: &mut bool,
) {
    let route = r.route_from_client(now, listener, from, dgram);
    // Candidates this route opens; if their sockets "fail", the daemon calls
    // remove_candidate on each right after (daemon.rs, deliver).
    let opened: Vec<CandKey> = match &route {
        ClientRoute::Open { key, .. } => vec![*key],
        ClientRoute::Probe(routes) => routes
            .iter()
            .filter_map(|r| match r {
                ClientRoute::Open { key, .. } => Some(*key),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match &route {
        ClientRoute::Open { .. } => stats.opened += 1,
        ClientRoute::Forward { .. } => stats.forwarded += 1,
        ClientRoute::Probe(routes) => stats.probes += routes.len(),
        ClientRoute::Drop(_) => stats.dropped += 1,
        ClientRoute::Notify(_) => stats.notices += 1,
    }
    match route {
        ClientRoute::Probe(routes) => {
            assert!(dgram[0] < 0x80, "probe of a framed datagram");
            assert!(routes.len() <= m.limits.probe_fanout.max(1), "probe fan-out exceeded");
            let mut seen = BTreeSet::new();
            for route in routes {
                let sid = forwarded(r, m, &route, listener, from, dgram, 0);
                assert!(seen.insert(sid), "one probe sent twice to a session");
                if !m.limits.roaming_probe {
                    let ssh = m.sessions[&sid].ssh_client.map(|ip| ip.to_canonical());
                    assert_eq!(ssh, Some(from.ip().to_canonical()), "probe to a session of another client address");
                }
            }
        }
        ClientRoute::Drop(_) => {}
        // Only a framed datagram naming no session is answered, and with
        // fewer bytes than it carried (no amplification).
        ClientRoute::Notify(notice) => {
            assert_eq!(dgram[0], MAGIC_V1, "notice for a datagram that is not framed");
            let sid = Sid(dgram[1..HEADER_LEN].try_into().unwrap());
            assert!(!m.sessions.contains_key(&sid), "notice for a registered session");
            assert!(notice.encode().len() < dgram.len(), "notice larger than the datagram");
            assert_eq!(Notice::decode(&notice.encode()), Some(notice));
        }
        route => {
            let at = if dgram[0] == MAGIC_V1 { HEADER_LEN } else { 0 };
            let sid = forwarded(r, m, &route, listener, from, dgram, at);
            if at == HEADER_LEN {
                assert_eq!(&sid.0[..], &dgram[1..HEADER_LEN], "framed datagram routed to another session");
            }
        }
    }
    if *fail_next_open && !opened.is_empty() {
        *fail_next_open = false;
        for key in opened {
            r.remove_candidate(key);
            m.live.remove(&key);
        }
    }
}

/// Checks one Forward/Open and returns the session it goes to.
fn forwarded(
    r: &Router,
    m: &mut Model,
    route: &ClientRoute,
    listener: usize,
    from: SocketAddr,
    dgram: &[u8],
    expect_at: usize,
) -> Sid {
    let (key, at) = match *route {
        ClientRoute::Forward { key, payload_at } => {
            assert!(m.live.contains(&key), "forward on a closed candidate {key:?}");
            (key, payload_at)
        }
        ClientRoute::Open { key, server_port, payload_at, evicted } => {
            let sid = r.session_of(key).expect("opened candidate has a session");
            assert_eq!(server_port, m.sessions[&sid].port, "candidate to a port its session did not register");
            if let Some(old) = evicted {
                assert!(m.live.remove(&old), "evicted a closed candidate");
                assert_ne!(r.session(&sid).unwrap().confirmed, Some(old), "confirmed candidate evicted");
                assert_eq!(r.session_of(old), None);
            }
            assert!(!m.keys.contains(&key), "candidate key reused");
            m.keys.push(key);
            m.live.insert(key);
            (key, payload_at)
        }
        _ => panic!("not a forward: {route:?}"),
    };
    assert_eq!(at, expect_at, "payload offset");
    assert!(at <= dgram.len());
    let sid = r.session_of(key).expect("forwarded on a candidate with no session");
    assert!(m.sessions.contains_key(&sid), "forwarded to an unregistered session");
    let cand = r.session(&sid).unwrap().candidate(key).expect("candidate in its session");
    assert_eq!((cand.addr, cand.listener), (from, listener), "candidate of another address");
    sid
}

/// Returns whether the reply was routed.
fn server(r: &mut Router, m: &Model, key: CandKey, len: usize) -> bool {
    let before = r.session_of(key).and_then(|sid| r.session(&sid)?.candidate(key).cloned());
    let route = r.route_from_server(key, len);
    match (route, m.live.contains(&key)) {
        (Some(route), true) => {
            let cand = before.expect("live candidate");
            assert_eq!((route.addr, route.listener), (cand.addr, cand.listener), "reply to another address");
            let sid = r.session_of(key).unwrap();
            assert_eq!(r.session(&sid).unwrap().confirmed, Some(key), "replying candidate not confirmed");
            true
        }
        (None, false) => false,
        (Some(route), false) => panic!("reply on a closed candidate {key:?} routed to {route:?}"),
        (None, true) => panic!("reply on an open candidate {key:?} dropped"),
    }
}

/// The table's own consistency, after every step.
fn check(r: &Router, m: &Model) {
    assert_eq!(r.session_count(), m.sessions.len());
    let cap = m.limits.max_candidates.max(2);
    for s in r.sessions() {
        let known = m.sessions.get(&s.sid).expect("session the harness never registered");
        assert_eq!((s.server_port, s.uid), (known.port, known.uid));
        assert!(s.candidates.len() <= cap, "{} candidates over the cap {cap}", s.candidates.len());
        if let Some(c) = s.confirmed {
            assert!(s.candidate(c).is_some(), "confirmed candidate not in the session");
        }
        for c in &s.candidates {
            assert!(m.live.contains(&c.key), "session holds a closed candidate");
            assert_eq!(r.session_of(c.key), Some(s.sid));
        }
    }
    for &key in &m.keys {
        assert_eq!(r.session_of(key).is_some(), m.live.contains(&key), "key index out of step for {key:?}");
    }
}
