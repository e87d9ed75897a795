//! One outer UDP socket: the relay's side of one mosh-client socket.
//!
//! Bound to the unspecified address of moshd's family on an ephemeral port
//! and, like mosh-client's own sockets, not connected: the kernel picks the
//! route and source address afresh for every datagram, so when the host's
//! address changes the very next datagram leaves from the new one (a
//! connected socket would keep the old address and fail until mosh-client
//! hops). Replies are accepted from moshd's address only. Like mosh, it
//! marks what it sends ECT(0);
//! the relay reads each reply's ECN bits (`udp_ecn`) and passes a CE mark
//! on to mosh-client.

use nix::sys::socket::{setsockopt, sockopt};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// ECN field value ECT(0), as mosh sets it on its own sockets.
pub const ECT0: libc::c_int = 0x02;

/// The unspecified address of `peer`'s family, port 0.
pub fn wildcard_for(peer: SocketAddr) -> SocketAddr {
    match peer.ip() {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    }
}

/// Opens a non-blocking socket for talking to `moshd`, marked ECT(0).
pub fn open(moshd: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(wildcard_for(moshd))?;
    let marked = match moshd {
        SocketAddr::V4(_) => setsockopt(&socket, sockopt::IpTos, &ECT0),
        SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6TClass, &ECT0),
    };
    if let Err(e) = marked {
        // Not fatal: the datagrams still flow, only without the ECN mark.
        tracing::debug!(error = %e, "cannot mark outer socket ECT(0)");
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::getsockopt;

    #[test]
    fn v4_socket_is_unconnected_and_marked() {
        let moshd = UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = open(moshd.local_addr().unwrap()).unwrap();
        assert!(s.peer_addr().is_err(), "not connected: the source follows the route");
        assert_eq!(getsockopt(&s, sockopt::IpTos).unwrap() & 0x03, ECT0);
        s.send_to(b"x", moshd.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 4];
        let (n, from) = moshd.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from.port()),
            (&b"x"[..], s.local_addr().unwrap().port())
        );
    }

    #[test]
    fn v6_socket_is_marked_when_v6_loopback_exists() {
        let Ok(moshd) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 on this host
        };
        let s = open(moshd.local_addr().unwrap()).unwrap();
        assert!(s.local_addr().unwrap().is_ipv6());
        assert_eq!(getsockopt(&s, sockopt::Ipv6TClass).unwrap() & 0x03, ECT0);
    }

    #[test]
    fn wildcard_matches_family() {
        assert_eq!(
            wildcard_for("[2001:db8::1]:5".parse().unwrap()),
            "[::]:0".parse().unwrap()
        );
        assert_eq!(
            wildcard_for("192.0.2.1:5".parse().unwrap()),
            "0.0.0.0:0".parse().unwrap()
        );
    }
}
