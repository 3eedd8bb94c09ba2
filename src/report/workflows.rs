//! Reports of the release-workflow commands (`contains`, `plan`, `rollback`): their data,
//! serialised as is for `--format json`, and their table and markdown renderings.

use std::io::{self, Write};

use serde::Serialize;

use super::{Format, Mainline};
use crate::history::contains::{Presence, State};
use crate::model::{CommitId, CommitRecord, Finding};

/// `prodiff contains`: one entry per query.
#[derive(Debug, Serialize)]
pub struct ContainsReport {
    pub schema_version: u32,
    pub command: String,
    pub repository: String,
    pub mainline: Mainline,
    /// False when something could not be observed: an answer is `unknown`, or a finding
    /// (an unreachable source or registry, a shallow clone) says what is missing.
    pub complete: bool,
    pub queries: Vec<QueryAnswer>,
    /// Findings about the run (what could not be observed), as in `status`.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct QueryAnswer {
    /// As asked: a SHA or a ticket key.
    pub query: String,
    /// In a fleet: the repository where it was found (a ticket may be in several: one
    /// answer each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The commits it stands for (one for a SHA; every commit mentioning a ticket).
    pub commits: Vec<CommitRecord>,
    pub answers: Vec<Answer>,
}

/// One service in one environment.
#[derive(Debug, Serialize)]
pub struct Answer {
    pub environment: String,
    pub service: String,
    pub state: State,
    /// Each distinct image the service runs there.
    pub running: Vec<Running>,
}

#[derive(Debug, Serialize)]
pub struct Running {
    pub image: String,
    pub commit: Option<CommitId>,
    pub replicas: usize,
    pub state: State,
    /// Per queried commit (that concerns this service): where it stands.
    pub commits: Vec<(CommitId, Presence)>,
}

pub fn render_contains(report: &ContainsReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => super::json::to_writer(report, out),
        Format::Markdown => contains_markdown(report, out),
        Format::Github => {
            super::github::annotate(report.findings.iter(), out)?;
            for q in &report.queries {
                let places: Vec<String> = q
                    .answers
                    .iter()
                    .map(|a| format!("{}/{} {}", a.environment, a.service, a.state.describe()))
                    .collect();
                let summary =
                    if places.is_empty() { "no service's paths include it".into() } else { places.join("; ") };
                super::github::notice(&format!("prodiff contains {}{}", q.query, in_repo(q)), &summary, out)?;
            }
            contains_table(report, out)
        }
        // JUnit and HTML are refused for this command before it runs (app::run).
        Format::Table | Format::Junit | Format::Html => contains_table(report, out),
    }
}

/// ` in calendar`: the repository a query was answered in, in a fleet.
fn in_repo(q: &QueryAnswer) -> String {
    q.repository.as_ref().map(|r| format!(" in {r}")).unwrap_or_default()
}

fn contains_table(report: &ContainsReport, out: &mut dyn Write) -> io::Result<()> {
    for q in &report.queries {
        let n = q.commits.len();
        writeln!(out, "{}{}: {n} commit{}", q.query, in_repo(q), if n == 1 { "" } else { "s" })?;
        for c in &q.commits {
            writeln!(out, "  {}  {}", c.sha.short(), c.subject)?;
        }
        let mut rows = vec![["ENVIRONMENT", "SERVICE", "STATE", "RUNNING"].map(String::from).to_vec()];
        rows.extend(q.answers.iter().map(|a| {
            vec![a.environment.clone(), a.service.clone(), a.state.describe().to_string(), running(&a.running)]
        }));
        writeln!(out)?;
        if q.answers.is_empty() {
            writeln!(out, "No service's paths include these commits.")?;
        } else {
            super::table::write_table(&rows, out)?;
        }
        writeln!(out)?;
    }
    run_footer(&report.findings, report.complete, out)
}

fn contains_markdown(report: &ContainsReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "## prodiff contains\n")?;
    for q in &report.queries {
        writeln!(out, "### {}{}\n", q.query, in_repo(q))?;
        for c in &q.commits {
            writeln!(out, "- `{}` {}", c.sha.short(), c.subject)?;
        }
        writeln!(out, "\n| Environment | Service | State | Running |\n| --- | --- | --- | --- |")?;
        for a in &q.answers {
            writeln!(out, "| {} | {} | {} | {} |", a.environment, a.service, a.state.describe(), running(&a.running))?;
        }
        writeln!(out)?;
    }
    md_findings(&report.findings, out)?;
    md_incomplete(report.complete, out)
}

/// `5d09a04506 ×2`, `adb1d1c256 (as 1a2b3c4d5e)`, `unresolved`.
fn running(images: &[Running]) -> String {
    let parts: Vec<String> = images
        .iter()
        .map(|r| {
            let mut s = r.commit.as_ref().map(|c| c.short().to_string()).unwrap_or_else(|| "unresolved".into());
            if r.replicas > 1 {
                s.push_str(&format!(" ×{}", r.replicas));
            }
            let picks: Vec<&str> = r
                .commits
                .iter()
                .filter_map(|(_, p)| match p {
                    Presence::Equivalent(c) => Some(c.short()),
                    _ => None,
                })
                .collect();
            if !picks.is_empty() {
                s.push_str(&format!(" (as {})", picks.join(", ")));
            }
            if images.len() > 1 {
                s.push_str(&format!(": {}", r.state.describe()));
            }
            s
        })
        .collect();
    parts.join("; ")
}

/// `prodiff plan ENV --to TARGET`.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub schema_version: u32,
    pub command: String,
    pub repository: String,
    pub environment: String,
    pub to: String,
    /// False when something could not be observed (a registry that could not be asked, an
    /// unreachable source); the findings say what. Then the exit code is 3 unless denied.
    pub complete: bool,
    pub services: Vec<ServicePlan>,
    /// Findings about the run, not about one plan (an unreachable source, a shallow clone).
    pub findings: Vec<Finding>,
    /// What the HTML page needs beyond the data (when, links).
    #[serde(skip)]
    pub presentation: crate::judge::report::Presentation,
}

#[derive(Debug, Serialize)]
pub struct ServicePlan {
    pub service: String,
    pub image: String,
    pub running: CommitId,
    /// What the target is called for this service (`v1.5.0`, `env:staging`, `main`).
    pub target: String,
    /// With `--to IMAGE_TAG` or `--to GIT_TAG`: the image to deploy, pinned by digest when
    /// the registry was asked.
    pub target_image: Option<String>,
    /// The image tags the target may have, most likely first (a git tag mapped back
    /// through the service's `git_tags`); the registry decides which exists.
    #[serde(skip)]
    pub image_tags: Vec<String>,
    pub target_commit: CommitId,
    /// Deploying the target goes back: it reverts running commits and adds none.
    pub rollback: bool,
    /// In the target, not running: what the deploy ships.
    pub added: Vec<CommitRecord>,
    /// Running, not in the target: what the deploy removes.
    pub removed: Vec<CommitRecord>,
    pub tickets: Vec<String>,
    pub files: Vec<FileChange>,
    pub patches: Vec<FilePatch>,
    pub findings: Vec<crate::model::Finding>,
}

#[derive(Debug, Serialize)]
pub struct FileChange {
    pub path: String,
    pub added: usize,
    pub removed: usize,
    pub risky: bool,
}

#[derive(Debug, Serialize)]
pub struct FilePatch {
    pub path: String,
    pub diff: String,
}

pub fn render_plan(report: &PlanReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => super::json::to_writer(report, out),
        Format::Markdown => plan_markdown(report, out),
        Format::Html => super::html::render_plan(report, out),
        Format::Github => {
            super::github::annotate(
                report.findings.iter().chain(report.services.iter().flat_map(|s| &s.findings)),
                out,
            )?;
            plan_table(report, out)
        }
        Format::Table | Format::Junit => plan_table(report, out),
    }
}

fn plan_table(report: &PlanReport, out: &mut dyn Write) -> io::Result<()> {
    for s in &report.services {
        let kind = if s.rollback { "  (ROLLBACK)" } else { "" };
        writeln!(
            out,
            "{} / {}: {} -> {} ({}){kind}",
            report.environment,
            s.service,
            s.running.short(),
            s.target_commit.short(),
            s.target
        )?;
        if let Some(image) = &s.target_image {
            writeln!(out, "  deploy {image}")?;
        }
        writeln!(out, "\n  Ships {} commit{}:", s.added.len(), plural(s.added.len()))?;
        commit_lines(&s.added, out)?;
        writeln!(out, "\n  Removes {} running commit{}:", s.removed.len(), plural(s.removed.len()))?;
        commit_lines(&s.removed, out)?;
        if !s.tickets.is_empty() {
            writeln!(out, "\n  Tickets: {}", s.tickets.join(", "))?;
        }
        let (adds, dels): (usize, usize) = s.files.iter().fold((0, 0), |(a, d), f| (a + f.added, d + f.removed));
        writeln!(out, "\n  {} file{} changed, +{adds} -{dels}", s.files.len(), plural(s.files.len()))?;
        for f in &s.files {
            let flag = if f.risky { "  RISKY" } else { "" };
            writeln!(out, "    {:>5} {:>5}  {}{flag}", format!("+{}", f.added), format!("-{}", f.removed), f.path)?;
        }
        for p in &s.patches {
            writeln!(out, "\n{}", p.diff.trim_end())?;
        }
        findings_lines(&s.findings, out)?;
        writeln!(out)?;
    }
    run_footer(&report.findings, report.complete, out)
}

fn plan_markdown(report: &PlanReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "## Release plan: {} → {}\n", report.environment, report.to)?;
    for s in &report.services {
        let kind = if s.rollback { " — ⚠️ **rollback**" } else { "" };
        writeln!(
            out,
            "### {}: `{}` → `{}` ({}){kind}\n",
            s.service,
            s.running.short(),
            s.target_commit.short(),
            s.target
        )?;
        writeln!(out, "**Ships {} commit{}**\n", s.added.len(), plural(s.added.len()))?;
        md_commits(&s.added, out)?;
        writeln!(out, "**Removes {} running commit{}**\n", s.removed.len(), plural(s.removed.len()))?;
        md_commits(&s.removed, out)?;
        if !s.tickets.is_empty() {
            writeln!(out, "**Tickets:** {}\n", s.tickets.join(", "))?;
        }
        if !s.files.is_empty() {
            writeln!(out, "| File | + | − | |\n| --- | ---: | ---: | --- |")?;
            for f in &s.files {
                writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    f.path,
                    f.added,
                    f.removed,
                    if f.risky { "⚠️ risky" } else { "" }
                )?;
            }
            writeln!(out)?;
        }
        for p in &s.patches {
            writeln!(out, "```diff\n{}\n```\n", p.diff.trim_end())?;
        }
        md_findings(&s.findings, out)?;
        writeln!(out)?;
    }
    if !report.findings.is_empty() {
        writeln!(out, "**About the run**\n")?;
        md_findings(&report.findings, out)?;
    }
    md_incomplete(report.complete, out)
}

pub(super) fn md_findings(findings: &[Finding], out: &mut dyn Write) -> io::Result<()> {
    for f in findings.iter().filter(|f| f.level > crate::model::Level::Allow) {
        writeln!(out, "- **{}** `{}` {}", f.level, f.code, f.message)?;
    }
    Ok(())
}

pub(super) fn md_incomplete(complete: bool, out: &mut dyn Write) -> io::Result<()> {
    if !complete {
        writeln!(out, "\n> **Incomplete:** {INCOMPLETE}")?;
    }
    Ok(())
}

const INCOMPLETE: &str = "something could not be observed (see the findings): the answer may be missing parts.";

/// The findings about the whole run, and a line saying the answer is incomplete.
pub(super) fn run_footer(findings: &[Finding], complete: bool, out: &mut dyn Write) -> io::Result<()> {
    if findings.iter().any(|f| f.level > crate::model::Level::Allow) {
        writeln!(out, "About the run:")?;
        for f in findings.iter().filter(|f| f.level > crate::model::Level::Allow) {
            writeln!(out, "  {:<5} {}  {}{}", f.level, f.code, super::table::place(f), f.message)?;
            if let Some(h) = &f.hint {
                writeln!(out, "        hint: {h}")?;
            }
        }
        writeln!(out)?;
    }
    if !complete {
        writeln!(out, "Incomplete: {INCOMPLETE}")?;
    }
    Ok(())
}

/// `prodiff rollback ENV`.
#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub schema_version: u32,
    pub command: String,
    pub repository: String,
    pub environment: String,
    /// What the target must not contain, as asked and as commits.
    pub excluded: Vec<Excluded>,
    /// False when something could not be observed (a registry that could not be asked);
    /// the findings say what. Then the exit code is 3 unless denied.
    pub complete: bool,
    pub services: Vec<ServiceRollback>,
    /// Findings about the run, not about one service.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct Excluded {
    pub query: String,
    pub commits: Vec<CommitId>,
}

#[derive(Debug, Serialize)]
pub struct ServiceRollback {
    pub service: String,
    #[serde(skip)]
    pub environment: String,
    pub image: String,
    pub running: CommitId,
    /// False when `--exclude` was given and what runs contains none of the excluded
    /// changes: nothing to roll back, so no candidates are judged.
    pub affected: bool,
    /// Newest first, at most `--limit`.
    pub candidates: Vec<Candidate>,
    /// How many earlier releases there are in all (more than the candidates when `--limit`
    /// left some out).
    pub earlier: usize,
    /// The image reference to deploy, when a candidate qualifies.
    pub recommendation: Option<String>,
    pub findings: Vec<crate::model::Finding>,
}

#[derive(Debug, Serialize)]
pub struct Candidate {
    pub git_tag: String,
    pub image_tag: String,
    pub commit: CommitId,
    pub image: String,
    /// Whether the image is still in the registry: null when no registry was asked.
    pub image_exists: Option<bool>,
    /// What the tag names in the registry now, when it was asked.
    pub digest: Option<crate::model::Digest>,
    /// Running commits this candidate lacks: what rolling back reverts.
    pub reverts: Vec<CommitRecord>,
    /// The candidate's commits that do not run (a release branch's hotfixes): what rolling
    /// back to it adds. Empty for a release the running commit descends from.
    pub adds: Vec<CommitRecord>,
    /// Risky paths rolling back would revert (undoing a migration).
    pub risky_files: Vec<String>,
    /// For each excluded query: whether this candidate contains it, and how.
    pub contains: Vec<(String, Presence)>,
    pub recommended: bool,
}

pub fn render_rollback(report: &RollbackReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => super::json::to_writer(report, out),
        Format::Github => {
            super::github::annotate(
                report.findings.iter().chain(report.services.iter().flat_map(|s| &s.findings)),
                out,
            )?;
            rollback_table(report, false, out)
        }
        // HTML is refused for this command before it runs (app::run).
        Format::Markdown | Format::Table | Format::Junit | Format::Html => {
            rollback_table(report, format == Format::Markdown, out)
        }
    }
}

fn rollback_table(report: &RollbackReport, markdown: bool, out: &mut dyn Write) -> io::Result<()> {
    if markdown {
        writeln!(out, "## Rollback targets for {}\n\n```text", report.environment)?;
    }
    for s in &report.services {
        if !s.affected {
            let queries: Vec<&str> = report.excluded.iter().map(|e| e.query.as_str()).collect();
            writeln!(
                out,
                "{} / {}: runs {} ({}): not affected, it runs none of {}\n",
                report.environment,
                s.service,
                s.running.short(),
                s.image,
                queries.join(", ")
            )?;
            continue;
        }
        writeln!(out, "{} / {}: runs {} ({})\n", report.environment, s.service, s.running.short(), s.image)?;
        let mut header =
            vec!["CANDIDATE".to_string(), "COMMIT".into(), "REVERTS".into(), "ADDS".into(), "RISKY".into()];
        header.extend(report.excluded.iter().map(|e| format!("HAS {}", e.query)));
        header.push("IMAGE".into());
        let mut rows = vec![header];
        for c in &s.candidates {
            let mut row = vec![
                format!("{}{}", if c.recommended { "* " } else { "  " }, c.git_tag),
                c.commit.short().to_string(),
                c.reverts.len().to_string(),
                c.adds.len().to_string(),
                if c.risky_files.is_empty() { "-".into() } else { c.risky_files.join(",") },
            ];
            row.extend(c.contains.iter().map(|(_, p)| match p {
                Presence::Deployed => "yes".to_string(),
                Presence::Equivalent(via) => format!("yes (as {})", via.short()),
                Presence::Missing => "no".to_string(),
                Presence::Unknown => "unknown".to_string(),
            }));
            let failed =
                s.findings.iter().any(|f| f.code == crate::model::Code::RegistryUnreachable && f.key == c.image);
            row.push(match c.image_exists {
                Some(true) => "in registry".into(),
                Some(false) => "MISSING".into(),
                None if failed => "registry unreachable".into(),
                None => "not checked".into(),
            });
            rows.push(row);
        }
        if s.candidates.is_empty() {
            writeln!(out, "  No earlier release.")?;
        } else {
            super::table::write_table(&rows, out)?;
        }
        match &s.recommendation {
            Some(r) => writeln!(out, "\n  Recommended: {r}")?,
            None => writeln!(out, "\n  No candidate qualifies.")?,
        }
        findings_lines(&s.findings, out)?;
        writeln!(out)?;
    }
    run_footer(&report.findings, report.complete, out)?;
    if markdown {
        writeln!(out, "```")?;
    }
    Ok(())
}

fn commit_lines(list: &[CommitRecord], out: &mut dyn Write) -> io::Result<()> {
    for c in list {
        let same = c.equivalent.as_ref().map(|e| format!("  (same change as {})", e.short())).unwrap_or_default();
        writeln!(out, "    {}  {}{same}", c.sha.short(), c.subject)?;
    }
    Ok(())
}

fn md_commits(list: &[CommitRecord], out: &mut dyn Write) -> io::Result<()> {
    if list.is_empty() {
        writeln!(out, "- none")?;
    }
    for c in list {
        let same = c.equivalent.as_ref().map(|e| format!(" — same change as `{}`", e.short())).unwrap_or_default();
        writeln!(out, "- `{}` {}{same}", c.sha.short(), c.subject)?;
    }
    writeln!(out)
}

fn findings_lines(findings: &[crate::model::Finding], out: &mut dyn Write) -> io::Result<()> {
    for f in findings.iter().filter(|f| f.level > crate::model::Level::Allow) {
        writeln!(out, "\n  {:<5} {}  {}", f.level, f.code, f.message)?;
        if let Some(h) = &f.hint {
            writeln!(out, "        hint: {h}")?;
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
