//! Registering synthetic sessions with moshd over its control socket, with
//! the same codec mosh-server-mux uses (`mosh_mux_proto::control`).

use anyhow::Context;
use mosh_mux_proto::control::{decode_response, encode_line, Registration, Request, Response};
use mosh_mux_proto::Sid;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Longest answer to a registration we read.
const MAX_ANSWER: u64 = 4096;

/// How often a registration is tried when moshd closes the connection
/// unanswered (its per-user budget of control connections: 10 a second).
const ATTEMPTS: u32 = 600;
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Registers `sid` for the UDP socket at 127.0.0.1:`port`, held by `pid`.
/// `Ok(Err(reason))` when moshd refused. A connection closed without an
/// answer (moshd's control budget) is retried, for 30 s at most; the second
/// value counts those retries.
pub fn register(
    socket: &Path,
    sid: Sid,
    port: u16,
    pid: u32,
) -> anyhow::Result<(Result<u16, String>, u32)> {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        match register_once(socket, sid, port, pid) {
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
) -> anyhow::Result<Result<u16, String>> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach moshd at {}", socket.display()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let req = Request::Register(Registration {
        sid,
        port,
        pid,
        ssh_client: None,
    });
    stream.write_all(&encode_line(&req))?;
    let mut line = Vec::new();
    BufReader::new(std::io::Read::take(&stream, MAX_ANSWER))
        .read_until(b'\n', &mut line)
        .context("moshd did not answer")?;
    anyhow::ensure!(!line.is_empty(), "moshd closed the connection unanswered");
    match decode_response(&line).context("moshd's answer is not valid")? {
        Response::Registered { port } => Ok(Ok(port)),
        Response::Refused { reason } => Ok(Err(reason)),
        Response::Status(_) => anyhow::bail!("moshd answered a registration with a status"),
    }
}
