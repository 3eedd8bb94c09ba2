//! The generic webhook target: the event POSTed as JSON, signed with
//! `X-Prodiff-Signature-256: sha256=<hex HMAC-SHA256 of the body>` when a secret is
//! configured, with the event id as `Idempotency-Key` so a receiver can drop a resend.

use anyhow::Result;

use super::http::Request;
use super::OneRequest;
use super::{event, hmac};
use crate::config::{PublishTarget, WebhookTarget};
use crate::ledger::Span;

/// The request for one event.
pub fn request(target: &WebhookTarget, span: &Span) -> Result<Request> {
    let body = serde_json::to_string(&event::json(span))?;
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("user-agent".to_string(), concat!("prodiff/", env!("CARGO_PKG_VERSION")).to_string()),
        ("idempotency-key".to_string(), event::id(span)),
    ];
    if let Some(var) = &target.secret_env {
        let secret = super::secret_from_env(&target.id, var, "secret")?;
        let sig = hmac::sha256_hex(secret.as_bytes(), body.as_bytes());
        headers.push(("x-prodiff-signature-256".to_string(), format!("sha256={sig}")));
    }
    Ok(Request { method: "POST", url: url(target)?, headers, body })
}

/// The target's URL; one read from the environment is a secret as a whole.
fn url(target: &WebhookTarget) -> Result<String> {
    match &target.url {
        PublishTarget::Url(u) => Ok(u.clone()),
        PublishTarget::Env(var) => super::secret_from_env(&target.id, var, "URL"),
    }
}

impl OneRequest for WebhookTarget {
    fn target_id(&self) -> &str {
        &self.id
    }

    fn request(&self, span: &Span) -> Result<Request> {
        request(self, span)
    }
}
