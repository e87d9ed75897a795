//! udprtt: round-trip latency of one datagram at a time (ping-pong), at
//! several sizes, through whatever path sits between it and an echo.
//!
//! Several paths (`--path LABEL=ADDR` or `LABEL=ADDR/SID` for moshd, framed
//! as mosh-client-mux frames; `LABEL=ADDR@IP` sends unframed from a socket
//! bound to IP, as a stock mosh-client does to moshd, which maps that source
//! to the session registered with IP as its sshd client address) are
//! measured interleaved: for each size, the
//! round trips go to each path in turn in chunks of `--chunk`, so that
//! anything else the machine does at some moment falls on every path alike.
//!
//! Two ways to run it:
//! - `udprtt --path ... [--target ADDR [--sid HEX]]`: from the command line.
//! - `udprtt IP PORT` as the "mosh-client" child of mosh-client-mux
//!   (`mosh-client-mux --mosh-client udprtt IP 0PORT` with MOSH_KEY set): IP
//!   PORT (the relay's loopback port, sent to unframed as mosh-client would;
//!   the relay frames) becomes path "relay", besides those in UDPRTT_PATHS
//!   (space-separated LABEL=ADDR[/SID]). Other settings then come from the
//!   environment: UDPRTT_OUT (result file, required), UDPRTT_SIZES,
//!   UDPRTT_COUNT, UDPRTT_WARMUP, UDPRTT_GAP_US, UDPRTT_CHUNK.

use anyhow::Context;
use clap::Parser;
use mosh_mux_bench::pingpong::{ping, REPLY_TIMEOUT};
use mosh_mux_bench::stats::{summarize, Summary};
use mosh_mux_proto::Sid;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "udprtt")]
struct Args {
    /// As mosh-client's child: IP PORT of the relay (settings from UDPRTT_*).
    endpoint: Vec<String>,
    /// A path to measure: LABEL=ADDR, LABEL=ADDR/SID to frame for moshd, and
    /// either with @IP to send from that local address (repeatable).
    #[arg(long = "path")]
    paths: Vec<String>,
    /// A single path (label from --label).
    #[arg(long)]
    target: Option<SocketAddr>,
    /// Frame datagrams for moshd with this sid.
    #[arg(long)]
    sid: Option<Sid>,
    /// Frame for synthetic session SESSION of run SEED (see udpecho --seed).
    #[arg(long, requires = "session")]
    seed: Option<u64>,
    #[arg(long, requires = "seed")]
    session: Option<u32>,
    /// Payload sizes in bytes, comma-separated.
    #[arg(long, default_value = "100,500,1250", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Recorded round trips per size.
    #[arg(long, default_value_t = 5000)]
    count: usize,
    /// Round trips to one path before moving on to the next.
    #[arg(long, default_value_t = 100)]
    chunk: usize,
    /// Unrecorded round trips first, per size and path.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Pause between round trips, in microseconds.
    #[arg(long, default_value_t = 0)]
    gap_us: u64,
    #[arg(long, default_value = "")]
    label: String,
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct SizeResult {
    size: usize,
    lost: usize,
    rtt: Summary,
}

#[derive(Serialize)]
struct PathResult {
    label: String,
    target: String,
    framed: bool,
    /// The local address the path's datagrams came from.
    source: String,
    sizes: Vec<SizeResult>,
}

#[derive(Serialize)]
struct Report {
    gap_us: u64,
    chunk: usize,
    paths: Vec<PathResult>,
}

/// One path under test and its socket (connected, so only its echoes arrive).
struct Path {
    label: String,
    target: SocketAddr,
    sid: Option<Sid>,
    socket: UdpSocket,
}

impl Path {
    fn open(
        label: &str,
        target: SocketAddr,
        sid: Option<Sid>,
        bind: Option<IpAddr>,
    ) -> anyhow::Result<Path> {
        let any: IpAddr = if target.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let local = SocketAddr::new(bind.unwrap_or(any), 0);
        let socket =
            UdpSocket::bind(local).with_context(|| format!("cannot bind {local} for {label}"))?;
        socket.connect(target)?;
        socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(Path {
            label: label.to_owned(),
            target,
            sid,
            socket,
        })
    }

    /// Parses LABEL=ADDR[/SID][@IP].
    fn parse(spec: &str) -> anyhow::Result<Path> {
        let (label, rest) = spec
            .split_once('=')
            .context("a path is LABEL=ADDR[/SID][@IP]")?;
        let (rest, bind) = match rest.rsplit_once('@') {
            Some((r, ip)) => (
                r,
                Some(
                    ip.parse::<IpAddr>()
                        .with_context(|| format!("bad local address in {spec}"))?,
                ),
            ),
            None => (rest, None),
        };
        let (addr, sid) = match rest.split_once('/') {
            Some((a, s)) => (
                a,
                Some(
                    s.parse::<Sid>()
                        .map_err(|e| anyhow::anyhow!("bad sid in {spec}: {e}"))?,
                ),
            ),
            None => (rest, None),
        };
        Path::open(
            label,
            addr.parse()
                .with_context(|| format!("bad address in {spec}"))?,
            sid,
            bind,
        )
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let mut specs = args.paths.clone();
    if let [ip, port] = args.endpoint.as_slice() {
        // Child of mosh-client-mux: settings from the environment.
        let port: u16 = port.parse().context("bad PORT")?;
        args.target = Some(SocketAddr::new(ip.parse().context("bad IP")?, port));
        args.label = "relay".into();
        args.out = Some(
            std::env::var_os("UDPRTT_OUT")
                .context("UDPRTT_OUT is not set")?
                .into(),
        );
        if let Ok(sizes) = std::env::var("UDPRTT_SIZES") {
            args.sizes = sizes.split(',').filter_map(|s| s.parse().ok()).collect();
        }
        args.count = env_or("UDPRTT_COUNT", args.count);
        args.warmup = env_or("UDPRTT_WARMUP", args.warmup);
        args.gap_us = env_or("UDPRTT_GAP_US", args.gap_us);
        args.chunk = env_or("UDPRTT_CHUNK", args.chunk);
        if let Ok(paths) = std::env::var("UDPRTT_PATHS") {
            specs.extend(paths.split_whitespace().map(str::to_owned));
        }
    } else if !args.endpoint.is_empty() {
        anyhow::bail!("expected IP PORT, --path or --target");
    }
    if let (Some(seed), Some(i)) = (args.seed, args.session) {
        args.sid = Some(mosh_mux_bench::sids::sid(seed, i));
    }
    let mut paths = specs
        .iter()
        .map(|s| Path::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(target) = args.target {
        paths.push(Path::open(&args.label, target, args.sid, None)?);
    }
    anyhow::ensure!(!paths.is_empty(), "no path to measure");
    let chunk = args.chunk.max(1);
    let mut seq = 0u32;
    let mut results: Vec<Vec<SizeResult>> = paths.iter().map(|_| Vec::new()).collect();
    for &size in &args.sizes {
        let mut samples: Vec<Vec<f64>> = paths
            .iter()
            .map(|_| Vec::with_capacity(args.count))
            .collect();
        let mut lost = vec![0usize; paths.len()];
        let total = args.warmup + args.count;
        // Bounded: every pass does `chunk` round trips on each path.
        let mut done = 0;
        while done < total {
            let n = chunk.min(total - done);
            for (p, path) in paths.iter().enumerate() {
                for i in done..done + n {
                    seq = seq.wrapping_add(1);
                    let rtt = ping(&path.socket, path.sid, size, seq)?;
                    if i >= args.warmup {
                        match rtt {
                            Some(rtt) => samples[p].push(rtt.as_nanos() as f64 / 1e3),
                            None => lost[p] += 1,
                        }
                    }
                    if args.gap_us > 0 {
                        std::thread::sleep(Duration::from_micros(args.gap_us));
                    }
                }
            }
            done += n;
        }
        for (p, s) in samples.iter_mut().enumerate() {
            results[p].push(SizeResult {
                size,
                lost: lost[p],
                rtt: summarize(s),
            });
        }
    }
    let report = Report {
        gap_us: args.gap_us,
        chunk,
        paths: paths
            .iter()
            .zip(results)
            .map(|(p, sizes)| PathResult {
                label: p.label.clone(),
                target: p.target.to_string(),
                framed: p.sid.is_some(),
                source: p
                    .socket
                    .local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string()),
                sizes,
            })
            .collect(),
    };
    let text = serde_json::to_string(&report)?;
    match &args.out {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}
