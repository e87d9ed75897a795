//! mosh-server-mux: the `mosh --server=` side of mosh-mux.
//!
//! It starts stock mosh-server bound to loopback, registers the session with
//! moshd over moshd's control socket, and prints a MOSH CONNECT line that
//! points the client at moshd's shared UDP port in mux mode (a leading
//! zero on the port). When moshd cannot be reached it runs stock
//! mosh-server unchanged instead (direct mode) and says so on stderr.
//!
//! Every failure is one line on stderr and a non-zero exit: 2 for a usage
//! error, 127 when no mosh-server is found, 1 for anything else.

mod bound;
mod child;
mod cli;
mod control;
mod lines;
mod locate;
mod procs;
mod stock_args;

use anyhow::Result;
use clap::Parser;
use cli::Cli;
use control::Verdict;
use locate::NotFound;
use mosh_mux_proto::connect_line::format_connect_line;
use mosh_mux_proto::control::Registration;
use mosh_mux_proto::port::{format_port, PortMode};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;
use stock_args::Plan;

/// Undocumented: overall time allowed for mosh-server to start, in ms (tests).
const TIMEOUT_ENV: &str = "MOSH_SERVER_MUX_TIMEOUT_MS";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure with its exit code; its text is the one line we print.
#[derive(Debug)]
struct Fatal {
    code: u8,
    message: String,
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fatal {}

fn fatal(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Fatal {
        code,
        message: message.into(),
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<Fatal>().map_or(1, |f| f.code);
            eprintln!("mosh-server-mux: {}", one_line(&format!("{e:#}")));
            ExitCode::from(code)
        }
    }
}

/// Help and version as clap prints them; any other error as one line, exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!(
        "mosh-server-mux: {} (see mosh-server-mux --help)",
        one_line(first)
    );
    ExitCode::from(2)
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let plan = stock_args::plan(&cli.stock);
    let env_socket = std::env::var_os("MOSHD_SOCKET").filter(|s| !s.is_empty());
    let need_config =
        cli.mosh_server.is_none() || (cli.control_socket.is_none() && env_socket.is_none());
    let configs = if need_config {
        let paths = locate::config_paths(std::env::var_os("HOME").as_deref());
        locate::load_configs(&paths).map_err(|e| fatal(1, format!("{e:#}")))?
    } else {
        Vec::new()
    };

    let named = locate::named_mosh_server(cli.mosh_server.as_deref(), &configs);
    let server = locate::mosh_server(named).map_err(|e| match e {
        NotFound::NotOnPath => fatal(
            127,
            "cannot find mosh-server (install mosh on this host, or pass --mosh-server PATH)",
        ),
        NotFound::Named(found, reason) => fatal(
            127,
            format!(
                "cannot find mosh-server at {} (from {}): {reason}",
                found.path.display(),
                found.from
            ),
        ),
    })?;

    let args = match plan {
        Plan::Informational => return Err(exec_stock(&server, &cli.stock)),
        Plan::Mux(args) => args,
    };

    let socket = locate::control_socket(
        cli.control_socket.as_deref(),
        env_socket.as_deref(),
        &configs,
    );
    let stream = match control::connect(&socket.path, control::CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!(
                "mosh-server-mux: moshd is not reachable at {} ({}); starting plain mosh-server \
                 (direct mode: the client needs mosh's UDP ports)",
                socket.path.display(),
                control::unreachable_cause(&e, control::CONNECT_TIMEOUT),
            );
            return Err(exec_stock(&server, &cli.stock));
        }
    };

    // Mux mode. From here on, every error path ends what it started.
    let started = child::start(&server, &args, startup_timeout())?;
    let port = started.connect.port;
    if let Some(addr) = bound::exposed(&bound::read_tables(), port, nix::unistd::getuid().as_raw())
    {
        eprintln!(
            "mosh-server-mux: warning: mosh-server bound UDP port {port} on {addr}, not only on loopback; \
             moshd still works, but that port is also open to the network"
        );
    }
    let registration = Registration {
        sid: started.connect.sid(),
        port,
        pid: started.pid,
        ssh_client: control::ssh_client(std::env::var("SSH_CONNECTION").ok().as_deref()),
    };
    let public_port = match control::register(&stream, registration) {
        Ok(Verdict::Registered(public_port)) => public_port,
        Ok(Verdict::Refused(reason)) => {
            procs::end_children(child::KILL_GRACE);
            return Err(fatal(1, format!("moshd refused the session: {reason}")));
        }
        Err(cause) => {
            procs::end_children(child::KILL_GRACE);
            return Err(fatal(1, cause));
        }
    };

    // Said before the MOSH CONNECT line: `mosh` stops reading at that line.
    eprintln!("mosh-server-mux: session registered with moshd; client traffic goes to UDP port {public_port}");
    let line = format_connect_line(
        &format_port(PortMode::Mux(public_port)),
        started.connect.key_text(),
    );
    // As mosh-server does: on a tty, typeahead echo must not run into the line.
    let lead = if std::io::stdin().is_terminal() {
        "\r\n"
    } else {
        ""
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{lead}{line}").and_then(|_| out.flush()) {
        procs::end_children(child::KILL_GRACE);
        return Err(fatal(1, format!("cannot print the MOSH CONNECT line: {e}")));
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces this process with stock mosh-server and the original argv.
/// Returns only if that fails.
fn exec_stock(server: &Path, stock: &[OsString]) -> anyhow::Error {
    let e = Command::new(server).arg0("mosh-server").args(stock).exec();
    fatal(
        126,
        format!("cannot run mosh-server at {}: {e}", server.display()),
    )
}

fn startup_timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.clamp(100, 60_000)))
        .unwrap_or(DEFAULT_TIMEOUT)
}
