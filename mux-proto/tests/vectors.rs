//! Checks the test vectors in docs/PROTOCOL.md against the code, reading
//! them from the document itself so the two cannot drift apart.

use mosh_mux_proto::control::{decode_request, decode_response, Request, Response};
use mosh_mux_proto::header::{classify, Datagram, Malformed};
use mosh_mux_proto::port::{parse_port, PortMode};
use mosh_mux_proto::SessionKey;

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md")).unwrap()
}

/// Table rows whose first cell starts with `prefix`, split into cells.
fn rows(prefix: &str) -> Vec<Vec<String>> {
    doc()
        .lines()
        .filter(|l| l.starts_with(&format!("| {prefix}")))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('`').to_owned()).collect())
        .collect()
}

/// Parses "b1 71db447e1de5337e + 24 × `00`"-style hex descriptions.
fn bytes(desc: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for part in desc.split(" + ") {
        let part = part.replace('`', "");
        if let Some((n, b)) = part.split_once(" × ") {
            let n: usize = n.trim().parse().unwrap();
            out.extend(std::iter::repeat_n(u8::from_str_radix(b.trim(), 16).unwrap(), n));
        } else {
            let hex: String = part.split_whitespace().collect();
            for i in (0..hex.len()).step_by(2) {
                out.push(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
            }
        }
    }
    out
}

#[test]
fn sid_vectors() {
    let rows = rows("sid-");
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(SessionKey::parse(&r[1]).unwrap().sid().to_string(), r[2], "{}", r[0]);
    }
}

#[test]
fn header_vectors() {
    let rows = rows("hdr-");
    assert_eq!(rows.len(), 6);
    for r in rows {
        let d = bytes(&r[1]);
        let got = match classify(&d) {
            Ok(Datagram::Framed { sid, payload }) => format!("framed, sid {sid}, payload {} bytes", payload.len()),
            Ok(Datagram::Raw(p)) => format!("raw, {} bytes", p.len()),
            Err(Malformed::UnknownMagic) => "refused: unknown magic".into(),
            Err(Malformed::TooShort) => "refused: too short".into(),
        };
        assert!(r[2].replace('`', "").starts_with(&got), "{}: {} vs {got}", r[0], r[2]);
    }
}

#[test]
fn port_vectors() {
    let rows = rows("port-");
    assert_eq!(rows.len(), 5);
    for r in rows {
        let got = match parse_port(&r[1]) {
            Ok(PortMode::Direct(p)) => format!("direct {p}"),
            Ok(PortMode::Mux(p)) => format!("mux {p}"),
            Err(_) => "refused".into(),
        };
        let want = format!("{} {}", r[2], r[3]).trim().to_owned();
        assert_eq!(got, want, "{}", r[0]);
    }
}

/// A row's "decodes as" cell against what the code made of its line: equal,
/// or, for a failure (the cell starts with `failed`), the cell's cause within
/// the decoder's message, which says more around it.
fn assert_decodes_as(row: &[String], got: &str, failed: &str) {
    match row[2].strip_prefix(failed) {
        Some(cause) => assert!(got.starts_with(failed) && got.contains(cause), "{}: {got}", row[0]),
        None => assert_eq!(got, row[2], "{}", row[0]),
    }
}

#[test]
fn control_vectors() {
    let rows = rows("ctl-");
    assert_eq!(rows.len(), 7);
    for r in rows {
        let got = match decode_request(r[1].as_bytes()) {
            Ok(Request::Register(g)) => format!(
                "register sid {} port {} pid {} ssh_client {}",
                g.sid,
                g.port,
                g.pid,
                g.ssh_client.map_or("none".to_owned(), |a| a.to_string())
            ),
            Ok(Request::Status(_)) => "status".into(),
            Err(e) => format!("refused: {e}"),
        };
        assert_decodes_as(&r, &got, "refused: ");
    }
}

#[test]
fn response_vectors() {
    let rows = rows("rsp-");
    assert_eq!(rows.len(), 4);
    for r in rows {
        let got = match decode_response(r[1].as_bytes()) {
            Ok(Response::Registered { port }) => format!("registered port {port}"),
            Ok(Response::Refused { reason }) => format!("refused reason {reason}"),
            Ok(Response::Status(s)) => format!("status listen {} sessions {}", s.listen.join(","), s.sessions.len()),
            Err(e) => format!("invalid: {e}"),
        };
        assert_decodes_as(&r, &got, "invalid: ");
    }
}
