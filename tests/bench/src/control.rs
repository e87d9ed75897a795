//! Registering synthetic sessions with moshd over its control socket, with
//! the same codec mosh-server-mux uses (`mosh_mux_proto::control`).

use anyhow::Context;
use mosh_mux_proto::control::{decode_response, encode_line, Registration, Request, Response};
use mosh_mux_proto::Sid;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Longest answer to a registration we read.
const MAX_ANSWER: u64 = 4096;

/// How often a registration is tried when moshd refuses the connection
/// itself (its per-user budget of control connections: 10 a second).
const ATTEMPTS: u32 = 600;
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Registers `sid` for the UDP socket at 127.0.0.1:`port`, held by `pid`.
/// `Ok(Err(reason))` when moshd refused the registration. A connection moshd
/// refused (its control budget) is retried, for 30 s at most; the second
/// value counts those retries.
pub fn register(
    socket: &Path,
    sid: Sid,
    port: u16,
    pid: u32,
) -> anyhow::Result<(Result<u16, String>, u32)> {
    register_from(socket, sid, port, pid, None)
}

/// [`register`], naming `ssh_client` as the client address sshd reported
/// (SSH_CONNECTION), as mosh-server-mux does: moshd offers a stock
/// mosh-client's unmapped datagrams from that IP to this session.
pub fn register_from(
    socket: &Path,
    sid: Sid,
    port: u16,
    pid: u32,
    ssh_client: Option<IpAddr>,
) -> anyhow::Result<(Result<u16, String>, u32)> {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        match register_once(socket, sid, port, pid, ssh_client) {
            Ok(answer) => return Ok((answer, attempt)),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(RETRY_PAUSE);
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
}

fn register_once(
    socket: &Path,
    sid: Sid,
    port: u16,
    pid: u32,
    ssh_client: Option<IpAddr>,
) -> anyhow::Result<Result<u16, String>> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach moshd at {}", socket.display()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let req = Request::Register(Registration {
        sid,
        port,
        pid,
        ssh_client,
    });
    // A connection over moshd's control budget is refused at once, with a
    // line and a close, so the write may fail; the line is still there.
    let _ = stream.write_all(&encode_line(&req));
    let mut line = Vec::new();
    BufReader::new(std::io::Read::take(&stream, MAX_ANSWER))
        .read_until(b'\n', &mut line)
        .context("moshd did not answer")?;
    anyhow::ensure!(!line.is_empty(), "moshd closed the connection unanswered");
    match decode_response(&line).context("moshd's answer is not valid")? {
        Response::Registered { port } => Ok(Ok(port)),
        // The connection budget, not the registration: try again.
        Response::Refused { reason } if reason.contains("control connections") => {
            anyhow::bail!("moshd refused the connection: {reason}")
        }
        Response::Refused { reason } => Ok(Err(reason)),
        Response::Status(_) => anyhow::bail!("moshd answered a registration with a status"),
    }
}
