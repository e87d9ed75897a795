//! Unit and property tests of the routing table.

use super::*;
use crate::proc_net::UdpSocketEntry;
use mosh_mux_proto::header::encode_header;
use proptest::prelude::*;
use std::time::Duration;

const UID: u32 = 1000;

fn facts_for(uid: u32, port: u16) -> Facts {
    Facts {
        port_sockets: vec![UdpSocketEntry { ip: "127.0.0.1".parse().unwrap(), port, uid, inode: 7 }],
        pid_uid: Some(uid),
        pid_inodes: Some(vec![7]),
    }
}

fn reg(sid: u8, port: u16) -> Registration {
    Registration { sid: Sid([sid; 8]), port, pid: 100 + u32::from(sid), ssh_client: None }
}

fn framed(sid: u8) -> Vec<u8> {
    let mut h = [0u8; HEADER_LEN];
    encode_header(Sid([sid; 8]), &mut h);
    let mut v = h.to_vec();
    v.extend_from_slice(&[0x01; 40]);
    v
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 2], port))
}

fn router_with(sids: &[u8]) -> (Router, Instant) {
    let t0 = Instant::now();
    let mut r = Router::new(t0, Limits::default());
    for &s in sids {
        let reg = reg(s, 5000 + u16::from(s));
        r.register(t0, 0, UID, "alice", &reg, &facts_for(UID, reg.port)).unwrap();
    }
    (r, t0)
}

fn open_key(route: ClientRoute) -> CandKey {
    match route {
        ClientRoute::Open { key, .. } => key,
        other => panic!("expected Open, got {other:?}"),
    }
}

#[test]
fn unknown_sid_is_dropped_and_counted() {
    let (mut r, t0) = router_with(&[1]);
    // The sender hears why, within the notice budget; then silence.
    let route = r.route_from_client(t0, 0, addr(1), &framed(2));
    assert_eq!(route, ClientRoute::Notify(Notice::UnknownSession));
    assert_eq!(r.drops(DropReason::UnknownSid), 1);
    let burst = r.limits().notice_rate.burst as u64;
    for _ in 1..burst {
        assert_eq!(r.route_from_client(t0, 0, addr(1), &framed(2)), ClientRoute::Notify(Notice::UnknownSession));
    }
    assert_eq!(r.route_from_client(t0, 0, addr(1), &framed(2)), ClientRoute::Drop(DropReason::UnknownSid));
    assert_eq!(r.drops(DropReason::UnknownSid), burst + 1);
}

#[test]
fn raw_datagram_from_unknown_source_is_dropped() {
    let (mut r, t0) = router_with(&[1]);
    let route = r.route_from_client(t0, 0, addr(1), &[0x01; 40]);
    assert_eq!(route, ClientRoute::Drop(DropReason::UnknownSource));
}

#[test]
fn first_datagram_opens_candidate_then_forwards() {
    let (mut r, t0) = router_with(&[1]);
    let route = r.route_from_client(t0, 0, addr(1), &framed(1));
    let key = match route {
        ClientRoute::Open { key, server_port, payload_at, evicted } => {
            assert_eq!((server_port, payload_at, evicted), (5001, HEADER_LEN, None));
            key
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        r.route_from_client(t0, 0, addr(1), &framed(1)),
        ClientRoute::Forward { key, payload_at: HEADER_LEN }
    );
}

#[test]
fn new_address_does_not_move_return_path_until_server_answers_there() {
    let (mut r, t0) = router_with(&[1]);
    let real = open_key(r.route_from_client(t0, 0, addr(1), &framed(1)));
    assert_eq!(r.route_from_server(real, 100), Some(ServerRoute { listener: 0, addr: addr(1) }));
    // An attacker replays the datagram from elsewhere: a new candidate...
    let fake = open_key(r.route_from_client(t0, 0, addr(666), &framed(1)));
    // ...but the confirmed client is unchanged, and mosh-server's replies on
    // the real candidate still go to the real client.
    let s = r.session(&Sid([1; 8])).unwrap();
    assert_eq!(s.confirmed, Some(real));
    assert_eq!(r.route_from_server(real, 100), Some(ServerRoute { listener: 0, addr: addr(1) }));
    // Only if mosh-server itself answers on the new candidate (it
    // authenticated a newer datagram there: the client really moved) does
    // the return path move.
    assert_eq!(r.route_from_server(fake, 100), Some(ServerRoute { listener: 0, addr: addr(666) }));
    assert_eq!(r.session(&Sid([1; 8])).unwrap().confirmed, Some(fake));
    assert!(matches!(r.poll_event(), Some(Event::Registered { .. })));
    assert!(matches!(r.poll_event(), Some(Event::ClientConfirmed { .. })));
    assert!(matches!(r.poll_event(), Some(Event::ClientMoved { .. })));
}

#[test]
fn candidate_cap_holds_and_never_evicts_confirmed() {
    let (mut r, mut now) = router_with(&[1]);
    let first = open_key(r.route_from_client(now, 0, addr(1), &framed(1)));
    r.route_from_server(first, 10);
    let cap = r.limits().max_candidates;
    for p in 2..200u16 {
        now += Duration::from_secs(2); // stay inside the new-candidate rate
        match r.route_from_client(now, 0, addr(p), &framed(1)) {
            ClientRoute::Open { evicted, .. } => assert_ne!(evicted, Some(first)),
            other => panic!("{other:?}"),
        }
        let s = r.session(&Sid([1; 8])).unwrap();
        assert!(s.candidates.len() <= cap);
        assert!(s.candidate(first).is_some());
    }
    assert_eq!(r.route_from_server(first, 10).map(|d| d.addr), Some(addr(1)));
}

#[test]
fn new_candidates_are_rate_limited_per_session() {
    let (mut r, t0) = router_with(&[1]);
    let burst = r.limits().session_candidate_rate.burst as u16;
    for p in 0..burst {
        assert!(matches!(r.route_from_client(t0, 0, addr(p + 1), &framed(1)), ClientRoute::Open { .. }));
    }
    assert_eq!(
        r.route_from_client(t0, 0, addr(999), &framed(1)),
        ClientRoute::Drop(DropReason::SessionCandidateRate)
    );
}

#[test]
fn registration_refusals() {
    let (mut r, t0) = router_with(&[1]);
    // A port owned by another uid.
    let other = reg(2, 6000);
    assert_eq!(
        r.register(t0, 0, UID, "alice", &other, &facts_for(1001, 6000)),
        Err(Refusal::PortNotYours(6000))
    );
    // The sid in use, even by its owner, even for another port.
    let dup = reg(1, 6001);
    assert_eq!(r.register(t0, 0, UID, "alice", &dup, &facts_for(UID, 6001)), Err(Refusal::SidInUse));
    assert_eq!(r.session_count(), 1);
}

#[test]
fn per_uid_and_global_caps() {
    let t0 = Instant::now();
    let limits = Limits { max_sessions: 3, max_sessions_per_uid: 2, ..Limits::default() };
    let mut r = Router::new(t0, limits);
    for s in 1..=2u8 {
        r.register(t0, 0, UID, "a", &reg(s, 100 + u16::from(s)), &facts_for(UID, 100 + u16::from(s))).unwrap();
    }
    assert_eq!(r.register(t0, 0, UID, "a", &reg(3, 103), &facts_for(UID, 103)), Err(Refusal::UserFull(2)));
    r.register(t0, 0, 7, "b", &reg(4, 104), &facts_for(7, 104)).unwrap();
    assert_eq!(r.register(t0, 0, 8, "c", &reg(5, 105), &facts_for(8, 105)), Err(Refusal::Full(3)));
    // Ending a session frees its place.
    r.end_session(&Sid([1; 8]));
    r.register(t0, 0, UID, "a", &reg(3, 103), &facts_for(UID, 103)).unwrap();
}

#[test]
fn ended_session_routes_nothing() {
    let (mut r, t0) = router_with(&[1]);
    let key = open_key(r.route_from_client(t0, 0, addr(1), &framed(1)));
    assert_eq!(r.end_session(&Sid([1; 8])), vec![key]);
    assert_eq!(r.route_from_server(key, 10), None);
    assert_eq!(r.route_from_client(t0, 0, addr(1), &framed(1)), ClientRoute::Notify(Notice::UnknownSession));
}

#[test]
fn expiry_closes_idle_unconfirmed_only() {
    let (mut r, t0) = router_with(&[1]);
    let real = open_key(r.route_from_client(t0, 0, addr(1), &framed(1)));
    r.route_from_server(real, 10);
    let stale = open_key(r.route_from_client(t0, 0, addr(2), &framed(1)));
    let later = t0 + r.limits().candidate_idle + Duration::from_secs(1);
    assert_eq!(r.expire(later), vec![stale]);
    assert_eq!(r.route_from_server(stale, 10), None);
    assert!(r.route_from_server(real, 10).is_some());
}

fn ssh_reg(sid: u8, ssh: &str) -> Registration {
    Registration { ssh_client: Some(ssh.parse().unwrap()), ..reg(sid, 5000 + u16::from(sid)) }
}

fn router_with_ssh(sessions: &[(u8, &str)], limits: Limits) -> (Router, Instant) {
    let t0 = Instant::now();
    let mut r = Router::new(t0, limits);
    for &(s, ip) in sessions {
        let reg = ssh_reg(s, ip);
        r.register(t0, 0, UID, "alice", &reg, &facts_for(UID, reg.port)).unwrap();
    }
    (r, t0)
}

const RAW: [u8; 40] = [0x01; 40];
const CLIENT_IP: &str = "198.51.100.2";

/// The sessions a probe reaches, by sid byte, and the keys it used.
fn probed(r: &Router, route: &ClientRoute) -> Vec<(u8, CandKey)> {
    let ClientRoute::Probe(routes) = route else { return Vec::new() };
    let mut out: Vec<(u8, CandKey)> = routes
        .iter()
        .map(|x| match x {
            ClientRoute::Forward { key, payload_at: 0 } | ClientRoute::Open { key, payload_at: 0, .. } => {
                (r.session_of(*key).unwrap().0[0], *key)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    out.sort();
    out
}

#[test]
fn stock_client_probes_sessions_of_its_ssh_address_then_is_mapped() {
    let (mut r, t0) = router_with_ssh(&[(1, CLIENT_IP), (2, CLIENT_IP), (3, "203.0.113.99")], Limits::default());
    let route = r.route_from_client(t0, 0, addr(4000), &RAW);
    let hits = probed(&r, &route);
    // Both sessions started from this client's IP; never the third.
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(r.probes(), 2);
    // Session 2's mosh-server authenticates the datagram and answers.
    let key2 = hits[1].1;
    assert_eq!(r.route_from_server(key2, 50), Some(ServerRoute { listener: 0, addr: addr(4000) }));
    // From now on the source goes to session 2 alone, at framed cost: one lookup.
    assert_eq!(r.route_from_client(t0, 0, addr(4000), &RAW), ClientRoute::Forward { key: key2, payload_at: 0 });
    let st = r.status(t0, None);
    let s2 = st.iter().find(|s| s.sid == Sid([2; 8])).unwrap();
    assert_eq!(s2.client_kind.as_deref(), Some("stock"));
    assert_eq!(s2.client, Some(addr(4000).to_string()));
    // A second stock client from the same IP (another port) is probed too,
    // and session 1 claims it.
    let route = r.route_from_client(t0, 0, addr(4001), &RAW);
    let hits = probed(&r, &route);
    assert!(hits.iter().any(|h| h.0 == 1));
    let key1 = hits.iter().find(|h| h.0 == 1).unwrap().1;
    r.route_from_server(key1, 50);
    assert_eq!(r.route_from_client(t0, 0, addr(4001), &RAW), ClientRoute::Forward { key: key1, payload_at: 0 });
    assert_eq!(r.route_from_client(t0, 0, addr(4000), &RAW), ClientRoute::Forward { key: key2, payload_at: 0 });
    // Ending session 2 unmaps its client and only its client.
    r.end_session(&Sid([2; 8]));
    assert!(matches!(r.route_from_client(t0, 0, addr(4001), &RAW), ClientRoute::Forward { .. }));
    assert!(matches!(r.route_from_client(t0, 0, addr(4000), &RAW), ClientRoute::Probe(_)));
}

#[test]
fn no_session_sees_a_source_its_ssh_address_does_not_match() {
    let (mut r, t0) = router_with_ssh(&[(1, CLIENT_IP), (2, "203.0.113.99")], Limits::default());
    r.register(t0, 0, UID, "a", &reg(3, 5003), &facts_for(UID, 5003)).unwrap(); // no ssh address
    let stranger = SocketAddr::from(([192, 0, 2, 50], 999));
    assert_eq!(r.route_from_client(t0, 0, stranger, &RAW), ClientRoute::Drop(DropReason::UnknownSource));
    assert_eq!(r.probes(), 0);
}

#[test]
fn sessions_with_framed_clients_are_not_probed() {
    let (mut r, t0) = router_with_ssh(&[(1, CLIENT_IP)], Limits::default());
    let key = open_key(r.route_from_client(t0, 0, addr(1), &framed(1)));
    r.route_from_server(key, 10);
    assert_eq!(r.route_from_client(t0, 0, addr(2), &RAW), ClientRoute::Drop(DropReason::UnknownSource));
}

#[test]
fn probe_fanout_and_rates_are_capped() {
    let sessions: Vec<(u8, &str)> = (1..=20).map(|s| (s, CLIENT_IP)).collect();
    let limits = Limits::default();
    let (mut r, t0) = router_with_ssh(&sessions, limits.clone());
    let route = r.route_from_client(t0, 0, addr(1), &RAW);
    assert_eq!(probed(&r, &route).len(), limits.probe_fanout);
    // The source's burst, then its rate.
    let burst = limits.probe_source_rate.burst as u16;
    for p in 1..burst {
        assert!(matches!(r.route_from_client(t0, 0, addr(1 + p), &RAW), ClientRoute::Probe(_)));
    }
    assert_eq!(r.route_from_client(t0, 0, addr(999), &RAW), ClientRoute::Drop(DropReason::ProbeSourceRate));
    assert_eq!(r.drops(DropReason::ProbeSourceRate), 1);
}

#[test]
fn global_probe_budget_and_source_table_are_capped() {
    let limits = Limits {
        probe_global_rate: crate::rate::Rate { per_second: 1.0, burst: 3.0 },
        max_probe_sources: 2,
        roaming_probe: true,
        ..Limits::default()
    };
    // With roaming probes on, any source may be probed: the caps must hold.
    let (mut r, mut now) = router_with_ssh(&[(1, CLIENT_IP)], limits);
    let key = open_key(r.route_from_client(now, 0, addr(1), &framed(1)));
    r.sessions.get_mut(&Sid([1; 8])).unwrap().candidates[0].framed = false;
    r.route_from_server(key, 10);
    now += Duration::from_secs(10);
    let src = |i: u8| SocketAddr::from(([192, 0, 2, i], 1000));
    assert!(matches!(r.route_from_client(now, 0, src(1), &RAW), ClientRoute::Probe(_)));
    assert!(matches!(r.route_from_client(now, 0, src(2), &RAW), ClientRoute::Probe(_)));
    assert_eq!(r.route_from_client(now, 0, src(3), &RAW), ClientRoute::Drop(DropReason::ProbeSourcesFull));
    assert!(matches!(r.route_from_client(now, 0, src(1), &RAW), ClientRoute::Probe(_)));
    assert_eq!(r.route_from_client(now, 0, src(2), &RAW), ClientRoute::Drop(DropReason::ProbeGlobalRate));
    // Idle source budgets are forgotten, freeing the table.
    now += Duration::from_secs(60);
    r.expire(now);
    assert!(matches!(r.route_from_client(now, 0, src(3), &RAW), ClientRoute::Probe(_)));
}

#[test]
fn roaming_probe_finds_a_silent_stock_client_only_when_enabled() {
    for enabled in [false, true] {
        let limits = Limits { roaming_probe: enabled, ..Limits::default() };
        let (mut r, t0) = router_with_ssh(&[(1, CLIENT_IP)], limits.clone());
        let route = r.route_from_client(t0, 0, addr(4000), &RAW);
        let first = probed(&r, &route);
        r.route_from_server(first[0].1, 10);
        // The client's next datagram goes straight to its session.
        assert!(matches!(r.route_from_client(t0, 0, addr(4000), &RAW), ClientRoute::Forward { .. }));
        let roamed = SocketAddr::from(([198, 51, 100, 77], 4000));
        // Not yet silent: not probed, even when enabled.
        let soon = t0 + Duration::from_secs(1);
        assert_eq!(r.route_from_client(soon, 0, roamed, &RAW), ClientRoute::Drop(DropReason::UnknownSource));
        let later = t0 + limits.roam_silence + Duration::from_secs(1);
        let route = r.route_from_client(later, 0, roamed, &RAW);
        if !enabled {
            assert_eq!(route, ClientRoute::Drop(DropReason::UnknownSource));
            continue;
        }
        let hits = probed(&r, &route);
        assert_eq!(hits.len(), 1);
        r.route_from_server(hits[0].1, 10);
        assert_eq!(r.status(later, None)[0].client, Some(roamed.to_string()));
        // The old address is no longer mapped (it may only be probed, as it
        // shares the sshd address).
        assert!(matches!(r.route_from_client(later, 0, addr(4000), &RAW), ClientRoute::Probe(_)));
    }
}

#[test]
fn strangers_spend_no_probe_budget_when_no_session_is_silent() {
    // Roaming probe on: a flood from addresses no session knows, while no
    // stock client is silent, must neither fill the table of probed sources
    // nor spend the global budget a roamed client will need.
    let limits = Limits { roaming_probe: true, max_probe_sources: 4, ..Limits::default() };
    let (mut r, t0) = router_with_ssh(&[(1, CLIENT_IP)], limits.clone());
    let route = r.route_from_client(t0, 0, addr(4000), &RAW);
    let first = probed(&r, &route);
    r.route_from_server(first[0].1, 10);
    assert!(matches!(r.route_from_client(t0, 0, addr(4000), &RAW), ClientRoute::Forward { .. }));
    let stranger = |i: u16| SocketAddr::from(([192, 0, 2, (i % 250) as u8 + 1], 1000 + i));
    for i in 0..2000u16 {
        // The client keeps talking: never silent.
        let now = t0 + Duration::from_millis(u64::from(i));
        r.route_from_client(now, 0, addr(4000), &RAW);
        assert_eq!(r.route_from_client(now, 0, stranger(i), &RAW), ClientRoute::Drop(DropReason::UnknownSource));
    }
    let strangers = r.probe_sources.keys().filter(|ip| ip.to_string().starts_with("192.0.2.")).count();
    assert_eq!(strangers, 0, "strangers took places in the table of probed sources");
    assert_eq!(r.drops(DropReason::ProbeSourcesFull) + r.drops(DropReason::ProbeGlobalRate), 0);
    // Once the client is silent (and the scan is renewed), its new address is probed.
    let later = t0 + Duration::from_secs(2) + limits.roam_silence;
    let roamed = SocketAddr::from(([198, 51, 100, 77], 4000));
    let route = r.route_from_client(later, 0, roamed, &RAW);
    assert_eq!(probed(&r, &route).len(), 1);
}

#[test]
fn status_shows_only_own_sessions_to_non_root() {
    let (mut r, t0) = router_with(&[1]);
    r.register(t0, 0, 7, "bob", &reg(2, 7000), &facts_for(7, 7000)).unwrap();
    assert_eq!(r.status(t0, None).len(), 2);
    let bob = r.status(t0, Some(7));
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].user, "bob");
    assert!(r.status(t0, Some(12345)).is_empty());
}

proptest! {
    /// Whatever arrives from wherever, the table's invariants hold: caps,
    /// index consistency, and a confirmed candidate that only mosh-server's
    /// replies can set.
    #[test]
    fn invariants_hold_under_arbitrary_traffic(
        ops in proptest::collection::vec((0u8..4, 0u16..40, any::<bool>(), 0u64..3000), 1..300)
    ) {
        let (mut r, mut now) = router_with(&[1, 2]);
        let mut opened: Vec<CandKey> = Vec::new();
        for (sid, port, from_server, dt) in ops {
            now += Duration::from_millis(dt);
            if from_server {
                if let Some(&k) = opened.get(usize::from(port) % opened.len().max(1)) {
                    let before: Vec<_> = r.sessions.values().map(|s| (s.sid, s.confirmed)).collect();
                    let route = r.route_from_server(k, 10);
                    for (sid, confirmed) in before {
                        let after = r.sessions.get(&sid).and_then(|s| s.confirmed);
                        // Only the answering candidate may become confirmed.
                        prop_assert!(after == confirmed || after == Some(k));
                    }
                    if route.is_none() { prop_assert!(r.session_of(k).is_none()); }
                }
            } else {
                match r.route_from_client(now, 0, addr(port), &framed(sid)) {
                    ClientRoute::Open { key, evicted, .. } => {
                        opened.push(key);
                        if let Some(e) = evicted { prop_assert!(r.session_of(e).is_none()); }
                    }
                    ClientRoute::Forward { key, .. } => prop_assert!(r.session_of(key).is_some()),
                    ClientRoute::Drop(_) => {}
                    ClientRoute::Probe(_) => prop_assert!(false, "a framed datagram never probes"),
                    ClientRoute::Notify(_) => prop_assert!(!(1..=2).contains(&sid), "notices only for unknown sids"),
                }
            }
            if dt > 2500 { for k in r.expire(now) { prop_assert!(r.session_of(k).is_none()); } }
            for s in r.sessions.values() {
                prop_assert!(s.candidates.len() <= r.limits.max_candidates);
                if let Some(c) = s.confirmed { prop_assert!(s.candidate(c).is_some()); }
                for c in &s.candidates { prop_assert_eq!(r.by_key.get(&c.key), Some(&s.sid)); }
            }
            let total: usize = r.sessions.values().map(|s| s.candidates.len()).sum();
            prop_assert_eq!(total, r.by_key.len());
        }
    }

    #[test]
    fn arbitrary_datagrams_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..1500), port in any::<u16>()) {
        let (mut r, t0) = router_with(&[1]);
        let _ = r.route_from_client(t0, 0, addr(port), &buf);
    }
}

