//! The client-to-moshd datagram header, and how moshd tells datagrams apart.
//!
//! A framed datagram is `MAGIC_V1` (one byte, top bit set) then the 8-byte
//! sid, then the mosh datagram untouched. A mosh client-to-server datagram
//! starts with its nonce, whose top bit (the direction) is 0, so the first
//! byte alone separates framed from raw and neither can pose as the other.
//! Replies from moshd to clients are mosh's own datagrams, unframed: the
//! client relay receives them on a socket dedicated to one session.

use crate::sid::Sid;

/// Magic and version in one byte: top bit set (never a raw client datagram).
pub const MAGIC_V1: u8 = 0xB1;
/// Header length: magic + sid.
pub const HEADER_LEN: usize = 9;
/// mosh's nonce length: the shortest a raw mosh datagram can be.
pub const MOSH_NONCE_LEN: usize = 8;
/// mosh's AES-OCB tag: every real mosh datagram carries nonce + tag at least.
pub const MOSH_MIN_DATAGRAM: usize = MOSH_NONCE_LEN + 16;

/// What a datagram arriving at moshd's public port is.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Datagram<'a> {
    /// Framed by mosh-client-mux: the session is named by the sid.
    Framed { sid: Sid, payload: &'a [u8] },
    /// A stock mosh-client's datagram (direction bit 0), unframed.
    Raw(&'a [u8]),
}

/// Why a datagram was refused before any routing. Each has a counter.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Malformed {
    /// Top bit set but not a magic byte we know (a future version, or junk).
    UnknownMagic,
    /// Shorter than a header plus a minimal mosh datagram.
    TooShort,
}

impl Malformed {
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::UnknownMagic => "unknown_magic",
            Malformed::TooShort => "too_short",
        }
    }
}

/// Classifies a datagram by its first byte, checking lengths.
pub fn classify(buf: &[u8]) -> Result<Datagram<'_>, Malformed> {
    match buf.first() {
        None => Err(Malformed::TooShort),
        Some(&b) if b & 0x80 == 0 => {
            if buf.len() < MOSH_MIN_DATAGRAM {
                Err(Malformed::TooShort)
            } else {
                Ok(Datagram::Raw(buf))
            }
        }
        Some(&MAGIC_V1) => {
            if buf.len() < HEADER_LEN + MOSH_MIN_DATAGRAM {
                return Err(Malformed::TooShort);
            }
            let mut sid = [0u8; 8];
            sid.copy_from_slice(&buf[1..HEADER_LEN]);
            let payload = &buf[HEADER_LEN..];
            // A framed payload is a client-to-server mosh datagram too.
            if payload[0] & 0x80 != 0 {
                return Err(Malformed::UnknownMagic);
            }
            Ok(Datagram::Framed { sid: Sid(sid), payload })
        }
        Some(_) => Err(Malformed::UnknownMagic),
    }
}

/// Writes the header for `sid` into the first `HEADER_LEN` bytes of `out`.
pub fn encode_header(sid: Sid, out: &mut [u8; HEADER_LEN]) {
    out[0] = MAGIC_V1;
    out[1..].copy_from_slice(&sid.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(sid: Sid, payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; HEADER_LEN];
        encode_header(sid, &mut h);
        let mut v = h.to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn rejects_each_malformed_shape() {
        assert_eq!(classify(&[]), Err(Malformed::TooShort));
        assert_eq!(classify(&[0x01; 23]), Err(Malformed::TooShort));
        assert_eq!(classify(&[0xB1; 40]), Err(Malformed::UnknownMagic)); // payload top bit set
        assert_eq!(classify(&[0xB2; 64]), Err(Malformed::UnknownMagic));
        assert_eq!(classify(&[0xFF; 64]), Err(Malformed::UnknownMagic));
        let short = framed(Sid([1; 8]), &[0u8; MOSH_MIN_DATAGRAM - 1]);
        assert_eq!(classify(&short), Err(Malformed::TooShort));
    }

    #[test]
    fn raw_client_datagram_is_raw() {
        let d = [0x00u8; 40];
        assert_eq!(classify(&d), Ok(Datagram::Raw(&d)));
    }

    proptest! {
        #[test]
        fn framed_round_trips(sid in any::<[u8; 8]>(),
                              mut payload in proptest::collection::vec(any::<u8>(), MOSH_MIN_DATAGRAM..1400)) {
            payload[0] &= 0x7f;
            let buf = framed(Sid(sid), &payload);
            prop_assert_eq!(classify(&buf), Ok(Datagram::Framed { sid: Sid(sid), payload: &payload }));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_obey_first_byte(buf in proptest::collection::vec(any::<u8>(), 0..2048)) {
            match classify(&buf) {
                Ok(Datagram::Raw(p)) => { prop_assert!(buf[0] < 0x80); prop_assert_eq!(p.len(), buf.len()); }
                Ok(Datagram::Framed { payload, .. }) => {
                    prop_assert_eq!(buf[0], MAGIC_V1);
                    prop_assert_eq!(payload.len() + HEADER_LEN, buf.len());
                }
                Err(_) => {}
            }
        }
    }
}

/// moshd's notices to a client relay: first byte `NOTICE_V1` (top bit
/// clear, which no mosh server-to-client datagram has), then a code. Two
/// bytes, smaller than any datagram that can provoke one.
pub const NOTICE_V1: u8 = 0x01;

/// What moshd tells a client relay about its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// moshd has no session with the sid this client sent.
    UnknownSession,
}

impl Notice {
    pub fn encode(self) -> [u8; 2] {
        match self {
            Notice::UnknownSession => [NOTICE_V1, 0x01],
        }
    }

    /// A notice, if `buf` is one. Anything else from moshd is mosh's.
    pub fn decode(buf: &[u8]) -> Option<Notice> {
        match buf {
            [NOTICE_V1, 0x01] => Some(Notice::UnknownSession),
            _ => None,
        }
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_is_smaller_than_any_framed_datagram() {
        let n = Notice::UnknownSession;
        assert_eq!(Notice::decode(&n.encode()), Some(n));
        assert!(n.encode().len() < HEADER_LEN + MOSH_MIN_DATAGRAM);
    }

    proptest! {
        #[test]
        fn mosh_datagrams_are_never_notices(mut buf in proptest::collection::vec(any::<u8>(), 0..1400)) {
            if let Some(b) = buf.first_mut() { *b |= 0x80; } // server-to-client direction bit
            prop_assert_eq!(Notice::decode(&buf), None);
        }
    }
}
