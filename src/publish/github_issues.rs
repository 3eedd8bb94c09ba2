//! The GitHub issues and pull requests target: each issue or pull request a deployment
//! shipped gets the environment's label (`deployed:production`) and, the first time it
//! reaches that environment, a comment; one the deployment removed (a rollback) loses the
//! label (`DELETE`, a 404 meaning it was not there is fine).
//!
//! Which commits name which issue: `#123`, `GH-123` and `OWNER/REPO#123` of this target's
//! repository, found in the ticket keys the ledger recorded for each commit (the `[tickets]`
//! patterns over the whole message; a merge commit's keys, such as `Merge pull request #45`,
//! are recorded on the commits it merged) and in each commit's subject (a squash merge's
//! `Title (#45)`), so `#123` counts here even when `[tickets]` leaves it out. References to
//! other repositories are left alone.
//!
//! "A comment once" holds across events: the comment is a `once:` step (see `publish`), so
//! an issue shipped, rolled back and shipped again to production is commented on once. The
//! ledger's delivery states are the memory: no comment listing on GitHub is read.
//!
//! Builds requests only; `publish` sends them.

use anyhow::Result;
use serde_json::json;

use super::github::{explain, Api};
use super::http::Response;
use super::{event, Done, Skip, Step, Target, ONCE};
use crate::config::publish::GitHubIssues;
use crate::ledger::{minute, Commit, Part, Span};

/// The issue numbers a span's shipped commits name, and those only its removed ones name,
/// each ascending.
pub fn refs(span: &Span, repository: Option<&str>) -> (Vec<u64>, Vec<u64>) {
    let shipped = numbers(&span.change.shipped, repository);
    let mut removed = numbers(&span.change.removed, repository);
    removed.retain(|n| !shipped.contains(n));
    (shipped, removed)
}

fn numbers(commits: &[Commit], repository: Option<&str>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for c in commits {
        out.extend(c.tickets.iter().filter_map(|k| number(k, repository)));
        out.extend(in_subject(&c.subject, repository));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The issue number of a ticket key: `#12`, `GH-12`, or `OWNER/REPO#12` of `repository`.
pub fn number(key: &str, repository: Option<&str>) -> Option<u64> {
    let digits = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten();
    if let Some(n) = key.strip_prefix('#').or_else(|| key.strip_prefix("GH-")) {
        return digits(n);
    }
    let (repo, n) = key.rsplit_once('#')?;
    repository.filter(|r| r.eq_ignore_ascii_case(repo)).and_then(|_| digits(n))
}

/// `#12` and `OWNER/REPO#12` (of `repository`) in a subject: digits after `#`, standing
/// alone; `&#38;`, `a#1` and other repositories' references are not issues here.
fn in_subject(subject: &str, repository: Option<&str>) -> Vec<u64> {
    let mut out = Vec::new();
    for (at, _) in subject.match_indices('#') {
        let rest = &subject[at + 1..];
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let after = rest[end..].chars().next();
        if end == 0 || after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let before = &subject[..at];
        let token = before.rsplit(|c: char| !(c.is_ascii_alphanumeric() || "._-/&".contains(c))).next().unwrap_or("");
        let ours = token.is_empty() || repository.is_some_and(|r| r.eq_ignore_ascii_case(token));
        if let (true, Ok(n)) = (ours, rest[..end].parse()) {
            out.push(n);
        }
    }
    out
}

/// `1.4.1 (10fea9a) + nightly (unresolved)`.
fn labels(parts: &[Part]) -> String {
    parts.iter().map(Part::label).collect::<Vec<_>>().join(" + ")
}

/// Label names in a path: RFC 3986 unreserved characters stay, the rest is `%XX`.
fn encode(s: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    s.bytes().map(|b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The comment an issue gets when it first reaches an environment.
fn comment(span: &Span, environment: &str) -> String {
    let running = labels(&span.parts);
    format!(
        "Deployed to **{environment}**: {} {running}, seen running {} UTC.\n\n<sub>prodiff event {}</sub>",
        span.service,
        minute(span.at()),
        event::id(span)
    )
}

impl GitHubIssues {
    /// The next request for issue `n`, shipped to `environment`, if one is due.
    fn shipped(&self, api: &Api, span: &Span, n: u64, environment: &str, done: &Done) -> Option<Step> {
        let label = self.label.replace("{environment}", environment);
        let name = format!("#{n}/label");
        if !done.contains_key(&name) {
            let body = json!({ "labels": [label] });
            return Some(Step::new(name, api.request("POST", &format!("/issues/{n}/labels"), Some(&body))));
        }
        let name = format!("{ONCE}{environment}/#{n}/comment");
        if self.comment && !done.contains_key(&name) {
            let body = json!({ "body": comment(span, environment) });
            return Some(Step::new(name, api.request("POST", &format!("/issues/{n}/comments"), Some(&body))));
        }
        None
    }

    /// The label's removal from issue `n`, if not done yet; 404 (it was not there) is done.
    fn removed(&self, api: &Api, n: u64, environment: &str, done: &Done) -> Option<Step> {
        let name = format!("#{n}/unlabel");
        if done.contains_key(&name) {
            return None;
        }
        let label = encode(&self.label.replace("{environment}", environment));
        let request = api.request("DELETE", &format!("/issues/{n}/labels/{label}"), None);
        Some(Step { also_ok: &[404], ..Step::new(name, request) })
    }
}

impl Target for GitHubIssues {
    fn id(&self) -> &str {
        &self.id
    }

    /// Per issue shipped: the label, then the comment once; per issue removed: the label's
    /// removal.
    fn next(&self, span: &Span, done: &Done) -> Result<Option<Step>> {
        let Some(environment) = self.github.environment(&span.environment) else { return Ok(None) };
        let (shipped, removed) = refs(span, self.github.repository.as_deref());
        if shipped.is_empty() && removed.is_empty() {
            return Ok(None);
        }
        let api = Api::new(&self.id, "github_issues", &self.github)?;
        let mut steps = shipped.iter().filter_map(|&n| self.shipped(&api, span, n, environment, done));
        let step = steps.next().or_else(|| removed.iter().find_map(|&n| self.removed(&api, n, environment, done)));
        Ok(step)
    }

    fn skip(&self, span: &Span) -> Skip {
        let (shipped, removed) = refs(span, self.github.repository.as_deref());
        if self.github.environment(&span.environment).is_none() || (shipped.is_empty() && removed.is_empty()) {
            return Skip::Quietly;
        }
        // Without a commit on one side the ledger's shipped (or removed) list is the whole
        // history up to the other: no issue is labelled or unlabelled on that.
        let unresolved = |parts: &[Part]| !parts.iter().any(|p| p.commit.is_some());
        match &span.change.from {
            _ if unresolved(&span.parts) => {
                Skip::Because(format!("labels left as they are: no commit resolved for {}", labels(&span.parts)))
            }
            Some(from) if unresolved(from) => Skip::Because(format!(
                "labels left as they are: no commit resolved for the state before, {}",
                labels(from)
            )),
            _ => Skip::No,
        }
    }

    fn explain(&self, r: &Response) -> String {
        explain(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_references_of_this_repository() {
        let repo = Some("shop/api");
        assert_eq!(in_subject("api: new cart (#12)", repo), [12]);
        assert_eq!(in_subject("Merge pull request #45 from shop/cart", repo), [45]);
        assert_eq!(in_subject("fix (shop/api#14) and Shop/API#15, not other/repo#16", repo), [14, 15]);
        assert!(in_subject("&#38; a#1 #12abc https://github.com/shop/api#3 #", repo).is_empty());
        assert_eq!(number("#7", repo), Some(7));
        assert_eq!(number("GH-13", repo), Some(13));
        assert_eq!(number("shop/api#9", repo), Some(9));
        assert_eq!(number("other/x#9", repo), None);
        assert_eq!(number("SHOP-12", repo), None);
        assert_eq!(number("#", repo), None);
        assert_eq!(encode("deployed:production eu"), "deployed%3Aproduction%20eu");
    }
}
