//! The tokio shell around the router: public UDP sockets, one loopback
//! candidate socket per (client address, session), the control socket, pid
//! watchers, persistence and signals. Single-threaded: the router lives in a
//! RefCell and is borrowed only between awaits, never across one. The
//! candidate sockets are not tokio's: one task reads them all through one
//! epoll set (`inner_poll`), with no task or buffer of their own; likewise
//! one task watches every mosh-server's pidfd through another set.

use crate::control_server;
use crate::epoll_set::{self, EpollSet};
use crate::inner_poll::{self, RecvBatch};
use crate::limits::Limits;
use crate::pidwatch;
use crate::registration::Facts;
use crate::router::{ClientRoute, Event, Router};
use crate::session::CandKey;
use crate::state_file;
use anyhow::Context;
use mosh_mux_proto::control::{Registration, Response, StatusReport};
use mosh_mux_proto::udp_ecn::{self, EcnSocket, Received, BATCH};
use mosh_mux_proto::Sid;
use nix::sys::epoll::EpollEvent;
use socket2::{Domain, Protocol, Socket, Type};
use std::cell::Cell;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::task::{spawn_local, LocalSet};
use tracing::{debug, info, warn};

/// Receive buffer: mosh datagrams stay under 1280 bytes (plus our header);
/// anything longer than this is truncated (and from a client then refused
/// as not mosh). The candidate sockets share one `RecvBatch` of these.
const DATAGRAM_BUF: usize = 4096;
/// Exited mosh-servers taken from the pidfd set per round.
const EXIT_EVENTS: usize = 64;
/// Socket buffers for the public sockets, to ride out bursts and floods.
const PUBLIC_SOCKET_BUF: usize = 4 << 20;
/// How often idle candidates are looked for.
const EXPIRY_PERIOD: Duration = Duration::from_secs(10);
/// State-file writes are coalesced over this long.
const PERSIST_DELAY: Duration = Duration::from_millis(100);

/// Re-reads the configuration on SIGHUP and returns the new limits; an
/// error leaves the running limits as they are.
pub type Reload = Box<dyn Fn() -> anyhow::Result<Limits>>;

pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub control_socket: PathBuf,
    pub state_file: PathBuf,
    /// The port to tell clients (when a NAT or port forward sits in front).
    pub advertise_port: Option<u16>,
    pub limits: Limits,
    /// Serve as this user once the sockets are bound.
    pub user: Option<String>,
    /// Called on SIGHUP (none: SIGHUP only logs that there is nothing to reload).
    pub reload: Option<Reload>,
    /// Called once moshd serves (e.g. to tell systemd it is ready).
    pub on_ready: Option<Box<dyn FnOnce()>>,
}

/// A public socket, with what reads its datagrams' ECN marks.
struct Listener {
    /// Registered with tokio for reading only: sends never wait (a full
    /// buffer drops the datagram), so write readiness would only add wake-ups.
    socket: AsyncFd<std::net::UdpSocket>,
    ecn: EcnSocket,
    v6: bool,
}

pub struct Daemon {
    router: RefCell<Router>,
    listeners: Vec<Rc<Listener>>,
    /// CE marks carried from clients' datagrams on to mosh-server.
    ce_to_server: Cell<u64>,
    listen_names: Vec<String>,
    advertise_port: u16,
    /// The candidate sockets (non-blocking, connected to mosh-server), each
    /// also in `inner`, the epoll set `inner_loop` reads them through.
    candidates: RefCell<HashMap<CandKey, std::net::UdpSocket>>,
    inner: EpollSet,
    /// Each session's mosh-server pidfd (and pid, for the log), each also in
    /// `exits`, the epoll set `exit_loop` watches.
    watchers: RefCell<HashMap<Sid, (OwnedFd, u32)>>,
    exits: EpollSet,
    dirty: Notify,
    state_file: PathBuf,
}

/// Threads for the blocking work of registrations (see `Daemon::register`).
const BLOCKING_THREADS: usize = 2;

/// Runs moshd until SIGTERM or SIGINT.
pub fn run(config: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Registration lookups only (≤ ~1 ms each): a few threads serve
        // thousands a second, and tokio's default of 512, each with its
        // stack and malloc arena, cost ~2 KB of RSS per session registered
        // in a burst (scripts/bench --full, the memory rows).
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("cannot start the runtime")?;
    LocalSet::new().block_on(&rt, serve(config))
}

fn bind_public(addr: SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // [::]:P and 0.0.0.0:P are two listeners, not one dual-stack one.
        socket.set_only_v6(true)?;
    }
    let _ = socket.set_recv_buffer_size(PUBLIC_SOCKET_BUF);
    let _ = socket.set_send_buffer_size(PUBLIC_SOCKET_BUF);
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.into())
}

/// Raises the soft descriptor limit to the hard one: each session holds a
/// pidfd and each active client address a socket, so the common default of
/// 1024 would cap moshd far below its session limit. Warns when even the
/// hard limit is too low for `max_sessions`.
fn raise_fd_limit(max_sessions: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    let mut limit = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => limit = hard,
            Err(e) => warn!("cannot raise the descriptor limit from {soft}: {e}"),
        }
    }
    if let Some(short) = crate::limits::fd_shortfall(max_sessions, limit) {
        warn!(
            "the descriptor limit is {limit}, but max_sessions {max_sessions} can need {} \
             (2 per session, a pidfd and a candidate socket, and {} for moshd itself): sessions \
             beyond about {} cannot get a candidate socket, and their clients' datagrams are \
             dropped; raise the hard limit (LimitNOFILE= in moshd's systemd unit) or lower \
             --max-sessions",
            short.needed,
            crate::limits::fd_reserve(),
            short.sessions_fit,
        );
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(!config.listen.is_empty(), "no --listen address");
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let socket = bind_public(*addr)?;
        let ecn = EcnSocket::new(&socket, addr.is_ipv6())
            .with_context(|| format!("cannot set up ECN on {addr}"))?;
        // SAFETY: the socket moves into the AsyncFd, which alone owns it
        // until drop, so the registered descriptor stays this socket's.
        let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .with_context(|| format!("cannot watch {addr}"))?;
        listeners.push(Rc::new(Listener { socket, ecn, v6: addr.is_ipv6() }));
    }
    let listen_names: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.socket.get_ref().local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let first_port = listeners
        .first()
        .and_then(|l| l.socket.get_ref().local_addr().ok())
        .map(|a| a.port())
        .unwrap_or(0);
    let control = control_server::bind(&config.control_socket)?;
    let inner = EpollSet::new("candidates").context("cannot create the candidate sockets' epoll set")?;
    let exits = EpollSet::new("pidfds").context("cannot create the pidfds' epoll set")?;
    // After the binds, so that a port in use is moshd's only line.
    raise_fd_limit(config.limits.max_sessions);
    if let Some(name) = &config.user {
        let (uid, gid) = crate::privileges::drop_to(name, &config.control_socket, &config.state_file)?;
        info!(user = %name, uid, gid, "dropped privileges");
    }
    let daemon = Rc::new(Daemon {
        router: RefCell::new(Router::new(Instant::now(), config.limits.clone())),
        listeners,
        ce_to_server: Cell::new(0),
        listen_names,
        advertise_port: config.advertise_port.unwrap_or(first_port),
        candidates: RefCell::new(HashMap::new()),
        inner,
        watchers: RefCell::new(HashMap::new()),
        exits,
        dirty: Notify::new(),
        state_file: config.state_file.clone(),
    });
    daemon.restore();
    for i in 0..daemon.listeners.len() {
        spawn_local(public_loop(daemon.clone(), i));
    }
    spawn_local(inner_loop(daemon.clone()));
    spawn_local(exit_loop(daemon.clone()));
    spawn_local(control_server::serve(daemon.clone(), control));
    spawn_local(expiry_loop(daemon.clone()));
    spawn_local(persist_loop(daemon.clone()));
    info!(
        listen = %daemon.listen_names.join(" "),
        control = %config.control_socket.display(),
        sessions = daemon.router.borrow().session_count(),
        "moshd ready"
    );

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    if let Some(ready) = config.on_ready {
        ready();
    }
    loop {
        tokio::select! {
            _ = term.recv() => {
                info!("SIGTERM: stopping, sessions kept in the state file");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                info!("SIGINT: stopping, sessions kept in the state file");
                break;
            }
            _ = hup.recv() => match &config.reload {
                None => info!("SIGHUP: no configuration file to reload"),
                Some(reload) => match reload() {
                    Ok(limits) => {
                        daemon.router.borrow_mut().set_limits(limits);
                        info!(sessions = daemon.router.borrow().session_count(), "SIGHUP: configuration reloaded; sessions kept");
                    }
                    Err(e) => warn!("SIGHUP: configuration not reloaded: {e:#}"),
                },
            },
        }
    }
    daemon.save();
    let _ = std::fs::remove_file(&config.control_socket);
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The mosh-server's pidfd, opened before anything is read about the pid:
/// the facts then describe the process it watches, not a later one that
/// reused the pid.
fn open_pid(reg: &Registration) -> Result<OwnedFd, String> {
    pidwatch::open(reg.pid).map_err(|_| format!("process {} is not running", reg.pid))
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

impl Daemon {
    /// Re-registers the sessions in the state file whose mosh-server still
    /// runs and still owns its port.
    fn restore(self: &Rc<Self>) {
        let records = match state_file::load(&self.state_file) {
            Ok(r) => r,
            Err(e) => {
                warn!("state file ignored: {e:#}");
                return;
            }
        };
        for rec in records {
            let sid = rec.registration.sid;
            let checked = open_pid(&rec.registration).map(|pidfd| {
                let facts = crate::facts::gather(rec.registration.port, rec.registration.pid);
                (pidfd, facts)
            });
            let admitted = checked.and_then(|(pidfd, facts)| {
                self.admit(rec.uid, &rec.user, &rec.registration, rec.since_unix, pidfd, &facts)
            });
            match admitted {
                Ok(()) => info!(%sid, uid = rec.uid, "session restored"),
                Err(reason) => info!(%sid, uid = rec.uid, %reason, "session not restored"),
            }
        }
        self.dirty.notify_one();
    }

    /// Handles a registration from a control connection of `uid`. What the
    /// kernel says of the port and pid (a netlink dump, /proc reads) and the
    /// user's name (NSS, which may ask the network) are read on a blocking
    /// thread: datagrams keep flowing meanwhile.
    pub async fn register(self: &Rc<Self>, uid: u32, reg: &Registration) -> Response {
        let (port, pid) = (reg.port, reg.pid);
        let checked = match open_pid(reg) {
            Ok(pidfd) => {
                let lookup = move || (crate::facts::gather(port, pid), user_name(uid));
                match tokio::task::spawn_blocking(lookup).await {
                    Ok((facts, user)) => Ok((pidfd, facts, user)),
                    Err(e) => Err(format!("cannot check the registration: {e}")),
                }
            }
            Err(why) => Err(why),
        };
        let admitted = checked.and_then(|(pidfd, facts, user)| self.admit(uid, &user, reg, unix_now(), pidfd, &facts));
        match admitted {
            Ok(()) => {
                self.dirty.notify_one();
                Response::Registered { port: self.advertise_port }
            }
            Err(reason) => {
                info!(sid = %reg.sid, uid, port = reg.port, pid = reg.pid, %reason, "registration refused");
                Response::Refused { reason }
            }
        }
    }

    /// Enters the session, given the pidfd of its mosh-server and the facts
    /// gathered after opening it.
    fn admit(
        self: &Rc<Self>,
        uid: u32,
        user: &str,
        reg: &Registration,
        since: u64,
        pidfd: OwnedFd,
        facts: &Facts,
    ) -> Result<(), String> {
        self.router
            .borrow_mut()
            .register(Instant::now(), since, uid, user, reg, facts)
            .map_err(|r| r.to_string())?;
        self.log_events();
        if let Err(e) = self.exits.add(&pidfd, sid_tag(reg.sid)) {
            // Without the watch the session would outlive its mosh-server.
            self.router.borrow_mut().end_session(&reg.sid);
            self.log_events();
            return Err(format!("cannot watch process {}: {e}", reg.pid));
        }
        self.watchers.borrow_mut().insert(reg.sid, (pidfd, reg.pid));
        Ok(())
    }

    pub fn status(&self, viewer_uid: u32) -> StatusReport {
        let viewer = (viewer_uid != 0).then_some(viewer_uid);
        StatusReport {
            listen: self.listen_names.clone(),
            sessions: self.router.borrow().status(Instant::now(), viewer),
            counters: self
                .router
                .borrow()
                .counters()
                .into_iter()
                .map(|(name, n)| (name.to_owned(), n))
                .chain([("ce_to_server".to_owned(), self.ce_to_server.get())])
                .collect(),
        }
    }

    fn end_session(&self, sid: Sid, why: &str) {
        let keys = self.router.borrow_mut().end_session(&sid);
        for key in keys {
            self.close_candidate(key);
        }
        self.unwatch(sid);
        debug!(%sid, why, "session ending");
        self.log_events();
        self.dirty.notify_one();
    }

    /// Stops watching `sid`'s mosh-server: its pidfd leaves the set, closed.
    /// Returns the pid it watched.
    fn unwatch(&self, sid: Sid) -> Option<u32> {
        let (pidfd, pid) = self.watchers.borrow_mut().remove(&sid)?;
        if let Err(e) = self.exits.remove(&pidfd) {
            debug!("pidfd not taken out of the epoll set: {e}");
        }
        Some(pid)
    }

    /// Takes a candidate's socket out of the epoll set and closes it.
    fn close_candidate(&self, key: CandKey) {
        let Some(socket) = self.candidates.borrow_mut().remove(&key) else { return };
        if let Err(e) = self.inner.remove(&socket) {
            // Closing it below takes it out of the set all the same.
            debug!("candidate socket not taken out of the epoll set: {e}");
        }
    }

    fn log_events(&self) {
        loop {
            let Some(event) = self.router.borrow_mut().poll_event() else { return };
            match event {
                Event::Registered { sid, uid, port, pid } => {
                    info!(%sid, uid, port, pid, "session registered")
                }
                Event::ClientConfirmed { sid, addr, framed } => {
                    info!(%sid, client = %addr, kind = %if framed { "framed" } else { "stock" }, "client confirmed")
                }
                Event::ClientMoved { sid, from, to } => info!(%sid, %from, %to, "client moved"),
                Event::Ended { sid, uid } => info!(%sid, uid, "session ended"),
            }
        }
    }

    fn on_client_datagram(self: &Rc<Self>, listener: usize, from: SocketAddr, datagram: &[u8], ce: bool) {
        let route = self
            .router
            .borrow_mut()
            .route_from_client(Instant::now(), listener, from, datagram);
        match route {
            ClientRoute::Probe(routes) => {
                debug!(%from, sessions = routes.len(), "probing for an unmapped stock client");
                for r in routes {
                    self.deliver(r, datagram, ce);
                }
            }
            ClientRoute::Drop(reason) => debug!(%from, reason = reason.as_str(), "datagram dropped"),
            ClientRoute::Notify(notice) => {
                debug!(%from, ?notice, "notice sent");
                if let Some(public) = self.listeners.get(listener) {
                    let _ = udp_ecn::send_now(public.socket.get_ref(), &notice.encode(), Some(from), false, public.v6);
                }
            }
            r => self.deliver(r, datagram, ce),
        }
    }

    /// Sends `datagram[payload_at..]` on a candidate, opening it if new.
    fn deliver(self: &Rc<Self>, route: ClientRoute, datagram: &[u8], ce: bool) {
        let (key, payload_at) = match route {
            ClientRoute::Forward { key, payload_at } => (key, payload_at),
            ClientRoute::Open { key, server_port, payload_at, evicted } => {
                if let Some(old) = evicted {
                    self.close_candidate(old);
                }
                if let Err(e) = self.open_candidate(key, server_port) {
                    warn!(port = server_port, "cannot open a candidate socket: {e}");
                    self.router.borrow_mut().remove_candidate(key);
                    return;
                }
                (key, payload_at)
            }
            ClientRoute::Probe(_) | ClientRoute::Notify(_) | ClientRoute::Drop(_) => return,
        };
        let Some(payload) = datagram.get(payload_at..) else { return };
        let sent = match self.candidates.borrow().get(&key) {
            Some(socket) => udp_ecn::send_now(socket, payload, None, ce, false),
            None => return,
        };
        if ce {
            self.ce_to_server.set(self.ce_to_server.get() + 1);
        }
        if let Err(e) = sent {
            self.inner_error(key, &e);
        }
    }

    /// Opens candidate `key`'s socket to mosh-server and adds it to the
    /// epoll set `inner_loop` reads.
    fn open_candidate(&self, key: CandKey, server_port: u16) -> io::Result<()> {
        let socket = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        socket.connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, server_port))?;
        socket.set_nonblocking(true)?;
        udp_ecn::mark(&socket, false, udp_ecn::ECT0)?;
        self.inner.add(&socket, key.0)?;
        self.candidates.borrow_mut().insert(key, socket);
        Ok(())
    }

    /// Candidate `key`'s socket is readable (or has an error pending): reads
    /// one batch into `batch` and sends each datagram on to the candidate's
    /// client. True if the socket may still hold datagrams (a full batch,
    /// or an error read before them).
    fn on_candidate_ready(&self, key: CandKey, batch: &mut RecvBatch<DATAGRAM_BUF>) -> bool {
        let received = match self.candidates.borrow().get(&key) {
            Some(socket) => batch.recv(socket),
            // Closed since the epoll set reported it.
            None => return false,
        };
        let n = match received {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.inner_error(key, &e);
                // Ended with its session; if it had none, stop reading it anyway.
                self.close_candidate(key);
                return false;
            }
            Err(e) => {
                // Reading the error cleared it; datagrams queued behind it
                // are read in the next round.
                debug!("inner receive failed: {e}");
                return true;
            }
        };
        for datagram in batch.datagrams() {
            let route = self.router.borrow_mut().route_from_server(key, datagram.len());
            let Some(route) = route else {
                // The router no longer knows this candidate: stop reading it.
                self.router.borrow_mut().remove_candidate(key);
                self.close_candidate(key);
                return false;
            };
            self.log_events();
            if let Some(public) = self.listeners.get(route.listener) {
                if let Err(e) = udp_ecn::send_now(public.socket.get_ref(), datagram, Some(route.addr), false, public.v6) {
                    debug!(client = %route.addr, "reply not sent: {e}");
                }
            }
        }
        n >= inner_poll::BATCH
    }

    /// An error on the inner hop. ECONNREFUSED means nothing listens on the
    /// session's port any more: mosh-server is gone (the pidfd usually says
    /// so first).
    fn inner_error(&self, key: CandKey, e: &io::Error) {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            let sid = self.router.borrow().session_of(key);
            if let Some(sid) = sid {
                self.end_session(sid, "mosh-server's port refuses datagrams");
            }
        } else {
            debug!("inner send failed: {e}");
        }
    }

    fn save(&self) {
        let records = self.router.borrow().records();
        if let Err(e) = state_file::save(&self.state_file, records) {
            warn!("cannot save the session table: {e:#}");
        }
    }
}

async fn public_loop(daemon: Rc<Daemon>, index: usize) {
    let listener = daemon.listeners[index].clone();
    let mut bufs = vec![vec![0u8; DATAGRAM_BUF]; BATCH];
    let mut got = [Received { len: 0, from: SocketAddr::from(([0, 0, 0, 0], 0)), ce: false }; BATCH];
    loop {
        let mut guard = match listener.socket.readable().await {
            Ok(guard) => guard,
            Err(e) => {
                debug!("public socket not readable: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        match listener.ecn.recv_batch(listener.socket.get_ref(), &mut bufs, &mut got) {
            Ok(n) => {
                for (buf, meta) in bufs.iter().zip(&got[..n]) {
                    daemon.on_client_datagram(index, meta.from, &buf[..meta.len], meta.ce);
                }
                // A short batch emptied the queue (recvmmsg stops only when
                // it is empty, or at an error, which the next read returns):
                // sleep now instead of a receive that would end in EAGAIN.
                // tokio keeps the readiness if a datagram arrived meanwhile.
                if n < BATCH {
                    guard.clear_ready();
                } else {
                    // More may wait. Readiness on an AsyncFd costs no budget,
                    // so spend some here: under a flood the other tasks
                    // (replies, control, pid watch, signals) still get turns.
                    drop(guard);
                    tokio::task::consume_budget().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
            Err(e) => {
                debug!("public receive failed: {e}");
                drop(guard);
                tokio::task::consume_budget().await;
            }
        }
    }
}

/// Reads every candidate socket: what mosh-servers send goes back out of the
/// public sockets. One task and one `RecvBatch` for all candidates; each
/// wake-up takes up to `MAX_EVENTS` ready sockets from the epoll set and up
/// to `BATCH` datagrams from each, then yields if there may be more (see
/// `inner_poll` for why readiness is cleared only after a round that
/// drained everything).
async fn inner_loop(daemon: Rc<Daemon>) {
    let mut batch = RecvBatch::<DATAGRAM_BUF>::new();
    let mut events = [EpollEvent::empty(); inner_poll::MAX_EVENTS];
    loop {
        let (guard, ready) = daemon.inner.next_round(&mut events).await;
        let mut more = ready >= events.len();
        for event in events.iter().take(ready) {
            more |= daemon.on_candidate_ready(CandKey(event.data()), &mut batch);
        }
        epoll_set::end_round(guard, !more).await;
    }
}

/// The `u64` a session's pidfd is reported with in the `exits` set.
fn sid_tag(sid: Sid) -> u64 {
    u64::from_be_bytes(sid.0)
}

/// Ends the session of every mosh-server that exits. A pidfd stays readable
/// once its process has exited, so each one reported leaves the set (in
/// `end_session`); see `epoll_set` for when readiness may be cleared.
async fn exit_loop(daemon: Rc<Daemon>) {
    let mut events = [EpollEvent::empty(); EXIT_EVENTS];
    loop {
        let (guard, ready) = daemon.exits.next_round(&mut events).await;
        for event in events.iter().take(ready) {
            let sid = Sid(event.data().to_be_bytes());
            let pid = daemon.watchers.borrow().get(&sid).map(|&(_, pid)| pid);
            if let Some(pid) = pid {
                daemon.end_session(sid, &format!("mosh-server {pid} exited"));
            }
        }
        epoll_set::end_round(guard, ready < events.len()).await;
    }
}

async fn expiry_loop(daemon: Rc<Daemon>) {
    let mut tick = tokio::time::interval(EXPIRY_PERIOD);
    loop {
        tick.tick().await;
        let closed = daemon.router.borrow_mut().expire(Instant::now());
        for key in closed {
            daemon.close_candidate(key);
        }
    }
}

async fn persist_loop(daemon: Rc<Daemon>) {
    loop {
        daemon.dirty.notified().await;
        tokio::time::sleep(PERSIST_DELAY).await;
        daemon.save();
    }
}
