//! Checking which address mosh-server really bound.
//!
//! mosh-server silently falls back to INADDR_ANY when it cannot bind the
//! address it was given. moshd still works then (it reaches the port on
//! loopback), but the session's port is also open to the network, as with
//! stock mosh; the user should hear about it. /proc/net/udp{,6} shows the
//! local address of each UDP socket with its owner's uid.

use mosh_mux_proto::proc_net::parse_line;
use std::net::IpAddr;

/// The local addresses bound to `port` by sockets of `uid`, from the text of
/// /proc/net/udp or /proc/net/udp6 (parsed as moshd parses it).
pub fn bound_addresses(table: &str, port: u16, uid: u32) -> Vec<IpAddr> {
    table
        .lines()
        .filter_map(parse_line)
        .filter(|e| e.port == port && e.uid == uid)
        .map(|e| e.ip)
        .collect()
}

/// Whether an address only accepts traffic from this host.
fn is_loopback(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The non-loopback address the port is bound on, if any (none when the
/// socket is not found at all: then there is nothing to say).
pub fn exposed(tables: &[String], port: u16, uid: u32) -> Option<IpAddr> {
    tables
        .iter()
        .flat_map(|t| bound_addresses(t, port, uid))
        .find(|a| !is_loopback(a))
}

/// Reads /proc/net/udp and udp6 (whatever exists).
pub fn read_tables() -> Vec<String> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
10400: 0100007F:A43C 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 12509 2 00000000cbc5a808 0
11973: 00000000:EA61 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 11942 2 0000000090f9706e 0
11974: 00000000:EA61 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 11942 2 0000000090f9706e 0
";
    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000000000000000000001000000:A43D 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 1 2 0 0
  101: 00000000000000000000000000000000:A43E 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 1 2 0 0
";

    #[test]
    fn reads_the_kernel_tables() {
        assert_eq!(
            bound_addresses(UDP, 42044, 1000),
            [IpAddr::from([127, 0, 0, 1])]
        );
        assert_eq!(
            bound_addresses(UDP, 60001, 1000),
            [IpAddr::from([0, 0, 0, 0])]
        );
        assert_eq!(bound_addresses(UDP, 60001, 0), [IpAddr::from([0, 0, 0, 0])]);
        assert_eq!(
            bound_addresses(UDP6, 42045, 1000),
            [IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        let tables = [UDP.to_owned(), UDP6.to_owned()];
        assert_eq!(exposed(&tables, 42044, 1000), None);
        assert_eq!(exposed(&tables, 42045, 1000), None);
        assert_eq!(
            exposed(&tables, 42046, 1000),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        );
        assert_eq!(
            exposed(&tables, 60001, 1000),
            Some(IpAddr::from([0, 0, 0, 0]))
        );
        assert_eq!(exposed(&tables, 1, 1000), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}", port in any::<u16>()) {
            let _ = bound_addresses(&s, port, 0);
        }
    }
}
