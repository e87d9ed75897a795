//! Reading stock mosh-client's argv the way mosh-client 1.4 reads it.
//!
//! mosh-client scans every argument for `--help` and `--version`, then runs
//! GNU getopt with `#:cv` (which permutes, so options and the two positional
//! arguments IP PORT may come in any order; `--` ends options). Only the
//! connect form `[-# ARGS] [-v] IP PORT` with a mux port needs us; anything
//! else (colour count, help, usage errors, direct ports) is passed to stock
//! mosh-client untouched, so it behaves exactly as without the wrapper.

use mosh_mux_proto::{parse_port, PortMode};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Why an argv is handed to stock mosh-client as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    Help,
    Version,
    ColourCount,
    /// Not a form mosh-client accepts: it prints its own usage text.
    Usage,
}

/// What mosh-client was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Not a connection: exec stock mosh-client with the argv unchanged.
    PassThrough(PassReason),
    /// Connect to IP PORT.
    Connect(Connect),
}

/// A connect invocation, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Every option argument in order (`-#` with its value, `-v`), without `--`.
    pub options: Vec<OsString>,
    pub ip: String,
    pub port: PortMode,
}

impl Connect {
    /// mosh-client's argv pointed at another address: same options, new IP PORT.
    pub fn retarget(&self, ip: &str, port: u16) -> Vec<OsString> {
        connect_argv(&self.options, ip, port)
    }
}

/// mosh-client's connect argv: `options`, then IP PORT.
pub fn connect_argv(options: &[OsString], ip: &str, port: u16) -> Vec<OsString> {
    let mut argv = options.to_vec();
    argv.push(OsString::from(ip));
    argv.push(OsString::from(port.to_string()));
    argv
}

/// Classifies `args` (without argv[0]).
pub fn classify(args: &[OsString]) -> Invocation {
    if args.iter().any(|a| a == "--help") {
        return Invocation::PassThrough(PassReason::Help);
    }
    if args.iter().any(|a| a == "--version") {
        return Invocation::PassThrough(PassReason::Version);
    }
    let usage = Invocation::PassThrough(PassReason::Usage);
    let mut options = Vec::new();
    let mut positional: Vec<&OsStr> = Vec::new();
    let mut only_positional = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let bytes = arg.as_bytes();
        if only_positional || bytes.len() < 2 || bytes[0] != b'-' {
            positional.push(arg);
            continue;
        }
        if bytes == b"--" {
            only_positional = true;
            continue;
        }
        if bytes[1] == b'-' {
            // An unknown long option: getopt refuses it.
            return usage;
        }
        options.push(arg.clone());
        for (at, flag) in bytes.iter().enumerate().skip(1) {
            match flag {
                b'v' => {}
                b'c' => return Invocation::PassThrough(PassReason::ColourCount),
                b'#' => {
                    // `-#VALUE`, or `-#` then VALUE as the next argument.
                    if at + 1 == bytes.len() {
                        let Some(value) = args.get(i) else {
                            return usage;
                        };
                        options.push(value.clone());
                        i += 1;
                    }
                    break;
                }
                _ => return usage,
            }
        }
    }
    let [ip, port] = positional[..] else {
        return usage;
    };
    let (Some(ip), Some(port)) = (ip.to_str(), port.to_str()) else {
        return usage;
    };
    match parse_port(port) {
        Ok(port) => Invocation::Connect(Connect {
            options,
            ip: ip.to_owned(),
            port,
        }),
        Err(_) => usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn connect(v: &[&str]) -> Connect {
        match classify(&os(v)) {
            Invocation::Connect(c) => c,
            other => panic!("{v:?} gave {other:?}"),
        }
    }

    #[test]
    fn what_mosh_passes() {
        let c = connect(&["-# user@host |", "192.0.2.1", "060001"]);
        assert_eq!(c.options, os(&["-# user@host |"]));
        assert_eq!(c.ip, "192.0.2.1");
        assert_eq!(c.port, PortMode::Mux(60001));
        assert_eq!(
            c.retarget("127.0.0.1", 40000),
            os(&["-# user@host |", "127.0.0.1", "40000"])
        );
        let c = connect(&["-# host |", "2001:db8::1", "60001"]);
        assert_eq!(c.port, PortMode::Direct(60001));
        assert_eq!(c.ip, "2001:db8::1");
    }

    #[test]
    fn getopt_forms() {
        assert_eq!(
            connect(&["-#", "-v", "h", "061000"]).options,
            os(&["-#", "-v"])
        );
        assert_eq!(connect(&["h", "-vv#x", "061000"]).options, os(&["-vv#x"]));
        let c = connect(&["-v", "--", "-h", "0600"]);
        assert_eq!((c.ip.as_str(), c.options), ("-h", os(&["-v"])));
        assert_eq!(connect(&["-", "1"]).ip, "-");
        assert_eq!(connect(&["h", "1"]).port, PortMode::Direct(1));
    }

    #[test]
    fn pass_through_forms() {
        use PassReason::*;
        let cases: &[(&[&str], PassReason)] = &[
            (&["-c"], ColourCount),
            (&["-vc"], ColourCount),
            (&["--help"], Help),
            (&["-# x", "h", "060001", "--help"], Help),
            (&["--version"], Version),
            (&[], Usage),
            (&["h"], Usage),
            (&["h", "060001", "extra"], Usage),
            (&["h", "6000a"], Usage),
            (&["h", "0"], Usage),
            (&["h", "070000"], Usage),
            (&["-x", "h", "060001"], Usage),
            (&["--port", "h", "060001"], Usage),
            (&["h", "060001", "-#"], Usage),
        ];
        for (args, why) in cases {
            assert_eq!(
                classify(&os(args)),
                Invocation::PassThrough(*why),
                "{args:?}"
            );
        }
    }

    #[test]
    fn non_utf8_hash_argument_is_kept() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(b"-# h\xff |".to_vec());
        let c = match classify(&[odd.clone(), "h".into(), "060001".into()]) {
            Invocation::Connect(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(c.options, vec![odd]);
    }

    proptest! {
        #[test]
        fn never_panics(args in proptest::collection::vec("-?-?[a-z0-9#cv]{0,5}", 0..6)) {
            let _ = classify(&os(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        }

        #[test]
        fn connect_keeps_options_and_finds_positionals(
            hash in "[ -~]{1,20}",
            verbose in 0usize..3,
            port in 1u16..,
            mux in any::<bool>(),
            ip_first in any::<bool>(),
        ) {
            let port_text = if mux { format!("0{port}") } else { port.to_string() };
            let mut opts = vec![format!("-#{hash}")];
            opts.extend(std::iter::repeat_n("-v".to_owned(), verbose));
            let mut args = if ip_first { vec!["198.51.100.7".to_owned()] } else { vec![] };
            args.extend(opts.iter().cloned());
            if !ip_first { args.push("198.51.100.7".to_owned()); }
            args.push(port_text);
            let c = connect(&args.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(c.options, os(&opts.iter().map(String::as_str).collect::<Vec<_>>()));
            prop_assert_eq!(c.ip, "198.51.100.7");
            prop_assert_eq!(c.port, if mux { PortMode::Mux(port) } else { PortMode::Direct(port) });
        }
    }
}
