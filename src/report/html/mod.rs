//! `--format html`: one self-contained page (inline CSS and SVG, no script, nothing
//! fetched) for `status`, `check`, `diff` and `plan`, and the pages `prodiff serve` shows.
//!
//! The page is built from the report data only: the environment × service matrix
//! (`matrix`), the promotion path as a value stream (`stream`), the findings with their
//! hints, and a header saying what was audited, when, and whether that was everything.
//! Every value that came from outside (inventories, labels, commit messages, servers, the
//! config) passes `escape::esc`; levels are shown as words and symbols, never by colour
//! alone. This module renders and nothing else: no I/O but the writer it is given.

mod commits;
mod escape;
pub mod ledger;
mod matrix;
mod plan;
mod stream;

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{DateTime, Utc};

pub use escape::esc;
pub use matrix::percent_path as path_segment;
pub use plan::render_plan;

pub use crate::judge::report::Presentation;

use super::View;
use crate::judge::report::Report;
use crate::model::{Finding, Level};

/// Which part of the report a page shows, and how it behaves when served live.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only this environment (`/env/NAME`).
    pub environment: Option<String>,
    /// Only this service (`/service/NAME`).
    pub service: Option<String>,
    /// Served live: environment and service names link to their pages, and the page
    /// reloads itself after this many seconds.
    pub refresh: Option<u64>,
    /// Served live: a line under the title (the audit's age, a failed refresh).
    pub notice: Option<String>,
    /// Served live: the pages of the navigation bar, as (path, label).
    pub nav: Vec<(String, String)>,
}

/// The whole `--format html` page of a status, check or diff report.
pub fn render(report: &Report, view: View, out: &mut dyn Write) -> io::Result<()> {
    render_page(report, view, &Options::default(), out)
}

/// A page of the report, limited to what `options` asks for (the dashboard's pages).
pub fn render_page(report: &Report, view: View, options: &Options, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::new();
    let title = title(report, options);
    open(&mut page, &title, options);
    header(&mut page, report);
    let rows: Vec<&super::Row> = report
        .results
        .iter()
        .filter(|r| options.environment.as_ref().is_none_or(|e| &r.environment == e))
        .filter(|r| options.service.as_ref().is_none_or(|s| &r.service == s))
        .collect();
    if options.environment.is_none() && options.service.is_none() {
        stream::section(&mut page, report, &report.presentation);
    }
    let live = options.refresh.is_some();
    matrix::section(&mut page, report, &rows, live);
    let declared: Vec<&super::Row> = report
        .declared
        .iter()
        .filter(|r| options.environment.as_ref().is_none_or(|e| &r.environment == e))
        .filter(|r| options.service.as_ref().is_none_or(|s| &r.service == s))
        .collect();
    matrix::declared(&mut page, &declared);
    if view == View::Diff || options.environment.is_some() || options.service.is_some() {
        commits::section(&mut page, &rows, &report.presentation.links);
    }
    let findings: Vec<&Finding> = super::table::dedup(report.all_findings().filter(|f| {
        options.environment.as_ref().is_none_or(|e| f.environment.as_ref().is_none_or(|fe| fe == e))
            && options.service.as_ref().is_none_or(|s| f.service.as_ref().is_none_or(|fs| fs == s))
    }));
    findings_section(&mut page, &findings);
    if let Some(c) = report.check.as_ref().filter(|c| !c.changes.is_empty()) {
        let _ = write!(
            page,
            "<section id=\"baseline\"><h2>Changes since the baseline</h2><pre>{}</pre></section>",
            esc(&c.changes)
        );
    }
    close(&mut page);
    out.write_all(page.as_bytes())
}

fn title(report: &Report, options: &Options) -> String {
    match (&options.environment, &options.service) {
        (Some(e), _) => format!("prodiff: environment {e}"),
        (_, Some(s)) => format!("prodiff: service {s}"),
        _ => format!("prodiff {}", report.command),
    }
}

/// The document head with the style sheet, and the navigation bar when served.
fn open(page: &mut String, title: &str, options: &Options) {
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    );
    if let Some(secs) = options.refresh {
        let _ = writeln!(page, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    let _ = write!(page, "<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n", esc(title));
    if !options.nav.is_empty() {
        page.push_str("<nav>");
        for (path, label) in &options.nav {
            let _ = write!(page, "<a href=\"{}\">{}</a> ", esc(path), esc(label));
        }
        page.push_str("</nav>\n");
    }
    let _ = writeln!(page, "<main>\n<h1>{}</h1>", esc(title));
    if let Some(n) = &options.notice {
        let _ = writeln!(page, "<p class=\"notice\">{}</p>", esc(n));
    }
}

fn close(page: &mut String) {
    let _ = write!(page, "<footer>prodiff {}</footer>\n</main>\n</body>\n</html>\n", esc(env!("CARGO_PKG_VERSION")));
}

/// What was audited, when, whether it is complete, and the check's verdict.
fn header(page: &mut String, report: &Report) {
    let _ = write!(
        page,
        "<section id=\"summary\"><p>Repository <code>{}</code>, mainline <code>{}</code> at <code>{}</code>{}.</p>",
        esc(&report.repository),
        esc(&report.mainline.name),
        esc(report.mainline.commit.short()),
        if report.shallow { " (shallow clone: no counts)" } else { "" }
    );
    let envs = distinct(report.results.iter().map(|r| r.environment.as_str()));
    let services = distinct(report.results.iter().map(|r| r.service.as_str()));
    let _ = write!(
        page,
        "<p>Audited {} environment{} ({}) and {} service{}",
        envs.len(),
        plural(envs.len()),
        esc(&envs.join(", ")),
        services.len(),
        plural(services.len())
    );
    if let Some(at) = report.presentation.generated_at {
        let _ = write!(page, " at <time datetime=\"{0}\">{0}</time>", at.format("%Y-%m-%dT%H:%M:%SZ"));
    }
    page.push_str(".</p>");
    for d in &report.daemons {
        let _ = write!(
            page,
            "<p>{} <code>{}</code>: <code>{}</code></p>",
            esc(&d.kind.to_string()),
            esc(&d.environment),
            esc(&d.describe())
        );
    }
    if report.complete {
        page.push_str("<p class=\"complete\" id=\"completeness\">✔ Complete: everything configured was observed.</p>");
    } else {
        page.push_str(
            "<p class=\"incomplete\" id=\"completeness\">⚠ Incomplete: something could not be observed \
             (see the findings); what is shown may be missing parts.</p>",
        );
    }
    let (denied, warned) = (report.count(Level::Deny), report.count(Level::Warn));
    let _ = write!(page, "<p class=\"counts\">{}</p>", level_counts(denied, warned));
    if let Some(c) = &report.check {
        let (class, verdict) = if c.passed { ("pass", "✔ Check passed") } else { ("fail", "✖ Check failed") };
        let _ = write!(
            page,
            "<p class=\"verdict {class}\" id=\"verdict\"><strong>{verdict}</strong>: {} denied, {} warning{}.</p>",
            c.denied,
            c.warned,
            plural(c.warned)
        );
    }
    page.push_str("</section>\n");
}

/// `✖ 2 denied · ⚠ 1 warning`, or `✔ no denied or warned findings`.
fn level_counts(denied: usize, warned: usize) -> String {
    if denied == 0 && warned == 0 {
        return "<span class=\"lvl ok\">✔ no denied or warned findings</span>".into();
    }
    let mut parts = Vec::new();
    if denied > 0 {
        parts.push(format!("<span class=\"lvl deny\">✖ {denied} denied</span>"));
    }
    if warned > 0 {
        parts.push(format!("<span class=\"lvl warn\">⚠ {warned} warning{}</span>", plural(warned)));
    }
    parts.join(" · ")
}

/// A finding's level as a badge: symbol and word, and a class for colour.
fn badge(level: Level) -> &'static str {
    match level {
        Level::Deny => "<span class=\"lvl deny\">✖ deny</span>",
        Level::Warn => "<span class=\"lvl warn\">⚠ warn</span>",
        Level::Allow => "<span class=\"lvl allow\">· allow</span>",
    }
}

/// Denied and warned findings with their hints; allowed ones are counted below the table.
fn findings_section(page: &mut String, findings: &[&Finding]) {
    let shown: Vec<&&Finding> = findings.iter().filter(|f| f.level > Level::Allow).collect();
    page.push_str("<section id=\"findings\"><h2>Findings</h2>");
    if shown.is_empty() {
        page.push_str("<p>✔ No denied or warned findings.</p>");
    } else {
        page.push_str(
            "<table class=\"findings\"><thead><tr><th>Level</th><th>Code</th><th>Where</th>\
             <th>What</th><th>Hint</th></tr></thead><tbody>",
        );
        for f in shown {
            let place = match (&f.environment, &f.service) {
                (Some(e), Some(s)) => format!("{}/{}", esc(e), esc(s)),
                (Some(e), None) => esc(e).into_owned(),
                _ => "the run".into(),
            };
            let _ = write!(
                page,
                "<tr class=\"{}\"><td>{}</td><td><code>{}</code></td><td>{place}</td><td>{}</td><td>{}</td></tr>",
                level_class(f.level),
                badge(f.level),
                esc(f.code.as_str()),
                esc(&f.message),
                f.hint.as_deref().map(esc).unwrap_or_default()
            );
        }
        page.push_str("</tbody></table>");
    }
    let allowed = findings.iter().filter(|f| f.level == Level::Allow).count();
    if allowed > 0 {
        let _ = write!(
            page,
            "<p class=\"allowed\">{allowed} allowed finding{} not listed (they are in the JSON report).</p>",
            plural(allowed)
        );
    }
    page.push_str("</section>\n");
}

fn level_class(level: Level) -> &'static str {
    match level {
        Level::Deny => "deny",
        Level::Warn => "warn",
        Level::Allow => "allow",
    }
}

fn distinct<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in it {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `3 d`, `5 h`, `12 min`: how long ago, for a deployment's age.
fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - since).num_seconds().max(0);
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 86_400 => "1 day".into(),
        s if s >= 3_600 => format!("{} h", s / 3_600),
        s => format!("{} min", s / 60),
    }
}

/// The style sheet: readable in print and on a phone; colour only ever doubles a word or symbol.
const CSS: &str = r#"
:root { --deny: #b3261e; --deny-bg: #fde7e4; --warn: #8a5300; --warn-bg: #fff1d6; --ok: #1e6b34; --ok-bg: #e3f4e6;
  --line: #d0d4d9; --muted: #5b6470; --bar: #4a6fa5; --drift: #8e3b9e; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d232a; background: #fff; }
main { padding: 16px 24px 32px; max-width: 1400px; }
nav { background: #1d232a; padding: 8px 24px; } nav a { color: #fff; margin-right: 16px; text-decoration: none; }
h1 { font-size: 22px; margin: 4px 0 8px; } h2 { font-size: 17px; margin: 24px 0 8px; border-bottom: 1px solid var(--line); }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
a { color: #1f5fa8; }
.notice { background: #eef3fa; border-left: 4px solid var(--bar); padding: 4px 8px; }
.complete { color: var(--ok); font-weight: 600; } .incomplete { color: var(--warn); background: var(--warn-bg); font-weight: 600; padding: 2px 6px; }
.verdict.fail { color: var(--deny); } .verdict.pass { color: var(--ok); }
.lvl { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 600; white-space: nowrap; }
.lvl.deny { color: var(--deny); background: var(--deny-bg); } .lvl.warn { color: var(--warn); background: var(--warn-bg); }
.lvl.ok { color: var(--ok); background: var(--ok-bg); } .lvl.allow { color: var(--muted); }
table { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid var(--line); padding: 8px 10px; vertical-align: top; text-align: left; }
table.matrix thead th { background: #f3f5f7; }
table.matrix td.cell { min-width: 220px; }
table.matrix td.cell.deny { box-shadow: inset 4px 0 var(--deny); } table.matrix td.cell.warn { box-shadow: inset 4px 0 var(--warn); }
table.matrix td.empty { color: var(--muted); font-style: italic; }
.image + .image { border-top: 1px dashed var(--line); margin-top: 6px; padding-top: 6px; }
.version { font-weight: 700; font-size: 15px; } .sha { margin-left: 6px; } .meta { color: var(--muted); font-size: 12.5px; }
.counts { margin: 4px 0; } .count { display: inline-flex; align-items: center; gap: 4px; margin-right: 10px; white-space: nowrap; }
.count svg rect.fill { fill: var(--bar); } .count.ahead svg rect.fill { fill: var(--drift); } .count svg rect.track { fill: #e8ebee; }
ul.cell-findings { list-style: none; padding: 0; margin: 4px 0; } ul.cell-findings li { margin: 2px 0; }
details { margin-top: 4px; } summary { cursor: pointer; color: #1f5fa8; }
ul.commits { padding-left: 18px; margin: 4px 0; } ul.commits li { margin: 1px 0; }
.mark { display: inline-block; width: 1.2em; font-weight: 700; color: var(--muted); }
.ticket { font-size: 12px; background: #eef0f3; border-radius: 3px; padding: 0 4px; margin-left: 4px; }
table.findings td, table.findings th, table.files td, table.files th { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
table.findings td:last-child { color: var(--muted); }
.stream svg { max-width: 100%; height: auto; } .stream text { font: 13px system-ui, sans-serif; }
.stream .node rect { fill: #f3f5f7; stroke: #8d96a0; } .stream .node.deny rect { stroke: var(--deny); stroke-width: 2; }
.stream .node.warn rect { stroke: var(--warn); stroke-width: 2; }
.stream .arrow { stroke: #55606c; stroke-width: 2; fill: none; } .stream .arrowhead { fill: #55606c; }
.stream .hotfix { stroke: var(--drift); stroke-dasharray: 5 4; fill: none; stroke-width: 2; }
.stream .hotfix-box rect { fill: #f6eef8; stroke: var(--drift); stroke-dasharray: 5 4; }
.stream .label { fill: #1d232a; } .stream .sub { fill: var(--muted); font-size: 12px; }
section.service-plan { border: 1px solid var(--line); padding: 4px 14px 10px; margin: 12px 0; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::report::{Mainline, Row};
    use crate::model::{Code, CommitId};

    fn report() -> Report {
        let unreachable = Finding::new(Code::SourceUnreachable, "kubectl: context <prod-us> refused").at("us", "api");
        let mut declared = Row::bare("uk", "api", vec![]);
        declared.instances.push(crate::resolve::Instance {
            name: None,
            started_at: None,
            origin: "declared gitops:apps/uk/api.yaml".into(),
        });
        Report {
            schema_version: 1,
            command: "status".into(),
            repository: "/repo".into(),
            repositories: Vec::new(),
            mainline: Mainline { name: "main".into(), commit: CommitId("a".repeat(40)) },
            shallow: false,
            complete: false,
            results: vec![
                Row::bare("uk", "api", vec![]),
                Row::bare("us", "api", vec![unreachable]),
                Row::bare("us", "web", vec![]),
            ],
            findings: vec![],
            declared: vec![declared],
            daemons: vec![],
            check: None,
            observed_at: None,
            presentation: Presentation { promotion: vec!["us".into(), "uk".into()], ..Presentation::default() },
        }
    }

    fn page(options: &Options) -> String {
        let mut out = Vec::new();
        render_page(&report(), View::Status, options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_incomplete_audit_says_so_and_columns_follow_the_promotion_order() {
        let html = page(&Options::default());
        assert!(html.contains("⚠ Incomplete: something could not be observed"), "{html}");
        let (us, uk) = (
            html.find("<th scope=\"col\" class=\"env\">us</th>").unwrap(),
            html.find("<th scope=\"col\" class=\"env\">uk</th>").unwrap(),
        );
        assert!(us < uk, "promotion order: us before uk");
        assert!(html.contains("<td>kubectl: context &lt;prod-us&gt; refused</td>"), "{html}");
        assert!(html.contains("<td class=\"empty\">not deployed</td>"), "uk runs no web: {html}");
        assert!(
            html.contains("<h2>Declared (GitOps)</h2>") && html.contains("<td>gitops:apps/uk/api.yaml</td>"),
            "{html}"
        );
        assert!(!html.contains("http-equiv=\"refresh\""), "a file does not reload itself");
    }

    #[test]
    fn without_a_promotion_path_every_environment_hangs_off_the_mainline() {
        let mut r = report();
        r.presentation.promotion.clear();
        let mut out = Vec::new();
        render_page(&r, View::Status, &Options::default(), &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(
            html.contains("<li>main → uk: ? commits (unknown)</li><li>main → us: ? commits (unknown)</li>"),
            "{html}"
        );
        // The first straight across, the second down from the mainline and across.
        assert_eq!(html.matches("<path class=\"arrow\" d=\"M").count(), 2, "{html}");
        assert_eq!(html.matches(" V").count(), 1, "{html}");
    }

    #[test]
    fn a_page_for_one_environment_or_service_shows_only_that() {
        let us = page(&Options { environment: Some("us".into()), refresh: Some(30), ..Options::default() });
        assert!(us.contains("data-env=\"us\"") && !us.contains("data-env=\"uk\""), "{us}");
        assert!(us.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(us.contains("<a href=\"/service/api\">api</a>"), "live pages link names: {us}");
        let web = page(&Options { service: Some("web".into()), ..Options::default() });
        assert!(web.contains("data-service=\"web\"") && !web.contains("data-service=\"api\""), "{web}");
        assert!(!web.contains("source-unreachable"), "another service's finding: {web}");
    }
}
