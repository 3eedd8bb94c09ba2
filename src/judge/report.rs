//! What a command found, as data (`Report`): the rows the resolver and the history fill in,
//! the findings the judge levels, the verdict of `check`. Renderers (`crate::report`) only
//! read it; nothing here prints.
//!
//! The JSON form is the versioned schema documented in the README: bump
//! `SCHEMA_VERSION` when a field changes meaning or disappears (adding fields is fine).

use serde::Serialize;

use crate::history::compare::Comparison;
use crate::model::{CommitId, Digest, Evidence, Finding, Level};
use crate::resolve::{Deployment, Instance};

/// The version of the JSON schema (`schema_version`).
pub const SCHEMA_VERSION: u32 = 1;

/// What the GitOps repository declares for a row's service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Declared {
    pub image: String,
    pub commit: Option<CommitId>,
    pub origin: String,
}

/// What the other sources say about one running deployment (`crosscheck` decides it; a
/// row takes it with `Row::agree`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agreement {
    /// What the GitOps repository declares for its service, when it declares it.
    pub declared: Option<Declared>,
    /// What version stores and endpoints report for it, as evidence.
    pub reported: Vec<Evidence>,
    /// `sources-disagree`, when the sources name different commits.
    pub finding: Option<Finding>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub command: String,
    /// The repository audited; in a fleet, the first of `repositories`.
    pub repository: String,
    /// A fleet's repositories (empty when only one is audited): each row names its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<Repository>,
    pub mainline: Mainline,
    pub shallow: bool,
    /// False when something could not be observed; the findings say what.
    pub complete: bool,
    pub results: Vec<Row>,
    /// Findings about the whole run (a shallow clone, an empty environment).
    pub findings: Vec<Finding>,
    /// The Docker daemons audited: host, context and what chose them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub daemons: Vec<crate::observe::Daemon>,
    /// Declared (GitOps) state, compared with the mainline like what runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub declared: Vec<Row>,
    /// `prodiff check` only: the verdict and what changed since the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// `snapshot` only: when this was observed (what `record --import` places it by).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What the HTML page needs beyond the data (when, promotion order, links).
    #[serde(skip)]
    pub presentation: Presentation,
}

/// What a page needs beyond the findings: when the audit ran, the promotion order and
/// where commits and tickets link to. Not part of the JSON schema.
#[derive(Clone, Debug, Default)]
pub struct Presentation {
    /// When the audit ran ("now" of the run, `PRODIFF_NOW` when pinned).
    pub generated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Environments in promotion order (`staging` before `production`).
    pub promotion: Vec<String>,
    pub links: crate::config::report::Links,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub passed: bool,
    pub denied: usize,
    pub warned: usize,
    /// The baseline file compared with, if any.
    pub baseline: Option<String>,
    /// A unified diff of the audited state, baseline to now (empty without a baseline).
    pub changes: String,
}

/// One repository of a fleet audit.
#[derive(Debug, Clone, Serialize)]
pub struct Repository {
    /// What rows call it (the clone's directory name).
    pub name: String,
    pub path: String,
    /// Its mainline; null when it could not be read (a `repository-unavailable` finding).
    pub mainline: Option<Mainline>,
    pub shallow: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mainline {
    pub name: String,
    pub commit: CommitId,
}

impl Mainline {
    /// From the `(name, commit)` pair an audit holds.
    pub fn of((name, commit): &(String, CommitId)) -> Mainline {
        Mainline { name: name.clone(), commit: commit.clone() }
    }
}

/// One service's image in one environment, resolved and compared.
#[derive(Debug, Serialize)]
pub struct Row {
    pub environment: String,
    pub service: String,
    /// The repository the service is built from, when the audit spans several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
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
    /// How this row stands against its predecessor in the promotion path, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// What the GitOps repository declares for this service here, when it is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<Declared>,
    pub findings: Vec<Finding>,
    /// `status` with a deployment ledger: when the ledger saw this state begin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed: Option<Deployed>,
}

/// When the ledger saw a row's state begin: exactly (a replica's start), or between two
/// runs, or no later than its first sighting.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub exact: Option<chrono::DateTime<chrono::Utc>>,
    pub after: Option<chrono::DateTime<chrono::Utc>>,
    pub by: chrono::DateTime<chrono::Utc>,
    /// For people: `2d 4h ago`, `1d–2d ago`, `over 3d ago`.
    pub age: String,
}

/// The same service in the environment before this one in `promotion`.
#[derive(Debug, Clone, Serialize)]
pub struct Promotion {
    pub environment: String,
    pub commit: CommitId,
    /// The predecessor's commits this row does not run (cherry-picks excluded).
    pub behind: usize,
    /// When the oldest of those landed.
    pub oldest_behind: Option<chrono::DateTime<chrono::Utc>>,
    /// Commits this row runs that the predecessor does not (it never ran them, as far as
    /// its current state tells).
    pub ahead: Vec<crate::model::CommitRecord>,
    /// The predecessor runs exactly this commit.
    pub same: bool,
    /// The predecessor's commit contains this one.
    pub contains: bool,
    /// When the predecessor's current deployment started (its earliest replica).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl Row {
    pub fn new(d: Deployment, cmp: Option<Comparison>) -> Row {
        let mut findings = d.findings;
        if let Some(c) = &cmp {
            findings.extend(c.findings(&d.environment, &d.service));
        }
        let (target, target_commit, merge_base, behind, ahead) = match cmp {
            Some(c) => (Some(c.target), Some(c.target_commit), c.merge_base, Some(c.behind), Some(c.ahead)),
            None => (None, None, None, None, None),
        };
        Row {
            environment: d.environment,
            service: d.service,
            repository: None,
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
            promotion: None,
            declared: None,
            findings,
            deployed: None,
        }
    }

    /// Puts what the other sources say (`crosscheck`) on this row.
    pub fn agree(&mut self, a: Agreement) {
        self.declared = a.declared;
        self.evidence.extend(a.reported);
        self.findings.extend(a.finding);
    }

    /// When this image was deployed here: its earliest replica's start.
    pub fn deployed_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.instances.iter().filter_map(|i| i.started_at).min()
    }

    /// Commits in the target and not running in any form; None when unknown.
    pub fn missing_count(&self) -> Option<usize> {
        self.behind.as_ref().map(|b| b.iter().filter(|c| c.equivalent.is_none()).count())
    }

    /// The target, how many of its commits are not running, and when the oldest of them
    /// landed; None when unknown.
    pub fn lag(&self) -> Option<(String, usize, Option<chrono::DateTime<chrono::Utc>>)> {
        let behind = self.behind.as_ref()?;
        let missing: Vec<_> = behind.iter().filter(|c| c.equivalent.is_none()).collect();
        let oldest = missing.iter().filter_map(|c| chrono::DateTime::parse_from_rfc3339(&c.committed_at).ok()).min();
        Some((self.target.clone()?, missing.len(), oldest.map(|t| t.with_timezone(&chrono::Utc))))
    }

    #[cfg(test)]
    pub fn bare(environment: &str, service: &str, findings: Vec<Finding>) -> Row {
        Row {
            environment: environment.into(),
            service: service.into(),
            repository: None,
            image: "img".into(),
            digests: vec![],
            instances: vec![],
            commit: None,
            evidence: vec![],
            target: None,
            target_commit: None,
            merge_base: None,
            behind: None,
            ahead: None,
            promotion: None,
            declared: None,
            findings,
            deployed: None,
        }
    }

    /// Running commits the target lacks in any form (merges excluded); None when unknown.
    pub fn drift_count(&self) -> Option<usize> {
        self.ahead.as_ref().map(|a| a.iter().filter(|c| !c.merge && c.equivalent.is_none()).count())
    }
}

/// The numbers a diff heads one side of a row with, the same `status` counts: the commits
/// counted (behind: not running in any form; ahead: drift, merges apart), and what is
/// listed but not counted ("1 already running as a cherry-pick, =").
pub(crate) fn side_counts(list: &[crate::model::CommitRecord], ahead: bool, target: &str) -> (usize, String) {
    let same = list.iter().filter(|c| c.equivalent.is_some()).count();
    let merges = if ahead { list.iter().filter(|c| c.merge && c.equivalent.is_none()).count() } else { 0 };
    let mut apart = Vec::new();
    if same > 0 {
        apart.push(match ahead {
            false => {
                format!("{same} already running as {}, =", if same == 1 { "a cherry-pick" } else { "cherry-picks" })
            }
            true if same == 1 => format!("1 cherry-pick of a {target} commit, ="),
            true => format!("{same} cherry-picks of {target} commits, ="),
        });
    }
    if merges > 0 {
        apart.push(format!("{merges} merge{}, M", if merges == 1 { "" } else { "s" }));
    }
    let note = if apart.is_empty() { String::new() } else { format!("not counted: {}", apart.join("; ")) };
    (list.len() - same - merges, note)
}

impl Report {
    /// Passes every finding's message, hint and key through the redaction layer, before a
    /// baseline matches keys and before anything is rendered (the output writer redacts
    /// again; keys must be redacted in memory so that baselines written earlier match).
    pub fn redact(&mut self) {
        let rows = self.results.iter_mut().chain(self.declared.iter_mut());
        for f in self.findings.iter_mut().chain(rows.flat_map(|r| r.findings.iter_mut())) {
            f.message = crate::redact::text(&f.message);
            f.key = crate::redact::text(&f.key);
            f.hint = f.hint.as_deref().map(crate::redact::text);
        }
    }

    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().chain(self.results.iter().flat_map(|r| r.findings.iter()))
    }

    pub fn count(&self, level: Level) -> usize {
        self.all_findings().filter(|f| f.level == level).count()
    }

    /// The exit code this report earns: 1 when a finding is denied, else 3 when something
    /// could not be observed (unless that is allowed), else 0. The one place findings
    /// become an exit code.
    pub fn exit_code(&self, allow_incomplete: bool) -> u8 {
        exit_code(self.all_findings(), self.complete, allow_incomplete)
    }
}

/// The exit code every judged command earns (status, diff, check, plan, rollback): 1 when a
/// finding is denied, else 3 when something could not be observed (unless that is allowed),
/// else 0. The one place findings become an exit code.
pub fn exit_code<'a>(findings: impl IntoIterator<Item = &'a Finding>, complete: bool, allow_incomplete: bool) -> u8 {
    if findings.into_iter().any(|f| f.level == Level::Deny) {
        crate::exit::VIOLATION
    } else if !complete && !allow_incomplete {
        crate::exit::INCOMPLETE
    } else {
        crate::exit::CLEAN
    }
}

/// Whether none of these findings says that something could not be observed.
pub fn is_complete<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> bool {
    !findings.into_iter().any(|f| f.code.is_incomplete())
}
