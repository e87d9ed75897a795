//! Where moshd's files are when nothing names them: the system's places
//! for root, the directories systemd made for the service, and the XDG
//! places for a user who runs a moshd of their own.
//!
//! Pure: the environment is passed in ([`Env`]), so every rule is testable.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub const SYSTEM_CONFIG: &str = "/etc/mosh/moshd.toml";
pub const SYSTEM_CONTROL_SOCKET: &str = "/run/moshd/control.sock";
pub const SYSTEM_STATE_FILE: &str = "/var/lib/moshd/state.json";

/// The parts of the process environment the defaults depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// Running as root (uid 0).
    pub root: bool,
    pub home: Option<OsString>,
    pub xdg_config_home: Option<OsString>,
    pub xdg_runtime_dir: Option<OsString>,
    pub xdg_state_home: Option<OsString>,
    /// systemd's RuntimeDirectory= and StateDirectory=, as it exports them.
    pub runtime_directory: Option<OsString>,
    pub state_directory: Option<OsString>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name: &str| std::env::var_os(name);
        Env {
            root: nix::unistd::geteuid().is_root(),
            home: var("HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            xdg_state_home: var("XDG_STATE_HOME"),
            runtime_directory: var("RUNTIME_DIRECTORY"),
            state_directory: var("STATE_DIRECTORY"),
        }
    }
}

/// The default places; `None` where this environment has no answer (a
/// user's moshd without $XDG_RUNTIME_DIR, say), with [`Defaults::missing`]
/// saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub config_file: Option<PathBuf>,
    pub control_socket: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
}

/// An absolute directory from a variable (XDG: relative values are ignored).
fn dir(value: &Option<OsString>) -> Option<PathBuf> {
    let value = value.as_ref()?;
    // systemd separates several directories with ':'; the first is ours.
    let first = value.to_str().map_or(value.clone(), |s| s.split(':').next().unwrap_or("").into());
    let path = PathBuf::from(first);
    path.is_absolute().then_some(path)
}

fn under_home(env: &Env, rel: &str) -> Option<PathBuf> {
    dir(&env.home).map(|h| h.join(rel))
}

impl Defaults {
    pub fn for_env(env: &Env) -> Defaults {
        let systemd_socket = dir(&env.runtime_directory).map(|d| d.join("control.sock"));
        let systemd_state = dir(&env.state_directory).map(|d| d.join("state.json"));
        if env.root {
            return Defaults {
                config_file: Some(SYSTEM_CONFIG.into()),
                control_socket: Some(systemd_socket.unwrap_or_else(|| SYSTEM_CONTROL_SOCKET.into())),
                state_file: Some(systemd_state.unwrap_or_else(|| SYSTEM_STATE_FILE.into())),
            };
        }
        Defaults {
            config_file: dir(&env.xdg_config_home)
                .or_else(|| under_home(env, ".config"))
                .map(|d| d.join("mosh/moshd.toml")),
            control_socket: systemd_socket
                .or_else(|| dir(&env.xdg_runtime_dir).map(|d| d.join("moshd/control.sock"))),
            state_file: systemd_state.or_else(|| {
                dir(&env.xdg_state_home)
                    .or_else(|| under_home(env, ".local/state"))
                    .map(|d| d.join("moshd/state.json"))
            }),
        }
    }

    /// Why a default is missing, for the error that asks the user to name it.
    pub fn missing(what: &str) -> String {
        match what {
            "control_socket" => "no control socket: $XDG_RUNTIME_DIR is not set; pass --control-socket \
                                 or set control_socket in the configuration file"
                .into(),
            _ => format!("no {what}: $HOME is not set; pass --{} or set {what} in the configuration file", what.replace('_', "-")),
        }
    }
}

/// The socket `moshd status` asks by default: this user's own moshd when
/// one listens at the default place, otherwise the system's.
pub fn status_socket(defaults: &Defaults, exists: impl Fn(&Path) -> bool) -> PathBuf {
    match &defaults.control_socket {
        Some(own) if exists(own) => own.clone(),
        _ => SYSTEM_CONTROL_SOCKET.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(s.into())
    }

    #[test]
    fn root_uses_the_system_places() {
        let d = Defaults::for_env(&Env { root: true, home: os("/root"), xdg_runtime_dir: os("/run/user/0"), ..Env::default() });
        assert_eq!(d.config_file, Some(PathBuf::from(SYSTEM_CONFIG)));
        assert_eq!(d.control_socket, Some(PathBuf::from(SYSTEM_CONTROL_SOCKET)));
        assert_eq!(d.state_file, Some(PathBuf::from(SYSTEM_STATE_FILE)));
    }

    #[test]
    fn systemd_directories_win() {
        for root in [true, false] {
            let env = Env {
                root,
                home: os("/"),
                runtime_directory: os("/run/moshd"),
                state_directory: os("/var/lib/moshd:/var/lib/other"),
                ..Env::default()
            };
            let d = Defaults::for_env(&env);
            assert_eq!(d.control_socket, Some(PathBuf::from("/run/moshd/control.sock")));
            assert_eq!(d.state_file, Some(PathBuf::from("/var/lib/moshd/state.json")));
        }
    }

    #[test]
    fn a_user_gets_xdg_places() {
        let env = Env { home: os("/home/a"), xdg_runtime_dir: os("/run/user/1000"), ..Env::default() };
        let d = Defaults::for_env(&env);
        assert_eq!(d.config_file, Some(PathBuf::from("/home/a/.config/mosh/moshd.toml")));
        assert_eq!(d.control_socket, Some(PathBuf::from("/run/user/1000/moshd/control.sock")));
        assert_eq!(d.state_file, Some(PathBuf::from("/home/a/.local/state/moshd/state.json")));
        let env = Env {
            xdg_config_home: os("/c"),
            xdg_state_home: os("/s"),
            xdg_runtime_dir: os("relative/ignored"),
            ..env
        };
        let d = Defaults::for_env(&env);
        assert_eq!(d.config_file, Some(PathBuf::from("/c/mosh/moshd.toml")));
        assert_eq!(d.state_file, Some(PathBuf::from("/s/moshd/state.json")));
        assert_eq!(d.control_socket, None);
        assert!(Defaults::missing("control_socket").contains("XDG_RUNTIME_DIR"));
        assert_eq!(Defaults::for_env(&Env::default()).state_file, None);
    }

    #[test]
    fn status_asks_the_users_own_moshd_only_when_it_is_there() {
        let d = Defaults::for_env(&Env { xdg_runtime_dir: os("/run/user/7"), ..Env::default() });
        assert_eq!(status_socket(&d, |_| true), PathBuf::from("/run/user/7/moshd/control.sock"));
        assert_eq!(status_socket(&d, |_| false), PathBuf::from(SYSTEM_CONTROL_SOCKET));
    }
}
