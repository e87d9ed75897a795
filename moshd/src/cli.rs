//! moshd's command line, as clap definitions. The man page and the shell
//! completions are generated from these (`mosh-mux-docs`), so every option
//! is documented here and nowhere else.

use crate::config::MIN_CANDIDATES;
use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueHint};
use std::net::SocketAddr;
use std::path::PathBuf;

/// One UDP port for every mosh session on this host.
#[derive(Parser, Debug)]
#[command(
    name = "moshd",
    version,
    args_conflicts_with_subcommands = true,
    long_about = "One UDP port for every mosh session on this host.\n\n\
        moshd listens on one public UDP port and routes each mosh session's datagrams to its own \
        mosh-server on loopback. mosh-server-mux registers sessions on moshd's control socket. \
        moshd holds no session keys. Settings come from the configuration file (see --config); \
        command-line options override it. SIGHUP reloads the file's limits without touching any \
        session."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the sessions moshd routes (your own; all of them for root).
    #[command(long_about = "Show the sessions moshd routes: your own, or all of them for root.\n\n\
        Exit status: 0 moshd answered; 1 moshd is not running or did not answer; 2 usage or \
        configuration error.")]
    Status(StatusArgs),
    /// Check a configuration file and exit: 0 if it is valid, 1 if not.
    #[command(long_about = "Check a configuration file, like sshd -t: print each error with its \
        line and reason and exit 1, or print one line saying it is OK and exit 0.")]
    CheckConfig(CheckConfigArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// moshd's control socket [default: $MOSHD_SOCKET, then control_socket in the configuration
    /// file, then (for a user) their own moshd's socket if it exists, then /run/moshd/control.sock]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub control_socket: Option<PathBuf>,
    /// The configuration file to take control_socket from [default: as for moshd]
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,
    /// Print JSON (for scripts) instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CheckConfigArgs {
    /// The file to check [default: /etc/mosh/moshd.toml for root, ~/.config/mosh/moshd.toml
    /// for other users]
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Configuration file [default: /etc/mosh/moshd.toml for root (none is fine),
    /// ~/.config/mosh/moshd.toml for other users]
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,
    /// Public UDP address to serve (repeat for IPv4 and IPv6)
    /// [default: 0.0.0.0:60001 and [::]:60001]
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// The control socket mosh-server-mux registers sessions on
    /// [default: /run/moshd/control.sock; a user's: $XDG_RUNTIME_DIR/moshd/control.sock]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub control_socket: Option<PathBuf>,
    /// Where the session table is kept across restarts
    /// [default: /var/lib/moshd/state.json; a user's: ~/.local/state/moshd/state.json]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub state_file: Option<PathBuf>,
    /// The port clients are told to use, when a NAT or port forward sits in
    /// front of moshd [default: the first listen port]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub advertise_port: Option<u16>,
    /// Most sessions in all [default: 20000]
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sessions: Option<usize>,
    /// Most sessions of one user [default: 100]
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sessions_per_user: Option<usize>,
    /// Most client addresses (candidate sockets) per session [default: 8]
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(MIN_CANDIDATES as u64..))]
    pub max_candidates: Option<usize>,
    /// Most sessions one unmapped stock-client datagram is offered to
    /// (0: serve no stock mosh-client) [default: 8]
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new())]
    pub probe_fanout: Option<usize>,
    /// Also offer unmapped stock-client datagrams to sessions whose stock
    /// client went silent, whatever their sshd address (lets a stock client
    /// roam; shows those mosh-servers others' ciphertext: see SECURITY.md)
    #[arg(long, overrides_with = "no_roaming_probe")]
    pub roaming_probe: bool,
    /// Turn the roaming probe off, whatever the configuration file says (the default)
    #[arg(long, overrides_with = "roaming_probe")]
    pub no_roaming_probe: bool,
    /// Serve as this user after binding the sockets (run as root to bind a
    /// port below 1024 and still serve unprivileged)
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Username)]
    pub user: Option<String>,
    /// What to log, as a RUST_LOG filter (e.g. info, debug, moshd=debug)
    /// [default: $RUST_LOG, then log_level in the configuration file, then info]
    #[arg(long, value_name = "FILTER", value_parser = parse_log_filter)]
    pub log_level: Option<String>,
}

impl RunArgs {
    /// The roaming probe as the command line sets it, if it does.
    pub fn roaming_probe(&self) -> Option<bool> {
        match (self.roaming_probe, self.no_roaming_probe) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a log filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("moshd").chain(args.iter().copied()))
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_options_and_subcommands() {
        let cli = parse(&["--config", "/x.toml", "--max-candidates", "3", "--no-roaming-probe"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.config, Some(PathBuf::from("/x.toml")));
        assert_eq!(cli.run.max_candidates, Some(3));
        assert_eq!(cli.run.roaming_probe(), Some(false));
        assert_eq!(parse(&["--no-roaming-probe", "--roaming-probe"]).unwrap().run.roaming_probe(), Some(true));
        assert_eq!(parse(&[]).unwrap().run.roaming_probe(), None);
        assert!(matches!(parse(&["status", "--json"]).unwrap().command, Some(Command::Status(StatusArgs { json: true, .. }))));
        assert!(matches!(
            parse(&["check-config", "/a.toml"]).unwrap().command,
            Some(Command::CheckConfig(CheckConfigArgs { file: Some(_) }))
        ));
    }

    #[test]
    fn the_same_bounds_as_the_file() {
        for bad in [
            &["--max-candidates", "1"][..],
            &["--max-sessions", "0"],
            &["--advertise-port", "0"],
            &["--log-level", "moshd=loud"],
            &["--listen", "0.0.0.0"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse(&["--probe-fanout", "0"]).unwrap().run.probe_fanout, Some(0));
    }
}
