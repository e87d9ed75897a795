//! Mux mode: stock mosh-client on a loopback socket, its datagrams to moshd.
//!
//! A thin tokio shell around `MappingTable`. mosh-client talks to the inner
//! socket on 127.0.0.1; each of its source addresses gets an outer socket
//! connected to moshd (see `outer`), its datagrams go out behind the 9-byte
//! header (magic, sid), and moshd's replies, plain mosh datagrams, go back
//! unchanged to the mosh-client socket that owns the outer socket. The relay
//! wakes only for datagrams, signals and the child's exit: no timers. Send
//! errors (ICMP refusals, no route while roaming, full buffers) are counted
//! and logged at debug level, never fatal: mosh retransmits by itself.
//!
//! Any local process can send to the inner port; it can only make the relay
//! frame junk that moshd's mosh-server fails to authenticate, or push the
//! real mosh-client's mapping out of the table (the next datagram makes a new
//! one). Datagrams from non-loopback sources are dropped.

use mosh_mux_proto::Notice;
use std::sync::atomic::{AtomicBool, Ordering};
use mosh_mux_proto::udp_ecn::{self, EcnSocket, Received};
use crate::child;
use crate::fail;
use crate::mapping::{MappingTable, Removal, Removed};
use crate::stock_argv::connect_argv;
use anyhow::Context;
use mosh_mux_proto::{encode_header, Sid, HEADER_LEN};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::AbortHandle;

/// The largest mosh datagram the relay reads (mosh's own receive buffer).
pub const MAX_DATAGRAM: usize = 2048;
/// How long a receive loop pauses after an error, so that an error that
/// repeats can never spin the CPU.
const ERROR_PAUSE: Duration = Duration::from_millis(5);

/// What mux mode needs to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub mosh_client: PathBuf,
    /// mosh-client's options (`-# ...`, `-v`), kept as given.
    pub options: Vec<OsString>,
    pub moshd: SocketAddr,
    pub sid: Sid,
}

/// Runs mux mode to the end; returns the exit status for the process.
pub fn run(config: RelayConfig) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the relay runtime")?;
    runtime.block_on(relay(config))
}

/// Whether a datagram on the inner socket may be relayed: only mosh-client,
/// which is local, sends there.
pub fn accept_inner_source(source: SocketAddr) -> bool {
    source.ip().is_loopback()
}

/// The receive buffer for the inner socket: the header for `sid` in front,
/// so a datagram is framed by receiving it behind the header.
pub fn framing_buffer(sid: Sid) -> [u8; HEADER_LEN + MAX_DATAGRAM] {
    let mut buf = [0u8; HEADER_LEN + MAX_DATAGRAM];
    let mut header = [0u8; HEADER_LEN];
    encode_header(sid, &mut header);
    buf[..HEADER_LEN].copy_from_slice(&header);
    buf
}

/// An outer socket and the task that carries its replies back.
struct Outer {
    socket: Arc<UdpSocket>,
    replies: AbortHandle,
}

impl Drop for Outer {
    fn drop(&mut self) {
        // The task holds the other reference to the socket: ending it closes it.
        self.replies.abort();
    }
}

/// Counters for the debug log.
#[derive(Debug, Default)]
struct Counters {
    relayed: u64,
    foreign_dropped: u64,
    open_failed: u64,
    send_failed: u64,
    recv_failed: u64,
    removed: u64,
}

/// What the reply paths have seen, for the messages a user needs.
#[derive(Default)]
struct Seen {
    /// Any datagram from moshd at all.
    heard: AtomicBool,
    /// moshd said it does not know this session.
    unknown: AtomicBool,
}

/// How long without any answer before suggesting a firewall is in the way.
const NO_ANSWER_HINT_AFTER: Duration = Duration::from_secs(5);

fn unknown_session_message() -> &'static str {
    "mosh-client-mux: this session is unknown to moshd (moshd was restarted without its state, \
     or the session ended); it cannot resume: press Ctrl-^ . to quit"
}

fn no_answer_message(moshd: SocketAddr) -> String {
    format!(
        "mosh-client-mux: no answer from moshd at {moshd} after {} s; is UDP port {} open in the \
         server's firewall? (still trying)",
        NO_ANSWER_HINT_AFTER.as_secs(),
        moshd.port()
    )
}

/// A message for the user on the terminal mosh-client draws on: on a line
/// of its own, at once (mosh-client redraws over it in time).
fn tell_user(message: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\n{message}\r\n");
    let _ = err.flush();
}

async fn relay(config: RelayConfig) -> anyhow::Result<i32> {
    // Handlers first: a signal that comes while the child starts is kept.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;

    let inner = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("cannot bind the loopback socket for mosh-client")?;
    udp_ecn::mark(&inner, false, udp_ecn::ECT0).context("cannot mark the loopback socket ECT(0)")?;
    let inner = Arc::new(inner);
    let inner_port = inner.local_addr().context("loopback socket")?.port();

    let argv = connect_argv(&config.options, "127.0.0.1", inner_port);
    let mut child = child::spawn(&config.mosh_client, &argv)
        .map_err(|e| fail::cannot_run(&config.mosh_client, &e))?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    tracing::info!(inner_port, moshd = %config.moshd, sid = %config.sid, ?pid, "relay started");

    let mut table: MappingTable<Outer> = MappingTable::default();
    let mut counters = Counters::default();
    let mut buf = framing_buffer(config.sid);
    let seen = Arc::new(Seen::default());
    // One timer, once: the only time the relay wakes without a datagram.
    let hint = tokio::time::sleep(NO_ANSWER_HINT_AFTER);
    tokio::pin!(hint);
    let mut hint_armed = true;

    let status = loop {
        tokio::select! {
            biased;
            status = child.wait() => break status.context("waiting for mosh-client")?,
            _ = sigterm.recv() => forward(pid, Signal::SIGTERM),
            _ = sighup.recv() => forward(pid, Signal::SIGHUP),
            _ = sigint.recv() => forward(pid, Signal::SIGINT),
            _ = &mut hint, if hint_armed => {
                hint_armed = false;
                if counters.relayed > 0 && !seen.heard.load(Ordering::Relaxed) {
                    tell_user(&no_answer_message(config.moshd));
                }
            }
            received = inner.recv_from(&mut buf[HEADER_LEN..]) => match received {
                Ok((len, source)) => {
                    let framed = &buf[..HEADER_LEN + len];
                    to_moshd(&config, &inner, &seen, &mut table, &mut counters, source, framed).await;
                }
                Err(e) => {
                    counters.recv_failed += 1;
                    tracing::debug!(error = %e, "inner receive failed");
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            },
        }
    };
    tracing::debug!(?counters, %status, "mosh-client exited");
    // Said again after mosh-client has given the terminal back.
    if seen.unknown.load(Ordering::Relaxed) {
        eprintln!("{}", unknown_session_message());
    } else if counters.relayed > 0 && !seen.heard.load(Ordering::Relaxed) {
        eprintln!("{}", no_answer_message(config.moshd));
    }
    Ok(child::exit_code(status))
}

/// Whether `from` is `moshd` (an IPv4-mapped IPv6 form counts as the same).
fn same_peer(from: SocketAddr, moshd: SocketAddr) -> bool {
    from.port() == moshd.port() && from.ip().to_canonical() == moshd.ip().to_canonical()
}

/// Passes a termination signal on to mosh-client, which shuts down cleanly.
fn forward(pid: Option<Pid>, signal: Signal) {
    tracing::debug!(?signal, "forwarding signal to mosh-client");
    if let Some(pid) = pid {
        if let Err(e) = kill(pid, signal) {
            tracing::debug!(error = %e, "cannot forward signal");
        }
    }
}

/// Sends one framed datagram from mosh-client `source` to moshd.
#[allow(clippy::too_many_arguments)]
async fn to_moshd(
    config: &RelayConfig,
    inner: &Arc<UdpSocket>,
    seen: &Arc<Seen>,
    table: &mut MappingTable<Outer>,
    counters: &mut Counters,
    source: SocketAddr,
    framed: &[u8],
) {
    if !accept_inner_source(source) {
        counters.foreign_dropped += 1;
        tracing::debug!(%source, "dropped datagram from a non-loopback source");
        return;
    }
    let now = Instant::now();
    let socket = match table.get(source, now) {
        Some(outer) => Arc::clone(&outer.socket),
        None => {
            let outer = match open_outer(config.moshd, Arc::clone(inner), Arc::clone(seen), source) {
                Ok(outer) => outer,
                Err(e) => {
                    counters.open_failed += 1;
                    tracing::debug!(%source, error = %e, "cannot open outer socket");
                    return;
                }
            };
            let socket = Arc::clone(&outer.socket);
            for Removed {
                source: gone,
                value,
                why,
            } in table.insert(source, outer, now)
            {
                counters.removed += 1;
                drop(value); // closes the outer socket and ends its task
                let why = match why {
                    Removal::Idle => "idle",
                    Removal::LeastRecentlyUsed => "least recently used",
                    Removal::Replaced => "replaced",
                };
                tracing::debug!(source = %gone, why, "outer socket closed");
            }
            tracing::debug!(%source, mappings = table.len(), "new mosh-client socket");
            socket
        }
    };
    match socket.send_to(framed, config.moshd).await {
        Ok(_) => counters.relayed += 1,
        Err(e) => {
            counters.send_failed += 1;
            tracing::debug!(%source, error = %e, "send to moshd failed");
        }
    }
}

/// Opens an outer socket for mosh-client `owner` and starts carrying replies.
fn open_outer(
    moshd: SocketAddr,
    inner: Arc<UdpSocket>,
    seen: Arc<Seen>,
    owner: SocketAddr,
) -> std::io::Result<Outer> {
    let std_socket = crate::outer::open(moshd)?;
    let ecn = EcnSocket::new(&std_socket, moshd.is_ipv6())?;
    let socket = Arc::new(UdpSocket::from_std(std_socket)?);
    tracing::debug!(%owner, local = ?socket.local_addr().ok(), "outer socket opened");
    let replies = tokio::spawn(to_mosh_client(Arc::clone(&socket), ecn, inner, seen, moshd, owner));
    Ok(Outer {
        socket,
        replies: replies.abort_handle(),
    })
}

/// Carries moshd's datagrams on `outer` back to mosh-client's `owner` socket,
/// with a CE mark the outer path set, so mosh-client sees the congestion.
async fn to_mosh_client(
    outer: Arc<UdpSocket>,
    ecn: EcnSocket,
    inner: Arc<UdpSocket>,
    seen: Arc<Seen>,
    moshd: SocketAddr,
    owner: SocketAddr,
) {
    const BURST: usize = 4;
    let mut bufs = vec![vec![0u8; HEADER_LEN + MAX_DATAGRAM]; BURST];
    let mut got = [Received { len: 0, from: owner, ce: false }; BURST];
    loop {
        if let Err(e) = outer.readable().await {
            tracing::debug!(%owner, error = %e, "outer socket not readable");
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        }
        let received = outer.try_io(tokio::io::Interest::READABLE, || ecn.recv_batch(&*outer, &mut bufs, &mut got));
        match received {
            Ok(n) => {
                for (buf, meta) in bufs.iter().zip(&got[..n]) {
                    // The socket is not connected: only moshd's datagrams count.
                    if !same_peer(meta.from, moshd) {
                        tracing::debug!(from = %meta.from, "dropped a datagram not from moshd");
                        continue;
                    }
                    seen.heard.store(true, Ordering::Relaxed);
                    if Notice::decode(&buf[..meta.len]) == Some(Notice::UnknownSession) {
                        // Said once; moshd repeats it for every datagram.
                        if !seen.unknown.swap(true, Ordering::Relaxed) {
                            tell_user(unknown_session_message());
                        }
                        continue;
                    }
                    if let Err(e) = udp_ecn::send_now(&*inner, &buf[..meta.len], Some(owner), meta.ce, false) {
                        tracing::debug!(%owner, error = %e, "send to mosh-client failed");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                // ECONNREFUSED when moshd's port is closed, reported once per ICMP.
                tracing::debug!(%owner, error = %e, "receive from moshd failed");
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosh_mux_proto::{classify, Datagram, MAGIC_V1};

    #[test]
    fn replies_only_from_moshd() {
        let moshd: SocketAddr = "203.0.113.10:60001".parse().unwrap();
        assert!(same_peer(moshd, moshd));
        assert!(same_peer("[::ffff:203.0.113.10]:60001".parse().unwrap(), moshd));
        assert!(!same_peer("203.0.113.10:60002".parse().unwrap(), moshd));
        assert!(!same_peer("203.0.113.11:60001".parse().unwrap(), moshd));
    }

    #[test]
    fn only_loopback_sources() {
        assert!(accept_inner_source("127.0.0.1:5".parse().unwrap()));
        assert!(accept_inner_source("127.1.2.3:5".parse().unwrap()));
        assert!(accept_inner_source("[::1]:5".parse().unwrap()));
        assert!(!accept_inner_source("192.0.2.1:5".parse().unwrap()));
        assert!(!accept_inner_source("[2001:db8::1]:5".parse().unwrap()));
    }

    #[test]
    fn buffer_frames_what_is_received_behind_the_header() {
        let sid = Sid([1, 2, 3, 4, 5, 6, 7, 8]);
        let mut buf = framing_buffer(sid);
        assert_eq!(buf[0], MAGIC_V1);
        let payload = [0x11u8; 40];
        buf[HEADER_LEN..HEADER_LEN + 40].copy_from_slice(&payload);
        assert_eq!(
            classify(&buf[..HEADER_LEN + 40]),
            Ok(Datagram::Framed {
                sid,
                payload: &payload
            })
        );
    }

    /// Two mosh-client sockets, one fake moshd that echoes without the
    /// header: each source gets its own outer port, and replies come back.
    async fn relays_both_ways(moshd: UdpSocket) {
        let config = RelayConfig {
            mosh_client: PathBuf::new(),
            options: vec![],
            moshd: moshd.local_addr().unwrap(),
            sid: Sid([9; 8]),
        };
        let inner = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let inner_addr = inner.local_addr().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut table = MappingTable::default();
        let mut counters = Counters::default();
        let mut outer_ports = vec![];
        for (client, byte) in [(&a, 1u8), (&b, 2), (&a, 3)] {
            client.send_to(&[byte; 30], inner_addr).await.unwrap();
            let mut buf = framing_buffer(config.sid);
            let (len, source) = inner.recv_from(&mut buf[HEADER_LEN..]).await.unwrap();
            let framed = buf[..HEADER_LEN + len].to_vec();
            to_moshd(&config, &inner, &Arc::new(Seen::default()), &mut table, &mut counters, source, &framed).await;
            let mut got = [0u8; 100];
            let (n, from) = moshd.recv_from(&mut got).await.unwrap();
            assert_eq!(&got[..n], &framed[..]);
            outer_ports.push(from.port());
            moshd.send_to(&got[HEADER_LEN..n], from).await.unwrap();
            let (n, reply_from) = client.recv_from(&mut got).await.unwrap();
            assert_eq!((&got[..n], reply_from), (&[byte; 30][..], inner_addr));
        }
        assert_ne!(outer_ports[0], outer_ports[1]);
        assert_eq!(outer_ports[0], outer_ports[2]);
        assert_eq!(table.len(), 2);
        assert_eq!(counters.relayed, 3);
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn relays_both_ways_to_a_v4_moshd() {
        block_on(async { relays_both_ways(UdpSocket::bind("127.0.0.1:0").await.unwrap()).await });
    }

    #[test]
    fn relays_both_ways_to_a_v6_moshd() {
        block_on(async {
            // Skipped where the host has no IPv6 loopback.
            if let Ok(moshd) = UdpSocket::bind("[::1]:0").await {
                relays_both_ways(moshd).await;
            }
        });
    }

    #[test]
    fn foreign_sources_make_no_mapping() {
        block_on(async {
            let moshd = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let config = RelayConfig {
                mosh_client: PathBuf::new(),
                options: vec![],
                moshd: moshd.local_addr().unwrap(),
                sid: Sid([9; 8]),
            };
            let inner = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let mut table = MappingTable::default();
            let mut counters = Counters::default();
            let source = "192.0.2.1:4000".parse().unwrap();
            to_moshd(&config, &inner, &Arc::new(Seen::default()), &mut table, &mut counters, source, &[0; 40]).await;
            assert!(table.is_empty());
            assert_eq!((counters.foreign_dropped, counters.relayed), (1, 0));
        });
    }
}
