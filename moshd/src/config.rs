//! moshd's configuration file (/etc/mosh/moshd.toml): its keys, their types
//! and bounds, read into [`FileConfig`] with every error reported at once,
//! each with its line, the way `sshd -t` does.
//!
//! Pure: text in, values or errors out. Every key is optional; what a file
//! leaves out keeps its default, and the command line overrides the file
//! (see `settings`). Unknown keys are errors, with the nearest known key as
//! a hint. Durations are in seconds; rates are `{ per_second, burst }`.

use crate::limits::Limits;
use crate::rate::Rate;
use mosh_mux_proto::config::ConfigError;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml_edit::{ImDocument, Item, TableLike, Value};

/// Fewest candidate addresses per session: the confirmed one plus a new
/// one, or a roaming client could never be found again.
pub const MIN_CANDIDATES: usize = 2;
/// Longest duration accepted (a year): beyond it a typo is likelier than intent.
const MAX_SECONDS: f64 = 365.0 * 86_400.0;
/// Largest rate or burst accepted.
const MAX_RATE: f64 = 1e9;

/// What the file says; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    pub listen: Option<Vec<SocketAddr>>,
    pub advertise_port: Option<u16>,
    pub control_socket: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub user: Option<String>,
    /// A tracing filter in RUST_LOG syntax.
    pub log_level: Option<String>,
    pub roaming_probe: Option<bool>,
    pub limits: LimitOverrides,
}

/// The `[limits]` table: each field of [`Limits`] the file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitOverrides {
    pub max_sessions: Option<usize>,
    pub max_sessions_per_user: Option<usize>,
    pub max_candidates: Option<usize>,
    pub session_candidate_rate: RateOverride,
    pub global_candidate_rate: RateOverride,
    pub candidate_idle: Option<Duration>,
    pub probe_fanout: Option<usize>,
    pub probe_source_rate: RateOverride,
    pub probe_global_rate: RateOverride,
    pub max_probe_sources: Option<usize>,
    pub roam_silence: Option<Duration>,
    pub notice_rate: RateOverride,
}

/// A rate the file sets in part or in whole.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateOverride {
    pub per_second: Option<f64>,
    pub burst: Option<f64>,
}

impl RateOverride {
    pub fn apply(&self, rate: Rate) -> Rate {
        Rate {
            per_second: self.per_second.unwrap_or(rate.per_second),
            burst: self.burst.unwrap_or(rate.burst),
        }
    }
}

impl LimitOverrides {
    /// `limits` with what the file sets replaced.
    pub fn apply(&self, mut limits: Limits) -> Limits {
        fn set<T: Copy>(slot: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        set(&mut limits.max_sessions, self.max_sessions);
        set(&mut limits.max_sessions_per_uid, self.max_sessions_per_user);
        set(&mut limits.max_candidates, self.max_candidates);
        limits.session_candidate_rate = self.session_candidate_rate.apply(limits.session_candidate_rate);
        limits.global_candidate_rate = self.global_candidate_rate.apply(limits.global_candidate_rate);
        set(&mut limits.candidate_idle, self.candidate_idle);
        set(&mut limits.probe_fanout, self.probe_fanout);
        limits.probe_source_rate = self.probe_source_rate.apply(limits.probe_source_rate);
        limits.probe_global_rate = self.probe_global_rate.apply(limits.probe_global_rate);
        set(&mut limits.max_probe_sources, self.max_probe_sources);
        set(&mut limits.roam_silence, self.roam_silence);
        limits.notice_rate = self.notice_rate.apply(limits.notice_rate);
        limits
    }
}

const TOP_KEYS: &[&str] = &[
    "listen",
    "advertise_port",
    "control_socket",
    "state_file",
    "user",
    "log_level",
    "roaming_probe",
    "limits",
];
const LIMIT_KEYS: &[&str] = &[
    "max_sessions",
    "max_sessions_per_user",
    "max_candidates",
    "session_candidate_rate",
    "global_candidate_rate",
    "candidate_idle_seconds",
    "probe_fanout",
    "probe_source_rate",
    "probe_global_rate",
    "max_probe_sources",
    "roam_silence_seconds",
    "notice_rate",
];
const RATE_KEYS: &[&str] = &["per_second", "burst"];

/// Every limit as the file names it, with its value: for logging what a
/// reload changed, and for checking the shipped default file.
pub fn limit_values(l: &Limits) -> Vec<(&'static str, String)> {
    let rate = |r: Rate| format!("{{ per_second = {}, burst = {} }}", r.per_second, r.burst);
    vec![
        ("max_sessions", l.max_sessions.to_string()),
        ("max_sessions_per_user", l.max_sessions_per_uid.to_string()),
        ("max_candidates", l.max_candidates.to_string()),
        ("session_candidate_rate", rate(l.session_candidate_rate)),
        ("global_candidate_rate", rate(l.global_candidate_rate)),
        ("candidate_idle_seconds", l.candidate_idle.as_secs_f64().to_string()),
        ("probe_fanout", l.probe_fanout.to_string()),
        ("probe_source_rate", rate(l.probe_source_rate)),
        ("probe_global_rate", rate(l.probe_global_rate)),
        ("max_probe_sources", l.max_probe_sources.to_string()),
        ("roam_silence_seconds", l.roam_silence.as_secs_f64().to_string()),
        ("notice_rate", rate(l.notice_rate)),
        ("roaming_probe", l.roaming_probe.to_string()),
    ]
}

/// Parses a whole file, reporting every error found (a syntax error stops
/// the reading at once: nothing after it can be trusted).
pub fn parse(text: &str) -> Result<FileConfig, Vec<ConfigError>> {
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let message = e.message().trim().replace('\n', " ");
            return Err(vec![ConfigError { line: line_of(text, e.span()), message }]);
        }
    };
    let mut r = Reader { text, errors: Vec::new() };
    let config = r.top(doc.as_table());
    if r.errors.is_empty() {
        Ok(config)
    } else {
        r.errors.sort_by_key(|e| e.line);
        Err(r.errors)
    }
}

/// The line of top-level `key` in `text`, if the text parses and has it
/// (for errors found after parsing, such as a `user` unknown to this host).
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let doc = ImDocument::parse(text).ok()?;
    let span = doc.as_table().key(key)?.span();
    line_of(text, span)
}

/// The 1-based line holding byte `span.start`.
fn line_of(text: &str, span: Option<Range<usize>>) -> Option<usize> {
    let start = span?.start.min(text.len());
    Some(text.as_bytes()[..start].iter().filter(|b| **b == b'\n').count() + 1)
}

/// Walks the document, collecting errors instead of stopping at the first.
struct Reader<'t> {
    text: &'t str,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn error(&mut self, span: Option<Range<usize>>, message: String) {
        let line = line_of(self.text, span);
        self.errors.push(ConfigError { line, message });
    }

    /// Reports keys of `table` not in `known`; `path` prefixes the names.
    fn unknown_keys(&mut self, table: &dyn TableLike, path: &str, known: &[&str]) {
        for (key, _) in table.iter() {
            if known.contains(&key) {
                continue;
            }
            let hint = mosh_mux_proto::config::nearest_key(key, known)
                .map(|k| format!("; did you mean `{path}{k}`?"))
                .unwrap_or_default();
            let span = table.key(key).and_then(|k| k.span());
            self.error(span, format!("unknown key `{path}{key}`{hint}"));
        }
    }

    fn top(&mut self, t: &dyn TableLike) -> FileConfig {
        self.unknown_keys(t, "", TOP_KEYS);
        FileConfig {
            listen: self.field(t, "", "listen", Self::listen),
            advertise_port: self.field(t, "", "advertise_port", |r, n, i| {
                r.int(n, i, 1, 65_535).and_then(|p| u16::try_from(p).ok())
            }),
            control_socket: self.field(t, "", "control_socket", Self::path),
            state_file: self.field(t, "", "state_file", Self::path),
            user: self.field(t, "", "user", Self::user),
            log_level: self.field(t, "", "log_level", Self::log_filter),
            roaming_probe: self.field(t, "", "roaming_probe", Self::boolean),
            limits: match t.get("limits") {
                None => LimitOverrides::default(),
                Some(item) => match item.as_table_like() {
                    Some(limits) => self.limits(limits),
                    None => {
                        let msg = format!("`limits` must be a table, not {}", type_name(item));
                        self.error(item.span(), msg);
                        LimitOverrides::default()
                    }
                },
            },
        }
    }

    fn limits(&mut self, t: &dyn TableLike) -> LimitOverrides {
        const P: &str = "limits.";
        self.unknown_keys(t, P, LIMIT_KEYS);
        let count = |min: usize| move |r: &mut Self, n: &str, i: &Item| r.count(n, i, min);
        LimitOverrides {
            max_sessions: self.field(t, P, "max_sessions", count(1)),
            max_sessions_per_user: self.field(t, P, "max_sessions_per_user", count(1)),
            max_candidates: self.field(t, P, "max_candidates", count(MIN_CANDIDATES)),
            session_candidate_rate: self.rate_field(t, "session_candidate_rate"),
            global_candidate_rate: self.rate_field(t, "global_candidate_rate"),
            candidate_idle: self.field(t, P, "candidate_idle_seconds", Self::seconds),
            probe_fanout: self.field(t, P, "probe_fanout", count(0)),
            probe_source_rate: self.rate_field(t, "probe_source_rate"),
            probe_global_rate: self.rate_field(t, "probe_global_rate"),
            max_probe_sources: self.field(t, P, "max_probe_sources", count(1)),
            roam_silence: self.field(t, P, "roam_silence_seconds", Self::seconds),
            notice_rate: self.rate_field(t, "notice_rate"),
        }
    }

    /// Reads `key` of `t` with `read` (given the full name), if present.
    fn field<T>(
        &mut self,
        t: &dyn TableLike,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &str, &Item) -> Option<T>,
    ) -> Option<T> {
        let item = t.get(key)?;
        read(self, &format!("{path}{key}"), item)
    }

    fn rate_field(&mut self, t: &dyn TableLike, key: &str) -> RateOverride {
        let name = format!("limits.{key}");
        let Some(item) = t.get(key) else { return RateOverride::default() };
        let Some(rate) = item.as_table_like() else {
            let msg = format!(
                "`{name}` must be a table like {{ per_second = 2, burst = 8 }}, not {}",
                type_name(item)
            );
            self.error(item.span(), msg);
            return RateOverride::default();
        };
        let path = format!("{name}.");
        self.unknown_keys(rate, &path, RATE_KEYS);
        RateOverride {
            per_second: self.field(rate, &path, "per_second", |r, n, i| {
                r.number(n, i).and_then(|v| r.check(n, i, v, v > 0.0 && v <= MAX_RATE, "more than 0 and at most 1e9"))
            }),
            burst: self.field(rate, &path, "burst", |r, n, i| {
                r.number(n, i).and_then(|v| r.check(n, i, v, (1.0..=MAX_RATE).contains(&v), "at least 1 and at most 1e9"))
            }),
        }
    }

    fn wrong_type(&mut self, name: &str, item: &Item, want: &str) {
        let msg = format!("`{name}` must be {want}, not {}", type_name(item));
        self.error(item.span(), msg);
    }

    /// `value` if `ok`, otherwise an error saying what it must be.
    fn check<T: std::fmt::Display>(&mut self, name: &str, item: &Item, value: T, ok: bool, must: &str) -> Option<T> {
        if ok {
            return Some(value);
        }
        self.error(item.span(), format!("`{name}` must be {must}, not {value}"));
        None
    }

    fn int(&mut self, name: &str, item: &Item, min: i64, max: i64) -> Option<i64> {
        let Some(v) = item.as_integer() else {
            self.wrong_type(name, item, "an integer");
            return None;
        };
        let must = if max == i64::MAX { format!("at least {min}") } else { format!("{min}-{max}") };
        self.check(name, item, v, (min..=max).contains(&v), &must)
    }

    fn count(&mut self, name: &str, item: &Item, min: usize) -> Option<usize> {
        let min = i64::try_from(min).unwrap_or(i64::MAX);
        self.int(name, item, min, i64::MAX).and_then(|v| usize::try_from(v).ok())
    }

    /// An integer or a float.
    fn number(&mut self, name: &str, item: &Item) -> Option<f64> {
        match item.as_value() {
            Some(Value::Integer(i)) => Some(*i.value() as f64),
            Some(Value::Float(f)) => Some(*f.value()),
            _ => {
                self.wrong_type(name, item, "a number");
                None
            }
        }
    }

    fn seconds(&mut self, name: &str, item: &Item) -> Option<Duration> {
        let v = self.number(name, item)?;
        let v = self.check(name, item, v, v > 0.0 && v <= MAX_SECONDS, "more than 0 and at most a year (31536000)")?;
        Duration::try_from_secs_f64(v).ok()
    }

    fn boolean(&mut self, name: &str, item: &Item) -> Option<bool> {
        let v = item.as_bool();
        if v.is_none() {
            self.wrong_type(name, item, "true or false");
        }
        v
    }

    fn string<'i>(&mut self, name: &str, item: &'i Item) -> Option<&'i str> {
        let v = item.as_str();
        if v.is_none() {
            self.wrong_type(name, item, "a string");
        }
        v
    }

    fn path(&mut self, name: &str, item: &Item) -> Option<PathBuf> {
        let s = self.string(name, item)?;
        if !s.starts_with('/') {
            self.error(item.span(), format!("`{name}` must be an absolute path, not {s:?}"));
            return None;
        }
        Some(PathBuf::from(s))
    }

    fn user(&mut self, name: &str, item: &Item) -> Option<String> {
        let s = self.string(name, item)?;
        let ok = !s.is_empty() && !s.starts_with('-') && s.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !ok {
            self.error(item.span(), format!("`{name}` must be a user name, not {s:?}"));
            return None;
        }
        Some(s.to_owned())
    }

    fn log_filter(&mut self, name: &str, item: &Item) -> Option<String> {
        let s = self.string(name, item)?;
        match tracing_subscriber::EnvFilter::builder().parse(s) {
            Ok(_) => Some(s.to_owned()),
            Err(e) => {
                self.error(item.span(), format!("`{name}` is not a log filter ({e}): {s:?}"));
                None
            }
        }
    }

    fn listen(&mut self, name: &str, item: &Item) -> Option<Vec<SocketAddr>> {
        let Some(array) = item.as_array() else {
            self.wrong_type(name, item, r#"a list of addresses like ["0.0.0.0:60001", "[::]:60001"]"#);
            return None;
        };
        if array.is_empty() {
            self.error(item.span(), format!("`{name}` must name at least one address"));
            return None;
        }
        let mut addrs: Vec<SocketAddr> = Vec::new();
        let mut ok = true;
        for v in array.iter() {
            let parsed = v.as_str().map(|s| (s, s.parse::<SocketAddr>()));
            match parsed {
                Some((_, Ok(a))) if addrs.contains(&a) => {
                    self.error(v.span(), format!("`{name}` names {a} twice"));
                    ok = false;
                }
                Some((_, Ok(a))) => addrs.push(a),
                Some((s, Err(_))) => {
                    let msg = format!("`{name}`: {s:?} is not an address:port like \"0.0.0.0:60001\" or \"[::]:60001\"");
                    self.error(v.span(), msg);
                    ok = false;
                }
                None => {
                    let msg = format!("`{name}` must hold strings, not {}", value_type(v));
                    self.error(v.span(), msg);
                    ok = false;
                }
            }
        }
        ok.then_some(addrs)
    }
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_type(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn errors(text: &str) -> Vec<String> {
        parse(text).unwrap_err().into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn empty_file_sets_nothing() {
        assert_eq!(parse("").unwrap(), FileConfig::default());
        assert_eq!(parse("# only a comment\n\n").unwrap(), FileConfig::default());
    }

    #[test]
    fn a_full_file() {
        let text = r#"
listen = ["0.0.0.0:60001", "[::]:60001"]
advertise_port = 443
control_socket = "/run/moshd/control.sock"
state_file = "/var/lib/moshd/state.json"
user = "moshd"
log_level = "info,moshd=debug"
roaming_probe = true

[limits]
max_sessions = 500
max_sessions_per_user = 10
max_candidates = 4
candidate_idle_seconds = 60
probe_fanout = 0
max_probe_sources = 100
roam_silence_seconds = 2.5
session_candidate_rate = { per_second = 0.5, burst = 4 }
notice_rate = { burst = 10 }

[limits.probe_global_rate]
per_second = 100
burst = 200
"#;
        let c = parse(text).unwrap();
        assert_eq!(c.listen, Some(vec!["0.0.0.0:60001".parse().unwrap(), "[::]:60001".parse().unwrap()]));
        assert_eq!(c.advertise_port, Some(443));
        assert_eq!(c.control_socket, Some(PathBuf::from("/run/moshd/control.sock")));
        assert_eq!(c.user.as_deref(), Some("moshd"));
        assert_eq!(c.log_level.as_deref(), Some("info,moshd=debug"));
        assert_eq!(c.roaming_probe, Some(true));
        let l = c.limits.apply(Limits::default());
        let d = Limits::default();
        assert_eq!((l.max_sessions, l.max_sessions_per_uid, l.max_candidates), (500, 10, 4));
        assert_eq!(l.candidate_idle, Duration::from_secs(60));
        assert_eq!((l.probe_fanout, l.max_probe_sources), (0, 100));
        assert_eq!(l.roam_silence, Duration::from_millis(2500));
        assert_eq!(l.session_candidate_rate, Rate { per_second: 0.5, burst: 4.0 });
        assert_eq!(l.notice_rate, Rate { per_second: d.notice_rate.per_second, burst: 10.0 });
        assert_eq!(l.probe_global_rate, Rate { per_second: 100.0, burst: 200.0 });
        assert_eq!(l.global_candidate_rate, d.global_candidate_rate, "untouched");
        // roaming_probe is a top-level policy, applied by `settings`.
        assert!(!l.roaming_probe);
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line_and_a_hint() {
        let e = errors("listen = [\"0.0.0.0:1\"]\n\nmax_session = 3\n[limits]\nmax_sessionz = 1\nfoo = 2\n");
        assert_eq!(
            e,
            [
                "line 3: unknown key `max_session`",
                "line 5: unknown key `limits.max_sessionz`; did you mean `limits.max_sessions`?",
                "line 6: unknown key `limits.foo`",
            ]
        );
        let e = errors("[limits]\nprobe_source_rate = { per_second = 1, brust = 3 }\n");
        assert_eq!(e, ["line 2: unknown key `limits.probe_source_rate.brust`; did you mean `limits.probe_source_rate.burst`?"]);
    }

    #[test]
    fn bad_types_name_what_is_wanted() {
        let e = errors("advertise_port = \"60001\"\nroaming_probe = 1\nlisten = \"0.0.0.0:1\"\nlimits = 3\n");
        assert_eq!(
            e,
            [
                "line 1: `advertise_port` must be an integer, not a string",
                "line 2: `roaming_probe` must be true or false, not an integer",
                r#"line 3: `listen` must be a list of addresses like ["0.0.0.0:60001", "[::]:60001"], not a string"#,
                "line 4: `limits` must be a table, not an integer",
            ]
        );
        let e = errors("[limits]\nmax_sessions = 1.5\nprobe_global_rate = 5\ncandidate_idle_seconds = \"2m\"\n");
        assert_eq!(
            e,
            [
                "line 2: `limits.max_sessions` must be an integer, not a float",
                "line 3: `limits.probe_global_rate` must be a table like { per_second = 2, burst = 8 }, not an integer",
                "line 4: `limits.candidate_idle_seconds` must be a number, not a string",
            ]
        );
    }

    #[test]
    fn bad_values_give_the_reason() {
        let e = errors(
            "[limits]\nmax_candidates = 0\nmax_sessions = -1\ncandidate_idle_seconds = 0\nroam_silence_seconds = nan\n\
             session_candidate_rate = { per_second = 0, burst = 0.5 }\n",
        );
        assert_eq!(
            e,
            [
                "line 2: `limits.max_candidates` must be at least 2, not 0",
                "line 3: `limits.max_sessions` must be at least 1, not -1",
                "line 4: `limits.candidate_idle_seconds` must be more than 0 and at most a year (31536000), not 0",
                "line 5: `limits.roam_silence_seconds` must be more than 0 and at most a year (31536000), not NaN",
                "line 6: `limits.session_candidate_rate.per_second` must be more than 0 and at most 1e9, not 0",
                "line 6: `limits.session_candidate_rate.burst` must be at least 1 and at most 1e9, not 0.5",
            ]
        );
        let e = errors(
            "advertise_port = 0\ncontrol_socket = \"run/x.sock\"\nuser = \"\"\nlog_level = \"moshd=loud\"\n\
             listen = [\"0.0.0.0\", \"1.2.3.4:5\", \"1.2.3.4:5\", 7]\n",
        );
        assert_eq!(e.len(), 7, "{e:#?}");
        assert_eq!(e[0], "line 1: `advertise_port` must be 1-65535, not 0");
        assert_eq!(e[1], "line 2: `control_socket` must be an absolute path, not \"run/x.sock\"");
        assert_eq!(e[2], "line 3: `user` must be a user name, not \"\"");
        assert!(e[3].starts_with("line 4: `log_level` is not a log filter ("), "{}", e[3]);
        assert_eq!(e[4], "line 5: `listen`: \"0.0.0.0\" is not an address:port like \"0.0.0.0:60001\" or \"[::]:60001\"");
        assert_eq!(e[5], "line 5: `listen` names 1.2.3.4:5 twice");
        assert_eq!(e[6], "line 5: `listen` must hold strings, not an integer");
        assert_eq!(errors("listen = []"), ["line 1: `listen` must name at least one address"]);
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse("user = \"a\"\nlisten = [\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].line.is_some_and(|l| l >= 2), "{e:?}");
        let e = parse("user = \"a\"\nuser = \"b\"\n").unwrap_err();
        assert_eq!(e[0].line, Some(2), "a duplicate key: {e:?}");
    }

    #[test]
    fn every_limit_has_a_key() {
        // Exhaustive on purpose: a new field of Limits fails to compile here
        // until the file format (and limit_values) learns it.
        let Limits {
            max_sessions: _,
            max_sessions_per_uid: _,
            max_candidates: _,
            session_candidate_rate: _,
            global_candidate_rate: _,
            candidate_idle: _,
            probe_fanout: _,
            probe_source_rate: _,
            probe_global_rate: _,
            max_probe_sources: _,
            roaming_probe: _,
            roam_silence: _,
            notice_rate: _,
        } = Limits::default();
        let named: Vec<&str> = limit_values(&Limits::default()).into_iter().map(|(k, _)| k).collect();
        assert_eq!(named.len(), 13);
        for key in LIMIT_KEYS {
            assert!(named.contains(key), "{key}");
        }
    }

    #[test]
    fn the_shipped_file_shows_every_default() {
        let shipped = include_str!("../dist/moshd.toml");
        assert_eq!(parse(shipped).unwrap(), FileConfig::default(), "everything is commented out");
        // Uncommented, each `#key = value` line sets the built-in default.
        let uncommented: String = shipped
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.split(" = ").next().is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')) => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = parse(&uncommented).unwrap();
        let defaults = Limits::default();
        assert_eq!(c.limits.apply(defaults.clone()), defaults);
        for key in LIMIT_KEYS {
            assert!(uncommented.contains(&format!("\n{key} = ")), "{key} is missing from the shipped file");
        }
        assert_eq!(c.listen, Some(crate::settings::default_listen()));
        assert_eq!(c.control_socket.as_deref(), Some(std::path::Path::new(crate::paths::SYSTEM_CONTROL_SOCKET)));
        assert_eq!(c.state_file.as_deref(), Some(std::path::Path::new(crate::paths::SYSTEM_STATE_FILE)));
        assert_eq!(c.log_level.as_deref(), Some(crate::settings::DEFAULT_LOG_FILTER));
        assert_eq!(c.roaming_probe, Some(defaults.roaming_probe));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") { let _ = parse(&s); }

        #[test]
        fn never_panics_on_limit_like_text(
            keys in proptest::collection::vec(proptest::sample::select(LIMIT_KEYS.to_vec()), 0..6),
            values in proptest::collection::vec("-?[0-9]{0,22}(\\.[0-9]{0,3})?|inf|nan|\\{ burst = -?[0-9e.]{0,8} \\}|\"x\"", 6),
        ) {
            let text: String = std::iter::once("[limits]".to_owned())
                .chain(keys.iter().zip(&values).map(|(k, v)| format!("{k} = {v}")))
                .collect::<Vec<_>>()
                .join("\n");
            let _ = parse(&text);
        }
    }
}
