//! prodiff: what runs in production, which commit is that, and how does it differ from the
//! mainline. The folders are the stages; data flows one way, and `tests/layers.rs` fails on
//! any import against it or any cycle:
//!
//! ```text
//! ground     model, reference, redact, exit, diag, cache_dir: usable by all
//! 1 config   prodiff.toml -> Config; each stage's section types as plain data; fleet units
//! - git      the repository behind owned types (read by observe, resolve, history)
//! 2 observe  what runs: docker, kubernetes, inventory, declared, versions, registry, enrich
//! 3 resolve  workloads -> deployments -> commits, with evidence; workload -> repository
//! 4 history  how a commit differs from a target: compare, contains, tickets, release
//! 5 judge    the Report data, filled in: policy levels, cross-checks, baseline
//!   ledger   (room) deployments over time: after judge, before report
//! 6 report   renderers only: table, json, markdown, github, junit, workflows (html too)
//!   serve    the live dashboard (publish: a room): after report
//! 7 commands one file per command, shared steps in commands/pipeline.rs, many repositories
//!            in commands/fleet.rs; cli.rs: clap types
//! ```
//!
//! `main.rs` only parses arguments, builds the runtime and maps the outcome to an exit code.

pub mod cache_dir;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diag;
pub mod exit;
pub mod git;
pub mod history;
pub mod judge;
pub mod ledger;
pub mod model;
pub mod observe;
pub mod publish;
pub mod redact;
pub mod reference;
pub mod report;
pub mod resolve;
pub mod serve;
