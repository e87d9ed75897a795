//! End-to-end tests of the built mosh-client-mux binary, with a fake stock
//! mosh-client (tests/fake-mosh-client.py) and, for mux mode, a fake moshd
//! on a loopback UDP socket that checks the header and echoes the payload.

use mosh_mux_proto::{Notice, SessionKey, HEADER_LEN, MAGIC_V1};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mosh-client-mux");
const KEY: &str = "gflLFw38EcGhIYzas1qLZA";
const FAKE: &str = include_str!("fake-mosh-client.py");

/// A scratch directory holding an executable copy of the fake client.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mosh-client-mux-it-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let fake = dir.join("fake-mosh-client");
        std::fs::write(&fake, FAKE).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch { dir }
    }

    fn fake(&self) -> PathBuf {
        self.dir.join("fake-mosh-client")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The binary with a clean HOME (no user config), MOSH_KEY set, and the
    /// fake client recording its argv.
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("HOME", self.dir.join("home"))
            .env("MOSH_KEY", KEY)
            .env("FAKE_RECORD", self.path("record.json"))
            .env("FAKE_SIGNALS", self.path("signals"))
            .env_remove("MOSH_MUX_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn record(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("record.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn wait_for(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(self.path(name)) {
                if !text.is_empty() {
                    return text;
                }
            }
            assert!(Instant::now() < deadline, "{name} never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (bounded) for a child; kills it if it hangs.
fn wait_bounded(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mosh-client-mux did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(cmd: &mut Command) -> Output {
    wait_bounded(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fake moshd: checks each datagram's header, records (payload tag, outer
/// source), and echoes the payload without the header.
struct FakeMoshd {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(u8, SocketAddr)>>>,
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeMoshd {
    fn start() -> FakeMoshd {
        FakeMoshd::start_with(false)
    }

    /// With `notice_first`, the first datagram is answered with moshd's
    /// "unknown session" notice before its echo.
    fn start_with(notice_first: bool) -> FakeMoshd {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let sid = SessionKey::parse(KEY).unwrap().sid();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, errors, stop) = (seen.clone(), errors.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let d = &buf[..n];
                    if n <= HEADER_LEN || d[0] != MAGIC_V1 || d[1..HEADER_LEN] != sid.0 {
                        errors.lock().unwrap().push(format!("bad header {d:02x?}"));
                        continue;
                    }
                    let first = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((d[HEADER_LEN], from));
                        seen.len() == 1
                    };
                    if notice_first && first {
                        socket.send_to(&Notice::UnknownSession.encode(), from).unwrap();
                    }
                    socket.send_to(&d[HEADER_LEN..], from).unwrap();
                }
            })
        };
        FakeMoshd {
            addr,
            seen,
            errors,
            stop,
            thread: Some(thread),
        }
    }

    fn mux_port(&self) -> String {
        format!("0{}", self.addr.port())
    }
}

impl Drop for FakeMoshd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn mux_mode_relays_each_client_socket_on_its_own_outer_socket() {
    let s = Scratch::new("mux");
    let moshd = FakeMoshd::start();
    let out = run(s
        .command()
        .env("FAKE_MODE", "echo")
        .env("FAKE_EXIT", "7")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(["-# fake args |", "127.0.0.1", &moshd.mux_port()]));
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert!(
        moshd.errors.lock().unwrap().is_empty(),
        "{:?}",
        moshd.errors
    );
    let seen = moshd.seen.lock().unwrap().clone();
    let tags: Vec<u8> = seen.iter().map(|(tag, _)| *tag).collect();
    assert_eq!(tags, [1, 2, 3]);
    // Socket a (tags 1, 3) and socket b (tag 2) get distinct outer sockets.
    assert_ne!(seen[0].1, seen[1].1);
    assert_eq!(seen[0].1, seen[2].1);
    // The child was pointed at the loopback relay, options unchanged.
    let record = s.record();
    let argv = record["argv"].as_array().unwrap();
    assert_eq!(argv.len(), 3);
    assert_eq!(argv[0], "-# fake args |");
    assert_eq!(argv[1], "127.0.0.1");
    let inner: u16 = argv[2].as_str().unwrap().parse().unwrap();
    assert_ne!(inner, moshd.addr.port());
    assert_eq!(record["mosh_key"], KEY);
    // No signal the relay handles stays blocked in mosh-client. (SigIgn
    // cannot be checked here: Python ignores some signals on its own.)
    let blocked = record["status"]["SigBlk"].as_str().unwrap();
    assert_eq!(u64::from_str_radix(blocked, 16).unwrap(), 0);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn a_terminal_that_takes_no_output_never_stalls_the_data_path() {
    // stderr is a pipe filled to the brim: any write to it blocks until the
    // test reads. moshd's first answer is the "unknown session" notice,
    // which the relay tells the user about; its echoes must still flow.
    let s = Scratch::new("stall");
    let moshd = FakeMoshd::start_with(true);
    let (mut reader, writer) = std::io::pipe().unwrap();
    let fill = |nonblocking: bool| {
        let flags = nix::fcntl::OFlag::from_bits_truncate(nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&writer), nix::fcntl::FcntlArg::F_GETFL).unwrap());
        let flags = if nonblocking { flags | nix::fcntl::OFlag::O_NONBLOCK } else { flags - nix::fcntl::OFlag::O_NONBLOCK };
        nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&writer), nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    };
    fill(true);
    let mut filled = 0;
    while let Ok(n) = std::io::Write::write(&mut &writer, &[b'x'; 4096]) {
        filled += n;
    }
    fill(false);
    let child = s
        .command()
        .env("FAKE_MODE", "echo")
        .env("FAKE_EXIT", "7")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(["-# fake args |", "127.0.0.1", &moshd.mux_port()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer))
        .spawn()
        .unwrap();
    // All three datagrams reach moshd only if the echoes came back through
    // the relay while its message waited for the terminal.
    let deadline = Instant::now() + Duration::from_secs(20);
    while moshd.seen.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = moshd.seen.lock().unwrap().len();
    // Now let the terminal take output again, so that everything ends.
    let drain = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut reader, &mut all);
        all
    });
    let status = wait_bounded(child).status;
    let said = String::from_utf8_lossy(&drain.join().unwrap()[filled..]).into_owned();
    assert_eq!(seen, 3, "the data path stalled behind a message to the terminal");
    assert_eq!(status.code(), Some(7));
    assert!(said.contains("this session is unknown to moshd"), "{said:?}");
}

#[test]
fn mux_mode_child_killed_by_signal_gives_128_plus_signo() {
    let s = Scratch::new("killed");
    let moshd = FakeMoshd::start();
    let out = run(s
        .command()
        .env("FAKE_MODE", "kill-self")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(["-# x |", "127.0.0.1", &moshd.mux_port()]));
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGUSR1),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sigterm_to_the_relay_is_forwarded_and_the_relay_waits_for_the_child() {
    let s = Scratch::new("sigterm");
    let moshd = FakeMoshd::start();
    let child = s
        .command()
        .env("FAKE_MODE", "wait-signal")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(["-# x |", "127.0.0.1", &moshd.mux_port()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    s.wait_for("record.json");
    assert_eq!(s.record()["ppid"], child.id());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = wait_bounded(child);
    // The fake exits 9 after noting the signal; the relay passes that on.
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert_eq!(s.wait_for("signals"), "SIGTERM\n");
}

#[test]
fn child_gets_sighup_when_the_relay_is_killed() {
    let s = Scratch::new("pdeathsig");
    let moshd = FakeMoshd::start();
    let child = s
        .command()
        .env("FAKE_MODE", "wait-signal")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(["-# x |", "127.0.0.1", &moshd.mux_port()])
        .spawn()
        .unwrap();
    s.wait_for("record.json");
    let out = {
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap()
    };
    assert_eq!(out.signal(), Some(libc::SIGKILL));
    // SIGHUP, possibly more than once: as the killed relay's threads exit
    // one by one, the kernel reparents the child to a surviving thread and
    // sends the parent-death signal at each step (seen: 4 runs in 30).
    let signals = s.wait_for("signals");
    assert!(signals.lines().count() >= 1 && signals.lines().all(|l| l == "SIGHUP"), "{signals:?}");
}

#[test]
fn direct_mode_execs_the_stock_client_with_argv_unchanged() {
    let s = Scratch::new("direct");
    let mut cmd = s.command();
    cmd.env("FAKE_EXIT", "5")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(["-# user@host |", "192.0.2.1", "60001"]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = wait_bounded(child);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let record = s.record();
    assert_eq!(
        record["argv"],
        serde_json::json!(["-# user@host |", "192.0.2.1", "60001"])
    );
    // Same pid: the process was replaced, not a child started.
    assert_eq!(record["pid"], pid);
}

#[test]
fn colour_count_help_and_version_pass_through() {
    let s = Scratch::new("pass");
    let out = run(s.command().arg("--mosh-client").arg(s.fake()).arg("-c"));
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"256\n"[..])
    );
    for flag in ["--help", "--version"] {
        let out = run(s
            .command()
            .arg(format!("--mosh-client={}", s.fake().display()))
            .arg(flag));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("fake mosh-client {flag}\n")
        );
    }
    // A usage error of mosh-client's is mosh-client's to report.
    let out = run(s.command().arg("--mosh-client").arg(s.fake()).args(["h"]));
    assert_eq!(s.record()["argv"], serde_json::json!(["h"]));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_stock_client_exits_127_with_one_line() {
    let s = Scratch::new("missing");
    let empty = s.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(s
        .command()
        .env("PATH", &empty)
        .args(["-# x |", "127.0.0.1", "060001"]));
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        stderr(&out),
        "mosh-client-mux: cannot find mosh-client (install mosh, or pass --mosh-client PATH)\n"
    );
    let out = run(s
        .command()
        .arg("--mosh-client")
        .arg(s.path("nope"))
        .arg("-c"));
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn stock_client_is_found_on_path_but_never_ourselves() {
    let s = Scratch::new("path");
    let bin = s.path("bin");
    std::fs::create_dir(&bin).unwrap();
    // Only ourselves under the name mosh-client: not found.
    std::os::unix::fs::symlink(BIN, bin.join("mosh-client")).unwrap();
    let out = run(s.command().env("PATH", &bin).arg("-c"));
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    // A real one later in $PATH is used. (python3 must stay reachable.)
    let real = s.path("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::copy(s.fake(), real.join("mosh-client")).unwrap();
    let path = std::env::join_paths([bin.clone(), real.clone()].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let out = run(s.command().env("PATH", path).arg("-c"));
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"256\n"[..])
    );
}

#[test]
fn config_file_names_the_client_and_its_errors_name_file_and_line() {
    let s = Scratch::new("config");
    let dir = s.path("home/.config/mosh");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mux.toml");
    std::fs::write(
        &file,
        format!("mosh_client = {:?}\n", s.fake().display().to_string()),
    )
    .unwrap();
    let out = run(s.command().arg("-c"));
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"256\n"[..])
    );
    std::fs::write(&file, "# comment\nmosh_client = 5\n").unwrap();
    let out = run(s.command().arg("-c"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("mosh-client-mux: {}: line 2: ", file.display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    std::fs::write(&file, "control_sockt = \"/run/x.sock\"\n").unwrap();
    let out = run(s.command().arg("-c"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "mosh-client-mux: {}: line 1: unknown key `control_sockt`; did you mean `control_socket`?\n",
            file.display()
        )
    );
}

#[test]
fn bad_or_missing_mosh_key_is_one_line_exit_1() {
    let s = Scratch::new("key");
    let moshd = FakeMoshd::start();
    let args = [
        "-# x |".to_owned(),
        "127.0.0.1".to_owned(),
        moshd.mux_port(),
    ];
    let out = run(s
        .command()
        .env("MOSH_KEY", "short")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(&args));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "mosh-client-mux: MOSH_KEY: session key must be 22 base64 characters, got 5\n"
    );
    let out = run(s
        .command()
        .env_remove("MOSH_KEY")
        .arg("--mosh-client")
        .arg(s.fake())
        .args(&args));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(
        !s.path("record.json").exists(),
        "the client must not have run"
    );
    assert!(moshd.seen.lock().unwrap().is_empty());
}

#[test]
fn unknown_own_option_is_one_line_usage_error() {
    let s = Scratch::new("usage");
    let out = run(s.command().args(["--mosh-clinet", "x", "-c"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("mosh-client-mux: ") && err.contains("--mosh-clinet"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn unresolvable_host_is_one_line_exit_1() {
    let s = Scratch::new("resolve");
    let out = run(s
        .command()
        .arg("--mosh-client")
        .arg(s.fake())
        .args(["-# x |", "", "060001"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("mosh-client-mux: cannot resolve"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
}
