//! The session table on disk, so a restarted moshd picks its sessions up
//! again. Written atomically (temporary file, fsync, rename); read with every
//! entry revalidated by the caller before it is trusted.

use crate::router::SessionRecord;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const VERSION: u32 = 1;
/// A state file larger than this is not read (no more sessions fit anyway).
const MAX_STATE_LEN: u64 = 64 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    sessions: Vec<SessionRecord>,
}

/// Loads the records; a missing file is an empty table.
pub fn load(path: &Path) -> anyhow::Result<Vec<SessionRecord>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let len = file.metadata()?.len();
    anyhow::ensure!(len <= MAX_STATE_LEN, "{} is larger than {MAX_STATE_LEN} bytes", path.display());
    let state: StateFile = serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a moshd state file", path.display()))?;
    anyhow::ensure!(state.version == VERSION, "{} has version {}, expected {VERSION}", path.display(), state.version);
    Ok(state.sessions)
}

/// Replaces the file atomically; readable by its owner only.
pub fn save(path: &Path, sessions: Vec<SessionRecord>) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec(&StateFile { version: VERSION, sessions })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosh_mux_proto::control::Registration;
    use mosh_mux_proto::Sid;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let dir = std::env::temp_dir().join(format!("moshd-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        assert!(load(&path).unwrap().is_empty());
        let rec = SessionRecord {
            uid: 5,
            user: "u".into(),
            since_unix: 9,
            registration: Registration { sid: Sid([3; 8]), port: 4000, pid: 77, ssh_client: None },
        };
        save(&path, vec![rec.clone()]).unwrap();
        assert_eq!(load(&path).unwrap(), vec![rec]);
        std::fs::write(&path, b"{\"version\":1,\"sessions\":[{\"junk\":1}]}").unwrap();
        assert!(load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
