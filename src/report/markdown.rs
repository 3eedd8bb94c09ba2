//! Markdown: for pull-request comments, release notes and GitHub job summaries.

use std::io::{self, Write};

use super::{Report, Row, View};
use crate::model::{CommitRecord, Level};

pub fn render(report: &Report, view: View, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "## prodiff {}\n", report.command)?;
    if report.repositories.is_empty() {
        writeln!(
            out,
            "Repository `{}`, mainline `{}` at `{}`{}.\n",
            report.repository,
            report.mainline.name,
            report.mainline.commit.short(),
            if report.shallow { " (shallow clone: no counts)" } else { "" }
        )?;
    } else {
        for r in &report.repositories {
            let mainline = match &r.mainline {
                Some(m) => format!("mainline `{}` at `{}`", m.name, m.commit.short()),
                None => "unavailable".into(),
            };
            let shallow = if r.shallow { " (shallow clone: no counts)" } else { "" };
            writeln!(out, "- Repository **{}** `{}`, {mainline}{shallow}", cell(&r.name), r.path)?;
        }
        writeln!(out)?;
    }
    for d in &report.daemons {
        writeln!(out, "- {} `{}`: `{}`", d.kind, d.environment, d.describe())?;
    }
    if !report.daemons.is_empty() {
        writeln!(out)?;
    }
    if let Some(c) = &report.check {
        let verdict = if c.passed { "✅ **Check passed**" } else { "❌ **Check failed**" };
        writeln!(
            out,
            "{verdict}: {} denied, {} warning{}.\n",
            c.denied,
            c.warned,
            if c.warned == 1 { "" } else { "s" }
        )?;
    }
    match view {
        View::Status => status_table(report, out)?,
        View::Diff => diffs(report, out)?,
    }
    findings(report, out)?;
    if let Some(c) = report.check.as_ref().filter(|c| !c.changes.is_empty()) {
        writeln!(out, "\n### Changes since the baseline\n\n```diff\n{}```", c.changes)?;
    }
    Ok(())
}

fn status_table(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let fleet = !report.repositories.is_empty();
    let (repo_head, repo_rule) = if fleet { (" Repository |", " --- |") } else { ("", "") };
    writeln!(
        out,
        "| Environment | Service |{repo_head} Image | Replicas | Commit | Via | Behind | Ahead | Findings |"
    )?;
    writeln!(out, "| --- | --- |{repo_rule} --- | ---: | --- | --- | ---: | ---: | --- |")?;
    for r in &report.results {
        let repo = match fleet {
            true => format!(" {} |", cell(r.repository.as_deref().unwrap_or("-"))),
            false => String::new(),
        };
        let count = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        let commit = r.commit.as_ref().map(|c| format!("`{}`", c.short())).unwrap_or_else(|| "unresolved".into());
        let mut codes: Vec<String> =
            r.findings.iter().filter(|f| f.level > Level::Allow).map(|f| format!("`{}`", f.code)).collect();
        codes.dedup();
        let codes = if codes.is_empty() { "✅".to_string() } else { codes.join(" ") };
        writeln!(
            out,
            "| {} | {} |{repo} `{}` | {} | {commit} | {} | {} | {} | {codes} |",
            cell(&r.environment),
            cell(&r.service),
            cell(&r.image),
            r.instances.len(),
            super::table::via(r),
            count(r.missing_count()),
            count(r.drift_count())
        )?;
    }
    Ok(())
}

fn diffs(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for r in &report.results {
        diff_section(r, out)?;
    }
    Ok(())
}

fn diff_section(r: &Row, out: &mut dyn Write) -> io::Result<()> {
    let commit = r.commit.as_ref().map(|c| c.short().to_string()).unwrap_or_else(|| "unresolved".into());
    let repo = r.repository.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
    writeln!(out, "### {} / {}{repo}\n\n`{}` runs `{commit}`.\n", r.environment, r.service, r.image)?;
    let (Some(behind), Some(ahead), Some(target)) = (&r.behind, &r.ahead, &r.target) else {
        return writeln!(out, "No commit lists: see the findings.\n");
    };
    let apart =
        |note: String| if note.is_empty() { note } else { format!("; {}", note.replace(", =", "").replace(", M", "")) };
    let (n, note) = super::side_counts(behind, false, target);
    writeln!(out, "**Not running yet** ({n} in `{target}`{}):\n", apart(note))?;
    commits(behind, out)?;
    let (n, note) = super::side_counts(ahead, true, target);
    writeln!(out, "**Running but not in `{target}`** ({n}{}):\n", apart(note))?;
    commits(ahead, out)
}

fn commits(list: &[CommitRecord], out: &mut dyn Write) -> io::Result<()> {
    if list.is_empty() {
        writeln!(out, "- none")?;
    }
    for c in list {
        let tickets = if c.tickets.is_empty() { String::new() } else { format!(" ({})", c.tickets.join(", ")) };
        let note = match (&c.equivalent, c.merge) {
            (Some(e), _) => format!(" — same change as `{}`", e.short()),
            (None, true) => " — merge".to_string(),
            _ => String::new(),
        };
        writeln!(out, "- `{}` {}{tickets}{note}", c.sha.short(), cell(&c.subject))?;
    }
    writeln!(out)
}

fn findings(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let shown: Vec<_> = super::table::dedup(report.all_findings().filter(|f| f.level > Level::Allow));
    if shown.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n### Findings\n")?;
    for f in shown {
        let place = super::table::place(f);
        writeln!(out, "- **{}** `{}` {place}{}", f.level, f.code, cell(&f.message))?;
        if let Some(h) = &f.hint {
            writeln!(out, "  _{}_", cell(h))?;
        }
    }
    Ok(())
}

/// Table cells and list items must not break the markdown around them.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
