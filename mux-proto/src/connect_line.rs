//! Parsing what stock mosh-server prints, and printing what `mosh` expects.
//!
//! mosh-server prints `MOSH CONNECT <port> <key>` on stdout and
//! `[mosh-server detached, pid = N]` on stderr. mosh-server-mux must read
//! both from a child it does not trust to be well-behaved (it may be a wrong
//! binary, a newer version, or fail), so every odd line is an error value,
//! never a panic.

use crate::sid::{SessionKey, Sid};
use std::fmt;

/// A parsed `MOSH CONNECT` line. The key text is kept to be printed again.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectLine {
    pub port: u16,
    key_text: String,
    key: SessionKey,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectError {
    #[error("MOSH CONNECT line has {0} fields, expected 4")]
    Fields(usize),
    #[error("MOSH CONNECT port is not a port number")]
    Port,
    #[error("MOSH CONNECT key is malformed: {0}")]
    Key(crate::sid::KeyError),
}

impl ConnectLine {
    pub fn key_text(&self) -> &str {
        &self.key_text
    }
    pub fn sid(&self) -> Sid {
        self.key.sid()
    }
}

impl fmt::Debug for ConnectLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectLine {{ port: {}, key: .. }}", self.port)
    }
}

/// `None` when the line is not a MOSH CONNECT line at all; `Some(Err)` when
/// it claims to be one but does not parse.
pub fn parse_connect_line(line: &str) -> Option<Result<ConnectLine, ConnectError>> {
    let line = line.trim_end();
    if !line.starts_with("MOSH CONNECT") {
        return None;
    }
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    if fields.len() != 4 || fields[1] != "CONNECT" {
        return Some(Err(ConnectError::Fields(fields.len())));
    }
    let port = match fields[2].parse::<u16>() {
        Ok(p) if p != 0 && fields[2].bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Some(Err(ConnectError::Port)),
    };
    Some(
        SessionKey::parse(fields[3])
            .map(|key| ConnectLine {
                port,
                key_text: fields[3].to_owned(),
                key,
            })
            .map_err(ConnectError::Key),
    )
}

/// The pid from `[mosh-server detached, pid = N]`, if this is that line.
pub fn parse_detached_pid(line: &str) -> Option<u32> {
    let rest = line.trim().strip_prefix("[mosh-server detached, pid = ")?;
    let digits = rest.strip_suffix(']')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|pid| *pid > 1)
}

/// The line mosh-server-mux prints for `mosh` (without the newline).
pub fn format_connect_line(port: &str, key_text: &str) -> String {
    format!("MOSH CONNECT {port} {key_text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_real_output() {
        let c = parse_connect_line("MOSH CONNECT 51251 gflLFw38EcGhIYzas1qLZA\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.port, 51251);
        assert_eq!(c.key_text(), "gflLFw38EcGhIYzas1qLZA");
        assert_eq!(parse_detached_pid("[mosh-server detached, pid = 2012]"), Some(2012));
    }

    #[test]
    fn refuses_odd_lines() {
        assert_eq!(parse_connect_line("hello"), None);
        assert_eq!(
            parse_connect_line("MOSH CONNECT 1 2 3").map(|r| r.err()),
            Some(Some(ConnectError::Fields(5)))
        );
        assert_eq!(
            parse_connect_line("MOSH CONNECT 70000 gflLFw38EcGhIYzas1qLZA").map(|r| r.err()),
            Some(Some(ConnectError::Port))
        );
        assert!(matches!(
            parse_connect_line("MOSH CONNECT 600 short"),
            Some(Err(ConnectError::Key(_)))
        ));
        assert_eq!(parse_detached_pid("[mosh-server detached, pid = ]"), None);
        assert_eq!(parse_detached_pid("[mosh-server detached, pid = 1]"), None);
        assert_eq!(parse_detached_pid("[mosh-server detached, pid = 99999999999]"), None);
    }

    #[test]
    fn debug_hides_key() {
        let c = parse_connect_line("MOSH CONNECT 5 gflLFw38EcGhIYzas1qLZA").unwrap().unwrap();
        assert!(!format!("{c:?}").contains("gflL"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse_connect_line(&s);
            let _ = parse_detached_pid(&s);
        }

        #[test]
        fn format_then_parse(port in 1u16.., key in "[A-Za-z0-9+/]{21}[AQgw]") {
            let line = format_connect_line(&port.to_string(), &key);
            let c = parse_connect_line(&line).unwrap().unwrap();
            prop_assert_eq!(c.port, port);
            prop_assert_eq!(c.key_text(), key.as_str());
        }
    }
}
