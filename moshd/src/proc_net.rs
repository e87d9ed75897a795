//! Reading the kernel's UDP socket tables; the parsing is shared with
//! mosh-server-mux and lives in `mosh_mux_proto::proc_net`. moshd reads
//! them only where `sock_diag` fails: they list every UDP socket on the host.

pub use mosh_mux_proto::proc_net::*;

/// Reads both tables from /proc (a missing udp6 table, without IPv6, is empty).
pub fn read_tables() -> std::io::Result<[String; 2]> {
    let v4 = std::fs::read_to_string("/proc/net/udp")?;
    let v6 = std::fs::read_to_string("/proc/net/udp6").unwrap_or_default();
    Ok([v4, v6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machines_tables() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let tables = read_tables().unwrap();
        let found = sockets_at_loopback_port(&[&tables[0], &tables[1]], port);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].uid, nix::unistd::getuid().as_raw());
    }
}
