//! Knowing, and ending, the processes mosh-server leaves behind.
//!
//! mosh-server forks: its parent prints the child's pid and exits. We make
//! ourselves a child subreaper first, so the detached mosh-server (and any
//! process a broken mosh-server leaves) becomes our child. That lets us
//! check that the reported pid really is a process mosh-server started,
//! and, when a start fails, end everything it left with signals to our own
//! children only: never to a pid we merely read in its output.

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Becomes the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER).
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// The state letter and parent pid from the text of `/proc/PID/stat`.
pub fn parse_stat(text: &str) -> Option<(char, u32)> {
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so
    // split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// How the pid that mosh-server reported relates to us.
#[derive(Debug, PartialEq, Eq)]
pub enum Detached {
    /// Our child (adopted), alive.
    Ours,
    /// Our child, but it has already exited.
    Exited,
    /// Not our child, or no such process.
    Foreign,
}

pub fn check_detached(pid: u32) -> Detached {
    let me = std::process::id();
    match stat(pid) {
        Some((state, ppid)) if ppid == me => {
            if matches!(state, 'Z' | 'X') {
                Detached::Exited
            } else {
                Detached::Ours
            }
        }
        _ => Detached::Foreign,
    }
}

/// Our child processes, from /proc.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|(_, ppid)| ppid == me))
        .collect()
}

fn signal_children(signal: Signal) {
    for pid in children() {
        // A pid that does not fit would turn into a process-group kill.
        if let Ok(pid) = i32::try_from(pid) {
            if pid > 1 {
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
    }
}

/// Reaps exited children until none are left or `until` passes. Returns
/// whether no child is left.
fn reap_all(until: Instant) -> bool {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return true,
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= until {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(_) => continue,
        }
    }
}

/// Ends every child we have: SIGTERM, up to `grace` to exit, then SIGKILL.
/// Children of children that we adopt meanwhile are ended too.
pub fn end_children(grace: Duration) {
    signal_children(Signal::SIGTERM);
    if reap_all(Instant::now() + grace) {
        return;
    }
    signal_children(Signal::SIGKILL);
    reap_all(Instant::now() + Duration::from_millis(500));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        assert_eq!(
            parse_stat("6198 (mosh-server) S 1 6198 6198 0 -1"),
            Some(('S', 1))
        );
        assert_eq!(parse_stat("42 (a) b) (c) Z 7 1 2"), Some(('Z', 7)));
        assert_eq!(parse_stat("42 (x"), None);
        assert_eq!(parse_stat("42 (x) S"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn a_child_is_ours_and_a_stranger_is_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert_eq!(check_detached(child.id()), Detached::Ours);
        assert_eq!(check_detached(1), Detached::Foreign);
        assert_eq!(check_detached(u32::MAX), Detached::Foreign);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
