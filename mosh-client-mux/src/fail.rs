//! The one-line, exit-coded failures a user sees.
//!
//! mosh-client-mux runs in the user's terminal, in front of mosh-client, so
//! every failure is one line `mosh-client-mux: <cause>` with an exit status a
//! script can act on (127 "not found", as a shell would say it).

use std::fmt;

/// Exit status for a usage error in our own options.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the stock mosh-client cannot be found or run.
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit status when the stock mosh-client was found but could not be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;

/// An error carrying the exit status the process must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl Fatal {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Fatal {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fatal {}

/// Running (exec or spawn) the stock mosh-client failed: 127 when it is
/// missing, 126 when it is there but cannot be executed, as a shell says.
pub fn cannot_run(program: &std::path::Path, err: &std::io::Error) -> Fatal {
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXECUTE
    };
    Fatal::new(code, format!("cannot run {}: {err}", program.display()))
}

/// The exit status for any error: a `Fatal`'s own, otherwise 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Fatal>())
        .map_or(1, |f| f.code)
}

/// The whole error chain on one line, prefixed with our name.
pub fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    let flat: Vec<&str> = text.split_whitespace().collect();
    format!("mosh-client-mux: {}", flat.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn code_and_line() {
        let e = anyhow::Error::new(Fatal::new(127, "cannot find\nit"));
        assert_eq!(exit_code(&e), 127);
        assert_eq!(one_line(&e), "mosh-client-mux: cannot find it");
        let plain: anyhow::Error = Err::<(), _>(std::io::Error::other("boom"))
            .context("binding")
            .unwrap_err();
        assert_eq!(exit_code(&plain), 1);
        assert_eq!(one_line(&plain), "mosh-client-mux: binding: boom");
        let wrapped = Err::<(), _>(Fatal::new(126, "x"))
            .context("outer")
            .unwrap_err();
        assert_eq!(exit_code(&wrapped), 126);
    }
}
