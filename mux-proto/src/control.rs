//! The control protocol on moshd's Unix socket.
//!
//! One JSON object per line, each way; one request per connection. The
//! caller's uid comes from SO_PEERCRED, never from the message, so nothing a
//! client writes can claim another identity. A registration carries no key
//! material: only the sid, the inner port and the mosh-server pid.

use crate::sid::Sid;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Longest request line moshd reads; anything longer is refused unread.
pub const MAX_REQUEST_LEN: usize = 4096;
/// Longest response line a client reads (a status of every session).
pub const MAX_RESPONSE_LEN: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Route `sid` to the mosh-server listening on 127.0.0.1:`port`.
    Register(Registration),
    /// List sessions (the caller's own, or all for root).
    Status(StatusQuery),
}

/// `status` takes no arguments; a struct so that unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub sid: Sid,
    /// mosh-server's loopback UDP port.
    pub port: u16,
    /// mosh-server's pid (the detached child): the session lives as long as it.
    pub pid: u32,
    /// The client address sshd reported (SSH_CONNECTION), if any.
    #[serde(default)]
    pub ssh_client: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// Registered; tell the client to use this public port.
    Registered { port: u16 },
    /// Refused, with a reason a person can act on.
    Refused { reason: String },
    Status(StatusReport),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatusReport {
    /// moshd's public addresses, as "ip:port".
    pub listen: Vec<String>,
    pub sessions: Vec<SessionStatus>,
    /// moshd-wide counters: datagrams dropped by reason, probes sent.
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// One session as `moshd status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    pub sid: Sid,
    pub user: String,
    pub uid: u32,
    /// The confirmed client address ("ip:port"), if mosh-server has answered one.
    pub client: Option<String>,
    /// "framed" (mosh-client-mux) or "stock" (unframed mosh-client), once known.
    pub client_kind: Option<String>,
    pub server_pid: u32,
    pub server_port: u16,
    /// Seconds since the Unix epoch when the session was registered.
    pub since_unix: u64,
    /// Milliseconds since the last datagram from the client, if any arrived.
    pub last_heard_ms: Option<u64>,
    pub candidates: usize,
    pub to_server_packets: u64,
    pub to_server_bytes: u64,
    pub to_client_packets: u64,
    pub to_client_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("message longer than {0} bytes")]
    TooLong(usize),
    #[error("message is not valid: {0}")]
    Invalid(String),
}

/// Decodes one request line (without or with its newline).
pub fn decode_request(line: &[u8]) -> Result<Request, ControlError> {
    decode(line, MAX_REQUEST_LEN)
}

/// Decodes one response line.
pub fn decode_response(line: &[u8]) -> Result<Response, ControlError> {
    decode(line, MAX_RESPONSE_LEN)
}

fn decode<T: for<'de> Deserialize<'de>>(line: &[u8], max: usize) -> Result<T, ControlError> {
    if line.len() > max {
        return Err(ControlError::TooLong(max));
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(line).map_err(|e| {
        // serde_json's messages name the field and column: enough to act on,
        // and never an echo of more than a few bytes of the input.
        let mut text = e.to_string();
        // serde_json quotes unknown names back: cut on a character boundary.
        let cut = (0..=text.len().min(200)).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        ControlError::Invalid(text)
    })
}

/// Encodes a message as one line, newline included.
pub fn encode_line<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain types cannot fail; an empty object is a safe
    // fallback that the peer will refuse as invalid.
    let mut out = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn register_vector() {
        let req = decode_request(
            br#"{"op":"register","sid":"0123456789abcdef","port":51251,"pid":2012,"ssh_client":"198.51.100.2"}"#,
        )
        .unwrap();
        assert_eq!(
            req,
            Request::Register(Registration {
                sid: "0123456789abcdef".parse().unwrap(),
                port: 51251,
                pid: 2012,
                ssh_client: Some("198.51.100.2".parse().unwrap()),
            })
        );
    }

    #[test]
    fn long_unknown_names_in_many_byte_characters_are_refused_not_panicked() {
        // Found by AFL: the error quotes the name, and byte 200 fell inside a character.
        for n in 80..110 {
            let line = format!("{{\"op\":\"{}\"}}\n", "é".repeat(n));
            assert!(decode_request(line.as_bytes()).is_err());
        }
    }

    #[test]
    fn refuses_unknown_fields_and_ops() {
        assert!(decode_request(br#"{"op":"status","x":1}"#).is_err());
        assert!(decode_request(br#"{"op":"kill"}"#).is_err());
        assert!(decode_request(br#"{"op":"register","sid":"zz","port":1,"pid":2}"#).is_err());
        assert!(decode_request(&vec![b' '; MAX_REQUEST_LEN + 1]).is_err());
    }

    proptest! {
        #[test]
        fn requests_round_trip(sid in any::<[u8; 8]>(), port in any::<u16>(), pid in any::<u32>(), v4 in any::<Option<[u8; 4]>>()) {
            let req = Request::Register(Registration {
                sid: Sid(sid), port, pid, ssh_client: v4.map(IpAddr::from),
            });
            prop_assert_eq!(decode_request(&encode_line(&req)).unwrap(), req);
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_request(&buf);
            let _ = decode_response(&buf);
        }
    }
}
