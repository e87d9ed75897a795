//! moshd's log: one line per event on stderr, filtered RUST_LOG-style,
//! with a filter that SIGHUP can replace.
//!
//! Under systemd (stderr is the journal stream named by $JOURNAL_STREAM)
//! lines carry no timestamp, since the journal stamps them, and begin with
//! a syslog priority prefix (`<6>` for info...) so that `journalctl -p
//! warning` selects by level. Never colour: logs end up in files.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Replaces the running filter.
pub struct FilterHandle(reload::Handle<EnvFilter, Registry>);

impl FilterHandle {
    /// Installs `filter`; an invalid one is refused and the old one stays.
    pub fn set(&self, filter: &str) -> anyhow::Result<()> {
        let new = EnvFilter::builder().parse(filter)?;
        self.0.reload(new)?;
        Ok(())
    }
}

/// Whether stderr is the journal: $JOURNAL_STREAM names its device and
/// inode (so a child that inherited the variable but not the stream is not
/// fooled).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else { return false };
    stream.to_str() == Some(&format!("{}:{}", meta.dev(), meta.ino()))
}

/// Installs the subscriber with `filter` (RUST_LOG syntax; an invalid one
/// means "info") and returns the handle that changes it later.
pub fn init(filter: &str) -> FilterHandle {
    let filter = EnvFilter::builder()
        .parse(filter)
        .unwrap_or_else(|_| EnvFilter::new(crate::settings::DEFAULT_LOG_FILTER));
    let (filter, handle) = reload::Layer::new(filter);
    let journal = stderr_is_journal();
    let plain = (!journal)
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).with_target(false));
    let journald = journal.then(|| {
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).event_format(SyslogPriority(
            tracing_subscriber::fmt::format().without_time().with_level(false).with_target(false),
        ))
    });
    let _ = tracing_subscriber::registry().with(filter).with(plain).with(journald).try_init();
    FilterHandle(handle)
}

/// The syslog priority journald reads from a line's `<N>` prefix.
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Prefixes each line with its syslog priority, then formats as `F` does.
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(
            [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE].map(|l| syslog_priority(&l)),
            [3, 4, 6, 7, 7]
        );
    }
}
