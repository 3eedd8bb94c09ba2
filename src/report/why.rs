//! Renders `prodiff why`: the change's links once, then per service and environment the
//! links particular to it and the next step. Table, JSON, markdown (for a ticket comment)
//! and GitHub annotations.

use std::io::{self, Write};

use serde::Serialize;

use super::Format;
use crate::judge::report::Mainline;
use crate::judge::why::{Link, ServiceChain};
use crate::model::{CommitRecord, Finding};

/// `prodiff why`: the chain from one change to each environment.
#[derive(Debug, Serialize)]
pub struct WhyReport {
    pub schema_version: u32,
    pub command: String,
    pub repository: String,
    pub mainline: Mainline,
    /// False when a link is unknown (`?`) or a finding says what could not be observed.
    pub complete: bool,
    pub query: String,
    pub commits: Vec<CommitRecord>,
    /// The links every environment shares: repository, mainline, release.
    pub change: Vec<Link>,
    /// What to do when one of those breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub services: Vec<ServiceChain>,
    pub findings: Vec<Finding>,
}

pub fn render(report: &WhyReport, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => super::json::to_writer(report, out),
        Format::Markdown => markdown(report, out),
        Format::Github => {
            super::github::annotate(report.findings.iter(), out)?;
            for s in &report.services {
                for e in &s.environments {
                    let next = e.next.as_deref().unwrap_or("nothing to do");
                    let title = format!("prodiff why {} in {}/{}", report.query, e.environment, s.service);
                    super::github::notice(&title, &format!("{}; next: {next}", e.state.describe()), out)?;
                }
            }
            table(report, out)
        }
        // JUnit is refused for this command before it runs (app::run).
        Format::Table | Format::Junit => table(report, out),
    }
}

/// Links the environment's chain has beyond the change's and the image's.
fn own<'a>(links: &'a [Link], report: &WhyReport, service: &ServiceChain) -> impl Iterator<Item = &'a Link> {
    let shared: Vec<&'static str> =
        report.change.iter().map(|l| l.step).chain(service.image.iter().map(|l| l.step)).collect();
    links.iter().filter(move |l| !shared.contains(&l.step))
}

fn table(report: &WhyReport, out: &mut dyn Write) -> io::Result<()> {
    let n = report.commits.len();
    writeln!(out, "why {}: {n} commit{}", report.query, if n == 1 { "" } else { "s" })?;
    for c in &report.commits {
        writeln!(out, "  {}  {}", c.sha.short(), c.subject)?;
    }
    writeln!(out)?;
    let width = 22;
    for l in &report.change {
        writeln!(out, "  {} {:width$} {}", l.mark.symbol(), l.step, l.evidence)?;
    }
    if let Some(next) = &report.next {
        writeln!(out, "  next: {next}")?;
    }
    for s in &report.services {
        writeln!(out)?;
        writeln!(out, "{}", s.service)?;
        if let Some(l) = &s.image {
            writeln!(out, "  {} {:width$} {}", l.mark.symbol(), l.step, l.evidence)?;
        }
        for e in &s.environments {
            writeln!(out, "  {}: {}", e.environment, e.state.describe())?;
            for l in own(&e.links, report, s) {
                writeln!(out, "    {} {:w$} {}", l.mark.symbol(), l.step, l.evidence, w = width - 2)?;
            }
            if let Some(next) = &e.next {
                writeln!(out, "    next: {next}")?;
            }
        }
    }
    if report.services.is_empty() && !report.commits.is_empty() {
        writeln!(out, "\nNo service's paths include these commits.")?;
    }
    writeln!(out)?;
    super::workflows::run_footer(&report.findings, report.complete, out)
}

fn markdown(report: &WhyReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "## prodiff why {}\n", report.query)?;
    for c in &report.commits {
        writeln!(out, "- `{}` {}", c.sha.short(), c.subject)?;
    }
    writeln!(out)?;
    for l in &report.change {
        writeln!(out, "- {} **{}**: {}", l.mark.symbol(), l.step, l.evidence)?;
    }
    if let Some(next) = &report.next {
        writeln!(out, "\n**Next:** {next}")?;
    }
    for s in &report.services {
        writeln!(out, "\n### {}\n", s.service)?;
        if let Some(l) = &s.image {
            writeln!(out, "- {} **{}**: {}", l.mark.symbol(), l.step, l.evidence)?;
        }
        for e in &s.environments {
            writeln!(out, "\n**{}**: {}\n", e.environment, e.state.describe())?;
            for l in own(&e.links, report, s) {
                writeln!(out, "- {} {}: {}", l.mark.symbol(), l.step, l.evidence)?;
            }
            if let Some(next) = &e.next {
                writeln!(out, "- next: {next}")?;
            }
        }
    }
    writeln!(out)?;
    super::workflows::md_findings(&report.findings, out)?;
    super::workflows::md_incomplete(report.complete, out)
}
