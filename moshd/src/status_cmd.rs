//! `moshd status`: asks a running moshd for its sessions and prints them,
//! as a table for people (in the manner of `wg show`) or JSON for scripts.
//!
//! Exit status, for monitoring checks: 0 moshd answered (with or without
//! sessions); 1 moshd is not running or did not answer ([`EXIT_UNREACHABLE`]);
//! 2 a usage or configuration error (clap's, or a broken configuration file).

use crate::cli::StatusArgs;
use crate::paths::{status_socket, Defaults};
use crate::settings::load;
use anyhow::Context;
use mosh_mux_proto::control::{
    decode_response, encode_line, Request, Response, SessionStatus, StatusQuery, StatusReport,
    MAX_RESPONSE_LEN,
};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(5);
/// moshd is not running, or did not answer.
pub const EXIT_UNREACHABLE: u8 = 1;
/// A usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// The socket to ask: --control-socket, then $MOSHD_SOCKET, then
/// control_socket in the configuration file (--config, or the default
/// file if present), then this user's own moshd if it listens at its
/// default place, then the system's. A broken configuration file is an
/// error (its lines), since the socket it names cannot be trusted.
pub fn socket(args: &StatusArgs, env_socket: Option<OsString>, defaults: &Defaults) -> Result<PathBuf, Vec<String>> {
    if let Some(path) = &args.control_socket {
        return Ok(path.clone());
    }
    if let Some(path) = env_socket.filter(|s| !s.is_empty()) {
        return Ok(path.into());
    }
    let (file, named) = match &args.config {
        Some(path) => (Some(path.as_path()), true),
        None => (defaults.config_file.as_deref(), false),
    };
    let config = load(file, named).map_err(|e| e.lines(file.unwrap_or(Path::new("-"))))?;
    Ok(config
        .control_socket
        .unwrap_or_else(|| status_socket(defaults, |p| p.exists())))
}

pub fn fetch(socket: &Path) -> anyhow::Result<StatusReport> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach moshd at {}", socket.display()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    // A failed write is not the end: moshd may have refused the connection
    // (its connection budget) with a line saying why, which is still there.
    let sent = stream.write_all(&encode_line(&Request::Status(StatusQuery {})));
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_RESPONSE_LEN + 1).unwrap_or(u64::MAX);
    if let Err(e) = BufReader::new(std::io::Read::take(&stream, limit)).read_until(b'\n', &mut line) {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            anyhow::bail!("moshd at {} did not answer within {} s", socket.display(), TIMEOUT.as_secs());
        }
        return Err(e).context("moshd did not answer");
    }
    if line.is_empty() {
        sent.context("cannot send the request to moshd")?;
        anyhow::bail!("moshd closed the connection without answering");
    }
    match decode_response(&line).context("moshd's answer is not valid")? {
        Response::Status(report) => Ok(report),
        Response::Refused { reason } => anyhow::bail!("moshd refused: {reason}"),
        Response::Registered { .. } => anyhow::bail!("moshd gave an unexpected answer"),
    }
}

pub fn print(report: &StatusReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        out.write_all(render_table(report, unix_now()).as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The human view, in the manner of `wg show`: one block per session.
pub fn render_table(report: &StatusReport, now_unix: u64) -> String {
    let mut s = format!(
        "moshd: listening on {}; {} session{}\n",
        report.listen.join(", "),
        report.sessions.len(),
        if report.sessions.len() == 1 { "" } else { "s" }
    );
    for st in &report.sessions {
        s.push_str(&render_session(st, now_unix));
    }
    let counters: Vec<String> = report
        .counters
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if !counters.is_empty() {
        s.push_str(&format!("\ncounters: {}\n", counters.join(", ")));
    }
    s
}

fn render_session(st: &SessionStatus, now_unix: u64) -> String {
    let client = match (&st.client, &st.client_kind) {
        (Some(addr), Some(kind)) => format!("{addr} ({kind})"),
        (Some(addr), None) => addr.clone(),
        _ => "(none confirmed yet)".to_owned(),
    };
    let heard = st
        .last_heard_ms
        .map(|ms| format!("{} ago", human_duration(ms / 1000)))
        .unwrap_or_else(|| "never".to_owned());
    format!(
        "\nsession {}\n  user: {} ({})\n  client: {}\n  mosh-server: pid {}, 127.0.0.1:{}\n  since: {} ago\n  last heard: {}\n  transfer: {}, {} to server; {}, {} to client\n",
        st.sid,
        st.user,
        st.uid,
        client,
        st.server_pid,
        st.server_port,
        human_duration(now_unix.saturating_sub(st.since_unix)),
        heard,
        datagrams(st.to_server_packets),
        human_bytes(st.to_server_bytes),
        datagrams(st.to_client_packets),
        human_bytes(st.to_client_bytes),
    )
}

fn datagrams(n: u64) -> String {
    format!("{n} datagram{}", if n == 1 { "" } else { "s" })
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        0..=1023 => format!("{b} B"),
        1024..=1_048_575 => format!("{:.1} KiB", b as f64 / 1024.0),
        _ => format!("{:.1} MiB", b as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_each_session() {
        let report = StatusReport {
            listen: vec!["0.0.0.0:60001".into()],
            sessions: vec![SessionStatus {
                sid: mosh_mux_proto::Sid([0xab; 8]),
                user: "alice".into(),
                uid: 1001,
                client: Some("198.51.100.2:40000".into()),
                client_kind: Some("framed".into()),
                server_pid: 42,
                server_port: 50000,
                since_unix: 100,
                last_heard_ms: Some(1500),
                candidates: 1,
                to_server_packets: 3,
                to_server_bytes: 2048,
                to_client_packets: 4,
                to_client_bytes: 100,
            }],
            counters: [("unknown_sid".to_owned(), 2), ("probes".to_owned(), 0)].into(),
        };
        let t = render_table(&report, 220);
        assert!(t.starts_with("moshd: listening on 0.0.0.0:60001; 1 session\n"), "{t}");
        assert!(t.contains("user: alice (1001)"));
        assert!(t.contains("client: 198.51.100.2:40000 (framed)"));
        assert!(t.contains("since: 2m 0s ago"));
        assert!(t.contains("transfer: 3 datagrams, 2.0 KiB to server; 4 datagrams, 100 B to client\n"), "{t}");
        assert!(t.ends_with("\ncounters: unknown_sid 2\n"), "only the counters that counted: {t}");
    }
}
