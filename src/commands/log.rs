//! `prodiff log`: the deployments the ledger saw, newest first.

use std::io::Write;

use anyhow::{Context as _, Result};

use super::ledger::{existing, known, open, text_formats};
use super::pipeline::now;
use crate::cli::{Global, LogArgs};
use crate::ledger::query;
use crate::ledger::store::Filter;
use crate::report::ledger as render;

/// `prodiff log`.
pub(super) fn log(g: &Global, args: &LogArgs, out: &mut dyn Write) -> Result<u8> {
    text_formats(g, "log")?;
    let o = open(g)?;
    let mut store = existing(&o.location)?;
    let since = match &args.since {
        Some(s) => Some(now()?.timestamp() - crate::ledger::parse_duration(s).context("--since")?),
        None => None,
    };
    let filter = Filter { environment: args.environment.clone(), service: args.service.clone(), since, until: None };
    let spans = query::log(store.as_mut(), &filter)?;
    if spans.is_empty() {
        known(store.as_mut(), &filter)?;
    }
    render::log(&spans, g.format, out)?;
    Ok(crate::exit::CLEAN)
}
