//! Gathers what `compare` needs from the repository: both ranges between a running commit
//! and a target, each commit's record and patch-id, and the service's path filter.
//! The only place where comparison touches git.

use crate::compare::{Comparison, Side};
use crate::git::{GitError, Repo};
use crate::model::{CommitId, CommitRecord};
use crate::tickets::TicketMatcher;

/// Compares `running` with `target` (named `target_name` in reports). With `paths`, only
/// non-merge commits touching them are listed.
pub fn compare(
    repo: &Repo,
    running: &CommitId,
    target_name: &str,
    target: &CommitId,
    paths: &[String],
    tickets: &TicketMatcher,
) -> Result<Comparison, GitError> {
    let behind_ids = filtered(repo, repo.range(target, running)?, paths)?;
    let ahead_ids = filtered(repo, repo.range(running, target)?, paths)?;
    // Patch-ids cost a diff each: only worth it when both sides have commits to pair.
    let pair = !behind_ids.is_empty() && !ahead_ids.is_empty();
    let behind = sides(repo, &behind_ids, tickets, pair)?;
    let ahead = sides(repo, &ahead_ids, tickets, pair)?;
    // When one side is empty the other commit is an ancestor: that is the merge base, and
    // asking libgit2 would walk the whole range a third time.
    let merge_base = match (behind_ids.is_empty(), ahead_ids.is_empty()) {
        (_, true) if paths.is_empty() => Some(running.clone()),
        (true, _) if paths.is_empty() => Some(target.clone()),
        _ => repo.merge_base(running, target)?,
    };
    Ok(Comparison::new(target_name.to_string(), target.clone(), merge_base, behind, ahead))
}

fn filtered(repo: &Repo, ids: Vec<CommitId>, paths: &[String]) -> Result<Vec<CommitId>, GitError> {
    if paths.is_empty() {
        return Ok(ids);
    }
    let mut out = Vec::new();
    for id in ids {
        if repo.touches(&id, paths)? {
            out.push(id);
        }
    }
    Ok(out)
}

fn sides(repo: &Repo, ids: &[CommitId], tickets: &TicketMatcher, patch_ids: bool) -> Result<Vec<Side>, GitError> {
    ids.iter()
        .map(|id| {
            let patch_id = if patch_ids { repo.patch_id(id)? } else { None };
            Ok(Side { record: record(repo, id, tickets)?, patch_id })
        })
        .collect()
}

/// The report's view of one commit.
pub fn record(repo: &Repo, id: &CommitId, tickets: &TicketMatcher) -> Result<CommitRecord, GitError> {
    let info = repo.commit_info(id)?;
    Ok(CommitRecord {
        sha: info.id,
        subject: info.subject,
        tickets: tickets.find(&info.message),
        author: info.author,
        email: info.email,
        date: info.date.to_rfc3339(),
        committed_at: info.committed.to_rfc3339(),
        merge: info.parents > 1,
        equivalent: None,
    })
}
