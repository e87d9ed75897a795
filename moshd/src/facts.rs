//! Gathering what the kernel says about a registration's port and pid: the
//! I/O half of the ownership check in `registration`.
//!
//! The port's sockets come from `sock_diag` (the kernel filters to the one
//! port), or, where netlink fails, from /proc/net/udp and udp6 (every UDP
//! socket on the host); the pid's from /proc/PID (its status, and its own
//! descriptors only).

use crate::proc_net::{read_tables, receives_loopback_v4, sockets_at_loopback_port, UdpSocketEntry};
use crate::registration::Facts;
use crate::sock_diag::{self, LookupError};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::debug;

/// Set once sock_diag failed in a way that will not change (not built in,
/// forbidden): later lookups go straight to /proc.
static SOCK_DIAG_OFF: AtomicBool = AtomicBool::new(false);
/// Whether the fallback to /proc has been logged.
static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

/// Reads what the kernel says of `port` and `pid`. A fact that cannot be
/// read is absent, which the check treats as "not proven", never as consent.
pub fn gather(port: u16, pid: u32) -> Facts {
    let port_sockets = port_sockets(port);
    let pid_uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| parse_status_uid(&s));
    let pid_inodes = socket_inodes(pid);
    Facts { port_sockets, pid_uid, pid_inodes }
}

/// Every socket that would receive a datagram sent to 127.0.0.1:`port`.
fn port_sockets(port: u16) -> Vec<UdpSocketEntry> {
    port_sockets_by(port, sock_diag::udp_sockets_at_port)
}

/// `port_sockets`, asking `lookup` before /proc.
fn port_sockets_by(port: u16, lookup: impl Fn(u16) -> Result<Vec<UdpSocketEntry>, LookupError>) -> Vec<UdpSocketEntry> {
    if !SOCK_DIAG_OFF.load(Ordering::Relaxed) {
        match lookup(port) {
            Ok(all) => return all.into_iter().filter(|e| receives_loopback_v4(e.ip)).collect(),
            // Thousands of sockets at one port are not a mosh-server's, and
            // /proc would list as many: not proven.
            Err(e @ LookupError::TooMany) => {
                debug!(port, "port not checked: {e}");
                return Vec::new();
            }
            Err(e) => {
                if e.is_permanent() {
                    SOCK_DIAG_OFF.store(true, Ordering::Relaxed);
                }
                if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
                    debug!("{e}; reading /proc/net/udp instead");
                }
            }
        }
    }
    match read_tables() {
        Ok([v4, v6]) => sockets_at_loopback_port(&[&v4, &v6], port),
        Err(_) => Vec::new(),
    }
}

/// The real uid from /proc/PID/status ("Uid:\treal\teffective\t...").
pub fn parse_status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// The inode in a descriptor link like "socket:[12345]".
pub fn parse_socket_link(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Socket inodes held by `pid`, or `None` where moshd may not look. Bounded:
/// a process holds at most a few thousand descriptors, and we stop at 65536.
fn socket_inodes(pid: u32) -> Option<Vec<u64>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        dir.take(65536)
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| l.to_str().and_then(parse_socket_link))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_links() {
        assert_eq!(parse_status_uid("Name:\tx\nUid:\t1001\t1001\t1001\t1001\n"), Some(1001));
        assert_eq!(parse_status_uid("Name:\tx\n"), None);
        assert_eq!(parse_socket_link("socket:[4242]"), Some(4242));
        assert_eq!(parse_socket_link("pipe:[4242]"), None);
    }

    #[test]
    fn gathers_own_socket() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let facts = gather(port, std::process::id());
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(facts.pid_uid, Some(me));
        assert_eq!(facts.port_sockets.len(), 1);
        let inode = facts.port_sockets[0].inode;
        assert!(facts.pid_inodes.unwrap().contains(&inode));
        assert_eq!(crate::registration::check_ownership(me, port, std::process::id(), &gather(port, std::process::id())), Ok(()));
    }

    #[test]
    fn falls_back_to_proc_and_keeps_only_receiving_sockets() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let entry = |ip: &str| UdpSocketEntry { ip: ip.parse().unwrap(), port, uid: 7, inode: 9 };
        let netlink = port_sockets_by(port, |_| Ok(vec![entry("127.0.0.1"), entry("::1"), entry("::")]));
        assert_eq!(netlink, vec![entry("127.0.0.1"), entry("::")]);
        // A transient failure reads /proc instead (a permanent one would
        // turn netlink off for every later test too).
        let proc = port_sockets_by(port, |_| Err(LookupError::Malformed("test")));
        assert_eq!(proc.len(), 1);
        assert_eq!(proc[0].uid, nix::unistd::getuid().as_raw());
        assert_eq!(proc, port_sockets(port));
        // Too many sockets at one port: not proven, and no slow fallback.
        assert_eq!(port_sockets_by(port, |_| Err(LookupError::TooMany)), vec![]);
    }
}
