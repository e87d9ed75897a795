//! Man pages: clap_mangen's sections from the definitions, then the
//! sections a man page needs beyond the options (files, environment, exit
//! status...), written here.

use crate::commands::Program;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

/// A man page section beyond the options.
pub struct Section {
    pub title: &'static str,
    pub paras: Vec<Para>,
}

pub enum Para {
    Text(&'static str),
    /// A tagged paragraph: a term in bold, then its description.
    Item(&'static str, &'static str),
}

use Para::{Item, Text};

fn section(title: &'static str, paras: Vec<Para>) -> Section {
    Section { title, paras }
}

/// The page of `program`, and one per subcommand (moshd-status.8...), as
/// (file name, roff).
pub fn render(program: &Program) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = program.command.clone().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![page(cmd.clone(), program.section, &program.extra)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(page(sub.clone(), program.section, &[see_also_parent(program.name, program.section)])?);
    }
    Ok(pages)
}

fn see_also_parent(name: &'static str, section: &'static str) -> Section {
    let text: &'static str = match (name, section) {
        ("moshd", "8") => "moshd(8)",
        _ => "mosh(1)",
    };
    self::section("SEE ALSO", vec![Text(text)])
}

fn page(cmd: clap::Command, section: &str, extra: &[Section]) -> anyhow::Result<(String, Vec<u8>)> {
    let man = Man::new(cmd.clone())
        .section(section)
        .manual("mosh-mux")
        .source(format!("mosh-mux {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    let mut roff = Roff::new();
    for s in extra {
        roff.control("SH", [s.title]);
        for p in &s.paras {
            match p {
                Text(t) => {
                    roff.control("PP", []);
                    roff.text([roman(*t)]);
                }
                Item(term, text) => {
                    roff.control("TP", []);
                    roff.text([bold(*term)]);
                    roff.text([roman(*text)]);
                }
            }
        }
    }
    roff.to_writer(&mut out)?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok((man.get_filename(), out))
}

pub fn moshd() -> Vec<Section> {
    vec![
        section(
            "CONFIGURATION",
            vec![
                Text("A TOML file; every key is optional and the command line overrides it. Unknown keys are errors. \
                      moshd check-config FILE reports every error with its line. The installed default file lists \
                      each key with its default value."),
                Item("listen", "List of public addresses, e.g. [\"0.0.0.0:60001\", \"[::]:60001\"]."),
                Item("advertise_port", "The port clients are told to use, when a NAT or port forward sits in front."),
                Item("control_socket, state_file", "Absolute paths (see FILES)."),
                Item("user", "Serve as this user after binding (moshd must start as root)."),
                Item("log_level", "A filter in RUST_LOG syntax, e.g. \"info\" or \"info,moshd=debug\"."),
                Item("roaming_probe", "true or false, as --roaming-probe."),
                Item(
                    "[limits]",
                    "max_sessions, max_sessions_per_user, max_candidates (at least 2), max_probe_sources, \
                     probe_fanout (0 serves no stock mosh-client), candidate_idle_seconds, roam_silence_seconds, \
                     and the rates session_candidate_rate, global_candidate_rate, probe_source_rate, \
                     probe_global_rate, notice_rate, each a table { per_second = N, burst = N }.",
                ),
            ],
        ),
        section(
            "FILES",
            vec![
                Item("/etc/mosh/moshd.toml", "The configuration file when moshd starts as root."),
                Item(
                    "~/.config/mosh/moshd.toml",
                    "The configuration file of a user's own moshd ($XDG_CONFIG_HOME/mosh/moshd.toml).",
                ),
                Item(
                    "/run/moshd/control.sock",
                    "The control socket (root; under systemd, $RUNTIME_DIRECTORY/control.sock). A user's own \
                     moshd: $XDG_RUNTIME_DIR/moshd/control.sock.",
                ),
                Item(
                    "/var/lib/moshd/state.json",
                    "The session table, kept across restarts (under systemd, $STATE_DIRECTORY/state.json). A user's \
                     own moshd: ~/.local/state/moshd/state.json ($XDG_STATE_HOME/moshd/state.json).",
                ),
            ],
        ),
        section(
            "SIGNALS",
            vec![
                Item(
                    "SIGHUP",
                    "Re-read the configuration file and apply its limits and log_level, keeping every session. \
                     A file with errors is not applied (the log says why). listen, control_socket, state_file, \
                     advertise_port and user need a restart; the log says so when they change.",
                ),
                Item("SIGTERM, SIGINT", "Save the session table and stop. Sessions resume when moshd starts again."),
            ],
        ),
        section(
            "ENVIRONMENT",
            vec![
                Item("RUST_LOG", "The log filter, unless --log-level is given; it beats log_level in the file."),
                Item("JOURNAL_STREAM", "When stderr is the journal: no timestamps, and <N> priority prefixes."),
                Item("NOTIFY_SOCKET", "systemd's: moshd says READY=1 once it serves, RELOADING=1 during SIGHUP."),
                Item("RUNTIME_DIRECTORY, STATE_DIRECTORY", "systemd's: the default control socket and state file go there."),
                Item("XDG_RUNTIME_DIR, XDG_STATE_HOME, XDG_CONFIG_HOME, HOME", "The places of a user's own moshd."),
                Item("MOSHD_SOCKET", "moshd status asks this socket (after --control-socket)."),
            ],
        ),
        section(
            "EXIT STATUS",
            vec![
                Item("moshd", "0 stopped by a signal; 1 an error (it names the cause); 2 a usage error."),
                Item("moshd status", "0 moshd answered; 1 moshd is not running or did not answer; 2 a usage or configuration error."),
                Item("moshd check-config", "0 the file is valid (or absent, for the default file); 1 it is not; 2 a usage error."),
            ],
        ),
        section("SEE ALSO", vec![Text("mosh-server-mux(1), mosh-client-mux(1), mosh-mux(1), mosh(1), systemd.exec(5)")]),
    ]
}

pub fn mosh_server_mux() -> Vec<Section> {
    vec![
        section(
            "HOW IT WORKS",
            vec![Text(
                "mosh runs mosh-server-mux on the server over ssh. It starts stock mosh-server bound to loopback, \
                 registers the session with moshd, and prints a MOSH CONNECT line pointing the client at moshd's \
                 port. If no moshd is reachable, it runs plain mosh-server instead (direct mode) and says so.",
            )],
        ),
        section(
            "FILES",
            vec![
                Item("~/.config/mosh/mux.toml, /etc/mosh/mux.toml", "control_socket and mosh_server; the first file that sets a key wins."),
                Item(
                    "moshd's socket",
                    "--control-socket, then $MOSHD_SOCKET, then control_socket in ~/.config/mosh/mux.toml, then in \
                     /etc/mosh/mux.toml, then $XDG_RUNTIME_DIR/moshd/control.sock if that socket exists (a user's own \
                     moshd), then /run/moshd/control.sock.",
                ),
            ],
        ),
        section(
            "ENVIRONMENT",
            vec![
                Item("MOSHD_SOCKET", "moshd's control socket."),
                Item("XDG_RUNTIME_DIR", "Where a user's own moshd keeps its socket."),
                Item("SSH_CONNECTION", "The client's address, passed to moshd for stock mosh-clients."),
            ],
        ),
        section(
            "EXIT STATUS",
            vec![Text("0 the session started; 1 an error (one line names it); 2 a usage error; 126 mosh-server cannot be run; 127 no mosh-server found.")],
        ),
        section("SEE ALSO", vec![Text("moshd(8), mosh-client-mux(1), mosh-mux(1), mosh(1), mosh-server(1)")]),
    ]
}

pub fn mosh_client_mux() -> Vec<Section> {
    vec![
        section(
            "FILES",
            vec![Item("~/.config/mosh/mux.toml, /etc/mosh/mux.toml", "mosh_client: the stock mosh-client to run.")],
        ),
        section(
            "ENVIRONMENT",
            vec![
                Item("MOSH_KEY", "The session key, set by mosh."),
                Item("MOSH_MUX_LOG", "A log filter (e.g. debug) for the relay's diagnostics on stderr; off by default."),
            ],
        ),
        section(
            "EXIT STATUS",
            vec![Text("mosh-client's own; 1 an error (one line names it); 2 a usage error; 126 mosh-client cannot be run; 127 no mosh-client found.")],
        ),
        section("SEE ALSO", vec![Text("mosh-mux(1), mosh-server-mux(1), moshd(8), mosh(1), mosh-client(1)")]),
    ]
}

pub fn mosh_mux() -> Vec<Section> {
    vec![
        section(
            "EXAMPLES",
            vec![
                Item("mosh-mux alice@example.org", "A session through the server's moshd."),
                Item("mosh-mux --ssh=\"ssh -p 2222\" example.org -- tmux attach", "mosh's options and a command, as for mosh."),
            ],
        ),
        section(
            "ENVIRONMENT",
            vec![
                Item("MOSH_MUX_MOSH", "The mosh wrapper to run [default: mosh on $PATH]."),
                Item("MOSH_PREDICTION_DISPLAY, MOSH_ESCAPE_KEY, MOSH_TITLE_NOPREFIX", "mosh's own; passed on."),
            ],
        ),
        section(
            "EXIT STATUS",
            vec![Text("mosh's own; 127 mosh is not found; 126 mosh cannot be run.")],
        ),
        section("SEE ALSO", vec![Text("mosh(1), mosh-client-mux(1), mosh-server-mux(1), moshd(8)")]),
    ]
}
