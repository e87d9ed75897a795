//! Finding the stock mosh-client that does the real work.
//!
//! The order is `--mosh-client`, then `mosh_client` in the config files
//! (~/.config/mosh/mux.toml, then /etc/mosh/mux.toml; the first file that sets
//! it wins), then $PATH. Installing mosh-client-mux under the name mosh-client
//! must not make it run itself forever, so our own executable is never picked.

use crate::fail::{Fatal, EXIT_NOT_FOUND};
use mosh_mux_proto::config::WrapperConfig;
use std::path::{Path, PathBuf};

/// The message when no stock mosh-client is found anywhere.
pub const NOT_FOUND: &str = "cannot find mosh-client (install mosh, or pass --mosh-client PATH)";
pub use mosh_mux_proto::config::{config_paths, SYSTEM_CONFIG};

/// `mosh_client` from the first of `paths` that sets it, with that file.
/// A missing file is skipped; an unreadable or invalid one is an error that
/// names the file (and the line, when known).
pub fn configured_client(paths: &[PathBuf]) -> Result<Option<(PathBuf, PathBuf)>, Fatal> {
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Fatal::new(1, format!("{}: {e}", path.display()))),
        };
        let config = WrapperConfig::parse(&text)
            .map_err(|e| Fatal::new(1, format!("{}: {e}", path.display())))?;
        if let Some(client) = config.mosh_client {
            return Ok(Some((client, path.clone())));
        }
    }
    Ok(None)
}

/// Whether `candidate` is the running executable (through any symlinks).
fn is_self(candidate: &Path, self_exe: Option<&Path>) -> bool {
    let Some(self_exe) = self_exe else {
        return false;
    };
    match (candidate.canonicalize(), self_exe.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The first executable that `name` means: itself when it has a slash,
/// otherwise the first match in $PATH, skipping our own executable.
fn find_executable(name: &Path, self_exe: Option<&Path>) -> Option<PathBuf> {
    let found = which::which_all(name).ok()?;
    found.into_iter().find(|p| !is_self(p, self_exe))
}

/// Finds the stock mosh-client.
pub fn locate(
    flag: Option<&Path>,
    config_paths: &[PathBuf],
    self_exe: Option<&Path>,
) -> Result<PathBuf, Fatal> {
    let explicit = match flag {
        Some(path) => Some((path.to_path_buf(), "--mosh-client".to_owned())),
        None => configured_client(config_paths)?
            .map(|(client, file)| (client, file.display().to_string())),
    };
    match explicit {
        Some((path, from)) => find_executable(&path, self_exe).ok_or_else(|| {
            Fatal::new(
                EXIT_NOT_FOUND,
                format!(
                    "cannot find mosh-client {} (from {from}), or it is mosh-client-mux itself",
                    path.display()
                ),
            )
        }),
        None => find_executable(Path::new("mosh-client"), self_exe)
            .ok_or_else(|| Fatal::new(EXIT_NOT_FOUND, NOT_FOUND)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mosh-client-mux-locate-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn config_paths_order() {
        assert_eq!(
            config_paths(Some(OsStr::new("/home/u"))),
            vec![
                PathBuf::from("/home/u/.config/mosh/mux.toml"),
                PathBuf::from("/etc/mosh/mux.toml")
            ]
        );
        assert_eq!(
            config_paths(None),
            vec![PathBuf::from("/etc/mosh/mux.toml")]
        );
        assert_eq!(config_paths(Some(OsStr::new(""))).len(), 1);
    }

    #[test]
    fn config_first_setting_wins_and_errors_name_file_and_line() {
        let dir = scratch("config");
        let a = dir.join("a.toml");
        let b = dir.join("b.toml");
        let missing = dir.join("missing.toml");
        std::fs::write(&a, "control_socket = \"/run/x\"\n").unwrap();
        std::fs::write(&b, "mosh_client = \"/opt/mc\"\n").unwrap();
        let got = configured_client(&[missing.clone(), a.clone(), b.clone()]).unwrap();
        assert_eq!(got, Some((PathBuf::from("/opt/mc"), b.clone())));
        assert_eq!(configured_client(&[missing, a.clone()]).unwrap(), None);
        std::fs::write(&a, "\n\nmosh_clinet = 1\n").unwrap();
        let e = configured_client(&[a.clone(), b]).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.message.starts_with(&format!("{}: line 3: ", a.display())),
            "{e}"
        );
        assert!(!e.message.contains('\n'));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn flag_beats_config_and_our_own_executable_is_skipped() {
        let dir = scratch("flag");
        let fake = dir.join("mc");
        executable(&fake);
        let me = dir.join("me");
        executable(&me);
        let link = dir.join("mosh-client");
        std::os::unix::fs::symlink(&me, &link).unwrap();
        let bad_config = dir.join("bad.toml");
        std::fs::write(&bad_config, "nonsense").unwrap();
        // The flag wins without reading the config at all.
        assert_eq!(
            locate(Some(&fake), std::slice::from_ref(&bad_config), Some(&me)).unwrap(),
            fake
        );
        assert_eq!(locate(None, &[bad_config], Some(&me)).unwrap_err().code, 1);
        // Pointing at ourselves (through a symlink) is refused.
        let e = locate(Some(&link), &[], Some(&me)).unwrap_err();
        assert_eq!(e.code, EXIT_NOT_FOUND);
        let e = locate(Some(&dir.join("absent")), &[], Some(&me)).unwrap_err();
        assert_eq!(e.code, EXIT_NOT_FOUND);
        assert!(e.message.contains("absent") && e.message.contains("--mosh-client"));
        assert!(is_self(&link, Some(&me)));
        assert!(!is_self(&fake, Some(&me)));
        assert!(!is_self(&fake, None));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
