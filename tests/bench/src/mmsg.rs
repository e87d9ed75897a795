//! Batched UDP I/O with `recvmmsg`/`sendmmsg`, for the load side of the
//! benchmark: the generator and the echo servers must cost less per datagram
//! than the forwarder under test, or they, not it, would set the rate.

use socket2::SockAddr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Room for one datagram: mosh's receive buffer plus the mux header.
pub const SLOT: usize = 2048 + 64;

/// `count` datagram slots with their lengths and peer addresses.
pub struct Batch {
    bufs: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
}

fn empty_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is valid (AF_UNSPEC).
    unsafe { std::mem::zeroed() }
}

impl Batch {
    pub fn new(count: usize) -> Self {
        let count = count.max(1);
        Batch {
            bufs: vec![0; count * SLOT],
            lens: vec![0; count],
            addrs: vec![empty_storage(); count],
            addr_lens: vec![0; count],
        }
    }

    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// The whole slot `i`, to fill before `set_len`.
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.bufs[i * SLOT..(i + 1) * SLOT]
    }

    pub fn set_len(&mut self, i: usize, len: usize) {
        self.lens[i] = len.min(SLOT);
    }

    /// The datagram in slot `i`.
    pub fn data(&self, i: usize) -> &[u8] {
        &self.bufs[i * SLOT..i * SLOT + self.lens[i]]
    }

    pub fn data_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.lens[i];
        &mut self.bufs[i * SLOT..i * SLOT + len]
    }

    /// The peer of slot `i` (the source of a received datagram).
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        // SAFETY: the storage and length come from the kernel (recvmmsg) or
        // from `set_addr`, so they describe a valid address or AF_UNSPEC.
        let sa = unsafe { SockAddr::new(self.addrs[i], self.addr_lens[i]) };
        sa.as_socket()
    }

    pub fn set_addr(&mut self, i: usize, addr: SocketAddr) {
        let sa = SockAddr::from(addr);
        let mut storage = empty_storage();
        let len = (sa.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: both regions are at least `len` bytes and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                sa.as_ptr() as *const u8,
                &mut storage as *mut libc::sockaddr_storage as *mut u8,
                len,
            );
        }
        self.addrs[i] = storage;
        self.addr_lens[i] = len as libc::socklen_t;
    }

    fn headers(&mut self, n: usize, with_addr: bool) -> (Vec<libc::iovec>, Vec<libc::mmsghdr>) {
        let n = n.min(self.capacity());
        let mut iovs: Vec<libc::iovec> = (0..n)
            .map(|i| libc::iovec {
                iov_base: self.bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void,
                iov_len: if with_addr { SLOT } else { self.lens[i] },
            })
            .collect();
        let mut hdrs = Vec::with_capacity(n);
        for (i, iov) in iovs.iter_mut().enumerate() {
            // SAFETY: msghdr is plain old data; the fields that matter are set below.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = &mut self.addrs[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
            msg.msg_namelen = if with_addr {
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t
            } else {
                self.addr_lens[i]
            };
            msg.msg_iov = iov as *mut libc::iovec;
            msg.msg_iovlen = 1;
            hdrs.push(libc::mmsghdr {
                msg_hdr: msg,
                msg_len: 0,
            });
        }
        (iovs, hdrs)
    }

    /// Receives up to `capacity` datagrams without waiting; 0 when none wait.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let (_iovs, mut hdrs) = self.headers(self.capacity(), true);
        // SAFETY: every header points into buffers owned by `self` (and the
        // iovecs in `_iovs`), which outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (i, h) in hdrs.iter().take(n).enumerate() {
            self.lens[i] = h.msg_len as usize;
            self.addr_lens[i] = h.msg_hdr.msg_namelen;
        }
        Ok(n)
    }

    /// Sends slots `0..n`, each to its own address (or, on a connected
    /// socket with addresses unset, to the peer). Never waits: what the
    /// socket buffer cannot take is dropped. Returns how many were sent.
    pub fn send(&mut self, fd: RawFd, n: usize) -> io::Result<usize> {
        let (_iovs, mut hdrs) = self.headers(n, false);
        let mut done = 0;
        // Bounded: each round sends at least one datagram or stops.
        while done < hdrs.len() {
            let rest = &mut hdrs[done..];
            // SAFETY: as in `recv`.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent <= 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(done),
                    _ if done > 0 => Ok(done),
                    _ => Err(e),
                };
            }
            done += sent as usize;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn batch_round_trip_over_loopback() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut out = Batch::new(4);
        for i in 0..3 {
            out.slot_mut(i)[..5].copy_from_slice(&[i as u8; 5]);
            out.set_len(i, 5);
            out.set_addr(i, b.local_addr().unwrap());
        }
        assert_eq!(out.send(a.as_raw_fd(), 3).unwrap(), 3);
        let mut got = Batch::new(8);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = got.recv(b.as_raw_fd()).unwrap();
        assert_eq!(n, 3);
        for i in 0..3 {
            assert_eq!(got.data(i), &[i as u8; 5]);
            assert_eq!(got.addr(i), Some(a.local_addr().unwrap()));
        }
        assert_eq!(got.recv(b.as_raw_fd()).unwrap(), 0);
    }
}
