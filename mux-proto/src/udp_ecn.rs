//! Carrying ECN across a relay hop, as mosh expects end to end.
//!
//! mosh marks its datagrams ECT(0) and treats a CE mark on a received one as
//! congestion. A relay that re-sends a datagram must therefore send ECT(0)
//! by default and pass a CE mark that arrived with a datagram on to the next
//! hop. Receiving: quinn-udp (`EcnSocket`) reads each datagram's ECN bits
//! from its control message (with recvmmsg, so a burst costs one system
//! call). Sending (`send_now`): ECT(0) is the socket's default, and a CE
//! mark goes in a control message of its own datagram. The lean receive side
//! (`set_up_lean`, `recv_ecn_batch`) reads the ECN bits without quinn-udp's
//! other receive metadata (packet info, timestamps).

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

/// Sets `socket` up as `EcnSocket::new` does in all a peer can see: ECT(0)
/// on what it sends, Don't Fragment as quinn-udp sets it (path MTU probing),
/// no receive offload; and to read each incoming datagram's ECN bits, for
/// `recv_ecn_batch`. Unlike `EcnSocket::new`, it asks for no other receive
/// metadata: not the packet info, and not timestamps, which the kernel,
/// once any socket asks for them, takes for every packet the host receives.
/// The socket becomes non-blocking.
pub fn set_up_lean<S: AsFd>(socket: &S, v6: bool) -> io::Result<()> {
    SockRef::from(socket).set_nonblocking(true)?;
    let unsupported_is_fine = |r: io::Result<()>| match r {
        Err(e) if !matches!(e.raw_os_error(), Some(libc::ENOPROTOOPT | libc::EOPNOTSUPP)) => Err(e),
        _ => Ok(()),
    };
    unsupported_is_fine(set_int(socket, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE))?;
    if v6 {
        unsupported_is_fine(set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_PROBE))?;
        unsupported_is_fine(set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1))?;
        set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1)?;
    }
    // IPv4, or IPv4-mapped on a dual-stack socket; not fatal, as in quinn-udp.
    let _ = set_int(socket, libc::IPPROTO_IP, libc::IP_RECVTOS, 1);
    mark(socket, v6, ECT0)
}

fn set_int<S: AsFd>(socket: &S, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a valid
    // pointer to a local c_int; the descriptor is borrowed and open.
    let r = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receives up to `bufs.len()` (at most BATCH) datagrams with one
/// `recvmmsg`, reading each one's ECN bits (the socket must have been set
/// up by `set_up_lean` or `EcnSocket::new`), into caller-made slices. On a
/// blocking socket, waits for the first datagram, then takes whatever else
/// is queued (`MSG_WAITFORONE`); on a non-blocking one, `WouldBlock` when
/// there are none. Fewer datagrams than asked for means the queue was empty
/// when the call returned. A datagram longer than its buffer is cut to the
/// buffer's length.
pub fn recv_ecn_batch<S: AsFd>(socket: &S, bufs: &mut [IoSliceMut<'_>], out: &mut [Received]) -> io::Result<usize> {
    use std::mem::{size_of, MaybeUninit};
    use std::os::fd::AsRawFd;
    let n = bufs.len().min(out.len()).min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut names = [MaybeUninit::<libc::sockaddr_storage>::uninit(); BATCH];
    // Room for the control messages of one datagram: the ECN byte, and
    // whatever else an `EcnSocket::new` socket asks for (timestamp, packet
    // info); u64 words, as control messages must be aligned for cmsghdr.
    const CONTROL_WORDS: usize = 16;
    let mut controls = [[0u64; CONTROL_WORDS]; BATCH];
    // SAFETY: mmsghdr is a plain C struct for which all-zero bytes are a
    // valid value (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (((hdr, name), control), buf) in hdrs.iter_mut().zip(names.iter_mut()).zip(controls.iter_mut()).zip(bufs[..n].iter_mut()) {
        *name = MaybeUninit::zeroed();
        hdr.msg_hdr.msg_name = name.as_mut_ptr().cast();
        hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // IoSliceMut is guaranteed ABI-compatible with iovec on Unix.
        hdr.msg_hdr.msg_iov = (buf as *mut IoSliceMut<'_>).cast::<libc::iovec>();
        hdr.msg_hdr.msg_iovlen = 1;
        hdr.msg_hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
    }
    let fd = socket.as_fd().as_raw_fd();
    let got = loop {
        // SAFETY: the first `n` headers point at live, writable buffers,
        // address and control storage that outlive the call; `fd` is
        // borrowed and open; a null timeout is allowed.
        let r = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_WAITFORONE, std::ptr::null_mut()) };
        if r >= 0 {
            break (r as usize).min(n);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    for i in 0..got {
        let hdr = &hdrs[i].msg_hdr;
        let namelen = hdr.msg_namelen.min(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        // SAFETY: the first `n` (>= `got`) storages were zeroed above, and
        // all-zero is a valid sockaddr_storage; the kernel wrote the address.
        let storage = unsafe { names[i].assume_init() };
        // SAFETY: `namelen` bytes of `storage` hold a socket address.
        let addr = unsafe { socket2::SockAddr::new(storage, namelen) };
        let from = addr
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram from a non-IP address"))?;
        out[i] = Received {
            len: (hdrs[i].msg_len as usize).min(bufs[i].len()),
            from,
            ce: ecn_bits(hdr) == Some(CE as u8),
        };
    }
    Ok(got)
}

/// The ECN bits in a received datagram's control messages (IP_TOS, or
/// IPV6_TCLASS), if there are any.
fn ecn_bits(hdr: &libc::msghdr) -> Option<u8> {
    use std::mem::size_of;
    let mut bits = None;
    // SAFETY: `hdr` is a msghdr the kernel filled in: `msg_control` points
    // at our aligned control buffer and `msg_controllen` says how much of it
    // holds control messages; CMSG_FIRSTHDR/CMSG_NXTHDR stay within that.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: a non-null cmsg from CMSG_FIRSTHDR/NXTHDR is an aligned
        // header inside the control buffer.
        let c = unsafe { &*cmsg };
        let len = c.cmsg_len as usize;
        // SAFETY: CMSG_LEN is plain arithmetic.
        let fits = |size: usize| len >= unsafe { libc::CMSG_LEN(size as libc::c_uint) } as usize;
        match (c.cmsg_level, c.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_TOS) if fits(1) => {
                // SAFETY: the message holds at least one data byte.
                bits = Some(unsafe { *libc::CMSG_DATA(cmsg) } & 0b11);
            }
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if fits(size_of::<libc::c_int>()) => {
                // SAFETY: the message holds a c_int, maybe unaligned.
                let tclass = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>()) };
                bits = Some((tclass & 0b11) as u8);
            }
            _ => {}
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    bits
}

/// Sends one datagram now or not at all, even on a blocking socket
/// (`MSG_DONTWAIT`: UDP never waits for buffer space), to `to`, or to the
/// peer of a connected socket when `None`: marked CE if `ce`, else with the
/// socket's default ECT(0). The CE mark rides in a control message for this
/// datagram alone, so threads that share the socket never mark each other's.
pub fn send_now<S: AsFd>(socket: &S, buf: &[u8], to: Option<SocketAddr>, ce: bool, v6: bool) -> io::Result<usize> {
    let sock = SockRef::from(socket);
    let addr = to.map(socket2::SockAddr::from);
    if !ce {
        return match &addr {
            Some(addr) => sock.send_to_with_flags(buf, addr, libc::MSG_DONTWAIT),
            None => sock.send_with_flags(buf, libc::MSG_DONTWAIT),
        };
    }
    // One control message with the TOS (TCLASS) value as a c_int, built
    // with the CMSG macros in an aligned, fully initialised buffer.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE is plain arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as libc::c_uint) } as usize;
    let space = space.min(std::mem::size_of_val(&control));
    // SAFETY: msghdr is a plain C struct; all-zero bytes are a valid value.
    let mut layout: libc::msghdr = unsafe { std::mem::zeroed() };
    layout.msg_control = control.as_mut_ptr().cast();
    layout.msg_controllen = space as _;
    // SAFETY: `layout` describes `control`, which is aligned for cmsghdr and
    // `space` (CMSG_SPACE of a c_int) bytes long, so CMSG_FIRSTHDR points at
    // its start and header and data both lie within it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&layout);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for a control message"));
        }
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as libc::c_uint) as _;
        (*cmsg).cmsg_level = if v6 { libc::IPPROTO_IPV6 } else { libc::IPPROTO_IP };
        (*cmsg).cmsg_type = if v6 { libc::IPV6_TCLASS } else { libc::IP_TOS };
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), CE as libc::c_int);
    }
    // SAFETY: the first `space` bytes of the u64 array, viewed as bytes.
    let bytes = unsafe { std::slice::from_raw_parts(control.as_ptr().cast::<u8>(), space) };
    let iov = [io::IoSlice::new(buf)];
    let msg = socket2::MsgHdr::new().with_buffers(&iov).with_control(bytes);
    let msg = match &addr {
        Some(addr) => msg.with_addr(addr),
        None => msg,
    };
    sock.sendmsg(&msg, libc::MSG_DONTWAIT)
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
    fn ecn_batches_say_when_the_queue_is_empty() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_up_lean(&rx, false).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut bufs = vec![[0u8; 64]; 4];
        let mut out = [Received { len: 0, from: "0.0.0.0:0".parse().unwrap(), ce: false }; 4];
        let mut slices: Vec<IoSliceMut<'_>> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let empty = recv_ecn_batch(&rx, &mut slices, &mut out).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        for i in 0..6u8 {
            let size = if i == 5 { 100 } else { 10 + usize::from(i) };
            tx.send_to(&vec![i; size], rx.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(recv_ecn_batch(&rx, &mut slices, &mut out).unwrap(), 4);
        for (i, o) in out.iter().enumerate() {
            assert_eq!((o.len, o.from, o.ce), (10 + i, tx.local_addr().unwrap(), false));
        }
        // A short batch: the queue is empty now; the long datagram is cut.
        assert_eq!(recv_ecn_batch(&rx, &mut slices, &mut out).unwrap(), 2);
        assert_eq!((out[0].len, out[1].len), (14, 64));
        drop(slices);
        assert_eq!(&bufs[1][..64], &[5u8; 64][..]);
    }

    #[test]
    fn blocking_batches_wait_for_the_first_and_take_the_rest() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_up_lean(&rx, false).unwrap();
        rx.set_nonblocking(false).unwrap();
        let to = rx.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            let _etx = EcnSocket::new(&tx, false).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            // Marked per datagram: only the second one is CE.
            send_now(&tx, b"plain", Some(to), false, false).unwrap();
            send_now(&tx, b"congested", Some(to), true, false).unwrap();
            send_now(&tx, b"plain again", Some(to), false, false).unwrap();
        });
        let mut bufs = vec![[0u8; 64]; 4];
        let mut out = [Received { len: 0, from: "0.0.0.0:0".parse().unwrap(), ce: false }; 4];
        let mut got = vec![];
        while got.len() < 3 {
            let mut slices: Vec<IoSliceMut<'_>> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            let n = recv_ecn_batch(&rx, &mut slices, &mut out).unwrap();
            assert!(n >= 1, "a blocking receive returns with a datagram");
            for (buf, o) in bufs.iter().zip(&out[..n]) {
                got.push((buf[..o.len].to_vec(), o.ce));
            }
        }
        sender.join().unwrap();
        assert_eq!(
            got,
            vec![(b"plain".to_vec(), false), (b"congested".to_vec(), true), (b"plain again".to_vec(), false)]
        );
    }

    fn get_int(s: &UdpSocket, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        use std::os::fd::AsRawFd;
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes to a local c_int.
        let r = unsafe { libc::getsockopt(s.as_raw_fd(), level, name, (&mut value as *mut libc::c_int).cast(), &mut len) };
        assert_eq!(r, 0);
        value
    }

    /// A lean socket sends as an EcnSocket does, and asks for no timestamps.
    #[test]
    fn lean_set_up_sends_like_ecn_socket_new() {
        let lean = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_up_lean(&lean, false).unwrap();
        let quinn = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _e = EcnSocket::new(&quinn, false).unwrap();
        for (level, name) in [
            (libc::IPPROTO_IP, libc::IP_TOS),
            (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            (libc::IPPROTO_IP, libc::IP_RECVTOS),
            (libc::SOL_UDP, libc::UDP_GRO),
        ] {
            assert_eq!(get_int(&lean, level, name), get_int(&quinn, level, name), "option {level}/{name}");
        }
        assert_eq!(get_int(&lean, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS), 0);
        assert_eq!(get_int(&lean, libc::IPPROTO_IP, libc::IP_PKTINFO), 0);
        let Ok(lean6) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 on this host
        };
        set_up_lean(&lean6, true).unwrap();
        let quinn6 = UdpSocket::bind("[::1]:0").unwrap();
        let _e6 = EcnSocket::new(&quinn6, true).unwrap();
        for (level, name) in [
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS),
            (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
            (libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG),
            (libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS),
            (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
        ] {
            assert_eq!(get_int(&lean6, level, name), get_int(&quinn6, level, name), "option {level}/{name}");
        }
    }

    #[test]
    fn v6_ce_mark_crosses_when_v6_loopback_exists() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 on this host
        };
        let _erx = EcnSocket::new(&rx, true).unwrap();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        let _etx = EcnSocket::new(&tx, true).unwrap();
        send_now(&tx, b"congested", Some(rx.local_addr().unwrap()), true, true).unwrap();
        let mut buf = [0u8; 64];
        let mut out = [Received { len: 0, from: "0.0.0.0:0".parse().unwrap(), ce: false }; 1];
        for _ in 0..200 {
            if let Ok(1) = recv_ecn_batch(&rx, &mut [IoSliceMut::new(&mut buf)], &mut out) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!((out[0].len, out[0].ce, &buf[..9]), (9, true, &b"congested"[..]));
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
