//! mosh-mux-docs: writes the man pages and shell completions of every
//! mosh-mux program, generated from their clap definitions, for
//! scripts/install. Not installed itself.
//!
//!     mosh-mux-docs man DIR           DIR/man1/*.1 and DIR/man8/*.8
//!     mosh-mux-docs completions DIR   DIR/bash/NAME, DIR/zsh/_NAME, DIR/fish/NAME.fish
//!
//! The wrappers' definitions live in their own crates, which are binaries,
//! so their cli modules are compiled in here by path (as clap's docs do
//! from a build script); they depend on clap and std only.

mod commands;
mod pages;

// mosh-client-mux's cli module names `crate::fail`.
#[allow(dead_code)]
#[path = "../../../../mosh-client-mux/src/fail.rs"]
mod fail;
#[allow(dead_code)]
#[path = "../../../../mosh-client-mux/src/cli.rs"]
mod client_cli;
#[allow(dead_code)]
#[path = "../../../../mosh-server-mux/src/cli.rs"]
mod server_cli;
#[allow(dead_code)]
#[path = "../../../../mosh-client-mux/src/bin/mosh-mux/cli.rs"]
mod mosh_mux_cli;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// Generate the man pages or shell completions of moshd, mosh-server-mux, mosh-client-mux and mosh-mux.
#[derive(Parser)]
#[command(name = "mosh-mux-docs", version)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Man pages: DIR/man1/*.1 and DIR/man8/*.8
    Man { dir: PathBuf },
    /// Completions: DIR/bash/NAME, DIR/zsh/_NAME, DIR/fish/NAME.fish
    Completions { dir: PathBuf },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().what {
        What::Man { dir } => man(&dir),
        What::Completions { dir } => completions(&dir),
    }
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

fn man(dir: &Path) -> anyhow::Result<()> {
    for program in commands::all() {
        for (name, text) in pages::render(&program)? {
            write(&dir.join(format!("man{}", program.section)).join(name), &text)?;
        }
    }
    Ok(())
}

fn completions(dir: &Path) -> anyhow::Result<()> {
    for program in commands::all() {
        for (shell, file) in [
            (Shell::Bash, format!("bash/{}", program.name)),
            (Shell::Zsh, format!("zsh/_{}", program.name)),
            (Shell::Fish, format!("fish/{}.fish", program.name)),
        ] {
            let mut cmd = program.command.clone();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, program.name, &mut out);
            write(&dir.join(file), &out)?;
        }
    }
    Ok(())
}
