//! `prodiff record`: audit like `status` and store what changed in the ledger, or backfill it
//! from `snapshot` files (`--import`).

use std::io::Write;

use anyhow::{Context as _, Result};

use super::fleet::status_report;
use super::ledger::open;
use super::pipeline::now;
use crate::cli::{Global, RecordArgs};
use crate::history::Detail;
use crate::ledger::{events, sighting, Location, Sighting};

/// `prodiff record`: exit 0 when everything was observed, 3 when something was not (what was
/// seen is recorded all the same), 2 when the audit or the ledger failed.
pub(super) fn record(g: &Global, args: &RecordArgs, out: &mut dyn Write) -> Result<u8> {
    let o = open(g)?;
    let mut store = o.location.open()?;
    let sightings =
        if args.import.is_empty() { vec![observe(g, &args.environments, "record")?] } else { imports(&args.import)? };
    let mut complete = true;
    for s in &sightings {
        let outcome = events::record(store.as_mut(), s, &mut events::Git::new(&o.repo, &o.config))?;
        complete &= s.complete;
        summary(out, s, &outcome, &o.location)?;
    }
    super::publish::after_record(store.as_mut(), &o.config.publish, out);
    Ok(if complete || g.allow_incomplete { crate::exit::CLEAN } else { crate::exit::INCOMPLETE })
}

/// One audit, as a sighting at `now`.
pub(super) fn observe(g: &Global, environments: &[String], origin: &str) -> Result<Sighting> {
    let at = now()?.timestamp();
    let mut report = status_report(g, environments, "record", Detail::Counts)?;
    // A sighting needs what runs, not the commit lists (thousands of records per row).
    for row in report.results.iter_mut().chain(report.declared.iter_mut()) {
        (row.behind, row.ahead) = (None, None);
    }
    let value = serde_json::to_value(&report).context("serialising the audit")?;
    sighting::from_report(&value, Some(at), origin)
}

/// Snapshot files as sightings, oldest first.
fn imports(paths: &[std::path::PathBuf]) -> Result<Vec<Sighting>> {
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read snapshot {}", p.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("snapshot {} is not JSON", p.display()))?;
        out.push(sighting::from_report(&value, None, &format!("import {}", p.display()))?);
    }
    out.sort_by_key(|s| s.at);
    Ok(out)
}

fn summary(out: &mut dyn Write, s: &Sighting, o: &events::Outcome, at: &Location) -> Result<()> {
    writeln!(
        out,
        "{} ({}): {} deployment event(s), {} unchanged, into {}",
        crate::ledger::minute(s.at),
        s.origin,
        o.events,
        o.unchanged,
        at.describe()
    )?;
    for f in &s.failed {
        writeln!(out, "  not seen (nothing recorded for it): {f}")?;
    }
    for c in &o.contradicted {
        writeln!(out, "  skipped: {c}")?;
    }
    Ok(())
}
