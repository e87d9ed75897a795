//! Dropping root after the privileged work is done: moshd binds its public
//! port (possibly below 1024) and its control socket as root, then serves
//! every datagram and request as an unprivileged user.
//!
//! As that user moshd still reads /proc/net/udp and /proc/PID/status (world
//! readable), opens pidfds and reads SO_PEERCRED; it no longer reads other
//! users' /proc/PID/fd, so a registration's "the pid holds the port" check
//! is skipped and the uid checks (port owner and pid owner both the caller)
//! carry the rule alone.

use anyhow::Context;
use nix::unistd::{chown, setgid, setgroups, setuid, Gid, Uid, User};
use std::path::Path;

/// Looks up `name` and gives it the control socket, so it can remove the
/// socket at exit; then becomes that user for good.
pub fn drop_to(name: &str, control_socket: &Path, state_file: &Path) -> anyhow::Result<(u32, u32)> {
    let user = User::from_name(name)
        .with_context(|| format!("cannot look up user {name}"))?
        .with_context(|| format!("no such user: {name}"))?;
    let (uid, gid) = (user.uid, user.gid);
    chown(control_socket, Some(uid), Some(gid))
        .with_context(|| format!("cannot give {} to {name}", control_socket.display()))?;
    prepare_state_dir(state_file, uid, gid)?;
    setgroups(&[gid]).context("setgroups")?;
    setgid(gid).context("setgid")?;
    setuid(uid).context("setuid")?;
    anyhow::ensure!(
        setuid(Uid::from_raw(0)).is_err(),
        "still able to regain root after dropping to {name}"
    );
    Ok((uid.as_raw(), gid.as_raw()))
}

/// The state file's directory must be writable by the user: create it for
/// them (0700) if it is missing, and say so if it is not theirs.
fn prepare_state_dir(state_file: &Path, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    let Some(dir) = state_file.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::os::unix::fs::chown(dir, Some(uid.as_raw()), Some(gid.as_raw()))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    }
    if state_file.exists() {
        std::os::unix::fs::chown(state_file, Some(uid.as_raw()), Some(gid.as_raw()))?;
    }
    Ok(())
}
