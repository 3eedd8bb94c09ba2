//! Publishing: the ledger's deployment events told to collaboration tools (never to
//! production). Each configured target gets each event at most once it acknowledged: the
//! ledger's `deliveries` table remembers acknowledgements and failures, a failure is retried
//! on a later run after a backoff (or the target's `Retry-After`), and a rate-limited target
//! gets nothing more in this run. Sends carry an idempotency key, so a crash between a send
//! and its acknowledgement being written is a resend the receiver can drop.
//!
//! After report, before commands: reads the ledger, writes only `deliveries`.

pub mod event;
pub mod github;
pub mod github_issues;
pub mod hmac;
pub mod http;
pub mod jira;
pub mod slack;
pub mod tickets;
pub mod trello;
pub mod webhook;

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::config::PublishConfig;
use crate::ledger::store::{transaction, Filter, Store};
use crate::ledger::{Delivery, Span};
use http::{Request, Response};

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
    /// Targets that could not be published to at all (a token's variable unset, no
    /// repository): their errors are in `errors`; the other targets still got their events.
    pub misconfigured: usize,
    /// Targets another publisher was at work on (their events are left to it).
    pub busy: Vec<String>,
    /// One redacted line per answer that was accepted but did nothing (a ticket key that is
    /// no Jira issue): `TARGET EVENT: STEP: note`.
    pub notes: Vec<String>,
    /// One line per event a target left out for a reason worth saying (`TARGET EVENT: why`);
    /// acknowledged, never retried.
    pub skipped: Vec<String>,
}

/// A target's side of publishing: the requests one event takes, one step at a time. Most
/// targets take one (a webhook POST); some take several (a GitHub deployment, then its
/// status; per ticket a label, then a comment). The ledger keeps what each step was
/// answered, so a retry goes on where the last run stopped and a step the target accepted
/// is never sent again.
pub trait Target {
    /// The target's id in the ledger's delivery table.
    fn id(&self) -> &str;
    /// The next step for `span`, given the answers kept from the steps done so far (by step
    /// name), or None when the event is delivered. Asked again after every step, so a step
    /// can use an earlier one's answer. In a dry run every step counts as answered with
    /// `Value::Null`: a step that needs a kept value then shows a `{placeholder}`.
    fn next(&self, span: &Span, done: &Done) -> Result<Option<Step>>;

    /// Whether `span` is left out: `Quietly` when it is none of this target's business (an
    /// environment it does not publish; nothing is stored), `Because` when it would be but
    /// cannot be told (an image without a commit has no deployment): acknowledged with the
    /// reason, which the summary shows once.
    fn skip(&self, _span: &Span) -> Skip {
        Skip::No
    }

    /// A refusing answer as the failure message says it: by default the status and the
    /// start of the body. Redact before clipping (a clipped secret is no longer found);
    /// the message is redacted once more afterwards.
    fn explain(&self, r: &Response) -> String {
        let body = crate::redact::clip(&crate::redact::text(r.body.trim()), 200);
        format!("HTTP {} {body}", r.status).trim_end().to_string()
    }
}

/// A target that takes every event in one request (a webhook POST).
pub trait OneRequest {
    fn target_id(&self) -> &str;
    fn request(&self, span: &Span) -> Result<Request>;
}

impl<T: OneRequest> Target for T {
    fn id(&self) -> &str {
        self.target_id()
    }

    /// One step, named "".
    fn next(&self, span: &Span, done: &Done) -> Result<Option<Step>> {
        if done.contains_key("") {
            return Ok(None);
        }
        Ok(Some(Step::new("", self.request(span)?)))
    }
}

/// Whether a target takes an event (`Target::skip`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    No,
    Quietly,
    Because(String),
}

/// Steps named with this prefix are done once per target, whichever event did them (a
/// GitHub comment once per issue and environment): an accepted one is known to the
/// target's later events, in this run and the next, from the ledger's delivery states.
pub const ONCE: &str = "once:";

/// The answers kept so far, by step name.
pub type Done = BTreeMap<String, Value>;

/// One request of an event's delivery.
pub struct Step {
    /// Unique among the event's steps (`deployment`, `status`, `SHOP-1/label`); "" for a
    /// target's only step (messages then name no step).
    pub name: String,
    pub request: Request,
    /// Statuses besides 2xx that also mean done (deleting a label that is not there: 404).
    pub also_ok: &'static [u16],
    /// What to keep of an accepting answer for later steps; an Err (an answer without the
    /// id the next step needs) is a failed step. A kept object's `note` (a string) is
    /// reported in the run's `notes`.
    pub keep: fn(&Response) -> Result<Value, String>,
}

impl Step {
    /// A step that keeps nothing and accepts 2xx only.
    pub fn new(name: impl Into<String>, request: Request) -> Step {
        Step { name: name.into(), request, also_ok: &[], keep: |_| Ok(Value::Null) }
    }
}

/// Steps one event may take at most (a target that keeps asking is a bug, not a loop).
const MAX_STEPS: usize = 256;
/// How long a publisher's hold on a target lasts without being renewed (it is renewed
/// before every event).
const LEASE_SECS: i64 = 600;

/// Backoff after `attempts` failed sends: 1 min, doubling, at most 6 h.
pub fn backoff(attempts: i64) -> i64 {
    let exp = (attempts - 1).clamp(0, 20) as u32;
    (60i64 << exp).min(6 * 3600)
}

/// Every configured target, in the order they are published to.
fn targets(config: &PublishConfig) -> Vec<&dyn Target> {
    let mut out: Vec<&dyn Target> = Vec::new();
    out.extend(config.webhooks.iter().map(|t| t as &dyn Target));
    out.extend(config.slack.iter().map(|t| t as &dyn Target));
    out.extend(config.jira.iter().map(|t| t as &dyn Target));
    out.extend(config.trello.iter().map(|t| t as &dyn Target));
    out.extend(config.github_deployments.iter().map(|t| t as &dyn Target));
    out.extend(config.github_issues.iter().map(|t| t as &dyn Target));
    out
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
    let run = Run { holder: holder(), started: std::time::Instant::now(), now, dry_run };
    for target in targets(config) {
        let lease = format!("publish:{}", target.id());
        if !dry_run && !run.renew(store, &lease)? {
            outcome.busy.push(target.id().to_string());
            continue;
        }
        let result = deliver(store, target, &spans, &run, &lease, out, &mut outcome);
        if !dry_run {
            transaction(store, |s| s.drop_lease(&lease, &run.holder))?;
        }
        // A target that cannot be published to (its token's variable unset) fails alone:
        // the others still get their events.
        if let Err(e) = result {
            if dry_run {
                return Err(e);
            }
            outcome.misconfigured += 1;
            outcome.errors.push(crate::redact::text(&format!("{}: {e:#}", target.id())));
        }
    }
    Ok(outcome)
}

/// One publishing run: who it is (for leases), its clock, whether it only prints.
struct Run {
    holder: String,
    started: std::time::Instant,
    now: i64,
    dry_run: bool,
}

impl Run {
    /// Takes or renews the lease on a target, until `LEASE_SECS` from now (the run's clock
    /// plus the time it has taken so far, so a pinned clock still moves).
    fn renew(&self, store: &mut dyn Store, lease: &str) -> Result<bool> {
        let now = self.now + self.started.elapsed().as_secs() as i64;
        transaction(store, |s| s.take_lease(lease, &self.holder, now + LEASE_SECS, now))
    }
}

/// This process's name in leases: pid and a clock reading, unique enough between two CI jobs.
fn holder() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
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
fn deliver(
    store: &mut dyn Store,
    target: &dyn Target,
    spans: &[Span],
    run: &Run,
    lease: &str,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> Result<()> {
    let id = target.id();
    let known: BTreeMap<i64, Delivery> = store.deliveries(id)?.into_iter().map(|d| (d.span_id, d)).collect();
    let mut once = once_steps(known.values());
    let mut limited = false;
    for span in spans {
        let Some(span_id) = span.id else { continue };
        let prior = known.get(&span_id);
        if prior.is_some_and(|d| d.acked_at.is_some()) {
            continue;
        }
        let skip = target.skip(span);
        if skip == Skip::Quietly {
            continue;
        }
        if limited || (!run.dry_run && prior.is_some_and(|d| d.next_attempt > run.now)) {
            outcome.waiting += 1;
            continue;
        }
        if run.dry_run {
            dry_run(target, span, &skip, &mut once, out)?;
            continue;
        }
        if !run.renew(store, lease)? {
            outcome.busy.push(id.to_string());
            return Ok(());
        }
        let mut d = match prior {
            Some(p) => Delivery { attempts: p.attempts + 1, ..p.clone() },
            None => Delivery {
                target: id.to_string(),
                span_id,
                acked_at: None,
                attempts: 1,
                next_attempt: run.now,
                last_error: String::new(),
                state: String::new(),
            },
        };
        if let Skip::Because(why) = &skip {
            outcome.skipped.push(format!("{id} {}: {why}", event::id(span)));
            acknowledge_skip(store, &mut d, why, run.now)?;
            continue;
        }
        match steps(store, target, span, &mut d, &mut once, run.now, &mut outcome.notes)? {
            None => {
                d.acked_at = Some(run.now);
                d.last_error.clear();
                outcome.sent += 1;
            }
            Some(failure) => {
                limited = failure.limited;
                d.next_attempt = run.now + failure.wait;
                d.last_error = failure.message.clone();
                outcome.failed += 1;
                outcome.errors.push(format!("{id} {}: {}", event::id(span), failure.message));
            }
        }
        transaction(store, |s| s.put_delivery(&d))?;
    }
    Ok(())
}

/// Stores an event the target left out as acknowledged, with the reason as its state.
fn acknowledge_skip(store: &mut dyn Store, d: &mut Delivery, why: &str, now: i64) -> Result<()> {
    (d.acked_at, d.last_error) = (Some(now), String::new());
    d.state = serde_json::to_string(&serde_json::json!({ "skipped": why }))?;
    transaction(store, |s| s.put_delivery(d))
}

/// Why an event's delivery stopped short.
struct Failure {
    message: String,
    wait: i64,
    /// The target said to slow down: nothing more goes to it in this run.
    limited: bool,
}

/// The `once:` steps accepted in any of a target's deliveries.
fn once_steps<'a>(deliveries: impl Iterator<Item = &'a Delivery>) -> Done {
    let states = deliveries.filter_map(|d| serde_json::from_str::<Done>(&d.state).ok());
    states.flat_map(|done| done.into_iter().filter(|(k, _)| k.starts_with(ONCE))).collect()
}

/// What `next` is shown: the target's `once:` steps with one event's own answers laid over
/// them while it lives. Dropped, it takes the event's answers off again, except its `once:`
/// steps (no copy of the target's steps per event: they can be many).
struct Overlay<'a> {
    view: &'a mut Done,
    lent: Vec<String>,
}

impl<'a> Overlay<'a> {
    fn new(view: &'a mut Done, own: &Done) -> Overlay<'a> {
        let mut o = Overlay { view, lent: Vec::new() };
        for (k, v) in own {
            o.insert(k.clone(), v.clone());
        }
        o
    }

    fn insert(&mut self, name: String, answer: Value) {
        if !name.starts_with(ONCE) {
            self.lent.push(name.clone());
        }
        self.view.insert(name, answer);
    }
}

impl Drop for Overlay<'_> {
    fn drop(&mut self) {
        for k in &self.lent {
            self.view.remove(k);
        }
    }
}

/// Takes an event's remaining steps, keeping each accepted answer in `d.state` (written to
/// the ledger after every step) and each accepted `once:` step in `once`; None when the
/// event is delivered.
fn steps(
    store: &mut dyn Store,
    target: &dyn Target,
    span: &Span,
    d: &mut Delivery,
    once: &mut Done,
    now: i64,
    notes: &mut Vec<String>,
) -> Result<Option<Failure>> {
    let mut done: Done = if d.state.is_empty() {
        Done::new()
    } else {
        serde_json::from_str(&d.state).with_context(|| {
            format!("ledger: the delivery state of {} to {} is malformed", event::id(span), d.target)
        })?
    };
    let mut view = Overlay::new(once, &done);
    for _ in 0..MAX_STEPS {
        let Some(step) = target.next(span, view.view)? else { return Ok(None) };
        let answer = http::send(&step.request, now);
        let accepted =
            answer.as_ref().ok().filter(|r| (200..300).contains(&r.status) || step.also_ok.contains(&r.status));
        let kept = match accepted {
            Some(r) => (step.keep)(r),
            None => return Ok(Some(failure(target, &step.name, &answer, d.attempts))),
        };
        match kept {
            Ok(v) => {
                if let Some(note) = v.get("note").and_then(Value::as_str) {
                    let line = format!("{} {}: {}", d.target, event::id(span), named(&step.name, note));
                    notes.push(crate::redact::text(&line));
                }
                view.insert(step.name.clone(), v.clone());
                done.insert(step.name, v);
                d.state = serde_json::to_string(&done)?;
                transaction(store, |s| s.put_delivery(d))?;
            }
            Err(message) => {
                let wait = backoff(d.attempts);
                let message = named(&step.name, &crate::redact::text(&message));
                return Ok(Some(Failure { message, wait, limited: false }));
            }
        }
    }
    anyhow::bail!("publish target {}: more than {MAX_STEPS} steps for {}", d.target, event::id(span))
}

/// Prints the steps an event would take, each counted as answered with nothing kept (a
/// `once:` step for the rest of the dry run too), or why the target leaves it out.
fn dry_run(target: &dyn Target, span: &Span, skip: &Skip, once: &mut Done, out: &mut dyn Write) -> Result<()> {
    if let Skip::Because(why) = skip {
        writeln!(out, "# {}\n# skipped {}: {why}\n", target.id(), event::id(span))?;
        return Ok(());
    }
    let mut view = Overlay::new(once, &Done::new());
    for _ in 0..MAX_STEPS {
        let Some(step) = target.next(span, view.view)? else { return Ok(()) };
        print_request(out, target.id(), &step.request)?;
        view.insert(step.name, Value::Null);
    }
    anyhow::bail!("publish target {}: more than {MAX_STEPS} steps for {}", target.id(), event::id(span))
}

/// A failed step's message (redacted, clipped), how long to wait before the next try, and
/// whether the target asked to slow down.
fn failure(target: &dyn Target, step: &str, answer: &Result<Response, String>, attempts: i64) -> Failure {
    match answer {
        Err(e) => Failure { message: named(step, e), wait: backoff(attempts), limited: false },
        Ok(r) => {
            let wait = r.retry_after.unwrap_or_else(|| backoff(attempts)).max(1);
            let message = named(step, &crate::redact::text(&target.explain(r)));
            Failure { message, wait, limited: r.limited }
        }
    }
}

/// `STEP: message`, or the message alone for a target's only step.
fn named(step: &str, message: &str) -> String {
    if step.is_empty() {
        message.to_string()
    } else {
        format!("{step}: {message}")
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
    fn an_events_answers_are_lent_to_the_view_and_its_once_steps_stay() {
        use super::{Done, Overlay};
        let mut shared = Done::from([("once:production/#1/comment".to_string(), serde_json::json!(7))]);
        let own = Done::from([("#2/label".to_string(), serde_json::Value::Null)]);
        {
            let mut view = Overlay::new(&mut shared, &own);
            view.insert("once:production/#2/comment".into(), serde_json::Value::Null);
            view.insert("#3/label".into(), serde_json::Value::Null);
            assert_eq!(view.view.len(), 4);
        }
        let left: Vec<&str> = shared.keys().map(String::as_str).collect();
        assert_eq!(left, ["once:production/#1/comment", "once:production/#2/comment"]);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(super::backoff(1), 60);
        assert_eq!(super::backoff(2), 120);
        assert_eq!(super::backoff(4), 480);
        assert_eq!(super::backoff(50), 6 * 3600);
    }
}
