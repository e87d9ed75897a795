//! Acting as synthetic users. moshd admits a registration only from the uid
//! that owns the inner socket and the registered process, and it budgets
//! control connections per uid (a few a second), so thousands of synthetic
//! sessions are registered under many synthetic uids (no passwd entries).

use anyhow::ensure;
use std::io::Error;

/// Becomes `uid` (gid the same, no supplementary groups) for good.
pub fn become_uid(uid: u32) -> anyhow::Result<()> {
    // SAFETY: plain system calls; results checked.
    unsafe {
        ensure!(
            libc::setgroups(0, std::ptr::null()) == 0,
            "setgroups: {}",
            Error::last_os_error()
        );
        ensure!(
            libc::setresgid(uid, uid, uid) == 0,
            "setresgid: {}",
            Error::last_os_error()
        );
        ensure!(
            libc::setresuid(uid, uid, uid) == 0,
            "setresuid: {}",
            Error::last_os_error()
        );
    }
    Ok(())
}

/// Runs `f` with real and effective uid `uid` (from root; the saved uid
/// stays 0 so root comes back after). Sockets `f` creates belong to `uid`,
/// and /proc shows this process as `uid`'s while `f` registers them.
pub fn as_uid<T>(uid: u32, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    // SAFETY: plain system calls; results checked.
    unsafe {
        ensure!(
            libc::setresuid(uid, uid, 0) == 0,
            "setresuid({uid}): {}",
            Error::last_os_error()
        );
    }
    let out = f();
    // SAFETY: as above; the saved uid 0 permits the way back.
    unsafe {
        ensure!(
            libc::setresuid(0, 0, 0) == 0,
            "cannot become root again: {}",
            Error::last_os_error()
        );
        // A uid change clears the dumpable flag; moshd (root) reads our
        // /proc entries either way, but keep them as they were.
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    out
}
