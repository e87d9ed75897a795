//! The receive side of the inner hop: every candidate socket in one epoll
//! set, read by one task into one shared set of buffers.
//!
//! Why this exists: moshd holds one loopback socket per (client address,
//! session), so thousands of them, while each carries at most mosh's ~50
//! datagrams a second. With a tokio task and a receive buffer per socket,
//! every datagram cost its own readiness event, task wake and task poll, plus
//! a `recv` ending in `EAGAIN` before the task could sleep again, and every
//! socket held a 4 KiB buffer and tokio's per-task and per-registration state
//! even when idle. Here the candidate sockets are plain non-blocking sockets,
//! not registered with tokio, each in one level-triggered epoll set with its
//! `CandKey` as the event's data; only that set's descriptor is registered
//! with tokio. One wake-up of the task that awaits it (`inner_loop` in
//! `daemon.rs`) takes every ready socket at once (up to `MAX_EVENTS`) and
//! reads each with one `recvmmsg` of up to `BATCH` datagrams into the
//! buffers of a `RecvBatch`. Level triggering reports a socket again while
//! it still holds datagrams, so no read has to end in `EAGAIN` to show that a
//! socket is drained.
//!
//! The set itself, and the one rule for clearing its readiness, is
//! `epoll_set::EpollSet`.

use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrIn};
use std::io::{self, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// Ready sockets taken from the set per round.
pub const MAX_EVENTS: usize = 32;
/// Datagrams read from one socket per round (one `recvmmsg`). With
/// `MAX_EVENTS`, a round handles at most 256 datagrams before the runtime
/// gets its turn.
pub const BATCH: usize = 8;

/// One shared set of `BATCH` receive buffers of `LEN` bytes, and what one
/// `recvmmsg` put in them.
pub struct RecvBatch<const LEN: usize> {
    bufs: Box<[[u8; LEN]; BATCH]>,
    lens: [usize; BATCH],
    received: usize,
    /// Candidate sockets are IPv4 (loopback); the kernel writes each
    /// datagram's source here, which nothing reads.
    headers: MultiHeaders<SockaddrIn>,
}

impl<const LEN: usize> RecvBatch<LEN> {
    pub fn new() -> Self {
        RecvBatch {
            bufs: Box::new([[0; LEN]; BATCH]),
            lens: [0; BATCH],
            received: 0,
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Receives up to `BATCH` datagrams from `socket` with one `recvmmsg`,
    /// without waiting. `WouldBlock` if it holds none; an error pending on
    /// the socket (ECONNREFUSED) is returned, and cleared, here. A datagram
    /// longer than `LEN` is cut to `LEN`.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received = 0;
        let mut iovs = self.bufs.each_mut().map(|buf| [IoSliceMut::new(buf)]);
        let msgs = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        for (len, msg) in self.lens.iter_mut().zip(msgs) {
            *len = msg.bytes.min(LEN);
            self.received += 1;
        }
        Ok(self.received)
    }

    /// The datagrams the last `recv` returned, in order.
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs
            .iter()
            .zip(&self.lens)
            .take(self.received)
            .map(|(buf, &len)| buf.get(..len).unwrap_or(buf))
    }
}

impl<const LEN: usize> Default for RecvBatch<LEN> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epoll_set::EpollSet;
    use nix::sys::epoll::EpollEvent;
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let cand = UdpSocket::bind("127.0.0.1:0").unwrap();
        cand.connect(server.local_addr().unwrap()).unwrap();
        cand.set_nonblocking(true).unwrap();
        server.connect(cand.local_addr().unwrap()).unwrap();
        (server, cand)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Ready events right after sending (loopback delivers synchronously,
    /// but allow the kernel a moment).
    fn ready_keys(poll: &EpollSet) -> Vec<u64> {
        let mut events = [EpollEvent::empty(); MAX_EVENTS];
        for _ in 0..100 {
            let n = poll.ready(&mut events).unwrap();
            if n > 0 {
                let mut keys: Vec<u64> = events[..n].iter().map(|e| e.data()).collect();
                keys.sort();
                return keys;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Vec::new()
    }

    #[test]
    fn reports_ready_sockets_by_key_and_again_while_they_hold_data() {
        rt().block_on(async {
            let poll = EpollSet::new("test").unwrap();
            let (s1, c1) = pair();
            let (s2, c2) = pair();
            poll.add(&c1, 11).unwrap();
            poll.add(&c2, 22).unwrap();
            let mut events = [EpollEvent::empty(); MAX_EVENTS];
            assert_eq!(poll.ready(&mut events).unwrap(), 0);
            s1.send(b"one").unwrap();
            s2.send(b"two").unwrap();
            assert_eq!(ready_keys(&poll), vec![11, 22]);
            // Level-triggered: nothing read yet, so both are reported again.
            assert_eq!(ready_keys(&poll), vec![11, 22]);
            let mut batch = RecvBatch::<64>::new();
            assert_eq!(batch.recv(&c1).unwrap(), 1);
            assert_eq!(batch.datagrams().collect::<Vec<_>>(), vec![&b"one"[..]]);
            assert_eq!(ready_keys(&poll), vec![22]);
            poll.remove(&c2).unwrap();
            assert_eq!(poll.ready(&mut events).unwrap(), 0);
        });
    }

    #[test]
    fn a_batch_takes_at_most_batch_datagrams_each_whole_or_cut_to_len() {
        let (server, cand) = pair();
        for i in 0..(BATCH + 3) {
            server.send(&vec![i as u8; 10 + i]).unwrap();
        }
        server.send(&[7u8; 100]).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        let mut batch = RecvBatch::<32>::new();
        assert_eq!(batch.recv(&cand).unwrap(), BATCH);
        for (i, d) in batch.datagrams().enumerate() {
            assert_eq!(d, &vec![i as u8; 10 + i][..]);
        }
        assert_eq!(batch.recv(&cand).unwrap(), 4);
        let rest: Vec<&[u8]> = batch.datagrams().collect();
        assert_eq!(rest.len(), 4);
        assert_eq!(rest[3], &[7u8; 32][..]);
        let e = batch.recv(&cand).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.datagrams().count(), 0);
    }

    #[test]
    fn a_refusing_port_is_reported_and_read_as_connection_refused() {
        rt().block_on(async {
            let poll = EpollSet::new("test").unwrap();
            let (server, cand) = pair();
            poll.add(&cand, 5).unwrap();
            drop(server);
            // The ICMP port unreachable comes back to the sender.
            let _ = cand.send(b"anyone?");
            assert_eq!(ready_keys(&poll), vec![5]);
            let mut batch = RecvBatch::<64>::new();
            let e = batch.recv(&cand).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            // Reading the error cleared it.
            let mut events = [EpollEvent::empty(); MAX_EVENTS];
            assert_eq!(poll.ready(&mut events).unwrap(), 0);
        });
    }
}
