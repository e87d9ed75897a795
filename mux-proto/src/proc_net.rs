//! Who owns a UDP port: parsing the text of /proc/net/udp and /proc/net/udp6.
//!
//! moshd sends only to ports their registrant owns, and mosh-server-mux warns
//! when mosh-server bound beyond loopback; both read the kernel's socket
//! tables, which name each socket's local address, owning uid and inode.
//! This module turns that text into values; the callers read the files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One bound UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketEntry {
    pub ip: IpAddr,
    pub port: u16,
    pub uid: u32,
    pub inode: u64,
}

/// Parses one data line of /proc/net/udp or udp6. `None` for the header or
/// anything that does not have the kernel's shape.
pub fn parse_line(line: &str) -> Option<UdpSocketEntry> {
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    if fields.len() < 10 || !fields[0].ends_with(':') {
        return None;
    }
    let (ip_hex, port_hex) = fields[1].split_once(':')?;
    let ip = parse_ip(ip_hex)?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let uid = fields[7].parse().ok()?;
    let inode = fields[9].parse().ok()?;
    Some(UdpSocketEntry { ip, port, uid, inode })
}

/// The kernel prints each 32-bit word of the address in host byte order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(hex.get(i * 8..i * 8 + 8)?)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Whether a socket bound to `ip` receives datagrams sent to 127.0.0.1.
pub fn receives_loopback_v4(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_unspecified() || v6.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST)
        }
    }
}

/// Every socket in the tables that could receive a datagram that moshd
/// sends to 127.0.0.1:`port`.
pub fn sockets_at_loopback_port(tables: &[&str], port: u16) -> Vec<UdpSocketEntry> {
    tables
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(parse_line)
        .filter(|e| e.port == port && receives_loopback_v4(e.ip))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V4: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  220: 0100007F:C833 00000000:0000 07 00000000:00000000 00:00000000 00000000  1001        0 4242 2 0000000000000000 0
  221: 00000000:EA61 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0
";
    const V6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   12: 00000000000000000000000000000000:C833 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1002        0 77 2 0000000000000000 0
   13: 00000000000000000000000001000000:C834 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1002        0 78 2 0000000000000000 0
";

    #[test]
    fn parses_kernel_lines() {
        let e = parse_line(V4.lines().nth(1).unwrap()).unwrap();
        assert_eq!(e, UdpSocketEntry { ip: "127.0.0.1".parse().unwrap(), port: 0xC833, uid: 1001, inode: 4242 });
        assert_eq!(parse_line(V4.lines().next().unwrap()), None);
        let e6 = parse_line(V6.lines().nth(2).unwrap()).unwrap();
        assert_eq!(e6.ip, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn finds_every_socket_that_would_receive() {
        let found = sockets_at_loopback_port(&[V4, V6], 0xC833);
        assert_eq!(found.iter().map(|e| e.uid).collect::<Vec<_>>(), vec![1001, 1002]);
        // [::1] does not receive what is sent to 127.0.0.1.
        assert!(sockets_at_loopback_port(&[V4, V6], 0xC834).is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") { let _ = parse_line(&s); }
    }
}
