//! The built binary against real stock mosh-server, fake moshd listeners
//! and fake mosh-server scripts. Every process a test starts is ended, also
//! when an assertion fails (guards kill on drop).

use mosh_mux_proto::control::{decode_request, encode_line, Request, Response};
use mosh_mux_proto::SessionKey;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mosh-server-mux");
const STOCK: &str = "/usr/bin/mosh-server";
/// No test run of the binary may take longer than this.
const RUN_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- helpers

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("msm-it-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    /// Writes an executable sh script.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a process when dropped (a mosh-server a test saw start).
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.filter(|&p| p > 1 && alive(p)) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGTERM,
                );
            }
        }
    }
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// The binary with a clean environment: HOME in `home`, LANG=C.UTF-8.
fn command(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(mut cmd: Command) -> Run {
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mosh-server-mux ran longer than {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    // Pipes close when the binary exits (mosh-server detaches from them).
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    Run {
        code: status.code(),
        stdout,
        stderr,
        took,
    }
}

fn detached_pid(stderr: &str) -> Option<u32> {
    stderr
        .lines()
        .find_map(mosh_mux_proto::connect_line::parse_detached_pid)
}

/// What the fake moshd saw.
struct Seen {
    request: Request,
    /// The registered port is bound on 127.0.0.1 per /proc/net/udp.
    port_on_loopback: bool,
    pid_alive: bool,
    pid_cmdline: Vec<String>,
}

struct FakeMoshd {
    socket: PathBuf,
    thread: JoinHandle<Option<Seen>>,
}

impl FakeMoshd {
    /// Listens on `dir/control.sock`; answers one request with `reply`
    /// (`None`: close without answering).
    fn start(dir: &Path, reply: Option<Vec<u8>>) -> Self {
        let socket = dir.join("control.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if start.elapsed() < RUN_LIMIT => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return None,
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(RUN_LIMIT)).unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).ok()?;
            if line.is_empty() {
                return None;
            }
            let request = decode_request(line.as_bytes()).unwrap();
            let Request::Register(reg) = &request else {
                panic!("not a registration")
            };
            let seen = Seen {
                port_on_loopback: udp_bound_on_loopback(reg.port),
                pid_alive: alive(reg.pid),
                pid_cmdline: cmdline(reg.pid),
                request,
            };
            if let Some(reply) = reply {
                let _ = (&stream).write_all(&reply);
            }
            Some(seen)
        });
        FakeMoshd { socket, thread }
    }

    fn seen(self) -> Option<Seen> {
        self.thread.join().unwrap()
    }
}

fn udp_bound_on_loopback(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let want = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn registered(port: u16) -> Option<Vec<u8>> {
    Some(encode_line(&Response::Registered { port }))
}

fn refused(reason: &str) -> Option<Vec<u8>> {
    Some(encode_line(&Response::Refused {
        reason: reason.into(),
    }))
}

/// Asserts the binary printed exactly one error line of its own.
fn assert_one_error_line(r: &Run, needle: &str) {
    let ours: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("mosh-server-mux:"))
        .collect();
    assert_eq!(ours.len(), 1, "stderr: {}", r.stderr);
    assert!(
        ours[0].contains(needle),
        "wanted {needle:?} in {:?}",
        ours[0]
    );
}

const KEY_RE_LEN: usize = 22;

fn is_key(s: &str) -> bool {
    s.len() == KEY_RE_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
}

// ---------------------------------------------------------------- (a) mux mode, real mosh-server

#[test]
fn mux_mode_registers_a_real_mosh_server() {
    let dir = TempDir::new("mux");
    let moshd = FakeMoshd::start(dir.path(), registered(60001));
    let mut cmd = command(
        dir.path(),
        &[
            "--control-socket",
            moshd.socket.to_str().unwrap(),
            "--mosh-server",
            STOCK,
            "new",
            "-c",
            "256",
            "-s",
            "-p",
            "60000:60010",
            "-l",
            "LANG=C.UTF-8",
            "--",
            "/bin/sleep",
            "30",
        ],
    );
    cmd.env("SSH_CONNECTION", "198.51.100.2 54321 198.51.100.1 22");
    let r = run(cmd);
    let _server = KillOnDrop(detached_pid(&r.stderr));
    let seen = moshd.seen().expect("moshd got no registration");
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);

    // stdout is exactly one mux-mode MOSH CONNECT line.
    let line = r.stdout.strip_suffix('\n').expect("newline-terminated");
    assert!(!line.contains('\n'), "{:?}", r.stdout);
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(&fields[..3], ["MOSH", "CONNECT", "060001"]);
    let key = fields[3];
    assert!(is_key(key), "{line}");

    let Request::Register(reg) = seen.request else {
        unreachable!()
    };
    assert_eq!(reg.sid, SessionKey::parse(key).unwrap().sid());
    assert!(
        seen.port_on_loopback,
        "port {} not bound on 127.0.0.1",
        reg.port
    );
    assert!(seen.pid_alive);
    assert_eq!(Some(reg.pid), detached_pid(&r.stderr));
    assert_eq!(reg.ssh_client, Some([198, 51, 100, 2].into()));
    // The stock options were rewritten: no -s, no -p range, loopback ephemeral port.
    assert_eq!(
        seen.pid_cmdline,
        [
            "mosh-server",
            "new",
            "-c",
            "256",
            "-l",
            "LANG=C.UTF-8",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "--",
            "/bin/sleep",
            "30"
        ]
    );

    assert!(r.stderr.contains(
        "mosh-server-mux: session registered with moshd; client traffic goes to UDP port 60001"
    ));
    assert!(
        r.stderr.contains("mosh-server (mosh 1.4"),
        "banner passed through: {}",
        r.stderr
    );
    assert!(!r.stderr.contains(key), "the key leaked to stderr");
}

// ---------------------------------------------------------------- (b) refused and broken replies

fn mux_failure(reply: Option<Vec<u8>>, needle: &str) {
    let dir = TempDir::new("refused");
    let moshd = FakeMoshd::start(dir.path(), reply);
    let r = run(command(
        dir.path(),
        &[
            "--control-socket",
            moshd.socket.to_str().unwrap(),
            "--mosh-server",
            STOCK,
            "new",
            "-c",
            "256",
            "-l",
            "LANG=C.UTF-8",
            "--",
            "/bin/sleep",
            "30",
        ],
    ));
    let pid = detached_pid(&r.stderr);
    let _server = KillOnDrop(pid);
    let seen = moshd.seen().expect("moshd got no registration");
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_one_error_line(&r, needle);
    assert_eq!(r.stdout, "");
    let pid = pid.expect("mosh-server started");
    assert!(seen.pid_alive);
    assert!(
        gone_within(pid, Duration::from_secs(3)),
        "mosh-server {pid} still running"
    );
}

#[test]
fn refused_session_ends_mosh_server() {
    mux_failure(
        refused("test reason"),
        "moshd refused the session: test reason",
    );
}

#[test]
fn garbage_reply_ends_mosh_server() {
    mux_failure(
        Some(b"hello there\n".to_vec()),
        "moshd's reply is not valid",
    );
}

#[test]
fn closed_connection_ends_mosh_server() {
    mux_failure(None, "moshd closed the connection without replying");
}

// ---------------------------------------------------------------- (c) direct mode

#[test]
fn direct_mode_runs_stock_mosh_server_unchanged() {
    let dir = TempDir::new("direct");
    let socket = dir.path().join("missing.sock");
    let r = run(command(
        dir.path(),
        &[
            "--control-socket",
            socket.to_str().unwrap(),
            "--mosh-server",
            STOCK,
            "new",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-c",
            "256",
            "-l",
            "LANG=C.UTF-8",
            "--",
            "/bin/sleep",
            "30",
        ],
    ));
    let pid = detached_pid(&r.stderr);
    let _server = KillOnDrop(pid);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(pid.is_some(), "{}", r.stderr);
    let first = r.stderr.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "mosh-server-mux: moshd is not reachable at {} (no such file); starting plain mosh-server \
             (direct mode: the client needs mosh's UDP ports)",
            socket.display()
        )
    );
    let line = r
        .stdout
        .trim_start_matches(['\r', '\n'])
        .strip_suffix('\n')
        .unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 4, "{line:?}");
    assert_eq!(&fields[..2], ["MOSH", "CONNECT"]);
    assert!(
        !fields[2].starts_with('0') && fields[2].parse::<u16>().is_ok(),
        "{line}"
    );
    assert!(is_key(fields[3]));
}

#[test]
fn direct_mode_passes_argv_verbatim_and_reports_refused() {
    let dir = TempDir::new("direct-argv");
    let socket = dir.path().join("dead.sock");
    drop(UnixListener::bind(&socket).unwrap()); // a socket file nobody listens on
    let fake = dir.script("fake-mosh-server", r#"printf '[%s]' "$0" "$@"; echo"#);
    let r = run(command(
        dir.path(),
        &[
            "--control-socket",
            socket.to_str().unwrap(),
            "--mosh-server",
            fake.to_str().unwrap(),
            "new",
            "-s",
            "-p",
            "60000:60010",
            "-c",
            "8",
            "--",
            "sh",
            "-c",
            "echo 'a b'",
        ],
    ));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("(connection refused)"), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "[{}][new][-s][-p][60000:60010][-c][8][--][sh][-c][echo 'a b']\n",
            fake.display()
        )
    );
}

#[test]
fn socket_from_env_and_config() {
    let dir = TempDir::new("config");
    let fake = dir.script("fake-mosh-server", "echo ran");
    std::fs::create_dir_all(dir.path().join(".config/mosh")).unwrap();
    let from_config = dir.path().join("from-config.sock");
    std::fs::write(
        dir.path().join(".config/mosh/mux.toml"),
        format!(
            "control_socket = {:?}\nmosh_server = {:?}\n",
            from_config, fake
        ),
    )
    .unwrap();
    // Both from the config file.
    let r = run(command(dir.path(), &["new"]));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "ran\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("not reachable at {} ", from_config.display())),
        "{}",
        r.stderr
    );
    // $MOSHD_SOCKET wins over the file.
    let mut cmd = command(dir.path(), &["new"]);
    cmd.env("MOSHD_SOCKET", "/nonexistent/env.sock");
    let r = run(cmd);
    assert!(
        r.stderr.contains("not reachable at /nonexistent/env.sock "),
        "{}",
        r.stderr
    );
}

#[test]
fn broken_config_is_one_line_naming_file_and_line() {
    let dir = TempDir::new("badconfig");
    std::fs::create_dir_all(dir.path().join(".config/mosh")).unwrap();
    let file = dir.path().join(".config/mosh/mux.toml");
    std::fs::write(&file, "# comment\nmosh_servr = \"/x\"\n").unwrap();
    let r = run(command(dir.path(), &["--mosh-server", STOCK, "new"]));
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stderr,
        format!(
            "mosh-server-mux: {}: line 2: unknown key `mosh_servr`; did you mean `mosh_server`?\n",
            file.display()
        )
    );
    // Not read at all when the command line names everything.
    let fake = dir.script("fake-mosh-server", "echo ran");
    let r = run(command(
        dir.path(),
        &[
            "--control-socket",
            "/nonexistent/x.sock",
            "--mosh-server",
            fake.to_str().unwrap(),
            "new",
        ],
    ));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "ran\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_mosh_server_is_127() {
    let dir = TempDir::new("missing");
    let mut cmd = command(
        dir.path(),
        &["--control-socket", "/nonexistent/x.sock", "new"],
    );
    cmd.env("PATH", dir.path());
    let r = run(cmd);
    assert_eq!(r.code, Some(127));
    assert_eq!(
        r.stderr,
        "mosh-server-mux: cannot find mosh-server (install mosh on this host, or pass --mosh-server PATH)\n"
    );
    // Our own executable under the name mosh-server does not count.
    std::os::unix::fs::symlink(BIN, dir.path().join("mosh-server")).unwrap();
    let mut cmd = command(
        dir.path(),
        &["--control-socket", "/nonexistent/x.sock", "new"],
    );
    cmd.env("PATH", dir.path());
    assert_eq!(run(cmd).code, Some(127));
}

// ---------------------------------------------------------------- (d) broken mosh-servers

/// Runs mux mode against a fake moshd and a fake mosh-server script.
fn with_fake_server(body: &str, timeout_ms: Option<u64>) -> (Run, TempDir, Option<Seen>) {
    let dir = TempDir::new("fake");
    let moshd = FakeMoshd::start(dir.path(), refused("fake"));
    let fake = dir.script("fake-mosh-server", body);
    let mut cmd = command(
        dir.path(),
        &[
            "--control-socket",
            moshd.socket.to_str().unwrap(),
            "--mosh-server",
            fake.to_str().unwrap(),
            "new",
        ],
    );
    if let Some(ms) = timeout_ms {
        cmd.env("MOSH_SERVER_MUX_TIMEOUT_MS", ms.to_string());
    }
    cmd.env("DIR", dir.path());
    let r = run(cmd);
    let seen = moshd.seen();
    (r, dir, seen)
}

const FAKE_KEY: &str = "gflLFw38EcGhIYzas1qLZA";

#[test]
fn garbage_output_is_an_error() {
    let (r, _dir, seen) = with_fake_server("echo hello; echo world >&2", None);
    assert_eq!(r.code, Some(1));
    assert_one_error_line(&r, "mosh-server printed no MOSH CONNECT line");
    assert_eq!(r.stdout, "hello\n");
    assert!(r.stderr.starts_with("world\n"));
    assert!(seen.is_none());
}

#[test]
fn failing_mosh_server_is_an_error() {
    let (r, _dir, _) = with_fake_server("echo 'mosh-server: Bad UDP port range' >&2; exit 1", None);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.starts_with("mosh-server: Bad UDP port range\n"),
        "{}",
        r.stderr
    );
    assert_one_error_line(&r, "mosh-server failed (exit status 1)");
    let (r, _dir, _) = with_fake_server("kill -9 $$", None);
    assert_one_error_line(&r, "mosh-server failed (killed by signal 9)");
}

#[test]
fn silent_mosh_server_times_out_and_is_ended() {
    let (r, dir, seen) = with_fake_server(
        r#"sleep 300 & echo $! > "$DIR/bg.pid"; sleep 300"#,
        Some(700),
    );
    assert_eq!(r.code, Some(1));
    assert_one_error_line(&r, "mosh-server did not finish starting within 0.7 s");
    assert!(r.took < Duration::from_secs(6), "took {:?}", r.took);
    assert!(seen.is_none());
    let bg: u32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _bg = KillOnDrop(Some(bg));
    assert!(
        gone_within(bg, Duration::from_secs(2)),
        "background process {bg} left running"
    );
}

#[test]
fn bad_connect_line_is_an_error_without_the_key() {
    let body = format!(
        "echo 'MOSH CONNECT 70000 {FAKE_KEY}'; echo '[mosh-server detached, pid = 99999]' >&2"
    );
    let (r, _dir, _) = with_fake_server(&body, None);
    assert_eq!(r.code, Some(1));
    assert_one_error_line(
        &r,
        "bad MOSH CONNECT line: MOSH CONNECT port is not a port number",
    );
    assert!(!r.stderr.contains(FAKE_KEY) && !r.stdout.contains(FAKE_KEY));
}

#[test]
fn missing_pid_line_is_an_error() {
    let (r, _dir, _) = with_fake_server(&format!("echo 'MOSH CONNECT 5 {FAKE_KEY}'"), None);
    assert_one_error_line(&r, "mosh-server did not report its detached pid");
    assert_eq!(r.code, Some(1));
}

#[test]
fn foreign_pid_is_refused() {
    // Our own (the test's) pid: alive, but not a process the fake started.
    let body = format!(
        "echo 'MOSH CONNECT 5 {FAKE_KEY}'; echo '[mosh-server detached, pid = {}]' >&2",
        std::process::id()
    );
    let (r, _dir, seen) = with_fake_server(&body, None);
    assert_eq!(r.code, Some(1));
    assert_one_error_line(&r, "which is not a process it started");
    assert!(seen.is_none());
}

#[test]
fn detached_fake_is_registered_then_ended_on_refusal() {
    let body = format!(
        r#"sleep 300 & echo "$!" > "$DIR/bg.pid"; echo 'MOSH CONNECT 5 {FAKE_KEY}'; echo "[mosh-server detached, pid = $!]" >&2"#
    );
    let (r, dir, seen) = with_fake_server(&body, None);
    let bg: u32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _bg = KillOnDrop(Some(bg));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_one_error_line(&r, "moshd refused the session: fake");
    let Some(Seen {
        request: Request::Register(reg),
        ..
    }) = seen
    else {
        panic!("no registration")
    };
    assert_eq!((reg.pid, reg.port), (bg, 5));
    assert!(gone_within(bg, Duration::from_secs(3)));
}

#[test]
fn endless_output_is_cut_short() {
    let (r, _dir, _) = with_fake_server("yes 'noise' >&2", None);
    assert_eq!(r.code, Some(1));
    assert_one_error_line(&r, "mosh-server printed more than 200 lines");
    assert!(r.took < Duration::from_secs(6));
}

#[test]
fn connect_line_on_stderr_is_not_passed_on() {
    let body = format!("echo 'MOSH CONNECT 5 {FAKE_KEY}' >&2");
    let (r, _dir, _) = with_fake_server(&body, None);
    assert_eq!(r.code, Some(1));
    assert!(!r.stderr.contains(FAKE_KEY));
}

// ---------------------------------------------------------------- (e) usage errors

#[test]
fn unknown_own_option_is_one_line_exit_2() {
    let dir = TempDir::new("usage");
    let r = run(command(dir.path(), &["--bogus", "new"]));
    assert_eq!(r.code, Some(2));
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("mosh-server-mux: unexpected argument '--bogus'"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn stock_help_runs_stock_mosh_server() {
    let dir = TempDir::new("help");
    let r = run(command(
        dir.path(),
        &[
            "--control-socket",
            "/nonexistent",
            "--mosh-server",
            STOCK,
            "new",
            "-h",
        ],
    ));
    assert_eq!(r.code, Some(0));
    assert!(
        r.stdout.starts_with("Usage: mosh-server new"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr, "");
}
