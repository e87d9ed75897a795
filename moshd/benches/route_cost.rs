//! Per-datagram routing cost in moshd's router, without I/O: a framed
//! datagram, a stock client's datagram after its source is mapped, and a
//! probe (an unmapped stock-client datagram offered to the sessions of its
//! sshd address). Prints a Markdown table; run with
//! `cargo bench -p moshd --bench route_cost`.

use mosh_mux_proto::control::Registration;
use mosh_mux_proto::header::{encode_header, HEADER_LEN};
use mosh_mux_proto::Sid;
use moshd::limits::Limits;
use moshd::proc_net::UdpSocketEntry;
use moshd::rate::Rate;
use moshd::registration::Facts;
use moshd::router::{ClientRoute, Router};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

const SESSIONS: u32 = 10_000;
const ROUNDS: usize = 7;

fn facts(port: u16) -> Facts {
    Facts {
        port_sockets: vec![UdpSocketEntry { ip: "127.0.0.1".parse().unwrap(), port, uid: 1000, inode: 1 }],
        pid_uid: Some(1000),
        pid_inodes: None,
    }
}

fn sid(i: u32) -> Sid {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&i.to_be_bytes());
    Sid(b)
}

fn client(i: u32) -> SocketAddr {
    SocketAddr::from(([198, 51, (i >> 8) as u8, i as u8], 40000))
}

/// A router with SESSIONS sessions, each with a confirmed client (framed
/// for even i, stock for odd i); sshd addresses are the client IPs.
fn setup(limits: Limits) -> (Router, Instant) {
    // Budgets wide open: the cost measured is routing, not a rate-limit drop.
    let wide = Rate { per_second: 1e12, burst: 1e12 };
    let limits = Limits {
        max_sessions: usize::MAX,
        max_sessions_per_uid: usize::MAX,
        max_probe_sources: usize::MAX,
        probe_source_rate: wide,
        probe_global_rate: wide,
        session_candidate_rate: wide,
        global_candidate_rate: wide,
        ..limits
    };
    let t0 = Instant::now();
    let mut r = Router::new(t0, limits);
    for i in 0..SESSIONS {
        let port = 1024 + (i % 60000) as u16;
        let reg = Registration { sid: sid(i), port, pid: 2, ssh_client: Some(client(i).ip()) };
        r.register(t0, 0, 1000, "u", &reg, &facts(port)).unwrap();
    }
    for i in 0..SESSIONS {
        let route = if i % 2 == 0 {
            r.route_from_client(t0, 0, client(i), &framed(i))
        } else {
            r.route_from_client(t0, 0, client(i), &[0x01; 64])
        };
        let key = match route {
            ClientRoute::Open { key, .. } => key,
            ClientRoute::Probe(v) => match v.first() {
                Some(ClientRoute::Open { key, .. }) => *key,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        r.route_from_server(key, 64);
    }
    (r, t0)
}

fn framed(i: u32) -> Vec<u8> {
    let mut h = [0u8; HEADER_LEN];
    encode_header(sid(i), &mut h);
    let mut v = h.to_vec();
    v.extend_from_slice(&[0x01; 64]);
    v
}

/// Median ns per call of `f` over ROUNDS rounds of `n` calls.
fn measure(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..n {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    rounds.sort_by(|a, b| a.total_cmp(b));
    rounds[ROUNDS / 2]
}

fn main() {
    let (mut r, t0) = setup(Limits::default());
    let framed_dgrams: Vec<Vec<u8>> = (0..SESSIONS).step_by(2).map(framed).collect();
    let n = framed_dgrams.len() as u32;
    let framed_ns = measure(n, |i| {
        black_box(r.route_from_client(t0, 0, client(i * 2), &framed_dgrams[i as usize]));
    });
    let raw = [0x01u8; 64];
    let stock_ns = measure(n, |i| {
        black_box(r.route_from_client(t0, 0, client(i * 2 + 1), &raw));
    });
    let reply_ns = {
        // The reply path: a candidate key to a client address.
        let keys: Vec<_> = (0..SESSIONS)
            .filter_map(|i| match r.route_from_client(t0, 0, client(i), &if i % 2 == 0 { framed(i) } else { raw.to_vec() }) {
                ClientRoute::Forward { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        measure(keys.len() as u32, |i| {
            black_box(r.route_from_server(keys[i as usize], 64));
        })
    };
    // Probes: an unmapped port of a stock client's IP, so each datagram is
    // offered to that IP's session (new candidates, evicting old ones).
    let (mut p, t1) = setup(Limits::default());
    let mut port = 0u16;
    let probe_ns = measure(2000, |i| {
        port = port.wrapping_add(1).max(1);
        let from = SocketAddr::new(client((i % (SESSIONS / 2)) * 2 + 1).ip(), port);
        black_box(p.route_from_client(t1, 0, from, &raw));
    });
    let drop_ns = measure(n, |i| {
        let stranger = SocketAddr::from(([192, 0, 2, i as u8], 1000 + (i % 50000) as u16));
        black_box(r.route_from_client(t0, 0, stranger, &raw));
    });
    println!("Router cost per datagram, {SESSIONS} sessions (half framed, half stock), median of {ROUNDS} rounds:\n");
    println!("| path | ns per datagram |");
    println!("|---|---|");
    println!("| framed datagram (sid lookup, candidate found) | {framed_ns:.0} |");
    println!("| stock-client datagram, source mapped (address lookup) | {stock_ns:.0} |");
    println!("| reply from mosh-server (candidate key lookup) | {reply_ns:.0} |");
    println!("| probe of an unmapped stock source (1 session, new candidate) | {probe_ns:.0} |");
    println!("| raw datagram from a stranger (dropped: unknown source) | {drop_ns:.0} |");
}
