//! Baselines: the JSON report of an earlier run (`prodiff snapshot`). Findings it already
//! had are accepted (lowered to `allow`, marked as such); only new ones count. The change
//! in audited state between the two runs is shown as a unified diff.
//!
//! Findings are matched by identity (code, environment, service, key), never by message:
//! messages carry counts that move every day.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::judge::report::{Report, SCHEMA_VERSION};
use crate::model::Level;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("baseline {path} is not a prodiff report: {message}")]
    Invalid { path: PathBuf, message: String },
}

type Identity = (String, Option<String>, Option<String>, String);

pub struct Baseline {
    path: PathBuf,
    known: HashSet<Identity>,
    state: Vec<String>,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BaselineError::Read { path: path.into(), message: e.to_string() })?;
        Baseline::parse(&text, path)
    }

    /// `load` on text already read (`path` names it in errors and notes).
    pub fn parse(text: &str, path: &Path) -> Result<Baseline, BaselineError> {
        let invalid = |message: String| BaselineError::Invalid { path: path.into(), message };
        let v: Value = serde_json::from_str(text).map_err(|e| invalid(crate::redact::clip_quoted(&e.to_string())))?;
        match v.get("schema_version").and_then(Value::as_u64) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            Some(n) => return Err(invalid(format!("schema_version {n}, this prodiff reads {SCHEMA_VERSION}"))),
            None => return Err(invalid("no schema_version (write one with `prodiff snapshot`)".into())),
        }
        let known = findings(&v).filter_map(identity).collect();
        Ok(Baseline { path: path.into(), known, state: state_lines(&v) })
    }

    /// Lowers findings the baseline already had to `allow`.
    pub fn apply(&self, report: &mut Report) {
        let note = format!("in baseline {}", self.path.display());
        for f in report.findings.iter_mut().chain(report.results.iter_mut().flat_map(|r| r.findings.iter_mut())) {
            let id = (f.code.to_string(), f.environment.clone(), f.service.clone(), f.key.clone());
            if f.level > Level::Allow && self.known.contains(&id) {
                f.level = Level::Allow;
                f.suppressed = Some(note.clone());
            }
        }
    }

    /// A unified diff of the audited state from the baseline to `report`; empty if equal.
    pub fn changes(&self, report: &Report) -> String {
        let now = serde_json::to_value(report).map(|v| state_lines(&v)).unwrap_or_default();
        let (old, new) = (self.state.join("\n") + "\n", now.join("\n") + "\n");
        if old == new {
            return String::new();
        }
        similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(2)
            .header(&format!("baseline {}", self.path.display()), "now")
            .to_string()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn findings(v: &Value) -> impl Iterator<Item = &Value> {
    let top = v["findings"].as_array().into_iter().flatten();
    let rows =
        v["results"].as_array().into_iter().flatten().flat_map(|r| r["findings"].as_array().into_iter().flatten());
    top.chain(rows)
}

fn identity(f: &Value) -> Option<Identity> {
    let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
    Some((s("code")?, s("environment"), s("service"), s("key").unwrap_or_default()))
}

/// One line per row and per finding: what a reviewer wants to see change.
fn state_lines(v: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for r in v["results"].as_array().into_iter().flatten() {
        let place = format!("{}/{}", r["environment"].as_str().unwrap_or(""), r["service"].as_str().unwrap_or(""));
        // A baseline is input: cut by characters, never inside one.
        let commit: String = r["commit"].as_str().unwrap_or("unresolved").chars().take(10).collect();
        let count = |k: &str| r[k].as_array().map(|a| a.len().to_string()).unwrap_or_else(|| "?".into());
        lines.push(format!(
            "{place}  {}  {commit}  behind {}  ahead {}",
            r["image"].as_str().unwrap_or(""),
            count("behind"),
            count("ahead")
        ));
        for f in r["findings"].as_array().into_iter().flatten() {
            if f["code"] != "behind-mainline" {
                lines.push(format!(
                    "{place}  {}  {}",
                    f["code"].as_str().unwrap_or(""),
                    f["message"].as_str().unwrap_or("")
                ));
            }
        }
    }
    for f in v["findings"].as_array().into_iter().flatten() {
        lines.push(format!("{}  {}", f["code"].as_str().unwrap_or(""), f["message"].as_str().unwrap_or("")));
    }
    lines
}
