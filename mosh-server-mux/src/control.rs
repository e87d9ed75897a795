//! Talking to moshd over its control socket: reach it, register, read the verdict.
//!
//! Reaching moshd decides the mode (unreachable means direct mode), so the
//! connect is bounded in time. The request is one line and so is the reply;
//! the reply is read under one deadline and a length cap, and anything but
//! a well-formed verdict is an error with a cause a person can act on.

use crate::lines::{read_capped_line, DeadlineReader};
use mosh_mux_proto::control::{
    decode_response, encode_line, Registration, Request, Response, MAX_RESPONSE_LEN,
};
use std::io::{self, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest refusal reason shown to the user.
const MAX_REASON_CHARS: usize = 300;

/// Connects to moshd's socket, giving up after `timeout`. A blocking
/// connect to a Unix socket whose backlog is full would wait forever, so
/// it runs on a thread that is abandoned on timeout.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let (tx, rx) = mpsc::channel();
    let owned: PathBuf = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(owned));
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
    }
}

/// A short cause for "moshd is not reachable at PATH (<cause>)".
pub fn unreachable_cause(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::TimedOut => format!("no answer within {} s", timeout.as_secs()),
        _ => without_os_error(e),
    }
}

/// "Not a directory (os error 20)" -> "not a directory".
fn without_os_error(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".to_owned(),
    }
}

/// The first field of $SSH_CONNECTION ("client-ip client-port server-ip server-port").
pub fn ssh_client(ssh_connection: Option<&str>) -> Option<IpAddr> {
    ssh_connection?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// moshd's verdict on a registration.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Clients should send to this public UDP port.
    Registered(u16),
    /// Refused, with a reason fit to print on one line.
    Refused(String),
}

/// Sends the registration and reads moshd's verdict. The error text names
/// the cause (timeout, closed connection, invalid reply).
pub fn register(stream: &UnixStream, reg: Registration) -> Result<Verdict, String> {
    let request = encode_line(&Request::Register(reg));
    let sent = stream
        .set_write_timeout(Some(REPLY_TIMEOUT))
        .and_then(|_| (&mut &*stream).write_all(&request))
        .and_then(|_| (&mut &*stream).flush());
    if let Err(e) = sent {
        // moshd may have refused the connection itself (too many at once),
        // saying why before it closed: that line is the better message.
        return match read_verdict(stream) {
            Ok(verdict) => Ok(verdict),
            Err(_) => Err(format!("cannot send the registration to moshd: {}", io_cause(&e))),
        };
    }
    read_verdict(stream)
}

/// Reads moshd's one-line reply, under `REPLY_TIMEOUT`.
fn read_verdict(stream: &UnixStream) -> Result<Verdict, String> {
    let mut reader = BufReader::new(DeadlineReader::new(stream, REPLY_TIMEOUT));
    let line = read_capped_line(&mut reader, MAX_RESPONSE_LEN)
        .map_err(|e| format!("no reply from moshd: {}", io_cause(&e)))?
        .ok_or_else(|| "moshd closed the connection without replying".to_owned())?;
    if line.truncated {
        return Err(format!(
            "moshd's reply is longer than {MAX_RESPONSE_LEN} bytes"
        ));
    }
    verdict(&line.bytes)
}

fn io_cause(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("timed out after {} s", REPLY_TIMEOUT.as_secs())
        }
        _ => without_os_error(e),
    }
}

/// Decides what a reply line means.
pub fn verdict(line: &[u8]) -> Result<Verdict, String> {
    match decode_response(line) {
        Ok(Response::Registered { port: 0 }) => Err("moshd replied with port 0".to_owned()),
        Ok(Response::Registered { port }) => Ok(Verdict::Registered(port)),
        Ok(Response::Refused { reason }) => Ok(Verdict::Refused(printable(&reason))),
        Ok(Response::Status(_)) => {
            Err("moshd replied with a status report, not a verdict".to_owned())
        }
        Err(e) => Err(format!("moshd's reply is not valid: {e}")),
    }
}

/// One line, no control characters, bounded: safe to put on a terminal.
fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    if text.chars().count() > MAX_REASON_CHARS {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{BufRead, Read};

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict(br#"{"result":"registered","port":60001}"#),
            Ok(Verdict::Registered(60001))
        );
        assert_eq!(
            verdict(b"{\"result\":\"refused\",\"reason\":\"port not yours\\u001b[2J\\n\"}\n"),
            Ok(Verdict::Refused("port not yours [2J ".to_owned()))
        );
        assert!(verdict(br#"{"result":"registered","port":0}"#).is_err());
        assert!(verdict(br#"{"result":"status","listen":[],"sessions":[]}"#).is_err());
        assert!(verdict(b"garbage").unwrap_err().contains("not valid"));
        assert!(verdict(b"").is_err());
    }

    #[test]
    fn long_reasons_are_cut() {
        let reason = "x".repeat(1000);
        let line = format!(r#"{{"result":"refused","reason":"{reason}"}}"#);
        let Ok(Verdict::Refused(r)) = verdict(line.as_bytes()) else {
            panic!()
        };
        assert_eq!(r.len(), MAX_REASON_CHARS + 3);
    }

    #[test]
    fn ssh_connection() {
        assert_eq!(
            ssh_client(Some("198.51.100.2 54321 198.51.100.1 22")),
            Some([198, 51, 100, 2].into())
        );
        assert_eq!(
            ssh_client(Some("::1 54321 ::1 22")),
            Some("::1".parse().unwrap())
        );
        assert_eq!(ssh_client(Some("bogus 1 2 3")), None);
        assert_eq!(ssh_client(Some("")), None);
        assert_eq!(ssh_client(None), None);
    }

    #[test]
    fn causes() {
        let t = CONNECT_TIMEOUT;
        assert_eq!(
            unreachable_cause(&io::Error::from(io::ErrorKind::NotFound), t),
            "no such file"
        );
        assert_eq!(
            unreachable_cause(&io::Error::from_raw_os_error(20), t),
            "not a directory"
        );
        assert_eq!(
            unreachable_cause(&io::Error::from(io::ErrorKind::TimedOut), t),
            "no answer within 2 s"
        );
    }

    #[test]
    fn connect_to_missing_and_dead_sockets() {
        let dir = std::env::temp_dir().join(format!("msm-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let e = connect(&path, CONNECT_TIMEOUT).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = connect(&path, CONNECT_TIMEOUT).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn exchange(reply: &'static [u8]) -> Result<Verdict, String> {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(&theirs).read_line(&mut line).unwrap();
            (&theirs).write_all(reply).unwrap();
            line
        });
        let reg = Registration {
            sid: "0123456789abcdef".parse().unwrap(),
            port: 5,
            pid: 9,
            ssh_client: None,
        };
        let v = register(&ours, reg.clone());
        let sent = peer.join().unwrap();
        assert_eq!(
            mosh_mux_proto::control::decode_request(sent.as_bytes()).unwrap(),
            Request::Register(reg)
        );
        v
    }

    #[test]
    fn register_round_trips() {
        assert_eq!(
            exchange(b"{\"result\":\"registered\",\"port\":60001}\n"),
            Ok(Verdict::Registered(60001))
        );
        assert_eq!(
            exchange(b"{\"result\":\"refused\",\"reason\":\"no\"}"),
            Ok(Verdict::Refused("no".into()))
        );
        assert_eq!(
            exchange(b""),
            Err("moshd closed the connection without replying".into())
        );
    }

    #[test]
    fn a_refusal_written_before_moshd_hung_up_is_the_verdict() {
        // moshd refuses the connection itself (over a connection budget):
        // one line, then close, before the registration is written.
        let reg = Registration {
            sid: "0123456789abcdef".parse().unwrap(),
            port: 5,
            pid: 9,
            ssh_client: None,
        };
        let (ours, theirs) = UnixStream::pair().unwrap();
        (&theirs)
            .write_all(b"{\"result\":\"refused\",\"reason\":\"too many\"}\n")
            .unwrap();
        drop(theirs);
        assert_eq!(register(&ours, reg.clone()), Ok(Verdict::Refused("too many".into())));
        // Closed without a word: the send's own error.
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let err = register(&ours, reg).unwrap_err();
        assert!(err.starts_with("cannot send the registration to moshd: "), "{err}");
    }

    #[test]
    fn silent_moshd_times_out() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let reg = Registration {
            sid: "0123456789abcdef".parse().unwrap(),
            port: 5,
            pid: 9,
            ssh_client: None,
        };
        let start = std::time::Instant::now();
        let err = register(&ours, reg).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(start.elapsed() < REPLY_TIMEOUT + Duration::from_secs(2));
        let mut sink = Vec::new();
        drop(ours);
        (&theirs).read_to_end(&mut sink).unwrap();
    }

    proptest! {
        #[test]
        fn arbitrary_replies_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = verdict(&buf);
        }

        #[test]
        fn reasons_are_one_printable_line(reason in "\\PC{0,400}|[\\x00-\\x1f]{0,20}") {
            let p = printable(&reason);
            prop_assert!(!p.chars().any(char::is_control));
            prop_assert!(p.chars().count() <= MAX_REASON_CHARS + 3);
        }
    }
}
