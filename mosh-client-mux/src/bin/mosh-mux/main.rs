//! mosh-mux: `mosh-mux HOST` is `mosh --client=mosh-client-mux
//! --server=mosh-server-mux HOST`, one word instead of two options.
//!
//! It replaces itself with mosh, so mosh's own environment variables
//! (MOSH_PREDICTION_DISPLAY, MOSH_ESCAPE_KEY, MOSH_TITLE_NOPREFIX...) and
//! exit status are mosh's. Only --help and --version are answered here.
//! Exit status when mosh cannot be run: 127 not found, 126 not executable.

mod argv;
mod cli;

use clap::error::ErrorKind;
use clap::Parser;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Parsed only to answer --help and --version; any other verdict is
    // mosh's to give, so the arguments go on as they are.
    if let Err(e) = cli::Cli::try_parse_from(std::iter::once(OsString::from("mosh-mux")).chain(args.iter().cloned())) {
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    }
    let mosh = argv::mosh(std::env::var_os(argv::MOSH_ENV));
    let exe = std::env::current_exe().ok();
    let client = argv::client(exe.as_deref(), |p| p.is_file());
    let err = std::process::Command::new(&mosh).args(argv::mosh_args(&client, &args)).exec();
    if err.kind() == std::io::ErrorKind::NotFound {
        if argv::is_bare(&mosh) {
            eprintln!("mosh-mux: cannot find mosh (install mosh, or set {} to its path)", argv::MOSH_ENV);
        } else {
            eprintln!("mosh-mux: cannot find mosh at {} (from ${})", mosh.to_string_lossy(), argv::MOSH_ENV);
        }
        return ExitCode::from(127);
    }
    eprintln!("mosh-mux: cannot run {}: {err}", mosh.to_string_lossy());
    ExitCode::from(126)
}
