//! Reading the ledger back: `log` (the deployments, newest first) and `when` (when each
//! environment first ran a change, directly or as a cherry-pick, and whether it still does).
//! Presence is decided by the same contains/patch-id logic `prodiff contains` uses.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use serde::Serialize;

use super::store::{Filter, Store};
use super::Span;
use crate::git::Repo;
use crate::history::contains::{self, PatchIds, Presence};
use crate::model::CommitId;

/// The deployments matching `filter`, newest first (by their exact time when known, else
/// by the first run that saw them).
pub fn log(store: &mut dyn Store, filter: &Filter) -> Result<Vec<Span>> {
    let mut spans = store.spans(filter)?;
    spans.retain(|s| filter.since.is_none_or(|t| s.at() >= t));
    spans.sort_by(|a, b| {
        b.at().cmp(&a.at()).then_with(|| (&a.environment, &a.service).cmp(&(&b.environment, &b.service)))
    });
    Ok(spans)
}

/// How one environment/service stands with a change.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct When {
    pub environment: String,
    pub service: String,
    /// The deployment that first ran every queried commit (none: never seen running).
    pub first: Option<First>,
    /// What the latest sighting runs: `yes`, `partly` (some replicas), `no`.
    pub still_runs: &'static str,
}

/// The first deployment that ran the change.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct First {
    /// The exact time (a replica's start), when known.
    pub exact: Option<i64>,
    /// Bounds: the last run that saw it not running (none: the ledger's first sighting) and
    /// the first that saw it running.
    pub after: Option<i64>,
    pub by: i64,
    /// `directly`, or `as a cherry-pick (SHA)`.
    pub how: String,
    /// Seconds from the change's commit time (its latest commit) to the deployment (the
    /// exact time, else the upper bound); none when the ledger first saw it already running.
    pub lead_time: Option<i64>,
    /// How the lead time was measured.
    pub method: String,
}

/// Memoised presence of a wanted commit in a running one.
struct Presences<'a> {
    repo: &'a Repo,
    pids: PatchIds,
    seen: HashMap<(String, String), Presence>,
}

impl Presences<'_> {
    fn get(&mut self, running: &str, wanted: &CommitId) -> Result<Presence> {
        let k = (running.to_string(), wanted.0.clone());
        if let Some(p) = self.seen.get(&k) {
            return Ok(p.clone());
        }
        let p = match self.repo.lookup_commit(running) {
            crate::git::Lookup::Found(r) => contains::present(self.repo, &mut self.pids, &r, wanted)?,
            _ => Presence::Unknown,
        };
        self.seen.insert(k, p.clone());
        Ok(p)
    }

    /// Whether a running commit has every wanted commit; the cherry-pick that stands for one
    /// when not directly.
    fn runs_all(&mut self, running: &str, wanted: &[CommitId]) -> Result<Option<Option<CommitId>>> {
        let mut picked = None;
        for w in wanted {
            match self.get(running, w)? {
                Presence::Deployed => {}
                Presence::Equivalent(c) => picked = Some(c),
                _ => return Ok(None),
            }
        }
        Ok(Some(picked))
    }
}

/// Images built before a commit cannot run it; this much clock skew is allowed for.
const SKEW: i64 = 86_400;

/// The first window `when` reads after the commit time; each next one is twice as long.
const FIRST_WINDOW: i64 = 86_400;

/// For every environment/service in the ledger that `concerns`, when it first ran all of
/// `wanted` (committed at `committed_at`, the latest of them) and whether it still does.
/// Spans are read forward from the commit time (less a day of clock skew) in windows that
/// double, until every service has an answer or the ledger ends; the latest span of each
/// service tells whether it still runs.
pub fn when(
    store: &mut dyn Store,
    repo: &Repo,
    wanted: &[CommitId],
    committed_at: i64,
    concerns: impl Fn(&str) -> Result<bool>,
) -> Result<Vec<When>> {
    let mut p = Presences { repo, pids: PatchIds::default(), seen: HashMap::new() };
    let mut latest = Vec::new();
    for s in store.latest()? {
        if concerns(&s.service)? {
            latest.push(s);
        }
    }
    let end = latest.iter().map(|s| s.first_seen).max().unwrap_or(i64::MIN);
    let asked: std::collections::HashSet<(&str, &str)> =
        latest.iter().map(|s| (s.environment.as_str(), s.service.as_str())).collect();
    let mut firsts: BTreeMap<(String, String), First> = BTreeMap::new();
    let (mut from, mut window) = (committed_at.saturating_sub(SKEW), FIRST_WINDOW);
    while firsts.len() < latest.len() && from <= end {
        let until = from.saturating_add(window);
        let mut spans = store.spans(&Filter { since: Some(from), until: Some(until), ..Filter::default() })?;
        spans.reverse(); // oldest first
        for s in &spans {
            let key = (s.environment.clone(), s.service.clone());
            if firsts.contains_key(&key) || !asked.contains(&(key.0.as_str(), key.1.as_str())) {
                continue;
            }
            if let Some(how) = running_in(&mut p, s, wanted)? {
                firsts.insert(key, first_of(s, how, committed_at));
            }
        }
        (from, window) = (until, window.saturating_mul(2));
    }
    let mut out = Vec::new();
    for latest in latest {
        let key = (latest.environment.clone(), latest.service.clone());
        let mut first = firsts.remove(&key);
        let still_runs = still(&mut p, &latest, wanted)?;
        if first.is_none() && still_runs != "no" {
            // Skewed clocks: the state that runs it began before its commit time.
            first = running_in(&mut p, &latest, wanted)?.map(|how| first_of(&latest, how, committed_at));
        }
        out.push(When { environment: key.0, service: key.1, first, still_runs });
    }
    // Byte order on both engines (PostgreSQL's ORDER BY follows the database's collation).
    out.sort_by(|a, b| (&a.environment, &a.service).cmp(&(&b.environment, &b.service)));
    Ok(out)
}

/// How a span runs the change (on any replica), if it does.
fn running_in(p: &mut Presences, s: &Span, wanted: &[CommitId]) -> Result<Option<String>> {
    for part in &s.parts {
        let Some(c) = &part.commit else { continue };
        if let Some(picked) = p.runs_all(c, wanted)? {
            return Ok(Some(match picked {
                None => "directly".to_string(),
                Some(pick) => format!("as a cherry-pick ({})", pick.short()),
            }));
        }
    }
    Ok(None)
}

fn still(p: &mut Presences, s: &Span, wanted: &[CommitId]) -> Result<&'static str> {
    let mut n = 0;
    for part in &s.parts {
        if let Some(c) = &part.commit {
            if p.runs_all(c, wanted)?.is_some() {
                n += 1;
            }
        }
    }
    Ok(match n {
        0 => "no",
        n if n == s.parts.len() => "yes",
        _ => "partly",
    })
}

fn first_of(s: &Span, how: String, committed_at: i64) -> First {
    let (lead_time, method) = match (s.started_at, s.prev_seen) {
        (Some(t), _) => (Some(t - committed_at), "commit time to the first replica's start (exact)".to_string()),
        (None, Some(_)) => {
            (Some(s.first_seen - committed_at), "commit time to the first run that saw it (upper bound)".to_string())
        }
        (None, None) => (None, "already running when the ledger first saw it: no lead time".to_string()),
    };
    First { exact: s.started_at, after: s.prev_seen, by: s.first_seen, how, lead_time, method }
}
