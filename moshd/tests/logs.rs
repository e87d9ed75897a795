//! moshd's log, read from its stderr: one line per session event
//! (registered, client confirmed, client moved, ended, refused and why),
//! and never a datagram's payload, even at debug.

mod common;

use common::*;
use mosh_mux_proto::control::Response;
use mosh_mux_proto::Sid;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Bytes no log line may contain.
const PAYLOAD: &[u8] = b"\x05PAYLOAD-never-logged-4242";

/// Lines of `log` with `event` as their message.
fn lines_with<'a>(log: &'a str, event: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(&format!(" {event} ")) || l.ends_with(&format!(" {event}"))).collect()
}

#[test]
fn one_line_per_session_event() {
    let m = Moshd::start("events", "log_level = \"debug\"\n", &[]);
    // A mosh-server stand-in that exits when told: a child process.
    let mut inner = Command::new("python3")
        .args(["-c", "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',0))\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()\n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(inner.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let inner_port: u16 = line.trim().parse().unwrap();
    let sid = Sid([0x81; 8]);
    let reg = mosh_mux_proto::control::Registration { sid, port: inner_port, pid: inner.id(), ssh_client: None };
    let r = m.request(&mosh_mux_proto::control::Request::Register(reg));
    assert_eq!(r, Response::Registered { port: m.port });

    // A session of our own to confirm and move a client on (we play its mosh-server).
    let server = udp();
    let own = Sid([0x82; 8]);
    assert_eq!(m.register(own, server.local_addr().unwrap().port()), Response::Registered { port: m.port });
    let (a, b) = (udp(), udp());
    a.send_to(&framed(own, PAYLOAD), m.addr()).unwrap();
    let (_, cand_a) = recv(&server).unwrap();
    server.send_to(PAYLOAD, cand_a).unwrap();
    recv(&a).expect("a is confirmed");
    b.send_to(&framed(own, PAYLOAD), m.addr()).unwrap();
    let (_, cand_b) = recv(&server).unwrap();
    server.send_to(PAYLOAD, cand_b).unwrap();
    recv(&b).expect("the client moved to b");

    // Refused: a sid in use.
    let why = match m.register(own, udp().local_addr().unwrap().port()) {
        Response::Refused { reason } => reason,
        other => panic!("{other:?}"),
    };
    // Ended: the first session's mosh-server exits.
    drop(inner.stdin.take());
    inner.wait().unwrap();
    assert!(m.wait_log("session ended"), "{}", m.log());

    let log = m.log();
    let registered = lines_with(&log, "session registered");
    assert_eq!(registered.len(), 2, "{log}");
    assert!(registered[0].contains(&format!("sid={sid}")) && registered[0].contains(&format!("port={inner_port}")), "{}", registered[0]);
    assert!(registered[0].contains(&format!("pid={}", inner.id())) && registered[0].contains("uid="), "{}", registered[0]);
    let confirmed = lines_with(&log, "client confirmed");
    assert_eq!(confirmed.len(), 1, "{log}");
    assert!(confirmed[0].contains(&format!("client={}", a.local_addr().unwrap())) && confirmed[0].contains("framed"), "{}", confirmed[0]);
    let moved = lines_with(&log, "client moved");
    assert_eq!(moved.len(), 1, "{log}");
    let want = format!("from={} to={}", a.local_addr().unwrap(), b.local_addr().unwrap());
    assert!(moved[0].contains(&format!("sid={own}")) && moved[0].contains(&want), "{}", moved[0]);
    let refused = lines_with(&log, "registration refused");
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains(&format!("reason={why}")) && refused[0].contains(&format!("sid={own}")), "{}", refused[0]);
    let ended = lines_with(&log, "session ended");
    assert_eq!(ended.len(), 1, "{log}");
    assert!(ended[0].contains(&format!("sid={sid}")), "{}", ended[0]);

    // Every line is one event at a level, with a timestamp (not under journald).
    for l in log.lines() {
        assert!(l.starts_with("20") && (l.contains(" INFO ") || l.contains(" DEBUG ") || l.contains(" WARN ")), "{l}");
    }
    let text = String::from_utf8_lossy(PAYLOAD[1..].as_ref()).into_owned();
    let hex: String = PAYLOAD[1..].iter().map(|b| format!("{b:02x}")).collect();
    // Debug formatting of a byte slice: "[80, 65, 89, ...]", and its hex run with spaces.
    let decimal = format!("{:?}", &PAYLOAD[1..9]);
    let decimal = &decimal[1..decimal.len() - 1];
    let spaced: Vec<String> = PAYLOAD[1..9].iter().map(|b| format!("{b:02x}")).collect();
    for form in [text.as_str(), hex.as_str(), decimal, &spaced.join(" ")] {
        assert!(!log.contains(form), "a payload reached the log as {form:?}:\n{log}");
    }
}
