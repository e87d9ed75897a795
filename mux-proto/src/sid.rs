//! Session ids: derived from the mosh session key that both ends already hold.
//!
//! `sid = HMAC-SHA256(key = the 16 decoded key bytes, "mosh-mux sid v1")[..8]`.
//! The sid names a session to moshd without a new channel and, being a MAC
//! output, reveals nothing about the key or the server's inner port.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

/// The label mixed into the sid derivation; a new version gets a new label.
pub const SID_LABEL: &[u8] = b"mosh-mux sid v1";

/// An 8-byte session id, shown as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(pub [u8; 8]);

/// A mosh session key: 16 bytes, written by mosh as 22 base64 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; 16]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("session key must be 22 base64 characters, got {0}")]
    Length(usize),
    #[error("session key is not valid base64")]
    Base64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("session id must be 16 hex digits")]
pub struct SidParseError;

impl SessionKey {
    /// Parses the 22-character form that mosh-server prints and MOSH_KEY carries.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.len() != 22 {
            return Err(KeyError::Length(text.len()));
        }
        let bytes = STANDARD_NO_PAD.decode(text).map_err(|_| KeyError::Base64)?;
        let key: [u8; 16] = bytes.try_into().map_err(|_| KeyError::Base64)?;
        Ok(SessionKey(key))
    }

    pub fn sid(&self) -> Sid {
        // HMAC accepts keys of any length, so this cannot fail; fall back to
        // an all-zero sid rather than panic if that ever changed.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.0) else {
            return Sid([0; 8]);
        };
        mac.update(SID_LABEL);
        let out = mac.finalize().into_bytes();
        let mut sid = [0u8; 8];
        sid.copy_from_slice(&out[..8]);
        Sid(sid)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, not even in debug output.
        f.write_str("SessionKey(..)")
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({self})")
    }
}

impl FromStr for Sid {
    type Err = SidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SidParseError);
        }
        let mut out = [0u8; 8];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| SidParseError)?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| SidParseError)?;
        }
        Ok(Sid(out))
    }
}

impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Sid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(SessionKey::parse("short"), Err(KeyError::Length(5)));
        assert_eq!(
            SessionKey::parse("!!!!!!!!!!!!!!!!!!!!!!"),
            Err(KeyError::Base64)
        );
        // Non-canonical trailing bits: mosh never writes these.
        assert_eq!(
            SessionKey::parse("AAAAAAAAAAAAAAAAAAAAAB"),
            Err(KeyError::Base64)
        );
    }

    #[test]
    fn debug_hides_key() {
        let key = SessionKey::parse("gflLFw38EcGhIYzas1qLZA").unwrap();
        assert_eq!(format!("{key:?}"), "SessionKey(..)");
    }

    proptest! {
        #[test]
        fn sid_hex_round_trips(bytes in any::<[u8; 8]>()) {
            let sid = Sid(bytes);
            prop_assert_eq!(sid.to_string().parse::<Sid>(), Ok(sid));
        }

        #[test]
        fn key_round_trips_and_sids_differ(a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            let ka = SessionKey::parse(&STANDARD_NO_PAD.encode(a)).unwrap();
            let kb = SessionKey::parse(&STANDARD_NO_PAD.encode(b)).unwrap();
            prop_assert_eq!(&ka.0, &a);
            if a != b { prop_assert_ne!(ka.sid(), kb.sid()); }
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = SessionKey::parse(&s);
            let _ = s.parse::<Sid>();
        }
    }
}
