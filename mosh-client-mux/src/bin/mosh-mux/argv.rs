//! The command mosh-mux runs: mosh, with the mux client and server first
//! and the user's arguments after them, unchanged.
//!
//! Options come first so that the user's own --client or --server, later on
//! the line, wins (mosh keeps the last value of an option).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The remote command mosh runs over ssh (found on the server's $PATH).
pub const SERVER: &str = "mosh-server-mux";
/// The client's name, when it is not found beside mosh-mux.
pub const CLIENT: &str = "mosh-client-mux";
/// Names the mosh wrapper to run instead of `mosh` on $PATH.
pub const MOSH_ENV: &str = "MOSH_MUX_MOSH";

/// The mosh to run: $MOSH_MUX_MOSH when set, else `mosh`.
pub fn mosh(env: Option<OsString>) -> OsString {
    env.filter(|v| !v.is_empty()).unwrap_or_else(|| "mosh".into())
}

/// mosh-client-mux installed beside `exe` (an install puts them together),
/// else the bare name for $PATH.
pub fn client(exe: Option<&Path>, is_file: impl Fn(&Path) -> bool) -> PathBuf {
    exe.and_then(Path::parent)
        .map(|dir| dir.join(CLIENT))
        .filter(|p| is_file(p))
        .unwrap_or_else(|| CLIENT.into())
}

/// mosh's argv (without argv[0]).
pub fn mosh_args(client: &Path, user_args: &[OsString]) -> Vec<OsString> {
    let mut opt = OsString::from("--client=");
    opt.push(client.as_os_str());
    let mut args = vec![opt, OsString::from(format!("--server={SERVER}"))];
    args.extend(user_args.iter().cloned());
    args
}

/// Whether `name` means a program found by $PATH rather than a path.
pub fn is_bare(name: &OsStr) -> bool {
    !name.as_encoded_bytes().contains(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn ours_first_then_the_users_verbatim() {
        let args = mosh_args(Path::new("/usr/bin/mosh-client-mux"), &os(&["--server=x", "h", "--", "ls", "-l"]));
        assert_eq!(
            args,
            os(&["--client=/usr/bin/mosh-client-mux", "--server=mosh-server-mux", "--server=x", "h", "--", "ls", "-l"])
        );
    }

    #[test]
    fn the_client_beside_us_else_by_name() {
        let exe = Path::new("/opt/mm/bin/mosh-mux");
        assert_eq!(client(Some(exe), |_| true), PathBuf::from("/opt/mm/bin/mosh-client-mux"));
        assert_eq!(client(Some(exe), |_| false), PathBuf::from(CLIENT));
        assert_eq!(client(None, |_| true), PathBuf::from(CLIENT));
    }

    #[test]
    fn which_mosh() {
        assert_eq!(mosh(None), "mosh");
        assert_eq!(mosh(Some("".into())), "mosh");
        assert_eq!(mosh(Some("/opt/mosh".into())), "/opt/mosh");
        assert!(is_bare(OsStr::new("mosh")) && !is_bare(OsStr::new("./mosh")));
    }
}
