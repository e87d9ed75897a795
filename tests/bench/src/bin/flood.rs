//! flood: a bounded flood of random datagrams at one UDP port, for the
//! security test that a real session keeps typing and echoing while moshd's
//! port takes at least 100,000 datagrams a second (issue 3).
//!
//! The datagrams are what an attacker who knows nothing would send: a third
//! look like raw mosh datagrams (first byte below 0x80), a third carry the
//! mux header with a random session id, a third are random bytes of random
//! length. They leave from `--sockets` source ports, in `sendmmsg` batches,
//! paced to `--rate` a second. The flood stops by itself after `--seconds`
//! (and never sends more than rate × seconds datagrams). The destination
//! must be a TEST-NET address (RFC 5737): the tool refuses anything else, so
//! it can only ever hit the namespace lab.
//!
//! Prints one JSON object: datagrams sent (accepted by the kernel), those
//! the socket buffers refused, the elapsed time and the achieved rate.

use anyhow::{bail, Context};
use clap::Parser;
use mosh_mux_bench::mmsg::Batch;
use mosh_mux_bench::pacer::Pacer;
use mosh_mux_proto::header::MAGIC_V1;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "A bounded flood of random datagrams at a TEST-NET address (lab only)")]
struct Args {
    /// Target address and port; must be in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24.
    #[arg(long)]
    to: SocketAddr,
    /// Datagrams a second.
    #[arg(long, default_value_t = 120_000)]
    rate: u32,
    /// How long to flood, in seconds (at most 60).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Distinct source ports to send from (at most 1024).
    #[arg(long, default_value_t = 64)]
    sockets: usize,
    /// Seed for the random contents, so a run can be repeated.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
}

#[derive(Serialize)]
struct Report {
    to: String,
    target_rate: u32,
    sent: u64,
    refused: u64,
    seconds: f64,
    rate: f64,
    raw: u64,
    framed: u64,
    garbage: u64,
}

/// Datagrams per `sendmmsg`.
const BATCH: usize = 64;
/// Largest random datagram: small, like most of mosh's, so the flood is
/// about datagrams a second rather than bytes.
const MAX_LEN: usize = 200;

fn is_test_net(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            matches!((o[0], o[1], o[2]), (192, 0, 2) | (198, 51, 100) | (203, 0, 113))
        }
        IpAddr::V6(_) => false,
    }
}

/// xorshift64*: enough randomness for contents, and repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// Kinds of flood datagram, in turn.
#[derive(Clone, Copy)]
enum Kind {
    Raw,
    Framed,
    Garbage,
}

/// Writes one random datagram of `kind` into `out`; returns its length.
fn fill_datagram(rng: &mut Rng, kind: Kind, out: &mut [u8]) -> usize {
    let max = MAX_LEN.min(out.len());
    let len = match kind {
        // A mosh datagram is at least nonce + tag (8 + 16 bytes).
        Kind::Raw | Kind::Framed => 24 + (rng.next() as usize) % (max - 24 + 1),
        Kind::Garbage => (rng.next() as usize) % (max + 1),
    };
    rng.fill(&mut out[..len]);
    match kind {
        Kind::Raw => out[0] &= 0x7f,
        Kind::Framed => out[0] = MAGIC_V1,
        Kind::Garbage => {}
    }
    len
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !is_test_net(args.to.ip()) {
        bail!("refusing to flood {}: only TEST-NET addresses (the namespace lab)", args.to);
    }
    if !(args.seconds > 0.0 && args.seconds <= 60.0) {
        bail!("--seconds must be in (0, 60], not {}", args.seconds);
    }
    if args.sockets == 0 || args.sockets > 1024 {
        bail!("--sockets must be 1 to 1024, not {}", args.sockets);
    }
    let sockets: Vec<UdpSocket> = (0..args.sockets)
        .map(|_| UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))))
        .collect::<Result<_, _>>()
        .context("cannot open the flood's sockets")?;
    for s in &sockets {
        s.connect(args.to).with_context(|| format!("cannot address {}", args.to))?;
    }
    let total = (f64::from(args.rate) * args.seconds) as u64;
    let mut rng = Rng(args.seed | 1);
    let mut batch = Batch::new(BATCH);
    let mut report = Report {
        to: args.to.to_string(),
        target_rate: args.rate,
        sent: 0,
        refused: 0,
        seconds: 0.0,
        rate: 0.0,
        raw: 0,
        framed: 0,
        garbage: 0,
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut pacer = Pacer::new(start, f64::from(args.rate), Duration::from_millis(50));
    let mut issued: u64 = 0;
    let mut next_socket = 0;
    // Bounded: stops at the deadline or after `total` datagrams.
    while issued < total {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let mut due = pacer.due(now).min(total - issued);
        if due == 0 {
            if let Some(at) = pacer.next_at() {
                std::thread::sleep(at.saturating_duration_since(Instant::now()).min(Duration::from_millis(1)));
            }
            continue;
        }
        while due > 0 {
            let n = (due as usize).min(BATCH);
            for i in 0..n {
                let kind = match (issued + i as u64) % 3 {
                    0 => Kind::Raw,
                    1 => Kind::Framed,
                    _ => Kind::Garbage,
                };
                let len = fill_datagram(&mut rng, kind, batch.slot_mut(i));
                batch.set_len(i, len);
                match kind {
                    Kind::Raw => report.raw += 1,
                    Kind::Framed => report.framed += 1,
                    Kind::Garbage => report.garbage += 1,
                }
            }
            let socket = &sockets[next_socket % sockets.len()];
            next_socket += 1;
            let sent = match batch.send(socket.as_raw_fd(), n) {
                Ok(k) => k as u64,
                // ECONNREFUSED from an ICMP error on this connected socket,
                // or a full device queue: the datagrams are not sent.
                Err(_) => 0,
            };
            report.sent += sent;
            report.refused += n as u64 - sent;
            issued += n as u64;
            due -= n as u64;
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    report.rate = report.sent as f64 / report.seconds.max(1e-9);
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_test_net() {
        for ok in ["192.0.2.1", "198.51.100.7", "203.0.113.10"] {
            assert!(is_test_net(ok.parse().unwrap()), "{ok}");
        }
        for no in ["127.0.0.1", "10.0.0.1", "198.51.101.1", "8.8.8.8", "::1"] {
            assert!(!is_test_net(no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn datagrams_have_their_kind() {
        let mut rng = Rng(7);
        let mut buf = [0u8; 2048];
        for _ in 0..1000 {
            let n = fill_datagram(&mut rng, Kind::Raw, &mut buf);
            assert!((24..=MAX_LEN).contains(&n) && buf[0] < 0x80);
            let n = fill_datagram(&mut rng, Kind::Framed, &mut buf);
            assert!((24..=MAX_LEN).contains(&n) && buf[0] == MAGIC_V1);
            assert!(fill_datagram(&mut rng, Kind::Garbage, &mut buf) <= MAX_LEN);
        }
    }
}
