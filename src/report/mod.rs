//! What a command found, as data (`Report`), and the renderers that print it. Renderers
//! write into any `io::Write`, so tests render into a `Vec<u8>`; nothing else prints.
//!
//! The JSON form is the versioned schema documented in the README: bump
//! `SCHEMA_VERSION` when a field changes meaning or disappears (adding fields is fine).

pub mod json;
pub mod table;

use serde::Serialize;

use crate::compare::Comparison;
use crate::model::{CommitId, Digest, Evidence, Finding, Level};
use crate::resolve::{Deployment, Instance};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub command: String,
    pub repository: String,
    pub mainline: Mainline,
    pub shallow: bool,
    /// False when something could not be observed; the findings say what.
    pub complete: bool,
    pub results: Vec<Row>,
    /// Findings about the whole run (a shallow clone, an empty environment).
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct Mainline {
    pub name: String,
    pub commit: CommitId,
}

/// One service's image in one environment, resolved and compared.
#[derive(Debug, Serialize)]
pub struct Row {
    pub environment: String,
    pub service: String,
    pub image: String,
    pub digests: Vec<Digest>,
    pub instances: Vec<Instance>,
    /// Full SHA, or null when nothing resolved.
    pub commit: Option<CommitId>,
    pub evidence: Vec<Evidence>,
    /// What the commit was compared with (`main`, a ref, `env:staging`); null if not compared.
    pub target: Option<String>,
    pub target_commit: Option<CommitId>,
    pub merge_base: Option<CommitId>,
    /// Commits in the target, not running. Null when unknown (unresolved, shallow clone).
    pub behind: Option<Vec<crate::model::CommitRecord>>,
    /// Commits running, not in the target. Null when unknown.
    pub ahead: Option<Vec<crate::model::CommitRecord>>,
    pub findings: Vec<Finding>,
}

impl Row {
    pub fn new(d: Deployment, cmp: Option<Comparison>) -> Row {
        let mut findings = d.findings;
        if let Some(c) = &cmp {
            findings.extend(c.findings(&d.environment, &d.service));
        }
        let (target, target_commit, merge_base, behind, ahead) = match cmp {
            Some(c) => (
                Some(c.target),
                Some(c.target_commit),
                c.merge_base,
                Some(c.behind),
                Some(c.ahead),
            ),
            None => (None, None, None, None, None),
        };
        Row {
            environment: d.environment,
            service: d.service,
            image: d.image.to_string(),
            digests: d.digests,
            instances: d.instances,
            commit: d.commit,
            evidence: d.evidence,
            target,
            target_commit,
            merge_base,
            behind,
            ahead,
            findings,
        }
    }

    /// Commits in the target and not running in any form; None when unknown.
    pub fn missing_count(&self) -> Option<usize> {
        self.behind
            .as_ref()
            .map(|b| b.iter().filter(|c| c.equivalent.is_none()).count())
    }

    /// Running commits the target lacks in any form (merges excluded); None when unknown.
    pub fn drift_count(&self) -> Option<usize> {
        self.ahead.as_ref().map(|a| {
            a.iter()
                .filter(|c| !c.merge && c.equivalent.is_none())
                .count()
        })
    }
}

impl Report {
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .chain(self.results.iter().flat_map(|r| r.findings.iter()))
    }

    /// The exit code this report earns: 1 when a finding is denied, else 3 when something
    /// could not be observed, else 0. The one place findings become an exit code.
    pub fn exit_code(&self) -> u8 {
        if self.all_findings().any(|f| f.level == Level::Deny) {
            crate::exit::VIOLATION
        } else if !self.complete {
            crate::exit::INCOMPLETE
        } else {
            crate::exit::CLEAN
        }
    }
}
