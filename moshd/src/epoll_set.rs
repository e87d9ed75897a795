//! A level-triggered epoll set that tokio wakes one task for: how moshd
//! watches thousands of descriptors (candidate sockets, mosh-servers'
//! pidfds) without a tokio task and registration for each.
//!
//! Each descriptor is added with a `u64` that its events carry back (a
//! candidate key, a session id); only the set's own descriptor is registered
//! with tokio. The one rule for the task that drains it: tokio sees the set
//! through an edge-triggered registration, and a level-triggered descriptor
//! that is still ready after `epoll_wait` returned it stays on the set's
//! ready list without waking the set's own pollers. So the task may clear
//! tokio's readiness only after a round that took fewer events than it asked
//! for and left every descriptor it was given not ready (a socket read dry,
//! a pidfd taken out of the set); otherwise it must keep the readiness and
//! come back after yielding.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;
use tracing::debug;

/// How long to wait before asking a set again after an error.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// The epoll set's descriptor, as tokio registers it.
pub struct EpollFd(Epoll);

impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }
}

/// An epoll set registered with the tokio runtime.
pub struct EpollSet {
    set: AsyncFd<EpollFd>,
    /// What the set holds, for the log.
    name: &'static str,
}

impl EpollSet {
    /// Creates the set of `name` (for the log); must run inside the
    /// runtime, which registers it.
    pub fn new(name: &'static str) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        // SAFETY: the Epoll (and so its descriptor) moves into the AsyncFd,
        // which alone owns it until drop; `as_raw_fd` always returns it.
        let set = unsafe { AsyncFd::register_with_interest(EpollFd(epoll), Interest::READABLE) }?;
        Ok(EpollSet { set, name })
    }

    /// Adds `fd`, level-triggered, readable events reported with `data`.
    pub fn add(&self, fd: &impl AsFd, data: u64) -> io::Result<()> {
        let event = EpollEvent::new(EpollFlags::EPOLLIN, data);
        Ok(self.set.get_ref().0.add(fd, event)?)
    }

    /// Takes `fd` out of the set (before it is closed).
    pub fn remove(&self, fd: &impl AsFd) -> io::Result<()> {
        Ok(self.set.get_ref().0.delete(fd)?)
    }

    /// Waits for a round: fills `events` with ready descriptors and returns
    /// how many, with the guard that `end_round` settles. An error is logged
    /// and the set asked again after a pause.
    pub async fn next_round(&self, events: &mut [EpollEvent]) -> (AsyncFdReadyGuard<'_, EpollFd>, usize) {
        loop {
            let guard = match self.set.readable().await {
                Ok(guard) => guard,
                Err(e) => {
                    debug!(set = self.name, "epoll set not readable: {e}");
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            };
            match self.ready(events) {
                Ok(n) => return (guard, n),
                Err(e) => {
                    // Readiness kept: the set is asked again after the pause.
                    debug!(set = self.name, "epoll_wait failed: {e}");
                    drop(guard);
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
    }

    /// Fills `events` with ready descriptors (their data in `data()`)
    /// without waiting; returns how many.
    pub fn ready(&self, events: &mut [EpollEvent]) -> io::Result<usize> {
        Ok(self.set.get_ref().0.wait(events, EpollTimeout::ZERO)?)
    }
}

/// Ends a round as the module documentation says: `drained` (fewer events
/// than asked for, and each descriptor returned left not ready) clears
/// tokio's readiness; otherwise it is kept, and the task yields first.
pub async fn end_round(guard: AsyncFdReadyGuard<'_, EpollFd>, drained: bool) {
    if drained {
        let mut guard = guard;
        guard.clear_ready();
    } else {
        drop(guard);
        tokio::task::yield_now().await;
    }
}
