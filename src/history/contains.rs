//! "Is it deployed?": for a commit or a ticket, whether each environment's services run it,
//! run an equivalent cherry-pick of it, run it on only some replicas, or do not.
//!
//! `present` asks git (ancestry, then patch-ids for cherry-picks); `combine` and `verdict`
//! are pure. In a shallow clone "not reachable" proves nothing where the missing history
//! could hold the commit: there it becomes `unknown`, and is exact elsewhere.

use std::collections::HashMap;

use serde::Serialize;

use crate::git::{GitError, Repo};
use crate::model::CommitId;

/// Where one queried commit stands in one running commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "via")]
pub enum Presence {
    /// The commit itself is in the running history.
    Deployed,
    /// Not the commit, but this one with the same patch (a cherry-pick).
    Equivalent(CommitId),
    Missing,
    /// The repository cannot tell (a shallow clone).
    Unknown,
}

/// The answer for one service in one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Deployed,
    /// Deployed, at least partly as cherry-picks.
    Equivalent,
    /// Some of the commits, or some of the replicas.
    Partial,
    NotDeployed,
    /// An image could not be resolved, or the clone is shallow.
    Unknown,
}

impl State {
    pub fn describe(self) -> &'static str {
        match self {
            State::Deployed => "deployed",
            State::Equivalent => "deployed (cherry-pick)",
            State::Partial => "partially deployed",
            State::NotDeployed => "not deployed",
            State::Unknown => "unknown",
        }
    }
}

/// Patch-ids computed once per run, whatever the number of queries and deployments.
#[derive(Default)]
pub struct PatchIds(HashMap<CommitId, Option<String>>);

impl PatchIds {
    /// The patch-id of `id` (none for a merge or an empty commit), computed once.
    pub fn get(&mut self, repo: &Repo, id: &CommitId) -> Result<Option<String>, GitError> {
        if let Some(p) = self.0.get(id) {
            return Ok(p.clone());
        }
        let p = repo.patch_id(id)?;
        self.0.insert(id.clone(), p.clone());
        Ok(p)
    }
}

/// Whether `wanted` runs in `running`: itself, as a cherry-pick (a commit of `running` that
/// `wanted` lacks with the same patch-id), or not at all.
pub fn present(repo: &Repo, pids: &mut PatchIds, running: &CommitId, wanted: &CommitId) -> Result<Presence, GitError> {
    if repo.contains(running, wanted)? {
        return Ok(Presence::Deployed);
    }
    // In a shallow clone the history behind a boundary commit is missing, and `wanted` may
    // be in it; but when every boundary `running` reaches is reached from `wanted` too, that
    // hidden history is older than `wanted` and cannot hold it: the answer is exact.
    if repo.is_shallow() && repo.reaches_boundary(running, wanted)? {
        return Ok(Presence::Unknown);
    }
    let Some(pid) = pids.get(repo, wanted)? else { return Ok(Presence::Missing) };
    // Only a commit changing the same paths can have the same patch: test that first.
    let pre = repo.patch_prehash(wanted)?;
    for candidate in repo.range(running, wanted)? {
        if repo.patch_prehash(&candidate)? == pre && pids.get(repo, &candidate)?.as_ref() == Some(&pid) {
            return Ok(Presence::Equivalent(candidate));
        }
    }
    Ok(Presence::Missing)
}

/// One running image's state from the presence of every queried commit.
pub fn state_of(presences: &[Presence]) -> State {
    if presences.contains(&Presence::Unknown) {
        return State::Unknown;
    }
    let found = presences.iter().filter(|p| !matches!(p, Presence::Missing)).count();
    match found {
        0 => State::NotDeployed,
        n if n < presences.len() => State::Partial,
        _ if presences.iter().any(|p| matches!(p, Presence::Equivalent(_))) => State::Equivalent,
        _ => State::Deployed,
    }
}

/// A service's state from the states of the images its replicas run.
pub fn combine(states: &[State]) -> State {
    if states.contains(&State::Unknown) {
        return State::Unknown;
    }
    let first = states.first().copied().unwrap_or(State::Unknown);
    if states.iter().all(|s| *s == first) {
        return first;
    }
    let deployed = |s: &State| matches!(s, State::Deployed | State::Equivalent);
    if states.iter().all(deployed) {
        State::Equivalent
    } else {
        State::Partial
    }
}

/// The exit code of `contains`: 0 all deployed, 1 none, 4 partly, 3 unknown.
pub fn verdict(states: &[State]) -> u8 {
    if states.is_empty() || states.contains(&State::Unknown) {
        return crate::exit::INCOMPLETE;
    }
    if states.iter().all(|s| matches!(s, State::Deployed | State::Equivalent)) {
        crate::exit::CLEAN
    } else if states.iter().all(|s| *s == State::NotDeployed) {
        crate::exit::VIOLATION
    } else {
        crate::exit::PARTIAL
    }
}

/// The exit code of `contains` when the run may be incomplete (an unreachable source): a
/// "yes everywhere" or "nowhere" it cannot vouch for becomes 3; a partial answer stays 4.
pub fn verdict_of(states: &[State], complete: bool) -> u8 {
    match verdict(states) {
        crate::exit::CLEAN | crate::exit::VIOLATION if !complete => crate::exit::INCOMPLETE,
        code => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq() -> Presence {
        Presence::Equivalent(CommitId("a".repeat(40)))
    }

    #[test]
    fn states_from_presences() {
        assert_eq!(state_of(&[Presence::Deployed, Presence::Deployed]), State::Deployed);
        assert_eq!(state_of(&[Presence::Deployed, eq()]), State::Equivalent);
        assert_eq!(state_of(&[Presence::Deployed, Presence::Missing]), State::Partial);
        assert_eq!(state_of(&[Presence::Missing]), State::NotDeployed);
        assert_eq!(state_of(&[Presence::Missing, Presence::Unknown]), State::Unknown);
    }

    #[test]
    fn replicas_that_differ_are_partial() {
        assert_eq!(combine(&[State::Deployed, State::NotDeployed]), State::Partial);
        assert_eq!(combine(&[State::Deployed, State::Equivalent]), State::Equivalent);
        assert_eq!(combine(&[State::NotDeployed, State::NotDeployed]), State::NotDeployed);
    }

    #[test]
    fn verdicts_follow_the_documented_exit_codes() {
        assert_eq!(verdict(&[State::Deployed, State::Equivalent]), 0);
        assert_eq!(verdict(&[State::NotDeployed]), 1);
        assert_eq!(verdict(&[State::Deployed, State::NotDeployed]), 4);
        assert_eq!(verdict(&[State::Partial]), 4);
        assert_eq!(verdict(&[State::Deployed, State::Unknown]), 3);
    }
}
