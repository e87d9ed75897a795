//! Who holds one UDP port, asked of the kernel over `NETLINK_SOCK_DIAG`.
//!
//! Why: the ownership check used to read all of /proc/net/udp and udp6,
//! one text line per UDP socket on the host (moshd's own candidates
//! included), on moshd's only thread, for every registration: O(sockets on
//! the host), which stalled the relay for tens to hundreds of milliseconds
//! at thousands of sessions. Here the kernel filters its UDP table to the
//! one source port (inet_diag, `INET_DIAG_BC_S_EQ` bytecode and the
//! request's own port field) and answers in binary only for the sockets at
//! that port, with the same facts the tables give: local address, uid and
//! inode. (The kernel still walks its whole UDP hash table for a dump, but
//! at a lock per occupied slot and a few comparisons per socket, not a
//! line of text formatted and parsed.) `facts` falls back to /proc where
//! this fails.
//!
//! The request bytes and the reply parsing are pure (and tested below);
//! `udp_sockets_at_port` does the I/O, bounded in bytes, replies and time.

use mosh_mux_proto::proc_net::UdpSocketEntry;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// From <linux/netlink.h>, <linux/sock_diag.h> and <linux/inet_diag.h>.
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x100 | 0x200; // NLM_F_ROOT | NLM_F_MATCH
const NLM_F_DUMP_INTR: u16 = 0x10;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg`.
const MSG_LEN: usize = 72;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_S_EQ: u8 = 11;
/// The bytecode: `S_EQ` (match: jump 8 to the end, accept; else jump 12,
/// past the end, reject), then the op whose `no` field carries the port.
const BYTECODE_LEN: usize = 8;
/// The whole request: header, inet_diag_req_v2, one attribute with the bytecode.
pub const REQUEST_LEN: usize = NLMSG_HDRLEN + REQ_LEN + 4 + BYTECODE_LEN;

/// Sockets at one port, at most: mosh-server binds one; more than this at
/// one port is not a mosh session, and the lookup says so rather than
/// answering in part.
pub const MAX_ENTRIES: usize = 4096;
/// Bytes read per lookup (both families), at most.
const MAX_BYTES: usize = 4 << 20;
/// recv calls per family, at most (the kernel sends a dump in chunks).
const MAX_RECVS: usize = 256;
/// One recv's buffer: the kernel's dump chunks are at most 32 KiB.
const RECV_BUF: usize = 64 << 10;
/// How long one recv may wait; the kernel answers a dump at once.
const RECV_TIMEOUT_MS: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("sock_diag socket: {0}")]
    Io(#[from] io::Error),
    #[error("the kernel refused the sock_diag request: {}", io::Error::from_raw_os_error(*.0))]
    Kernel(i32),
    #[error("malformed sock_diag reply: {0}")]
    Malformed(&'static str),
    #[error("the sock_diag reply exceeds its bounds")]
    Overflow,
    /// More than `MAX_ENTRIES` sockets at the port.
    #[error("more than {MAX_ENTRIES} sockets at the port")]
    TooMany,
}

impl LookupError {
    /// Whether asking again would fail the same way (netlink or inet_diag
    /// missing, or forbidden here).
    pub fn is_permanent(&self) -> bool {
        let errno = match self {
            LookupError::Io(e) => e.raw_os_error(),
            LookupError::Kernel(errno) => Some(*errno),
            _ => None,
        };
        matches!(
            errno,
            Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::ENOENT | libc::EOPNOTSUPP | libc::EPERM | libc::EACCES)
        )
    }
}

/// The dump request for the UDP sockets of `family` (`AF_INET` or
/// `AF_INET6`) whose local port is `port`.
pub fn build_request(family: u8, port: u16, seq: u32) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    // struct nlmsghdr
    b[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // struct inet_diag_req_v2 (pid, ext, pad, dport, addresses, if, cookie: 0)
    let r = NLMSG_HDRLEN;
    b[r] = family;
    b[r + 1] = libc::IPPROTO_UDP as u8;
    b[r + 4..r + 8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    b[r + 8..r + 10].copy_from_slice(&port.to_be_bytes()); // id.idiag_sport
    // struct nlattr, then the bytecode (ports in host order)
    let a = r + REQ_LEN;
    b[a..a + 2].copy_from_slice(&((4 + BYTECODE_LEN) as u16).to_ne_bytes());
    b[a + 2..a + 4].copy_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    let c = a + 4;
    b[c] = INET_DIAG_BC_S_EQ;
    b[c + 1] = 8;
    b[c + 2..c + 4].copy_from_slice(&12u16.to_ne_bytes());
    b[c + 6..c + 8].copy_from_slice(&port.to_ne_bytes());
    b
}

/// Whether a reply buffer ended the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    More,
    Done,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Parses one datagram of the kernel's reply to request `seq`, appending
/// the sockets at `port` to `out`. Messages of other sequence numbers are
/// skipped; a malformed message, a kernel error or more than `MAX_ENTRIES`
/// sockets end the lookup with an error.
pub fn parse_reply(buf: &[u8], seq: u32, port: u16, out: &mut Vec<UdpSocketEntry>) -> Result<Progress, LookupError> {
    let mut rest = buf;
    while !rest.is_empty() {
        let malformed = LookupError::Malformed;
        let len = u32_at(rest, 0).ok_or(malformed("short header"))? as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(malformed("bad message length"));
        }
        let kind = u16_at(rest, 4).ok_or(malformed("short header"))?;
        let flags = u16_at(rest, 6).ok_or(malformed("short header"))?;
        let msg_seq = u32_at(rest, 8).ok_or(malformed("short header"))?;
        let payload = rest.get(NLMSG_HDRLEN..len).ok_or(malformed("bad message length"))?;
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        if msg_seq != seq {
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            return Err(malformed("dump interrupted"));
        }
        match kind {
            NLMSG_NOOP => {}
            NLMSG_DONE => {
                // A dump's DONE carries its outcome: 0, or a negative errno.
                let status = u32_at(payload, 0).map(|s| s as i32).unwrap_or(0);
                return if status < 0 { Err(LookupError::Kernel(status.saturating_neg())) } else { Ok(Progress::Done) };
            }
            NLMSG_ERROR => {
                let status = u32_at(payload, 0).ok_or(malformed("short error"))? as i32;
                if status < 0 {
                    return Err(LookupError::Kernel(status.saturating_neg()));
                }
                // 0 is an acknowledgement, which a dump does not end with.
            }
            SOCK_DIAG_BY_FAMILY => {
                let entry = parse_inet_diag_msg(payload).ok_or(malformed("short inet_diag_msg"))?;
                if entry.port == port {
                    if out.len() >= MAX_ENTRIES {
                        return Err(LookupError::TooMany);
                    }
                    out.push(entry);
                }
            }
            _ => return Err(malformed("unexpected message type")),
        }
    }
    Ok(Progress::More)
}

/// One `struct inet_diag_msg`: family, local port and address, uid, inode.
fn parse_inet_diag_msg(m: &[u8]) -> Option<UdpSocketEntry> {
    if m.len() < MSG_LEN {
        return None;
    }
    let port = u16::from_be_bytes(m.get(4..6)?.try_into().ok()?);
    let ip = match i32::from(*m.first()?) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(m.get(8..12)?).ok()?)),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(m.get(8..24)?).ok()?)),
        _ => return None,
    };
    let uid = u32_at(m, 64)?;
    let inode = u64::from(u32_at(m, 68)?);
    Some(UdpSocketEntry { ip, port, uid, inode })
}

/// Every UDP socket (IPv4 and IPv6) in moshd's network namespace whose
/// local port is `port`, whatever its address: the kernel's answer, in
/// one round trip per family.
pub fn udp_sockets_at_port(port: u16) -> Result<Vec<UdpSocketEntry>, LookupError> {
    let fd = open()?;
    let mut buf = vec![0u8; RECV_BUF];
    let mut out = Vec::new();
    let mut budget = MAX_BYTES;
    for (seq, family) in [(1, libc::AF_INET), (2, libc::AF_INET6)] {
        send_to_kernel(&fd, &build_request(family as u8, port, seq))?;
        let mut done = false;
        for _ in 0..MAX_RECVS {
            let n = recv_from_kernel(&fd, &mut buf)?;
            let Some(chunk) = n.and_then(|n| buf.get(..n)) else { continue };
            budget = budget.checked_sub(chunk.len()).ok_or(LookupError::Overflow)?;
            if parse_reply(chunk, seq, port, &mut out)? == Progress::Done {
                done = true;
                break;
            }
        }
        if !done {
            return Err(LookupError::Overflow);
        }
    }
    Ok(out)
}

fn open() -> io::Result<OwnedFd> {
    // SAFETY: plain arguments; the result is checked.
    let fd = unsafe {
        libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval { tv_sec: 0, tv_usec: (RECV_TIMEOUT_MS * 1000) as libc::suseconds_t };
    // SAFETY: a valid option value of its own size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn kernel_addr() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain data; all zeroes is the kernel's address.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr
}

fn send_to_kernel(fd: &OwnedFd, request: &[u8]) -> io::Result<()> {
    let addr = kernel_addr();
    for _ in 0..8 {
        // SAFETY: the buffer and address are valid for their lengths.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n >= 0 {
            return if n as usize == request.len() {
                Ok(())
            } else {
                Err(io::Error::new(io::ErrorKind::WriteZero, "short netlink send"))
            };
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Err(io::ErrorKind::Interrupted.into())
}

/// One datagram from the kernel: its length, or `None` for one that is
/// not the kernel's (skipped) or an interrupted call. A datagram longer
/// than `buf` is an error rather than a truncated answer.
fn recv_from_kernel(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut from = kernel_addr();
    let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: the buffer and address are valid for their lengths.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&mut from as *mut libc::sockaddr_nl).cast(),
            &mut from_len,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(e) };
    }
    let n = n as usize;
    if n > buf.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "netlink reply truncated"));
    }
    Ok((from.nl_pid == 0).then_some(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// A message as the kernel frames it: header, payload, padding to 4.
    fn message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(len.next_multiple_of(4), 0);
        m
    }

    fn diag_msg(ip: IpAddr, port: u16, uid: u32, inode: u32) -> Vec<u8> {
        let mut p = vec![0u8; MSG_LEN];
        match ip {
            IpAddr::V4(v4) => {
                p[0] = libc::AF_INET as u8;
                p[8..12].copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                p[0] = libc::AF_INET6 as u8;
                p[8..24].copy_from_slice(&v6.octets());
            }
        }
        p[1] = 7; // TCP_CLOSE: bound, not connected
        p[4..6].copy_from_slice(&port.to_be_bytes());
        p[44..52].copy_from_slice(&[0xAA; 8]); // the cookie, ignored
        p[64..68].copy_from_slice(&uid.to_ne_bytes());
        p[68..72].copy_from_slice(&inode.to_ne_bytes());
        p
    }

    fn entry(ip: &str, port: u16, uid: u32, inode: u64) -> UdpSocketEntry {
        UdpSocketEntry { ip: ip.parse().unwrap(), port, uid, inode }
    }

    #[test]
    fn request_bytes() {
        let r = build_request(libc::AF_INET6 as u8, 0xC833, 7);
        assert_eq!(r.len(), 84);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 84);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
        assert_eq!(&r[16..20], &[10, 17, 0, 0]);
        assert_eq!(&r[20..24], &[0xff; 4]);
        assert_eq!(&r[24..26], &[0xC8, 0x33]); // sport, network order
        assert!(r[26..72].iter().all(|&b| b == 0));
        assert_eq!(u16::from_ne_bytes(r[72..74].try_into().unwrap()), 12);
        assert_eq!(u16::from_ne_bytes(r[74..76].try_into().unwrap()), 1);
        assert_eq!(&r[76..78], &[11, 8]);
        assert_eq!(u16::from_ne_bytes(r[78..80].try_into().unwrap()), 12);
        assert_eq!(&r[80..82], &[0, 0]);
        assert_eq!(u16::from_ne_bytes(r[82..84].try_into().unwrap()), 0xC833);
    }

    #[test]
    fn parses_a_handcrafted_reply() {
        let mut reply = Vec::new();
        reply.extend(message(20, 0x2, 1, &diag_msg("127.0.0.1".parse().unwrap(), 5000, 1001, 4242)));
        reply.extend(message(20, 0x2, 1, &diag_msg("::ffff:127.0.0.1".parse().unwrap(), 5000, 1002, 77)));
        // Another port (a kernel that did not filter) and another sequence: skipped.
        reply.extend(message(20, 0x2, 1, &diag_msg("127.0.0.1".parse().unwrap(), 5001, 1003, 1)));
        reply.extend(message(20, 0x2, 9, &diag_msg("127.0.0.1".parse().unwrap(), 5000, 1004, 2)));
        let mut out = Vec::new();
        assert_eq!(parse_reply(&reply, 1, 5000, &mut out).unwrap(), Progress::More);
        let done = message(NLMSG_DONE, 0x2, 1, &0i32.to_ne_bytes());
        assert_eq!(parse_reply(&done, 1, 5000, &mut out).unwrap(), Progress::Done);
        assert_eq!(out, vec![entry("127.0.0.1", 5000, 1001, 4242), entry("::ffff:127.0.0.1", 5000, 1002, 77)]);
    }

    #[test]
    fn kernel_errors_and_malformed_replies() {
        let mut out = Vec::new();
        let err = message(NLMSG_ERROR, 0, 1, &(-libc::EPERM).to_ne_bytes());
        assert!(matches!(parse_reply(&err, 1, 1, &mut out), Err(LookupError::Kernel(libc::EPERM))));
        let done_err = message(NLMSG_DONE, 0, 1, &(-libc::ENOBUFS).to_ne_bytes());
        assert!(matches!(parse_reply(&done_err, 1, 1, &mut out), Err(LookupError::Kernel(libc::ENOBUFS))));
        assert!(LookupError::Kernel(libc::EPERM).is_permanent());
        assert!(!LookupError::Kernel(libc::ENOBUFS).is_permanent());
        let short = message(20, 0, 1, &[2; 40]);
        assert!(matches!(parse_reply(&short, 1, 1, &mut out), Err(LookupError::Malformed(_))));
        let mut long = message(20, 0, 1, &diag_msg("127.0.0.1".parse().unwrap(), 1, 0, 0));
        long[0] = 200;
        assert!(matches!(parse_reply(&long, 1, 1, &mut out), Err(LookupError::Malformed(_))));
        let intr = message(20, NLM_F_DUMP_INTR, 1, &diag_msg("127.0.0.1".parse().unwrap(), 1, 0, 0));
        assert!(parse_reply(&intr, 1, 1, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn too_many_sockets_at_one_port() {
        let one = message(20, 0x2, 1, &diag_msg("127.0.0.1".parse().unwrap(), 9, 0, 1));
        let mut out = Vec::new();
        for _ in 0..MAX_ENTRIES {
            assert_eq!(parse_reply(&one, 1, 9, &mut out).unwrap(), Progress::More);
        }
        assert!(matches!(parse_reply(&one, 1, 9, &mut out), Err(LookupError::TooMany)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), seq in 0u32..3, port: u16) {
            let mut out = Vec::new();
            let _ = parse_reply(&bytes, seq, port, &mut out);
        }

        #[test]
        fn arbitrary_messages_never_panic(
            msgs in proptest::collection::vec((0u16..25, any::<u16>(), 0u32..3, proptest::collection::vec(any::<u8>(), 0..100)), 0..8),
        ) {
            let reply: Vec<u8> = msgs.iter().flat_map(|(k, f, s, p)| message(*k, *f, *s, p)).collect();
            let mut out = Vec::new();
            let _ = parse_reply(&reply, 1, 0, &mut out);
        }

        #[test]
        fn well_formed_replies_round_trip(socks in proptest::collection::vec((any::<[u8; 16]>(), any::<bool>(), any::<u32>(), any::<u32>()), 0..20)) {
            let want: Vec<UdpSocketEntry> = socks
                .iter()
                .map(|(a, v6, uid, inode)| {
                    let ip = if *v6 { IpAddr::V6(Ipv6Addr::from(*a)) } else { IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])) };
                    UdpSocketEntry { ip, port: 60001, uid: *uid, inode: u64::from(*inode) }
                })
                .collect();
            let mut reply: Vec<u8> = want
                .iter()
                .flat_map(|e| message(20, 0x2, 2, &diag_msg(e.ip, e.port, e.uid, e.inode as u32)))
                .collect();
            reply.extend(message(NLMSG_DONE, 0x2, 2, &0i32.to_ne_bytes()));
            let mut out = Vec::new();
            prop_assert_eq!(parse_reply(&reply, 2, 60001, &mut out).unwrap(), Progress::Done);
            prop_assert_eq!(out, want);
        }
    }

    /// The inode of a descriptor of this process, as /proc/self/fd names it.
    fn inode_of(sock: &UdpSocket) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", sock.as_raw_fd())).unwrap();
        crate::facts::parse_socket_link(link.to_str().unwrap()).unwrap()
    }

    #[test]
    fn finds_this_processs_sockets() {
        let me = nix::unistd::getuid().as_raw();
        for addr in ["127.0.0.1:0", "[::1]:0", "0.0.0.0:0", "[::]:0"] {
            let Ok(sock) = UdpSocket::bind(addr) else {
                assert!(addr.starts_with('['), "cannot bind {addr}");
                continue; // no IPv6 here
            };
            let local = sock.local_addr().unwrap();
            let found = udp_sockets_at_port(local.port()).unwrap();
            assert_eq!(found, vec![UdpSocketEntry { ip: local.ip(), port: local.port(), uid: me, inode: inode_of(&sock) }], "{addr}");
        }
    }

    #[test]
    fn an_unused_port_yields_nothing() {
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Dropped: nothing holds the port now (unless something raced for it).
        assert_eq!(udp_sockets_at_port(port).unwrap(), vec![]);
    }

    #[test]
    fn agrees_with_proc() {
        // 127.0.0.1 and 0.0.0.0 (both receive), [::1] (does not).
        use socket2::{Domain, Socket, Type};
        let reusable = |addr: std::net::SocketAddr| {
            let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None).unwrap();
            s.set_reuse_address(true).unwrap();
            s.bind(&addr.into()).map(|()| s)
        };
        let v4 = reusable("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = v4.local_addr().unwrap().as_socket().unwrap().port();
        let _any = reusable(([0, 0, 0, 0], port).into()).unwrap();
        let _v6 = reusable((Ipv6Addr::LOCALHOST, port).into());
        let tables = crate::proc_net::read_tables().unwrap();
        let from_proc = crate::proc_net::sockets_at_loopback_port(&[&tables[0], &tables[1]], port);
        let mut from_netlink: Vec<_> = udp_sockets_at_port(port)
            .unwrap()
            .into_iter()
            .filter(|e| crate::proc_net::receives_loopback_v4(e.ip))
            .collect();
        let mut from_proc = from_proc;
        from_proc.sort_by_key(|e| e.inode);
        from_netlink.sort_by_key(|e| e.inode);
        assert_eq!(from_netlink, from_proc);
        assert_eq!(from_proc.len(), 2);
    }

    /// A measurement, not a check: how long one port's lookup takes, by
    /// netlink and by /proc, with few and with many other UDP sockets in the
    /// namespace (this process holds them; `gather` is timed only while it
    /// holds few, as it also lists the pid's descriptors).
    /// `cargo test -p moshd --release --lib sock_diag::tests::lookup_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn lookup_cost() {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let time = |n: u32, f: &dyn Fn()| {
            let t = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n
        };
        let gather = time(1000, &|| assert_eq!(crate::facts::gather(port, std::process::id()).port_sockets.len(), 1));
        println!("facts::gather, this process holding few descriptors: {gather:?}");
        let mut others = Vec::new();
        for extra in [0, 1_000, 10_000, 19_000] {
            while others.len() < extra {
                others.push(UdpSocket::bind("127.0.0.1:0").unwrap());
            }
            let sockets = std::fs::read_to_string("/proc/net/udp").map(|s| s.lines().count() - 1).unwrap_or(0);
            let netlink = time(1000, &|| assert_eq!(udp_sockets_at_port(port).unwrap().len(), 1));
            let proc = time(20, &|| {
                let tables = crate::proc_net::read_tables().unwrap();
                assert_eq!(crate::proc_net::sockets_at_loopback_port(&[&tables[0], &tables[1]], port).len(), 1);
            });
            println!("{sockets} IPv4 UDP sockets in the namespace: one port's lookup by sock_diag {netlink:?}, by /proc/net/udp{{,6}} {proc:?}");
        }
    }
}
