//! Diagnostics to stderr, off unless MOSH_MUX_LOG asks for them.
//!
//! The relay shares the terminal with mosh-client, which draws the whole
//! screen in raw mode, so by default nothing is logged at all; set e.g.
//! `MOSH_MUX_LOG=debug` (an EnvFilter directive) and redirect stderr to a
//! file to see the relay's counters and per-datagram errors.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The environment variable holding the filter directives.
pub const ENV: &str = "MOSH_MUX_LOG";

/// Installs the stderr subscriber. A filter that does not parse means "off".
pub fn init() {
    let filter = std::env::var(ENV)
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
