//! Fuzz targets for mosh-mux's hostile inputs.
//!
//! Each target is a plain function from bytes to nothing that panics when
//! the code under test panics or breaks one of its promises (an invariant
//! checked here with `assert!`). The AFL++ binaries in `src/bin/` wrap them
//! in `afl::fuzz!`; `tests/seeds.rs` replays the seed corpora through them
//! without AFL, so a seed that crashes is caught by a plain `cargo test`.
//!
//! | target | code under test | hostile party |
//! |---|---|---|
//! | `header` | `mosh_mux_proto::header::{classify, Notice::decode}` | anyone who can send UDP to moshd, or to a client relay |
//! | `router` | `moshd::router::Router::route_from_client` and friends | the same, against registered sessions |
//! | `control` | `mosh_mux_proto::control::{decode_request, decode_response}` | any local user (moshd's control socket) |
//! | `connect_line` | `mosh_mux_proto::connect_line::{parse_connect_line, parse_detached_pid}` | a wrong or broken mosh-server |
//! | `config` | `mosh_mux_proto::config::WrapperConfig::parse` | a broken config file |
//! | `scan` | `mosh_server_mux::scan::Scanner`, line by line over both streams | a wrong or broken mosh-server |

pub mod router;

use mosh_mux_proto::config::WrapperConfig;
use mosh_mux_proto::connect_line::{format_connect_line, parse_connect_line, parse_detached_pid};
use mosh_mux_proto::control::{decode_request, decode_response, encode_line, Response, MAX_REQUEST_LEN};
use mosh_mux_proto::header::{classify, encode_header, Datagram, Malformed, HEADER_LEN, MAGIC_V1, MOSH_MIN_DATAGRAM};
use mosh_mux_proto::port::{parse_port, PortMode};
use mosh_mux_proto::{Notice, SessionKey};

/// Every target by name, for the seed replay and the AFL binaries.
pub const TARGETS: [(&str, fn(&[u8])); 6] = [
    ("header", header),
    ("router", router::run),
    ("control", control),
    ("connect_line", connect_line),
    ("config", config),
    ("scan", scan),
];

/// The datagram header: classification by first byte and length; and, on
/// the client relay's side, telling moshd's notices from mosh's datagrams.
pub fn header(data: &[u8]) {
    if let Some(n) = Notice::decode(data) {
        assert_eq!(&n.encode()[..], data);
        assert!(data[0] & 0x80 == 0);
    }
    if data.first().is_some_and(|b| b & 0x80 != 0) {
        assert_eq!(Notice::decode(data), None, "a server-to-client datagram read as a notice");
    }
    match classify(data) {
        Ok(Datagram::Raw(p)) => {
            assert!(data[0] < 0x80, "raw datagram with the top bit set");
            assert!(data.len() >= MOSH_MIN_DATAGRAM);
            assert_eq!(p, data);
        }
        Ok(Datagram::Framed { sid, payload }) => {
            assert_eq!(data[0], MAGIC_V1);
            assert!(data.len() >= HEADER_LEN + MOSH_MIN_DATAGRAM);
            assert_eq!(payload, &data[HEADER_LEN..]);
            assert!(payload[0] < 0x80, "framed payload is not a client datagram");
            // The header re-encodes to the bytes it was read from.
            let mut h = [0u8; HEADER_LEN];
            encode_header(sid, &mut h);
            assert_eq!(&h[..], &data[..HEADER_LEN]);
        }
        Err(Malformed::TooShort) => {
            let min = match data.first() {
                None => 1,
                Some(b) if b & 0x80 == 0 => MOSH_MIN_DATAGRAM,
                Some(_) => HEADER_LEN + MOSH_MIN_DATAGRAM,
            };
            assert!(data.len() < min, "refused as too short at {} bytes", data.len());
        }
        Err(Malformed::UnknownMagic) => {
            assert!(data[0] & 0x80 != 0);
            assert!(data[0] != MAGIC_V1 || data[HEADER_LEN] & 0x80 != 0);
        }
    }
}

/// The control protocol, both directions, the way moshd and the wrappers
/// read it: moshd takes at most `MAX_REQUEST_LEN + 1` bytes up to the first
/// newline, decodes, and answers a refusal with the decoder's reason.
pub fn control(data: &[u8]) {
    // moshd's framing (control_server::handle): read_until('\n') on a
    // reader limited to MAX_REQUEST_LEN + 1 bytes.
    let limited = &data[..data.len().min(MAX_REQUEST_LEN + 1)];
    let line = match limited.iter().position(|&b| b == b'\n') {
        Some(at) => &limited[..=at],
        None => limited,
    };
    match decode_request(line) {
        Ok(req) => {
            assert!(line.len() <= MAX_REQUEST_LEN);
            let again = decode_request(&encode_line(&req)).expect("an accepted request re-encodes");
            assert_eq!(again, req);
        }
        Err(e) => {
            // moshd sends this text back; it must stay one short line.
            let reason = e.to_string();
            assert!(reason.len() <= 300, "refusal reason of {} bytes", reason.len());
            let out = encode_line(&Response::Refused { reason });
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        }
    }
    // Whole input as a response (what mosh-server-mux and `moshd status` read).
    if let Ok(resp) = decode_response(data) {
        let again = decode_response(&encode_line(&resp)).expect("an accepted response re-encodes");
        assert_eq!(again, resp);
    }
    // And as a request without moshd's framing: the decoder's own bound.
    let _ = decode_request(data);
}

/// What mosh-server prints, line by line, the way mosh-server-mux's scanner
/// reads it (lines capped at 4096 bytes, decoded lossily, MOSH CONNECT
/// looked for after leading blanks, the detached pid on every line).
pub fn connect_line(data: &[u8]) {
    const MAX_LINE_LEN: usize = 4096;
    for raw in data.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_LINE_LEN)]);
        if let Some(Ok(c)) = parse_connect_line(text.trim_start()) {
            assert!(text.trim_start().starts_with("MOSH CONNECT"));
            assert_ne!(c.port, 0);
            assert_eq!(c.key_text().len(), 22);
            let key = SessionKey::parse(c.key_text()).expect("accepted key parses");
            assert_eq!(key.sid(), c.sid());
            assert!(!format!("{c:?}").contains(c.key_text()), "Debug shows the key");
            // What mosh-server-mux prints for `mosh` parses back the same,
            // in direct mode and in mux mode (leading zero).
            for port in [c.port.to_string(), format!("0{}", c.port)] {
                let line = format_connect_line(&port, c.key_text());
                let back = parse_connect_line(&line).expect("is a connect line").expect("parses");
                assert_eq!((back.port, back.key_text(), back.sid()), (c.port, c.key_text(), c.sid()));
                let mode = parse_port(&port).expect("port string parses");
                let expect = if port.starts_with('0') { PortMode::Mux(c.port) } else { PortMode::Direct(c.port) };
                assert_eq!(mode, expect);
            }
        }
        if let Some(pid) = parse_detached_pid(&text) {
            assert!(pid > 1);
            assert!(text.contains(&pid.to_string()));
        }
        // Every field could be the port string that reaches mosh-client-mux.
        for field in text.split_ascii_whitespace() {
            if let Ok(PortMode::Direct(p) | PortMode::Mux(p)) = parse_port(field) {
                assert_ne!(p, 0);
                assert!(field.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}

/// mosh-server-mux's scanner of mosh-server's start-up output, fed the way
/// `child.rs` feeds it. Input: lines split at `\n`; each line's first byte
/// picks the stream (bit 0: stderr) and is dropped; lines longer than
/// `MAX_LINE_LEN` are cut and flagged, as the capped reader does.
pub fn scan(data: &[u8]) {
    use mosh_server_mux::scan::{Action, Scanner, Stream, MAX_LINES, MAX_LINE_LEN};
    let mut scanner = Scanner::new();
    let mut fed = 0;
    let mut connects = Vec::new();
    let mut pids = Vec::new();
    for raw in data.split(|&b| b == b'\n') {
        let Some((&selector, line)) = raw.split_first() else { continue };
        let stream = if selector & 1 == 1 { Stream::Stderr } else { Stream::Stdout };
        let truncated = line.len() > MAX_LINE_LEN;
        let line = &line[..line.len().min(MAX_LINE_LEN)];
        let action = scanner.feed(stream, line, truncated);
        fed += 1;
        let text = String::from_utf8_lossy(line);
        let connect = parse_connect_line(text.trim_start());
        if fed > MAX_LINES {
            assert!(scanner.gave_up(), "more than {MAX_LINES} lines read without giving up");
            assert_eq!(action, Action::Hold, "a line past the cap was passed on");
            continue;
        }
        // A MOSH CONNECT line from mosh-server never reaches `mosh`: it
        // would be taken for ours (on stderr, whether it parses or not).
        if stream == Stream::Stderr && text.trim_start().starts_with("MOSH CONNECT") {
            assert_eq!(action, Action::Hold, "a MOSH CONNECT line on stderr was passed on");
        }
        if stream == Stream::Stdout && connect.is_some() {
            assert_eq!(action, Action::Hold, "a MOSH CONNECT line on stdout was passed on");
        }
        if let (Stream::Stdout, Some(Ok(c)), false) = (stream, connect, truncated) {
            connects.push((c.port, c.key_text().to_owned()));
        }
        if stream == Stream::Stderr && !text.trim_start().starts_with("MOSH CONNECT") {
            pids.extend(parse_detached_pid(&text));
        }
    }
    if let Ok((c, pid)) = scanner.finish() {
        // Accepted only from exactly one good connect line and one pid.
        assert_eq!(connects, vec![(c.port, c.key_text().to_owned())]);
        assert!(!pids.is_empty() && pids.iter().all(|&p| p == pid), "pid {pid} from {pids:?}");
        assert!(fed <= MAX_LINES);
    }
}

/// The wrappers' TOML config file.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match WrapperConfig::parse(&text) {
        Ok(_) => {}
        Err(e) => {
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= text.matches('\n').count() + 1, "error line {line} out of range");
            }
            assert!(!e.message.contains('\n'));
            let _ = e.to_string();
        }
    }
}
