//! Gathering what /proc says about a registration's port and pid: the I/O
//! half of the ownership check in `registration`.

use crate::proc_net::{read_tables, sockets_at_loopback_port};
use crate::registration::Facts;

/// Reads /proc for `port` and `pid`. A file that cannot be read yields an
/// absent fact, which the check treats as "not proven", never as consent.
pub fn gather(port: u16, pid: u32) -> Facts {
    let port_sockets = match read_tables() {
        Ok([v4, v6]) => sockets_at_loopback_port(&[&v4, &v6], port),
        Err(_) => Vec::new(),
    };
    let pid_uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| parse_status_uid(&s));
    let pid_inodes = socket_inodes(pid);
    Facts { port_sockets, pid_uid, pid_inodes }
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
}
