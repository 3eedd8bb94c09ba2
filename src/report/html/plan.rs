//! `prodiff plan ENV --to TARGET --format html`: per service, what the deploy ships and
//! removes (commits linked, tickets linked), the files it changes with risky ones marked,
//! and its findings; then the findings about the run and whether it is complete.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{badge, esc, plural};
use crate::model::{Finding, Level};
use crate::report::workflows::{PlanReport, ServicePlan};

pub fn render_plan(report: &PlanReport, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::new();
    let title = format!("Release plan: {} → {}", report.environment, report.to);
    super::open(&mut page, &title, &super::Options::default());
    let ctx = &report.presentation;
    let _ = write!(page, "<section id=\"summary\"><p>Repository <code>{}</code>", esc(&report.repository));
    if let Some(at) = ctx.generated_at {
        let _ = write!(page, ", planned at <time datetime=\"{0}\">{0}</time>", at.format("%Y-%m-%dT%H:%M:%SZ"));
    }
    let _ = write!(page, ": {} service{}.</p>", report.services.len(), plural(report.services.len()));
    page.push_str(if report.complete {
        "<p class=\"complete\" id=\"completeness\">✔ Complete: everything the plan stands on was observed.</p>"
    } else {
        "<p class=\"incomplete\" id=\"completeness\">⚠ Incomplete: something could not be observed (see the findings); the plan may be missing parts.</p>"
    });
    let all: Vec<&Finding> = report.findings.iter().chain(report.services.iter().flat_map(|s| &s.findings)).collect();
    let denied = all.iter().filter(|f| f.level == Level::Deny).count();
    let warned = all.iter().filter(|f| f.level == Level::Warn).count();
    let _ = writeln!(page, "<p class=\"counts\">{}</p></section>", super::level_counts(denied, warned));
    for s in &report.services {
        service(&mut page, report, s);
    }
    let run: Vec<&Finding> = super::super::table::dedup(report.findings.iter());
    super::findings_section(&mut page, &run);
    super::close(&mut page);
    out.write_all(page.as_bytes())
}

fn service(page: &mut String, report: &PlanReport, s: &ServicePlan) {
    let links = &report.presentation.links;
    let kind = if s.rollback { " <span class=\"lvl warn\">⚠ rollback</span>" } else { "" };
    let _ = write!(
        page,
        "<section class=\"service-plan\" data-service=\"{0}\"><h2>{0}: <code>{1}</code> → <code>{2}</code> ({3}){kind}</h2>",
        esc(&s.service),
        esc(s.running.short()),
        esc(s.target_commit.short()),
        esc(&s.target)
    );
    let _ = write!(page, "<p class=\"meta\">runs {}</p>", esc(&s.image));
    if let Some(image) = &s.target_image {
        let _ = write!(page, "<p>Deploy <code>{}</code></p>", esc(image));
    }
    let _ = write!(page, "<p><strong>Ships {} commit{}</strong></p>", s.added.len(), plural(s.added.len()));
    super::commits::list(page, &s.added, links);
    let _ =
        write!(page, "<p><strong>Removes {} running commit{}</strong></p>", s.removed.len(), plural(s.removed.len()));
    super::commits::list(page, &s.removed, links);
    if !s.tickets.is_empty() {
        page.push_str("<p><strong>Tickets</strong>:");
        for t in &s.tickets {
            super::commits::ticket(page, t, links);
        }
        page.push_str("</p>");
    }
    if !s.files.is_empty() {
        let (adds, dels) = s.files.iter().fold((0, 0), |(a, d), f| (a + f.added, d + f.removed));
        let _ = write!(
            page,
            "<table class=\"files\"><caption>{} file{} changed, +{adds} −{dels}</caption>\
             <thead><tr><th>File</th><th>+</th><th>−</th><th></th></tr></thead><tbody>",
            s.files.len(),
            plural(s.files.len())
        );
        for f in &s.files {
            let _ = write!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.path),
                f.added,
                f.removed,
                if f.risky { "<span class=\"lvl warn\">⚠ risky</span>" } else { "" }
            );
        }
        page.push_str("</tbody></table>");
    }
    for p in &s.patches {
        let _ = write!(page, "<details><summary>{}</summary><pre>{}</pre></details>", esc(&p.path), esc(&p.diff));
    }
    let shown: Vec<&Finding> = s.findings.iter().filter(|f| f.level > Level::Allow).collect();
    if !shown.is_empty() {
        page.push_str("<ul class=\"cell-findings\">");
        for f in shown {
            let _ = write!(
                page,
                "<li>{} <code>{}</code> {}{}</li>",
                badge(f.level),
                esc(f.code.as_str()),
                esc(&f.message),
                f.hint.as_deref().map(|h| format!(" <span class=\"meta\">— {}</span>", esc(h))).unwrap_or_default()
            );
        }
        page.push_str("</ul>");
    }
    page.push_str("</section>\n");
}
