//! Carrying ECN across a relay hop, as mosh expects end to end.
//!
//! mosh marks its datagrams ECT(0) and treats a CE mark on a received one as
//! congestion. A relay that re-sends a datagram must therefore send ECT(0)
//! by default and pass a CE mark that arrived with a datagram on to the next
//! hop. Receiving: quinn-udp reads each datagram's ECN bits from its control
//! message (with recvmmsg, so a burst costs one system call). Sending with
//! CE: the socket's TOS is switched for that one datagram; CE marks are rare,
//! so the two extra system calls then cost nothing in practice.

use quinn_udp::{EcnCodepoint, RecvMeta, UdpSocketState};
use socket2::SockRef;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsFd;

/// ECN field values (RFC 3168).
pub const ECT0: u32 = 0b10;
pub const CE: u32 = 0b11;

/// Datagrams one `recv_batch` call may return.
pub const BATCH: usize = quinn_udp::BATCH_SIZE;

/// A received datagram's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// The datagram arrived marked Congestion Experienced.
    pub ce: bool,
}

/// A UDP socket set up to send ECT(0) and to read incoming ECN marks.
pub struct EcnSocket {
    state: UdpSocketState,
}

impl EcnSocket {
    /// Sets `socket` up (it becomes non-blocking). Generic receive offload
    /// is switched back off: each buffer then holds exactly one datagram.
    pub fn new<S: AsFd>(socket: &S, v6: bool) -> io::Result<Self> {
        let state = UdpSocketState::new(socket.into())?;
        set_udp_gro(&SockRef::from(socket), false);
        mark(socket, v6, ECT0)?;
        Ok(EcnSocket { state })
    }

    /// Receives up to `bufs.len()` (at most BATCH) datagrams without
    /// blocking; `WouldBlock` when there are none.
    pub fn recv_batch<S: AsFd>(
        &self,
        socket: &S,
        bufs: &mut [Vec<u8>],
        out: &mut [Received],
    ) -> io::Result<usize> {
        let n = bufs.len().min(out.len()).min(BATCH);
        let mut metas = [RecvMeta::default(); BATCH];
        let mut slices: Vec<IoSliceMut<'_>> = bufs[..n].iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let got = self.state.recv(socket.into(), &mut slices, &mut metas[..n])?;
        for (o, m) in out.iter_mut().zip(&metas[..got]) {
            *o = Received {
                len: m.len.min(m.stride.max(1)),
                from: m.addr,
                ce: m.ecn == Some(EcnCodepoint::Ce),
            };
        }
        Ok(got)
    }
}

/// Sets the socket's default ECN field (ECT0 or CE) for what it sends.
pub fn mark<S: AsFd>(socket: &S, v6: bool, ecn: u32) -> io::Result<()> {
    let sock = SockRef::from(socket);
    if v6 {
        sock.set_tclass_v6(ecn)
    } else {
        sock.set_tos(ecn)
    }
}

/// Sends one datagram now or not at all (UDP never waits for buffer
/// space), marked CE if `ce`, else with the socket's default ECT(0). `to`
/// is `None` on a connected socket.
pub fn send_now<S: AsFd>(socket: &S, buf: &[u8], to: Option<SocketAddr>, ce: bool, v6: bool) -> io::Result<usize> {
    let sock = SockRef::from(socket);
    if ce {
        mark(socket, v6, CE)?;
    }
    let sent = match to {
        Some(addr) => sock.send_to(buf, &addr.into()),
        None => sock.send(buf),
    };
    if ce {
        mark(socket, v6, ECT0)?;
    }
    sent
}

fn set_udp_gro(sock: &SockRef<'_>, on: bool) {
    use std::os::fd::AsRawFd;
    let value: libc::c_int = on.into();
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a valid
    // pointer to a local c_int; the descriptor is borrowed and open.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn recv_one(s: &UdpSocket, e: &EcnSocket) -> Received {
        let mut bufs = vec![vec![0u8; 2048]; 4];
        let mut out = [Received { len: 0, from: "0.0.0.0:0".parse().unwrap(), ce: false }; 4];
        for _ in 0..200 {
            match e.recv_batch(s, &mut bufs, &mut out) {
                Ok(n) if n > 0 => return out[0],
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        panic!("nothing received");
    }

    #[test]
    fn ce_mark_crosses_and_ect0_is_the_default() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let erx = EcnSocket::new(&rx, false).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _etx = EcnSocket::new(&tx, false).unwrap();
        let to = rx.local_addr().unwrap();
        send_now(&tx, b"plain", Some(to), false, false).unwrap();
        let r = recv_one(&rx, &erx);
        assert_eq!((r.len, r.ce, r.from), (5, false, tx.local_addr().unwrap()));
        send_now(&tx, b"congested", Some(to), true, false).unwrap();
        let r = recv_one(&rx, &erx);
        assert_eq!((r.len, r.ce), (9, true));
        // The CE was for that one datagram only.
        send_now(&tx, b"plain", Some(to), false, false).unwrap();
        assert!(!recv_one(&rx, &erx).ce);
    }

    #[test]
    fn batches_return_each_datagram_whole() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let erx = EcnSocket::new(&rx, false).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            tx.send_to(&[i; 100], rx.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut bufs = vec![vec![0u8; 2048]; 8];
        let mut out = [Received { len: 0, from: "0.0.0.0:0".parse().unwrap(), ce: false }; 8];
        let n = erx.recv_batch(&rx, &mut bufs, &mut out).unwrap();
        assert_eq!(n, 5);
        for i in 0..5 {
            assert_eq!(&bufs[i][..out[i].len], &[i as u8; 100][..]);
        }
    }
}
