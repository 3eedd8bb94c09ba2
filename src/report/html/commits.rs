//! Commit lists: the drill-down of a matrix cell (`<details>`), and the diff view's
//! sections. Each commit links to the hosting service when the origin remote is known,
//! with its tickets and pull requests linked too; cherry-picks (`=`) and merges (`M`) are
//! marked as in the table output.

use std::fmt::Write as _;

use super::esc;
use crate::config::report::Links;
use crate::judge::report::Row;
use crate::model::CommitRecord;

/// The drill-down of one row: both commit lists and the evidence. `open`: unfolded.
pub(super) fn details(page: &mut String, r: &Row, links: &Links, open: bool) {
    let (Some(behind), Some(ahead), Some(target)) = (&r.behind, &r.ahead, &r.target) else {
        if !r.evidence.is_empty() {
            page.push_str("<details><summary>Evidence</summary>");
            evidence(page, r);
            page.push_str("</details>");
        }
        return;
    };
    let (b, _) = crate::judge::report::side_counts(behind, false, target);
    let (a, _) = crate::judge::report::side_counts(ahead, true, target);
    let _ = write!(
        page,
        "<details{}><summary>Commits vs {}: ↓ {b} ↑ {a}</summary>",
        if open { " open" } else { "" },
        esc(target),
    );
    lists(page, r, (behind, ahead), target, links, Some(DRILL_DOWN_LIMIT));
    evidence(page, r);
    page.push_str("</details>");
}

/// The most commits a cell's drill-down lists per side; `diff` lists them all.
pub const DRILL_DOWN_LIMIT: usize = 100;

fn lists(
    page: &mut String,
    r: &Row,
    (behind, ahead): (&[CommitRecord], &[CommitRecord]),
    target: &str,
    links: &Links,
    limit: Option<usize>,
) {
    let (n, note) = crate::judge::report::side_counts(behind, false, target);
    let _ = write!(
        page,
        "<p><strong>Not running yet</strong>: {n} commit{} in {}, not in {}{}</p>",
        super::plural(n),
        esc(target),
        esc(&r.environment),
        paren(&note)
    );
    capped(page, r, behind, links, limit);
    let (n, note) = crate::judge::report::side_counts(ahead, true, target);
    let _ = write!(
        page,
        "<p><strong>Running but not in {}</strong>: {n} commit{}{}</p>",
        esc(target),
        super::plural(n),
        paren(&note)
    );
    capped(page, r, ahead, links, limit);
}

/// `list`, cut at `limit` commits with a line saying how many more there are and where.
fn capped(page: &mut String, r: &Row, commits: &[CommitRecord], links: &Links, limit: Option<usize>) {
    let shown = limit.map_or(commits.len(), |l| l.min(commits.len()));
    list(page, &commits[..shown], links);
    if shown < commits.len() {
        let _ = write!(
            page,
            "<p class=\"meta\">… and {} more: <code>prodiff diff {} --service {}</code> lists them all.</p>",
            commits.len() - shown,
            esc(&r.environment),
            esc(&r.service)
        );
    }
}

fn paren(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(" ({})", esc(note))
    }
}

fn evidence(page: &mut String, r: &Row) {
    if r.evidence.is_empty() {
        return;
    }
    page.push_str("<p class=\"meta\">Evidence:</p><ul class=\"evidence meta\">");
    for e in &r.evidence {
        let names =
            e.commit.as_ref().map(|c| format!(" → {}", c.short())).unwrap_or_else(|| " → no commit here".into());
        let _ = write!(page, "<li>{}{}</li>", esc(&e.describe()), esc(&names));
    }
    page.push_str("</ul>");
}

/// One list of commits, or "none".
pub(super) fn list(page: &mut String, commits: &[CommitRecord], links: &Links) {
    if commits.is_empty() {
        page.push_str("<ul class=\"commits\"><li class=\"none\">none</li></ul>");
        return;
    }
    page.push_str("<ul class=\"commits\">");
    for c in commits {
        line(page, c, links);
    }
    page.push_str("</ul>");
}

fn line(page: &mut String, c: &CommitRecord, links: &Links) {
    let (class, mark, title) = match (&c.equivalent, c.merge) {
        (Some(_), _) => ("same", "=", "the same change is on the other side (a cherry-pick)"),
        (None, true) => ("merge", "M", "a merge commit"),
        (None, false) => ("commit", "", ""),
    };
    let _ = write!(page, "<li class=\"{class}\"><span class=\"mark\" title=\"{title}\">{mark}</span>");
    let short = esc(c.sha.short());
    match links.commit(&c.sha.0) {
        Some(url) => {
            let _ = write!(page, "<code><a href=\"{}\">{short}</a></code> ", esc(&url));
        }
        None => {
            let _ = write!(page, "<code>{short}</code> ");
        }
    }
    let _ = write!(page, "<span class=\"subject\">{}</span>", esc(&c.subject));
    let changes = links.changes(&c.subject);
    for (label, url) in &changes {
        let _ = write!(page, " <a class=\"pr\" href=\"{}\">{}</a>", esc(url), esc(label));
    }
    // `(#88)` linked as the pull request already: not again as issue #88.
    for t in c.tickets.iter().filter(|t| !changes.iter().any(|(label, _)| label == *t)) {
        ticket(page, t, links);
    }
    if let Some(e) = &c.equivalent {
        let _ = write!(page, " <span class=\"meta\">(same change as {})</span>", esc(e.short()));
    }
    let date = c.date.get(..10).unwrap_or(&c.date);
    let _ = write!(page, " <span class=\"meta\">{} · {}</span></li>", esc(date), esc(&c.author));
}

/// A ticket key, linked when the report knows where tickets live.
pub(super) fn ticket(page: &mut String, key: &str, links: &Links) {
    match links.ticket(key) {
        Some(url) => {
            let _ = write!(page, " <a class=\"ticket\" href=\"{}\">{}</a>", esc(&url), esc(key));
        }
        None => {
            let _ = write!(page, " <span class=\"ticket\">{}</span>", esc(key));
        }
    }
}

/// The diff view: every row's commits, unfolded.
pub(super) fn section(page: &mut String, rows: &[&Row], links: &Links) {
    page.push_str("<section id=\"commits\"><h2>Commits</h2>");
    for r in rows {
        let _ = write!(
            page,
            "<h3 id=\"{}\">{} / {} <span class=\"meta\">{}</span></h3>",
            esc(&format!("commits-{}-{}", r.environment, r.service)),
            esc(&r.environment),
            esc(&r.service),
            esc(&r.image)
        );
        if let (Some(mb), Some(t), Some(tc)) = (&r.merge_base, &r.target, &r.target_commit) {
            let _ = write!(
                page,
                "<p class=\"meta\">runs {}, {} at {}, merge base {}</p>",
                esc(r.commit.as_ref().map(|c| c.short()).unwrap_or("unresolved")),
                esc(t),
                esc(tc.short()),
                esc(mb.short())
            );
        }
        match (&r.behind, &r.ahead, &r.target) {
            (Some(b), Some(a), Some(t)) => lists(page, r, (b, a), t, links, None),
            _ => page.push_str("<p>No commit lists: see the findings.</p>"),
        }
    }
    page.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CommitId;

    fn commit(i: usize) -> CommitRecord {
        CommitRecord {
            sha: CommitId(format!("{i:040x}")),
            subject: format!("change {i}"),
            author: "A".into(),
            email: "a@example.com".into(),
            date: "2026-01-01T00:00:00Z".into(),
            committed_at: "2026-01-01T00:00:00Z".into(),
            tickets: vec![],
            merge: false,
            equivalent: None,
        }
    }

    #[test]
    fn a_cells_drill_down_is_cut_and_says_where_the_rest_is() {
        let mut r = Row::bare("production", "api", vec![]);
        r.target = Some("main".into());
        r.behind = Some((0..DRILL_DOWN_LIMIT + 5).map(commit).collect());
        r.ahead = Some(vec![]);
        let mut page = String::new();
        details(&mut page, &r, &Links::default(), false);
        assert_eq!(page.matches("<li class=\"commit\">").count(), DRILL_DOWN_LIMIT);
        assert!(
            page.contains("… and 5 more: <code>prodiff diff production --service api</code> lists them all."),
            "{page}"
        );
        let mut all = String::new();
        section(&mut all, &[&r], &Links::default());
        assert_eq!(all.matches("<li class=\"commit\">").count(), DRILL_DOWN_LIMIT + 5);
    }
}
