//! The human view: an aligned table for `status`, commit lists for `diff`, then the
//! findings with their hints. Plain text, stable order, fits a terminal.
//!
//! Everything here can come from a peer (a service name, a label, a commit subject), so
//! every piece of text is printed on one line with control characters escaped (`clean`),
//! and table cells longer than `MAX_CELL` characters are cut: a newline cannot start a
//! line of its own (in GitHub Actions, a `::command`), and no cell is too wide to align.

use std::borrow::Cow;
use std::io::{self, Write};

use super::{Report, Row, View};
use crate::model::{CommitRecord, Finding, Level};

/// Status or diff view, then the findings, then the check verdict when there is one.
/// `color` adds ANSI colours to levels (the caller decides: terminal, `NO_COLOR`, `--color`).
pub fn render(report: &Report, view: View, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint(color);
    match view {
        View::Status => render_status(report, out)?,
        View::Diff => render_diff(report, out)?,
    }
    findings(report, paint, out)?;
    check(report, paint, out)
}

/// `prodiff status`: one line per service × environment × image.
fn render_status(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    header(report, out)?;
    if report.results.is_empty() {
        writeln!(out, "No workloads found.")?;
    } else {
        let mut rows = vec![["ENVIRONMENT", "SERVICE", "IMAGE", "N", "COMMIT", "VIA", "BEHIND", "AHEAD", "FINDINGS"]
            .map(String::from)
            .to_vec()];
        rows.extend(report.results.iter().map(status_cells));
        // With a deployment ledger, how long each state has been running.
        if report.results.iter().any(|r| r.deployed.is_some()) {
            rows[0].insert(4, "DEPLOYED".into());
            for (cells, r) in rows[1..].iter_mut().zip(&report.results) {
                cells.insert(4, r.deployed.as_ref().map(|d| d.age.clone()).unwrap_or_else(|| "-".into()));
            }
        }
        with_repository(report, &mut rows);
        write_table(&rows, out)?;
    }
    if !report.declared.is_empty() {
        writeln!(out, "\nDeclared (GitOps):")?;
        let mut rows =
            vec![["ENVIRONMENT", "SERVICE", "IMAGE", "COMMIT", "BEHIND", "AHEAD", "SOURCE"].map(String::from).to_vec()];
        rows.extend(report.declared.iter().map(|r| {
            let cells = status_cells(r);
            let origin =
                r.instances.first().map(|i| i.origin.trim_start_matches("declared ").to_string()).unwrap_or_default();
            vec![
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[4].clone(),
                cells[6].clone(),
                cells[7].clone(),
                origin,
            ]
        }));
        with_repository_of(report, &report.declared, &mut rows);
        write_table(&rows, out)?;
    }
    Ok(())
}

/// In a fleet, a REPO column after SERVICE (header row first, then one per row).
fn with_repository(report: &Report, rows: &mut [Vec<String>]) {
    with_repository_of(report, &report.results, rows)
}

fn with_repository_of(report: &Report, of: &[Row], rows: &mut [Vec<String>]) {
    if report.repositories.is_empty() {
        return;
    }
    rows[0].insert(2, "REPO".into());
    for (cells, row) in rows[1..].iter_mut().zip(of) {
        cells.insert(2, row.repository.clone().unwrap_or_else(|| "-".into()));
    }
}

/// ` [repository calendar]` after a row's heading, in a fleet.
pub(super) fn in_repository(row: &Row) -> String {
    row.repository.as_ref().map(|r| format!("  [repository {r}]")).unwrap_or_default()
}

/// `prodiff diff`: for each row, the exact commits in both directions.
fn render_diff(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    header(report, out)?;
    for row in &report.results {
        writeln!(
            out,
            "{} / {}  ({}){}",
            clean(&row.environment),
            clean(&row.service),
            clean(&row.image),
            clean(&in_repository(row))
        )?;
        let running = row.commit.as_ref().map(|c| c.0.as_str()).unwrap_or("unresolved");
        writeln!(out, "  running     {running}  via {}", via(row))?;
        if let (Some(t), Some(tc)) = (&row.target, &row.target_commit) {
            writeln!(out, "  {:<11} {tc}", t)?;
        }
        if let Some(mb) = &row.merge_base {
            writeln!(out, "  merge base  {mb}")?;
        }
        match (&row.behind, &row.ahead, &row.target) {
            (Some(behind), Some(ahead), Some(target)) => {
                let paren = |note: String| if note.is_empty() { note } else { format!(" ({note})") };
                let (n, note) = super::side_counts(behind, false, target);
                writeln!(
                    out,
                    "\n  Not running yet: {n} commit{} in {target}, not in {}{}",
                    plural(n),
                    row.environment,
                    paren(note)
                )?;
                commit_lines(behind, out)?;
                let (n, note) = super::side_counts(ahead, true, target);
                writeln!(out, "\n  Running but not in {target}: {n} commit{}{}", plural(n), paren(note))?;
                commit_lines(ahead, out)?;
                if behind.iter().chain(ahead).any(|c| c.equivalent.is_some()) {
                    writeln!(
                        out,
                        "\n  = the same change (git patch-id) is on the other side: a cherry-pick, counted on neither"
                    )?;
                }
            }
            _ => writeln!(out, "\n  No commit lists: see the findings below.")?,
        }
        writeln!(out)?;
    }
    if report.results.is_empty() {
        writeln!(out, "No workloads found.")?;
    }
    Ok(())
}

fn check(report: &Report, paint: Paint, out: &mut dyn Write) -> io::Result<()> {
    let Some(c) = &report.check else { return Ok(()) };
    if let Some(b) = &c.baseline {
        if c.changes.is_empty() {
            writeln!(out, "\nNo changes since the baseline {b}.")?;
        } else {
            writeln!(out, "\nChanges since the baseline:")?;
            for line in c.changes.trim_end().lines() {
                writeln!(out, "{}", clean(line))?;
            }
        }
    }
    let accepted = report.all_findings().filter(|f| f.suppressed.is_some()).count();
    let accepted =
        if accepted > 0 { format!(", {accepted} accepted by exceptions or the baseline") } else { String::new() };
    let verdict = if c.passed { paint.green("check passed") } else { paint.red("check failed") };
    writeln!(out, "\n{verdict}: {} denied, {} warning{}{accepted}", c.denied, c.warned, plural(c.warned))
}

fn header(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for r in &report.repositories {
        let mainline = match &r.mainline {
            Some(m) => format!("mainline {} at {}", clean(&m.name), m.commit.short()),
            None => "unavailable".into(),
        };
        let shallow = if r.shallow { "  (shallow clone)" } else { "" };
        writeln!(out, "repository {}  {}  {mainline}{shallow}", clean(&r.name), clean(&r.path))?;
    }
    if !report.repositories.is_empty() {
        for d in &report.daemons {
            writeln!(out, "{} {}: {}", d.kind, clean(&d.environment), clean(&d.describe()))?;
        }
        return writeln!(out);
    }
    writeln!(
        out,
        "repository {}  mainline {} at {}{}",
        clean(&report.repository),
        clean(&report.mainline.name),
        report.mainline.commit.short(),
        if report.shallow { "  (shallow clone)" } else { "" }
    )?;
    // Which daemon was audited: the answer to "did it look where docker looks?".
    for d in &report.daemons {
        writeln!(out, "{} {}: {}", d.kind, clean(&d.environment), clean(&d.describe()))?;
    }
    writeln!(out)
}

fn status_cells(r: &Row) -> Vec<String> {
    let count = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    // Allowed findings are in the counts already; the column shows what needs attention.
    let mut codes: Vec<&str> = r.findings.iter().filter(|f| f.level > Level::Allow).map(|f| f.code.as_str()).collect();

    codes.dedup();
    vec![
        r.environment.clone(),
        r.service.clone(),
        r.image.clone(),
        r.instances.len().to_string(),
        r.commit.as_ref().map(|c| c.short().to_string()).unwrap_or_else(|| "-".into()),
        via(r),
        count(r.missing_count()),
        count(r.drift_count()),
        if codes.is_empty() { "ok".into() } else { codes.join(",") },
    ]
}

/// The kinds of evidence that name the resolved commit (`label+git-tag`).
pub(super) fn via(r: &Row) -> String {
    let Some(commit) = &r.commit else {
        return "-".into();
    };
    let mut kinds: Vec<String> = Vec::new();
    for e in r.evidence.iter().filter(|e| e.commit.as_ref() == Some(commit)) {
        let k = e.kind.to_string();
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds.join("+")
}

fn commit_lines(commits: &[CommitRecord], out: &mut dyn Write) -> io::Result<()> {
    for c in commits {
        let mark = match (&c.equivalent, c.merge) {
            (Some(_), _) => '=',
            (None, true) => 'M',
            (None, false) => ' ',
        };
        let tickets = if c.tickets.is_empty() { String::new() } else { format!("  [{}]", c.tickets.join(", ")) };
        let same = c.equivalent.as_ref().map(|e| format!("  (same change as {})", e.short())).unwrap_or_default();
        let date = c.date.get(..10).unwrap_or(&c.date);
        writeln!(out, "  {mark} {}  {}  {}{}{same}", c.sha.short(), clean(date), clean(&c.subject), clean(&tickets))?;
    }
    Ok(())
}

/// Denied and warned findings with their hints; allowed ones are in the counts and the JSON.
fn findings(report: &Report, paint: Paint, out: &mut dyn Write) -> io::Result<()> {
    let all: Vec<&Finding> = dedup(report.all_findings().filter(|f| f.level > Level::Allow));
    if all.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nFindings:")?;
    for f in all {
        let place = place(f);
        writeln!(out, "  {} {}  {}{}", paint.level(f.level), f.code, clean(&place), clean(&f.message))?;
        if let Some(h) = &f.hint {
            writeln!(out, "        hint: {}", clean(h))?;
        }
    }
    Ok(())
}

/// `production/api: `, `production: ` or nothing, to prefix a finding's message.
pub(super) fn place(f: &Finding) -> String {
    match (&f.environment, &f.service) {
        (Some(e), Some(s)) => format!("{e}/{s}: "),
        (Some(e), None) => format!("{e}: "),
        _ => String::new(),
    }
}

/// ANSI colours, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn red(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn level(self, l: Level) -> String {
        let padded = format!("{l:<5}");
        match l {
            Level::Deny => self.red(&padded),
            Level::Warn => self.wrap("33", &padded),
            Level::Allow => padded,
        }
    }
}

/// A finding shared by several rows (mixed versions) is printed once.
pub(super) fn dedup<'a>(it: impl Iterator<Item = &'a Finding>) -> Vec<&'a Finding> {
    let mut out: Vec<&Finding> = Vec::new();
    for f in it {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// The widest a table cell gets; longer ones end in `…`.
pub const MAX_CELL: usize = 120;

pub(super) fn write_table(rows: &[Vec<String>], out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()).collect();
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < cols {
                // Padded by hand: a width in `format!` must fit in a u16.
                line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// One table cell: on one line, at most `MAX_CELL` characters.
fn cell(s: &str) -> String {
    let s = clean(s);
    if s.chars().count() <= MAX_CELL {
        return s.into_owned();
    }
    let mut cut: String = s.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// `s` on one line: control characters (newlines, escapes), line separators and
/// bidirectional overrides are shown escaped (`\n`, `\u{1b}`), never interpreted.
pub(super) fn clean(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if unsafe_char(c) { c.escape_default().to_string() } else { c.to_string() }).collect())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_and_control_characters_escaped() {
        let long = "x".repeat(70_000);
        let rows = vec![vec!["A".to_string(), "B".to_string()], vec![long, "a\n::error::x\u{1b}[31m".to_string()]];
        let mut out = Vec::new();
        write_table(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| l.chars().count() < MAX_CELL + 40), "{text}");
        assert!(text.contains("a\\n::error::x\\u{1b}[31m"), "{text}");
    }
}
