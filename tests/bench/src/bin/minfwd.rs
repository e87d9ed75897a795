//! minfwd: the minimal userspace UDP forwarder, the baseline for moshd.
//!
//! One socket, one thread, one `recvfrom` and one `sendto` per datagram and
//! no lookup: a datagram from the fixed inner address goes to the last client
//! heard from; anything else is a client's, which becomes the last client and
//! goes to the inner address. Nothing is parsed or copied besides the kernel's
//! own copies.
//!
//! `--mode blocking` (the baseline the targets use) is plain blocking system
//! calls: no event loop, no readiness polling, the least work per datagram a
//! userspace relay can do without batching. moshd is a tokio current_thread
//! runtime on one core doing the same two calls per datagram plus its epoll
//! and routing; comparing with this shows what its runtime and logic cost
//! together. `--mode tokio` is the same forwarder on a tokio current_thread
//! runtime (moshd's runtime and its send-now path), to tell the runtime's
//! share from moshd's own.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Blocking,
    Tokio,
}

#[derive(Parser)]
#[command(name = "minfwd")]
struct Args {
    /// Where clients send.
    #[arg(long)]
    listen: SocketAddr,
    /// The one inner server everything is forwarded to.
    #[arg(long)]
    to: SocketAddr,
    #[arg(long, value_enum, default_value = "blocking")]
    mode: Mode,
    /// Stop after this long, whatever happens.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
}

/// As moshd's public sockets, to ride out bursts.
const SOCKET_BUF: usize = 4 << 20;
const DATAGRAM_BUF: usize = 4096;

fn bind(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    let _ = s.set_recv_buffer_size(SOCKET_BUF);
    let _ = s.set_send_buffer_size(SOCKET_BUF);
    s.bind(&addr.into())
        .with_context(|| format!("cannot bind {addr}"))?;
    Ok(s.into())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let socket = bind(args.listen)?;
    let lifetime = Duration::from_secs_f64(args.seconds.max(0.0));
    eprintln!("minfwd: {} -> {}", socket.local_addr()?, args.to);
    match args.mode {
        Mode::Blocking => blocking(socket, args.to, Instant::now() + lifetime),
        Mode::Tokio => tokio_loop(socket, args.to, lifetime),
    }
}

/// The next hop of a datagram from `from`; updates the last client.
fn next_hop(
    from: SocketAddr,
    inner: SocketAddr,
    last_client: &mut Option<SocketAddr>,
) -> Option<SocketAddr> {
    if from == inner {
        *last_client
    } else {
        *last_client = Some(from);
        Some(inner)
    }
}

fn blocking(socket: UdpSocket, inner: SocketAddr, deadline: Instant) -> anyhow::Result<()> {
    // The timeout only bounds the process's life; under load it never fires.
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = vec![0u8; DATAGRAM_BUF];
    let mut last_client = None;
    while Instant::now() < deadline {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if let Some(to) = next_hop(from, inner, &mut last_client) {
            let _ = socket.send_to(&buf[..n], to);
        }
    }
    Ok(())
}

fn tokio_loop(socket: UdpSocket, inner: SocketAddr, lifetime: Duration) -> anyhow::Result<()> {
    socket.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let forward = async {
            let mut buf = vec![0u8; DATAGRAM_BUF];
            let mut last_client = None;
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                if let Some(to) = next_hop(from, inner, &mut last_client) {
                    // Send now or drop, as moshd does (socket2, not tokio's try_send).
                    let _ = socket2::SockRef::from(&socket).send_to(&buf[..n], &to.into());
                }
            }
        };
        let _ = tokio::time::timeout(lifetime, forward).await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_to_the_last_client() {
        let inner: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let mut last = None;
        assert_eq!(next_hop(inner, inner, &mut last), None);
        assert_eq!(next_hop(a, inner, &mut last), Some(inner));
        assert_eq!(next_hop(b, inner, &mut last), Some(inner));
        assert_eq!(next_hop(inner, inner, &mut last), Some(b));
    }
}
