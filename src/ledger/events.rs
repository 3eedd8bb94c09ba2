//! Observations into deployment events. A run's sighting of a service either extends the
//! span of the state it was already in, or starts a new span; the transition into a new
//! span (from -> to, commits shipped and removed, tickets, rollback) is computed with git
//! here, once, when it is recorded. Runs may arrive out of order (imports, concurrent
//! recorders): a sighting is placed by its time, and the span after it is re-described.
//! Nothing here invents a change for what a run did not see: a service absent from a
//! sighting is left as it was.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context as _, Result};

use super::store::{transaction, Store};
use super::{state_key, Change, Commit, Heartbeat, Kind, Part, Seen, Sighting, Span};
use crate::config::Config;
use crate::git::Repo;
use crate::history::contains::PatchIds;
use crate::model::CommitId;

/// Describes transitions between states of a service (the git side of recording).
pub trait Describe {
    fn change(&mut self, service: &str, from: Option<&[Part]>, to: &[Part]) -> Result<Change>;
}

/// What one `record` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// New deployment events (first sightings included).
    pub events: usize,
    /// Services whose state was confirmed (no change).
    pub unchanged: usize,
    /// Sightings that contradict what the ledger already holds for that time (skipped).
    pub contradicted: Vec<String>,
}

/// Records a sighting in one transaction: its heartbeat, and every service it saw.
pub fn record(store: &mut dyn Store, sighting: &Sighting, describe: &mut dyn Describe) -> Result<Outcome> {
    transaction(store, |store| {
        store.insert_heartbeat(&Heartbeat {
            at: sighting.at,
            complete: sighting.complete,
            failed: sighting.failed.clone(),
            origin: sighting.origin.clone(),
        })?;
        let at = sighting.at;
        // The common case, a run newer than everything recorded, is decided from each
        // service's latest span read at once, and confirmations are one batched update.
        let mut latest: HashMap<(String, String), Span> =
            store.latest()?.into_iter().map(|s| ((s.environment.clone(), s.service.clone()), s)).collect();
        hold_for_tests();
        let mut outcome = Outcome::default();
        let mut confirmed = Vec::new();
        for seen in &sighting.seen {
            let what = || format!("recording {}/{}", seen.environment, seen.service);
            match latest.remove(&(seen.environment.clone(), seen.service.clone())) {
                Some(l) if at > l.last_seen && l.key == state_key(&seen.parts) => {
                    confirmed.extend(l.id);
                    outcome.unchanged += 1;
                }
                Some(l) if at > l.last_seen => {
                    decide(store, seen, at, Some(l), None, describe, &mut outcome).with_context(what)?
                }
                None => decide(store, seen, at, None, None, describe, &mut outcome).with_context(what)?,
                Some(_) => place(store, seen, at, describe, &mut outcome).with_context(what)?,
            }
        }
        store.confirm(&confirmed, at)?;
        Ok(outcome)
    })
}

/// Debug builds only: `PRODIFF_LEDGER_HOLD_MS` keeps the transaction open that long after
/// it has read a service's state and before it writes, so the concurrency tests make
/// recorders overlap there for certain.
fn hold_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("PRODIFF_LEDGER_HOLD_MS").ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Places a sighting anywhere in a service's history (an import, a late recorder).
fn place(store: &mut dyn Store, seen: &Seen, at: i64, describe: &mut dyn Describe, out: &mut Outcome) -> Result<()> {
    let (prev, next) = store.around(&seen.environment, &seen.service, at)?;
    decide(store, seen, at, prev, next, describe, out)
}

/// Given the spans just before and after `at`: extend one of them, or insert a new span
/// between them (and re-describe the one after).
fn decide(
    store: &mut dyn Store,
    seen: &Seen,
    at: i64,
    prev: Option<Span>,
    next: Option<Span>,
    describe: &mut dyn Describe,
    out: &mut Outcome,
) -> Result<()> {
    let key = state_key(&seen.parts);
    if let Some(mut p) = prev.clone().filter(|p| p.key == key) {
        if at > p.last_seen {
            p.last_seen = at;
            store.update_span(&p)?;
        }
        out.unchanged += 1;
        return Ok(());
    }
    if let Some(p) = prev.as_ref().filter(|p| at <= p.last_seen) {
        out.contradicted.push(format!(
            "{}/{} at {}: the ledger already has it running {} then",
            seen.environment,
            seen.service,
            super::minute(at),
            p.key
        ));
        return Ok(());
    }
    if let Some(mut n) = next.clone().filter(|n| n.key == key) {
        // An earlier sighting of the state that follows: it started no later than this.
        n.first_seen = at;
        n.parts = seen.parts.clone();
        n.started_at = exact(&n.parts, n.change.from.as_deref(), n.prev_seen, at);
        store.update_span(&n)?;
        out.unchanged += 1;
        return Ok(());
    }
    let from = prev.as_ref().map(|p| p.parts.as_slice());
    let span = Span {
        id: None,
        environment: seen.environment.clone(),
        service: seen.service.clone(),
        key,
        first_seen: at,
        last_seen: at,
        prev_seen: prev.as_ref().map(|p| p.last_seen),
        started_at: exact(&seen.parts, from, prev.as_ref().map(|p| p.last_seen), at),
        change: describe.change(&seen.service, from, &seen.parts)?,
        parts: seen.parts.clone(),
    };
    if !store.insert_span(&span)? {
        out.unchanged += 1;
        return Ok(());
    }
    out.events += 1;
    if let Some(mut n) = next {
        n.prev_seen = Some(at);
        n.change = describe.change(&n.service, Some(&span.parts), &n.parts)?;
        n.started_at = exact(&n.parts, Some(&span.parts), Some(at), n.first_seen);
        store.update_span(&n)?;
    }
    Ok(())
}

/// The exact time of a change: the earliest start of a replica of an image the state before
/// did not run, when it falls between the last run that saw the old state and the first
/// that saw the new one (a start outside those bounds is a restart, not this change).
fn exact(parts: &[Part], from: Option<&[Part]>, lower: Option<i64>, upper: i64) -> Option<i64> {
    let old: BTreeSet<String> = from.unwrap_or_default().iter().map(Part::key).collect();
    let start = parts.iter().filter(|p| !old.contains(&p.key())).filter_map(|p| p.started_at).min()?;
    (start <= upper && lower.is_none_or(|l| start > l)).then_some(start)
}

/// The real `Describe`: git walks in the audited repository, limited to the service's paths.
pub struct Git<'a> {
    pub repo: &'a Repo,
    pub config: &'a Config,
    pids: PatchIds,
}

impl<'a> Git<'a> {
    pub fn new(repo: &'a Repo, config: &'a Config) -> Git<'a> {
        Git { repo, config, pids: PatchIds::default() }
    }

    /// `git rev-list TIPS ^HIDDEN`, only commits touching the service's paths, non-merges. A
    /// merge's ticket keys (`Merge pull request #45 from …`) go to the commits it merged.
    fn commits(&self, service: &str, tips: &[CommitId], hidden: &[CommitId]) -> Result<Vec<Commit>> {
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        let paths = self.config.paths(service);
        let (mut out, mut merges) = (Vec::new(), Vec::new());
        for id in self.repo.walk(tips, hidden)? {
            let info = self.repo.commit_info(&id)?;
            if info.parents > 1 {
                let tickets = self.config.tickets.find(&info.message);
                if !tickets.is_empty() {
                    merges.push((id, info.parents, tickets));
                }
                continue;
            }
            // (Merges never touch paths: `git rev-list --no-merges -- PATHS`.)
            if !paths.is_empty() && !self.repo.touches(&id, paths)? {
                continue;
            }
            let tickets = self.config.tickets.find(&info.message);
            out.push(Commit {
                tickets,
                sha: info.id.0,
                subject: info.subject,
                committed_at: info.committed.timestamp(),
            });
        }
        for (merge, parents, tickets) in merges {
            self.merged_tickets(&merge, parents, &tickets, &mut out)?;
        }
        Ok(out)
    }

    /// Adds a merge's ticket keys to those of `commits` it merged (reachable from a parent
    /// after the first, not from the first).
    fn merged_tickets(
        &self,
        merge: &CommitId,
        parents: usize,
        tickets: &[String],
        commits: &mut [Commit],
    ) -> Result<()> {
        let parent = |n: usize| self.repo.resolve_rev(&format!("{}^{n}", merge.0));
        let branches = (2..=parents).map(parent).collect::<Result<Vec<_>, _>>()?;
        let merged: BTreeSet<String> = self.repo.walk(&branches, &[parent(1)?])?.into_iter().map(|c| c.0).collect();
        for c in commits.iter_mut().filter(|c| merged.contains(&c.sha)) {
            for t in tickets {
                if !c.tickets.contains(t) {
                    c.tickets.push(t.clone());
                }
            }
        }
        Ok(())
    }

    /// The commit of `others` with the same patch as `c` (a cherry-pick either way), if any.
    fn picked_from(&mut self, c: &Commit, others: &[Commit]) -> Result<Option<String>> {
        let Some(pid) = self.pids.get(self.repo, &CommitId(c.sha.clone()))? else { return Ok(None) };
        for o in others {
            if self.pids.get(self.repo, &CommitId(o.sha.clone()))?.as_ref() == Some(&pid) {
                return Ok(Some(o.sha.clone()));
            }
        }
        Ok(None)
    }
}

/// The resolved commits of a state that this repository has.
fn resolved(repo: &Repo, parts: &[Part]) -> Vec<CommitId> {
    let mut out: Vec<CommitId> = parts
        .iter()
        .filter_map(|p| p.commit.as_ref())
        .filter(|c| matches!(repo.lookup_commit(c), crate::git::Lookup::Found(_)))
        .map(|c| CommitId(c.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Describe for Git<'_> {
    fn change(&mut self, service: &str, from: Option<&[Part]>, to: &[Part]) -> Result<Change> {
        let Some(from) = from else {
            return Ok(Change { kind: Kind::FirstSeen, from: None, shipped: vec![], removed: vec![], tickets: vec![] });
        };
        let (old, new) = (resolved(self.repo, from), resolved(self.repo, to));
        let mut shipped = self.commits(service, &new, &old)?;
        let mut removed = self.commits(service, &old, &new)?;
        // A commit that replaces its own cherry-pick (or the reverse) changes nothing that
        // runs: neither shipped nor removed.
        let mut same = Vec::new();
        for c in &shipped {
            if let Some(o) = self.picked_from(c, &removed)? {
                same.push((c.sha.clone(), o));
            }
        }
        shipped.retain(|c| !same.iter().any(|(s, _)| s == &c.sha));
        removed.retain(|c| !same.iter().any(|(_, o)| o == &c.sha));
        let really_new = shipped.len();
        let kind = match (really_new, removed.is_empty()) {
            (0, false) => Kind::Rollback,
            (n, _) if n > 0 => Kind::Deploy,
            _ => Kind::Changed,
        };
        let mut tickets: Vec<String> = shipped.iter().flat_map(|c| c.tickets.iter().cloned()).collect();
        tickets.sort();
        tickets.dedup();
        Ok(Change { kind, from: Some(from.to_vec()), shipped, removed, tickets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(commit: &str, started: Option<i64>) -> Part {
        Part {
            image: format!("r/api:{commit}"),
            commit: Some(commit.into()),
            digests: vec![],
            replicas: 1,
            started_at: started,
        }
    }

    #[test]
    fn an_exact_time_only_within_the_bounds_and_only_for_new_images() {
        let old = [part("a", Some(50))];
        assert_eq!(exact(&[part("b", Some(150))], Some(&old), Some(100), 200), Some(150));
        // A start before the last run that saw the old state is a restart, not this change.
        assert_eq!(exact(&[part("b", Some(90))], Some(&old), Some(100), 200), None);
        // The replica of the old image that still runs says nothing about the change.
        assert_eq!(exact(&[part("a", Some(150)), part("b", None)], Some(&old), Some(100), 200), None);
        assert_eq!(exact(&[part("b", Some(10))], None, None, 200), Some(10));
    }
}
