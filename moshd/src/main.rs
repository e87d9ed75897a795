//! moshd's command line: run the daemon, ask a running one for status, or
//! check a configuration file.

use clap::Parser;
use moshd::cli::{CheckConfigArgs, Cli, Command, RunArgs, StatusArgs};
use moshd::limits::Limits;
use moshd::logging::{self, FilterHandle};
use moshd::paths::{Defaults, Env};
use moshd::settings::{self, Settings};
use moshd::{check_config, notify, status_cmd};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing::{info, warn};

mod cli_error;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli_error::report("moshd", e),
    };
    let defaults = Defaults::for_env(&Env::from_process());
    match cli.command {
        Some(Command::Status(args)) => status(&args, &defaults),
        Some(Command::CheckConfig(args)) => check(&args, &defaults),
        None => match run(cli.run, defaults) {
            Ok(()) => ExitCode::SUCCESS,
            Err(lines) => {
                for line in lines {
                    eprintln!("moshd: {line}");
                }
                ExitCode::FAILURE
            }
        },
    }
}

fn status(args: &StatusArgs, defaults: &Defaults) -> ExitCode {
    let socket = match status_cmd::socket(args, std::env::var_os("MOSHD_SOCKET"), defaults) {
        Ok(socket) => socket,
        Err(lines) => {
            lines.iter().for_each(|l| eprintln!("moshd: {l}"));
            return ExitCode::from(status_cmd::EXIT_USAGE);
        }
    };
    match status_cmd::fetch(&socket) {
        Ok(report) => {
            // moshd answered: that is the verdict, even if stdout is closed
            // (a pipe to `head`, say) before all of it is printed.
            let _ = status_cmd::print(&report, args.json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("moshd: {e:#}");
            ExitCode::from(status_cmd::EXIT_UNREACHABLE)
        }
    }
}

fn check(args: &CheckConfigArgs, defaults: &Defaults) -> ExitCode {
    let (path, named) = match (&args.file, &defaults.config_file) {
        (Some(path), _) => (path.clone(), true),
        (None, Some(path)) => (path.clone(), false),
        (None, None) => {
            eprintln!("moshd: no default configuration file here ($HOME is not set); name one");
            return ExitCode::from(2);
        }
    };
    match check_config::check(&path, named) {
        Ok(line) => {
            println!("moshd: {line}");
            ExitCode::SUCCESS
        }
        Err(lines) => {
            lines.iter().for_each(|l| eprintln!("moshd: {l}"));
            ExitCode::FAILURE
        }
    }
}

/// The configuration file moshd reads, and whether it must exist (it must
/// when named with --config; the default file may be absent).
fn config_path(cli: &RunArgs, defaults: &Defaults) -> (Option<PathBuf>, bool) {
    match &cli.config {
        Some(path) => (Some(path.clone()), true),
        None => (defaults.config_file.clone(), false),
    }
}

/// Reads the file and merges it with the defaults and the command line.
fn settings(cli: &RunArgs, defaults: &Defaults) -> Result<Settings, Vec<String>> {
    let (path, required) = config_path(cli, defaults);
    let file = settings::load(path.as_deref(), required)
        .map_err(|e| e.lines(path.as_deref().unwrap_or(std::path::Path::new("-"))))?;
    let rust_log = std::env::var("RUST_LOG").ok();
    settings::resolve(defaults, &file, cli, rust_log.as_deref()).map_err(|e| vec![e])
}

fn run(cli: RunArgs, defaults: Defaults) -> Result<(), Vec<String>> {
    let running = settings(&cli, &defaults)?;
    if running.user.is_none() {
        // (With `user`, the privilege drop makes it, owned by that user.)
        make_state_dir(&running.state_file, &running.control_socket).map_err(|e| vec![format!("{e:#}")])?;
    }
    let filter = logging::init(&running.log_filter);
    let config = moshd::daemon::Config {
        listen: running.listen.clone(),
        control_socket: running.control_socket.clone(),
        state_file: running.state_file.clone(),
        advertise_port: running.advertise_port,
        limits: running.limits.clone(),
        user: running.user.clone(),
        reload: Some(reloader(cli, defaults, running, filter)),
        on_ready: Some(Box::new(|| notify::ready("serving"))),
    };
    moshd::daemon::run(config).map_err(|e| vec![format!("{e:#}")])
}

/// Creates the state file's directory if it is missing (a user's
/// ~/.local/state/moshd on the first run, say): private (0700), unless the
/// control socket lives in it too and every user must reach that (0755;
/// the state file itself is 0600). Missing parents get 0755.
fn make_state_dir(state_file: &std::path::Path, control_socket: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::DirBuilderExt;
    let Some(dir) = state_file.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) else {
        return Ok(());
    };
    if let Some(up) = dir.parent().filter(|u| !u.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(up)
            .with_context(|| format!("cannot create {}", up.display()))?;
    }
    let mode = if control_socket.starts_with(dir) { 0o755 } else { 0o700 };
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // Whatever the umask says.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("cannot set the permissions of {}", dir.display()))
}

/// The SIGHUP handler: re-reads the file, re-applies the command line, and
/// returns the new limits (the daemon applies them, or logs the error and
/// keeps the old ones). What only a restart can change is named in a
/// warning; a changed log filter applies at once.
fn reloader(cli: RunArgs, defaults: Defaults, running: Settings, filter: FilterHandle) -> moshd::daemon::Reload {
    let last = std::cell::RefCell::new(running.clone());
    Box::new(move || -> anyhow::Result<Limits> {
        notify::reloading();
        let result = settings(&cli, &defaults);
        notify::ready("serving; configuration reloaded");
        let new = result.map_err(|lines| anyhow::anyhow!("{}", lines.join("; ")))?;
        for key in settings::needs_restart(&running, &new) {
            warn!("SIGHUP: {key} changed; restart moshd to apply it");
        }
        let mut last = last.borrow_mut();
        for change in settings::limit_changes(&last.limits, &new.limits) {
            info!("SIGHUP: {change}");
        }
        if new.log_filter != last.log_filter {
            match filter.set(&new.log_filter) {
                Ok(()) => info!("SIGHUP: log filter {:?} -> {:?}", last.log_filter, new.log_filter),
                Err(e) => warn!("SIGHUP: log filter {:?} not applied: {e:#}", new.log_filter),
            }
        }
        let limits = new.limits.clone();
        *last = new;
        Ok(limits)
    })
}
