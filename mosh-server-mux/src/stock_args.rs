//! Rewriting the stock mosh-server argv so that it binds loopback only.
//!
//! In mux mode the public port is moshd's, so mosh-server must listen on
//! 127.0.0.1 and an ephemeral port: every `-s`, `-i IP` and `-p PORT` the
//! client asked for is removed and `-i 127.0.0.1 -p 0` goes in their place.
//! Everything else (`-c`, `-l`, `-v`, options we do not know, `-- command`)
//! is passed on: mosh-server is the authority on its own options.
//!
//! To remove options reliably this file reads the argv exactly as mosh-server
//! 1.4 does (mosh-server.cc, main): `--help`, `-h` and `--version` anywhere
//! before the first `--` win; everything after the first `--` is the command;
//! then GNU getopt with the option string `@:i:p:c:svl:` over the words
//! after `new`, where options may be clustered (`-vc256`) and an option's
//! value may be the next word (`-c 256`), even one that starts with `-`.
//! Words that are not options are skipped by GNU getopt (it permutes them to
//! the end) and ignored by mosh-server; they are kept, but after our
//! options, so that they cannot stop option parsing before ours
//! (POSIXLY_CORRECT). Because getopt lets the last `-i`/`-p` win, ours go
//! after every option we keep.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The loopback address mosh-server binds in mux mode.
pub const MUX_IP: &str = "127.0.0.1";

/// What to do with the stock argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// mosh-server would only print its usage or version and exit: run it
    /// unchanged, there is no session to register.
    Informational,
    /// Start mosh-server with these arguments (argv[1..]).
    Mux(Vec<OsString>),
}

/// Options that take a value, as in mosh-server's getopt string `@:i:p:c:svl:`.
fn takes_value(c: u8) -> bool {
    matches!(c, b'@' | b'i' | b'p' | b'c' | b'l')
}

/// Options removed in mux mode: the bind address and the port are ours to choose.
fn removed(c: u8) -> bool {
    matches!(c, b's' | b'i' | b'p')
}

/// Decides how to start mosh-server for the stock argv `stock` (argv[1..]).
pub fn plan(stock: &[OsString]) -> Plan {
    let split = stock.iter().position(|a| a.as_bytes() == b"--");
    let (opts, command) = match split {
        Some(i) => (&stock[..i], Some(&stock[i..])),
        None => (stock, None),
    };
    if opts
        .iter()
        .any(|a| matches!(a.as_bytes(), b"--help" | b"-h" | b"--version"))
    {
        return Plan::Informational;
    }
    let mut out: Vec<OsString> = vec!["new".into()];
    match opts.first().map(|a| a.as_bytes()) {
        Some(b"new") => rewrite_options(&opts[1..], &mut out),
        // Legacy syntax `mosh-server [IP [PORT]]`: it only carries the bind
        // address and port, which we replace anyway.
        _ if opts.len() <= 2 => out.extend(loopback_options()),
        // Not a syntax mosh-server accepts: let it say so itself.
        _ => return Plan::Mux(stock.to_vec()),
    }
    if let Some(command) = command {
        out.extend(command.iter().cloned());
    }
    Plan::Mux(out)
}

fn loopback_options() -> [OsString; 4] {
    ["-i".into(), MUX_IP.into(), "-p".into(), "0".into()]
}

/// Where an option's value came from.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// The rest of the word: `-c256`.
    Inline(&'a [u8]),
    /// The next word: `-c 256`.
    Next(&'a [u8]),
    /// Nothing left: getopt reports an error and mosh-server its usage.
    Missing,
}

/// One word starting with `-`: flags, then at most one option taking a value.
struct Cluster<'a> {
    flags: &'a [u8],
    value_opt: Option<(u8, Value<'a>)>,
}

/// Splits the option word `words[*i - 1]`, taking the next word as its value if needed.
fn cluster<'a>(word: &'a [u8], words: &'a [OsString], i: &mut usize) -> Cluster<'a> {
    let body = word.get(1..).unwrap_or_default();
    match body.iter().position(|&c| takes_value(c)) {
        None => Cluster {
            flags: body,
            value_opt: None,
        },
        Some(at) => {
            let inline = &body[at + 1..];
            let value = if !inline.is_empty() {
                Value::Inline(inline)
            } else if let Some(next) = words.get(*i) {
                *i += 1;
                Value::Next(next.as_bytes())
            } else {
                Value::Missing
            };
            Cluster {
                flags: &body[..at],
                value_opt: Some((body[at], value)),
            }
        }
    }
}

/// Rewrites the words between `new` and `--`, appending ours after every kept option.
fn rewrite_options(words: &[OsString], out: &mut Vec<OsString>) {
    let mut non_options: Vec<OsString> = Vec::new();
    let mut i = 0;
    while let Some(word) = words.get(i) {
        i += 1;
        let bytes = word.as_bytes();
        if bytes.len() < 2 || bytes[0] != b'-' {
            non_options.push(word.clone());
            continue;
        }
        let Cluster { flags, value_opt } = cluster(bytes, words, &mut i);
        let kept_flags: Vec<u8> = flags.iter().copied().filter(|&c| !removed(c)).collect();
        let keep_value = match value_opt {
            // `-c` with nothing after it would swallow our `-i`: drop it
            // (mosh-server would only have printed its usage for it).
            Some((c, v @ (Value::Inline(_) | Value::Next(_)))) if !removed(c) => Some((c, v)),
            _ => None,
        };
        let changed =
            kept_flags.len() != flags.len() || value_opt.is_some() != keep_value.is_some();
        if !changed {
            out.push(word.clone());
            if let Some((_, Value::Next(v))) = keep_value {
                out.push(OsStr::from_bytes(v).to_owned());
            }
            continue;
        }
        // Rebuild the word without the removed options.
        let mut rebuilt = vec![b'-'];
        rebuilt.extend_from_slice(&kept_flags);
        let mut next_word = None;
        match keep_value {
            Some((c, Value::Inline(v))) => {
                rebuilt.push(c);
                rebuilt.extend_from_slice(v);
            }
            Some((c, Value::Next(v))) => {
                rebuilt.push(c);
                next_word = Some(v);
            }
            _ => {}
        }
        // `-` alone is not an option, and `--` (left from `--p1`) would end
        // the options: such leftovers are only unknown-option noise.
        if rebuilt.len() > 1 && rebuilt != b"--" {
            out.push(OsString::from_vec(rebuilt));
            if let Some(v) = next_word {
                out.push(OsStr::from_bytes(v).to_owned());
            }
        }
    }
    out.extend(loopback_options());
    out.extend(non_options);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What mosh-server 1.4 makes of an argv (argv[1..]), for tests and checks.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    struct Effective {
        /// `Some(None)` after `-s`: the address from SSH_CONNECTION.
        ip: Option<Option<Vec<u8>>>,
        port: Option<Vec<u8>>,
        colors: Vec<Vec<u8>>,
        locales: Vec<Vec<u8>>,
        verbose: usize,
        unknown: usize,
        command: Option<Vec<Vec<u8>>>,
    }

    /// An independent reading of a `new` argv, char by char, as mosh-server's
    /// getopt loop does it (GNU mode): the oracle for the rewrite.
    fn effective(args: &[OsString]) -> Effective {
        let mut e = Effective::default();
        let split = args.iter().position(|a| a.as_bytes() == b"--");
        let opts = &args[..split.unwrap_or(args.len())];
        if let Some(i) = split {
            e.command = Some(
                args[i + 1..]
                    .iter()
                    .map(|a| a.as_bytes().to_vec())
                    .collect(),
            );
        }
        let words = match opts.first() {
            Some(w) if w.as_bytes() == b"new" => &opts[1..],
            _ => return e,
        };
        let mut i = 0;
        while i < words.len() {
            let word = words[i].as_bytes();
            i += 1;
            if word.len() < 2 || word[0] != b'-' {
                continue;
            }
            for (j, &c) in word.iter().enumerate().skip(1) {
                if takes_value(c) {
                    let value = if j + 1 < word.len() {
                        Some(word[j + 1..].to_vec())
                    } else if i < words.len() {
                        i += 1;
                        Some(words[i - 1].as_bytes().to_vec())
                    } else {
                        None
                    };
                    match (c, value) {
                        (b'i', Some(v)) => e.ip = Some(Some(v)),
                        (b'p', Some(v)) => e.port = Some(v),
                        (b'c', Some(v)) => e.colors.push(v),
                        (b'l', Some(v)) => e.locales.push(v),
                        (b'@', Some(_)) => {}
                        _ => e.unknown += 1,
                    }
                    break;
                }
                match c {
                    b's' => e.ip = Some(None),
                    b'v' => e.verbose += 1,
                    _ => e.unknown += 1,
                }
            }
        }
        e
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn mux(args: &[&str]) -> Vec<String> {
        match plan(&os(args)) {
            Plan::Mux(v) => v.into_iter().map(|a| a.into_string().unwrap()).collect(),
            Plan::Informational => panic!("informational: {args:?}"),
        }
    }

    #[test]
    fn what_mosh_sends() {
        assert_eq!(
            mux(&[
                "new",
                "-c",
                "256",
                "-s",
                "-l",
                "LANG=C.UTF-8",
                "-l",
                "LC_ALL=C",
                "--",
                "ls",
                "-l"
            ]),
            [
                "new",
                "-c",
                "256",
                "-l",
                "LANG=C.UTF-8",
                "-l",
                "LC_ALL=C",
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "--",
                "ls",
                "-l"
            ]
        );
        assert_eq!(
            mux(&[
                "new",
                "-c",
                "8",
                "-i",
                "198.51.100.1",
                "-p",
                "60000:60010",
                "-l",
                "LANG=C"
            ]),
            [
                "new",
                "-c",
                "8",
                "-l",
                "LANG=C",
                "-i",
                "127.0.0.1",
                "-p",
                "0"
            ]
        );
    }

    #[test]
    fn clusters_and_inline_values() {
        assert_eq!(
            mux(&["new", "-vc256", "-p60001"]),
            ["new", "-vc256", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(
            mux(&["new", "-vs", "-si10.0.0.1"]),
            ["new", "-v", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(
            mux(&["new", "-svc", "256"]),
            ["new", "-vc", "256", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(
            mux(&["new", "-vp", "1"]),
            ["new", "-v", "-i", "127.0.0.1", "-p", "0"]
        );
        // A value that looks like an option is still a value.
        assert_eq!(
            mux(&["new", "-l", "-s", "-c", "-p"]),
            ["new", "-l", "-s", "-c", "-p", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(
            mux(&["new", "-i", "-c", "256"]),
            ["new", "-i", "127.0.0.1", "-p", "0", "256"]
        );
    }

    #[test]
    fn unknown_options_and_words_pass_through() {
        assert_eq!(
            mux(&["new", "-x", "word", "-@", "new", "-c", "256"]),
            [
                "new",
                "-x",
                "-@",
                "new",
                "-c",
                "256",
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "word"
            ]
        );
        assert_eq!(
            mux(&["new", "--xyz"]),
            ["new", "--xyz", "-i", "127.0.0.1", "-p", "0"]
        );
        // getopt without long options reads `--bogus` as -b -o -g -u -s.
        assert_eq!(
            mux(&["new", "--bogus"]),
            ["new", "--bogu", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(mux(&["new", "--p1"]), ["new", "-i", "127.0.0.1", "-p", "0"]);
        assert_eq!(
            mux(&["new", "-xs"]),
            ["new", "-x", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(
            mux(&["new", "-"]),
            ["new", "-i", "127.0.0.1", "-p", "0", "-"]
        );
    }

    #[test]
    fn missing_values_are_dropped() {
        assert_eq!(mux(&["new", "-c"]), ["new", "-i", "127.0.0.1", "-p", "0"]);
        assert_eq!(
            mux(&["new", "-vi"]),
            ["new", "-v", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(
            mux(&["new", "-c", "--", "x"]),
            ["new", "-i", "127.0.0.1", "-p", "0", "--", "x"]
        );
    }

    #[test]
    fn command_is_untouched() {
        assert_eq!(
            mux(&["new", "--", "sh", "-c", "-p 1", "--", "-s"]),
            [
                "new",
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "--",
                "sh",
                "-c",
                "-p 1",
                "--",
                "-s"
            ]
        );
        assert_eq!(
            mux(&["new", "--"]),
            ["new", "-i", "127.0.0.1", "-p", "0", "--"]
        );
    }

    #[test]
    fn legacy_and_odd_forms() {
        assert_eq!(mux(&[]), ["new", "-i", "127.0.0.1", "-p", "0"]);
        assert_eq!(
            mux(&["10.0.0.1", "60001"]),
            ["new", "-i", "127.0.0.1", "-p", "0"]
        );
        assert_eq!(
            mux(&["10.0.0.1", "--", "top"]),
            ["new", "-i", "127.0.0.1", "-p", "0", "--", "top"]
        );
        assert_eq!(mux(&["a", "b", "c"]), ["a", "b", "c"]);
    }

    #[test]
    fn help_and_version_run_stock() {
        for args in [
            &["new", "-h"][..],
            &["--help"],
            &["new", "-c", "8", "--version"],
            &["x", "y", "--help"],
        ] {
            assert_eq!(plan(&os(args)), Plan::Informational, "{args:?}");
        }
        assert!(matches!(plan(&os(&["new", "--", "--help"])), Plan::Mux(_)));
    }

    #[test]
    fn non_utf8_survives() {
        let bad = OsString::from_vec(vec![b'L', b'=', 0xff]);
        let args = vec![
            OsString::from("new"),
            "-l".into(),
            bad.clone(),
            "--".into(),
            bad.clone(),
        ];
        let Plan::Mux(out) = plan(&args) else {
            panic!()
        };
        assert_eq!(out[2], bad);
        assert_eq!(out.last(), Some(&bad));
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("new".to_string()),
            Just("--".to_string()),
            Just("-".to_string()),
            "-[spicvl@x-]{1,4}[0-9a-z.]{0,3}",
            "[a-z0-9.=:-]{0,6}",
        ]
    }

    proptest! {
        #[test]
        fn rewrite_always_binds_loopback_and_keeps_the_rest(
            tail in proptest::collection::vec(word(), 0..12),
        ) {
            let mut args = vec!["new".to_string()];
            args.extend(tail);
            let args = os(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let before = effective(&args);
            match plan(&args) {
                Plan::Informational => {}
                Plan::Mux(out) => {
                    let after = effective(&out);
                    prop_assert_eq!(after.ip, Some(Some(b"127.0.0.1".to_vec())));
                    prop_assert_eq!(after.port, Some(b"0".to_vec()));
                    prop_assert_eq!(after.colors, before.colors);
                    prop_assert_eq!(after.locales, before.locales);
                    prop_assert_eq!(after.verbose, before.verbose);
                    prop_assert_eq!(after.command, before.command);
                    // Exactly one `--` is added or kept, never invented.
                    let dashes = |v: &[OsString]| v.iter().filter(|a| a.as_bytes() == b"--").count();
                    prop_assert_eq!(dashes(&out), dashes(&args));
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..10)) {
            let args: Vec<OsString> = raw.into_iter().map(OsString::from_vec).collect();
            let _ = plan(&args);
            let _ = effective(&args);
        }
    }
}
