//! moshd's command line: run the daemon, or ask a running one for status.

use clap::{Args, Parser, Subcommand};
use moshd::limits::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod cli_error;

const DEFAULT_CONTROL_SOCKET: &str = "/run/moshd/control.sock";
const DEFAULT_STATE_FILE: &str = "/var/lib/moshd/state.json";

/// One UDP port for every mosh session on this host.
#[derive(Parser)]
#[command(name = "moshd", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Show the sessions moshd routes (your own; all of them for root).
    Status {
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Public UDP address to serve (repeat for IPv4 and IPv6).
    /// Default: 0.0.0.0:60001 and [::]:60001.
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// The control socket that mosh-server-mux registers sessions on.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONTROL_SOCKET)]
    control_socket: PathBuf,
    /// Where the session table is kept across restarts.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_STATE_FILE)]
    state_file: PathBuf,
    /// The port clients are told to use, when a NAT or port forward sits in
    /// front of moshd. Default: the first listen port.
    #[arg(long, value_name = "PORT")]
    advertise_port: Option<u16>,
    /// Most sessions in all.
    #[arg(long, value_name = "N")]
    max_sessions: Option<usize>,
    /// Most sessions of one user.
    #[arg(long, value_name = "N")]
    max_sessions_per_user: Option<usize>,
    /// Most client addresses (candidate sockets) per session.
    #[arg(long, value_name = "N")]
    max_candidates: Option<usize>,
    /// Most sessions one unmapped stock-client datagram is offered to.
    #[arg(long, value_name = "N")]
    probe_fanout: Option<usize>,
    /// Also offer unmapped stock-client datagrams to sessions whose stock
    /// client went silent, whatever their sshd address (lets a stock client
    /// roam; shows those mosh-servers others' ciphertext: see SECURITY.md).
    #[arg(long)]
    roaming_probe: bool,
    /// Serve as this user after binding the sockets (run as root to bind a
    /// port below 1024 and still serve unprivileged).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd the journal stamps each line; elsewhere we do.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    if journald {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli_error::report("moshd", e),
    };
    let result = match cli.command {
        Some(Command::Status { control_socket, json }) => moshd::status_cmd::fetch(&control_socket)
            .and_then(|report| moshd::status_cmd::print(&report, json)),
        None => {
            init_logging();
            run(cli.run)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moshd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let listen = if args.listen.is_empty() {
        vec!["0.0.0.0:60001".parse()?, "[::]:60001".parse()?]
    } else {
        args.listen
    };
    let mut limits = Limits::default();
    if let Some(n) = args.max_sessions {
        limits.max_sessions = n;
    }
    if let Some(n) = args.max_sessions_per_user {
        limits.max_sessions_per_uid = n;
    }
    if let Some(n) = args.max_candidates {
        limits.max_candidates = n;
    }
    if let Some(n) = args.probe_fanout {
        limits.probe_fanout = n;
    }
    limits.roaming_probe = args.roaming_probe;
    moshd::daemon::run(moshd::daemon::Config {
        listen,
        control_socket: args.control_socket,
        state_file: args.state_file,
        advertise_port: args.advertise_port,
        limits,
        user: args.user,
        reload: None,
        on_ready: None,
    })
}
