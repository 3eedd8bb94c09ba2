//! The drift policy: a level per finding code, lag thresholds and exceptions with reasons
//! and expiry dates. `apply` is the one place findings get their final level; it is pure
//! (today's date is an argument) so every rule is unit-tested.

use chrono::{DateTime, Utc};

use crate::judge::report::Report;
use crate::model::{Code, Finding, Level};

pub use crate::config::judge::{Exception, LagRule, Policy, SeasoningRule};

impl Exception {
    fn matches(&self, f: &Finding) -> bool {
        let opt = |want: &Option<String>, got: &Option<String>| want.is_none() || want == got;
        self.code == f.code
            && opt(&self.environment, &f.environment)
            && opt(&self.service, &f.service)
            && self.key.as_ref().is_none_or(|k| f.key.split(',').any(|part| part.starts_with(k.as_str())))
    }

    fn scope(&self) -> String {
        let mut s = self.code.to_string();
        if let Some(e) = &self.environment {
            s.push_str(&format!(" in {e}"));
        }
        if let Some(sv) = &self.service {
            s.push_str(&format!("/{sv}"));
        }
        s
    }
}

impl Policy {
    /// CLI `--deny/--warn/--allow` win over the config for this run.
    pub fn override_levels(&mut self, deny: &[Code], warn: &[Code], allow: &[Code]) {
        for (codes, level) in [(allow, Level::Allow), (warn, Level::Warn), (deny, Level::Deny)] {
            for c in codes {
                self.levels.insert(*c, level);
            }
        }
    }

    pub fn level(&self, code: Code) -> Level {
        self.levels.get(&code).copied().unwrap_or(code.default_level())
    }

    /// Adds lag findings, sets every finding's level, applies exceptions and reports
    /// expired and unused ones.
    pub fn apply(&self, report: &mut Report, now: DateTime<Utc>) {
        // In a fleet, each row's mainline is its own repository's.
        let mainline_of = |repository: &Option<String>| {
            let own = report.repositories.iter().find(|r| Some(&r.name) == repository.as_ref());
            own.and_then(|r| r.mainline.as_ref())
                .map(|m| m.name.clone())
                .unwrap_or_else(|| report.mainline.name.clone())
        };
        let mainlines: Vec<String> = report.results.iter().map(|r| mainline_of(&r.repository)).collect();
        for (row, mainline) in report.results.iter_mut().zip(mainlines) {
            let vs_mainline = row.lag().filter(|(target, ..)| *target == mainline);
            let mut found = self.lag_findings(&row.environment, &row.service, vs_mainline, false, now);
            let vs_predecessor =
                row.promotion.as_ref().map(|p| (format!("env:{}", p.environment), p.behind, p.oldest_behind));
            found.extend(self.lag_findings(&row.environment, &row.service, vs_predecessor, true, now));
            found.extend(self.seasoning_findings(row, now));
            row.findings.extend(found);
        }
        let mut used = vec![false; self.exceptions.len()];
        let today = now.date_naive();
        for f in report.findings.iter_mut().chain(report.results.iter_mut().flat_map(|r| r.findings.iter_mut())) {
            f.level = self.level(f.code);
            if f.level == Level::Allow {
                continue;
            }
            if let Some((i, e)) = self.exceptions.iter().enumerate().find(|(_, e)| e.matches(f)) {
                used[i] = true;
                if e.expires.is_none_or(|d| today <= d) {
                    f.level = Level::Allow;
                    let until = e.expires.map(|d| format!(", until {d}")).unwrap_or_default();
                    f.suppressed = Some(format!("exception at {}: {}{until}", e.origin, e.reason));
                }
            }
        }
        for (i, e) in self.exceptions.iter().enumerate() {
            if let Some(d) = e.expires.filter(|d| today > *d) {
                let f = Finding::new(
                    Code::ExceptionExpired,
                    format!("the exception for {} at {} expired on {d} ({})", e.scope(), e.origin, e.reason),
                )
                .hint("fix what it excused, or renew it with a new date and reason")
                .key(e.origin.clone())
                .origin(e.origin.clone());
                report.findings.push(f);
            } else if !used[i] {
                let f = Finding::new(
                    Code::ExceptionUnused,
                    format!("the exception for {} at {} matched nothing", e.scope(), e.origin),
                )
                .hint("remove it: what it excused is gone")
                .key(e.origin.clone())
                .origin(e.origin.clone());
                report.findings.push(f);
            }
        }
        for f in report.findings.iter_mut().filter(|f| matches!(f.code, Code::ExceptionExpired | Code::ExceptionUnused))
        {
            f.level = self.level(f.code);
        }
    }

    /// Seasoning: the running commit must have run in the predecessor for `min_days` before
    /// it was deployed here (now, when the deployment time is unknown).
    fn seasoning_findings(&self, row: &crate::judge::report::Row, now: DateTime<Utc>) -> Vec<Finding> {
        let mut out = Vec::new();
        for rule in self.seasoning.iter().filter(|r| r.environment == row.environment) {
            let at =
                |f: Finding| f.key(rule.origin.clone()).origin(rule.origin.clone()).at(&row.environment, &row.service);
            let Some(p) = &row.promotion else {
                out.push(at(Finding::new(
                    Code::SeasoningUnverified,
                    format!("no predecessor runs {} on one resolved commit ({})", row.service, rule.origin),
                )));
                continue;
            };
            if !p.contains {
                out.push(at(Finding::new(
                    Code::SeasoningViolated,
                    format!(
                        "runs commits {} does not run, so they never seasoned there ({})",
                        p.environment, rule.origin
                    ),
                )
                .hint(format!("deploy to {} first and wait {} days", p.environment, rule.min_days))));
                continue;
            }
            let deployed = row.deployed_at().unwrap_or(now);
            let Some(since) = p.since else {
                out.push(at(Finding::new(
                    Code::SeasoningUnverified,
                    format!(
                        "{} reports no start times, so seasoning cannot be checked ({})",
                        p.environment, rule.origin
                    ),
                )));
                continue;
            };
            let days = (deployed - since).num_days();
            if days >= rule.min_days {
                continue;
            }
            if p.same {
                out.push(at(Finding::new(
                    Code::SeasoningViolated,
                    format!(
                        "reached {} {days} day(s) after {} started running it; at least {} required ({})",
                        row.environment, p.environment, rule.min_days, rule.origin
                    ),
                )
                .hint("roll back to the previous release, or accept it with an exception")));
            } else {
                out.push(at(Finding::new(
                    Code::SeasoningUnverified,
                    format!(
                        "{} has moved on to {}; how long it ran this commit is unknown ({})",
                        p.environment,
                        p.commit.short(),
                        rule.origin
                    ),
                )));
            }
        }
        out
    }

    fn lag_findings(
        &self,
        env: &str,
        service: &str,
        lag: Option<(String, usize, Option<DateTime<Utc>>)>,
        predecessor: bool,
        now: DateTime<Utc>,
    ) -> Vec<Finding> {
        let Some((target, commits, oldest)) = lag else { return Vec::new() };
        let days = oldest.map(|t| (now - t).num_days()).unwrap_or(0);
        let mut out = Vec::new();
        let applies = |r: &&LagRule| r.predecessor == predecessor && r.environment.as_deref().is_none_or(|e| e == env);
        for rule in self.lag.iter().filter(applies) {
            let mut over = Vec::new();
            if let Some(max) = rule.max_commits.filter(|m| commits > *m) {
                over.push(format!("{commits} commits behind {target} (limit {max})"));
            }
            if let Some(max) = rule.max_days.filter(|m| commits > 0 && days > *m) {
                over.push(format!("{target}'s oldest undeployed commit is {days} days old (limit {max})"));
            }
            if !over.is_empty() {
                out.push(
                    Finding::new(Code::LagExceeded, format!("{} ({})", over.join("; "), rule.origin))
                        .hint("deploy a newer release, or raise the limit")
                        .key(rule.origin.clone())
                        .origin(rule.origin.clone())
                        .at(env, service),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::report::{Mainline, Report, Row, SCHEMA_VERSION};

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            command: "check".into(),
            repository: "r".into(),
            repositories: vec![],
            mainline: Mainline { name: "main".into(), commit: crate::model::CommitId("0".repeat(40)) },
            shallow: false,
            complete: true,
            results: vec![Row::bare("production", "api", findings)],
            declared: vec![],
            findings: vec![],
            daemons: Vec::new(),
            check: None,
            presentation: Default::default(),
            observed_at: None,
        }
    }

    fn exception(expires: Option<&str>) -> Exception {
        Exception {
            code: Code::HotfixDrift,
            environment: Some("production".into()),
            service: None,
            key: None,
            reason: "SHOP-120, merged upstream next sprint".into(),
            expires: expires.map(|d| d.parse().unwrap()),
            origin: "prodiff.toml:9".into(),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn drift() -> Finding {
        Finding::new(Code::HotfixDrift, "drift").key("abc").at("production", "api")
    }

    #[test]
    fn an_exception_allows_the_finding_until_it_expires() {
        let p = Policy { exceptions: vec![exception(Some("2026-12-31"))], ..Policy::default() };
        let mut r = report(vec![drift()]);
        p.apply(&mut r, now());
        let f = &r.results[0].findings[0];
        assert_eq!(f.level, Level::Allow);
        assert!(f.suppressed.as_ref().unwrap().contains("SHOP-120"));
        assert!(r.findings.is_empty());
    }

    #[test]
    fn an_expired_exception_fails_and_says_so() {
        let p = Policy { exceptions: vec![exception(Some("2026-11-01"))], ..Policy::default() };
        let mut r = report(vec![drift()]);
        p.apply(&mut r, now());
        assert_eq!(r.results[0].findings[0].level, Level::Deny);
        assert_eq!(r.findings[0].code, Code::ExceptionExpired);
        assert_eq!(r.findings[0].level, Level::Deny);
        assert!(r.findings[0].message.contains("expired on 2026-11-01"), "{}", r.findings[0].message);
    }

    #[test]
    fn an_unused_exception_is_a_warning() {
        let p = Policy { exceptions: vec![exception(None)], ..Policy::default() };
        let mut r = report(vec![]);
        p.apply(&mut r, now());
        assert_eq!(r.findings[0].code, Code::ExceptionUnused);
        assert_eq!(r.findings[0].level, Level::Warn);
    }

    #[test]
    fn levels_from_config_and_command_line() {
        let mut p = Policy::default();
        p.levels.insert(Code::HotfixDrift, Level::Warn);
        let mut r = report(vec![drift()]);
        p.apply(&mut r, now());
        assert_eq!(r.results[0].findings[0].level, Level::Warn);
        p.override_levels(&[Code::HotfixDrift], &[], &[]);
        p.apply(&mut r, now());
        assert_eq!(r.results[0].findings[0].level, Level::Deny);
    }

    #[test]
    fn lag_rules_count_commits_and_days() {
        let p = Policy {
            lag: vec![LagRule {
                environment: Some("production".into()),
                predecessor: false,
                max_commits: Some(2),
                max_days: Some(7),
                origin: "prodiff.toml:4".into(),
            }],
            ..Policy::default()
        };
        let old: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let f = p.lag_findings("production", "api", Some(("main".into(), 3, Some(old))), false, now());
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("3 commits behind main (limit 2)"), "{}", f[0].message);
        assert!(f[0].message.contains("21 days old (limit 7)"), "{}", f[0].message);
        assert!(p.lag_findings("staging", "api", Some(("main".into(), 30, Some(old))), false, now()).is_empty());
        assert!(p.lag_findings("production", "api", Some(("main".into(), 2, Some(now()))), false, now()).is_empty());
    }
}
