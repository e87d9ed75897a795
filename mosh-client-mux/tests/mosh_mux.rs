//! mosh-mux through the binary: it runs mosh with the mux client and server
//! first and every argument after them unchanged, passes the environment
//! on, answers only --help and --version itself, and says so in one line
//! (exit 127) when there is no mosh.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

const MOSH_MUX: &str = env!("CARGO_BIN_EXE_mosh-mux");

/// A stand-in for mosh that prints its arguments, one a line in brackets,
/// and $MOSH_PREDICTION_DISPLAY, then exits 3.
fn fake_mosh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mosh-mux-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mosh");
    std::fs::write(&path, "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\necho \"P=$MOSH_PREDICTION_DISPLAY\"\nexit 3\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn runs_mosh_with_the_mux_client_and_server_then_the_users_arguments() {
    let mosh = fake_mosh("args");
    let out = Command::new(MOSH_MUX)
        .args(["--ssh=ssh -p 2222", "--server=/opt/msm --control-socket /s", "alice@host", "--", "ls", "-l", "--help"])
        .env("MOSH_MUX_MOSH", &mosh)
        .env("MOSH_PREDICTION_DISPLAY", "never")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "mosh's exit status is ours");
    let client = PathBuf::from(MOSH_MUX).with_file_name("mosh-client-mux");
    let want = format!(
        "[--client={}]\n[--server=mosh-server-mux]\n[--ssh=ssh -p 2222]\n[--server=/opt/msm --control-socket /s]\n\
         [alice@host]\n[--]\n[ls]\n[-l]\n[--help]\nP=never\n",
        client.display()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    std::fs::remove_dir_all(mosh.parent().unwrap()).unwrap();
}

#[test]
fn help_and_version_are_answered_here() {
    let mosh = fake_mosh("help");
    for arg in ["--help", "-V"] {
        let out = Command::new(MOSH_MUX).arg(arg).env("MOSH_MUX_MOSH", &mosh).output().unwrap();
        assert!(out.status.success(), "{arg}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("mosh-mux") && !text.contains("[--client="), "{arg}: {text}");
    }
    std::fs::remove_dir_all(mosh.parent().unwrap()).unwrap();
}

#[test]
fn no_mosh_is_one_line_and_127() {
    let out = Command::new(MOSH_MUX).arg("host").env("PATH", "/nonexistent").env_remove("MOSH_MUX_MOSH").output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mosh-mux: cannot find mosh (install mosh, or set MOSH_MUX_MOSH to its path)\n"
    );
    let out = Command::new(MOSH_MUX).arg("host").env("MOSH_MUX_MOSH", "/nonexistent/mosh").output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "mosh-mux: cannot find mosh at /nonexistent/mosh (from $MOSH_MUX_MOSH)\n");
}
