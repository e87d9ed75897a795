//! The four programs' command-line definitions, each with its man section
//! and what its page says beyond the options.

use crate::pages::{self, Section};
use clap::CommandFactory;

pub struct Program {
    pub name: &'static str,
    /// 1: user commands; 8: system administration (moshd).
    pub section: &'static str,
    pub command: clap::Command,
    pub extra: Vec<Section>,
}

pub fn all() -> Vec<Program> {
    vec![
        Program { name: "moshd", section: "8", command: moshd::cli::Cli::command(), extra: pages::moshd() },
        Program {
            name: "mosh-server-mux",
            section: "1",
            command: crate::server_cli::Cli::command(),
            extra: pages::mosh_server_mux(),
        },
        Program { name: "mosh-client-mux", section: "1", command: client_command(), extra: pages::mosh_client_mux() },
        Program { name: "mosh-mux", section: "1", command: crate::mosh_mux_cli::Cli::command(), extra: pages::mosh_mux() },
    ]
}

/// mosh-client-mux parses only its own leading options (everything else is
/// mosh-client's), so its definition says little; the page says the rest.
fn client_command() -> clap::Command {
    crate::client_cli::OwnOptions::command()
        .no_binary_name(false)
        .version(env!("CARGO_PKG_VERSION"))
        .about("Run stock mosh-client, relaying its datagrams to moshd's shared UDP port (use as mosh --client=mosh-client-mux)")
        .long_about(
            "mosh runs its --client as CLIENT \"-# ARGS |\" IP PORT, with the session key in \
             MOSH_KEY. A port with a leading zero (060001) means mux mode: mosh-client-mux starts \
             stock mosh-client against a loopback relay that adds a 9-byte header naming the \
             session and carries each datagram to moshd. A plain port means direct mode, and any \
             other call (-c, --help, --version): mosh-client-mux replaces itself with mosh-client.",
        )
        .override_usage("mosh-client-mux [--mosh-client PATH] [--] MOSH-CLIENT-ARGS...")
}
