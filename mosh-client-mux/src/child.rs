//! Running stock mosh-client as the relay's child, and passing on its fate.
//!
//! The child inherits the terminal (stdin, stdout, stderr), the environment
//! (MOSH_KEY included) and the relay's process group: mosh-client's suspend
//! key (Ctrl-^ Ctrl-Z) does `kill(0, SIGSTOP)`, which must stop the relay
//! with it, and the shell's `fg` continues the whole group. The child gets
//! SIGHUP if the relay dies, so mosh-client never outlives its only path to
//! the network. The relay ends with the child's status, as if it were the
//! child (128 + signal number when the child was killed by a signal).

use nix::sys::signal::Signal;
use nix::unistd::{getppid, Pid};
use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

/// Spawns `program` with `argv` (without argv[0]) as a child that dies with us.
pub fn spawn(program: &Path, argv: &[OsString]) -> io::Result<tokio::process::Child> {
    let parent = Pid::this();
    let mut command = tokio::process::Command::new(program);
    command.args(argv);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGHUP).map_err(io::Error::from)?;
            // The relay may have died before prctl took effect: then the
            // signal will never come, so do not start at all.
            if getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// The exit status a shell would report for `status`.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_like_a_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGHUP)), 129);
    }

    #[test]
    fn spawned_child_runs_with_our_argv() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let code = rt.block_on(async {
            let argv = [OsString::from("-c"), OsString::from("exit 5")];
            let mut child = spawn(Path::new("/bin/sh"), &argv).unwrap();
            exit_code(child.wait().await.unwrap())
        });
        assert_eq!(code, 5);
    }
}
