//! Replays every seed (tests/fuzz/seeds/<target>/) and every saved crash
//! (tests/fuzz/crashes/<target>/: inputs that made a target panic) through
//! its target, without AFL: `cargo test --manifest-path tests/fuzz/Cargo.toml`.
//! A saved crash fails this test until its bug is fixed, and keeps it fixed.

use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    for (name, target) in mosh_mux_fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|f| f.to_string_lossy().starts_with('.')) {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            eprintln!("{name}: {}", path.display());
            target(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn seeds_pass_every_target() {
    assert!(replay("seeds") >= 5 * 5, "seed corpora missing");
}

#[test]
fn saved_crashes_no_longer_crash() {
    replay("crashes");
}

/// Each seed corpus reaches the paths it is there for (a seed that is
/// refused at the first byte teaches the fuzzer nothing).
#[test]
fn seeds_are_accepted_where_they_should_be() {
    use mosh_mux_proto::control::{decode_request, decode_response};
    use mosh_mux_proto::header::{classify, Datagram};
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let read = |t: &str, f: &str| std::fs::read(seeds.join(t).join(f)).unwrap();
    for i in 0..3 {
        assert!(matches!(classify(&read("header", &format!("real-framed-{i}"))), Ok(Datagram::Framed { .. })));
        assert!(matches!(classify(&read("header", &format!("real-raw-{i}"))), Ok(Datagram::Raw(_))));
    }
    assert!(decode_request(&read("control", "ctl-1")).is_ok());
    assert!(decode_request(&read("control", "ctl-5")).is_err());
    assert!(decode_response(&read("control", "resp-status")).is_ok());
    assert!(decode_response(&read("control", "resp-status-doc")).is_ok());
    let pty = String::from_utf8(read("connect_line", "pty")).unwrap();
    assert!(pty.lines().any(|l| matches!(mosh_mux_proto::connect_line::parse_connect_line(l.trim_start()), Some(Ok(_)))));
    assert!(pty.lines().any(|l| mosh_mux_proto::connect_line::parse_detached_pid(l).is_some()));
    // The scan seeds: real start-ups are accepted, broken ones refused.
    let scan = |f: &str| {
        use mosh_server_mux::scan::{Scanner, Stream};
        let mut s = Scanner::new();
        for l in read("scan", f).split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let stream = if l[0] & 1 == 1 { Stream::Stderr } else { Stream::Stdout };
            s.feed(stream, &l[1..], false);
        }
        s.finish().is_ok()
    };
    for ok in ["loopback", "stderr-first", "pty-crlf"] {
        assert!(scan(ok), "{ok}");
    }
    for bad in ["two-connects", "connect-on-stderr"] {
        assert!(!scan(bad), "{bad}");
    }
    let full = String::from_utf8(read("config", "full.toml")).unwrap();
    assert!(mosh_mux_proto::config::WrapperConfig::parse(&full).is_ok());
}

/// The router seeds drive the paths they are named for.
#[test]
fn router_seeds_do_what_they_say() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/router");
    let run = |f: &str| {
        let stats = mosh_mux_fuzz::router::run_counting(&std::fs::read(seeds.join(f)).unwrap());
        eprintln!("{f}: {stats:?}");
        stats
    };
    let s = run("framed-session");
    assert_eq!((s.opened, s.forwarded, s.replies), (1, 2, 1));
    let s = run("framed-roam");
    assert_eq!((s.opened, s.replies), (2, 2));
    let s = run("stock-probe");
    assert!(s.probes >= 2 && s.replies == 1 && s.forwarded >= 2, "{s:?}");
    let s = run("stock-roam");
    assert!(s.probes >= 2 && s.replies == 2, "{s:?}");
    let s = run("tight-caps");
    assert!(s.dropped > 0 && s.opened >= 2, "{s:?}");
    let s = run("lifecycle");
    assert_eq!((s.ended, s.registered), (1, 1));
    let s = run("unknown-sid");
    assert!(s.notices >= 1 && s.notices + s.dropped == 50, "{s:?}");
    let s = run("junk");
    assert_eq!(s.dropped, 5);
}
