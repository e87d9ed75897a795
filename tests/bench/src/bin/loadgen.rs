//! loadgen: synthetic mosh clients, as many sessions as asked, and what
//! their datagrams' round trips looked like.
//!
//! Framed mode (`--seed`): session i sends as mosh-client-mux would, behind
//! the 9-byte header with sid (seed, i), to moshd; `udpecho` processes hold
//! and register the matching inner sockets. Unframed mode (no `--seed`): the
//! payload alone, for the direct path, minfwd and kernel DNAT. Stock mode
//! (`--seed` and `--stock`): one session, its payload sent unframed from
//! `--bind`, as a stock mosh-client sends to moshd; the session is registered
//! (`--echo-control`) with `--bind` as its sshd client address, and moshd maps
//! the source by probing before the measured traffic starts.
//!
//! Two load shapes:
//! - paced (default): sessions `0..active` send `--rate` datagrams a second
//!   each, the rest one heartbeat every `--heartbeat` seconds; the echo
//!   makes it the same rate each way. Reports achieved rates and round trips.
//! - closed loop (`--window W`): W datagrams in flight at all times,
//!   round-robin over the sessions, as fast as the path returns them: the
//!   most the path under test relays.
//!
//! The echo can live in this process too (`--echo-bind`, and `--echo-control`
//! to register the active sessions' inner sockets with moshd from here), so
//! that the load side is one thread: several processes sharing the load
//! core would add their scheduling to the round trips measured.
//!
//! Traffic runs `--warmup` seconds unrecorded, then `--seconds` recorded,
//! then stops by itself; the result is one JSON object.

use anyhow::Context;
use clap::Parser;
use mosh_mux_bench::epoll::Epoll;
use mosh_mux_bench::mmsg::{Batch, SLOT};
use mosh_mux_bench::pacer::Pacer;
use mosh_mux_bench::payload::{self, Class, Stamp};
use mosh_mux_bench::stats::{summarize, Summary};
use mosh_mux_bench::{rlimit, sids};
use mosh_mux_proto::Sid;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
#[command(name = "loadgen")]
struct Args {
    /// Where to send: moshd's public address, or a forwarder's.
    #[arg(long)]
    target: SocketAddr,
    /// Framed mode: the sids of run SEED (see udpecho --seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Sessions, indexes `first..first+sessions`.
    #[arg(long, default_value_t = 1)]
    sessions: u32,
    #[arg(long, default_value_t = 0)]
    first: u32,
    /// Active sessions (the first ones); default all.
    #[arg(long)]
    active: Option<u32>,
    /// Datagrams a second of each active session.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds between an idle session's heartbeats.
    #[arg(long, default_value_t = 3.0)]
    heartbeat: f64,
    /// Stock-client mode (with --seed): send unframed from --bind, register
    /// the session with --bind as its sshd client address, and have moshd map
    /// the source (one probe, answered) before the traffic starts. One session.
    #[arg(long, requires = "seed")]
    stock: bool,
    /// Closed loop with this many datagrams in flight.
    #[arg(long)]
    window: Option<usize>,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Payload bytes (the header comes on top in framed mode).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Client sockets the sessions are spread over: session s sends from
    /// socket s mod this (default: one each, at most 1000).
    #[arg(long)]
    client_sockets: Option<usize>,
    /// Client socket i binds port BASE+i (default: ephemeral ports). A later
    /// run with the same base reuses the client addresses, hence moshd's
    /// candidates, as a client that keeps its address would.
    #[arg(long)]
    base_port: Option<u16>,
    /// Local address of the client sockets.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    bind: IpAddr,
    /// In-process plain echo socket (repeatable).
    #[arg(long)]
    echo_bind: Vec<SocketAddr>,
    /// Register the active sessions with this moshd control socket, their
    /// inner sockets held and echoed by this process.
    #[arg(long)]
    echo_control: Option<PathBuf>,
    /// Register as synthetic uids from this one (root only), a new uid for
    /// every `--echo-per-uid` sessions (moshd budgets registrations per uid).
    #[arg(long)]
    echo_uid_base: Option<u32>,
    #[arg(long, default_value_t = 20)]
    echo_per_uid: u32,
    /// Write the result here as well as to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Counters for one class of traffic in the recorded interval.
#[derive(Debug, Default, Clone, Serialize)]
struct Flow {
    sent: u64,
    received: u64,
    lost: u64,
    sent_per_s: f64,
    received_per_s: f64,
}

#[derive(Serialize)]
struct Report {
    mode: &'static str,
    target: String,
    framed: bool,
    /// Stock-client mode: unframed, the source mapped by a probe first.
    stock: bool,
    /// Stock-client mode: how long the mapping took (first datagram to its echo).
    mapped_ms: Option<f64>,
    sessions: u32,
    active_sessions: u32,
    client_sockets: usize,
    size: usize,
    seconds: f64,
    window: Option<usize>,
    offered_active_per_s: f64,
    offered_heartbeat_per_s: f64,
    active: Flow,
    heartbeat: Flow,
    /// Round trips completed a second (all classes).
    round_trips_per_s: f64,
    /// Datagrams the path relayed a second: two per round trip.
    relayed_per_s: f64,
    loss_ratio: f64,
    send_errors: u64,
    /// Datagrams the generator could not send on schedule (it was behind).
    skipped_behind: u64,
    /// Closed loop: times the window was declared lost and refilled.
    window_resets: u64,
    /// Sessions this process registered (`--echo-control`), and how long it took.
    registered: usize,
    register_wall_s: f64,
    rtt: Summary,
    rtt_heartbeat: Summary,
}

struct Gen {
    args: Args,
    sockets: Vec<UdpSocket>,
    /// In-process echo sockets (epoll tokens after the client sockets').
    echo: Vec<UdpSocket>,
    sids: Vec<Sid>,
    clock: Instant,
    record_from_ns: u64,
    record_to_ns: u64,
    seq: u32,
    send_errors: u64,
    active: Flow,
    heartbeat: Flow,
    rtt: Vec<f64>,
    rtt_hb: Vec<f64>,
}

impl Gen {
    fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    fn recording(&self, t: u64) -> bool {
        (self.record_from_ns..self.record_to_ns).contains(&t)
    }

    /// Writes session `s`'s next datagram of `class` into `out`.
    fn datagram(&mut self, out: &mut [u8], s: u32, class: Class) -> usize {
        let stamp = Stamp {
            session: s,
            sent_ns: self.now_ns(),
            class,
            seq: self.seq,
        };
        self.seq = self.seq.wrapping_add(1);
        if self.recording(stamp.sent_ns) {
            match class {
                Class::Heartbeat => self.heartbeat.sent += 1,
                _ => self.active.sent += 1,
            }
        }
        let size = self.args.size;
        match self.sids.get((s - self.args.first) as usize) {
            Some(sid) if self.args.seed.is_some() && !self.args.stock => {
                payload::write_framed(out, *sid, size, stamp)
            }
            _ => payload::write(out, size, stamp),
        }
    }

    fn socket_of(&self, s: u32) -> &UdpSocket {
        &self.sockets[s as usize % self.sockets.len()]
    }

    /// Sends one datagram for session `s` now (paced mode).
    fn send_one(&mut self, buf: &mut [u8], s: u32, class: Class) {
        let n = self.datagram(buf, s, class);
        if self
            .socket_of(s)
            .send_to(&buf[..n], self.args.target)
            .is_err()
        {
            self.send_errors += 1;
        }
    }

    /// Takes in a received echo; true if it was one of ours.
    fn on_echo(&mut self, data: &[u8], now_ns: u64) -> bool {
        let Some(stamp) = payload::read_echo(data) else {
            return false;
        };
        if !self.recording(stamp.sent_ns) {
            return true;
        }
        let rtt_us = now_ns.saturating_sub(stamp.sent_ns) as f64 / 1e3;
        match stamp.class {
            Class::Heartbeat => {
                self.heartbeat.received += 1;
                self.rtt_hb.push(rtt_us);
            }
            _ => {
                self.active.received += 1;
                self.rtt.push(rtt_us);
            }
        }
        true
    }

    /// Echoes what waits on in-process echo socket `i`.
    fn echo(&self, i: usize, batch: &mut Batch) {
        let Some(fd) = self.echo.get(i).map(|s| s.as_raw_fd()) else {
            return;
        };
        for _ in 0..16 {
            let n = batch.recv(fd).unwrap_or(0);
            for k in 0..n {
                payload::make_echo(batch.data_mut(k));
            }
            let _ = batch.send(fd, n);
            if n < batch.capacity() {
                break;
            }
        }
    }

    /// Drains every ready socket; returns echoes taken in.
    fn receive(&mut self, ready: &[u64], batch: &mut Batch) -> u64 {
        let mut got = 0;
        for &token in ready {
            if let Some(i) = (token as usize).checked_sub(self.sockets.len()) {
                self.echo(i, batch);
                continue;
            }
            let Some(fd) = self.sockets.get(token as usize).map(|s| s.as_raw_fd()) else {
                continue;
            };
            for _ in 0..16 {
                let n = batch.recv(fd).unwrap_or(0);
                let now = self.now_ns();
                for i in 0..n {
                    got += u64::from(self.on_echo(batch.data(i), now));
                }
                if n < batch.capacity() {
                    break;
                }
            }
        }
        got
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.sessions >= 1, "--sessions must be at least 1");
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    anyhow::ensure!(
        args.warmup >= 0.0 && args.warmup <= 600.0,
        "--warmup must be in [0, 600]"
    );
    if args.stock {
        anyhow::ensure!(
            args.sessions == 1 && args.client_sockets.unwrap_or(1) == 1,
            "--stock takes one session on one client socket (moshd maps a source to one session)"
        );
        anyhow::ensure!(
            !args.bind.is_unspecified(),
            "--stock needs --bind IP: the sshd client address its session is registered with"
        );
    }
    rlimit::raise_nofile();
    let n_sockets = args
        .client_sockets
        .unwrap_or(args.sessions.min(1000) as usize)
        .clamp(1, 20_000);
    let mut sockets = Vec::with_capacity(n_sockets);
    for i in 0..n_sockets {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(args.target),
            socket2::Type::DGRAM,
            None,
        )?;
        if n_sockets <= 16 {
            let _ = s.set_recv_buffer_size(4 << 20);
            let _ = s.set_send_buffer_size(4 << 20);
        }
        let port = match args.base_port {
            Some(base) => u16::try_from(usize::from(base) + i)
                .context("--base-port too high for that many sockets")?,
            None => 0,
        };
        s.bind(&SocketAddr::new(args.bind, port).into())
            .with_context(|| format!("cannot bind a client socket to port {port}"))?;
        s.set_nonblocking(true)?;
        sockets.push(UdpSocket::from(s));
    }
    let sids = match args.seed {
        Some(seed) => (args.first..args.first + args.sessions)
            .map(|i| sids::sid(seed, i))
            .collect(),
        None => Vec::new(),
    };
    let mut echo = Vec::new();
    for addr in &args.echo_bind {
        echo.push(
            UdpSocket::bind(addr).with_context(|| format!("cannot bind echo socket {addr}"))?,
        );
    }
    let t_reg = Instant::now();
    let registered = match &args.echo_control {
        Some(control) => register_active(&args, control, &mut echo)?,
        None => 0,
    };
    let register_wall_s = t_reg.elapsed().as_secs_f64();
    for s in &echo {
        s.set_nonblocking(true)?;
    }
    let record_from = Duration::from_secs_f64(args.warmup);
    let record_to = record_from + Duration::from_secs_f64(args.seconds);
    let mut gen = Gen {
        args: args.clone(),
        sockets,
        echo,
        sids,
        clock: Instant::now(),
        // Nothing is recorded until the clock restarts below.
        record_from_ns: u64::MAX,
        record_to_ns: u64::MAX,
        seq: 0,
        send_errors: 0,
        active: Flow::default(),
        heartbeat: Flow::default(),
        rtt: Vec::new(),
        rtt_hb: Vec::new(),
    };
    let mut poll = Epoll::new(1024)?;
    for (i, s) in gen.sockets.iter().chain(gen.echo.iter()).enumerate() {
        poll.add_readable(s.as_raw_fd(), i as u64)?;
    }
    let mapped_ms = if args.stock {
        Some(map_source(&mut gen, &mut poll)?)
    } else {
        None
    };
    gen.clock = Instant::now();
    gen.record_from_ns = record_from.as_nanos() as u64;
    gen.record_to_ns = record_to.as_nanos() as u64;
    let stop_sending = gen.clock + record_to;
    // Stragglers still count if they return within this after the last send.
    let grace = Duration::from_millis(300);
    let (skipped, resets, offered_active, offered_hb) = match args.window {
        Some(w) => (
            0,
            run_window(&mut gen, &mut poll, w.max(1), stop_sending, grace)?,
            0.0,
            0.0,
        ),
        None => run_paced(&mut gen, &mut poll, stop_sending, grace)?,
    };
    let secs = args.seconds;
    for f in [&mut gen.active, &mut gen.heartbeat] {
        f.lost = f.sent.saturating_sub(f.received);
        f.sent_per_s = f.sent as f64 / secs;
        f.received_per_s = f.received as f64 / secs;
    }
    let received = gen.active.received + gen.heartbeat.received;
    let sent = gen.active.sent + gen.heartbeat.sent;
    let report = Report {
        mode: if args.window.is_some() {
            "window"
        } else {
            "paced"
        },
        target: args.target.to_string(),
        framed: args.seed.is_some() && !args.stock,
        stock: args.stock,
        mapped_ms,
        sessions: args.sessions,
        active_sessions: args.active.unwrap_or(args.sessions).min(args.sessions),
        client_sockets: n_sockets,
        size: args.size,
        seconds: secs,
        window: args.window,
        offered_active_per_s: offered_active,
        offered_heartbeat_per_s: offered_hb,
        active: gen.active.clone(),
        heartbeat: gen.heartbeat.clone(),
        round_trips_per_s: received as f64 / secs,
        relayed_per_s: 2.0 * received as f64 / secs,
        loss_ratio: if sent > 0 {
            sent.saturating_sub(received) as f64 / sent as f64
        } else {
            0.0
        },
        send_errors: gen.send_errors,
        skipped_behind: skipped,
        window_resets: resets,
        registered,
        register_wall_s,
        rtt: summarize(&mut gen.rtt),
        rtt_heartbeat: summarize(&mut gen.rtt_hb),
    };
    let text = serde_json::to_string(&report)?;
    println!("{text}");
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Registers the active sessions' inner sockets (bound here, on 127.0.0.1)
/// with moshd, as this process's; returns how many were registered.
fn register_active(
    args: &Args,
    control: &std::path::Path,
    echo: &mut Vec<UdpSocket>,
) -> anyhow::Result<usize> {
    let seed = args.seed.context("--echo-control needs --seed")?;
    let active = args.active.unwrap_or(args.sessions).min(args.sessions);
    let pid = std::process::id();
    let per_uid = args.echo_per_uid.max(1);
    let mut done = 0;
    for (g, first) in (args.first..args.first + active)
        .step_by(per_uid as usize)
        .enumerate()
    {
        let last = (first + per_uid).min(args.first + active);
        let group = || -> anyhow::Result<Vec<UdpSocket>> {
            let mut out = Vec::new();
            for i in first..last {
                let s = UdpSocket::bind("127.0.0.1:0").context("cannot bind an inner socket")?;
                let port = s.local_addr()?.port();
                // A stock client's session names its sshd client address.
                let ssh_client = args.stock.then_some(args.bind);
                let (answer, _) = mosh_mux_bench::control::register_from(
                    control,
                    sids::sid(seed, i),
                    port,
                    pid,
                    ssh_client,
                )?;
                if let Err(reason) = answer {
                    anyhow::bail!("moshd refused session {i}: {reason}");
                }
                out.push(s);
            }
            Ok(out)
        };
        let sockets = match args.echo_uid_base {
            Some(base) => mosh_mux_bench::identity::as_uid(base + g as u32, group)?,
            None => group()?,
        };
        done += sockets.len();
        echo.extend(sockets);
    }
    Ok(done)
}

/// Stock mode: sends the session's first datagram, which moshd offers to the
/// sessions of this source's IP (a probe), until its echo comes back: from
/// then on moshd routes the source by its address. Returns the milliseconds
/// that took; an error if no echo came in 10 tries.
fn map_source(gen: &mut Gen, poll: &mut Epoll) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let mut buf = vec![0u8; SLOT];
    let mut batch = Batch::new(64);
    let mut ready = Vec::with_capacity(1024);
    for _ in 0..10 {
        let s = gen.args.first;
        gen.send_one(&mut buf, s, Class::Probe);
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            ready.clear();
            ready.extend(poll.wait(Some(Duration::from_millis(10)))?);
            // Echo sockets are served here too: they answer the probe.
            if gen.receive(&ready, &mut batch) > 0 {
                return Ok(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    anyhow::bail!("moshd did not map this stock source: no echo to 10 datagrams")
}

/// Paced load; returns (skipped, 0, offered active/s, offered heartbeat/s).
fn run_paced(
    gen: &mut Gen,
    poll: &mut Epoll,
    stop: Instant,
    grace: Duration,
) -> anyhow::Result<(u64, u64, f64, f64)> {
    let a = &gen.args;
    let active = a.active.unwrap_or(a.sessions).min(a.sessions);
    let idle = a.sessions - active;
    let first = a.first;
    let active_rate = f64::from(active) * a.rate.max(0.0);
    let hb_rate = if a.heartbeat > 0.0 {
        f64::from(idle) / a.heartbeat
    } else {
        0.0
    };
    // A backlog of more than 20 ms is the generator being too slow: skip it
    // (and say so) rather than send a burst the path never asked for.
    let lag = Duration::from_millis(20);
    let mut pa = Pacer::new(gen.clock, active_rate, lag);
    let mut ph = Pacer::new(gen.clock, hb_rate, lag);
    let (mut next_a, mut next_h) = (0u32, 0u32);
    let mut buf = vec![0u8; SLOT];
    let mut batch = Batch::new(64);
    let mut ready = Vec::with_capacity(1024);
    let end = stop + grace;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now < stop {
            for _ in 0..pa.due(now) {
                gen.send_one(&mut buf, first + next_a, Class::Active);
                next_a = (next_a + 1) % active.max(1);
            }
            for _ in 0..ph.due(now) {
                gen.send_one(&mut buf, first + active + next_h, Class::Heartbeat);
                next_h = (next_h + 1) % idle.max(1);
            }
        }
        // Sleep until the next send (at least 50 µs, so sends go out in small
        // batches instead of waking for each one), or 5 ms at most.
        let now = Instant::now();
        let next = [pa.next_at(), ph.next_at()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_millis(5));
        let wait = next
            .saturating_duration_since(now)
            .clamp(Duration::from_micros(50), Duration::from_millis(5));
        ready.clear();
        ready.extend(poll.wait(Some(wait))?);
        gen.receive(&ready, &mut batch);
    }
    Ok((pa.skipped + ph.skipped, 0, active_rate, hb_rate))
}

/// Closed loop with `window` in flight; returns how often the window was reset.
fn run_window(
    gen: &mut Gen,
    poll: &mut Epoll,
    window: usize,
    stop: Instant,
    grace: Duration,
) -> anyhow::Result<u64> {
    // No echo for this long means the datagrams in flight were lost.
    let stall = Duration::from_millis(20);
    let sessions = gen.args.sessions;
    let first = gen.args.first;
    let mut in_flight = 0usize;
    let mut resets = 0u64;
    let mut last_echo = Instant::now();
    let mut next = 0u32;
    let mut out = Batch::new(32);
    let mut rx = Batch::new(64);
    let mut ready = Vec::with_capacity(1024);
    let target = gen.args.target;
    let end = stop + grace;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if in_flight > 0 && now.duration_since(last_echo) > stall {
            resets += 1;
            in_flight = 0;
        }
        // Fill the window, a batch per client socket at a time.
        while now < stop && in_flight < window {
            let want = (window - in_flight).min(out.capacity());
            let sock = ((first + next) as usize) % gen.sockets.len();
            let mut n = 0;
            while n < want {
                let s = first + next;
                if ((first + next) as usize) % gen.sockets.len() != sock {
                    break;
                }
                let len = gen.datagram(out.slot_mut(n), s, Class::Window);
                out.set_len(n, len);
                out.set_addr(n, target);
                n += 1;
                next = (next + 1) % sessions;
                if gen.sockets.len() > 1 {
                    break;
                }
            }
            let fd = gen.sockets[sock].as_raw_fd();
            let sent = out.send(fd, n).unwrap_or(0);
            gen.send_errors += (n - sent) as u64;
            in_flight += n;
            if sent < n {
                break;
            }
        }
        ready.clear();
        ready.extend(poll.wait(Some(Duration::from_millis(1)))?);
        let got = gen.receive(&ready, &mut rx) as usize;
        if got > 0 {
            last_echo = Instant::now();
            in_flight = in_flight.saturating_sub(got);
        }
    }
    Ok(resets)
}
