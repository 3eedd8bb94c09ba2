//! prodiff: what runs in production, which commit is that, and how does it differ from the
//! mainline. Data flows one way:
//!
//! config ─▶ source (what runs) ─▶ resolve (which commit) ─▶ compare (how it differs) ─▶ report
//!
//! `app` holds the short orchestration, one function per command; `main.rs` only parses
//! arguments and maps the outcome to an exit code.

pub mod cache_dir;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diag;
pub mod exit;
pub mod git;
pub mod history;
pub mod judge;
pub mod model;
pub mod observe;
pub mod redact;
pub mod reference;
pub mod report;
pub mod resolve;
