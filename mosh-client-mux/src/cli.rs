//! Our own options, split off the front of mosh-client's argv.
//!
//! `mosh` runs its `--client` as `CLIENT "-# ARGS |" IP PORT` or `CLIENT -c`,
//! and a user may put `--mosh-client PATH` in front. Stock mosh-client knows
//! only short options plus `--help` and `--version`, so every other leading
//! `--long` option is ours: clap parses those, and an unknown one is a usage
//! error here rather than a confusing usage text from mosh-client.

use crate::fail::{Fatal, EXIT_USAGE};
use clap::Parser;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Options of mosh-client-mux itself (everything else goes to mosh-client).
#[derive(Debug, Default, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "mosh-client-mux",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct OwnOptions {
    /// The stock mosh-client to run (default: `mosh_client` in mux.toml, then $PATH).
    #[arg(long, value_name = "PATH")]
    pub mosh_client: Option<PathBuf>,
}

/// Our options and the untouched argv meant for stock mosh-client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub own: OwnOptions,
    pub stock: Vec<OsString>,
}

/// Long options that belong to stock mosh-client, not to us.
const STOCK_LONG: [&[u8]; 2] = [b"--help", b"--version"];

/// Splits `args` (without argv[0]) into our leading options and the rest.
/// A `--` ends our options and is consumed.
pub fn split(args: &[OsString]) -> (Vec<OsString>, Vec<OsString>) {
    let mut own = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            i += 1;
            break;
        }
        if !bytes.starts_with(b"--") || STOCK_LONG.contains(&bytes) {
            break;
        }
        own.push(arg.clone());
        i += 1;
        // `--mosh-client PATH`: the value is ours too, whatever it looks like.
        if bytes == b"--mosh-client" {
            if let Some(value) = args.get(i) {
                own.push(value.clone());
                i += 1;
            }
        }
    }
    (own, args.get(i..).unwrap_or_default().to_vec())
}

/// Parses the command line (without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Args, Fatal> {
    let (own, stock) = split(args);
    let own = OwnOptions::try_parse_from(own).map_err(|e| {
        // clap renders a paragraph; its first line names the problem.
        let rendered = e.render().to_string();
        let first = rendered.lines().next().unwrap_or("invalid option").trim();
        Fatal::new(EXIT_USAGE, first.strip_prefix("error: ").unwrap_or(first))
    })?;
    Ok(Args { own, stock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn plain_mosh_invocation_is_all_stock() {
        let a = parse(&os(&["-# host |", "1.2.3.4", "060001"])).unwrap();
        assert_eq!(a.own, OwnOptions::default());
        assert_eq!(a.stock, os(&["-# host |", "1.2.3.4", "060001"]));
    }

    #[test]
    fn our_option_both_spellings() {
        let a = parse(&os(&["--mosh-client", "/x/mc", "-c"])).unwrap();
        assert_eq!(a.own.mosh_client, Some(PathBuf::from("/x/mc")));
        assert_eq!(a.stock, os(&["-c"]));
        let a = parse(&os(&["--mosh-client=/y", "--", "--help"])).unwrap();
        assert_eq!(a.own.mosh_client, Some(PathBuf::from("/y")));
        assert_eq!(a.stock, os(&["--help"]));
    }

    #[test]
    fn help_and_version_go_to_stock() {
        assert_eq!(parse(&os(&["--help"])).unwrap().stock, os(&["--help"]));
        let a = parse(&os(&["--mosh-client", "m", "--version"])).unwrap();
        assert_eq!(a.stock, os(&["--version"]));
    }

    #[test]
    fn unknown_own_option_is_one_line_usage_error() {
        let e = parse(&os(&["--bogus", "1.2.3.4", "60001"])).unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
        assert!(!e.message.contains('\n'), "{e}");
        assert!(e.message.contains("--bogus"), "{e}");
        let e = parse(&os(&["--mosh-client"])).unwrap_err();
        assert!(
            !e.message.contains('\n') && e.message.contains("mosh-client"),
            "{e}"
        );
        let e = parse(&os(&["--mosh-client", "a", "--mosh-client", "b"])).unwrap_err();
        assert!(!e.message.contains('\n'), "{e}");
    }

    proptest! {
        #[test]
        fn split_loses_nothing(args in proptest::collection::vec("(--?)?[a-z#=-]{0,6}", 0..8)) {
            let args = os(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let (own, stock) = split(&args);
            let mut joined = own.clone();
            let dropped_separator = own.len() + stock.len() + 1 == args.len();
            if dropped_separator {
                joined.push(OsString::from("--"));
            }
            joined.extend(stock.iter().cloned());
            prop_assert_eq!(&joined, &args);
            // parse never panics and errors are one line
            if let Err(e) = parse(&args) { prop_assert!(!e.message.contains('\n')); }
        }
    }
}
