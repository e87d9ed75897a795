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

/// The keys of the wrappers' config file.
pub const WRAPPER_KEYS: [&str; 3] = ["control_socket", "mosh_server", "mosh_client"];

impl WrapperConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        parse_toml(text).map_err(|e| e.unknown_key_hint(&WRAPPER_KEYS))
    }
}

impl ConfigError {
    /// toml's "unknown field `x`, expected one of ..." in moshd's words:
    /// "unknown key `x`; did you mean `y`?".
    fn unknown_key_hint(self, known: &[&str]) -> ConfigError {
        let Some(rest) = self.message.strip_prefix("unknown field `") else { return self };
        let Some((key, _)) = rest.split_once('`') else { return self };
        let hint = nearest_key(key, known).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
        ConfigError { line: self.line, message: format!("unknown key `{key}`{hint}") }
    }
}

/// The known key closest to a misspelt one, if any is close: the "did you
/// mean" of moshd's and the wrappers' config errors.
pub fn nearest_key<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = prev[j] + usize::from(ca != cb);
            cur[j + 1] = replace.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
        assert_eq!(e.to_string(), "line 3: unknown key `bogus`");
        let e = WrapperConfig::parse("mosh_clent = \"/x\"\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: unknown key `mosh_clent`; did you mean `mosh_client`?");
        assert!(WrapperConfig::parse("control_socket = 5").is_err());
    }

    #[test]
    fn near_keys_are_suggested_far_ones_not() {
        let known = ["max_sessions", "max_candidates", "listen"];
        assert_eq!(nearest_key("max_sesions", &known), Some("max_sessions"));
        assert_eq!(nearest_key("lisen", &known), Some("listen"));
        assert_eq!(nearest_key("colour", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") { let _ = WrapperConfig::parse(&s); }
    }
}
