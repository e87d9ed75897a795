//! moshd's address: the IP that `mosh` passed and the port of the mux port string.
//!
//! `mosh` resolves the host itself and passes a numeric IPv4 or IPv6 address,
//! which is used as it is. Anything else (a name, a scoped link-local address)
//! goes through the system resolver, as stock mosh-client would; the first
//! address wins.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Resolves `ip` with `port`. Blocking (getaddrinfo) only for non-numeric input.
pub fn resolve(ip: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = ip
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(ip);
    if let Ok(numeric) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(numeric, port));
    }
    let shown: String = ip.chars().take(64).collect();
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {shown:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {shown:?}: no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_forms() {
        assert_eq!(
            resolve("198.51.100.1", 60001),
            Ok("198.51.100.1:60001".parse().unwrap())
        );
        assert_eq!(
            resolve("2001:db8::1", 60001),
            Ok("[2001:db8::1]:60001".parse().unwrap())
        );
        assert_eq!(resolve("[::1]", 5), Ok("[::1]:5".parse().unwrap()));
    }

    #[test]
    fn names_resolve_or_fail_in_one_line() {
        assert_eq!(resolve("localhost", 7).map(|a| a.port()), Ok(7));
        let e = resolve("", 7).unwrap_err();
        assert!(e.starts_with("cannot resolve \"\""), "{e}");
        assert!(!e.contains('\n'));
    }
}
