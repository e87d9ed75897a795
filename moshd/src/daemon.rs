//! The tokio shell around the router: public UDP sockets, one loopback
//! candidate socket per (client address, session), the control socket, pid
//! watchers, persistence and signals. Single-threaded: the router lives in a
//! RefCell and is borrowed only between awaits, never across one.

use crate::control_server;
use crate::limits::Limits;
use crate::pidwatch;
use crate::router::{ClientRoute, Event, Router};
use crate::session::CandKey;
use crate::state_file;
use anyhow::Context;
use mosh_mux_proto::control::{Registration, Response, StatusReport};
use mosh_mux_proto::udp_ecn::{self, EcnSocket, Received, BATCH};
use mosh_mux_proto::Sid;
use socket2::{Domain, Protocol, Socket, Type};
use std::cell::Cell;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::{spawn_local, JoinHandle, LocalSet};
use tracing::{debug, info, warn};

/// Receive buffer: mosh datagrams stay under 1280 bytes (plus our header);
/// anything longer than this is truncated and then refused as not mosh.
const DATAGRAM_BUF: usize = 4096;
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

struct CandidateIo {
    socket: Rc<UdpSocket>,
    task: JoinHandle<()>,
}

/// A public socket, with what reads its datagrams' ECN marks.
struct Listener {
    socket: UdpSocket,
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
    candidates: RefCell<HashMap<CandKey, CandidateIo>>,
    watchers: RefCell<HashMap<Sid, JoinHandle<()>>>,
    dirty: Notify,
    state_file: PathBuf,
}

/// Runs moshd until SIGTERM or SIGINT.
pub fn run(config: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    LocalSet::new().block_on(&rt, serve(config))
}

fn bind_public(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
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
    Ok(UdpSocket::from_std(socket.into())?)
}

/// Raises the soft descriptor limit to the hard one: each session holds a
/// pidfd and each active client address a socket, so the common default of
/// 1024 would cap moshd far below its session limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                warn!("cannot raise the descriptor limit from {soft}: {e}");
            }
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(!config.listen.is_empty(), "no --listen address");
    raise_fd_limit();
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let socket = bind_public(*addr)?;
        let ecn = EcnSocket::new(&socket, addr.is_ipv6())
            .with_context(|| format!("cannot set up ECN on {addr}"))?;
        listeners.push(Rc::new(Listener { socket, ecn, v6: addr.is_ipv6() }));
    }
    let listen_names: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.socket.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let first_port = listeners
        .first()
        .and_then(|l| l.socket.local_addr().ok())
        .map(|a| a.port())
        .unwrap_or(0);
    let control = control_server::bind(&config.control_socket)?;
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
        watchers: RefCell::new(HashMap::new()),
        dirty: Notify::new(),
        state_file: config.state_file.clone(),
    });
    daemon.restore();
    for i in 0..daemon.listeners.len() {
        spawn_local(public_loop(daemon.clone(), i));
    }
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
            match self.admit(rec.uid, &rec.user, &rec.registration, rec.since_unix) {
                Ok(()) => info!(%sid, uid = rec.uid, "session restored"),
                Err(reason) => info!(%sid, uid = rec.uid, %reason, "session not restored"),
            }
        }
        self.dirty.notify_one();
    }

    /// Handles a registration from a control connection of `uid`.
    pub fn register(self: &Rc<Self>, uid: u32, reg: &Registration) -> Response {
        match self.admit(uid, &user_name(uid), reg, unix_now()) {
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

    fn admit(self: &Rc<Self>, uid: u32, user: &str, reg: &Registration, since: u64) -> Result<(), String> {
        // Open the pidfd first: the facts below then describe the process
        // it watches, not a later one that reused the pid.
        let pidfd = pidwatch::open(reg.pid).map_err(|_| format!("process {} is not running", reg.pid))?;
        let facts = crate::facts::gather(reg.port, reg.pid);
        self.router
            .borrow_mut()
            .register(Instant::now(), since, uid, user, reg, &facts)
            .map_err(|r| r.to_string())?;
        self.log_events();
        let (sid, pid) = (reg.sid, reg.pid);
        let me = self.clone();
        let task = spawn_local(async move {
            let _ = pidwatch::exited(pidfd).await;
            me.watchers.borrow_mut().remove(&sid);
            me.end_session(sid, &format!("mosh-server {pid} exited"));
        });
        self.watchers.borrow_mut().insert(sid, task);
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
        if let Some(task) = self.watchers.borrow_mut().remove(&sid) {
            task.abort();
        }
        debug!(%sid, why, "session ending");
        self.log_events();
        self.dirty.notify_one();
    }

    fn close_candidate(&self, key: CandKey) {
        if let Some(io) = self.candidates.borrow_mut().remove(&key) {
            io.task.abort();
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
                    let _ = udp_ecn::send_now(&public.socket, &notice.encode(), Some(from), false, public.v6);
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
            Some(io) => udp_ecn::send_now(&*io.socket, payload, None, ce, false),
            None => return,
        };
        if ce {
            self.ce_to_server.set(self.ce_to_server.get() + 1);
        }
        if let Err(e) = sent {
            self.inner_error(key, &e);
        }
    }

    fn open_candidate(self: &Rc<Self>, key: CandKey, server_port: u16) -> io::Result<()> {
        let std_sock = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        std_sock.connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, server_port))?;
        std_sock.set_nonblocking(true)?;
        udp_ecn::mark(&std_sock, false, udp_ecn::ECT0)?;
        let socket = Rc::new(UdpSocket::from_std(std_sock)?);
        let task = spawn_local(candidate_loop(self.clone(), key, socket.clone()));
        self.candidates
            .borrow_mut()
            .insert(key, CandidateIo { socket, task });
        Ok(())
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
        if let Err(e) = listener.socket.readable().await {
            debug!("public socket not readable: {e}");
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let received = listener.socket.try_io(tokio::io::Interest::READABLE, || {
            listener.ecn.recv_batch(&listener.socket, &mut bufs, &mut got)
        });
        match received {
            Ok(n) => {
                for (buf, meta) in bufs.iter().zip(&got[..n]) {
                    daemon.on_client_datagram(index, meta.from, &buf[..meta.len], meta.ce);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => debug!("public receive failed: {e}"),
        }
    }
}

async fn candidate_loop(daemon: Rc<Daemon>, key: CandKey, socket: Rc<UdpSocket>) {
    let mut buf = vec![0u8; DATAGRAM_BUF];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                daemon.inner_error(key, &e);
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    return;
                }
                // Any other receive error is transient; do not spin on it.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let route = daemon.router.borrow_mut().route_from_server(key, n);
        let Some(route) = route else { return };
        daemon.log_events();
        if let Some(public) = daemon.listeners.get(route.listener) {
            if let Err(e) = udp_ecn::send_now(&public.socket, &buf[..n], Some(route.addr), false, public.v6) {
                debug!(client = %route.addr, "reply not sent: {e}");
            }
        }
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
