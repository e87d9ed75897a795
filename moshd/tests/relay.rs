//! moshd end to end on loopback, without mosh: a synthetic mosh-server (a
//! UDP socket owned by this test process, or by a child) registers through
//! the real control socket, and a synthetic client sends framed datagrams.

use mosh_mux_proto::control::{decode_response, encode_line, Registration, Request, Response, StatusQuery, StatusReport};
use mosh_mux_proto::header::{encode_header, HEADER_LEN};
use mosh_mux_proto::Sid;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Moshd {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Moshd {
    fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    fn start_in(dir: PathBuf, port: u16) -> Moshd {
        Moshd::start_with(dir, port, &[])
    }

    fn start_with(dir: PathBuf, port: u16, extra: &[&str]) -> Moshd {
        let child = Command::new(env!("CARGO_BIN_EXE_moshd"))
            // Never a host's /etc/mosh/moshd.toml: only what the test says.
            .args(["--config", "/dev/null"])
            .args(extra)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--control-socket")
            .arg(dir.join("control.sock"))
            .arg("--state-file")
            .arg(dir.join("state.json"))
            .env("RUST_LOG", "debug")
            .stderr(if std::env::var_os("MOSHD_TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap();
        let mut m = Moshd { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(m.socket()).is_err() {
            assert!(Instant::now() < deadline, "moshd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Port 0 asks moshd for any free port; status says which it got.
        m.port = m.status().listen[0].rsplit(':').next().unwrap().parse().unwrap();
        m
    }

    fn start(name: &str) -> Moshd {
        Moshd::start_args(name, &[])
    }

    fn start_args(name: &str, extra: &[&str]) -> Moshd {
        let dir = std::env::temp_dir().join(format!("moshd-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Moshd::start_with(dir, 0, extra)
    }

    fn request(&self, req: &Request) -> Response {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        s.write_all(&encode_line(req)).unwrap();
        let mut line = Vec::new();
        BufReader::new(s).read_until(b'\n', &mut line).unwrap();
        decode_response(&line).unwrap()
    }

    fn status(&self) -> StatusReport {
        match self.request(&Request::Status(StatusQuery {})) {
            Response::Status(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Moshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(ARRIVES_WITHIN)).unwrap();
    s
}

/// How long a datagram that should arrive may take: generous, because CI
/// runs these tests in parallel on a loaded machine and a late datagram
/// must not read as a lost one.
const ARRIVES_WITHIN: Duration = Duration::from_secs(3);

/// How long silence must last to count as "nothing arrives".
const QUIET_FOR: Duration = Duration::from_millis(300);

/// True if nothing arrives on `s` for `QUIET_FOR`.
fn quiet(s: &UdpSocket) -> bool {
    s.set_read_timeout(Some(QUIET_FOR)).unwrap();
    let nothing = recv(s).is_none();
    s.set_read_timeout(Some(ARRIVES_WITHIN)).unwrap();
    nothing
}

/// Counts the datagrams that arrive on `s` until it stays quiet.
fn drain(s: &UdpSocket) -> usize {
    let mut n = 0;
    while !quiet(s) {
        n += 1;
    }
    n
}

fn framed(sid: Sid, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; HEADER_LEN];
    encode_header(sid, &mut h);
    let mut v = h.to_vec();
    v.extend_from_slice(body);
    v
}

fn register(m: &Moshd, sid: Sid, port: u16, pid: u32) -> Response {
    m.request(&Request::Register(Registration { sid, port, pid, ssh_client: None }))
}

fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 2048];
    s.recv_from(&mut buf).ok().map(|(n, a)| (buf[..n].to_vec(), a))
}

const BODY: [u8; 40] = [0x05; 40];

#[test]
fn relays_both_ways_and_confirms_only_on_server_reply() {
    let m = Moshd::start("relay");
    let server = udp();
    let sid = Sid([7; 8]);
    let reg = register(&m, sid, server.local_addr().unwrap().port(), std::process::id());
    assert_eq!(reg, Response::Registered { port: m.port });

    let client = udp();
    client.send_to(&framed(sid, &BODY), m.addr()).unwrap();
    let (got, cand) = recv(&server).expect("payload reaches the server");
    assert_eq!(got, BODY, "the header is removed");
    assert_eq!(m.status().sessions[0].client, None, "not confirmed before a reply");

    server.send_to(&[0x85; 30], cand).unwrap();
    let (reply, from) = recv(&client).expect("reply reaches the client");
    assert_eq!((reply, from), (vec![0x85; 30], m.addr()));
    let st = m.status();
    assert_eq!(st.sessions[0].client, Some(client.local_addr().unwrap().to_string()));
    assert_eq!(st.sessions[0].to_server_packets, 1);
    assert_eq!(st.sessions[0].to_client_bytes, 30);

    // Another address with the same sid gets its own candidate; the server
    // not answering there leaves the return path where it was.
    let other = udp();
    other.send_to(&framed(sid, &BODY), m.addr()).unwrap();
    let (_, cand2) = recv(&server).unwrap();
    assert_ne!(cand2, cand);
    server.send_to(&[0x86; 30], cand).unwrap();
    assert!(recv(&client).is_some());
    assert!(quiet(&other), "the other address receives nothing");
}

#[test]
fn unknown_sid_and_garbage_reach_nothing() {
    let m = Moshd::start("garbage");
    let server = udp();
    register(&m, Sid([1; 8]), server.local_addr().unwrap().port(), std::process::id());
    let client = udp();
    for d in [vec![0x01; 40], vec![0xff; 100], vec![], vec![0xB1; 12]] {
        client.send_to(&d, m.addr()).unwrap();
    }
    assert!(quiet(&server));
    assert!(quiet(&client), "no answer to garbage");
    // A framed datagram with an unknown sid gets the 2-byte notice, never
    // more bytes than it sent, and nothing reaches any session.
    let unknown = framed(Sid([2; 8]), &BODY);
    client.send_to(&unknown, m.addr()).unwrap();
    let (notice, _) = recv(&client).expect("a notice");
    assert_eq!(mosh_mux_proto::Notice::decode(&notice), Some(mosh_mux_proto::Notice::UnknownSession));
    assert!(notice.len() < unknown.len());
    assert!(quiet(&server));
    // Notices are rate-limited in all: a burst of 200 gets at most the burst.
    for _ in 0..200 {
        client.send_to(&unknown, m.addr()).unwrap();
    }
    let notices = drain(&client);
    assert!(notices <= 40, "{notices} notices for 200 datagrams");
}

#[test]
fn refuses_ports_not_owned_and_dead_pids() {
    let m = Moshd::start("refuse");
    let nobody = free_port();
    match register(&m, Sid([3; 8]), nobody, std::process::id()) {
        Response::Refused { reason } => assert!(reason.contains("no UDP socket"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let server = udp();
    match register(&m, Sid([3; 8]), server.local_addr().unwrap().port(), 999_999) {
        Response::Refused { reason } => assert!(reason.contains("not running"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The pid exists (pid 1) but does not hold the port.
    match register(&m, Sid([3; 8]), server.local_addr().unwrap().port(), 1) {
        Response::Refused { .. } => {}
        other => panic!("{other:?}"),
    }
    assert!(m.status().sessions.is_empty());
}

/// A child process that binds a loopback UDP port and echoes; returns it and its port.
fn spawn_inner_server() -> (Child, u16) {
    let mut child = Command::new("python3")
        .args(["-c", "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',0))\nprint(s.getsockname()[1],flush=True)\nwhile True:\n d,a=s.recvfrom(4096)\n s.sendto(bytes([0x80])+d[1:],a)\n"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().parse().unwrap())
}

#[test]
fn session_ends_when_its_server_exits() {
    let m = Moshd::start("pidexit");
    let (mut inner, port) = spawn_inner_server();
    assert_eq!(register(&m, Sid([4; 8]), port, inner.id()), Response::Registered { port: m.port });
    assert_eq!(m.status().sessions.len(), 1);
    inner.kill().unwrap();
    inner.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !m.status().sessions.is_empty() {
        assert!(Instant::now() < deadline, "session not forgotten within 2 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn session_ends_when_its_port_refuses_datagrams() {
    // mosh-server's process lives on (this test) but its socket is gone: the
    // inner hop's ICMP port unreachable ends the session.
    let m = Moshd::start("refused");
    let server = udp();
    let sid = Sid([6; 8]);
    register(&m, sid, server.local_addr().unwrap().port(), std::process::id());
    let client = udp();
    client.send_to(&framed(sid, &BODY), m.addr()).unwrap();
    assert!(recv(&server).is_some());
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !m.status().sessions.is_empty() {
        assert!(Instant::now() < deadline, "session not ended after its port refused datagrams");
        client.send_to(&framed(sid, &BODY), m.addr()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sessions_survive_sigkill_restart() {
    let mut m = Moshd::start("restart");
    let (mut inner, port) = spawn_inner_server();
    let sid = Sid([5; 8]);
    register(&m, sid, port, inner.id());
    std::thread::sleep(Duration::from_millis(400)); // the state file is written within 100 ms
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    let (dir, mport) = (m.dir.clone(), m.port);
    std::mem::forget(m);
    let m = Moshd::start_in(dir, mport);
    assert_eq!(m.status().sessions.len(), 1, "restored from the state file");
    let client = udp();
    client.send_to(&framed(sid, &BODY), m.addr()).unwrap();
    let (reply, _) = recv(&client).expect("the session works after the restart");
    assert_eq!(reply[0], 0x80);
    inner.kill().unwrap();
    inner.wait().unwrap();
}

/// The state file after moshd wrote it (within 100 ms of a change).
fn state_json(m: &Moshd) -> serde_json::Value {
    std::thread::sleep(Duration::from_millis(400));
    serde_json::from_slice(&std::fs::read(m.dir.join("state.json")).unwrap()).unwrap()
}

#[test]
fn restart_restores_only_entries_that_still_hold() {
    // Three sessions in the state file: one whose mosh-server still runs and
    // owns its port, one whose mosh-server has exited, one whose entry now
    // names another uid than the port's owner. Only the first comes back.
    let mut m = Moshd::start("stale");
    let (mut alive, alive_port) = spawn_inner_server();
    let (mut dead, dead_port) = spawn_inner_server();
    let (mut other, other_port) = spawn_inner_server();
    for (sid, port, pid) in [(Sid([0x21; 8]), alive_port, alive.id()), (Sid([0x22; 8]), dead_port, dead.id()), (Sid([0x23; 8]), other_port, other.id())] {
        assert_eq!(register(&m, sid, port, pid), Response::Registered { port: m.port });
    }
    let mut state = state_json(&m);
    assert_eq!(state["sessions"].as_array().map(Vec::len), Some(3), "{state}");
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    dead.kill().unwrap();
    dead.wait().unwrap();
    let me = nix::unistd::getuid().as_raw();
    for entry in state["sessions"].as_array_mut().unwrap() {
        if entry["port"] == other_port {
            entry["uid"] = serde_json::json!(me.wrapping_add(4242));
        }
    }
    std::fs::write(m.dir.join("state.json"), state.to_string()).unwrap();
    let (dir, mport) = (m.dir.clone(), m.port);
    std::mem::forget(m);
    let m = Moshd::start_in(dir, mport);
    let restored: Vec<u16> = m.status().sessions.iter().map(|s| s.server_port).collect();
    assert_eq!(restored, vec![alive_port], "only the entry that still holds is restored");
    // The state file forgets the stale entries too.
    let ports: Vec<u64> = state_json(&m)["sessions"].as_array().unwrap().iter().filter_map(|e| e["port"].as_u64()).collect();
    assert_eq!(ports, vec![u64::from(alive_port)]);
    for c in [&mut alive, &mut other] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

#[test]
fn sigterm_and_sigint_exit_zero_keeping_the_sessions() {
    use nix::sys::signal::{kill, Signal};
    for (name, signal) in [("term", Signal::SIGTERM), ("int", Signal::SIGINT)] {
        let mut m = Moshd::start(&format!("stop-{name}"));
        let server = udp();
        register(&m, Sid([0x31; 8]), server.local_addr().unwrap().port(), std::process::id());
        kill(nix::unistd::Pid::from_raw(m.child.id() as i32), signal).unwrap();
        let status = m.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{signal}: moshd exited {status}");
        assert!(!m.socket().exists(), "{signal}: the control socket is removed");
        let sessions = serde_json::from_slice::<serde_json::Value>(&std::fs::read(m.dir.join("state.json")).unwrap()).unwrap();
        assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(1), "{signal}: the session is kept");
    }
}

#[test]
fn relays_over_ipv6() {
    // The public port on IPv6 too: a client on ::1 is relayed to a
    // mosh-server on 127.0.0.1 and answered from the IPv6 port.
    let m = Moshd::start_args("ipv6", &["--listen", "[::1]:0"]);
    let listen = m.status().listen;
    let v6: SocketAddr = listen.iter().find_map(|a| a.parse().ok().filter(SocketAddr::is_ipv6)).expect("an IPv6 listen address");
    let server = udp();
    let sid = Sid([0x41; 8]);
    register(&m, sid, server.local_addr().unwrap().port(), std::process::id());
    let client = UdpSocket::bind("[::1]:0").unwrap();
    client.set_read_timeout(Some(ARRIVES_WITHIN)).unwrap();
    client.send_to(&framed(sid, &BODY), v6).unwrap();
    let (got, cand) = recv(&server).expect("the IPv6 client's datagram reaches the server");
    assert_eq!(got, BODY);
    server.send_to(&[0x87; 20], cand).unwrap();
    assert_eq!(recv(&client), Some((vec![0x87; 20], v6)), "the reply comes back from the IPv6 port");
    assert_eq!(m.status().sessions[0].client, Some(client.local_addr().unwrap().to_string()));
}

#[test]
fn port_in_use_is_a_one_line_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("moshd-it-inuse-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_moshd"))
            // Never a host's /etc/mosh/moshd.toml: only what the test says.
            .args(["--config", "/dev/null"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .arg("--control-socket")
        .arg(dir.join("c.sock"))
        .arg("--state-file")
        .arg(dir.join("s.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    // The very line README's message table tells the user to expect.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let template = readme_message(&readme, "moshd: cannot listen on ");
    assert_eq!(err.trim_end(), template.replace("ADDR:PORT", &format!("127.0.0.1:{port}")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The message in README's table of messages that starts with `start`.
fn readme_message(readme: &str, start: &str) -> String {
    let at = readme.find(&format!("| `{start}")).unwrap_or_else(|| panic!("README has no message starting {start:?}")) + 3;
    readme[at..].split('`').next().unwrap_or_default().to_owned()
}

#[test]
fn unknown_option_is_a_one_line_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_moshd")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--bogus"), "{err}");
}

fn refusal(r: Response) -> String {
    match r {
        Response::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn per_user_and_global_session_caps_hold_at_their_limit() {
    let m = Moshd::start_args("caps", &["--max-sessions-per-user", "2", "--max-sessions", "3"]);
    let servers: Vec<UdpSocket> = (0..4).map(|_| udp()).collect();
    let port = |i: usize| servers[i].local_addr().unwrap().port();
    for i in 0..2 {
        assert_eq!(register(&m, Sid([10 + i as u8; 8]), port(i), std::process::id()), Response::Registered { port: m.port });
    }
    let why = refusal(register(&m, Sid([12; 8]), port(2), std::process::id()));
    assert!(why.contains("you already have 2 sessions"), "{why}");
    assert_eq!(m.status().sessions.len(), 2);
    if !running_as_root() {
        assert!(std::env::var("CI").is_err(), "CI must run this test as root");
        return;
    }
    // The global cap, with a second uid: "nobody" registers its own sessions
    // (a short-lived one here, whose answer is all we need).
    let as_nobody = |sid: &str| -> String {
        let script = format!(
            "import json,os,socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('127.0.0.1',0))\n\
             c=socket.socket(socket.AF_UNIX);c.connect({sock:?})\n\
             c.sendall((json.dumps({{'op':'register','sid':'{sid}','port':s.getsockname()[1],'pid':os.getpid()}})+'\\n').encode())\n\
             print(c.makefile().readline().strip())",
            sock = m.socket().to_str().unwrap()
        );
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A holder keeps nobody's first session (and its mosh-server stand-in)
    // alive while the second registration meets the global cap.
    let holder = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"])
        .arg(format!(
            "import json,os,socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('127.0.0.1',0))\n\
             c=socket.socket(socket.AF_UNIX);c.connect({sock:?})\n\
             c.sendall((json.dumps({{'op':'register','sid':'0d0d0d0d0d0d0d0d','port':s.getsockname()[1],'pid':os.getpid()}})+'\\n').encode())\n\
             print(c.makefile().readline().strip(),flush=True)\ntime.sleep(20)",
            sock = m.socket().to_str().unwrap()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut holder = KillOnDrop(holder);
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("\"registered\""), "holder said: {line:?}");
    assert_eq!(m.status().sessions.len(), 3);
    let full = as_nobody("0e0e0e0e0e0e0e0e");
    assert!(full.contains("moshd is full (3 sessions)"), "{full}");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn candidate_cap_holds_through_the_binary() {
    let m = Moshd::start_args("candcap", &["--max-candidates", "2"]);
    let server = udp();
    let sid = Sid([20; 8]);
    register(&m, sid, server.local_addr().unwrap().port(), std::process::id());
    let clients: Vec<UdpSocket> = (0..5).map(|_| udp()).collect();
    let first = &clients[0];
    first.send_to(&framed(sid, &BODY), m.addr()).unwrap();
    let (_, cand) = recv(&server).unwrap();
    server.send_to(&[0x85; 30], cand).unwrap();
    assert!(recv(first).is_some(), "confirmed");
    for c in &clients[1..] {
        c.send_to(&framed(sid, &BODY), m.addr()).unwrap();
        assert!(recv(&server).is_some());
    }
    let st = &m.status().sessions[0];
    assert_eq!(st.candidates, 2, "{st:?}");
    assert_eq!(st.client, Some(first.local_addr().unwrap().to_string()), "the confirmed one stays");
    server.send_to(&[0x86; 30], cand).unwrap();
    assert!(recv(first).is_some(), "the confirmed client still receives");
}

#[test]
fn new_candidates_are_rate_limited_through_the_binary() {
    let m = Moshd::start("candrate");
    let server = udp();
    let sid = Sid([21; 8]);
    register(&m, sid, server.local_addr().unwrap().port(), std::process::id());
    // The default per-session burst is 8 new addresses.
    let clients: Vec<UdpSocket> = (0..12).map(|_| udp()).collect();
    for c in &clients {
        c.send_to(&framed(sid, &BODY), m.addr()).unwrap();
    }
    let reached = drain(&server);
    assert_eq!(reached, 8, "only the burst of new addresses reaches mosh-server");
    let report = m.status();
    assert_eq!(report.counters.get("session_candidate_rate"), Some(&4));
}

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn drops_privileges_after_binding_a_low_port() {
    if !running_as_root() {
        assert!(std::env::var("CI").is_err(), "CI must run this test as root");
        eprintln!("skipped: needs root");
        return;
    }
    let low = (600..1000)
        .find(|p| UdpSocket::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 1024");
    let dir = std::env::temp_dir().join(format!("moshd-it-priv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state_dir = dir.join("state");
    let child = Command::new(env!("CARGO_BIN_EXE_moshd"))
            // Never a host's /etc/mosh/moshd.toml: only what the test says.
            .args(["--config", "/dev/null"])
        .args(["--user", "nobody", "--listen", &format!("127.0.0.1:{low}")])
        .arg("--control-socket")
        .arg(dir.join("control.sock"))
        .arg("--state-file")
        .arg(state_dir.join("state.json"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = Moshd { child, dir: dir.clone(), port: low };
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(m.socket()).is_err() {
        assert!(Instant::now() < deadline, "moshd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", m.child.id())).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.split_whitespace().skip(1).all(|u| u == nobody.to_string()), "{uid_line}");
    // Still routes: a session of root's, registered and relayed.
    let server = udp();
    let sid = Sid([30; 8]);
    assert_eq!(register(&m, sid, server.local_addr().unwrap().port(), std::process::id()), Response::Registered { port: low });
    let client = udp();
    client.send_to(&framed(sid, &BODY), m.addr()).unwrap();
    let (_, cand) = recv(&server).expect("relayed as nobody");
    server.send_to(&[0x85; 30], cand).unwrap();
    assert!(recv(&client).is_some());
    // Its state directory was made for it, private.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&state_dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (nobody, 0o700));
    std::thread::sleep(Duration::from_millis(300));
    assert!(state_dir.join("state.json").exists(), "nobody can write the state file");
}

#[test]
fn control_socket_permissions_are_as_documented() {
    use std::os::unix::fs::MetadataExt;
    let dir = std::env::temp_dir().join(format!("moshd-it-perm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // moshd makes the socket's directory when it is missing.
    let sock_dir = dir.join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_moshd"))
            // Never a host's /etc/mosh/moshd.toml: only what the test says.
            .args(["--config", "/dev/null"])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--control-socket")
        .arg(sock_dir.join("control.sock"))
        .arg("--state-file")
        .arg(dir.join("state.json"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = Moshd { child, dir: dir.clone(), port: 0 };
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(sock_dir.join("control.sock")).is_err() {
        assert!(Instant::now() < deadline, "moshd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = std::fs::metadata(&sock_dir).unwrap();
    assert_eq!(d.mode() & 0o777, 0o755, "directory: writable by its owner only");
    let s = std::fs::metadata(sock_dir.join("control.sock")).unwrap();
    assert_eq!(s.mode() & 0o777, 0o666, "socket: anyone may connect; SO_PEERCRED decides");
    drop(m);
}
