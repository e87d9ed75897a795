//! `moshd status` through the binary: the table and the JSON, which socket
//! it asks, and the exit codes a monitoring check relies on (0 answered,
//! 1 not running, 2 usage or configuration error).

mod common;

use common::*;
use mosh_mux_proto::control::Response;
use mosh_mux_proto::Sid;

#[test]
fn a_running_moshd_answers_with_a_table_and_json() {
    let m = Moshd::start("table", "", &[]);
    let server = udp();
    let sid = Sid([0x71; 8]);
    assert_eq!(m.register(sid, server.local_addr().unwrap().port()), Response::Registered { port: m.port });
    let client = udp();
    client.send_to(&framed(sid, &[0x05; 100]), m.addr()).unwrap();
    let (_, cand) = recv(&server).unwrap();
    server.send_to(&[0x85; 50], cand).unwrap();
    recv(&client).unwrap();

    let sock = m.socket.display().to_string();
    let (code, table, err) = run(&["status", "--control-socket", &sock], &[]);
    assert_eq!(code, 0, "{err}");
    let me = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name;
    for want in [
        format!("moshd: listening on 127.0.0.1:{}; 1 session\n", m.port),
        format!("session {sid}\n"),
        format!("  user: {me} ({})\n", nix::unistd::getuid()),
        format!("  client: {} (framed)\n", client.local_addr().unwrap()),
        "  since: 0s ago\n".to_owned(),
        "  last heard: 0s ago\n".to_owned(),
        "  transfer: 1 datagram, 100 B to server; 1 datagram, 50 B to client\n".to_owned(),
    ] {
        assert!(table.contains(&want), "missing {want:?} in:\n{table}");
    }

    let (code, json, _) = run(&["status", "--json", "--control-socket", &sock], &[]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let s = &v["sessions"][0];
    assert_eq!(s["client"], client.local_addr().unwrap().to_string());
    assert_eq!((s["to_server_bytes"].as_u64(), s["to_client_bytes"].as_u64()), (Some(100), Some(50)));

    // $MOSHD_SOCKET, and control_socket in the file named by --config, are asked too.
    assert_eq!(run(&["status"], &[("MOSHD_SOCKET", &sock)]).0, 0);
    let conf = m.dir.join("status.toml");
    std::fs::write(&conf, format!("control_socket = \"{sock}\"\n")).unwrap();
    assert_eq!(run(&["status", "--config", &conf.display().to_string()], &[]).0, 0);
}

#[test]
fn exit_codes_for_monitoring() {
    let dir = scratch("exitcodes");
    let nowhere = dir.join("nowhere.sock");
    let (code, out, err) = run(&["status", "--control-socket", &nowhere.display().to_string()], &[]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, format!("moshd: cannot reach moshd at {}: No such file or directory (os error 2)\n", nowhere.display()));

    // A socket nobody serves: refused, still 1.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let (code, _, err) = run(&["status", "--control-socket", &stale.display().to_string()], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Connection refused"), "{err}");

    // A socket whose owner never accepts: no answer within the timeout, still 1.
    let mute = dir.join("mute.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&mute).unwrap();
    let t0 = std::time::Instant::now();
    let (code, _, err) = run(&["status", "--control-socket", &mute.display().to_string()], &[]);
    assert_eq!((code, err), (1, format!("moshd: moshd at {} did not answer within 5 s\n", mute.display())));
    assert!(t0.elapsed() < std::time::Duration::from_secs(10), "bounded: {:?}", t0.elapsed());

    let (code, _, err) = run(&["status", "--bogus"], &[]);
    assert_eq!(code, 2);
    assert_eq!(err, "moshd: unexpected argument '--bogus' found (try --help)\n");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "control_socket = 5\n").unwrap();
    let (code, _, err) = run(&["status", "--config", &bad.display().to_string()], &[]);
    assert_eq!(code, 2);
    assert_eq!(err, format!("moshd: {}: line 1: `control_socket` must be a string, not an integer\n", bad.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}
