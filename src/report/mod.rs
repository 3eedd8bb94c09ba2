//! Stage 6, report: takes the `Report` the judge filled in (`crate::judge::report`) and
//! gives text. Renderers only: table, JSON, markdown, GitHub, JUnit and the release
//! workflows' views, each writing into any `io::Write`, so tests render into a `Vec<u8>`;
//! nothing else prints.

pub mod github;
pub mod json;
pub mod junit;
pub mod ledger;
pub mod markdown;
pub mod table;
pub mod why;
pub mod workflows;

use std::io::{self, Write};

use crate::judge::report::{side_counts, Mainline, Report, Row};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal (colour only on a terminal; honours NO_COLOR).
    Table,
    /// The versioned JSON schema (see the README), stable ordering.
    Json,
    /// For pull-request comments and release notes.
    Markdown,
    /// GitHub Actions annotations, then the table; a job summary when GITHUB_STEP_SUMMARY is set.
    Github,
    /// JUnit XML for CI test reports: a test case per service in each environment, failed by
    /// denied findings.
    Junit,
}

/// Which picture of the report a command wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// One line per service × environment × image.
    Status,
    /// The commit lists of every row.
    Diff,
}

/// Renders `report` in `format`. The only entry point commands use.
pub fn render(report: &Report, view: View, format: Format, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => table::render(report, view, color, out),
        Format::Json => json::render(report, out),
        Format::Markdown => markdown::render(report, view, out),
        Format::Github => github::render(report, view, out),
        Format::Junit => junit::render(report, out),
    }
}
