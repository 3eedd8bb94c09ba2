//! Reading the ledger back: `log` (the deployments, newest first) and `when` (when each
//! environment first ran a change, directly or as a cherry-pick, and whether it still does).
//! Presence is decided by the same contains/patch-id logic `prodiff contains` uses, once per
//! running commit. `when` reads what ran only (`Running`: never a change's JSON), and no
//! further into the ledger than the answers need (see `first_runs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use serde::Serialize;

use super::store::{Filter, Store};
use super::{Part, Running, Span};
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

/// How many spans of one service `when` reads at first once it reads service by service
/// (most run the change within a few), and at most (each next read is twice as long).
const PAGES: (i64, i64) = (4, 256);

/// For every environment/service in the ledger that `concerns`, when it first ran all of
/// `wanted` (committed at `committed_at`, the latest of them) and whether it still does.
/// Only what ran is read (the parts, never the changes); the latest span of each service
/// tells whether it still runs.
pub fn when(
    store: &mut dyn Store,
    repo: &Repo,
    wanted: &[CommitId],
    committed_at: i64,
    concerns: impl Fn(&str) -> Result<bool>,
) -> Result<Vec<When>> {
    let mut p = Presences { repo, pids: PatchIds::default(), seen: HashMap::new() };
    let mut latest = Vec::new();
    for s in store.latest_running()? {
        if concerns(&s.service)? {
            latest.push(s);
        }
    }
    let mut firsts = first_runs(store, &mut p, &latest, wanted, committed_at)?;
    let mut out = Vec::new();
    for latest in latest {
        let key = (latest.environment.clone(), latest.service.clone());
        let mut first = firsts.remove(&key);
        let still_runs = still(&mut p, &latest.parts, wanted)?;
        if first.is_none() && still_runs != "no" {
            // Skewed clocks: the state that runs it began before its commit time.
            first = running_in(&mut p, &latest.parts, wanted)?.map(|how| first_of(&latest, how, committed_at));
        }
        out.push(When { environment: key.0, service: key.1, first, still_runs });
    }
    // Byte order on both engines (PostgreSQL's ORDER BY follows the database's collation).
    out.sort_by(|a, b| (&a.environment, &a.service).cmp(&(&b.environment, &b.service)));
    Ok(out)
}

/// The first span of each service of `latest` first seen at or after the commit time (less
/// a day of clock skew) that runs the change. Every service's spans are read together in
/// windows that double from a day, as long as more than a quarter of the services have no
/// answer (most run a change within days of its commit); the rest are then read service by
/// service (through the unique key's index), so a service that never ran it costs its own
/// spans, not every service's spans up to the end of the ledger.
fn first_runs(
    store: &mut dyn Store,
    p: &mut Presences,
    latest: &[Running],
    wanted: &[CommitId],
    committed_at: i64,
) -> Result<BTreeMap<(String, String), First>> {
    let pending = latest.iter().map(|s| (s.environment.clone(), s.service.clone())).collect();
    let mut f = Firsts { p, wanted, committed_at, pending, found: BTreeMap::new() };
    let end = latest.iter().map(|s| s.first_seen).max().unwrap_or(i64::MIN);
    let from = f.together(store, committed_at.saturating_sub(SKEW), end, latest.len())?;
    tracing::debug!(
        "when: {} of {} services answered from every service's spans up to {}; {} read one by one",
        f.found.len(),
        latest.len(),
        super::minute(from),
        f.pending.len()
    );
    for (environment, service) in f.pending.clone() {
        f.one_by_one(store, &environment, &service, from)?;
    }
    Ok(f.found)
}

/// The services still without an answer, and the answers so far.
struct Firsts<'p, 'r, 'w> {
    p: &'p mut Presences<'r>,
    wanted: &'w [CommitId],
    committed_at: i64,
    pending: BTreeSet<(String, String)>,
    found: BTreeMap<(String, String), First>,
}

impl Firsts<'_, '_, '_> {
    /// Takes `s` (spans come oldest first) as its service's answer if it runs the change and
    /// the service has none yet.
    fn consider(&mut self, s: &Running) -> Result<bool> {
        let key = (s.environment.clone(), s.service.clone());
        if !self.pending.contains(&key) {
            return Ok(false);
        }
        let Some(how) = running_in(self.p, &s.parts, self.wanted)? else { return Ok(false) };
        self.pending.remove(&key);
        self.found.insert(key, first_of(s, how, self.committed_at));
        Ok(true)
    }

    /// Every service's spans from `from` in doubling windows, while more than a quarter of
    /// the `asked` services are pending and the ledger goes on; returns where it stopped.
    fn together(&mut self, store: &mut dyn Store, mut from: i64, end: i64, asked: usize) -> Result<i64> {
        let mut window = FIRST_WINDOW;
        while self.pending.len() * 4 > asked && from <= end {
            let until = from.saturating_add(window);
            for s in store.running_between(from, until)? {
                self.consider(&s)?;
            }
            (from, window) = (until, window.saturating_mul(2));
        }
        Ok(from)
    }

    /// One service's spans from `from`, a few first and more at each read, until one runs
    /// the change or there are no more.
    fn one_by_one(&mut self, store: &mut dyn Store, environment: &str, service: &str, from: i64) -> Result<()> {
        let (mut since, mut limit) = (from, PAGES.0);
        loop {
            let page = store.running_of(environment, service, since, limit)?;
            for s in &page {
                if self.consider(s)? {
                    return Ok(());
                }
            }
            match page.last() {
                Some(last) if page.len() as i64 == limit => since = last.first_seen.saturating_add(1),
                _ => return Ok(()),
            }
            limit = (limit * 2).min(PAGES.1);
        }
    }
}

/// How a state runs the change (on any replica), if it does.
fn running_in(p: &mut Presences, parts: &[Part], wanted: &[CommitId]) -> Result<Option<String>> {
    for part in parts {
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

fn still(p: &mut Presences, parts: &[Part], wanted: &[CommitId]) -> Result<&'static str> {
    let mut n = 0;
    for part in parts {
        if let Some(c) = &part.commit {
            if p.runs_all(c, wanted)?.is_some() {
                n += 1;
            }
        }
    }
    Ok(match n {
        0 => "no",
        n if n == parts.len() => "yes",
        _ => "partly",
    })
}

fn first_of(s: &Running, how: String, committed_at: i64) -> First {
    let (lead_time, method) = match (s.started_at, s.prev_seen) {
        (Some(t), _) => (Some(t - committed_at), "commit time to the first replica's start (exact)".to_string()),
        (None, Some(_)) => {
            (Some(s.first_seen - committed_at), "commit time to the first run that saw it (upper bound)".to_string())
        }
        (None, None) => (None, "already running when the ledger first saw it: no lead time".to_string()),
    };
    First { exact: s.started_at, after: s.prev_seen, by: s.first_seen, how, lead_time, method }
}
