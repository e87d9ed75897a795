//! mosh-mux's command line: the stock `mosh` wrapper's own options,
//! declared so that --help, the man page and the shell completions show
//! them. Their values are never read here: mosh-mux hands its whole argv to
//! mosh unchanged, so mosh stays the judge of its own options.
//!
//! Self-contained (clap and std only): `mosh-mux-docs` includes this file.

use clap::{ArgAction, Parser, ValueHint};

/// mosh through moshd's shared UDP port: `mosh --client=mosh-client-mux --server=mosh-server-mux`.
#[derive(Parser, Debug)]
#[command(
    name = "mosh-mux",
    version,
    override_usage = "mosh-mux [MOSH OPTIONS] [--] [USER@]HOST [COMMAND...]",
    long_about = "Runs mosh with --client=mosh-client-mux and --server=mosh-server-mux, so that the \
        session goes through moshd's one shared UDP port on the server. Every argument is passed \
        to mosh as it is, after those two options: a --client or --server given here wins. If \
        the server runs no moshd, mosh-server-mux starts plain mosh-server (direct mode) and \
        says so.",
    after_help = "Options not listed here are mosh's too: mosh-mux passes everything on. See mosh(1)."
)]
// The fields hold mosh's options only for parsing --help; they are never read.
#[allow(dead_code)]
pub struct Cli {
    /// The client on this machine [default: mosh-client-mux beside mosh-mux, else on $PATH]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::ExecutablePath)]
    client: Option<String>,
    /// The server command on the remote machine [default: mosh-server-mux]
    #[arg(long, value_name = "COMMAND", value_hint = ValueHint::CommandString)]
    server: Option<String>,
    /// Local echo [mosh's default: adaptive, for slower links]
    #[arg(long, value_name = "MODE", value_parser = ["adaptive", "always", "never", "experimental"])]
    predict: Option<String>,
    /// Same as --predict=always
    #[arg(short = 'a', action = ArgAction::SetTrue)]
    always: bool,
    /// Same as --predict=never
    #[arg(short = 'n', action = ArgAction::SetTrue)]
    never: bool,
    /// Prediction overwrites instead of inserting
    #[arg(short = 'o', long)]
    predict_overwrite: bool,
    /// Network family [mosh's default: prefer-inet]
    #[arg(
        long,
        value_name = "FAMILY",
        value_parser = ["inet", "inet6", "auto", "all", "prefer-inet", "prefer-inet6"]
    )]
    family: Option<String>,
    /// Same as --family=inet
    #[arg(short = '4', action = ArgAction::SetTrue)]
    inet: bool,
    /// Same as --family=inet6
    #[arg(short = '6', action = ArgAction::SetTrue)]
    inet6: bool,
    /// Server-side UDP port or range, used only when the server runs no moshd (direct mode)
    #[arg(short = 'p', long, value_name = "PORT[:PORT2]")]
    port: Option<String>,
    /// Ask the server to reply from an address: ssh (the default), any, or an IP
    #[arg(long, value_name = "ssh|any|IP")]
    bind_server: Option<String>,
    /// The ssh command that sets the session up (e.g. "ssh -p 2222") [default: ssh]
    #[arg(long, value_name = "COMMAND", value_hint = ValueHint::CommandString)]
    ssh: Option<String>,
    /// Do not allocate a pseudo-terminal on the ssh connection
    #[arg(long)]
    no_ssh_pty: bool,
    /// Do not send the terminal initialization string
    #[arg(long)]
    no_init: bool,
    /// Run the server on this machine, without ssh
    #[arg(long)]
    local: bool,
    /// How to find the server's address [mosh's default: proxy]
    #[arg(long, value_name = "METHOD", value_parser = ["local", "remote", "proxy"])]
    experimental_remote_ip: Option<String>,
    /// The server, as for ssh
    #[arg(value_name = "[USER@]HOST", required = true, value_hint = ValueHint::Hostname)]
    host: Option<String>,
    /// The command to run there [default: your login shell]
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_hint = ValueHint::CommandWithArguments
    )]
    command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn mosh_style_command_lines_parse() {
        for args in [
            &["host"][..],
            &["-a", "--ssh=ssh -p 2222", "user@host", "--", "top", "-d", "1"],
            &["--predict", "never", "-4", "host", "ls", "-la"],
            &["--client=/x/mc", "--server", "/y/ms --control-socket /s", "h"],
        ] {
            let parsed = Cli::try_parse_from(std::iter::once("mosh-mux").chain(args.iter().copied()));
            assert!(parsed.is_ok(), "{args:?}: {parsed:?}");
        }
    }
}
