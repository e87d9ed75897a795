//! Telling systemd how moshd is doing (Type=notify): ready once it serves,
//! reloading while SIGHUP re-reads the configuration. Without
//! $NOTIFY_SOCKET (not under systemd) every call does nothing.

use sd_notify::NotifyState;

/// moshd serves: its sockets are bound and its sessions restored.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload has begun; `ready` ends it. With the monotonic time, as
/// systemd (253 and later) wants it for Type=notify-reload.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}
