//! The benchmark's stand-in for a mosh datagram, and the client framing.
//!
//! Layout of the payload (what mosh-server would see), little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0 | direction byte: `0x10` client→server (top bit clear, like mosh's nonce); the echo sets the top bit |
//! | 1..5 | session index |
//! | 5..13 | send time, nanoseconds on the sender's monotonic clock |
//! | 13 | class: what kind of traffic this datagram belongs to |
//! | 14..18 | sequence number (per sender) |
//! | 18.. | zero padding up to the chosen size (at least 24 bytes in all) |
//!
//! A framed datagram is the 9-byte mux header (magic, sid) then the payload.

use mosh_mux_proto::{encode_header, Sid, HEADER_LEN};

/// Smallest payload moshd accepts (nonce + OCB tag of a real mosh datagram).
pub const MIN_PAYLOAD: usize = 24;
/// First byte of a client-to-server payload.
pub const TO_SERVER: u8 = 0x10;
/// The bit an echo sets, as in a mosh server-to-client nonce.
pub const TO_CLIENT_BIT: u8 = 0x80;

/// What traffic a datagram belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// An active session's paced traffic.
    Active = 1,
    /// An idle session's heartbeat.
    Heartbeat = 2,
    /// Closed-loop saturation traffic.
    Window = 3,
    /// A latency probe's ping.
    Probe = 4,
}

impl Class {
    pub fn from_u8(b: u8) -> Option<Class> {
        match b {
            1 => Some(Class::Active),
            2 => Some(Class::Heartbeat),
            3 => Some(Class::Window),
            4 => Some(Class::Probe),
            _ => None,
        }
    }
}

/// The fields of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub session: u32,
    pub sent_ns: u64,
    pub class: Class,
    pub seq: u32,
}

/// Writes a payload of `size` bytes (at least `MIN_PAYLOAD`) into `out`;
/// returns its length.
pub fn write(out: &mut [u8], size: usize, stamp: Stamp) -> usize {
    let size = size.max(MIN_PAYLOAD).min(out.len());
    out[..size].fill(0);
    out[0] = TO_SERVER;
    out[1..5].copy_from_slice(&stamp.session.to_le_bytes());
    out[5..13].copy_from_slice(&stamp.sent_ns.to_le_bytes());
    out[13] = stamp.class as u8;
    out[14..18].copy_from_slice(&stamp.seq.to_le_bytes());
    size
}

/// Writes the mux header for `sid` then a payload; returns the total length.
pub fn write_framed(out: &mut [u8], sid: Sid, size: usize, stamp: Stamp) -> usize {
    let mut header = [0u8; HEADER_LEN];
    encode_header(sid, &mut header);
    out[..HEADER_LEN].copy_from_slice(&header);
    HEADER_LEN + write(&mut out[HEADER_LEN..], size, stamp)
}

/// Reads an echoed payload (top bit set); `None` for anything else.
pub fn read_echo(buf: &[u8]) -> Option<Stamp> {
    if buf.len() < MIN_PAYLOAD || buf[0] != TO_SERVER | TO_CLIENT_BIT {
        return None;
    }
    Some(Stamp {
        session: u32::from_le_bytes(buf[1..5].try_into().ok()?),
        sent_ns: u64::from_le_bytes(buf[5..13].try_into().ok()?),
        class: Class::from_u8(buf[13])?,
        seq: u32::from_le_bytes(buf[14..18].try_into().ok()?),
    })
}

/// Turns a received client-to-server payload into its echo, in place.
pub fn make_echo(buf: &mut [u8]) {
    if let Some(b) = buf.first_mut() {
        *b |= TO_CLIENT_BIT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosh_mux_proto::{classify, Datagram};

    #[test]
    fn framed_payload_is_a_valid_client_datagram_and_echoes_back() {
        let stamp = Stamp {
            session: 7,
            sent_ns: 123_456_789,
            class: Class::Active,
            seq: 9,
        };
        let mut buf = [0u8; 200];
        let n = write_framed(&mut buf, Sid([3; 8]), 100, stamp);
        assert_eq!(n, HEADER_LEN + 100);
        let Ok(Datagram::Framed { sid, payload }) = classify(&buf[..n]) else {
            panic!("not framed")
        };
        assert_eq!(sid, Sid([3; 8]));
        let mut echo = payload.to_vec();
        assert_eq!(read_echo(&echo), None);
        make_echo(&mut echo);
        assert_eq!(read_echo(&echo), Some(stamp));
    }

    #[test]
    fn short_sizes_are_raised_to_the_minimum() {
        let mut buf = [0u8; 64];
        let stamp = Stamp {
            session: 0,
            sent_ns: 0,
            class: Class::Probe,
            seq: 0,
        };
        assert_eq!(write(&mut buf, 1, stamp), MIN_PAYLOAD);
    }
}
