//! Hostile local clients against the real moshd binary (issue 3, "Hostile
//! input"): control connections that hang up mid-line, send oversized,
//! endless or non-JSON messages or unknown operations, dribble one byte a
//! second, hold connections open or open them in a burst; and a flood of
//! random datagrams at the public port while a synthetic session relays.
//! After each attack a plain `{"op":"status"}` from a fresh connection of
//! another user must be answered within a bound, and moshd must still run.
//!
//! moshd's control limits (control_server.rs, control_budget.rs): one
//! request per connection, at most 4096 bytes (the newline counts), 15 s per
//! connection, 1024 connections at once in all and 8 per uid, 10 new
//! connections a second per uid (burst 20); a connection over a limit is
//! accepted, told why in one refusal line (written without waiting) and closed.
//!
//! The attackers are other uids: moshd takes the caller's uid from
//! SO_PEERCRED, fixed at connect(), so [`connect_as`] connects from a
//! short-lived thread whose effective uid alone is switched (raw
//! setresuid, which changes only the calling thread). That needs root, as
//! CI runs; as another user these tests say so and pass without running
//! (under CI=true they fail instead).
//! The victim, whose status requests must be served, is this process (root).
//!
//! The tests that involve the 15 s timeout take about 16-20 s each; they run
//! in parallel with the others. Loopback only; every loop is bounded in count
//! and time. MOSHD_TEST_LOG=1 prints moshd's log when a test ends.

use mosh_mux_proto::control::{
    decode_response, encode_line, Registration, Request, Response, StatusQuery, StatusReport,
};
use mosh_mux_proto::header::{encode_header, HEADER_LEN};
use mosh_mux_proto::Sid;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// moshd's per-connection limit (control_server::CONNECTION_TIMEOUT).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// moshd's caps (control_budget::ControlLimits::default()).
const MAX_CONNECTIONS: usize = 1024;
const MAX_PER_UID: usize = 8;
/// How long an ordinary status request may take while moshd is not starved.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// The attacker: nobody.
const ATTACKER: u32 = 65534;
/// Further attackers, one uid each (they need not exist in /etc/passwd).
const OTHER_UIDS: u32 = 60000;

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips a test that needs other uids when not root; under CI=true (which
/// runs as root) a skip is a failure, as for the end-to-end tests.
macro_rules! needs_root {
    () => {
        if !running_as_root() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "connecting as other uids needs root");
            eprintln!("skipped: connecting as other uids needs root");
            return;
        }
    };
}

/// Connects to `path` as `uid`: from a thread of its own whose effective uid
/// alone is switched (the raw syscall changes only the calling thread,
/// unlike libc's setresuid) and which ends right after. The kernel fixes
/// the connection's SO_PEERCRED at connect(), so moshd sees `uid`.
fn connect_as(path: &Path, uid: u32) -> std::io::Result<UnixStream> {
    let path = path.to_owned();
    std::thread::spawn(move || {
        // SAFETY: setresuid takes three ids and touches no memory; -1 keeps
        // the real and saved uids (root), so this thread could switch back.
        let r = unsafe {
            libc::syscall(libc::SYS_setresuid, -1 as libc::c_long, libc::c_long::from(uid), -1 as libc::c_long)
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let s = UnixStream::connect(&path)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(s)
    })
    .join()
    .unwrap()
}

struct Moshd {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Moshd {
    fn start(name: &str, log_level: &str) -> Moshd {
        let dir = std::env::temp_dir().join(format!("moshd-abuse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("moshd.log")).unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_moshd"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--control-socket")
            .arg(dir.join("control.sock"))
            .arg("--state-file")
            .arg(dir.join("state.json"))
            .env("RUST_LOG", log_level)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let m = Moshd { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !m.socket().exists() || UnixStream::connect(m.socket()).is_err() {
            assert!(Instant::now() < deadline, "moshd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    fn connect_as(&self, uid: u32) -> UnixStream {
        connect_as(&self.socket(), uid).expect("connect to the control socket")
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("moshd.log")).unwrap_or_default()
    }

    /// Whether the moshd process is still running.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// One status request from this process (root) on a fresh connection,
    /// answered within `within`.
    fn try_status(&self, within: Duration) -> Result<StatusReport, String> {
        let mut s = UnixStream::connect(self.socket()).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(within)).unwrap();
        s.set_write_timeout(Some(within)).unwrap();
        s.write_all(&encode_line(&Request::Status(StatusQuery {})))
            .map_err(|e| format!("write: {e}"))?;
        match read_line(&mut s) {
            Ok(line) if line.is_empty() => Err("closed unanswered".into()),
            Ok(line) => match decode_response(&line) {
                Ok(Response::Status(r)) => Ok(r),
                other => Err(format!("unexpected answer {other:?}")),
            },
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// What must hold after every attack: moshd runs and answers a plain
    /// status request from a fresh connection within `within`. Retries at
    /// most 5 times a second (the per-uid connection rate is 10).
    fn assert_serves(&mut self, within: Duration, after: &str) -> Duration {
        let t0 = Instant::now();
        loop {
            assert!(self.running(), "moshd exited after {after}:\n{}", self.log());
            let last = match self.try_status(within.saturating_sub(t0.elapsed()).max(Duration::from_millis(100))) {
                Ok(_) => return t0.elapsed(),
                Err(e) => e,
            };
            if t0.elapsed() >= within {
                panic!("moshd did not answer status within {within:?} after {after}: {last}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends `bytes` as `uid` on a fresh connection, half-closes, and
    /// returns what moshd answered (one line, or nothing).
    fn exchange_as(&self, uid: u32, bytes: &[u8]) -> Vec<u8> {
        let mut s = self.connect_as(uid);
        let _ = s.write_all(bytes);
        let _ = s.shutdown(Shutdown::Write);
        read_line(&mut s).unwrap_or_default()
    }
}

impl Drop for Moshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("MOSHD_TEST_LOG").is_some() {
            eprintln!("--- moshd log ({})\n{}", self.dir.display(), self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Reads one line (up to 1 MiB), or what came before EOF.
fn read_line(s: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    BufReader::new(Read::take(&*s, 1 << 20)).read_until(b'\n', &mut line)?;
    Ok(line)
}

fn refusal(answer: &[u8]) -> String {
    match decode_response(answer) {
        Ok(Response::Refused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?} from {:?}", String::from_utf8_lossy(answer)),
    }
}

/// If moshd has closed this connection (EOF or reset), what it said first;
/// `None` while it is open. Never blocks.
fn said_before_closing(s: &UnixStream) -> Option<Vec<u8>> {
    s.set_nonblocking(true).unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match (&*s).read(&mut buf) {
            Ok(0) => break true,
            Ok(n) if said.len() < 1 << 16 => said.extend_from_slice(&buf[..n]),
            Ok(_) => break false,
            Err(e) => break e.kind() != ErrorKind::WouldBlock,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed.then_some(said)
}

/// Whether moshd has closed this connection, without blocking.
fn closed_by_peer(s: &UnixStream) -> bool {
    said_before_closing(s).is_some()
}

/// The reason moshd gave for refusing this connection at once (asserting
/// that it did: one refusal line, then the close).
fn refused_at_once(s: &UnixStream) -> String {
    match said_before_closing(s) {
        Some(said) => refusal(&said),
        None => panic!("the connection is still open"),
    }
}

/// A small deterministic PRNG (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[test]
fn truncated_messages_and_hangups_mid_line() {
    needs_root!();
    let mut m = Moshd::start("truncated", "debug");
    let full = encode_line(&Request::Register(Registration {
        sid: Sid([9; 8]),
        port: 1,
        pid: std::process::id(),
        ssh_client: Some("198.51.100.2".parse().unwrap()),
    }));
    // Every prefix of a real request, hung up at once (no half-close, no
    // read), as fast as one uid can connect: most are over its rate.
    for cut in 0..full.len() {
        let mut s = m.connect_as(ATTACKER);
        let _ = s.write_all(&full[..cut]);
    }
    m.assert_serves(ANSWER_WITHIN, "hang-ups at every byte of a request");
    // Prefixes half-closed (each from its own uid, so no rate limit hides
    // the answer): moshd answers each with a refusal.
    for (i, cut) in [1, 7, 20, full.len() / 2, full.len() - 2].into_iter().enumerate() {
        let answer = m.exchange_as(OTHER_UIDS + i as u32, &full[..cut]);
        let reason = refusal(&answer);
        assert!(reason.contains("not valid"), "{reason}");
    }
    // A request cut inside a multi-byte UTF-8 character.
    let answer = m.exchange_as(OTHER_UIDS + 10, "{\"op\":\"st\u{e9}".as_bytes().split_last().unwrap().1);
    refusal(&answer);
    // Connected and gone without a byte, a hundred times.
    for _ in 0..100 {
        drop(m.connect_as(ATTACKER));
    }
    m.assert_serves(ANSWER_WITHIN, "truncated messages");
}

#[test]
fn oversized_lines_are_refused_unread() {
    needs_root!();
    let mut m = Moshd::start("oversized", "debug");
    // The bound is 4096 bytes including the newline.
    let padded = |total: usize| {
        let mut v = b"{\"op\":\"status\"".to_vec();
        v.resize(total - 2, b' ');
        v.extend_from_slice(b"}\n");
        v
    };
    let answer = m.exchange_as(ATTACKER, &padded(4096));
    assert!(matches!(decode_response(&answer), Ok(Response::Status(_))), "4096 bytes with the newline is served");
    let answer = m.exchange_as(ATTACKER, &padded(4097));
    assert!(refusal(&answer).contains("longer than 4096"), "4097 bytes are refused");
    let answer = m.exchange_as(ATTACKER, &padded(64 << 10));
    assert!(refusal(&answer).contains("longer than 4096"));

    // 8 MiB with no newline, written as fast as moshd takes it: moshd reads
    // 4097 bytes, refuses, and closes; the writer is cut off.
    let mut s = m.connect_as(ATTACKER);
    let mut writer = s.try_clone().unwrap();
    let t0 = Instant::now();
    let pump = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0usize;
        while sent < 8 << 20 {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let answer = read_line(&mut s).unwrap_or_default();
    let sent = pump.join().unwrap();
    assert!(refusal(&answer).contains("longer than 4096"));
    assert!(sent < 8 << 20, "moshd read all 8 MiB ({sent} bytes)");
    assert!(t0.elapsed() < ANSWER_WITHIN, "refused after {:?}", t0.elapsed());
    eprintln!("8 MiB line: refused after {:?}, {} KiB written before the cut", t0.elapsed(), sent >> 10);
    m.assert_serves(ANSWER_WITHIN, "oversized lines");
}

#[test]
fn endless_streams_are_cut_after_one_request() {
    needs_root!();
    let mut m = Moshd::start("endless", "debug");
    for (what, unit) in [
        ("newline-free bytes", b"AAAAAAAAAAAAAAAA".to_vec()),
        ("empty lines", b"\n".to_vec()),
        ("valid requests", encode_line(&Request::Status(StatusQuery {}))),
    ] {
        let mut s = m.connect_as(ATTACKER);
        let mut writer = s.try_clone().unwrap();
        let t0 = Instant::now();
        let pump = std::thread::spawn(move || {
            let chunk: Vec<u8> = unit.iter().copied().cycle().take(16 << 10).collect();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut sent = 0usize;
            while Instant::now() < deadline {
                match writer.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => return (sent, Instant::now()),
                }
            }
            (sent, Instant::now())
        });
        let answer = read_line(&mut s).unwrap_or_default();
        // One answer, then the connection ends: nothing more to read.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let (sent, cut_at) = pump.join().unwrap();
        let cut = cut_at.duration_since(t0);
        assert!(cut < ANSWER_WITHIN, "{what}: the stream was not cut ({sent} bytes in {cut:?})");
        assert_eq!(answer.iter().filter(|&&b| b == b'\n').count(), 1, "{what}: one answer line");
        assert!(rest.is_empty(), "{what}: a second answer {rest:?}");
        eprintln!("{what}: cut after {cut:?} and {} KiB", sent >> 10);
        m.assert_serves(ANSWER_WITHIN, what);
    }
}

#[test]
fn garbage_and_unknown_operations_are_refused() {
    needs_root!();
    let mut m = Moshd::start("garbage", "debug");
    let mut rng = Rng(0x6d6f_7368_6d75_7801);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("http".into(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("nul bytes".into(), vec![0; 100].into_iter().chain([b'\n']).collect()),
        ("invalid utf-8".into(), b"{\"op\":\"\xff\xfe\"}\n".to_vec()),
        ("json array".into(), b"[\"op\",\"status\"]\n".to_vec()),
        ("json string".into(), b"\"status\"\n".to_vec()),
        ("deep nesting".into(), [&[b'['; 2000][..], &[b']'; 2000][..], b"\n"].concat()),
        ("huge number".into(), format!("{{\"op\":\"register\",\"sid\":\"71db447e1de5337e\",\"port\":{},\"pid\":1}}\n", "9".repeat(300)).into_bytes()),
        ("negative port".into(), b"{\"op\":\"register\",\"sid\":\"71db447e1de5337e\",\"port\":-1,\"pid\":1}\n".to_vec()),
        ("empty object".into(), b"{}\n".to_vec()),
        ("null op".into(), b"{\"op\":null}\n".to_vec()),
        ("unknown op".into(), b"{\"op\":\"unregister\",\"sid\":\"71db447e1de5337e\"}\n".to_vec()),
        ("kill".into(), b"{\"op\":\"kill\"}\n".to_vec()),
        ("upper case op".into(), b"{\"op\":\"STATUS\"}\n".to_vec()),
        ("unknown field".into(), b"{\"op\":\"status\",\"all\":true}\n".to_vec()),
        ("missing fields".into(), b"{\"op\":\"register\"}\n".to_vec()),
        ("duplicate op".into(), b"{\"op\":\"status\",\"op\":\"register\"}\n".to_vec()),
        ("trailing bytes".into(), b"{\"op\":\"status\"} {\"op\":\"status\"}\n".to_vec()),
        ("bad sid".into(), b"{\"op\":\"register\",\"sid\":\"71DB\",\"port\":1,\"pid\":2}\n".to_vec()),
        ("response as request".into(), b"{\"result\":\"registered\",\"port\":60001}\n".to_vec()),
    ];
    for i in 0..20 {
        let mut junk = vec![0u8; 1 + (rng.next() % 2000) as usize];
        rng.fill(&mut junk);
        junk.push(b'\n');
        cases.push((format!("random bytes {i}"), junk));
    }
    // Each from its own uid: one uid's connection rate would otherwise
    // refuse some unanswered, and the point here is the answer.
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let answer = m.exchange_as(OTHER_UIDS + i as u32, bytes);
        let reason = refusal(&answer);
        assert!(reason.len() < 300 && !reason.contains('\n'), "{what}: {reason}");
        assert!(m.running(), "moshd exited on {what}");
    }
    m.assert_serves(ANSWER_WITHIN, "garbage");
}

/// An unknown op whose name is long and not ASCII: serde_json quotes the
/// name in its error, and mux-proto cuts that text at byte 200; where byte
/// 200 falls inside a character, `String::truncate` panics (found while
/// writing the control fuzz target, which finds it too; the inputs are kept
/// in tests/fuzz/crashes/control/). The panic unwinds only the
/// connection's task, so moshd keeps running and serving others, but the
/// caller gets no answer, and the task never reaches
/// `ControlBudget::release`: each such request leaks one of its uid's 8
/// connection slots and one of the 64, for good.
///
/// Asserts what must hold today (moshd runs and serves other users) and
/// prints what it saw of the leak: the evidence for the report. When both
/// bugs are fixed, the prints say "refused" and "served".
#[test]
fn unknown_op_with_a_long_non_ascii_name() {
    needs_root!();
    let mut m = Moshd::start("utf8op", "debug");
    let bad = |n: usize| format!("{{\"op\":\"{}\"}}\n", "\u{e9}".repeat(n)).into_bytes();
    let mut panicked = 0;
    // 91 characters: byte 200 is a boundary; 92 and more: it is not.
    for n in [91, 92, 120, 1000, 93, 94, 95, 96, 97] {
        let answer = m.exchange_as(ATTACKER, &bad(n));
        match decode_response(&answer) {
            Ok(Response::Refused { reason }) => eprintln!("op of {n} x U+00E9: refused ({} bytes)", reason.len()),
            _ => {
                panicked += 1;
                eprintln!("op of {n} x U+00E9: no answer {:?}", String::from_utf8_lossy(&answer));
            }
        }
        m.assert_serves(ANSWER_WITHIN, "an unknown op with a long non-ASCII name");
    }
    let panics = m.log().lines().filter(|l| l.contains("panicked")).count();
    let first = m.log().lines().find(|l| l.contains("panicked")).map(str::to_owned);
    eprintln!("{panicked} requests unanswered; moshd's log shows {panics} panics, first: {first:?}");
    let same_uid = |m: &Moshd| match decode_response(&m.exchange_as(ATTACKER, &encode_line(&Request::Status(StatusQuery {})))) {
        Ok(Response::Status(_)) => "served",
        _ => "refused",
    };
    // Found by AFL: cutting serde's message inside a character panicked the
    // connection task, which then never gave its slot back.
    assert_eq!(panicked, 0, "every such request gets a refusal with a reason");
    assert_eq!(panics, 0, "no panic in moshd: {first:?}");
    assert_eq!(same_uid(&m), "served", "the same uid keeps its share");
    m.assert_serves(ANSWER_WITHIN, "after requests with long non-ASCII names");
}

#[test]
fn dribbling_clients_are_cut_at_the_connection_timeout() {
    needs_root!();
    let mut m = Moshd::start("dribble", "debug");
    // A valid request, led by blanks so that at one byte a second its
    // newline would come 5 s after moshd's timeout.
    let mut request = vec![b' '; 4];
    request.extend_from_slice(&encode_line(&Request::Status(StatusQuery {})));
    assert!(request.len() as u64 >= CONNECTION_TIMEOUT.as_secs() + 5);
    let t0 = Instant::now();
    // As many dribblers as one uid may hold.
    let conns: Vec<UnixStream> = (0..MAX_PER_UID).map(|_| m.connect_as(ATTACKER)).collect();
    let dribblers: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            let request = request.clone();
            std::thread::spawn(move || {
                // One byte a second, until moshd hangs up.
                let mut wrote = 0;
                for b in &request {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    wrote += 1;
                    // Wait a second, noticing at once if moshd hangs up.
                    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                    let mut buf = [0u8; 256];
                    match s.read(&mut buf) {
                        Ok(0) => return (wrote, Instant::now(), Vec::new()),
                        Ok(n) => return (wrote, Instant::now(), buf[..n].to_vec()),
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => return (wrote, Instant::now(), Vec::new()),
                    }
                }
                (wrote, Instant::now(), Vec::new())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A ninth connection of the same uid is over its share: closed at once.
    let ninth = m.connect_as(ATTACKER);
    std::thread::sleep(Duration::from_millis(200));
    let why = refused_at_once(&ninth);
    assert!(why.contains(&format!("you already have {MAX_PER_UID} control connections open")), "{why}");
    // Everyone else is served meanwhile.
    let mut served = 0;
    while t0.elapsed() < Duration::from_secs(10) {
        m.assert_serves(ANSWER_WITHIN, "dribbling clients, while they dribble");
        served += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    for d in dribblers {
        let (wrote, closed_at, answer) = d.join().unwrap();
        let after = closed_at.duration_since(t0);
        assert!(answer.is_empty(), "a dribbler was answered: {:?}", String::from_utf8_lossy(&answer));
        assert!(wrote < request.len(), "a dribbler got its whole request in");
        assert!(
            after >= CONNECTION_TIMEOUT - Duration::from_secs(1) && after < CONNECTION_TIMEOUT + Duration::from_secs(4),
            "dribbler cut after {after:?} ({wrote} bytes)"
        );
    }
    eprintln!("{MAX_PER_UID} dribblers cut at ~{CONNECTION_TIMEOUT:?}; {served} status requests of another uid served meanwhile");
    m.assert_serves(ANSWER_WITHIN, "dribbling clients");
}

#[test]
fn connection_bursts_of_one_user_are_rate_limited() {
    needs_root!();
    let mut m = Moshd::start("burst", "debug");
    // 100 status requests from one uid, back to back: the burst (20) and
    // what the rate (10/s) adds meanwhile are answered, the rest refused
    // with the reason; others are served.
    let t0 = Instant::now();
    let mut answered = 0;
    for _ in 0..100 {
        match decode_response(&m.exchange_as(ATTACKER, &encode_line(&Request::Status(StatusQuery {})))) {
            Ok(Response::Status(_)) => answered += 1,
            Ok(Response::Refused { reason }) => {
                assert!(reason.contains("too many new control connections from you"), "{reason}")
            }
            other => panic!("neither served nor refused: {other:?}"),
        }
    }
    let allowed = 20 + (10.0 * t0.elapsed().as_secs_f64()).ceil() as usize;
    eprintln!("100 back-to-back requests of one uid in {:?}: {answered} answered", t0.elapsed());
    assert!((20..=allowed).contains(&answered), "{answered} of 100 answered, expected 20 to {allowed}");
    m.assert_serves(ANSWER_WITHIN, "a burst of connections");
}

/// Opens `n` idle control connections, each as `uid(i)`.
fn hold(m: &Moshd, n: usize, uid: impl Fn(usize) -> u32) -> Vec<UnixStream> {
    (0..n).map(|i| m.connect_as(uid(i))).collect()
}

#[test]
fn idle_connections_of_one_user_fill_only_its_share() {
    needs_root!();
    let mut m = Moshd::start("idle1", "debug");
    let idle = hold(&m, MAX_CONNECTIONS + 6, |_| ATTACKER);
    std::thread::sleep(Duration::from_millis(300));
    let said: Vec<Vec<u8>> = idle.iter().filter_map(said_before_closing).collect();
    let refused = said.len();
    assert_eq!(refused, idle.len() - MAX_PER_UID, "a uid holds its share of {MAX_PER_UID} and no more");
    for answer in &said {
        let why = refusal(answer);
        assert!(why.contains("control connections open to moshd, the most one user may"), "{why}");
    }
    let took = m.assert_serves(ANSWER_WITHIN, "70 idle connections of one uid");
    eprintln!("70 idle connections of one uid: {} held, others served after {took:?}", idle.len() - refused);
}

#[test]
fn idle_connections_of_eight_users_leave_everyone_else_served() {
    needs_root!();
    let mut m = Moshd::start("idle8", "debug");
    // Eight uids hold their whole share each (64 connections, which used to
    // be every slot moshd had); one more each is refused.
    let per = MAX_PER_UID;
    let idle = hold(&m, 8 * per, |i| OTHER_UIDS + (i / per) as u32);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(idle.iter().filter(|s| closed_by_peer(s)).count(), 0, "all 64 are held");
    let extra = connect_as(&m.socket(), OTHER_UIDS).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let why = refused_at_once(&extra);
    assert!(why.contains("control connections open to moshd"), "a ninth connection of one uid is refused: {why}");
    // Everyone else is served at once, far from the global cap.
    let took = m.assert_serves(ANSWER_WITHIN, "64 idle connections of 8 uids");
    eprintln!("64 idle connections of 8 uids: another uid served after {took:?} (cap {MAX_CONNECTIONS})");
    // A uid that closes its connections gets its share back at once.
    drop(idle);
    std::thread::sleep(Duration::from_millis(100));
    let again = connect_as(&m.socket(), OTHER_UIDS).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!closed_by_peer(&again), "the share is free again once its connections close");
}

#[test]
fn users_reconnecting_at_their_share_do_not_starve_others() {
    needs_root!();
    let mut m = Moshd::start("hog", "info");
    let stop = Arc::new(AtomicBool::new(false));
    let reconnects = Arc::new(AtomicU64::new(0));
    let socket = m.socket();
    let hog = {
        let (stop, reconnects) = (stop.clone(), reconnects.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut held: Vec<Vec<UnixStream>> = (0..8).map(|_| Vec::new()).collect();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for (u, conns) in held.iter_mut().enumerate() {
                    conns.retain(|s| !closed_by_peer(s));
                    while conns.len() < MAX_PER_UID {
                        match connect_as(&socket, OTHER_UIDS + u as u32) {
                            Ok(s) => conns.push(s),
                            Err(_) => break,
                        }
                        reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let (mut ok, mut refused) = (0, 0);
    while t0.elapsed() < Duration::from_secs(5) {
        match m.try_status(Duration::from_millis(500)) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    hog.join().unwrap();
    eprintln!(
        "8 uids keeping their shares full for {:?} ({} connects): another uid's status requests: \
         {ok} served, {refused} refused",
        t0.elapsed(),
        reconnects.load(Ordering::Relaxed)
    );
    assert_eq!(refused, 0, "another user was refused while 8 users held their shares");
    assert!(ok > 10);
    assert!(m.running());
}

#[test]
fn random_datagram_flood_leaves_a_session_relaying() {
    const FLOOD_MAX: u64 = 200_000;
    const FLOOD_TIME: Duration = Duration::from_secs(4);
    let mut m = Moshd::start("flood", "info");
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let sid = Sid([0x42; 8]);
    let reg = Request::Register(Registration {
        sid,
        port: server.local_addr().unwrap().port(),
        pid: std::process::id(),
        ssh_client: None,
    });
    let mut s = UnixStream::connect(m.socket()).unwrap();
    s.write_all(&encode_line(&reg)).unwrap();
    assert_eq!(decode_response(&read_line(&mut s).unwrap()).unwrap(), Response::Registered { port: m.port });

    // The synthetic mosh-server: echo every datagram back on its candidate.
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = server.recv_from(&mut buf) {
                    buf[0] |= 0x80; // a server-to-client nonce
                    let _ = server.send_to(&buf[..n], from);
                }
            }
        })
    };

    // The flood: random bytes, random lengths, from four sockets; a third
    // of it framed with random sids, a third raw (direction bit clear).
    let flood_sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, flood_sent, target) = (stop.clone(), flood_sent.clone(), m.addr());
        std::thread::spawn(move || {
            let socks: Vec<UdpSocket> = (0..4).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
            let mut rng = Rng(0x666c_6f6f_6421);
            let mut buf = [0u8; 1400];
            let t0 = Instant::now();
            let mut n = 0u64;
            while n < FLOOD_MAX && t0.elapsed() < FLOOD_TIME && !stop.load(Ordering::Relaxed) {
                let len = (rng.next() % 1400) as usize;
                rng.fill(&mut buf[..len]);
                match n % 3 {
                    0 if len > 0 => buf[0] = 0xB1,
                    1 if len > 0 => buf[0] &= 0x7f,
                    _ => {}
                }
                let _ = socks[(n % 4) as usize].send_to(&buf[..len], target);
                n += 1;
            }
            flood_sent.store(n, Ordering::Relaxed);
        })
    };

    // The session's client: one framed datagram every 5 ms, for the flood's
    // duration; count the echoes that come back.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut sent = 0u32;
    let mut echoed = std::collections::BTreeSet::new();
    fn recv(client: &UdpSocket, echoed: &mut std::collections::BTreeSet<u32>) {
        let mut buf = [0u8; 2048];
        while let Ok(n) = client.recv(&mut buf) {
            if n >= 4 + 24 {
                echoed.insert(u32::from_le_bytes(buf[1..5].try_into().unwrap()));
            }
        }
    }
    let t0 = Instant::now();
    while t0.elapsed() < FLOOD_TIME {
        let mut body = [0x05u8; 60];
        body[1..5].copy_from_slice(&sent.to_le_bytes());
        let mut h = [0u8; HEADER_LEN];
        encode_header(sid, &mut h);
        let _ = client.send_to(&[&h[..], &body[..]].concat(), m.addr());
        sent += 1;
        recv(&client, &mut echoed);
        std::thread::sleep(Duration::from_millis(4));
    }
    flood.join().unwrap();
    client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    recv(&client, &mut echoed);
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();

    let flood_n = flood_sent.load(Ordering::Relaxed);
    let report = m.try_status(ANSWER_WITHIN).expect("status after the flood");
    let dropped: u64 = ["too_short", "unknown_magic", "unknown_sid", "unknown_source"]
        .iter()
        .map(|k| report.counters.get(*k).copied().unwrap_or(0))
        .sum();
    let session = &report.sessions[0];
    eprintln!(
        "flood: {flood_n} random datagrams in {FLOOD_TIME:?}, {dropped} counted as dropped by moshd; \
         session: {sent} sent, {} echoed ({:.1}%), to_server_packets {}, candidates {}",
        echoed.len(),
        100.0 * echoed.len() as f64 / f64::from(sent),
        session.to_server_packets,
        session.candidates
    );
    assert!(m.running(), "moshd exited under the flood");
    assert!(flood_n >= 10_000, "the flood was too weak to mean anything ({flood_n})");
    assert_eq!(session.candidates, 1, "random datagrams opened candidates");
    // Loopback drops only where a socket buffer overflows; the session's
    // datagrams must overwhelmingly get through (98-100% seen on 2 CPUs).
    assert!(
        echoed.len() as f64 >= 0.8 * f64::from(sent),
        "only {} of {sent} session datagrams got through the flood",
        echoed.len()
    );
    m.assert_serves(ANSWER_WITHIN, "the datagram flood");
}
