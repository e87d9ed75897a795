//! Starting stock mosh-server and reading its start-up output, within bounds.
//!
//! mosh-server prints, forks, and its parent exits; the detached child keeps
//! serving. We read both pipes on two small threads (so neither can block
//! the other), pass lines on as [`scan`](mosh_server_mux::scan) decides, and wait for
//! the parent, all under one overall deadline. Whatever goes wrong, nothing
//! it started is left running.

use crate::lines::{read_capped_line, Line};
use crate::procs::{self, Detached};
use mosh_server_mux::scan::{Action, Scanner, Stream, MAX_LINE_LEN};
use anyhow::{anyhow, bail, Context, Result};
use mosh_mux_proto::connect_line::ConnectLine;
use std::ffi::OsString;
use std::io::{BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long to wait for pipes to close after mosh-server's parent exited:
/// a mosh-server started with `-v` keeps them open in the detached child.
const AFTER_EXIT_GRACE: Duration = Duration::from_secs(1);
/// How long a SIGTERM'd process gets before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// A mosh-server that has detached and is serving.
pub struct Started {
    pub connect: ConnectLine,
    /// The detached mosh-server, now our (adopted) child.
    pub pid: u32,
}

enum Event {
    Line(Stream, Line),
    Eof(Stream),
}

/// Runs `program args` and returns the session it started. On error every
/// process it started has been ended.
pub fn start(program: &Path, args: &[OsString], timeout: Duration) -> Result<Started> {
    procs::become_subreaper().context("cannot become a child subreaper")?;
    let result = run(program, args, timeout);
    if result.is_err() {
        procs::end_children(KILL_GRACE);
    }
    result
}

fn run(program: &Path, args: &[OsString], timeout: Duration) -> Result<Started> {
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .arg0("mosh-server")
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run mosh-server at {}", program.display()))?;

    let (tx, rx) = mpsc::sync_channel(64);
    if let Some(out) = child.stdout.take() {
        spawn_reader(out, Stream::Stdout, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(err, Stream::Stderr, tx);
    }

    let mut scanner = Scanner::new();
    let mut open = [true, true];
    let mut exited: Option<(ExitStatus, Instant)> = None;
    loop {
        let now = Instant::now();
        if exited.is_none() {
            if let Some(status) = child.try_wait().context("cannot wait for mosh-server")? {
                exited = Some((status, now));
            }
        }
        match exited {
            Some(_) if open == [false, false] => break,
            Some((_, at)) if now.duration_since(at) >= AFTER_EXIT_GRACE => break,
            _ => {}
        }
        if scanner.gave_up() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{}", mosh_server_mux::scan::ScanError::TooMuchOutput);
        }
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "mosh-server did not finish starting within {} s",
                timeout.as_secs_f32()
            );
        }
        let wait = deadline
            .saturating_duration_since(now)
            .min(Duration::from_millis(20));
        match rx.recv_timeout(wait) {
            Ok(Event::Line(stream, line)) => {
                if scanner.feed(stream, &line.bytes, line.truncated) == Action::Pass {
                    pass_on(stream, &line.bytes);
                }
            }
            Ok(Event::Eof(Stream::Stdout)) => open[0] = false,
            Ok(Event::Eof(Stream::Stderr)) => open[1] = false,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = [false, false],
        }
    }

    let status = exited
        .map(|(s, _)| s)
        .ok_or_else(|| anyhow!("mosh-server did not exit"))?;
    if !status.success() {
        bail!("mosh-server failed ({})", describe(status));
    }
    let (connect, pid) = scanner.finish().map_err(|e| anyhow!("{e}"))?;
    match procs::check_detached(pid) {
        Detached::Ours => Ok(Started { connect, pid }),
        Detached::Exited => bail!("mosh-server (pid {pid}) exited right after it started"),
        Detached::Foreign => {
            bail!("mosh-server reported pid {pid}, which is not a process it started")
        }
    }
}

fn spawn_reader<R: Read + Send + 'static>(r: R, stream: Stream, tx: mpsc::SyncSender<Event>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        loop {
            match read_capped_line(&mut r, MAX_LINE_LEN) {
                Ok(Some(line)) => {
                    if tx.send(Event::Line(stream, line)).is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    let _ = tx.send(Event::Eof(stream));
                    return;
                }
            }
        }
    });
}

/// Writes a line of mosh-server's to our own stream of the same kind.
fn pass_on(stream: Stream, line: &[u8]) {
    // Write errors are ignored: with ssh gone there is nobody to tell, and
    // the registration that follows will fail or succeed on its own.
    let mut buf = line.to_vec();
    buf.push(b'\n');
    let _ = match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf).and_then(|_| out.flush())
        }
        Stream::Stderr => std::io::stderr().lock().write_all(&buf),
    };
}

/// "exit status N" or "killed by signal N".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown exit status".to_owned(),
    }
}
