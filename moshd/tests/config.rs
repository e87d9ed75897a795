//! moshd's configuration file through the binary: what it sets, what the
//! command line overrides, errors with their lines, `check-config`, and
//! SIGHUP reloading limits and the log filter without dropping a session.

mod common;

use common::*;
use mosh_mux_proto::control::Response;
use mosh_mux_proto::Sid;

const BODY: [u8; 40] = [0x05; 40];

fn refusal(r: Response) -> String {
    match r {
        Response::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn sighup_applies_new_limits_and_keeps_sessions() {
    let m = Moshd::start("hup", "[limits]\nmax_sessions_per_user = 3\n", &[]);
    let servers: Vec<_> = (0..3).map(|_| udp()).collect();
    let port = |i: usize| servers[i].local_addr().unwrap().port();
    for i in 0..2 {
        assert_eq!(m.register(Sid([0x40 + i as u8; 8]), port(i)), Response::Registered { port: m.port });
    }

    std::fs::write(m.config_path(), "[limits]\nmax_sessions_per_user = 1\n").unwrap();
    m.hup();
    assert!(m.wait_log("SIGHUP: configuration reloaded; sessions kept"), "{}", m.log());
    assert!(m.log().contains("SIGHUP: max_sessions_per_user: 3 -> 1"), "{}", m.log());

    // Both sessions are still there and still relay...
    assert_eq!(m.status().sessions.len(), 2);
    for (i, server) in servers.iter().take(2).enumerate() {
        let client = udp();
        client.send_to(&framed(Sid([0x40 + i as u8; 8]), &BODY), m.addr()).unwrap();
        let (got, _) = recv(server).expect("a session registered before the reload still relays");
        assert_eq!(got, BODY);
    }
    // ...and the new limit applies to the next registration.
    let why = refusal(m.register(Sid([0x42; 8]), port(2)));
    assert_eq!(why, "you already have 2 sessions, the most moshd allows one user");
}

#[test]
fn a_broken_file_on_sighup_keeps_the_old_limits() {
    let m = Moshd::start("hupbad", "[limits]\nmax_sessions_per_user = 1\n", &[]);
    std::fs::write(m.config_path(), "[limits]\nmax_sessions_per_user = 5\nmax_candidates = 0\n").unwrap();
    m.hup();
    assert!(m.wait_log("SIGHUP: configuration not reloaded"), "{}", m.log());
    let line = m.log().lines().find(|l| l.contains("not reloaded")).unwrap_or_default().to_owned();
    assert!(
        line.ends_with(&format!("{}: line 3: `limits.max_candidates` must be at least 2, not 0", m.config_path().display())),
        "{line}"
    );
    let servers = [udp(), udp()];
    assert!(matches!(m.register(Sid([0x50; 8]), servers[0].local_addr().unwrap().port()), Response::Registered { .. }));
    let why = refusal(m.register(Sid([0x51; 8]), servers[1].local_addr().unwrap().port()));
    assert!(why.contains("you already have 1 session,"), "the old limit holds: {why}");
}

#[test]
fn settings_that_need_a_restart_are_named_on_sighup() {
    let m = Moshd::start("huprestart", "", &[]);
    std::fs::write(m.config_path(), "advertise_port = 443\nuser = \"nobody\"\n").unwrap();
    m.hup();
    assert!(m.wait_log("SIGHUP: configuration reloaded"), "{}", m.log());
    let log = m.log();
    assert!(log.contains("SIGHUP: advertise_port changed; restart moshd to apply it"), "{log}");
    assert!(log.contains("SIGHUP: user changed; restart moshd to apply it"), "{log}");
    assert!(matches!(m.register(Sid([0x52; 8]), udp().local_addr().unwrap().port()), Response::Registered { port } if port == m.port));
}

#[test]
fn sighup_changes_the_log_filter() {
    let m = Moshd::start("huplog", "log_level = \"info\"\n", &[]);
    // A raw datagram from a source no session knows: dropped, logged at debug.
    let stray = udp();
    let unknown = [0x01u8; 40];
    stray.send_to(&unknown, m.addr()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!m.log().contains("datagram dropped"), "no debug lines at info:\n{}", m.log());

    std::fs::write(m.config_path(), "log_level = \"debug\"\n").unwrap();
    m.hup();
    assert!(m.wait_log("SIGHUP: log filter \"info\" -> \"debug\""), "{}", m.log());
    stray.send_to(&unknown, m.addr()).unwrap();
    assert!(m.wait_log("datagram dropped"), "debug lines after the reload:\n{}", m.log());
}

#[test]
fn the_file_sets_what_the_command_line_does_not() {
    let dir = scratch("fileset");
    let port = free_port();
    let socket = dir.join("from-file.sock");
    let config = format!(
        "listen = [\"127.0.0.1:{port}\"]\ncontrol_socket = \"{}\"\nstate_file = \"{}\"\n[limits]\nmax_sessions_per_user = 1\n",
        socket.display(),
        dir.join("from-file.json").display()
    );
    std::fs::write(dir.join("moshd.toml"), &config).unwrap();
    let args = ["--config".to_owned(), dir.join("moshd.toml").display().to_string(), "--max-sessions-per-user".into(), "2".into()];
    let m = Moshd { child: spawn(&dir, &args, &[]), dir: dir.clone(), port, socket: socket.clone() };
    m.wait_serving(&socket);
    let servers = [udp(), udp(), udp()];
    for (i, s) in servers.iter().take(2).enumerate() {
        let r = m.register(Sid([0x60 + i as u8; 8]), s.local_addr().unwrap().port());
        assert_eq!(r, Response::Registered { port }, "the listen port from the file; the command line's cap of 2");
    }
    let why = refusal(m.register(Sid([0x62; 8]), servers[2].local_addr().unwrap().port()));
    assert!(why.contains("you already have 2 sessions"), "{why}");
    assert!(eventually(5, || dir.join("from-file.json").exists()), "the state file from the file");
}

#[test]
fn registrations_point_clients_at_the_advertised_port() {
    // A port forward or NAT in front: moshd listens on one port and tells
    // clients (through mosh-server-mux's MOSH CONNECT line) another.
    let m = Moshd::start("advertise", "advertise_port = 443\n", &[]);
    let server = udp();
    assert_eq!(m.register(Sid([0x70; 8]), server.local_addr().unwrap().port()), Response::Registered { port: 443 });
    assert_eq!(m.status().listen, vec![format!("127.0.0.1:{}", m.port)], "it still listens where it was told");
}

#[test]
fn a_broken_file_stops_moshd_with_every_error() {
    let dir = scratch("badstart");
    let file = dir.join("moshd.toml");
    std::fs::write(&file, "listen = [\"0.0.0.0\"]\nbogus = 1\n[limits]\nmax_candidates = 0\n").unwrap();
    let f = file.display();
    let (code, _, err) = run(&["--config", &file.display().to_string()], &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "moshd: {f}: line 1: `listen`: \"0.0.0.0\" is not an address:port like \"0.0.0.0:60001\" or \"[::]:60001\"\n\
             moshd: {f}: line 2: unknown key `bogus`\n\
             moshd: {f}: line 4: `limits.max_candidates` must be at least 2, not 0\n"
        )
    );
    let missing = dir.join("missing.toml");
    let (code, _, err) = run(&["--config", &missing.display().to_string()], &[]);
    assert_eq!(code, 1);
    assert_eq!(err, format!("moshd: {}: cannot read it: No such file or directory (os error 2)\n", missing.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_config_reports_every_error_or_one_ok_line() {
    let dir = scratch("check");
    let file = dir.join("moshd.toml");
    let path = file.display().to_string();
    std::fs::write(&file, include_str!("../dist/moshd.toml")).unwrap();
    assert_eq!(run(&["check-config", &path], &[]), (0, format!("moshd: {path}: OK\n"), String::new()));

    std::fs::write(&file, "[limits]\nmax_candidates = 0\nprobe_fanout = \"8\"\nmax_sesions = 1\n").unwrap();
    let (code, out, err) = run(&["check-config", &path], &[]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!(
            "moshd: {path}: line 2: `limits.max_candidates` must be at least 2, not 0\n\
             moshd: {path}: line 3: `limits.probe_fanout` must be an integer, not a string\n\
             moshd: {path}: line 4: unknown key `limits.max_sesions`; did you mean `limits.max_sessions`?\n"
        )
    );
    let (code, _, err) = run(&["check-config", &dir.join("none.toml").display().to_string()], &[]);
    assert_eq!(code, 1, "a named file must exist: {err}");
    let (code, _, err) = run(&["check-config", "a", "b"], &[]);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_users_own_moshd_uses_the_xdg_places() {
    if !running_as_root() {
        assert!(std::env::var("CI").is_err(), "CI must run this test as root");
        eprintln!("skipped: needs root to become another user");
        return;
    }
    // "nobody" with a home and a runtime directory of its own, and no file.
    let dir = scratch("xdg");
    let (home, run_dir) = (dir.join("home"), dir.join("run"));
    for d in [&home, &run_dir] {
        std::fs::create_dir_all(d).unwrap();
        std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
    }
    let port = free_port();
    let log = std::fs::File::create(dir.join("moshd.log")).unwrap();
    let child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", MOSHD, "--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &run_dir)
        .stderr(log)
        .spawn()
        .unwrap();
    let socket = run_dir.join("moshd/control.sock");
    let m = Moshd { child, dir: dir.clone(), port, socket: socket.clone() };
    m.wait_serving(&socket);
    assert!(eventually(5, || home.join(".local/state/moshd/state.json").exists()), "{}", m.log());
    // `moshd status` as that user finds it without being told.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", MOSHD, "status", "--json"])
        .env_clear()
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &run_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["listen"][0], format!("127.0.0.1:{port}"));

    // Without $XDG_RUNTIME_DIR there is no default socket for a user: it says what to do.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", MOSHD, "--listen", &format!("127.0.0.1:{}", free_port())])
        .env_clear()
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "moshd: no control socket: $XDG_RUNTIME_DIR is not set; pass --control-socket or set control_socket in the configuration file\n"
    );
}
