//! What the systemd unit relies on, without systemd: readiness and reload
//! notifications on $NOTIFY_SOCKET (Type=notify), the journal's line format
//! under $JOURNAL_STREAM, and the directories RuntimeDirectory= and
//! StateDirectory= export as defaults; the directories moshd makes itself
//! (private for the state, reachable for the socket); and a second moshd on
//! the same socket refusing to start, with the message the README lists.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::Duration;

fn next_message(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn tells_systemd_when_it_is_ready_and_when_it_reloads() {
    let dir = scratch("notify");
    let notify = UnixDatagram::bind(dir.join("notify.sock")).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::fs::write(dir.join("moshd.toml"), "").unwrap();
    let socket = dir.join("control.sock");
    let port = free_port();
    let args: Vec<String> = [
        "--config",
        &dir.join("moshd.toml").display().to_string(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--control-socket",
        &socket.display().to_string(),
        "--state-file",
        &dir.join("state.json").display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let notify_path = dir.join("notify.sock").display().to_string();
    let m = Moshd { child: spawn(&dir, &args, &[("NOTIFY_SOCKET", &notify_path)]), dir: dir.clone(), port, socket: socket.clone() };

    assert_eq!(next_message(&notify), "READY=1\nSTATUS=serving\n");
    assert!(UnixStream::connect(&socket).is_ok(), "ready means the control socket answers");

    m.hup();
    assert_reloading(&next_message(&notify));
    assert_eq!(next_message(&notify), "READY=1\nSTATUS=serving; configuration reloaded\n");
    // A broken file is not applied, and moshd is ready again all the same.
    std::fs::write(dir.join("moshd.toml"), "bogus = 1\n").unwrap();
    m.hup();
    assert_reloading(&next_message(&notify));
    assert!(next_message(&notify).starts_with("READY=1\n"));
}

/// "RELOADING=1" with the monotonic time (now, within a minute: the same
/// clock as this process's CLOCK_MONOTONIC).
fn assert_reloading(message: &str) {
    let usec = message
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|rest| rest.strip_suffix('\n'))
        .and_then(|n| n.parse::<i128>().ok())
        .unwrap_or_else(|| panic!("not a reload notice with the time: {message:?}"));
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `now`.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) }, 0);
    let now_usec = i128::from(now.tv_sec) * 1_000_000 + i128::from(now.tv_nsec) / 1000;
    assert!((now_usec - usec).abs() < 60_000_000, "MONOTONIC_USEC={usec}, now {now_usec}");
}

#[test]
fn journal_lines_carry_a_priority_and_no_timestamp() {
    let dir = scratch("journal");
    let log_path = dir.join("moshd.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = log.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let socket = dir.join("control.sock");
    let port = free_port();
    let child = std::process::Command::new(MOSHD)
        .args(["--config", "/dev/null", "--listen", &format!("127.0.0.1:{port}"), "--log-level", "info"])
        .arg("--control-socket")
        .arg(&socket)
        .arg("--state-file")
        .arg(dir.join("state.json"))
        .env("JOURNAL_STREAM", &stream)
        .stderr(log)
        .spawn()
        .unwrap();
    let m = Moshd { child, dir: dir.clone(), port, socket: socket.clone() };
    m.wait_serving(&socket);
    let text = m.log();
    // Every line has a priority; moshd ready is an info line. (A warning
    // about the descriptor limit may come first, where the hard limit is low.)
    let has_priority = |l: &str| matches!(l.as_bytes(), [b'<', d, b'>', ..] if d.is_ascii_digit());
    assert!(text.lines().all(has_priority), "{text}");
    let ready = text.lines().find(|l| l.contains("moshd ready")).unwrap_or_default();
    assert!(ready.starts_with("<6>moshd ready listen="), "{text}");
    assert!(!text.contains('\x1b'), "no colour: {text:?}");
}

#[test]
fn a_journal_stream_that_is_not_stderr_changes_nothing() {
    let m = Moshd::start_env("notjournal", "", &[], &[("JOURNAL_STREAM", "1:2")]);
    let log = m.log();
    assert!(log.starts_with("20") && log.contains(" INFO moshd ready"), "{log}");
}

#[test]
fn systemd_directories_are_the_defaults() {
    let dir = scratch("sysdirs");
    let (run_dir, state_dir) = (dir.join("run"), dir.join("state"));
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::create_dir_all(&state_dir).unwrap();
    let port = free_port();
    let args = ["--config", "/dev/null", "--listen", &format!("127.0.0.1:{port}")].map(String::from).to_vec();
    let env = [("RUNTIME_DIRECTORY", run_dir.to_str().unwrap()), ("STATE_DIRECTORY", state_dir.to_str().unwrap())];
    let socket = run_dir.join("control.sock");
    let m = Moshd { child: spawn(&dir, &args, &env), dir: dir.clone(), port, socket: socket.clone() };
    m.wait_serving(&socket);
    assert!(eventually(5, || state_dir.join("state.json").exists()), "{}", m.log());
}

#[test]
fn a_second_moshd_on_the_same_socket_says_so() {
    let m = Moshd::start("twice", "", &[]);
    let sock = m.socket.display().to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let state = m.dir.join("other.json").display().to_string();
    let (code, _, err) =
        run(&["--config", "/dev/null", "--listen", &listen, "--control-socket", &sock, "--state-file", &state], &[]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().last(), Some(format!("moshd: control socket {sock} is in use by another moshd").as_str()), "{err}");
    assert_eq!(m.status().listen, [format!("127.0.0.1:{}", m.port)], "the first one still serves");
}

#[test]
fn directories_moshd_makes_are_private_unless_the_socket_is_there() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("mkdirs");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The socket and the state file in one missing directory: every user must reach the socket.
    let shared = dir.join("shared");
    let socket = shared.join("control.sock");
    let port = free_port();
    let args = ["--config", "/dev/null", "--listen", &format!("127.0.0.1:{port}"), "--control-socket", socket.to_str().unwrap()]
        .map(String::from)
        .into_iter()
        .chain(["--state-file".to_owned(), shared.join("state.json").display().to_string()])
        .collect::<Vec<_>>();
    let m = Moshd { child: spawn(&dir, &args, &[]), dir: dir.clone(), port, socket: socket.clone() };
    m.wait_serving(&socket);
    assert_eq!(mode(&shared), 0o755);
    drop(m);
    // The state file alone in a missing directory (two levels): private, its parent not.
    let dir = scratch("mkdirs2");
    let state_dir = dir.join("a/moshd");
    let socket = dir.join("control.sock");
    let port = free_port();
    let args = ["--config", "/dev/null", "--listen", &format!("127.0.0.1:{port}"), "--control-socket", socket.to_str().unwrap()]
        .map(String::from)
        .into_iter()
        .chain(["--state-file".to_owned(), state_dir.join("state.json").display().to_string()])
        .collect::<Vec<_>>();
    let m = Moshd { child: spawn(&dir, &args, &[]), dir: dir.clone(), port, socket: socket.clone() };
    m.wait_serving(&socket);
    assert_eq!((mode(&state_dir), mode(&dir.join("a"))), (0o700, 0o755));
}
