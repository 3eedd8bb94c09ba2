//! The promotion path as a value stream (inline SVG): the mainline, then each environment
//! of `promotion` in order, with arrows labelled by what waits to be promoted (commits and
//! tickets the next stage does not run yet), and hotfix drift drawn as a dashed side branch
//! under the environment that runs it. Environments outside the promotion path hang off
//! the mainline on rows of their own. The same facts follow as a list, for readers
//! without the picture.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{esc, plural};
use crate::judge::report::{Report, Row};
use crate::model::Level;

const NODE_W: i32 = 210;
const NODE_H: i32 = 62;
const PITCH: i32 = 360;
const MARGIN: i32 = 12;
/// Ticket keys shown on an arrow or a branch before `+N more`.
const MAX_TICKETS: usize = 3;

/// What waits between two stages.
struct Waiting {
    /// Commits the later stage does not run; None when unknown somewhere.
    commits: Option<usize>,
    tickets: Vec<String>,
}

/// One environment on the picture.
struct Stage<'a> {
    name: &'a str,
    rows: Vec<&'a Row>,
    /// What it lacks of the stage before it (the mainline or the previous environment).
    waiting: Waiting,
    from: &'a str,
}

pub(super) fn section(page: &mut String, report: &Report, ctx: &super::Presentation) {
    let envs = super::distinct(report.results.iter().map(|r| r.environment.as_str()));
    if envs.is_empty() {
        return;
    }
    let main = report.mainline.name.as_str();
    let mut chain: Vec<&str> = ctx.promotion.iter().filter_map(|p| envs.iter().copied().find(|e| e == p)).collect();
    let mut others: Vec<&str> = envs.iter().copied().filter(|e| !chain.contains(e)).collect();
    // Without a promotion path every environment hangs off the mainline: the first one
    // straight across, the others below it.
    if chain.is_empty() {
        chain.push(others.remove(0));
    }
    let rows_of = |env: &str| report.results.iter().filter(|r| r.environment == env).collect::<Vec<_>>();
    let mut stages = Vec::new();
    for (i, env) in chain.iter().enumerate() {
        let rows = rows_of(env);
        let (waiting, from) = match i {
            0 => (from_mainline(&rows), main),
            _ => (from_predecessor(&rows, &rows_of(chain[i - 1]), chain[i - 1]), chain[i - 1]),
        };
        stages.push(Stage { name: env, rows, waiting, from });
    }
    let side: Vec<Stage> = others
        .iter()
        .map(|env| {
            let rows = rows_of(env);
            Stage { name: env, waiting: from_mainline(&rows), rows, from: main }
        })
        .collect();
    page.push_str("<section id=\"stream\" class=\"stream\"><h2>Promotion path</h2>");
    svg(page, report, &stages, &side);
    text(page, &stages, &side);
    page.push_str("</section>\n");
}

/// What the mainline has that the environment does not run, in any form.
fn from_mainline(rows: &[&Row]) -> Waiting {
    let commits = rows.iter().map(|r| r.missing_count()).sum::<Option<usize>>();
    let tickets = rows
        .iter()
        .flat_map(|r| r.behind.iter().flatten())
        .filter(|c| c.equivalent.is_none())
        .flat_map(|c| c.tickets.iter().cloned());
    Waiting { commits, tickets: unique(tickets) }
}

/// What the previous environment runs that this one does not: its count from the
/// promotion comparison, its tickets from the two mainline comparisons.
fn from_predecessor(rows: &[&Row], before: &[&Row], pred: &str) -> Waiting {
    let commits = rows
        .iter()
        .map(|r| r.promotion.as_ref().filter(|p| p.environment == pred).map(|p| p.behind))
        .sum::<Option<usize>>();
    let mut tickets = Vec::new();
    for r in rows {
        let Some(p) = before.iter().find(|p| p.service == r.service) else { continue };
        let (Some(mine), Some(theirs)) = (&r.behind, &p.behind) else { continue };
        let theirs: BTreeSet<&str> =
            theirs.iter().filter(|c| c.equivalent.is_none()).map(|c| c.sha.0.as_str()).collect();
        let missing = mine.iter().filter(|c| c.equivalent.is_none() && !theirs.contains(c.sha.0.as_str()));
        tickets.extend(missing.flat_map(|c| c.tickets.iter().cloned()));
    }
    Waiting { commits, tickets: unique(tickets.into_iter()) }
}

/// The hotfix drift of an environment: (service, commits, tickets), for services that run
/// commits the mainline lacks.
fn drift<'a>(rows: &[&'a Row]) -> Vec<(&'a str, usize, Vec<String>)> {
    rows.iter()
        .filter_map(|r| {
            let n = r.drift_count().filter(|n| *n > 0)?;
            let tickets = r
                .ahead
                .iter()
                .flatten()
                .filter(|c| !c.merge && c.equivalent.is_none())
                .flat_map(|c| c.tickets.iter().cloned());
            Some((r.service.as_str(), n, unique(tickets)))
        })
        .collect()
}

fn unique(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in it {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn commits_label(w: &Waiting) -> String {
    match w.commits {
        Some(0) => "nothing waiting".into(),
        Some(n) => format!("{n} commit{} waiting", plural(n)),
        None => "? commits (unknown)".into(),
    }
}

fn tickets_lines(tickets: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = tickets.iter().take(MAX_TICKETS).cloned().collect();
    if tickets.len() > MAX_TICKETS {
        lines.push(format!("+{} more", tickets.len() - MAX_TICKETS));
    }
    lines
}

/// The height the hotfix box of these rows needs (0 without drift).
fn hotfix_height(rows: &[&Row]) -> i32 {
    match drift(rows).len() as i32 {
        0 => 0,
        n => 40 + 26 + 18 * n,
    }
}

fn svg(page: &mut String, report: &Report, stages: &[Stage], side: &[Stage]) {
    let columns = 1 + stages.len().max(usize::from(!side.is_empty())) as i32;
    let width = MARGIN * 2 + (columns - 1) * PITCH + NODE_W.max(PITCH - 20);
    let label_room = 26 + 16 * MAX_TICKETS as i32;
    let chain_h = NODE_H + stages.iter().map(|s| hotfix_height(&s.rows)).max().unwrap_or(0).max(label_room - 20);
    let side_h: Vec<i32> = side.iter().map(|s| NODE_H + hotfix_height(&s.rows).max(10) + 20).collect();
    let height = MARGIN * 2 + 20 + chain_h + 30 + side_h.iter().sum::<i32>();
    let _ = write!(
        page,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-labelledby=\"stream-title\"><title id=\"stream-title\">Promotion path from {} through {}</title>\
         <defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path class=\"arrowhead\" d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>",
        esc(&report.mainline.name),
        esc(&stages.iter().chain(side).map(|s| s.name).collect::<Vec<_>>().join(", "))
    );
    let top = MARGIN + 20;
    node(
        page,
        MARGIN,
        top,
        &report.mainline.name,
        &format!("at {}", report.mainline.commit.short()),
        Level::Allow,
        "mainline",
    );
    for (i, s) in stages.iter().enumerate() {
        let x = MARGIN + (i as i32 + 1) * PITCH;
        arrow(page, x - PITCH + NODE_W, top + NODE_H / 2, x, &s.waiting);
        stage_node(page, x, top, s);
    }
    let mut y = top + chain_h + 30;
    for (s, h) in side.iter().zip(&side_h) {
        let x = MARGIN + PITCH;
        // Down from the mainline, then across.
        let _ = write!(
            page,
            "<path class=\"arrow\" d=\"M{} {} V{} H{}\" marker-end=\"url(#head)\"/>",
            MARGIN + NODE_W / 2,
            top + NODE_H,
            y + NODE_H / 2,
            x
        );
        waiting_text(page, MARGIN + NODE_W / 2 + 14, y + NODE_H / 2 - 8, &s.waiting);
        stage_node(page, x, y, s);
        y += h;
    }
    page.push_str("</svg>");
}

fn stage_node(page: &mut String, x: i32, y: i32, s: &Stage) {
    let worst = s.rows.iter().flat_map(|r| &r.findings).map(|f| f.level).max().unwrap_or(Level::Allow);
    let services = super::distinct(s.rows.iter().map(|r| r.service.as_str())).len();
    let state = match worst {
        Level::Deny => "✖ denied",
        Level::Warn => "⚠ warned",
        Level::Allow => "✔ ok",
    };
    node(page, x, y, s.name, &format!("{services} service{} · {state}", plural(services)), worst, "env");
    let branches = drift(&s.rows);
    if branches.is_empty() {
        return;
    }
    // The side branch: a dashed line down to a box listing what runs off the mainline.
    let (bx, by) = (x + 20, y + NODE_H + 40);
    let bh = 26 + 18 * branches.len() as i32;
    let _ = write!(page, "<path class=\"hotfix\" d=\"M{} {} V{by}\"/>", x + 20, y + NODE_H);
    let _ = write!(
        page,
        "<g class=\"hotfix-box\"><rect x=\"{bx}\" y=\"{by}\" width=\"{}\" height=\"{bh}\" rx=\"5\"/>\
         <text class=\"label\" x=\"{}\" y=\"{}\" font-weight=\"600\">↳ hotfix drift (not in the mainline)</text>",
        PITCH - 40,
        bx + 8,
        by + 17
    );
    for (i, (service, n, tickets)) in branches.iter().enumerate() {
        let t = if tickets.is_empty() { String::new() } else { format!(": {}", tickets_lines(tickets).join(", ")) };
        let _ = write!(
            page,
            "<text class=\"sub\" x=\"{}\" y=\"{}\">{} +{n} commit{}{}</text>",
            bx + 8,
            by + 35 + 18 * i as i32,
            esc(service),
            plural(*n),
            esc(&t)
        );
    }
    page.push_str("</g>");
}

fn node(page: &mut String, x: i32, y: i32, name: &str, sub: &str, level: Level, kind: &str) {
    let _ = write!(
        page,
        "<g class=\"node {kind} {}\"><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"8\"/>\
         <text class=\"label\" x=\"{}\" y=\"{}\" font-weight=\"700\" font-size=\"15\">{}</text>\
         <text class=\"sub\" x=\"{}\" y=\"{}\">{}</text></g>",
        super::level_class(level),
        x + 12,
        y + 25,
        esc(name),
        x + 12,
        y + 46,
        esc(sub)
    );
}

fn arrow(page: &mut String, x1: i32, y: i32, x2: i32, w: &Waiting) {
    let _ = write!(page, "<path class=\"arrow\" d=\"M{} {y} H{}\" marker-end=\"url(#head)\"/>", x1 + 4, x2 - 4);
    waiting_text(page, x1 + 14, y - 8, w);
}

fn waiting_text(page: &mut String, x: i32, y: i32, w: &Waiting) {
    let _ =
        write!(page, "<text class=\"label\" x=\"{x}\" y=\"{y}\" font-weight=\"600\">{}</text>", esc(&commits_label(w)));
    for (i, t) in tickets_lines(&w.tickets).iter().enumerate() {
        let _ = write!(page, "<text class=\"sub\" x=\"{x}\" y=\"{}\">{}</text>", y + 26 + 16 * i as i32, esc(t));
    }
}

/// The picture's facts as a list.
fn text(page: &mut String, stages: &[Stage], side: &[Stage]) {
    page.push_str("<ul class=\"stream-text\">");
    for s in stages.iter().chain(side) {
        let tickets =
            if s.waiting.tickets.is_empty() { String::new() } else { format!(" ({})", s.waiting.tickets.join(", ")) };
        let _ =
            write!(page, "<li>{} → {}: {}{}", esc(s.from), esc(s.name), esc(&commits_label(&s.waiting)), esc(&tickets));
        for (service, n, tickets) in drift(&s.rows) {
            let t = if tickets.is_empty() { String::new() } else { format!(" ({})", tickets.join(", ")) };
            let _ = write!(
                page,
                "; hotfix drift: {} runs {n} commit{} the mainline lacks{}",
                esc(service),
                plural(n),
                esc(&t)
            );
        }
        page.push_str("</li>");
    }
    page.push_str("</ul>");
}
