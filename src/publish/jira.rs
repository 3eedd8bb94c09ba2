//! The Jira Cloud target (REST API v3). For each ticket an event in one of the configured
//! environments shipped or removed, in order: the label (`PUT /rest/api/3/issue/{key}` with
//! `update.labels` `add`, or `remove` when the change took the ticket's commits out), a comment
//! in Atlassian Document Format (`POST …/comment`), and, for a shipped ticket with a
//! `transition`, the transitions the issue offers (`GET …/transitions`) and the one named
//! (`POST …/transitions`). Each is a step, so a retry resumes after the last one Jira accepted.
//!
//! Auth is basic, `email:token`; the token comes from the environment and is registered with
//! the redaction layer together with the base64 form the `Authorization` header carries.
//!
//! A key the ticket patterns matched need not be an issue (`UTF-8` aside, a project key in
//! prose, an issue since deleted): Jira's 404 (`errorMessages`, the body Jira gives for an
//! issue that does not exist or that the account may not see) is accepted as a note, and
//! that ticket's later steps are skipped. A transition the issue does not offer from its
//! status (it is already there, or past it) is skipped. Other errors (401, 403, 400 with
//! `errorMessages`/`errors`, 429 with `Retry-After`) are failures retried later, Jira's
//! messages in the failure.

use anyhow::Result;
use base64::Engine as _;
use serde_json::{json, Value};

use super::http::{Request, Response};
use super::tickets::{self, Direction, Ticket};
use super::{event, secret_from_env, Done, Step, Target};
use crate::config::JiraTarget;
use crate::ledger::{Commit, Part, Span};

/// What a dry run shows for a transition id Jira has not been asked about yet.
const TRANSITION_PLACEHOLDER: &str = "{transition id}";

impl Target for JiraTarget {
    fn id(&self) -> &str {
        &self.id
    }

    /// The first step not yet done of the first ticket not yet done.
    fn next(&self, span: &Span, done: &Done) -> Result<Option<Step>> {
        if !self.environments.contains(&span.environment) {
            return Ok(None);
        }
        for t in tickets::tickets(span, |k| tickets::is_jira_key(k, &self.projects)) {
            if let Some(step) = self.ticket_step(span, &t, done)? {
                return Ok(Some(step));
            }
        }
        Ok(None)
    }

    /// Jira's `ErrorCollection` (`errorMessages`, `errors` by field) as one line.
    fn explain(&self, r: &Response) -> String {
        let text = crate::redact::clip(&crate::redact::text(&explain(&r.body)), 200);
        format!("HTTP {} {text}", r.status).trim_end().to_string()
    }
}

impl JiraTarget {
    /// The next step for one ticket, None when it is done (or is no issue).
    fn ticket_step(&self, span: &Span, t: &Ticket, done: &Done) -> Result<Option<Step>> {
        let name = |s: &str| format!("{}/{s}", t.key);
        let kept = ["label", "comment", "transitions", "transition"].map(|s| done.get(&name(s)));
        if kept.iter().flatten().any(|v| v.get("missing").is_some()) {
            return Ok(None);
        }
        if let (Some(label), None) = (self.label_for(span), kept[0]) {
            let op = if t.direction == Direction::Shipped { "add" } else { "remove" };
            let body = json!({"update": {"labels": [{op: label}]}});
            return Ok(Some(self.step(name("label"), "PUT", &t.key, "", Some(body), |r| or_missing(r, Value::Null))?));
        }
        if self.comment && kept[1].is_none() {
            let body = json!({"body": self.comment_doc(span, t)});
            return Ok(Some(self.step(name("comment"), "POST", &t.key, "/comment", Some(body), keep_comment)?));
        }
        let Some(wanted) = self.transition.as_deref().filter(|_| t.direction == Direction::Shipped) else {
            return Ok(None);
        };
        let Some(offered) = kept[2] else {
            return Ok(Some(self.step(name("transitions"), "GET", &t.key, "/transitions", None, keep_transitions)?));
        };
        if kept[3].is_some() {
            return Ok(None);
        }
        let id = match offered {
            Value::Null => TRANSITION_PLACEHOLDER.to_string(),
            list => match find_transition(list, wanted) {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let body = json!({"transition": {"id": id}});
        Ok(Some(
            self.step(name("transition"), "POST", &t.key, "/transitions", Some(body), |r| or_missing(r, Value::Null))?,
        ))
    }

    /// The label for an event's environment, when labels are on.
    fn label_for(&self, span: &Span) -> Option<String> {
        self.label.as_ref().map(|l| l.replace("{environment}", &span.environment))
    }

    /// A request to `/rest/api/3/issue/KEY{path}`, 404 accepted (as a note, see `or_missing`).
    fn step(
        &self,
        name: String,
        method: &'static str,
        key: &str,
        path: &str,
        body: Option<Value>,
        keep: fn(&Response) -> Result<Value, String>,
    ) -> Result<Step> {
        let url = format!("{}/rest/api/3/issue/{key}{path}", self.url);
        let mut headers = vec![
            ("authorization".to_string(), self.authorization()?),
            ("accept".to_string(), "application/json".to_string()),
            ("user-agent".to_string(), concat!("prodiff/", env!("CARGO_PKG_VERSION")).to_string()),
        ];
        let body = match body {
            Some(b) => {
                headers.push(("content-type".to_string(), "application/json".to_string()));
                serde_json::to_string(&b)?
            }
            None => String::new(),
        };
        Ok(Step { name, request: Request { method, url, headers, body }, also_ok: &[404], keep })
    }

    /// `Basic base64(email:token)`, the token and that header value registered as secrets.
    fn authorization(&self) -> Result<String> {
        let token = secret_from_env(&self.id, &self.token_env, "API token")?;
        crate::redact::register_login(&self.email, &token);
        let pair = format!("{}:{token}", self.email);
        Ok(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
    }

    /// The comment, in Atlassian Document Format: what happened to the ticket where, the
    /// ticket's commits, and when prodiff saw it.
    fn comment_doc(&self, span: &Span, t: &Ticket) -> Value {
        let what = match t.direction {
            Direction::Shipped => format!("{} was deployed to {}: ", t.key, span.environment),
            Direction::Removed => {
                format!("{} was removed from {} by a {}: ", t.key, span.environment, span.change.kind.as_str())
            }
        };
        let from = span.change.from.as_deref().map_or("?".to_string(), labels);
        let change = format!("{} {from} → {}", span.service, labels(&span.parts));
        let when = crate::report::ledger::when_text(span.started_at, span.prev_seen, span.first_seen);
        let seen = format!("Seen by prodiff {when} UTC (event {}).", event::id(span));
        let mut content = vec![json!({"type": "paragraph", "content": [text(&what), strong(&change)]})];
        if !t.commits.is_empty() {
            let items: Vec<Value> = t.commits.iter().map(|c| self.commit_item(c)).collect();
            content.push(json!({"type": "bulletList", "content": items}));
        }
        content.push(json!({"type": "paragraph", "content": [text(&seen)]}));
        json!({"type": "doc", "version": 1, "content": content})
    }

    /// A list item: the short SHA as code (linked when `commit_url` is set), the subject.
    fn commit_item(&self, c: &Commit) -> Value {
        let short = &c.sha[..c.sha.len().min(7)];
        let mut marks = vec![json!({"type": "code"})];
        if let Some(t) = &self.commit_url {
            marks.push(json!({"type": "link", "attrs": {"href": t.replace("{sha}", &c.sha)}}));
        }
        let sha = json!({"type": "text", "text": short, "marks": marks});
        json!({"type": "listItem", "content": [{"type": "paragraph", "content": [sha, text(&format!(" {}", c.subject))]}]})
    }
}

fn labels(parts: &[Part]) -> String {
    parts.iter().map(Part::label).collect::<Vec<_>>().join(" + ")
}

fn text(s: &str) -> Value {
    json!({"type": "text", "text": s})
}

fn strong(s: &str) -> Value {
    json!({"type": "text", "text": s, "marks": [{"type": "strong"}]})
}

/// A 404 in Jira's own words is a key that is no issue (or one the account may not see):
/// kept as `missing`, with a note. A 404 in other words (an HTML page: the site's URL is
/// wrong) is a failure. Any other accepted answer keeps `value`.
fn or_missing(r: &Response, value: Value) -> Result<Value, String> {
    if r.status != 404 {
        return Ok(value);
    }
    let said = serde_json::from_str::<Value>(&r.body).ok().filter(|v| v.get("errorMessages").is_some());
    match said {
        Some(_) => {
            let why = crate::redact::clip(&crate::redact::text(&explain(&r.body)), 200);
            Ok(
                json!({"missing": true, "note": format!("no such issue, or the account may not see it (HTTP 404 {why}): skipped")}),
            )
        }
        None => Err(format!(
            "HTTP 404 {}: not Jira's answer (is `url` the site's address?)",
            crate::redact::clip(&crate::redact::text(r.body.trim()), 80)
        )),
    }
}

/// A comment's id, from Jira's 201.
fn keep_comment(r: &Response) -> Result<Value, String> {
    let id = serde_json::from_str::<Value>(&r.body).ok().and_then(|v| v.get("id").cloned()).unwrap_or(Value::Null);
    or_missing(r, json!({"id": id}))
}

/// The transitions an issue offers: `[{"id", "name", "to"}]` (the status each leads to).
fn keep_transitions(r: &Response) -> Result<Value, String> {
    if r.status == 404 {
        return or_missing(r, Value::Null);
    }
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("transitions: not JSON ({e})"))?;
    let list = v.get("transitions").and_then(Value::as_array).ok_or("transitions: no `transitions` list")?;
    let kept: Vec<Value> =
        list.iter().map(|t| json!({"id": t.get("id"), "name": t.get("name"), "to": t.pointer("/to/name")})).collect();
    Ok(Value::Array(kept))
}

/// The id of the transition `wanted` names (its id, or its name in any case) among those kept.
fn find_transition(offered: &Value, wanted: &str) -> Option<String> {
    let list = offered.as_array()?;
    list.iter()
        .find(|t| {
            t.get("id").and_then(Value::as_str) == Some(wanted)
                || t.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
        .and_then(|t| t.get("id").and_then(Value::as_str).map(str::to_string))
}

/// Jira's `ErrorCollection` as one line (`errorMessages`, then `field: message` for each of
/// `errors`), or the body as it is when it is not one.
pub fn explain(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else { return body.trim().to_string() };
    let mut parts: Vec<String> = v
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(errors) = v.get("errors").and_then(Value::as_object) {
        parts.extend(errors.iter().map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or(&m.to_string()))));
    }
    if parts.is_empty() {
        body.trim().to_string()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_errors_read_as_one_line() {
        let e = r#"{"errorMessages":[],"errors":{"labels":"Field 'labels' cannot be set. It is not on the appropriate screen, or unknown."}}"#;
        assert_eq!(
            explain(e),
            "labels: Field 'labels' cannot be set. It is not on the appropriate screen, or unknown."
        );
        let e = r#"{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}"#;
        assert_eq!(explain(e), "Issue does not exist or you do not have permission to see it.");
        assert_eq!(
            explain("Client must be authenticated to access this resource.\n"),
            "Client must be authenticated to access this resource."
        );
        assert_eq!(explain(r#"{"message":"x"}"#), r#"{"message":"x"}"#);
    }

    #[test]
    fn a_transition_is_found_by_id_or_name() {
        let offered = json!([{"id": "11", "name": "To Do", "to": "To Do"}, {"id": "31", "name": "Done", "to": "Done"}]);
        assert_eq!(find_transition(&offered, "31").as_deref(), Some("31"));
        assert_eq!(find_transition(&offered, "done").as_deref(), Some("31"));
        assert_eq!(find_transition(&offered, "Closed"), None);
    }

    #[test]
    fn only_a_404_in_jiras_words_is_a_missing_issue() {
        let r = |status, body: &str| Response { status, retry_after: None, limited: false, body: body.to_string() };
        let missing = or_missing(
            &r(
                404,
                r#"{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}"#,
            ),
            Value::Null,
        )
        .unwrap();
        assert_eq!(missing["missing"], true);
        assert!(missing["note"].as_str().unwrap().starts_with("no such issue"));
        assert!(or_missing(&r(404, "<html>Not Found</html>"), Value::Null).is_err());
        assert_eq!(or_missing(&r(204, ""), Value::Null), Ok(Value::Null));
    }
}
