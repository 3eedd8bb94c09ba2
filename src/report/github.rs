//! GitHub Actions: workflow commands (`::error`, `::warning`) that annotate the run, then the
//! plain table for the log. The job summary (markdown) is written by `commands` when
//! `GITHUB_STEP_SUMMARY` is set.
//!
//! No line can inject a workflow command: annotation values are escaped as the toolkit
//! does, and the table is printed between `::stop-commands::TOKEN` and `::TOKEN::` with a
//! token no one can predict (the table itself also escapes control characters, so a
//! newline in a label never starts a line).

use std::io::{self, Write};

use super::{Report, View};
use crate::model::{Finding, Level};

pub fn render(report: &Report, view: View, out: &mut dyn Write) -> io::Result<()> {
    if report.repositories.is_empty() {
        annotate(report.all_findings(), out)?;
    } else {
        // In a fleet, a row's annotation names its repository.
        let mut all: Vec<Finding> = report.findings.clone();
        for row in &report.results {
            let repo = row.repository.as_deref().unwrap_or("-");
            all.extend(
                row.findings.iter().map(|f| Finding { message: format!("[{repo}] {}", f.message), ..f.clone() }),
            );
        }
        annotate(all.iter(), out)?;
    }
    let token = stop_token();
    writeln!(out, "::stop-commands::{token}")?;
    super::table::render(report, view, false, out)?;
    writeln!(out, "::{token}::")
}

/// One `::error` (denied) or `::warning` per distinct finding; allowed ones are not shown.
/// A finding about a config entry (a policy rule, an exception) points at its file and line.
pub fn annotate<'a>(findings: impl Iterator<Item = &'a Finding>, out: &mut dyn Write) -> io::Result<()> {
    for f in super::table::dedup(findings) {
        let command = match f.level {
            Level::Deny => "error",
            Level::Warn => "warning",
            Level::Allow => continue,
        };
        let place = super::table::place(f);
        let title = format!("prodiff {} {}", f.code, place.trim_end_matches([':', ' ']));
        let mut message = format!("{place}{}", f.message);
        if let Some(h) = &f.hint {
            message.push_str(&format!("\nhint: {h}"));
        }
        writeln!(out, "::{command} {}::{}", properties(f, title.trim()), escape_data(&message))?;
    }
    Ok(())
}

/// A notice (not a failure): what a question-answering command found.
pub fn notice(title: &str, message: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "::notice title={}::{}", escape_property(title), escape_data(message))
}

/// A run that could not do its job (exit 2) as one `::error`, on the config line at fault
/// when there is one (`file`, `line`, `col`), so the check points at it.
pub fn failure(message: &str, at: Option<(&std::path::Path, usize, usize)>, out: &mut dyn Write) -> io::Result<()> {
    let place = match at {
        Some((file, line, col)) => {
            format!("file={},line={line},col={col},", escape_property(&workspace_relative(&file.display().to_string())))
        }
        None => String::new(),
    };
    writeln!(out, "::error {place}title=prodiff::{}", escape_data(message))
}

/// `file=F,line=N,title=T` when the finding names a config entry, else `title=T`.
fn properties(f: &Finding, title: &str) -> String {
    let located = f.origin.as_deref().and_then(|o| o.rsplit_once(':')).filter(|(_, l)| l.parse::<u32>().is_ok());
    match located {
        Some((file, line)) => {
            format!("file={},line={line},title={}", escape_property(&workspace_relative(file)), escape_property(title))
        }
        None => format!("title={}", escape_property(title)),
    }
}

/// GitHub resolves `file=` against the workspace: a path under the current directory is
/// given relative to it.
fn workspace_relative(file: &str) -> String {
    let path = std::path::Path::new(file);
    let cwd = std::env::current_dir().ok();
    cwd.and_then(|d| path.strip_prefix(&d).ok().map(|p| p.display().to_string())).unwrap_or_else(|| file.to_string())
}

/// 128 unpredictable bits (std's hash keys are random per process), as hex.
fn stop_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        h.finish()
    };
    format!("prodiff-{:016x}{:016x}", word(), word())
}

/// https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(escape_data("50%\na"), "50%25%0Aa");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
        assert_ne!(stop_token(), stop_token());
    }
}
