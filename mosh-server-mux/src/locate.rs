//! Finding moshd's control socket and the stock mosh-server binary.
//!
//! Each comes from the first place that names it: our option, then (for the
//! socket) $MOSHD_SOCKET, then ~/.config/mosh/mux.toml, then
//! /etc/mosh/mux.toml, then a built-in default (the socket) or $PATH (the
//! binary). The config files are read only when a value is still missing,
//! so a broken file does not stop a user who named everything on the
//! command line; when read, a broken file is an error that names its line.
//!
//! The socket's default is the user's own moshd,
//! $XDG_RUNTIME_DIR/moshd/control.sock, when that socket exists, and the
//! system's, /run/moshd/control.sock, otherwise. So a per-user moshd is
//! found without configuration wherever the login sets $XDG_RUNTIME_DIR
//! (sshd with PAM and logind), while whatever a user or the administrator
//! wrote down still wins over it. $XDG_RUNTIME_DIR is the user's own
//! (0700): no other user can plant a socket there.

use anyhow::{bail, Context, Result};
use mosh_mux_proto::config::WrapperConfig;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_SOCKET: &str = "/run/moshd/control.sock";
/// Config files are small; a bigger one is a mistake.
const MAX_CONFIG_LEN: u64 = 64 * 1024;

/// A value and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub from: String,
}

/// A config file that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub config: WrapperConfig,
}

pub use mosh_mux_proto::config::config_paths;

/// Reads and parses the files that exist.
pub fn load_configs(paths: &[PathBuf]) -> Result<Vec<ConfigFile>> {
    let mut files = Vec::new();
    for path in paths {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut text = String::new();
        file.take(MAX_CONFIG_LEN + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if text.len() as u64 > MAX_CONFIG_LEN {
            bail!("{}: longer than {MAX_CONFIG_LEN} bytes", path.display());
        }
        let config =
            WrapperConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        files.push(ConfigFile {
            path: path.clone(),
            config,
        });
    }
    Ok(files)
}

/// Where a user's own moshd listens, under $XDG_RUNTIME_DIR.
pub const USER_SOCKET: &str = "moshd/control.sock";

/// The control socket: option, then $MOSHD_SOCKET, then config files, then
/// the user's own moshd if its socket exists, then the system default.
pub fn control_socket(option: Option<&Path>, env: Option<&OsStr>, configs: &[ConfigFile]) -> Found {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR");
    control_socket_with(option, env, configs, runtime_dir.as_deref(), is_socket)
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// [`control_socket`] with $XDG_RUNTIME_DIR and the socket test passed in.
pub fn control_socket_with(
    option: Option<&Path>,
    env: Option<&OsStr>,
    configs: &[ConfigFile],
    runtime_dir: Option<&OsStr>,
    exists: impl Fn(&Path) -> bool,
) -> Found {
    if let Some(p) = option {
        return Found {
            path: p.to_owned(),
            from: "--control-socket".into(),
        };
    }
    if let Some(p) = env.filter(|e| !e.is_empty()) {
        return Found {
            path: p.into(),
            from: "$MOSHD_SOCKET".into(),
        };
    }
    for file in configs {
        if let Some(p) = &file.config.control_socket {
            return Found {
                path: p.clone(),
                from: file.path.display().to_string(),
            };
        }
    }
    let own = runtime_dir
        .map(Path::new)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(USER_SOCKET))
        .filter(|p| exists(p));
    if let Some(path) = own {
        return Found {
            path,
            from: "$XDG_RUNTIME_DIR".into(),
        };
    }
    Found {
        path: DEFAULT_SOCKET.into(),
        from: "the default".into(),
    }
}

/// The mosh-server named by the option or a config file, if any.
pub fn named_mosh_server(option: Option<&Path>, configs: &[ConfigFile]) -> Option<Found> {
    if let Some(p) = option {
        return Some(Found {
            path: p.to_owned(),
            from: "--mosh-server".into(),
        });
    }
    configs.iter().find_map(|file| {
        let p = file.config.mosh_server.as_ref()?;
        Some(Found {
            path: p.clone(),
            from: file.path.display().to_string(),
        })
    })
}

/// Identity of a file, to recognise our own executable under any name.
fn identity(path: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Why a mosh-server could not be found (printed after "cannot find mosh-server").
#[derive(Debug, PartialEq, Eq)]
pub enum NotFound {
    /// Nothing suitable on $PATH.
    NotOnPath,
    /// A named path that is not usable, with the reason.
    Named(Found, String),
}

/// Checks a named mosh-server, or searches $PATH, never returning our own executable.
pub fn mosh_server(named: Option<Found>) -> Result<PathBuf, NotFound> {
    let me = std::env::current_exe().ok().and_then(|p| identity(&p));
    match named {
        Some(found) => match std::fs::metadata(&found.path) {
            Err(e) => {
                let reason = e.to_string();
                Err(NotFound::Named(found, reason))
            }
            Ok(m) if !m.is_file() => Err(NotFound::Named(found, "not a file".into())),
            Ok(_) if me.is_some() && identity(&found.path) == me => Err(NotFound::Named(
                found,
                "that is mosh-server-mux itself".into(),
            )),
            Ok(_) => Ok(found.path),
        },
        None => which::which_all("mosh-server")
            .map_err(|_| NotFound::NotOnPath)?
            .find(|p| me.is_none() || identity(p) != me)
            .ok_or(NotFound::NotOnPath),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosh_mux_proto::config::SYSTEM_CONFIG;

    fn cfg(path: &str, socket: Option<&str>, server: Option<&str>) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            config: WrapperConfig {
                control_socket: socket.map(PathBuf::from),
                mosh_server: server.map(PathBuf::from),
                mosh_client: None,
            },
        }
    }

    #[test]
    fn socket_precedence() {
        let files = [
            cfg("/home/u/.config/mosh/mux.toml", None, None),
            cfg("/etc/mosh/mux.toml", Some("/etc.sock"), None),
        ];
        let opt = Path::new("/opt.sock");
        assert_eq!(
            control_socket(Some(opt), Some(OsStr::new("/env.sock")), &files).path,
            opt
        );
        assert_eq!(
            control_socket(None, Some(OsStr::new("/env.sock")), &files).path,
            Path::new("/env.sock")
        );
        let f = control_socket(None, Some(OsStr::new("")), &files);
        assert_eq!(
            (f.path.to_str().unwrap(), f.from.as_str()),
            ("/etc.sock", "/etc/mosh/mux.toml")
        );
        assert_eq!(
            control_socket_with(None, None, &[], None, |_| true).path,
            Path::new(DEFAULT_SOCKET)
        );
    }

    #[test]
    fn a_users_own_moshd_comes_after_the_config_files() {
        let run = Some(OsStr::new("/run/user/1000"));
        let own = Path::new("/run/user/1000/moshd/control.sock");
        let there = |p: &Path| p == own;
        let f = control_socket_with(None, None, &[], run, there);
        assert_eq!((f.path.as_path(), f.from.as_str()), (own, "$XDG_RUNTIME_DIR"));
        // Not there (or no $XDG_RUNTIME_DIR, or a relative one): the system's.
        for (dir, exists) in [(run, false), (None, true), (Some(OsStr::new("run/user/1")), true)] {
            let f = control_socket_with(None, None, &[], dir, |_| exists);
            assert_eq!(f.path, Path::new(DEFAULT_SOCKET), "{dir:?}");
        }
        // Anything written down wins over it.
        let files = [cfg("/etc/mosh/mux.toml", Some("/etc.sock"), None)];
        assert_eq!(control_socket_with(None, None, &files, run, there).path, Path::new("/etc.sock"));
        let env = Some(OsStr::new("/env.sock"));
        assert_eq!(control_socket_with(None, env, &[], run, there).path, Path::new("/env.sock"));
        assert_eq!(control_socket_with(Some(Path::new("/o")), None, &[], run, there).path, Path::new("/o"));
    }

    #[test]
    fn server_precedence() {
        let files = [
            cfg("/u", None, Some("/u/ms")),
            cfg("/e", None, Some("/e/ms")),
        ];
        assert_eq!(
            named_mosh_server(Some(Path::new("/o")), &files)
                .unwrap()
                .path,
            Path::new("/o")
        );
        assert_eq!(
            named_mosh_server(None, &files).unwrap().path,
            Path::new("/u/ms")
        );
        assert_eq!(named_mosh_server(None, &files[1..]).unwrap().from, "/e");
        assert_eq!(named_mosh_server(None, &[]), None);
    }

    #[test]
    fn config_paths_follow_home() {
        assert_eq!(
            config_paths(Some(OsStr::new("/home/u"))),
            [
                PathBuf::from("/home/u/.config/mosh/mux.toml"),
                PathBuf::from(SYSTEM_CONFIG)
            ]
        );
        assert_eq!(config_paths(None), [PathBuf::from(SYSTEM_CONFIG)]);
    }

    #[test]
    fn loading_reports_file_and_line() {
        let dir = std::env::temp_dir().join(format!("msm-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        let bad = dir.join("bad.toml");
        std::fs::write(&good, "control_socket = \"/x.sock\"\n").unwrap();
        std::fs::write(&bad, "\n\nbogus = 1\n").unwrap();
        let missing = dir.join("missing.toml");
        let files = load_configs(&[missing, good.clone()]).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].config.control_socket,
            Some(PathBuf::from("/x.sock"))
        );
        let err = format!("{:#}", load_configs(&[good, bad.clone()]).unwrap_err());
        assert!(
            err.starts_with(&format!("{}: line 3: ", bad.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn never_our_own_executable() {
        let me = std::env::current_exe().unwrap();
        let named = Found {
            path: me,
            from: "--mosh-server".into(),
        };
        assert!(
            matches!(mosh_server(Some(named)), Err(NotFound::Named(_, r)) if r.contains("itself"))
        );
        let missing = Found {
            path: "/nonexistent/mosh-server".into(),
            from: "--mosh-server".into(),
        };
        assert!(matches!(
            mosh_server(Some(missing)),
            Err(NotFound::Named(..))
        ));
    }
}
