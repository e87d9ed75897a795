//! moshd: one public UDP port for every mosh session on a host.
//!
//! The sans-IO core (`router`, `registration`, `rate`, `proc_net`) decides;
//! the tokio shell (`daemon` and friends) moves bytes and reads /proc.

pub mod limits;
pub mod proc_net;
pub mod rate;
pub mod registration;
pub mod router;
pub mod session;
pub mod control_budget;
pub mod control_server;
pub mod daemon;
pub mod facts;
pub mod pidwatch;
pub mod privileges;
pub mod state_file;
pub mod status_cmd;
