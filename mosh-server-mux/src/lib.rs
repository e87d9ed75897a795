//! The part of mosh-server-mux that other crates may use: the scanner of
//! mosh-server's start-up output, so the fuzz targets (tests/fuzz) can drive
//! the very code the binary runs. Everything else stays in the binary.

pub mod scan;
