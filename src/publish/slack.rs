//! The Slack incoming-webhook target: one Block Kit message per event (environment, service,
//! from → to, the commits shipped and removed, tickets, commit links when configured). The
//! webhook URL is the credential: it comes from the environment and is redacted everywhere.
//! Slack's errors (`400 invalid_payload`, `404 no_service`, `410 channel_is_archived`, `429`
//! with `Retry-After`) are ordinary failures: retried later, the body in the message.

use anyhow::Result;
use serde_json::{json, Value};

use super::http::Request;
use super::OneRequest;
use super::{event, secret_from_env};
use crate::config::SlackTarget;
use crate::ledger::{minute, Commit, Part, Span};

/// Commits listed per message; the rest are counted.
const MAX_COMMITS: usize = 10;

/// The request for one event.
pub fn request(target: &SlackTarget, span: &Span) -> Result<Request> {
    let url = secret_from_env(&target.id, &target.url_env, "webhook URL")?;
    let body = serde_json::to_string(&message(target, span))?;
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    Ok(Request { method: "POST", url, headers, body })
}

/// The Block Kit message.
pub fn message(target: &SlackTarget, span: &Span) -> Value {
    let from = span.change.from.as_deref().map_or("?".to_string(), labels);
    let to = labels(&span.parts);
    let kind = span.change.kind.as_str();
    let title = format!("{} → {}: {kind}", span.service, span.environment);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
        json!({"type": "section", "fields": [
            field("Environment", &span.environment), field("Service", &span.service),
            field("From", &from), field("To", &to),
        ]}),
    ];
    for (name, commits) in [("Shipped", &span.change.shipped), ("Removed", &span.change.removed)] {
        if !commits.is_empty() {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": list(name, commits, target)}}));
        }
    }
    let tickets = if span.change.tickets.is_empty() { "-".to_string() } else { span.change.tickets.join(", ") };
    let context = format!("Tickets: {} · seen {} UTC · {}", escape(&tickets), minute(span.at()), event::id(span));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    let text = format!("{}/{}: {kind} {from} → {to}", span.environment, span.service);
    json!({"text": text, "blocks": blocks})
}

fn labels(parts: &[Part]) -> String {
    parts.iter().map(Part::label).collect::<Vec<_>>().join(" + ")
}

fn field(name: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", escape(value))})
}

/// `*Shipped* (3)` and a line per commit: the short SHA (a link when `commit_url` is set)
/// and the subject.
fn list(name: &str, commits: &[Commit], target: &SlackTarget) -> String {
    let mut out = format!("*{name}* ({})", commits.len());
    for c in commits.iter().take(MAX_COMMITS) {
        let short = &c.sha[..c.sha.len().min(7)];
        let sha = match &target.commit_url {
            Some(t) => format!("<{}|`{short}`>", t.replace("{sha}", &c.sha)),
            None => format!("`{short}`"),
        };
        out.push_str(&format!("\n• {sha} {}", escape(&c.subject)));
    }
    if commits.len() > MAX_COMMITS {
        out.push_str(&format!("\n… and {} more", commits.len() - MAX_COMMITS));
    }
    out
}

/// Slack's mrkdwn escaping: `&`, `<`, `>`.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl OneRequest for SlackTarget {
    fn target_id(&self) -> &str {
        &self.id
    }

    fn request(&self, span: &Span) -> Result<Request> {
        request(self, span)
    }
}
