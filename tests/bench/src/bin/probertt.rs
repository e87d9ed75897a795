//! probertt: what moshd's probe of a new stock-client source costs.
//!
//! A stock mosh-client sends raw datagrams (no mux header). moshd routes a
//! source address it has mapped by one address lookup; a source it has not
//! mapped yet is *probed*: the datagram goes, through a new loopback
//! candidate socket per (source, session), to the sessions registered with
//! the source's IP as their sshd client address, and the session whose
//! mosh-server answers gets the source mapped.
//!
//! For each of `--sources` new sources (a fresh socket bound to `--bind`,
//! port `--base-port`+i or ephemeral), one at a time: the round trip of its
//! first datagram (unmapped: candidate opened, probe, echo, source mapped),
//! then `--mapped` round trips of the same source (mapped). With `--cpu-pid`
//! (moshd's pid) it also reads moshd's CPU-time clock around each datagram,
//! after a pause (`--settle-us`) that lets moshd finish and sleep, so each
//! datagram's CPU is moshd's work for it alone. `--warmup` sources first,
//! unrecorded, fill the sessions' candidate lists up to moshd's cap, so the
//! recorded probes include evicting an old candidate as in steady state.
//! Bounded by `--seconds`; prints one JSON object.

use anyhow::Context;
use clap::Parser;
use mosh_mux_bench::cpuclock::CpuClock;
use mosh_mux_bench::pingpong::{ping, REPLY_TIMEOUT};
use mosh_mux_bench::stats::{summarize, Summary};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "probertt")]
struct Args {
    /// moshd's public address.
    #[arg(long)]
    target: SocketAddr,
    /// Local address of the sources: the sshd client address the probed
    /// sessions were registered with.
    #[arg(long)]
    bind: IpAddr,
    /// Recorded new sources.
    #[arg(long, default_value_t = 300)]
    sources: u32,
    /// Unrecorded new sources first.
    #[arg(long, default_value_t = 20)]
    warmup: u32,
    /// Round trips of each source once mapped.
    #[arg(long, default_value_t = 1)]
    mapped: u32,
    /// Source i binds port BASE+i (distinct sources for sure); default ephemeral.
    #[arg(long)]
    base_port: Option<u16>,
    /// Payload bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Pause after each round trip, in microseconds (before moshd's CPU clock is read).
    #[arg(long, default_value_t = 200)]
    settle_us: u64,
    /// moshd's pid: attribute its CPU time to each datagram.
    #[arg(long)]
    cpu_pid: Option<u32>,
    /// Stop after this long, whatever happens.
    #[arg(long, default_value_t = 120.0)]
    seconds: f64,
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Serialize)]
struct Cpu {
    /// moshd's CPU per first (probed) datagram and its reply, microseconds.
    first_us: Summary,
    /// moshd's CPU per mapped datagram and its reply, microseconds.
    mapped_us: Summary,
}

#[derive(Serialize)]
struct Report {
    label: String,
    target: String,
    bind: String,
    size: usize,
    warmup: u32,
    mapped_per_source: u32,
    settle_us: u64,
    /// Recorded sources whose first datagram was answered.
    sources: u32,
    /// Recorded sources whose first datagram got no echo (no mapped round trips follow).
    lost_first: u32,
    lost_mapped: u32,
    /// True if `--seconds` ran out before every source was tried.
    stopped_early: bool,
    wall_s: f64,
    first: Summary,
    mapped: Summary,
    cpu: Option<Cpu>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    anyhow::ensure!(
        args.sources >= 1 && args.sources <= 100_000 && args.warmup <= 100_000,
        "--sources must be in [1, 100000], --warmup at most 100000"
    );
    if let Some(base) = args.base_port {
        anyhow::ensure!(
            u32::from(base) + args.warmup + args.sources <= 65_536,
            "--base-port too high for that many sources"
        );
    }
    let clock = match args.cpu_pid {
        Some(pid) => Some(CpuClock::of(pid)?),
        None => None,
    };
    let settle = Duration::from_micros(args.settle_us);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let cpu_now = || -> anyhow::Result<u64> {
        std::thread::sleep(settle);
        clock.as_ref().map_or(Ok(0), CpuClock::now_ns)
    };
    let (mut first, mut mapped) = (Vec::new(), Vec::new());
    let (mut cpu_first, mut cpu_mapped) = (Vec::new(), Vec::new());
    let (mut answered, mut lost_first, mut lost_mapped) = (0u32, 0u32, 0u32);
    let mut stopped_early = false;
    let mut seq = 0u32;
    let total = args.warmup + args.sources;
    for i in 0..total {
        if Instant::now() >= deadline {
            stopped_early = true;
            break;
        }
        let recording = i >= args.warmup;
        let port = args.base_port.map_or(0, |b| b + i as u16);
        let local = SocketAddr::new(args.bind, port);
        let socket = UdpSocket::bind(local).with_context(|| format!("cannot bind {local}"))?;
        socket.connect(args.target)?;
        socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let mut c0 = cpu_now()?;
        seq = seq.wrapping_add(1);
        let Some(rtt) = ping(&socket, None, args.size, seq)? else {
            // Not mapped: what follows would be probes again.
            lost_first += u32::from(recording);
            continue;
        };
        let c1 = cpu_now()?;
        if recording {
            answered += 1;
            first.push(rtt.as_nanos() as f64 / 1e3);
            cpu_first.push(c1.saturating_sub(c0) as f64 / 1e3);
        }
        c0 = c1;
        for _ in 0..args.mapped {
            seq = seq.wrapping_add(1);
            let rtt = ping(&socket, None, args.size, seq)?;
            let c1 = cpu_now()?;
            if recording {
                match rtt {
                    Some(rtt) => {
                        mapped.push(rtt.as_nanos() as f64 / 1e3);
                        cpu_mapped.push(c1.saturating_sub(c0) as f64 / 1e3);
                    }
                    None => lost_mapped += 1,
                }
            }
            c0 = c1;
        }
    }
    let report = Report {
        label: args.label,
        target: args.target.to_string(),
        bind: args.bind.to_string(),
        size: args.size,
        warmup: args.warmup,
        mapped_per_source: args.mapped,
        settle_us: args.settle_us,
        sources: answered,
        lost_first,
        lost_mapped,
        stopped_early,
        wall_s: started.elapsed().as_secs_f64(),
        first: summarize(&mut first),
        mapped: summarize(&mut mapped),
        cpu: clock.map(|_| Cpu {
            first_us: summarize(&mut cpu_first),
            mapped_us: summarize(&mut cpu_mapped),
        }),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
