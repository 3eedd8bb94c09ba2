//! Sources of "what runs". Each one turns some outside description of an environment into
//! `Workload`s and nothing more: no resolution, no comparison.

pub mod inventory;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read inventory {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
}
