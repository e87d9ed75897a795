//! Mux mode: stock mosh-client on a loopback socket, its datagrams to moshd.
//!
//! A thin shell around `MappingTable`. mosh-client talks to the inner
//! socket on 127.0.0.1; each of its source addresses gets an outer socket
//! (see `outer`), its datagrams go out behind the 9-byte header (magic, sid),
//! and moshd's replies, plain mosh datagrams, go back unchanged to the
//! mosh-client socket that owns the outer socket. Send errors (ICMP
//! refusals, no route while roaming, full buffers) are counted and logged at
//! debug level, never fatal: mosh retransmits by itself.
//!
//! The data path is paid per datagram, so it does little more than a
//! minimal forwarder: one thread of its own waits in one level-triggered
//! epoll set for the inner socket and every outer socket; for each readable
//! socket it makes one receive (`recvfrom` on the inner socket, where
//! mosh-client sends one datagram at a time; a `recvmmsg` batch, with each
//! datagram's ECN bits, on an outer socket, where moshd may send a burst)
//! and sends each datagram straight on, without waiting (`MSG_DONTWAIT`: UDP
//! never waits for buffer space). What one receive leaves, the next
//! `epoll_wait` reports at once, so no receive is made just to hear EAGAIN.
//! Per datagram: one `epoll_wait`, one receive, one send; no readiness
//! bookkeeping, no hand-off between threads or tasks, and no timer but the
//! one-shot hint, a timerfd in the same set that is dropped as soon as moshd
//! answers. Sockets are watched for readability only (a writable edge after
//! sends would be a wake-up of its own). The main thread, a current-thread
//! tokio runtime, only waits for the child and signals (the data thread
//! blocks them), so a datagram never wakes it.
//!
//! Any local process can send to the inner port; it can only make the relay
//! frame junk that moshd's mosh-server fails to authenticate, or push the
//! real mosh-client's mapping out of the table (the next datagram makes a new
//! one). Datagrams from non-loopback sources are dropped.

use crate::child;
use crate::fail;
use crate::mapping::{MappingTable, Removal, Removed};
use crate::stock_argv::connect_argv;
use anyhow::Context as _;
use mosh_mux_proto::udp_ecn::{self, Received};
use mosh_mux_proto::Notice;
use mosh_mux_proto::{encode_header, Sid, HEADER_LEN};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// The largest mosh datagram the relay reads (mosh's own receive buffer).
pub const MAX_DATAGRAM: usize = 2048;
/// How long the data thread pauses after an error, so that an error that
/// repeats can never spin the CPU.
const ERROR_PAUSE: Duration = Duration::from_millis(5);
/// Datagrams one receive on an outer socket may return: moshd's bursts
/// (a screen redraw in several datagrams) are short.
const BURST: usize = 4;
/// Stack for the data thread: its buffers are on the heap.
const DATA_THREAD_STACK: usize = 256 * 1024;
/// Epoll tokens: the inner socket, the hint timer; outer sockets count up
/// from FIRST_OUTER and are never reused.
const INNER: u64 = 0;
const HINT: u64 = 1;
const FIRST_OUTER: u64 = 2;

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
    // The main thread's runtime: child and signals only, so no timers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
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

/// What the data path has done and seen: counters for the debug log, and
/// what the main thread needs for the user's message at the end.
#[derive(Debug, Default)]
struct Stats {
    relayed: AtomicU64,
    returned: AtomicU64,
    opened: AtomicU64,
    foreign_dropped: AtomicU64,
    open_failed: AtomicU64,
    send_failed: AtomicU64,
    recv_failed: AtomicU64,
    removed: AtomicU64,
    /// Any datagram from moshd at all.
    heard: AtomicBool,
    /// moshd said it does not know this session.
    unknown: AtomicBool,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
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
/// of its own, at once (mosh-client redraws over it in time). Written from
/// a thread of its own (there are at most two such messages a session), so
/// a terminal that stops taking output never stalls the data path.
fn tell_user(message: String) {
    let _ = std::thread::Builder::new().name("hint".into()).spawn(move || {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\n{message}\r\n");
        let _ = err.flush();
    });
}

async fn relay(config: RelayConfig) -> anyhow::Result<i32> {
    // Handlers first: a signal that comes while the child starts is kept.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;

    let inner = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .context("cannot bind the loopback socket for mosh-client")?;
    udp_ecn::mark(&inner, false, udp_ecn::ECT0)
        .context("cannot mark the loopback socket ECT(0)")?;
    let inner_port = inner.local_addr().context("loopback socket")?.port();

    let argv = connect_argv(&config.options, "127.0.0.1", inner_port);
    let mut child = child::spawn(&config.mosh_client, &argv)
        .map_err(|e| fail::cannot_run(&config.mosh_client, &e))?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    tracing::info!(inner_port, moshd = %config.moshd, sid = %config.sid, ?pid, "relay started");

    let mut path = DataPath::start(config.moshd, config.sid, inner)
        .context("cannot start the relay's data path")?;

    let status = loop {
        tokio::select! {
            biased;
            status = child.wait() => break status.context("waiting for mosh-client")?,
            _ = sigterm.recv() => forward(pid, Signal::SIGTERM),
            _ = sighup.recv() => forward(pid, Signal::SIGHUP),
            _ = sigint.recv() => forward(pid, Signal::SIGINT),
        }
    };
    // The process exits next: no need to wait for the data thread.
    drop(path.stop());
    let stats = &path.shared.stats;
    tracing::debug!(?stats, %status, "mosh-client exited");
    // Said again after mosh-client has given the terminal back.
    if stats.unknown.load(Ordering::Relaxed) {
        eprintln!("{}", unknown_session_message());
    } else if no_answer(stats) {
        eprintln!("{}", no_answer_message(config.moshd));
    }
    Ok(child::exit_code(status))
}

/// Something went to moshd, and nothing ever came back.
fn no_answer(stats: &Stats) -> bool {
    stats.relayed.load(Ordering::Relaxed) > 0 && !stats.heard.load(Ordering::Relaxed)
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

/// What the data thread shares with the main thread.
struct Shared {
    moshd: SocketAddr,
    /// Non-blocking; the data thread receives and sends on it.
    inner: UdpSocket,
    stats: Stats,
    /// The relay is ending: the data thread returns when it next wakes.
    stopping: AtomicBool,
}

/// The running data path: its thread.
struct DataPath {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl DataPath {
    /// Starts the data thread on `inner`, framing for `sid`; the hint timer
    /// starts now.
    fn start(moshd: SocketAddr, sid: Sid, inner: UdpSocket) -> io::Result<DataPath> {
        inner.set_nonblocking(true)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(&inner, EpollEvent::new(EpollFlags::EPOLLIN, INNER))?;
        let hint = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        hint.set(
            Expiration::OneShot(TimeSpec::from_duration(NO_ANSWER_HINT_AFTER)),
            TimerSetTimeFlags::empty(),
        )?;
        epoll.add(&hint, EpollEvent::new(EpollFlags::EPOLLIN, HINT))?;
        let shared = Arc::new(Shared {
            moshd,
            inner,
            stats: Stats::default(),
            stopping: AtomicBool::new(false),
        });
        let mut carrier = Carrier {
            shared: Arc::clone(&shared),
            epoll,
            hint: Some(hint),
            table: MappingTable::default(),
            next_token: FIRST_OUTER,
            framed: Box::new(framing_buffer(sid)),
            replies: Box::new([[0u8; HEADER_LEN + MAX_DATAGRAM]; BURST]),
        };
        let thread = std::thread::Builder::new()
            .name("relay-data".to_owned())
            .stack_size(DATA_THREAD_STACK)
            .spawn(move || {
                // Signals go to the main thread, which handles them.
                if let Err(e) = SigSet::all().thread_block() {
                    tracing::debug!(error = %e, "data thread cannot block signals");
                }
                carrier.run();
            })?;
        Ok(DataPath {
            shared,
            thread: Some(thread),
        })
    }

    /// Ends the data path: the thread returns, closing every socket.
    /// Returns the thread, to wait for if wanted.
    fn stop(&mut self) -> Option<JoinHandle<()>> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Shutting the inner socket down for reading makes it readable,
        // which wakes the thread.
        let fd = self.shared.inner.as_raw_fd();
        if let Err(e) = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Read) {
            // An unconnected socket reports ENOTCONN, and is shut down all the same.
            tracing::trace!(error = %e, "shutdown of the loopback socket");
        }
        self.thread.take()
    }
}

/// An outer socket, for one mosh-client socket. Dropping it closes the
/// socket, which leaves the epoll set with it.
struct Outer {
    socket: UdpSocket,
    owner: SocketAddr,
    token: u64,
}

/// The data thread's own state.
struct Carrier {
    shared: Arc<Shared>,
    epoll: Epoll,
    /// The one-shot hint timer, until it fires or moshd answers.
    hint: Option<TimerFd>,
    table: MappingTable<Outer>,
    next_token: u64,
    /// The receive buffer for the inner socket, with the header in front.
    framed: Box<[u8; HEADER_LEN + MAX_DATAGRAM]>,
    /// Receive buffers for the outer sockets.
    replies: Box<[[u8; HEADER_LEN + MAX_DATAGRAM]; BURST]>,
}

impl Carrier {
    /// Relays until the relay stops.
    fn run(&mut self) {
        let mut events = [EpollEvent::empty(); 2 + crate::mapping::MAX_MAPPINGS];
        loop {
            let ready = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "epoll_wait failed");
                    std::thread::sleep(ERROR_PAUSE);
                    continue;
                }
            };
            if self.shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            for event in &events[..ready] {
                match event.data() {
                    INNER => self.inner_readable(),
                    HINT => self.hint_due(),
                    token => self.outer_readable(token),
                }
            }
        }
    }

    /// One datagram from mosh-client, framed, to moshd. One `recvfrom`: the
    /// cheapest receive, for the one datagram mosh-client sends at a time;
    /// if more are queued, the next epoll_wait says so at once.
    fn inner_readable(&mut self) {
        let (len, source) = match self.shared.inner.recv_from(&mut self.framed[HEADER_LEN..]) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => return receive_failed(&self.shared.stats, "inner", &e),
        };
        to_moshd(
            &self.shared,
            &self.epoll,
            &mut self.table,
            &mut self.next_token,
            source,
            &self.framed[..HEADER_LEN + len],
        );
    }

    /// One receive on the outer socket `token`: moshd's datagrams to the
    /// mosh-client socket it belongs to.
    fn outer_readable(&mut self, token: u64) {
        // Gone if a datagram earlier in this wake pushed it out of the table.
        let Some(outer) = self.table.values().find(|o| o.token == token) else {
            return;
        };
        let mut got = [Received {
            len: 0,
            from: self.shared.moshd,
            ce: false,
        }; BURST];
        let mut slices = self.replies.each_mut().map(|b| IoSliceMut::new(&mut b[..]));
        let n = match udp_ecn::recv_ecn_batch(&outer.socket, &mut slices, &mut got) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // ECONNREFUSED would come here, once per ICMP.
            Err(e) => return receive_failed(&self.shared.stats, "outer", &e),
        };
        let owner = outer.owner;
        for (buf, meta) in self.replies.iter().zip(&got[..n]) {
            if to_mosh_client(&self.shared, owner, &buf[..meta.len], meta) {
                // moshd answered: the hint will not be needed.
                self.hint = None;
            }
        }
    }

    /// The hint timer fired: if nothing ever came back, say so.
    fn hint_due(&mut self) {
        // Dropping the timer closes it, and it leaves the epoll set.
        self.hint = None;
        if no_answer(&self.shared.stats) {
            tell_user(no_answer_message(self.shared.moshd));
        }
    }
}

fn receive_failed(stats: &Stats, socket: &'static str, e: &io::Error) {
    count(&stats.recv_failed);
    tracing::debug!(socket, error = %e, "receive failed");
    std::thread::sleep(ERROR_PAUSE);
}

/// Sends one framed datagram from mosh-client `source` to moshd, on the
/// outer socket of `source`, which is opened (and added to `epoll`) if new.
fn to_moshd(
    shared: &Shared,
    epoll: &Epoll,
    table: &mut MappingTable<Outer>,
    next_token: &mut u64,
    source: SocketAddr,
    framed: &[u8],
) {
    let stats = &shared.stats;
    if !accept_inner_source(source) {
        count(&stats.foreign_dropped);
        tracing::debug!(%source, "dropped datagram from a non-loopback source");
        return;
    }
    let moshd = shared.moshd;
    let v6 = moshd.is_ipv6();
    let now = Instant::now();
    let sent = match table.get(source, now) {
        Some(outer) => udp_ecn::send_now(&outer.socket, framed, Some(moshd), false, v6),
        None => {
            let outer = match open_outer(moshd, epoll, *next_token, source) {
                Ok(outer) => outer,
                Err(e) => {
                    count(&stats.open_failed);
                    tracing::debug!(%source, error = %e, "cannot open outer socket");
                    return;
                }
            };
            *next_token += 1;
            count(&stats.opened);
            let sent = udp_ecn::send_now(&outer.socket, framed, Some(moshd), false, v6);
            for Removed {
                source: gone,
                value,
                why,
            } in table.insert(source, outer, now)
            {
                count(&stats.removed);
                drop(value); // closes the outer socket
                let why = match why {
                    Removal::Idle => "idle",
                    Removal::LeastRecentlyUsed => "least recently used",
                    Removal::Replaced => "replaced",
                };
                tracing::debug!(source = %gone, why, "outer socket closed");
            }
            tracing::debug!(%source, mappings = table.len(), "new mosh-client socket");
            sent
        }
    };
    match sent {
        Ok(_) => count(&stats.relayed),
        Err(e) => {
            count(&stats.send_failed);
            tracing::debug!(%source, error = %e, "send to moshd failed");
        }
    }
}

/// Opens an outer socket for mosh-client `owner`, watched in `epoll` as `token`.
fn open_outer(
    moshd: SocketAddr,
    epoll: &Epoll,
    token: u64,
    owner: SocketAddr,
) -> io::Result<Outer> {
    let socket = crate::outer::open(moshd)?;
    udp_ecn::set_up_lean(&socket, moshd.is_ipv6())?;
    epoll.add(&socket, EpollEvent::new(EpollFlags::EPOLLIN, token))?;
    tracing::debug!(%owner, local = ?socket.local_addr().ok(), "outer socket opened");
    Ok(Outer {
        socket,
        owner,
        token,
    })
}

/// Carries one datagram that came in on `owner`'s outer socket back to
/// mosh-client, with a CE mark the outer path set, so mosh-client sees the
/// congestion. True if this is the first datagram ever heard from moshd.
fn to_mosh_client(shared: &Shared, owner: SocketAddr, datagram: &[u8], meta: &Received) -> bool {
    let stats = &shared.stats;
    // The socket is not connected: only moshd's datagrams count.
    if !same_peer(meta.from, shared.moshd) {
        tracing::debug!(from = %meta.from, "dropped a datagram not from moshd");
        return false;
    }
    let first = !stats.heard.swap(true, Ordering::Relaxed);
    if Notice::decode(datagram) == Some(Notice::UnknownSession) {
        // Said once; moshd repeats it for every datagram.
        if !stats.unknown.swap(true, Ordering::Relaxed) {
            tell_user(unknown_session_message().to_owned());
        }
        return first;
    }
    match udp_ecn::send_now(&shared.inner, datagram, Some(owner), meta.ce, false) {
        Ok(_) => count(&stats.returned),
        Err(e) => {
            count(&stats.send_failed);
            tracing::debug!(%owner, error = %e, "send to mosh-client failed");
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosh_mux_proto::{classify, Datagram, MAGIC_V1};

    #[test]
    fn replies_only_from_moshd() {
        let moshd: SocketAddr = "203.0.113.10:60001".parse().unwrap();
        assert!(same_peer(moshd, moshd));
        assert!(same_peer(
            "[::ffff:203.0.113.10]:60001".parse().unwrap(),
            moshd
        ));
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

    const SID: Sid = Sid([9; 8]);
    /// How long a datagram that must arrive may take (a loaded CI machine).
    const ARRIVAL: Duration = Duration::from_secs(3);

    /// A running data path to `moshd`, and its inner socket's address.
    /// Stopped (and waited for) when dropped.
    struct Running {
        path: DataPath,
        inner_addr: SocketAddr,
    }

    impl Running {
        fn start(moshd: SocketAddr) -> Running {
            let inner = UdpSocket::bind("127.0.0.1:0").unwrap();
            let inner_addr = inner.local_addr().unwrap();
            let path = DataPath::start(moshd, SID, inner).unwrap();
            Running { path, inner_addr }
        }

        fn stats(&self) -> &Stats {
            &self.path.shared.stats
        }

        fn get(&self, counter: impl Fn(&Stats) -> &AtomicU64) -> u64 {
            counter(self.stats()).load(Ordering::Relaxed)
        }

        /// The counter's value once it reaches `want` (a thread counts a
        /// datagram just after sending it on), or what it is after ARRIVAL.
        fn counted(&self, counter: impl Fn(&Stats) -> &AtomicU64, want: u64) -> u64 {
            let deadline = Instant::now() + ARRIVAL;
            loop {
                let got = self.get(&counter);
                if got >= want || Instant::now() > deadline {
                    return got;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(thread) = self.path.stop() {
                thread.join().unwrap();
            }
        }
    }

    /// A socket that waits at most ARRIVAL for a datagram.
    fn socket(addr: &str) -> UdpSocket {
        let s = UdpSocket::bind(addr).unwrap();
        s.set_read_timeout(Some(ARRIVAL)).unwrap();
        s
    }

    fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 4096];
        let (n, from) = socket.recv_from(&mut buf).expect("a datagram in time");
        (buf[..n].to_vec(), from)
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut header = [0u8; HEADER_LEN];
        encode_header(SID, &mut header);
        [&header[..], payload].concat()
    }

    /// Two mosh-client sockets, one fake moshd that echoes without the
    /// header: each source gets its own outer port, and replies come back.
    fn relays_both_ways(moshd: UdpSocket) {
        let relay = Running::start(moshd.local_addr().unwrap());
        let (a, b) = (socket("127.0.0.1:0"), socket("127.0.0.1:0"));
        let mut outer_ports = vec![];
        for (client, byte) in [(&a, 1u8), (&b, 2), (&a, 3)] {
            client.send_to(&[byte; 30], relay.inner_addr).unwrap();
            let (got, from) = recv(&moshd);
            assert_eq!(got, framed(&[byte; 30]));
            outer_ports.push(from.port());
            moshd.send_to(&got[HEADER_LEN..], from).unwrap();
            assert_eq!(recv(client), (vec![byte; 30], relay.inner_addr));
        }
        assert_ne!(outer_ports[0], outer_ports[1]);
        assert_eq!(outer_ports[0], outer_ports[2]);
        assert_eq!(relay.counted(|s| &s.opened, 2), 2);
        assert_eq!(relay.counted(|s| &s.relayed, 3), 3);
        assert_eq!(relay.counted(|s| &s.returned, 3), 3);
        assert!(relay.stats().heard.load(Ordering::Relaxed));
    }

    #[test]
    fn relays_both_ways_to_a_v4_moshd() {
        relays_both_ways(socket("127.0.0.1:0"));
    }

    #[test]
    fn relays_both_ways_to_a_v6_moshd() {
        // Skipped where the host has no IPv6 loopback.
        if let Ok(moshd) = UdpSocket::bind("[::1]:0") {
            moshd.set_read_timeout(Some(ARRIVAL)).unwrap();
            relays_both_ways(moshd);
        }
    }

    /// Bursts both ways, longer than one receive on an outer socket takes,
    /// all go out in order, round after round.
    #[test]
    fn bursts_are_relayed_whole_and_in_order() {
        let moshd = socket("127.0.0.1:0");
        let relay = Running::start(moshd.local_addr().unwrap());
        let client = socket("127.0.0.1:0");
        client.send_to(&[0xee; 20], relay.inner_addr).unwrap();
        let (_, outer) = recv(&moshd);
        let burst = 4 * BURST + 3;
        for round in 0..3 {
            for i in 0..burst {
                client.send_to(&[i as u8; 20], relay.inner_addr).unwrap();
                moshd.send_to(&[i as u8; 10], outer).unwrap();
            }
            for i in 0..burst {
                assert_eq!(
                    recv(&moshd),
                    (framed(&[i as u8; 20]), outer),
                    "round {round}"
                );
                assert_eq!(recv(&client), (vec![i as u8; 10], relay.inner_addr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            relay.counted(|s| &s.relayed, 1 + 3 * burst as u64),
            1 + 3 * burst as u64
        );
        assert_eq!(
            relay.counted(|s| &s.returned, 3 * burst as u64),
            3 * burst as u64
        );
    }

    /// A CE mark on moshd's datagram reaches mosh-client; the next, unmarked
    /// one arrives unmarked.
    #[test]
    fn ce_marks_reach_mosh_client() {
        let moshd = socket("127.0.0.1:0");
        let relay = Running::start(moshd.local_addr().unwrap());
        let client = socket("127.0.0.1:0");
        udp_ecn::set_up_lean(&client, false).unwrap();
        client.set_nonblocking(false).unwrap();
        client.send_to(&[1; 30], relay.inner_addr).unwrap();
        let (_, outer) = recv(&moshd);
        udp_ecn::mark(&moshd, false, udp_ecn::CE).unwrap();
        moshd.send_to(b"congested", outer).unwrap();
        udp_ecn::mark(&moshd, false, udp_ecn::ECT0).unwrap();
        moshd.send_to(b"plain", outer).unwrap();
        let mut marks = vec![];
        let mut bufs = [[0u8; 64]; 2];
        let mut out = [Received {
            len: 0,
            from: relay.inner_addr,
            ce: false,
        }; 2];
        while marks.len() < 2 {
            let mut slices = bufs.each_mut().map(|b| IoSliceMut::new(&mut b[..]));
            let n =
                udp_ecn::recv_ecn_batch(&client, &mut slices, &mut out).expect("datagrams in time");
            for (buf, meta) in bufs.iter().zip(&out[..n]) {
                marks.push((buf[..meta.len].to_vec(), meta.ce, meta.from));
            }
        }
        assert_eq!(
            marks,
            vec![
                (b"congested".to_vec(), true, relay.inner_addr),
                (b"plain".to_vec(), false, relay.inner_addr)
            ]
        );
    }

    /// Only moshd's datagrams on an outer socket go to mosh-client, and
    /// moshd's unknown-session notice is taken note of, not passed on.
    #[test]
    fn outer_sockets_pass_on_moshd_datagrams_only() {
        let moshd = socket("127.0.0.1:0");
        let stranger = socket("127.0.0.1:0");
        let relay = Running::start(moshd.local_addr().unwrap());
        let client = socket("127.0.0.1:0");
        client.send_to(&[1; 30], relay.inner_addr).unwrap();
        let (_, outer) = recv(&moshd);
        stranger.send_to(b"not from moshd", outer).unwrap();
        moshd
            .send_to(&Notice::UnknownSession.encode(), outer)
            .unwrap();
        moshd.send_to(b"from moshd", outer).unwrap();
        assert_eq!(recv(&client), (b"from moshd".to_vec(), relay.inner_addr));
        assert!(relay.stats().unknown.load(Ordering::Relaxed));
        assert_eq!(relay.counted(|s| &s.returned, 1), 1);
    }

    /// A mapping pushed out of the table takes its outer socket with it; the
    /// source's next datagram gets a new one, which works.
    #[test]
    fn evicted_mappings_close_their_outer_socket() {
        let moshd = socket("127.0.0.1:0");
        let relay = Running::start(moshd.local_addr().unwrap());
        let clients: Vec<UdpSocket> = (0..=crate::mapping::MAX_MAPPINGS)
            .map(|_| socket("127.0.0.1:0"))
            .collect();
        let mut first_outer = None;
        for client in &clients {
            client.send_to(b"hello", relay.inner_addr).unwrap();
            let (_, outer) = recv(&moshd);
            first_outer.get_or_insert(outer);
        }
        // The first client's mapping was the least recently used.
        assert_eq!(relay.counted(|s| &s.removed, 1), 1);
        let first_outer = first_outer.unwrap();
        // Its socket is closed: the port can be bound again.
        let deadline = Instant::now() + ARRIVAL;
        while UdpSocket::bind(("0.0.0.0", first_outer.port())).is_err() {
            assert!(
                Instant::now() < deadline,
                "the evicted outer socket stays open"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        clients[0].send_to(b"again", relay.inner_addr).unwrap();
        let (_, outer) = recv(&moshd);
        assert_ne!(outer.port(), first_outer.port());
        moshd.send_to(b"reply", outer).unwrap();
        assert_eq!(recv(&clients[0]), (b"reply".to_vec(), relay.inner_addr));
    }

    #[test]
    fn foreign_sources_make_no_mapping() {
        let moshd = socket("127.0.0.1:0");
        let relay = Running::start(moshd.local_addr().unwrap());
        let mut table = MappingTable::default();
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
        let source = "192.0.2.1:4000".parse().unwrap();
        let mut token = FIRST_OUTER;
        to_moshd(
            &relay.path.shared,
            &epoll,
            &mut table,
            &mut token,
            source,
            &[0; 40],
        );
        assert!(table.is_empty());
        assert_eq!(
            (relay.get(|s| &s.foreign_dropped), relay.get(|s| &s.relayed)),
            (1, 0)
        );
    }

    #[test]
    fn stopping_ends_the_data_thread_and_closes_its_sockets() {
        let moshd = socket("127.0.0.1:0");
        let mut relay = Running::start(moshd.local_addr().unwrap());
        let client = socket("127.0.0.1:0");
        client.send_to(b"hello", relay.inner_addr).unwrap();
        let (_, outer) = recv(&moshd);
        let thread = relay.path.stop().unwrap();
        let deadline = Instant::now() + ARRIVAL;
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "the data thread did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        thread.join().unwrap();
        // The outer socket went with the table.
        while UdpSocket::bind(("0.0.0.0", outer.port())).is_err() {
            assert!(Instant::now() < deadline, "the outer socket stays open");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
