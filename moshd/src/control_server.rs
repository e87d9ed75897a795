//! moshd's Unix control socket: one request per connection, the caller's
//! uid from SO_PEERCRED, bounded in size, time and number of connections so
//! that a slow or hostile local client cannot starve anyone else.

use crate::control_budget::{ControlBudget, ControlLimits};
use crate::daemon::Daemon;
use anyhow::Context;
use mosh_mux_proto::control::{decode_request, encode_line, Request, Response, MAX_REQUEST_LEN};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::spawn_local;
use tracing::{debug, info};

/// A connection's whole life: mosh-server-mux connects, starts mosh-server,
/// then registers, so this must cover mosh-server's start-up.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Binds the control socket, refusing to steal one a live moshd serves.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("control socket {} is in use by another moshd", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale control socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot bind control socket {}", path.display()))?;
    // Anyone may connect: who they are comes from SO_PEERCRED, and what they
    // may do is decided per request.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

pub async fn serve(daemon: Rc<Daemon>, listener: UnixListener) {
    let budget = Rc::new(RefCell::new(ControlBudget::new(ControlLimits::default())));
    let mut refusals = RefusalLog::default();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, most likely: back off instead of spinning.
                debug!("control accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(uid) = stream.peer_cred().map(|c| c.uid()) else { continue };
        let admitted = budget.borrow_mut().admit(Instant::now(), uid);
        if let Err(why) = admitted {
            let reason = budget.borrow().reason(why);
            refusals.note(uid, &reason);
            // One line into the fresh socket's empty buffer, never waiting
            // (a non-blocking write, straight to the kernel: tokio's
            // try_write would wait for a first readiness event): the caller
            // learns why; a caller that does not read loses nothing.
            if let Ok(std_stream) = stream.into_std() {
                use std::io::Write;
                let _ = (&std_stream).write(&encode_line(&Response::Refused { reason }));
            }
            continue;
        }
        let daemon = daemon.clone();
        // Released on drop: a request that panics or is cancelled must not
        // keep its slot for the life of moshd.
        let slot = Slot { budget: budget.clone(), uid };
        spawn_local(async move {
            if let Err(e) = tokio::time::timeout(CONNECTION_TIMEOUT, handle(daemon, stream, uid)).await {
                debug!("control connection timed out: {e}");
            }
            drop(slot);
        });
    }
}

/// Refused control connections go to the log at most once a second, with
/// how many were refused since the last line: a burst cannot flood the log.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn note(&mut self, uid: u32, reason: &str) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.unlogged += 1;
            return;
        }
        info!(uid, %reason, also_refused = self.unlogged, "control connection refused");
        self.last = Some(now);
        self.unlogged = 0;
    }
}

/// A control connection's place in the budget, given back when dropped.
struct Slot {
    budget: Rc<RefCell<ControlBudget>>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut b) = self.budget.try_borrow_mut() {
            b.release(self.uid);
        }
    }
}

async fn handle(daemon: Rc<Daemon>, stream: UnixStream, uid: u32) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_REQUEST_LEN + 1).unwrap_or(u64::MAX);
    BufReader::new(read.take(limit))
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Ok(()); // a probe, or a caller that hung up
    }
    let response = match decode_request(&line) {
        Err(e) => Response::Refused { reason: e.to_string() },
        Ok(Request::Register(reg)) => daemon.register(uid, &reg).await,
        Ok(Request::Status(_)) => Response::Status(daemon.status(uid)),
    };
    write.write_all(&encode_line(&response)).await?;
    write.shutdown().await?;
    Ok(())
}
