//! Sources that should agree: what runs (containers, pods, inventories), what a GitOps
//! repository declares, and what version stores report. Each row gets the declared image and
//! the reported commits beside its own, and a `sources-disagree` finding when they name
//! different commits, saying which source says what. Pure: commits are resolved before.

use crate::judge::report::{Declared, Row};
use crate::model::{Code, CommitId, Evidence, EvidenceKind, Finding};
use crate::observe::versions::Reported;
use crate::resolve::Deployment;

/// Attaches declared and reported state to `rows`; returns findings for declared or
/// reported services that nothing runs.
pub fn attach(rows: &mut [Row], declared: &[Deployment], reported: &[(Reported, Option<CommitId>)]) -> Vec<Finding> {
    for row in rows.iter_mut() {
        let same = |env: &str, service: &str| env == row.environment && service == row.service;
        row.declared = declared.iter().find(|d| same(&d.environment, &d.service)).map(|d| Declared {
            image: d.image.to_string(),
            commit: d.commit.clone(),
            origin: d.instances.first().map(|i| i.origin.clone()).unwrap_or_default(),
        });
        for (r, commit) in reported.iter().filter(|(r, _)| same(&r.environment, &r.service)) {
            row.evidence.push(Evidence {
                kind: EvidenceKind::Reported,
                name: r.origin.clone(),
                value: r.value.clone(),
                commit: commit.clone(),
            });
        }
        if let Some(f) = disagreement(row) {
            row.findings.push(f);
        }
    }
    let runs = |env: &str, service: &str| rows.iter().any(|r| r.environment == env && r.service == service);
    let mut out = Vec::new();
    for d in declared.iter().filter(|d| !runs(&d.environment, &d.service)) {
        let origin = d.instances.first().map(|i| i.origin.as_str()).unwrap_or("");
        out.push(
            Finding::new(
                Code::SourcesDisagree,
                format!("{origin} declares {}, but no source shows it running", d.image),
            )
            .key(format!("declared:{}", d.image))
            .at(&d.environment, &d.service),
        );
    }
    for (r, _) in reported.iter().filter(|(r, _)| !runs(&r.environment, &r.service)) {
        out.push(
            Finding::new(
                Code::SourcesDisagree,
                format!("{} reports {}, but no source shows the service running", r.origin, r.value),
            )
            .key(format!("reported:{}", r.value))
            .at(&r.environment, &r.service),
        );
    }
    out
}

/// Which source says which commit, when they do not all say the same.
fn disagreement(row: &Row) -> Option<Finding> {
    let short =
        |c: &Option<CommitId>| c.as_ref().map(|c| c.short().to_string()).unwrap_or_else(|| "no known commit".into());
    let mut claims = vec![(format!("running {}", row.image), row.commit.clone())];
    if let Some(d) = &row.declared {
        claims.push((format!("{} declares {}", d.origin, d.image), d.commit.clone()));
    }
    for e in row.evidence.iter().filter(|e| e.kind == EvidenceKind::Reported) {
        claims.push((format!("{} reports {}", e.name, e.value), e.commit.clone()));
    }
    let first = &claims[0].1;
    if claims.iter().all(|(_, c)| c == first) {
        return None;
    }
    let said: Vec<String> = claims.iter().map(|(who, c)| format!("{who} ({})", short(c))).collect();
    let mut commits: Vec<String> = claims.iter().map(|(_, c)| short(c)).collect();
    commits.sort();
    commits.dedup();
    Some(
        Finding::new(Code::SourcesDisagree, format!("sources disagree: {}", said.join("; ")))
            .hint("sync the environment (or the GitOps repository), then check again")
            .key(commits.join(","))
            .at(&row.environment, &row.service),
    )
}
