//! mosh-mux-docs writes a man page per program (and per moshd subcommand)
//! and bash, zsh and fish completions for each, all from the clap
//! definitions; the pages render with man(1) and the bash ones parse.

mod common;

use common::scratch;
use std::process::Command;

const PROGRAMS: [&str; 4] = ["moshd", "mosh-server-mux", "mosh-client-mux", "mosh-mux"];

fn docs(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_mosh-mux-docs")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn man_pages_for_every_program() {
    let dir = scratch("docs-man");
    docs(&["man", dir.to_str().unwrap()]);
    let pages = [
        "man8/moshd.8",
        "man8/moshd-status.8",
        "man8/moshd-check-config.8",
        "man1/mosh-server-mux.1",
        "man1/mosh-client-mux.1",
        "man1/mosh-mux.1",
    ];
    for page in pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH "), "{page} is roff");
        assert!(text.contains(".SH \"SEE ALSO\""), "{page} has SEE ALSO");
    }
    let moshd = std::fs::read_to_string(dir.join("man8/moshd.8")).unwrap();
    for section in ["OPTIONS", "SUBCOMMANDS", "CONFIGURATION", "FILES", "SIGNALS", "ENVIRONMENT", "EXIT STATUS"] {
        let heading = if section.contains(' ') { format!(".SH \"{section}\"") } else { format!(".SH {section}") };
        assert!(moshd.contains(&heading), "moshd(8) lacks {section}");
    }
    assert!(moshd.contains("check\\-config") && moshd.contains("max_sessions_per_user"));
    // Rendered by man(1), where it is installed.
    if Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success()) {
        for page in pages {
            let out = Command::new("man").arg("-l").arg(dir.join(page)).env("MANPAGER", "cat").env("MANWIDTH", "80").output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.contains("NAME"), "{page}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_for_every_program_and_shell() {
    let dir = scratch("docs-comp");
    docs(&["completions", dir.to_str().unwrap()]);
    for name in PROGRAMS {
        for file in [format!("bash/{name}"), format!("zsh/_{name}"), format!("fish/{name}.fish")] {
            let text = std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(text.contains(name), "{file}");
        }
        let bash = Command::new("bash").arg("-n").arg(dir.join(format!("bash/{name}"))).status().unwrap();
        assert!(bash.success(), "bash/{name} does not parse");
    }
    let moshd = std::fs::read_to_string(dir.join("bash/moshd")).unwrap();
    assert!(moshd.contains("check-config") && moshd.contains("--max-sessions-per-user"));
    let mux = std::fs::read_to_string(dir.join("fish/mosh-mux.fish")).unwrap();
    assert!(mux.contains("predict") && mux.contains("ssh"));
    std::fs::remove_dir_all(&dir).unwrap();
}
