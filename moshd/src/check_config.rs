//! `moshd check-config [FILE]`, in the manner of `sshd -t`: every error in
//! the file with its line and reason, or one line saying it is OK.
//!
//! Beyond what moshd checks when it reads the file, the `user` it names
//! must exist on this host.

use crate::config::key_line;
use crate::settings::{load, FileError};
use mosh_mux_proto::config::ConfigError;
use std::path::Path;

/// The verdict on `path`: the one line to print when it is valid, or the
/// lines naming each error. `named` is false when the path is the default,
/// whose absence is fine.
pub fn check(path: &Path, named: bool) -> Result<String, Vec<String>> {
    if !named && !path.exists() {
        return Ok(format!("{}: not present; moshd uses its built-in defaults", path.display()));
    }
    let config = load(Some(path), true).map_err(|e| e.lines(path))?;
    if let Some(user) = &config.user {
        let message = match nix::unistd::User::from_name(user) {
            Ok(Some(_)) => None,
            Ok(None) => Some(format!("`user`: no such user: {user}")),
            Err(e) => Some(format!("`user`: cannot look up {user}: {e}")),
        };
        if let Some(message) = message {
            let line = std::fs::read_to_string(path).ok().and_then(|text| key_line(&text, "user"));
            return Err(FileError::Invalid(vec![ConfigError { line, message }]).lines(path));
        }
    }
    Ok(format!("{}: OK", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let dir = std::env::temp_dir().join(format!("moshd-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("moshd.toml");
        assert!(check(&f, false).unwrap().ends_with("not present; moshd uses its built-in defaults"));
        assert!(check(&f, true).unwrap_err()[0].contains("No such file"));
        std::fs::write(&f, "user = \"root\"\n[limits]\nmax_candidates = 2\n").unwrap();
        assert_eq!(check(&f, true).unwrap(), format!("{}: OK", f.display()));
        std::fs::write(&f, "# who moshd runs as\nuser = \"no-such-user-here\"\n").unwrap();
        assert_eq!(
            check(&f, true).unwrap_err(),
            [format!("{}: line 2: `user`: no such user: no-such-user-here", f.display())]
        );
        std::fs::write(&f, "bogus = 1\n[limits]\nmax_candidates = 0\n").unwrap();
        let e = check(&f, true).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[1].ends_with("line 3: `limits.max_candidates` must be at least 2, not 0"), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
