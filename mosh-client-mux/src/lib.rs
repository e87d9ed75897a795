//! The parts of mosh-client-mux, one concept per module.
//!
//! Pure, clock-free pieces (`cli`, `stock_argv`, `mapping`, `locate`,
//! `moshd_addr`, `fail`) decide; `relay`, `outer` and `child` do the I/O.

pub mod child;
pub mod cli;
pub mod fail;
pub mod locate;
pub mod log;
pub mod mapping;
pub mod moshd_addr;
pub mod outer;
pub mod relay;
pub mod stock_argv;
