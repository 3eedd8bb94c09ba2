//! prodiff: what runs in production, which commit is that, and how does it differ from the
//! mainline. Data flows one way:
//!
//! config ─▶ source (what runs) ─▶ resolve (which commit) ─▶ compare (how it differs) ─▶ report
//!
//! `app` holds the short orchestration, one function per command; `main.rs` only parses
//! arguments and maps the outcome to an exit code.

pub mod app;
pub mod baseline;
pub mod cli;
pub mod compare;
pub mod config;
pub mod contains;
pub mod crosscheck;
pub mod diag;
pub mod enrich;
pub mod exit;
pub mod git;
pub mod history;
pub mod init;
pub mod model;
pub mod policy;
pub mod redact;
pub mod reference;
pub mod registry;
pub mod release;
pub mod report;
pub mod resolve;
pub mod serve;
pub mod source;
pub mod tickets;
