//! `prodiff serve`: the status of the chosen environments, audited on an interval and
//! served live with the ledger's timeline and metrics (the server itself is `crate::serve`).

use anyhow::Result;

use super::fleet::status_report;
use super::ledger::open;
use super::pipeline::now;
use crate::cli::{Global, ServeArgs};
use crate::history::Detail;
use crate::ledger::metrics;
use crate::ledger::store::Filter;
use crate::serve::LedgerView;

/// How far back the timeline and the metrics look.
const WINDOW: i64 = 90 * 86_400;

pub(super) fn serve(g: &Global, args: &ServeArgs) -> Result<u8> {
    let request = crate::serve::Request {
        bind: &args.bind,
        port: args.port,
        allow_remote: args.allow_remote,
        token_env: args.token_env.as_deref(),
        interval: std::time::Duration::from_secs(args.interval),
    };
    let audit = || {
        let mut report = status_report(g, &args.environments, "serve", Detail::Full)?;
        super::ledger::add_ages(g, &mut report)?;
        Ok(report)
    };
    crate::serve::run(&request, &audit, &|| ledger_view(g, &args.environments))
}

/// The ledger's last 90 days, when there is a ledger, with each environment's four keys
/// as `prodiff metrics --env ENV` gives them. Serve records nothing: a missing SQLite file
/// stays missing; the ledger is opened the way `log` and `metrics` open it.
fn ledger_view(g: &Global, environments: &[String]) -> Result<Option<LedgerView>> {
    let o = open(g)?;
    if !o.location.exists() {
        return Ok(None);
    }
    let mut store = o.location.open()?;
    let now = now()?.timestamp();
    let since = now - WINDOW;
    let from = store.heartbeats(since)?.first().map(|h| h.at.max(since)).unwrap_or(since);
    let mut spans = store.spans(&Filter { since: Some(from), ..Filter::default() })?;
    spans.retain(|s| environments.is_empty() || environments.contains(&s.environment));
    let rules = metrics::Rules { fix_window: o.config.ledger.fix_window, fix_pattern: &o.config.ledger.fix_pattern };
    let promotion = o.config.promotion.clone();
    let mut envs: Vec<&str> = spans.iter().map(|s| s.environment.as_str()).collect();
    envs.sort_by_key(|e| (promotion.iter().position(|p| p == e).unwrap_or(usize::MAX), e.to_string()));
    envs.dedup();
    let metrics = envs
        .iter()
        .map(|env| {
            let mine: Vec<_> = spans.iter().filter(|s| s.environment == *env).cloned().collect();
            (env.to_string(), metrics::compute(&mine, from, now, &rules))
        })
        .collect();
    Ok(Some(LedgerView { spans, window: (from, now), metrics, promotion }))
}
