//! moshd: one public UDP port for every mosh session on a host.
//!
//! The sans-IO core (`router`, `registration`, `rate`; the table parsing in
//! `mosh_mux_proto::proc_net`) decides;
//! the tokio shell (`daemon` and friends) moves bytes and reads /proc.
//! Running it as a service: `cli` (the command line), `config` (the file),
//! `paths` and `settings` (defaults and precedence), all pure; `logging`,
//! `notify` (systemd), `status_cmd` and `check_config` around them.

pub mod check_config;
pub mod cli;
pub mod config;
pub mod limits;
pub mod logging;
pub mod notify;
pub mod paths;
pub mod settings;
pub mod proc_net;
pub mod rate;
pub mod registration;
pub mod router;
pub mod session;
pub mod sock_diag;
pub mod control_budget;
pub mod control_server;
pub mod daemon;
pub mod epoll_set;
pub mod facts;
pub mod inner_poll;
pub mod pidwatch;
pub mod privileges;
pub mod state_file;
pub mod status_cmd;
