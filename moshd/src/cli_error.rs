//! clap's errors, cut to the one line that names the cause.

use std::process::ExitCode;

/// Prints help and version as clap does; any other error as one line
/// `PROGRAM: cause`, exit status 2 (the usage-error convention).
pub fn report(program: &str, e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{program}: {} (try --help)", first.trim_start_matches("error: "));
            ExitCode::from(2)
        }
    }
}
