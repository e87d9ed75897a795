//! mosh-client-mux: stock mosh-client, relayed to moshd when the port says so.
//!
//! `mosh --client=mosh-client-mux` runs this as `mosh-client-mux "-# ARGS |"
//! IP PORT`. A plain port means direct mode and a leading zero means mux mode
//! (see `mosh_mux_proto::port`). Direct mode, and every call that is not a
//! connection (`-c`, `--help`, `--version`), replaces this process with
//! stock mosh-client, so it behaves exactly as without the wrapper. Mux mode
//! runs stock mosh-client as a child against a loopback relay (`relay`).

use mosh_client_mux::fail::{self, Fatal};
use mosh_client_mux::stock_argv::{self, Invocation};
use mosh_client_mux::{cli, locate, log, moshd_addr, relay};
use mosh_mux_proto::{PortMode, SessionKey};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;

fn main() {
    log::init();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", fail::one_line(&err));
            fail::exit_code(&err)
        }
    };
    std::process::exit(code);
}

fn run(args: &[OsString]) -> anyhow::Result<i32> {
    let args = cli::parse(args)?;
    let home = std::env::var_os("HOME");
    let self_exe = std::env::current_exe().ok();
    let mosh_client = locate::locate(
        args.own.mosh_client.as_deref(),
        &locate::config_paths(home.as_deref()),
        self_exe.as_deref(),
    )?;
    let connect = match stock_argv::classify(&args.stock) {
        Invocation::PassThrough(why) => {
            tracing::debug!(?why, "passing the call to mosh-client");
            return Err(exec(&mosh_client, &args.stock).into());
        }
        Invocation::Connect(connect) => connect,
    };
    let port = match connect.port {
        PortMode::Direct(_) => {
            tracing::debug!("direct mode");
            return Err(exec(&mosh_client, &args.stock).into());
        }
        PortMode::Mux(port) => port,
    };
    let sid = session_key()?.sid();
    let moshd = moshd_addr::resolve(&connect.ip, port).map_err(|e| Fatal::new(1, e))?;
    relay::run(relay::RelayConfig {
        mosh_client,
        options: connect.options,
        moshd,
        sid,
    })
}

/// Replaces this process with `program argv...`; returns only on failure.
fn exec(program: &Path, argv: &[OsString]) -> Fatal {
    let err = std::process::Command::new(program).args(argv).exec();
    fail::cannot_run(program, &err)
}

/// The session key `mosh` put in MOSH_KEY.
fn session_key() -> Result<SessionKey, Fatal> {
    let text = std::env::var_os("MOSH_KEY")
        .ok_or_else(|| Fatal::new(1, "MOSH_KEY environment variable not found"))?;
    let text = text
        .to_str()
        .ok_or_else(|| Fatal::new(1, "MOSH_KEY: session key is not valid text"))?;
    SessionKey::parse(text).map_err(|e| Fatal::new(1, format!("MOSH_KEY: {e}")))
}
