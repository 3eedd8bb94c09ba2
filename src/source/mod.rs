//! Sources of "what runs". Each one turns some outside description of an environment into
//! `Workload`s and nothing more: no resolution, no comparison.

pub mod inventory;

use std::path::PathBuf;

use crate::model::{Finding, Workload};

/// What one source saw. A host that could not be reached is a finding (`source-unreachable`,
/// naming it), not an error: the other sources are still audited.
#[derive(Debug, Default)]
pub struct Observation {
    pub workloads: Vec<Workload>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read inventory {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
}
