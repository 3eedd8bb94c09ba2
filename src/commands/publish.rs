//! `prodiff publish`, and the publishing step `record` and `watch` take after recording.

use std::io::Write;

use anyhow::{bail, Context as _, Result};

use super::ledger::{existing, open};
use super::pipeline::now;
use crate::cli::{Global, PublishArgs};
use crate::config::PublishConfig;
use crate::ledger::Store;
use crate::publish::Outcome;

/// `prodiff publish`: exit 0 when every due event was acknowledged, 3 when a send failed, 2
/// when a target could not be published to at all (after the others were).
pub(super) fn publish(g: &Global, args: &PublishArgs, out: &mut dyn Write) -> Result<u8> {
    let o = open(g)?;
    if o.config.publish.is_empty() {
        bail!("nothing to publish to: prodiff.toml has no [publish] targets (see README \"Publishing\")");
    }
    let mut store = existing(&o.location)?;
    let now = now()?.timestamp();
    let since = match &args.since {
        Some(s) => Some(now - crate::ledger::parse_duration(s).context("--since")?),
        None => None,
    };
    let outcome = crate::publish::publish(store.as_mut(), &o.config.publish, since, now, args.dry_run, out)?;
    if !args.dry_run {
        summary(out, &outcome)?;
    }
    if outcome.misconfigured > 0 {
        bail!("{}", outcome.errors.join("\n"));
    }
    Ok(if outcome.failed == 0 { crate::exit::CLEAN } else { crate::exit::INCOMPLETE })
}

/// After `record`/`watch`: publish when targets are configured. A failure is a line on
/// stderr, never an error: recording already happened and must not wait on a chat tool.
pub(super) fn after_record(store: &mut dyn Store, config: &PublishConfig, out: &mut dyn Write) {
    if config.is_empty() {
        return;
    }
    let mut run = || -> Result<Outcome> {
        let now = now()?.timestamp();
        crate::publish::publish(store, config, None, now, false, &mut std::io::sink())
    };
    match run() {
        Ok(o) => {
            let _ = summary(out, &o);
        }
        Err(e) => tracing::warn!("publishing failed (recording is done): {}", crate::redact::text(&format!("{e:#}"))),
    }
}

fn summary(out: &mut dyn Write, o: &Outcome) -> Result<()> {
    writeln!(out, "published: {} sent, {} failed, {} waiting", o.sent, o.failed, o.waiting)?;
    for e in &o.errors {
        writeln!(out, "  failed: {e}")?;
    }
    for n in &o.notes {
        writeln!(out, "  note: {n}")?;
    }
    for s in &o.skipped {
        writeln!(out, "  skipped: {s}")?;
    }
    for t in &o.busy {
        writeln!(out, "  skipped: {t}: another publisher is at work on it (its lease expires by itself)")?;
    }
    Ok(())
}
