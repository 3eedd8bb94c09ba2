//! Publishing: the ledger's deployment events told to collaboration tools (never to
//! production). Each configured target gets each event at most once it acknowledged: the
//! ledger's `deliveries` table remembers acknowledgements and failures, a failure is retried
//! on a later run after a backoff (or the target's `Retry-After`), and a rate-limited target
//! gets nothing more in this run. Sends carry an idempotency key, so a crash between a send
//! and its acknowledgement being written is a resend the receiver can drop.
//!
//! After report, before commands: reads the ledger, writes only `deliveries`.

pub mod event;
pub mod hmac;
pub mod http;
pub mod slack;
pub mod webhook;

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use crate::config::PublishConfig;
use crate::ledger::store::{transaction, Filter, Store};
use crate::ledger::{Delivery, Span};
use http::Request;

/// What a run did, per target and in all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events the targets acknowledged in this run.
    pub sent: usize,
    /// Sends that failed (to be retried later).
    pub failed: usize,
    /// Events waiting for a backoff or rate limit to pass.
    pub waiting: usize,
    /// One redacted line per failure: `TARGET EVENT: message`.
    pub errors: Vec<String>,
}

/// Backoff after `attempts` failed sends: 1 min, doubling, at most 6 h.
pub fn backoff(attempts: i64) -> i64 {
    let exp = (attempts - 1).clamp(0, 20) as u32;
    (60i64 << exp).min(6 * 3600)
}

/// Sends (or with `dry_run` prints into `out`) every event since `since` not yet
/// acknowledged by each target.
pub fn publish(
    store: &mut dyn Store,
    config: &PublishConfig,
    since: Option<i64>,
    now: i64,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let mut spans = store.spans(&Filter { since, ..Filter::default() })?;
    spans.reverse();
    let mut outcome = Outcome::default();
    for target in &config.webhooks {
        let build = |s: &Span| webhook::request(target, s);
        deliver(store, &target.id, &spans, &build, now, dry_run, out, &mut outcome)?;
    }
    for target in &config.slack {
        let build = |s: &Span| slack::request(target, s);
        deliver(store, &target.id, &spans, &build, now, dry_run, out, &mut outcome)?;
    }
    Ok(outcome)
}

/// A secret from the environment variable `var`, registered with the redaction layer.
pub(crate) fn secret_from_env(target: &str, var: &str, what: &str) -> Result<String> {
    let value = std::env::var(var).ok().filter(|s| !s.is_empty());
    let value =
        value.ok_or_else(|| anyhow::anyhow!("publish target {target}: the {what}'s variable {var} is not set"))?;
    crate::redact::register(&value);
    Ok(value)
}

/// One target's pass over the events, oldest first.
#[allow(clippy::too_many_arguments)]
fn deliver(
    store: &mut dyn Store,
    target: &str,
    spans: &[Span],
    build: &dyn Fn(&Span) -> Result<Request>,
    now: i64,
    dry_run: bool,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> Result<()> {
    let known: BTreeMap<i64, Delivery> = store.deliveries(target)?.into_iter().map(|d| (d.span_id, d)).collect();
    let mut limited = false;
    for span in spans {
        let Some(id) = span.id else { continue };
        let prior = known.get(&id);
        if prior.is_some_and(|d| d.acked_at.is_some()) {
            continue;
        }
        if limited || (!dry_run && prior.is_some_and(|d| d.next_attempt > now)) {
            outcome.waiting += 1;
            continue;
        }
        let req = build(span)?;
        if dry_run {
            print_request(out, target, &req)?;
            continue;
        }
        let attempts = prior.map_or(0, |d| d.attempts) + 1;
        let mut d = Delivery {
            target: target.to_string(),
            span_id: id,
            acked_at: None,
            attempts,
            next_attempt: now,
            last_error: String::new(),
        };
        match http::send(&req, now) {
            Ok(r) if (200..300).contains(&r.status) => {
                d.acked_at = Some(now);
                outcome.sent += 1;
            }
            answer => {
                let (message, wait) = failure(&answer, attempts);
                limited = answer.as_ref().is_ok_and(|r| r.status == 429 || r.retry_after.is_some());
                d.next_attempt = now + wait;
                d.last_error = message.clone();
                outcome.failed += 1;
                outcome.errors.push(format!("{target} {}: {message}", event::id(span)));
            }
        }
        transaction(store, |s| s.put_delivery(&d))?;
    }
    Ok(())
}

/// A failed send's message (redacted, clipped) and how long to wait before the next try.
fn failure(answer: &Result<http::Response, String>, attempts: i64) -> (String, i64) {
    match answer {
        Err(e) => (e.clone(), backoff(attempts)),
        Ok(r) => {
            let body = crate::redact::clip(&crate::redact::text(r.body.trim()), 200);
            let wait = r.retry_after.unwrap_or_else(|| backoff(attempts)).max(1);
            (format!("HTTP {} {body}", r.status).trim_end().to_string(), wait)
        }
    }
}

/// A request as `--dry-run` shows it: the method and URL, headers, the JSON body (secrets
/// pass the redaction layer on the way out).
fn print_request(out: &mut dyn Write, target: &str, req: &Request) -> Result<()> {
    writeln!(out, "# {target}")?;
    writeln!(out, "{} {}", req.method, crate::redact::text(&req.url))?;
    for (k, v) in &req.headers {
        writeln!(out, "{k}: {}", crate::redact::text(v))?;
    }
    writeln!(out)?;
    writeln!(out, "{}", req.body)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(super::backoff(1), 60);
        assert_eq!(super::backoff(2), 120);
        assert_eq!(super::backoff(4), 480);
        assert_eq!(super::backoff(50), 6 * 3600);
    }
}
