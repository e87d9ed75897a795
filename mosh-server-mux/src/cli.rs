//! Our own leading options; everything from `new` on belongs to mosh-server.
//!
//! `mosh` runs `--server` as a shell command with mosh-server's arguments
//! appended, so our options can only come first. The first word that is not
//! one of our options starts mosh-server's argv, which is kept verbatim
//! (including a later `--` and the command after it).

use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Parser, PartialEq, Eq)]
#[command(
    name = "mosh-server-mux",
    version,
    about = "Start stock mosh-server behind moshd's shared UDP port (use as mosh --server=mosh-server-mux)",
    override_usage = "mosh-server-mux [--control-socket PATH] [--mosh-server PATH] new [MOSH-SERVER OPTIONS] [-- COMMAND...]"
)]
pub struct Cli {
    /// moshd's control socket [default: $MOSHD_SOCKET, then mux.toml, then /run/moshd/control.sock]
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// The stock mosh-server binary [default: mux.toml, then $PATH]
    #[arg(long, value_name = "PATH")]
    pub mosh_server: Option<PathBuf>,

    /// mosh-server's own arguments, starting with `new`, passed on as they are
    #[arg(value_name = "MOSH-SERVER ARGS", trailing_var_arg = true)]
    pub stock: Vec<OsString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mosh-server-mux").chain(args.iter().copied()))
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn own_options_then_stock_args_verbatim() {
        let cli = parse(&[
            "--control-socket",
            "/run/x.sock",
            "--mosh-server=/opt/mosh-server",
            "new",
            "-c",
            "256",
            "-s",
            "-l",
            "LANG=C.UTF-8",
            "--",
            "vim",
            "--help",
            "--",
            "-x",
        ])
        .unwrap();
        assert_eq!(cli.control_socket, Some(PathBuf::from("/run/x.sock")));
        assert_eq!(cli.mosh_server, Some(PathBuf::from("/opt/mosh-server")));
        assert_eq!(
            cli.stock,
            os(&[
                "new",
                "-c",
                "256",
                "-s",
                "-l",
                "LANG=C.UTF-8",
                "--",
                "vim",
                "--help",
                "--",
                "-x"
            ])
        );
    }

    #[test]
    fn our_option_names_after_new_belong_to_mosh_server() {
        let cli = parse(&["new", "--control-socket", "/y", "--version", "-h"]).unwrap();
        assert_eq!(cli.control_socket, None);
        assert_eq!(
            cli.stock,
            os(&["new", "--control-socket", "/y", "--version", "-h"])
        );
    }

    #[test]
    fn no_arguments_at_all() {
        let cli = parse(&[]).unwrap();
        assert!(cli.stock.is_empty());
    }

    #[test]
    fn unknown_own_option_is_a_usage_error() {
        for args in [
            &["--bogus", "new"][..],
            &["-x", "new"],
            &["--control-socket"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn help_and_version_are_ours_before_new() {
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["--version"]).unwrap_err().exit_code(), 0);
    }
}
