//! What moshd runs with: the built-in defaults, then the configuration
//! file, then the command line, each overriding the one before. Pure, so
//! the precedence is tested here; `main` reads the file and the
//! environment and hands them in, at start and again on SIGHUP.

use crate::cli::RunArgs;
use crate::config::{self, FileConfig};
use crate::limits::Limits;
use crate::paths::Defaults;
use mosh_mux_proto::config::ConfigError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The log filter when nothing names one.
pub const DEFAULT_LOG_FILTER: &str = "info";

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    pub control_socket: PathBuf,
    pub state_file: PathBuf,
    pub advertise_port: Option<u16>,
    pub limits: Limits,
    pub user: Option<String>,
    pub log_filter: String,
}

pub fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], 60001)),
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 60001)),
    ]
}

/// Merges defaults, file and command line. `rust_log` is $RUST_LOG, which
/// beats the file's log_level but not --log-level. Errs only when a place
/// has no default here and nothing names it.
pub fn resolve(defaults: &Defaults, file: &FileConfig, cli: &RunArgs, rust_log: Option<&str>) -> Result<Settings, String> {
    let pick = |cli: &Option<PathBuf>, file: &Option<PathBuf>, default: &Option<PathBuf>, what: &str| {
        cli.clone()
            .or_else(|| file.clone())
            .or_else(|| default.clone())
            .ok_or_else(|| Defaults::missing(what))
    };
    let mut limits = file.limits.apply(Limits::default());
    limits.roaming_probe = cli.roaming_probe().or(file.roaming_probe).unwrap_or(false);
    if let Some(n) = cli.max_sessions {
        limits.max_sessions = n;
    }
    if let Some(n) = cli.max_sessions_per_user {
        limits.max_sessions_per_uid = n;
    }
    if let Some(n) = cli.max_candidates {
        limits.max_candidates = n;
    }
    if let Some(n) = cli.probe_fanout {
        limits.probe_fanout = n;
    }
    let rust_log = rust_log.filter(|f| !f.trim().is_empty());
    Ok(Settings {
        listen: match (&cli.listen[..], &file.listen) {
            ([], Some(addrs)) => addrs.clone(),
            ([], None) => default_listen(),
            (addrs, _) => addrs.to_vec(),
        },
        control_socket: pick(&cli.control_socket, &file.control_socket, &defaults.control_socket, "control_socket")?,
        state_file: pick(&cli.state_file, &file.state_file, &defaults.state_file, "state_file")?,
        advertise_port: cli.advertise_port.or(file.advertise_port),
        limits,
        user: cli.user.clone().or_else(|| file.user.clone()),
        log_filter: cli
            .log_level
            .as_deref()
            .or(rust_log)
            .or(file.log_level.as_deref())
            .unwrap_or(DEFAULT_LOG_FILTER)
            .to_owned(),
    })
}

/// The settings a reload cannot apply to a running moshd, by their key
/// names in the file, where `new` differs from `running`.
pub fn needs_restart(running: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if running.listen != new.listen {
        changed.push("listen");
    }
    if running.control_socket != new.control_socket {
        changed.push("control_socket");
    }
    if running.state_file != new.state_file {
        changed.push("state_file");
    }
    if running.advertise_port != new.advertise_port {
        changed.push("advertise_port");
    }
    if running.user != new.user {
        changed.push("user");
    }
    changed
}

/// The limits that differ, as "key: old -> new".
pub fn limit_changes(old: &Limits, new: &Limits) -> Vec<String> {
    config::limit_values(old)
        .into_iter()
        .zip(config::limit_values(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((key, a), (_, b))| format!("{key}: {a} -> {b}"))
        .collect()
}

/// A configuration file's text, read: missing is fine only for a default
/// path (`required` false); a named file must exist.
#[derive(Debug)]
pub enum FileError {
    /// The file could not be read.
    Read(String),
    /// The file's errors, each with its line.
    Invalid(Vec<ConfigError>),
}

impl FileError {
    /// Every error, one a line, each prefixed with the file's path.
    pub fn lines(&self, path: &Path) -> Vec<String> {
        match self {
            FileError::Read(why) => vec![format!("{}: {why}", path.display())],
            FileError::Invalid(errors) => errors.iter().map(|e| format!("{}: {e}", path.display())).collect(),
        }
    }
}

/// Config files are small; a bigger one is a mistake.
const MAX_FILE_LEN: u64 = 1 << 20;

/// Reads and parses the file at `path` (`None`, or missing and not
/// `required`: an empty configuration).
pub fn load(path: Option<&Path>, required: bool) -> Result<FileConfig, FileError> {
    use std::io::Read;
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(FileConfig::default()),
        Err(e) => return Err(FileError::Read(format!("cannot read it: {e}"))),
    };
    let mut text = String::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| FileError::Read(format!("cannot read it: {e}")))?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(FileError::Read(format!("longer than {MAX_FILE_LEN} bytes")));
    }
    config::parse(&text).map_err(FileError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::Env;

    fn defaults() -> Defaults {
        Defaults::for_env(&Env { root: true, ..Env::default() })
    }

    fn file(text: &str) -> FileConfig {
        config::parse(text).unwrap()
    }

    #[test]
    fn nothing_given_means_the_defaults() {
        let s = resolve(&defaults(), &FileConfig::default(), &RunArgs::default(), None).unwrap();
        assert_eq!(s.listen, default_listen());
        assert_eq!(s.control_socket, PathBuf::from("/run/moshd/control.sock"));
        assert_eq!(s.state_file, PathBuf::from("/var/lib/moshd/state.json"));
        assert_eq!(s.limits, Limits::default());
        assert_eq!((s.advertise_port, s.user, s.log_filter.as_str()), (None, None, "info"));
    }

    #[test]
    fn the_command_line_overrides_the_file() {
        let f = file(
            "listen = [\"127.0.0.1:1\"]\ncontrol_socket = \"/f.sock\"\nuser = \"a\"\nroaming_probe = true\n\
             log_level = \"warn\"\nadvertise_port = 5\n[limits]\nmax_sessions = 9\nmax_candidates = 3\nprobe_fanout = 2\n",
        );
        let s = resolve(&defaults(), &f, &RunArgs::default(), None).unwrap();
        assert_eq!(s.listen, vec!["127.0.0.1:1".parse().unwrap()]);
        assert_eq!(s.control_socket, PathBuf::from("/f.sock"));
        assert_eq!((s.limits.max_sessions, s.limits.max_candidates, s.limits.roaming_probe), (9, 3, true));
        assert_eq!((s.user.as_deref(), s.log_filter.as_str(), s.advertise_port), (Some("a"), "warn", Some(5)));
        assert_eq!(resolve(&defaults(), &f, &RunArgs::default(), Some("debug")).unwrap().log_filter, "debug");

        let cli = RunArgs {
            listen: vec!["127.0.0.1:2".parse().unwrap()],
            control_socket: Some("/c.sock".into()),
            max_candidates: Some(5),
            no_roaming_probe: true,
            user: Some("b".into()),
            log_level: Some("trace".into()),
            advertise_port: Some(6),
            ..RunArgs::default()
        };
        let s = resolve(&defaults(), &f, &cli, Some("debug")).unwrap();
        assert_eq!(s.listen, vec!["127.0.0.1:2".parse().unwrap()]);
        assert_eq!(s.control_socket, PathBuf::from("/c.sock"));
        assert_eq!((s.limits.max_sessions, s.limits.max_candidates, s.limits.roaming_probe), (9, 5, false));
        assert_eq!((s.user.as_deref(), s.log_filter.as_str(), s.advertise_port), (Some("b"), "trace", Some(6)));
    }

    #[test]
    fn a_missing_default_must_be_named() {
        let user = Defaults::for_env(&Env { home: Some("/home/u".into()), ..Env::default() });
        let e = resolve(&user, &FileConfig::default(), &RunArgs::default(), None).unwrap_err();
        assert!(e.contains("XDG_RUNTIME_DIR"), "{e}");
        let named = resolve(&user, &file("control_socket = \"/tmp/u.sock\""), &RunArgs::default(), None).unwrap();
        assert_eq!(named.state_file, PathBuf::from("/home/u/.local/state/moshd/state.json"));
    }

    #[test]
    fn reload_reports_what_it_cannot_apply_and_what_changed() {
        let a = resolve(&defaults(), &FileConfig::default(), &RunArgs::default(), None).unwrap();
        let b = resolve(&defaults(), &file("listen = [\"127.0.0.1:1\"]\nuser = \"x\"\n[limits]\nmax_sessions_per_user = 1\n"), &RunArgs::default(), None).unwrap();
        assert_eq!(needs_restart(&a, &b), ["listen", "user"]);
        assert_eq!(limit_changes(&a.limits, &b.limits), ["max_sessions_per_user: 100 -> 1"]);
        assert!(needs_restart(&a, &a).is_empty());
    }

    #[test]
    fn loading_distinguishes_missing_unreadable_and_invalid() {
        let dir = std::env::temp_dir().join(format!("moshd-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.toml");
        assert_eq!(load(Some(&missing), false).unwrap(), FileConfig::default());
        let e = load(Some(&missing), true).unwrap_err();
        assert_eq!(e.lines(&missing), [format!("{}: cannot read it: No such file or directory (os error 2)", missing.display())]);
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[limits]\nmax_candidates = 0\nbogus = 1\n").unwrap();
        let lines = load(Some(&bad), true).unwrap_err().lines(&bad);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], format!("{}: line 2: `limits.max_candidates` must be at least 2, not 0", bad.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
