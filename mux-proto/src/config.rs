//! The wrappers' config file, ~/.config/mosh/mux.toml or /etc/mosh/mux.toml.
//!
//! Both wrappers read it to find moshd's socket and the stock binaries.
//! Unknown keys are errors, reported with their line, like sshd -t.

use serde::Deserialize;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The system-wide wrapper config file.
pub const SYSTEM_CONFIG: &str = "/etc/mosh/mux.toml";

/// The wrapper config files in the order they are consulted, given $HOME:
/// the user's (when $HOME is set and not empty), then the system's.
pub fn config_paths(home: Option<&OsStr>) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(home) = home.filter(|h| !h.is_empty()) {
        paths.push(Path::new(home).join(".config/mosh/mux.toml"));
    }
    paths.push(PathBuf::from(SYSTEM_CONFIG));
    paths
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapperConfig {
    /// moshd's control socket.
    pub control_socket: Option<PathBuf>,
    /// The stock mosh-server binary.
    pub mosh_server: Option<PathBuf>,
    /// The stock mosh-client binary.
    pub mosh_client: Option<PathBuf>,
}

/// A config error with the 1-based line it was found on, when known.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ConfigError {
    pub line: Option<usize>,
    pub message: String,
}

/// Parses TOML text into `T`, turning toml's error into line + one-line reason.
pub fn parse_toml<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        ConfigError {
            line,
            message: e.message().trim().replace('\n', " "),
        }
    })
}

impl WrapperConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        parse_toml(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses_unknown_keys() {
        let c = WrapperConfig::parse("control_socket = \"/run/x.sock\"\n").unwrap();
        assert_eq!(c.control_socket, Some(PathBuf::from("/run/x.sock")));
        let e = WrapperConfig::parse("\ncontrol_socket = \"/a\"\nbogus = 1\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("bogus"), "{e}");
        assert!(WrapperConfig::parse("control_socket = 5").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") { let _ = WrapperConfig::parse(&s); }
    }
}
