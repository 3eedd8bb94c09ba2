//! `prodiff metrics`: the four DORA keys from the ledger.

use std::io::Write;

use anyhow::{Context as _, Result};

use super::ledger::{existing, known, open, text_formats};
use super::pipeline::now;
use crate::cli::{Global, MetricsArgs};
use crate::ledger::metrics;
use crate::ledger::store::Filter;
use crate::report::ledger as render;

/// `prodiff metrics`.
pub(super) fn metrics(g: &Global, args: &MetricsArgs, out: &mut dyn Write) -> Result<u8> {
    text_formats(g, "metrics")?;
    let o = open(g)?;
    let mut store = existing(&o.location)?;
    let now = now()?.timestamp();
    let since = now - crate::ledger::parse_duration(&args.since).context("--since")?;
    let from = store.first_heartbeat(since)?.map_or(since, |at| at.max(since));
    let deployments = store.deployments(args.environment.as_deref(), from)?;
    if deployments.is_empty() {
        let filter = Filter { environment: args.environment.clone(), service: None, since: Some(from), until: None };
        known(store.as_mut(), &filter)?;
    }
    let rules = metrics::Rules { fix_window: o.config.ledger.fix_window, fix_pattern: &o.config.ledger.fix_pattern };
    let m = metrics::compute_from(&deployments, from, now, &rules);
    render::metrics(&m, args.environment.as_deref(), g.format, out)?;
    Ok(crate::exit::CLEAN)
}
