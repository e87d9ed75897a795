//! What moshd and the two mosh-mux wrappers must agree on, byte for byte.
//!
//! Everything here is pure: no sockets, no clock, no files (except the
//! opt-in `udp` feature's `udp_ecn`, the one piece of socket code moshd and
//! the client relay share). The codecs are covered by unit and property
//! tests next to them and by the test vectors in docs/PROTOCOL.md, which
//! `tests/vectors.rs` checks.

pub mod config;
pub mod connect_line;
pub mod control;
pub mod header;
pub mod port;
pub mod proc_net;
pub mod sid;
#[cfg(feature = "udp")]
pub mod udp_ecn;

pub use header::{classify, encode_header, Datagram, Notice, HEADER_LEN, MAGIC_V1};
pub use port::{format_port, parse_port, PortMode};
pub use sid::{KeyError, SessionKey, Sid};
