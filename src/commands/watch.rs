//! `prodiff watch`: `record` every `--every` until SIGINT/SIGTERM (the loop is `ledger::watch`).

use std::io::Write;

use anyhow::{Context as _, Result};

use super::ledger::open;
use super::record::observe;
use crate::cli::{Global, WatchArgs};
use crate::ledger::{events, Store};

/// `prodiff watch`: exit 0 when stopped by a signal.
pub(super) fn watch(g: &Global, args: &WatchArgs, _out: &mut dyn Write) -> Result<u8> {
    let every = crate::ledger::parse_duration(&args.every).context("--every")?;
    let o = open(g)?;
    let mut store: Option<Box<dyn Store>> = None;
    let rt = tokio::runtime::Handle::try_current().context("no async runtime: call app::run")?;
    let stopped = crate::ledger::watch::run(&rt, std::time::Duration::from_secs(every as u64), || {
        if store.is_none() {
            store = Some(o.location.open()?);
        }
        let s = observe(g, &args.environments, "watch")?;
        let store = store.as_mut().expect("opened above");
        let outcome = events::record(store.as_mut(), &s, &mut events::Git::new(&o.repo, &o.config))?;
        let mut published = Vec::new();
        super::publish::after_record(store.as_mut(), &o.config.publish, &mut published);
        let missing = if s.failed.is_empty() { String::new() } else { format!(", not seen: {}", s.failed.join("; ")) };
        let published = String::from_utf8_lossy(&published).trim().replace('\n', "; ");
        let published = if published.is_empty() { String::new() } else { format!(", {published}") };
        Ok(format!("{} deployment event(s), {} unchanged{missing}{published}", outcome.events, outcome.unchanged))
    })?;
    tracing::info!("watch: {stopped:?}");
    Ok(crate::exit::CLEAN)
}
