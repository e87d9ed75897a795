//! What to make of each line mosh-server prints while it starts.
//!
//! mosh-server prints `MOSH CONNECT port key` on stdout and, from its parent
//! process, a banner and `[mosh-server detached, pid = N]` on stderr. In mux
//! mode we hold the MOSH CONNECT line back (we print our own) and pass every
//! other line on unchanged, so the user sees what stock mosh would show.
//! This is the decision part only: lines in, actions and a verdict out, with
//! a cap on how many lines we are willing to look at.

use mosh_mux_proto::connect_line::{
    parse_connect_line, parse_detached_pid, ConnectError, ConnectLine,
};

/// Most lines accepted from mosh-server (both streams) before giving up.
/// Stock mosh-server prints about ten.
pub const MAX_LINES: usize = 200;
/// Longest line kept; longer ones are cut (and cannot be a valid MOSH CONNECT).
pub const MAX_LINE_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write it, unchanged, to our own stream of the same kind.
    Pass,
    /// Keep it to ourselves.
    Hold,
}

/// Why mosh-server's output does not describe a usable session. The texts
/// never quote the output: a MOSH CONNECT line carries the session key.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    TooMuchOutput,
    NoConnectLine,
    BadConnectLine(ConnectError),
    TwoConnectLines,
    NoDetachedPid,
    TwoDetachedPids,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::TooMuchOutput => {
                write!(f, "mosh-server printed more than {MAX_LINES} lines")
            }
            ScanError::NoConnectLine => write!(f, "mosh-server printed no MOSH CONNECT line"),
            ScanError::BadConnectLine(e) => {
                write!(f, "mosh-server printed a bad MOSH CONNECT line: {e}")
            }
            ScanError::TwoConnectLines => {
                write!(f, "mosh-server printed more than one MOSH CONNECT line")
            }
            ScanError::NoDetachedPid => write!(f, "mosh-server did not report its detached pid"),
            ScanError::TwoDetachedPids => {
                write!(f, "mosh-server reported two different detached pids")
            }
        }
    }
}

/// The state of one mosh-server start.
#[derive(Debug, Default)]
pub struct Scanner {
    lines: usize,
    connect: Option<ConnectLine>,
    pid: Option<u32>,
    error: Option<ScanError>,
}

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line (without `\n`); `truncated` if it was cut at [`MAX_LINE_LEN`].
    pub fn feed(&mut self, stream: Stream, line: &[u8], truncated: bool) -> Action {
        if self.error == Some(ScanError::TooMuchOutput) {
            return Action::Hold;
        }
        self.lines += 1;
        if self.lines > MAX_LINES {
            self.error = Some(ScanError::TooMuchOutput);
            return Action::Hold;
        }
        let text = String::from_utf8_lossy(line);
        match stream {
            Stream::Stdout => {
                if text.trim().is_empty() {
                    // mosh-server prints "\r\n" first when its stdin is a tty.
                    return Action::Hold;
                }
                match parse_connect_line(text.trim_start()) {
                    None => Action::Pass,
                    Some(parsed) => {
                        let parsed = if truncated {
                            Err(ConnectError::Fields(0))
                        } else {
                            parsed
                        };
                        match (parsed, &self.connect) {
                            (Ok(c), None) => self.connect = Some(c),
                            (Ok(_), Some(_)) => self.fail(ScanError::TwoConnectLines),
                            (Err(e), _) => self.fail(ScanError::BadConnectLine(e)),
                        }
                        Action::Hold
                    }
                }
            }
            Stream::Stderr => {
                // `mosh` reads ssh's stdout and stderr as one stream: a
                // MOSH CONNECT line on our stderr would be taken for ours.
                if text.trim_start().starts_with("MOSH CONNECT") {
                    return Action::Hold;
                }
                if let Some(pid) = parse_detached_pid(&text) {
                    match self.pid {
                        None => self.pid = Some(pid),
                        Some(seen) if seen != pid => self.fail(ScanError::TwoDetachedPids),
                        Some(_) => {}
                    }
                }
                Action::Pass
            }
        }
    }

    fn fail(&mut self, e: ScanError) {
        self.error.get_or_insert(e);
    }

    /// Whether reading on is pointless.
    pub fn gave_up(&self) -> bool {
        self.error == Some(ScanError::TooMuchOutput)
    }

    /// The verdict once mosh-server's parent has exited successfully.
    pub fn finish(self) -> Result<(ConnectLine, u32), ScanError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let connect = self.connect.ok_or(ScanError::NoConnectLine)?;
        let pid = self.pid.ok_or(ScanError::NoDetachedPid)?;
        Ok((connect, pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "gflLFw38EcGhIYzas1qLZA";

    fn run(lines: &[(Stream, &str)]) -> (Vec<Action>, Result<(ConnectLine, u32), ScanError>) {
        let mut s = Scanner::new();
        let actions = lines
            .iter()
            .map(|(st, l)| s.feed(*st, l.as_bytes(), false))
            .collect();
        (actions, s.finish())
    }

    use Action::*;
    use Stream::*;

    #[test]
    fn stock_output() {
        let connect = format!("MOSH CONNECT 51251 {KEY}");
        let (actions, verdict) = run(&[
            (Stdout, "\r"),
            (Stdout, ""),
            (Stdout, &connect),
            (Stderr, ""),
            (Stderr, "mosh-server (mosh 1.4.0) [build mosh 1.4.0]"),
            (Stderr, "[mosh-server detached, pid = 2012]"),
        ]);
        assert_eq!(actions, [Hold, Hold, Hold, Pass, Pass, Pass]);
        let (c, pid) = verdict.unwrap();
        assert_eq!((c.port, c.key_text(), pid), (51251, KEY, 2012));
    }

    #[test]
    fn other_stdout_lines_pass() {
        let connect = format!("MOSH CONNECT 5 {KEY}");
        let (actions, verdict) = run(&[
            (Stdout, "motd"),
            (Stdout, &connect),
            (Stderr, "[mosh-server detached, pid = 9]"),
        ]);
        assert_eq!(actions, [Pass, Hold, Pass]);
        assert!(verdict.is_ok());
    }

    #[test]
    fn verdicts() {
        let good = format!("MOSH CONNECT 5 {KEY}");
        let pid = "[mosh-server detached, pid = 9]";
        assert_eq!(
            run(&[(Stderr, pid)]).1.unwrap_err(),
            ScanError::NoConnectLine
        );
        assert_eq!(
            run(&[(Stdout, &good)]).1.unwrap_err(),
            ScanError::NoDetachedPid
        );
        assert_eq!(
            run(&[(Stdout, &good), (Stdout, &good), (Stderr, pid)])
                .1
                .unwrap_err(),
            ScanError::TwoConnectLines
        );
        assert_eq!(
            run(&[(Stdout, "MOSH CONNECT 0 x"), (Stderr, pid)])
                .1
                .unwrap_err(),
            ScanError::BadConnectLine(ConnectError::Port)
        );
        assert_eq!(
            run(&[
                (Stdout, &good),
                (Stderr, pid),
                (Stderr, "[mosh-server detached, pid = 10]")
            ])
            .1
            .unwrap_err(),
            ScanError::TwoDetachedPids
        );
    }

    #[test]
    fn connect_line_on_stderr_is_held_and_ignored() {
        let good = format!("MOSH CONNECT 5 {KEY}");
        let (actions, verdict) =
            run(&[(Stderr, &good), (Stderr, "[mosh-server detached, pid = 9]")]);
        assert_eq!(actions, [Hold, Pass]);
        assert_eq!(verdict.unwrap_err(), ScanError::NoConnectLine);
    }

    #[test]
    fn truncated_connect_line_is_bad() {
        let mut s = Scanner::new();
        s.feed(Stdout, format!("MOSH CONNECT 5 {KEY}").as_bytes(), true);
        assert!(matches!(s.finish(), Err(ScanError::BadConnectLine(_))));
    }

    #[test]
    fn gives_up_after_max_lines() {
        let mut s = Scanner::new();
        for _ in 0..MAX_LINES {
            assert_eq!(s.feed(Stderr, b"noise", false), Pass);
        }
        assert!(!s.gave_up());
        assert_eq!(s.feed(Stderr, b"noise", false), Hold);
        assert!(s.gave_up());
        assert_eq!(s.finish().unwrap_err(), ScanError::TooMuchOutput);
    }

    #[test]
    fn errors_never_show_the_key() {
        let bad = format!("MOSH CONNECT 5 {KEY} extra");
        let mut s = Scanner::new();
        s.feed(Stdout, bad.as_bytes(), false);
        let text = s.finish().unwrap_err().to_string();
        assert!(!text.contains(KEY), "{text}");
    }

    fn any_line() -> impl Strategy<Value = (bool, Vec<u8>, bool)> {
        let text = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..60),
            "MOSH CONNECT [0-9]{0,6} [A-Za-z0-9+/]{20,23}".prop_map(String::into_bytes),
            "\\[mosh-server detached, pid = [0-9]{0,12}\\]".prop_map(String::into_bytes),
        ];
        (any::<bool>(), text, any::<bool>())
    }

    proptest! {
        #[test]
        fn arbitrary_lines_never_panic_and_stay_bounded(lines in proptest::collection::vec(any_line(), 0..300)) {
            let mut s = Scanner::new();
            let mut passed = 0usize;
            for (is_stdout, line, truncated) in &lines {
                let stream = if *is_stdout { Stdout } else { Stderr };
                if s.feed(stream, line, *truncated) == Pass {
                    passed += 1;
                    // Never passes a MOSH CONNECT line through.
                    prop_assert!(!String::from_utf8_lossy(line).trim_start().starts_with("MOSH CONNECT"));
                }
            }
            prop_assert!(passed <= MAX_LINES);
            prop_assert_eq!(s.gave_up(), lines.len() > MAX_LINES);
            let _ = s.finish();
        }
    }
}
