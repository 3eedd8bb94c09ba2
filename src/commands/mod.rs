//! Orchestration: one short function per command. Each loads the audit (config, repository,
//! sources, resolution), compares, builds a `Report`, applies the policy and hands the
//! report to a renderer.

mod init;
mod pipeline;
mod rollback;
mod shell;

pub use pipeline::{annotate_failure, run};
