//! Mux mode travels in the port string of the MOSH CONNECT line.
//!
//! That string is the only thing that reaches the client unchanged: `mosh`
//! accepts any digits and stock mosh-client resolves "060001" as port 60001.
//! So a leading zero means "mux mode: frame datagrams for moshd on this
//! port"; plain digits mean direct mode, exactly as stock mosh.

/// How the client must talk to the port it was given.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum PortMode {
    /// Plain mosh: datagrams go to the port unframed.
    Direct(u16),
    /// moshd: datagrams are framed with the session's sid.
    Mux(u16),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("port {0:?} is not a decimal number")]
    NotDigits(String),
    #[error("port {0:?} is out of range 1-65535")]
    Range(String),
}

/// Parses the port argument that `mosh` hands to the client.
pub fn parse_port(text: &str) -> Result<PortMode, PortError> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortError::NotDigits(text.chars().take(16).collect()));
    }
    let value: u32 = text
        .parse()
        .map_err(|_| PortError::NotDigits(text.to_owned()))?;
    let port = u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| PortError::Range(text.to_owned()))?;
    if text.len() > 1 && text.starts_with('0') {
        Ok(PortMode::Mux(port))
    } else {
        Ok(PortMode::Direct(port))
    }
}

/// Writes the port string for a MOSH CONNECT line.
pub fn format_port(mode: PortMode) -> String {
    match mode {
        PortMode::Direct(p) => p.to_string(),
        PortMode::Mux(p) => format!("0{p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(parse_port("60001"), Ok(PortMode::Direct(60001)));
        assert_eq!(parse_port("060001"), Ok(PortMode::Mux(60001)));
        assert_eq!(parse_port("0022"), Ok(PortMode::Mux(22)));
        assert!(parse_port("0").is_err());
        assert!(parse_port("00").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("-1").is_err());
        assert!(parse_port("").is_err());
        assert!(parse_port("6000a").is_err());
    }

    proptest! {
        #[test]
        fn round_trips(p in 1u16..=65535, mux in any::<bool>()) {
            let mode = if mux { PortMode::Mux(p) } else { PortMode::Direct(p) };
            prop_assert_eq!(parse_port(&format_port(mode)), Ok(mode));
        }

        #[test]
        fn never_panics(s in ".{0,12}") { let _ = parse_port(&s); }
    }
}
