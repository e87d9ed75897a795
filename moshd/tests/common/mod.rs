//! A moshd started for one test, in a directory of its own, with its
//! stderr kept in a file the test can read; and the synthetic sessions the
//! tests register (a UDP socket this test process owns).

#![allow(dead_code)] // each test file uses its own part

use mosh_mux_proto::control::{decode_response, encode_line, Registration, Request, Response, StatusQuery, StatusReport};
use mosh_mux_proto::header::{encode_header, HEADER_LEN};
use mosh_mux_proto::Sid;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const MOSHD: &str = env!("CARGO_BIN_EXE_moshd");

/// A fresh, empty directory for test `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moshd-svc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

pub fn framed(sid: Sid, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; HEADER_LEN];
    encode_header(sid, &mut h);
    let mut v = h.to_vec();
    v.extend_from_slice(body);
    v
}

pub fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 2048];
    s.recv_from(&mut buf).ok().map(|(n, a)| (buf[..n].to_vec(), a))
}

pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Polls `f` every 20 ms for up to `secs` seconds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Moshd {
    pub child: Child,
    pub dir: PathBuf,
    pub port: u16,
    pub socket: PathBuf,
}

impl Moshd {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("moshd.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("moshd.log")
    }

    /// moshd with `config` as its file (which may set listen, control
    /// socket and state file itself), and the usual three on the command
    /// line unless `config` names them. RUST_LOG is cleared.
    pub fn start(name: &str, config: &str, extra: &[&str]) -> Moshd {
        Moshd::start_env(name, config, extra, &[])
    }

    pub fn start_env(name: &str, config: &str, extra: &[&str], env: &[(&str, &str)]) -> Moshd {
        let dir = scratch(name);
        std::fs::write(dir.join("moshd.toml"), config).unwrap();
        let port = free_port();
        let socket = dir.join("control.sock");
        let mut args: Vec<String> = vec!["--config".into(), dir.join("moshd.toml").display().to_string()];
        if !config.contains("listen") {
            args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        }
        if !config.contains("control_socket") {
            args.extend(["--control-socket".into(), socket.display().to_string()]);
        }
        if !config.contains("state_file") {
            args.extend(["--state-file".into(), dir.join("state.json").display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = spawn(&dir, &args, env);
        let m = Moshd { child, dir, port, socket };
        m.wait_serving(&m.socket.clone());
        m
    }

    /// Waits until `socket` answers; panics with the log if moshd exits.
    pub fn wait_serving(&self, socket: &Path) {
        let ok = eventually(10, || UnixStream::connect(socket).is_ok());
        assert!(ok, "moshd did not start; its log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits (up to 5 s) until the log has a line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        eventually(5, || self.log().contains(needle))
    }

    pub fn hup(&self) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    }

    pub fn request_at(socket: &Path, req: &Request) -> Response {
        let mut s = UnixStream::connect(socket).unwrap();
        s.write_all(&encode_line(req)).unwrap();
        let mut line = Vec::new();
        BufReader::new(s).read_until(b'\n', &mut line).unwrap();
        decode_response(&line).unwrap()
    }

    pub fn request(&self, req: &Request) -> Response {
        Moshd::request_at(&self.socket, req)
    }

    pub fn status(&self) -> StatusReport {
        match self.request(&Request::Status(StatusQuery {})) {
            Response::Status(r) => r,
            other => panic!("{other:?}"),
        }
    }

    pub fn register(&self, sid: Sid, port: u16) -> Response {
        self.request(&Request::Register(Registration { sid, port, pid: std::process::id(), ssh_client: None }))
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops moshd with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Moshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("MOSHD_TEST_LOG").is_some() {
            eprintln!("--- moshd log ({}):\n{}", self.dir.display(), self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts moshd with `args` and `env` (RUST_LOG cleared first), stderr to DIR/moshd.log.
pub fn spawn(dir: &Path, args: &[String], env: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(dir.join("moshd.log")).unwrap();
    Command::new(MOSHD)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Runs moshd to completion (check-config, status, a failing start).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(MOSHD)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MOSHD_SOCKET")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
