//! Stage 2, observe: takes the config's environments and gives what runs there — `Workload`s
//! from Docker, Swarm, Kubernetes, inventories and GitOps declarations, version reports from
//! endpoints and stores, and what registries say about the images (`registry`, `enrich`).
//! Imports config, git and the ground floor only.
//!
//! Sources of "what runs". Each one turns some outside description of an environment into
//! `Workload`s and nothing more: no resolution, no comparison.

pub mod declared;
pub mod docker;
pub mod enrich;
pub mod http;
pub mod inventory;
pub mod kubernetes;
pub mod registry;
pub mod replicas;
pub mod versions;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::model::{Finding, Workload};

/// What one source saw. A host that could not be reached is a finding (`source-unreachable`,
/// naming it), not an error: the other sources are still audited.
#[derive(Debug, Default)]
pub struct Observation {
    pub workloads: Vec<Workload>,
    pub findings: Vec<Finding>,
    /// What a GitOps repository declares should run: compared with what runs, not mixed in.
    pub declared: Vec<Workload>,
    /// Commits version stores report per service.
    pub reported: Vec<versions::Reported>,
    /// The Docker daemons asked, so the report can say which were audited.
    pub daemons: Vec<Daemon>,
}

/// A Docker host or Swarm manager that was asked: which daemon, and what chose it (a
/// context, `DOCKER_HOST`, prodiff.toml).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Daemon {
    pub environment: String,
    /// `docker` (containers) or `swarm` (a manager's tasks).
    pub kind: String,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `prodiff.toml`, `DOCKER_HOST`, `DOCKER_CONTEXT`, the config.json path, or `default`.
    pub chosen_by: String,
    pub reachable: bool,
}

impl Daemon {
    /// `tcp://10.0.0.5:2376 (context prod, from DOCKER_CONTEXT)`, for report headers.
    pub fn describe(&self) -> String {
        let mut how = Vec::new();
        if let Some(c) = &self.context {
            how.push(format!("context {c}"));
        }
        how.push(format!("from {}", self.chosen_by));
        if !self.reachable {
            how.push("unreachable".into());
        }
        format!("{} ({})", self.host, how.join(", "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
}

/// A source file's text; `-` is standard input. Text that is not UTF-8 is an error that
/// says where (line, column and byte offset of the first bad byte).
pub(crate) fn read_text(path: &Path) -> Result<String, SourceError> {
    let err = |e: std::io::Error| SourceError::Read { path: path.to_path_buf(), message: e.to_string() };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).map_err(err)?;
    } else {
        bytes = std::fs::read(path).map_err(err)?;
    }
    utf8(bytes).map_err(|(line, column, message)| SourceError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
    })
}

pub(crate) use crate::config::observe::utf8;

/// Parses JSON into `T`; an error names the key path (`workloads[3].labels: …`), the line
/// and column, and quotes at most `redact::EXCERPT` characters of a bad value.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, SourceError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let key = e.path().to_string();
        let inner = invalid_json(path, e.inner());
        match inner {
            SourceError::Invalid { path, line, column, message } if key != "." && !key.is_empty() => {
                SourceError::Invalid { path, line, column, message: format!("{key}: {message}") }
            }
            other => other,
        }
    })
}

/// A JSON error as `file:line:column: message`, long quoted values cut short.
pub(crate) fn invalid_json(path: &Path, e: &serde_json::Error) -> SourceError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let message = crate::redact::clip_quoted(&message);
    SourceError::Invalid { path: PathBuf::from(path), line: e.line(), column: e.column(), message }
}

/// An error with its causes (`client error (Connect): Connection refused`): the clients'
/// own top-level messages rarely say what went wrong.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}
