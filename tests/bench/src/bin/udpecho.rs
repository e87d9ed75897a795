//! udpecho: synthetic inner mosh-servers and plain echo endpoints.
//!
//! Every socket echoes what it receives back to the sender with the first
//! byte's top bit set, as a mosh server-to-client datagram would be. With
//! `--control`, it binds one socket per session on 127.0.0.1 and registers
//! it with moshd under a sid (from `--seed`/`--first`/`--count`, or given
//! with `--sid`), as this process's own: moshd's ownership checks (uid of the
//! port in /proc/net/udp, the pid holds the socket inode) pass as they would
//! for mosh-server. Prints one JSON line when ready, then echoes until
//! `--seconds` have passed or it is signalled.
//!
//! For stock-client sessions (no mux header; moshd maps the client by
//! probing), `--ssh-client IP` registers the sessions with that sshd client
//! address, and `--silent` makes the sessions' sockets read and never answer,
//! as a mosh-server does with a datagram that is not its client's.

use anyhow::Context;
use clap::Parser;
use mosh_mux_bench::{control, epoll::Epoll, identity, mmsg::Batch, payload, rlimit, sids};
use mosh_mux_proto::Sid;
use serde::Serialize;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "udpecho")]
struct Args {
    /// A plain echo socket at this address (repeatable).
    #[arg(long)]
    bind: Vec<SocketAddr>,
    /// moshd's control socket: register the sessions below with it.
    #[arg(long)]
    control: Option<PathBuf>,
    /// Register synthetic sessions `first..first+count` of this seed.
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value_t = 0)]
    first: u32,
    #[arg(long, default_value_t = 0)]
    count: u32,
    /// Register a session with this sid (16 hex digits; repeatable).
    #[arg(long)]
    sid: Vec<Sid>,
    /// Register the sessions with this sshd client address (SSH_CONNECTION's
    /// first field): moshd offers unmapped raw datagrams from it to them.
    #[arg(long)]
    ssh_client: Option<IpAddr>,
    /// The registered sessions' sockets read and discard what arrives, never
    /// answering (a mosh-server that does not authenticate a probe). Plain
    /// `--bind` sockets still echo.
    #[arg(long)]
    silent: bool,
    /// Run as this uid and gid (from root), so that sessions spread over
    /// several synthetic users: moshd budgets control connections per user.
    #[arg(long)]
    uid: Option<u32>,
    /// Stop after this long, whatever happens.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Datagrams read or written per system call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

#[derive(Serialize)]
struct Ready {
    pid: u32,
    bound: Vec<String>,
    /// sid and port of each registered session, for `--sid` only (the
    /// seeded ones are many and derivable).
    registered: Vec<(String, u16)>,
    registered_count: usize,
    refused_count: usize,
    first_refusal: Option<String>,
    register_total_ms: f64,
    register_max_ms: f64,
    /// Connections moshd refused (its per-user control budget) and that were retried.
    register_retries: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    rlimit::raise_nofile();
    if let Some(uid) = args.uid {
        identity::become_uid(uid)?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds.max(0.0));
    let mut sockets: Vec<UdpSocket> = Vec::new();
    let mut ready = Ready {
        pid: std::process::id(),
        bound: Vec::new(),
        registered: Vec::new(),
        registered_count: 0,
        refused_count: 0,
        first_refusal: None,
        register_total_ms: 0.0,
        register_max_ms: 0.0,
        register_retries: 0,
    };
    for addr in &args.bind {
        let s = UdpSocket::bind(addr).with_context(|| format!("cannot bind {addr}"))?;
        ready.bound.push(s.local_addr()?.to_string());
        sockets.push(s);
    }
    let mut wanted: Vec<(Sid, bool)> = args.sid.iter().map(|s| (*s, true)).collect();
    if let Some(seed) = args.seed {
        wanted.extend(
            (args.first..args.first.saturating_add(args.count))
                .map(|i| (sids::sid(seed, i), false)),
        );
    }
    if !wanted.is_empty() {
        let control = args
            .control
            .as_deref()
            .context("--sid and --seed need --control")?;
        let started = Instant::now();
        for (sid, explicit) in wanted {
            let s = UdpSocket::bind("127.0.0.1:0").context("cannot bind an inner socket")?;
            let port = s.local_addr()?.port();
            let t = Instant::now();
            let (answer, retries) =
                control::register_from(control, sid, port, ready.pid, args.ssh_client)?;
            ready.register_retries += retries;
            ready.register_max_ms = ready.register_max_ms.max(t.elapsed().as_secs_f64() * 1e3);
            match answer {
                Ok(_) => {
                    ready.registered_count += 1;
                    if explicit {
                        ready.registered.push((sid.to_string(), port));
                    }
                    sockets.push(s);
                }
                Err(reason) => {
                    ready.refused_count += 1;
                    ready.first_refusal.get_or_insert(reason);
                }
            }
        }
        ready.register_total_ms = started.elapsed().as_secs_f64() * 1e3;
    }
    {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &ready)?;
        writeln!(out)?;
        out.flush()?;
    }
    // The plain sockets come first in `sockets`; with --silent the rest only read.
    let echoing = if args.silent {
        args.bind.len()
    } else {
        sockets.len()
    };
    serve(&sockets, echoing, args.batch, deadline)
}

/// Echoes on the first `echoing` sockets, and reads and drops on the rest,
/// until `deadline`.
fn serve(
    sockets: &[UdpSocket],
    echoing: usize,
    batch: usize,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut poll = Epoll::new(256)?;
    for (i, s) in sockets.iter().enumerate() {
        s.set_nonblocking(true)?;
        poll.add_readable(s.as_raw_fd(), i as u64)?;
    }
    let mut buf = Batch::new(batch);
    let mut ready: Vec<u64> = Vec::with_capacity(256);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        ready.clear();
        ready.extend(poll.wait(Some((deadline - now).min(Duration::from_secs(1))))?);
        for &token in &ready {
            let Some(s) = sockets.get(token as usize) else {
                continue;
            };
            // A few rounds per socket, then on to the next ready one (level-
            // triggered: what is left is reported again).
            for _ in 0..8 {
                let n = match buf.recv(s.as_raw_fd()) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => break,
                };
                if (token as usize) < echoing {
                    for i in 0..n {
                        payload::make_echo(buf.data_mut(i));
                    }
                    let _ = buf.send(s.as_raw_fd(), n);
                }
                if n < buf.capacity() {
                    break;
                }
            }
        }
    }
}
