//! One ping-pong round trip: a payload out on a connected socket, its echo
//! back (late echoes of earlier pings skipped), bounded by a timeout.

use crate::payload::{self, Class, Stamp};
use mosh_mux_proto::Sid;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// How long one round trip may take before it counts as lost.
pub const REPLY_TIMEOUT: Duration = Duration::from_millis(500);

/// One round trip of a `size`-byte payload numbered `seq` on `socket`
/// (connected, with a read timeout of at most [`REPLY_TIMEOUT`]), framed for
/// `sid` if given; `None` if no echo of `seq` came back in time.
pub fn ping(
    socket: &UdpSocket,
    sid: Option<Sid>,
    size: usize,
    seq: u32,
) -> std::io::Result<Option<Duration>> {
    let mut out = [0u8; 2048];
    let stamp = Stamp {
        session: 0,
        sent_ns: 0,
        class: Class::Probe,
        seq,
    };
    let n = match sid {
        Some(sid) => payload::write_framed(&mut out, sid, size, stamp),
        None => payload::write(&mut out, size, stamp),
    };
    let t0 = Instant::now();
    socket.send(&out[..n])?;
    let mut buf = [0u8; 2048];
    // Late echoes of earlier pings are skipped; bounded by the timeout.
    while t0.elapsed() < REPLY_TIMEOUT {
        match socket.recv(&mut buf) {
            Ok(len) => {
                if payload::read_echo(&buf[..len]).is_some_and(|s| s.seq == seq) {
                    return Ok(Some(t0.elapsed()));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            // ECONNREFUSED from an earlier ICMP error: try to read again.
            Err(_) => {}
        }
    }
    Ok(None)
}
