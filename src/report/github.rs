//! GitHub Actions: workflow commands (`::error`, `::warning`) that annotate the run, then the
//! plain table for the log. The job summary (markdown) is written by `app` when
//! `GITHUB_STEP_SUMMARY` is set.

use std::io::{self, Write};

use super::{Report, View};
use crate::model::Level;

pub fn render(report: &Report, view: View, out: &mut dyn Write) -> io::Result<()> {
    for f in super::table::dedup(report.all_findings()) {
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
        writeln!(out, "::{command} title={}::{}", escape_property(title.trim()), escape_data(&message))?;
    }
    super::table::render(report, view, false, out)
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
    }
}
