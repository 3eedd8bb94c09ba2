//! JUnit XML, the test-report format CI systems display (GitLab merge requests, Jenkins,
//! Azure Pipelines, most CI dashboards): one test suite per environment, one test case per
//! service and image there. A case fails when one of its findings is denied, is an error when
//! something about it could not be observed (the exit code would be 3), and passes otherwise;
//! warnings go to its output. Findings about the whole run that are not allowed get a suite
//! of their own, one case each.
//! Deterministic: no timestamps or durations.

use std::io::{self, Write};

use super::Report;
use crate::model::{Finding, Level};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut suites: Vec<Suite> = Vec::new();
    for row in &report.results {
        let name = match &row.repository {
            Some(repo) => format!("{repo}/{} {}", row.service, row.image),
            None => format!("{} {}", row.service, row.image),
        };
        let case = Case { name, findings: row.findings.iter().collect() };
        match suites.iter_mut().find(|s| s.name == row.environment) {
            Some(suite) => suite.cases.push(case),
            None => suites.push(Suite { name: row.environment.clone(), cases: vec![case] }),
        }
    }
    let run: Vec<Case> = super::table::dedup(report.findings.iter().filter(|f| f.level > Level::Allow))
        .into_iter()
        .map(|f| Case { name: super::table::place(f) + f.code.as_str(), findings: vec![f] })
        .collect();
    if !run.is_empty() {
        suites.push(Suite { name: "prodiff".into(), cases: run });
    }
    let all: Vec<&Case> = suites.iter().flat_map(|s| &s.cases).collect();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="prodiff {}" tests="{}" failures="{}" errors="{}">"#,
        escape(&report.command),
        all.len(),
        all.iter().filter(|c| c.outcome() == Outcome::Failure).count(),
        all.iter().filter(|c| c.outcome() == Outcome::Error).count(),
    )?;
    for suite in &suites {
        suite.render(out)?;
    }
    writeln!(out, "</testsuites>")
}

struct Suite<'a> {
    name: String,
    cases: Vec<Case<'a>>,
}

struct Case<'a> {
    name: String,
    findings: Vec<&'a Finding>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Failure,
    Error,
}

impl Suite<'_> {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let count = |o: Outcome| self.cases.iter().filter(|c| c.outcome() == o).count();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}">"#,
            escape(&self.name),
            self.cases.len(),
            count(Outcome::Failure),
            count(Outcome::Error),
        )?;
        for case in &self.cases {
            case.render(&self.name, out)?;
        }
        writeln!(out, "  </testsuite>")
    }
}

impl Case<'_> {
    /// Denied wins (it decides exit code 1); then anything unobserved (exit code 3).
    fn outcome(&self) -> Outcome {
        if self.findings.iter().any(|f| f.level == Level::Deny) {
            Outcome::Failure
        } else if self.findings.iter().any(|f| f.level > Level::Allow && f.code.is_incomplete()) {
            Outcome::Error
        } else {
            Outcome::Pass
        }
    }

    fn render(&self, suite: &str, out: &mut dyn Write) -> io::Result<()> {
        let open = format!(r#"    <testcase classname="{}" name="{}""#, escape(suite), escape(&self.name));
        let shown: Vec<&&Finding> = self.findings.iter().filter(|f| f.level > Level::Allow).collect();
        if shown.is_empty() {
            return writeln!(out, "{open}/>");
        }
        writeln!(out, "{open}>")?;
        let (tag, decisive): (&str, Vec<&&Finding>) = match self.outcome() {
            Outcome::Failure => ("failure", shown.iter().copied().filter(|f| f.level == Level::Deny).collect()),
            Outcome::Error => ("error", shown.iter().copied().filter(|f| f.code.is_incomplete()).collect()),
            Outcome::Pass => ("", Vec::new()),
        };
        if let Some(first) = decisive.first() {
            let codes: Vec<&str> = decisive.iter().map(|f| f.code.as_str()).collect();
            writeln!(
                out,
                r#"      <{tag} type="{}" message="{}">{}</{tag}>"#,
                escape(&codes.join(",")),
                escape(&first.message),
                escape(&text(&decisive)),
            )?;
        }
        let rest: Vec<&&Finding> = shown.iter().copied().filter(|f| !decisive.contains(f)).collect();
        if !rest.is_empty() {
            writeln!(out, "      <system-out>{}</system-out>", escape(&text(&rest)))?;
        }
        writeln!(out, "    </testcase>")
    }
}

/// Findings as the table prints them: level, code, message, hint.
fn text(findings: &[&&Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        s.push_str(&format!("{} {}: {}\n", f.level, f.code, f.message));
        if let Some(h) = &f.hint {
            s.push_str(&format!("hint: {h}\n"));
        }
    }
    s
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry become U+FFFD.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::report::{Mainline, Row};
    use crate::model::{Code, CommitId};

    #[test]
    fn denied_is_a_failure_unobserved_an_error_and_run_findings_a_suite_of_their_own() {
        let unreachable = Finding::new(Code::SourceUnreachable, "kubectl: context prod-us refused").at("us", "api");
        let drift = Finding::new(Code::HotfixDrift, "runs 1 commit <main> lacks").at("uk", "api");
        let report = Report {
            schema_version: 1,
            command: "check".into(),
            repository: "/repo".into(),
            repositories: vec![],
            mainline: Mainline { name: "main".into(), commit: CommitId("a".repeat(40)) },
            shallow: true,
            complete: false,
            results: vec![
                Row::bare("uk", "api", vec![drift]),
                Row::bare("us", "api", vec![unreachable]),
                Row::bare("us", "web", vec![]),
            ],
            findings: vec![Finding::new(Code::ShallowClone, "/repo is a shallow clone")],
            declared: vec![],
            daemons: vec![],
            check: None,
            presentation: Default::default(),
            observed_at: None,
        };
        let mut out = Vec::new();
        render(&report, &mut out).unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(xml.contains(r#"<testsuites name="prodiff check" tests="4" failures="1" errors="2">"#), "{xml}");
        assert!(xml.contains(r#"<testsuite name="us" tests="2" failures="0" errors="1">"#), "{xml}");
        assert!(xml.contains(r#"<failure type="hotfix-drift" message="runs 1 commit &lt;main&gt; lacks">"#), "{xml}");
        assert!(
            xml.contains(r#"<error type="source-unreachable" message="kubectl: context prod-us refused">"#),
            "{xml}"
        );
        assert!(xml.contains(r#"<testcase classname="us" name="web img"/>"#), "{xml}");
        assert!(xml.contains(r#"<testcase classname="prodiff" name="shallow-clone">"#), "{xml}");
    }

    #[test]
    fn text_and_attributes_are_escaped_and_control_characters_replaced() {
        assert_eq!(escape(r#"a<b & "c" 'd'>"#), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
        assert_eq!(escape("tab\tnew\nbell\u{7}"), "tab\tnew\nbell\u{fffd}");
    }
}
