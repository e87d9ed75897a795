//! Whether a registration may be accepted: a pure check over facts the I/O
//! layer gathered from /proc, so that every refusal is unit-testable.
//!
//! The rule: moshd sends only to a loopback port whose every receiving
//! socket belongs to the registering uid, for a live mosh-server of that uid.

use crate::proc_net::UdpSocketEntry;
use std::net::{IpAddr, Ipv4Addr};

/// What /proc said about the registered port and pid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Every socket that would receive datagrams sent to 127.0.0.1:port.
    pub port_sockets: Vec<UdpSocketEntry>,
    /// The pid's real uid, if the pid exists.
    pub pid_uid: Option<u32>,
    /// Socket inodes the pid holds, if moshd may look (root, or same uid).
    pub pid_inodes: Option<Vec<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("session id is already registered")]
    SidInUse,
    #[error("moshd is full ({0} sessions)")]
    Full(usize),
    #[error("you already have {}, the most moshd allows one user", count_sessions(*.0))]
    UserFull(usize),
    #[error("no UDP socket is bound at 127.0.0.1:{0}")]
    NoSocket(u16),
    #[error("UDP port {0} on loopback is not yours")]
    PortNotYours(u16),
    #[error("UDP port {port} is bound to {ip}, not to 127.0.0.1")]
    NotLoopback { port: u16, ip: IpAddr },
    #[error("process {0} is not running")]
    NoProcess(u32),
    #[error("process {0} is not yours")]
    ProcessNotYours(u32),
    #[error("process {pid} does not hold UDP port {port}")]
    ProcessNotOnPort { pid: u32, port: u16 },
}

fn count_sessions(n: usize) -> String {
    if n == 1 {
        "1 session".to_owned()
    } else {
        format!("{n} sessions")
    }
}

/// Checks the ownership rules. Caps and sid uniqueness are the table's.
pub fn check_ownership(uid: u32, port: u16, pid: u32, facts: &Facts) -> Result<(), Refusal> {
    if facts.port_sockets.is_empty() {
        return Err(Refusal::NoSocket(port));
    }
    if facts.port_sockets.iter().any(|s| s.uid != uid) {
        return Err(Refusal::PortNotYours(port));
    }
    let Some(inner) = facts
        .port_sockets
        .iter()
        .find(|s| s.ip == IpAddr::V4(Ipv4Addr::LOCALHOST))
    else {
        let ip = facts.port_sockets[0].ip;
        return Err(Refusal::NotLoopback { port, ip });
    };
    match facts.pid_uid {
        None => return Err(Refusal::NoProcess(pid)),
        Some(owner) if owner != uid => return Err(Refusal::ProcessNotYours(pid)),
        Some(_) => {}
    }
    if let Some(inodes) = &facts.pid_inodes {
        if !inodes.contains(&inner.inode) {
            return Err(Refusal::ProcessNotOnPort { pid, port });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(ip: &str, uid: u32, inode: u64) -> UdpSocketEntry {
        UdpSocketEntry { ip: ip.parse().unwrap(), port: 5000, uid, inode }
    }

    fn facts(socks: Vec<UdpSocketEntry>, pid_uid: Option<u32>, inodes: Option<Vec<u64>>) -> Facts {
        Facts { port_sockets: socks, pid_uid, pid_inodes: inodes }
    }

    #[test]
    fn accepts_own_loopback_port_and_process() {
        let f = facts(vec![sock("127.0.0.1", 1000, 9)], Some(1000), Some(vec![3, 9]));
        assert_eq!(check_ownership(1000, 5000, 42, &f), Ok(()));
        // Without a view of the pid's descriptors (moshd runs unprivileged),
        // uid ownership of both port and pid still holds.
        let f = facts(vec![sock("127.0.0.1", 1000, 9)], Some(1000), None);
        assert_eq!(check_ownership(1000, 5000, 42, &f), Ok(()));
    }

    #[test]
    fn refuses_port_of_another_uid_of_root_or_of_nobody() {
        let other = facts(vec![sock("127.0.0.1", 1001, 9)], Some(1000), None);
        assert_eq!(check_ownership(1000, 5000, 42, &other), Err(Refusal::PortNotYours(5000)));
        let root = facts(vec![sock("127.0.0.1", 0, 9)], Some(1000), None);
        assert_eq!(check_ownership(1000, 5000, 42, &root), Err(Refusal::PortNotYours(5000)));
        let nobody = facts(vec![], Some(1000), None);
        assert_eq!(check_ownership(1000, 5000, 42, &nobody), Err(Refusal::NoSocket(5000)));
        // A second receiving socket owned by someone else poisons the port.
        let shared = facts(vec![sock("127.0.0.1", 1000, 9), sock("0.0.0.0", 1001, 10)], Some(1000), None);
        assert_eq!(check_ownership(1000, 5000, 42, &shared), Err(Refusal::PortNotYours(5000)));
    }

    #[test]
    fn refuses_wildcard_bind_dead_or_foreign_process() {
        let any = facts(vec![sock("0.0.0.0", 1000, 9)], Some(1000), None);
        assert!(matches!(check_ownership(1000, 5000, 42, &any), Err(Refusal::NotLoopback { .. })));
        let dead = facts(vec![sock("127.0.0.1", 1000, 9)], None, None);
        assert_eq!(check_ownership(1000, 5000, 42, &dead), Err(Refusal::NoProcess(42)));
        let foreign = facts(vec![sock("127.0.0.1", 1000, 9)], Some(0), None);
        assert_eq!(check_ownership(1000, 5000, 42, &foreign), Err(Refusal::ProcessNotYours(42)));
        let elsewhere = facts(vec![sock("127.0.0.1", 1000, 9)], Some(1000), Some(vec![1]));
        assert_eq!(
            check_ownership(1000, 5000, 42, &elsewhere),
            Err(Refusal::ProcessNotOnPort { pid: 42, port: 5000 })
        );
    }
}
