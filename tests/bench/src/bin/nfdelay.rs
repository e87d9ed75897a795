//! nfdelay: a fixed one-way delay for the namespace lab, on kernels without tc netem.
//!
//! The lossy-link test (tests/e2e/test_fault_lossy.sh) needs "300 ms of delay on the path". Where
//! `sch_netem` is missing (the 6.18 kernel the lab was written on has neither netem nor nft's
//! `queue` expression), the lab (`lab_delay` in scripts/lab.sh) sends the packets to delay to an
//! NFQUEUE queue with an iptables-nft rule, and this program, in the same network namespace, holds
//! each queued packet and gives it the ACCEPT verdict `--delay-ms` after it arrived, in arrival
//! order. The kernel keeps the packet meanwhile; only its id crosses into userspace (copy mode
//! "meta"), so nothing is copied back and forth.
//!
//! Bounded in every way: at most `--max-held` packets are held (later ones get the DROP verdict at
//! once, counted); SIGTERM, SIGINT or SIGHUP, or `--max-lifetime` seconds, end it, and the
//! packets still held are then accepted at once rather than lost. One line on stderr when ready
//! ("nfdelay: ready ...") and one at exit ("nfdelay: exit reason=... received=... ..."). Its
//! `flushed` counts verdicts the kernel answered ENOENT: packets it had dropped while held here,
//! which it does to every queued packet of the namespace whenever a netfilter hook there is
//! removed (deleting an nft table with a base chain, say).
//!
//! Talks nfnetlink_queue over a raw netlink socket through libc (the `nfq` crate does not expose
//! its socket, so it cannot wait on a timer and the socket at once). Layouts and numbers are
//! those of <linux/netlink.h>, <linux/netfilter/nfnetlink.h> and
//! <linux/netfilter/nfnetlink_queue.h>.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "nfdelay",
    about = "Delay the packets of an NFQUEUE queue by a fixed time (a netem stand-in for the lab)"
)]
struct Args {
    /// The queue to serve, as in `iptables ... -j NFQUEUE --queue-num N`.
    #[arg(long)]
    queue: u16,
    /// How long each packet is held before it is accepted, in milliseconds (at most 60,000).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    delay_ms: u64,
    /// Most packets held at once; a packet arriving beyond that is dropped (and counted).
    #[arg(long, default_value_t = 4096)]
    max_held: usize,
    /// Exit after this many seconds whatever happens (so it can never outlive its test; at most a day).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_lifetime: u64,
}

// <linux/netlink.h>
/// Most reads of the queue socket between two looks at the clock and the signals.
const MAX_READS_PER_PASS: usize = 256;

const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 0x2;
// <linux/netfilter/nfnetlink.h>
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFNETLINK_V0: u8 = 0;
const NFGENMSG_LEN: usize = 4;
// <linux/netfilter/nfnetlink_queue.h>
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQNL_MSG_VERDICT_BATCH: u16 = 3;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;
// <linux/netfilter.h>
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One nfnetlink_queue request: netlink header, nfgenmsg (res_id = the queue, big-endian), then
/// attributes, each padded to 4 bytes.
fn build_msg(msg_type: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; NLMSG_HDRLEN];
    b.push(libc::AF_UNSPEC as u8);
    b.push(NFNETLINK_V0);
    b.extend_from_slice(&queue.to_be_bytes());
    for (ty, data) in attrs {
        b.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(data);
        b.resize(align4(b.len()), 0);
    }
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg_type).to_ne_bytes());
    b[6..8].copy_from_slice(&flags.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b
}

/// What one received netlink message says.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// A queued packet, by its id.
    Packet(u32),
    /// The answer to a request: errno 0 is an acknowledgement.
    Error { errno: i32, seq: u32 },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The events in one datagram from the kernel (a netlink datagram may hold several messages).
/// Malformed input ends the parse: the kernel does not send it, and nothing here may panic.
fn parse_datagram(b: &[u8], out: &mut Vec<Event>) -> Result<()> {
    let mut off = 0;
    while off + NLMSG_HDRLEN <= b.len() {
        let len = u32_at(b, off).context("netlink header")? as usize;
        let ty = u16_at(b, off + 4).context("netlink header")?;
        let seq = u32_at(b, off + 8).context("netlink header")?;
        if len < NLMSG_HDRLEN || off + len > b.len() {
            bail!(
                "malformed netlink message (length {len} at offset {off} of {})",
                b.len()
            );
        }
        let msg = &b[off..off + len];
        if ty == NLMSG_ERROR {
            let err = u32_at(msg, NLMSG_HDRLEN).context("short netlink error message")? as i32;
            out.push(Event::Error {
                errno: err.wrapping_neg(),
                seq,
            });
        } else if ty == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            out.push(Event::Packet(
                packet_id(msg).context("queued packet without a packet header")?,
            ));
        }
        off += align4(len);
    }
    Ok(())
}

/// The packet id in an NFQNL_MSG_PACKET message (attribute NFQA_PACKET_HDR: struct
/// nfqnl_msg_packet_hdr, whose first field is the id, big-endian).
fn packet_id(msg: &[u8]) -> Option<u32> {
    let mut at = NLMSG_HDRLEN + NFGENMSG_LEN;
    while at + 4 <= msg.len() {
        let len = u16_at(msg, at)? as usize;
        let ty = u16_at(msg, at + 2)? & NLA_TYPE_MASK;
        if len < 4 || at + len > msg.len() {
            return None;
        }
        if ty == NFQA_PACKET_HDR && len >= 8 {
            return Some(u32::from_be_bytes(
                msg.get(at + 4..at + 8)?.try_into().ok()?,
            ));
        }
        at += align4(len);
    }
    None
}

fn last_os_error(what: &str) -> anyhow::Error {
    anyhow::Error::new(std::io::Error::last_os_error()).context(what.to_string())
}

/// A netlink socket bound to one nfnetlink_queue queue.
struct Nfq {
    fd: OwnedFd,
    queue: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl Nfq {
    /// Bind queue QUEUE: copy only metadata, kernel queue length MAXLEN, fail closed (when the
    /// kernel's queue is full it drops, as a full router would).
    fn open(queue: u16, maxlen: u32) -> Result<Nfq> {
        // SAFETY: plain system calls on a descriptor this function owns.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(last_os_error("netlink socket (NETLINK_NETFILTER)"));
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all zero is "kernel assigns the port id".
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a valid sockaddr_nl of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(last_os_error("bind netlink socket"));
        }
        // A burst (the lossy test sends 1,000 probes in 0.1 s) must not overflow the socket
        // buffer: each queued packet is a message of a few hundred bytes of kernel memory.
        let size: libc::c_int = 8 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: size is a c_int of the size given.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &size as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                break;
            }
        }
        let mut q = Nfq {
            fd,
            queue,
            seq: 0,
            buf: vec![0u8; 64 * 1024],
        };
        q.config(&[(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])])
            .with_context(|| {
                format!("bind NFQUEUE queue {queue} (is another program serving it?)")
            })?;
        // struct nfqnl_msg_config_params { __be32 copy_range; __u8 copy_mode; } __packed
        q.config(&[(NFQA_CFG_PARAMS, &[0, 0, 0, 0, NFQNL_COPY_META])])
            .context("set copy mode")?;
        q.config(&[(NFQA_CFG_QUEUE_MAXLEN, &maxlen.to_be_bytes())])
            .context("set queue length")?;
        q.config(&[
            (NFQA_CFG_FLAGS, &0u32.to_be_bytes()),
            (NFQA_CFG_MASK, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes()),
        ])
        .context("turn fail-open off")?;
        Ok(q)
    }

    fn send(&mut self, msg_type: u16, flags: u16, attrs: &[(u16, &[u8])]) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let msg = build_msg(msg_type, flags, self.seq, self.queue, attrs);
        // SAFETY: sockaddr_nl is plain data; all zero addresses the kernel.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: msg and to are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    msg.as_ptr() as *const libc::c_void,
                    msg.len(),
                    0,
                    &to as *const libc::sockaddr_nl as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(self.seq);
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Err(last_os_error("send to nfnetlink_queue"));
            }
        }
    }

    /// A configuration request, acknowledged (waits at most 2 s for the answer).
    fn config(&mut self, attrs: &[(u16, &[u8])]) -> Result<()> {
        let seq = self.send(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attrs)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut events = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                bail!("no answer from nfnetlink_queue within 2 s");
            }
            if !wait_readable(&[self.fd.as_raw_fd()], deadline - now)?
                .first()
                .copied()
                .unwrap_or(false)
            {
                continue;
            }
            events.clear();
            match self.recv(&mut events) {
                Ok(()) => {}
                Err(Recv::Again) => continue,
                Err(Recv::Overrun) => continue,
                Err(Recv::Fatal(e)) => return Err(e),
            }
            for ev in &events {
                if let Event::Error { errno, seq: s } = *ev {
                    if s == seq && errno == 0 {
                        return Ok(());
                    }
                    if s == seq {
                        return Err(std::io::Error::from_raw_os_error(errno).into());
                    }
                }
            }
        }
    }

    /// One datagram from the kernel, parsed into EVENTS.
    fn recv(&mut self, events: &mut Vec<Event>) -> std::result::Result<(), Recv> {
        // SAFETY: buf is valid for its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr() as *mut libc::c_void,
                self.buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Recv::Again,
                // The socket's buffer overflowed: the kernel dropped what it could not deliver.
                Some(libc::ENOBUFS) => Recv::Overrun,
                _ => Recv::Fatal(anyhow::Error::new(e).context("receive from nfnetlink_queue")),
            });
        }
        let n = n as usize;
        if n > self.buf.len() {
            return Err(Recv::Fatal(anyhow::anyhow!(
                "netlink datagram of {n} bytes truncated"
            )));
        }
        parse_datagram(&self.buf[..n], events).map_err(Recv::Fatal)
    }

    /// VERDICT for packet ID alone.
    fn verdict(&mut self, id: u32, verdict: u32) -> Result<()> {
        let mut hdr = [0u8; 8]; // struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
        hdr[..4].copy_from_slice(&verdict.to_be_bytes());
        hdr[4..].copy_from_slice(&id.to_be_bytes());
        self.send(
            NFQNL_MSG_VERDICT,
            NLM_F_REQUEST,
            &[(NFQA_VERDICT_HDR, &hdr)],
        )
        .map(drop)
    }

    /// VERDICT for every packet still queued up to and including ID (in queue order).
    fn verdict_upto(&mut self, id: u32, verdict: u32) -> Result<()> {
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&verdict.to_be_bytes());
        hdr[4..].copy_from_slice(&id.to_be_bytes());
        self.send(
            NFQNL_MSG_VERDICT_BATCH,
            NLM_F_REQUEST,
            &[(NFQA_VERDICT_HDR, &hdr)],
        )
        .map(drop)
    }
}

enum Recv {
    /// Nothing to read now.
    Again,
    /// The kernel could not deliver some queued packets to us (and dropped them).
    Overrun,
    Fatal(anyhow::Error),
}

/// Wait until one of FDS is readable or TIMEOUT passes; which are readable (or in error).
fn wait_readable(fds: &[libc::c_int], timeout: Duration) -> Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: pfds and ts are valid; no signal mask change.
    let rc = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            return Ok(vec![false; fds.len()]);
        }
        return Err(last_os_error("ppoll"));
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

/// Block SIGTERM, SIGINT and SIGHUP and return a signalfd that reports them.
fn signal_fd() -> Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set; the mask applies to this single thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) < 0 {
            return Err(last_os_error("sigprocmask"));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(last_os_error("signalfd"));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// The signal waiting on a signalfd, if any.
fn read_signal(fd: &OwnedFd) -> Option<u32> {
    // SAFETY: signalfd_siginfo is plain data, and read writes at most its size.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = libc::read(
            fd.as_raw_fd(),
            &mut info as *mut _ as *mut libc::c_void,
            size,
        );
        (n == size as isize).then_some(info.ssi_signo)
    }
}

#[derive(Default)]
struct Stats {
    received: u64,
    accepted: u64,
    accepted_early: u64,
    dropped_over_bound: u64,
    max_held: usize,
    overruns: u64,
    flushed: u64,
    verdict_errors: u64,
}

fn run(args: &Args) -> Result<(String, Stats)> {
    let sig = signal_fd()?;
    let maxlen = u32::try_from(args.max_held)
        .unwrap_or(u32::MAX)
        .saturating_add(1024);
    let mut q = Nfq::open(args.queue, maxlen)?;
    let delay = Duration::from_millis(args.delay_ms);
    let end = Instant::now() + Duration::from_secs(args.max_lifetime);
    eprintln!(
        "nfdelay: ready queue={} delay_ms={} max_held={} max_lifetime_s={}",
        args.queue, args.delay_ms, args.max_held, args.max_lifetime
    );
    let mut st = Stats::default();
    // (due time, packet id), in arrival order; the delay is constant, so due times are too.
    let mut held: VecDeque<(Instant, u32)> = VecDeque::new();
    let mut events = Vec::new();
    let reason = loop {
        // Release what is due: one batch verdict covers every packet up to the last due id.
        let now = Instant::now();
        let mut last = None;
        while let Some(&(due, id)) = held.front() {
            if due > now {
                break;
            }
            held.pop_front();
            st.accepted += 1;
            last = Some(id);
        }
        if let Some(id) = last {
            q.verdict_upto(id, NF_ACCEPT)?;
        }
        if now >= end {
            break format!("lifetime ({} s)", args.max_lifetime);
        }
        let wake = held.front().map_or(end, |&(due, _)| due.min(end));
        let ready = wait_readable(
            &[q.fd.as_raw_fd(), sig.as_raw_fd()],
            wake.saturating_duration_since(now),
        )?;
        if ready.get(1).copied().unwrap_or(false) {
            if let Some(signo) = read_signal(&sig) {
                break format!("signal {signo}");
            }
        }
        if !ready.first().copied().unwrap_or(false) {
            continue;
        }
        // Drain the socket, a bounded number of reads at a time, so that due
        // packets, the lifetime and signals are seen to while packets pour in.
        for _ in 0..MAX_READS_PER_PASS {
            events.clear();
            match q.recv(&mut events) {
                Ok(()) => {}
                Err(Recv::Again) => break,
                Err(Recv::Overrun) => {
                    st.overruns += 1;
                    continue;
                }
                Err(Recv::Fatal(e)) => return Err(e),
            }
            let arrived = Instant::now();
            for ev in &events {
                match *ev {
                    Event::Packet(id) => {
                        st.received += 1;
                        if held.len() >= args.max_held {
                            st.dropped_over_bound += 1;
                            q.verdict(id, NF_DROP)?;
                        } else {
                            held.push_back((arrived + delay, id));
                            st.max_held = st.max_held.max(held.len());
                        }
                    }
                    // Verdicts are not acknowledged; an answer is a refused one. ENOENT: the
                    // kernel no longer held those packets. It drops every queued packet of the
                    // namespace whenever a netfilter hook there goes away (nf_queue_nf_hook_drop:
                    // deleting an nft base chain, say), so the packets held then were lost.
                    Event::Error { errno, .. } if errno == libc::ENOENT => {
                        st.flushed += 1;
                        if st.flushed <= 5 {
                            eprintln!(
                                "nfdelay: the kernel had dropped held packets (a netfilter hook \
                                 was removed in this namespace?)"
                            );
                        }
                    }
                    Event::Error { errno, .. } if errno != 0 => {
                        st.verdict_errors += 1;
                        if st.verdict_errors <= 5 {
                            eprintln!(
                                "nfdelay: verdict refused: {}",
                                std::io::Error::from_raw_os_error(errno)
                            );
                        }
                    }
                    Event::Error { .. } => {}
                }
            }
        }
    };
    // Leaving: what is still held goes on now rather than being dropped when the socket closes.
    if let Some(&(_, id)) = held.back() {
        st.accepted_early = held.len() as u64;
        st.accepted += held.len() as u64;
        q.verdict_upto(id, NF_ACCEPT)?;
    }
    Ok((reason, st))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.max_held == 0 {
        bail!("--max-held must be at least 1");
    }
    let (reason, st) = run(&args)?;
    eprintln!(
        "nfdelay: exit reason={:?} queue={} delay_ms={} received={} accepted={} accepted_early={} \
         dropped_over_bound={} max_held={} kernel_overruns={} flushed={} verdict_errors={}",
        reason,
        args.queue,
        args.delay_ms,
        st.received,
        st.accepted,
        st.accepted_early,
        st.dropped_over_bound,
        st.max_held,
        st.overruns,
        st.flushed,
        st.verdict_errors
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_padded_attributes() {
        let m = build_msg(
            NFQNL_MSG_CONFIG,
            NLM_F_REQUEST | NLM_F_ACK,
            7,
            300,
            &[(NFQA_CFG_PARAMS, &[0, 0, 0, 0, 1])],
        );
        assert_eq!(m.len(), 16 + 4 + 12);
        assert_eq!(u32_at(&m, 0), Some(32));
        assert_eq!(u16_at(&m, 4), Some((3 << 8) | 2));
        assert_eq!(u32_at(&m, 8), Some(7));
        assert_eq!(&m[18..20], &300u16.to_be_bytes());
        assert_eq!(u16_at(&m, 20), Some(9));
        assert_eq!(u16_at(&m, 22), Some(NFQA_CFG_PARAMS));
    }

    #[test]
    fn parses_packets_and_errors() {
        // A packet message: an unrelated attribute first, then the packet header (id 0x01020304).
        let mut pkt = build_msg(
            NFQNL_MSG_PACKET,
            0,
            0,
            1,
            &[
                (5, &[9, 9, 9, 9]),
                (NFQA_PACKET_HDR | 0x4000, &[1, 2, 3, 4, 0x08, 0x00, 2]),
            ],
        );
        // An error message answering seq 9 with -EPERM.
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[8..12].copy_from_slice(&9u32.to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        pkt.append(&mut err);
        let mut ev = Vec::new();
        parse_datagram(&pkt, &mut ev).unwrap();
        assert_eq!(
            ev,
            vec![
                Event::Packet(0x01020304),
                Event::Error {
                    errno: libc::EPERM,
                    seq: 9
                }
            ]
        );
    }

    #[test]
    fn refuses_malformed_input() {
        let mut ev = Vec::new();
        let mut m = build_msg(
            NFQNL_MSG_PACKET,
            0,
            0,
            1,
            &[(NFQA_PACKET_HDR, &[1, 2, 3, 4])],
        );
        m[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse_datagram(&m, &mut ev).is_err());
        // An attribute claiming more than the message holds: no id.
        let mut m = build_msg(
            NFQNL_MSG_PACKET,
            0,
            0,
            1,
            &[(NFQA_PACKET_HDR, &[1, 2, 3, 4])],
        );
        m[20..22].copy_from_slice(&200u16.to_ne_bytes());
        assert!(parse_datagram(&m, &mut ev).is_err());
        assert!(ev.is_empty());
    }
}
