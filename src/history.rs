//! Gathers what `compare` needs from the repository: both ranges between a running commit
//! and a target, each commit's record and patch-id, and the service's path filter.
//! The only place where comparison touches git.

use crate::compare::{Comparison, Side};
use crate::git::{CommitInfo, GitError, Repo};
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
    let behind = repo.log(target, running)?;
    // When the target contains what runs, nothing runs that the target lacks: no need to walk
    // the target's whole range a second time to find that out.
    let ahead = if behind.includes_exclude { Vec::new() } else { repo.log(running, target)?.commits };
    let behind = filtered(repo, behind.commits, paths)?;
    let ahead = filtered(repo, ahead, paths)?;
    // Patch-ids cost a diff each: only worth it when both sides have commits to pair.
    let pair = !behind.is_empty() && !ahead.is_empty();
    // When one side is empty the other commit is an ancestor: that is the merge base, and
    // asking libgit2 would walk the whole range a third time.
    let merge_base = match (behind.is_empty(), ahead.is_empty()) {
        (_, true) if paths.is_empty() => Some(running.clone()),
        (true, _) if paths.is_empty() => Some(target.clone()),
        _ => repo.merge_base(running, target)?,
    };
    let behind = sides(repo, behind, tickets, pair)?;
    let ahead = sides(repo, ahead, tickets, pair)?;
    Ok(Comparison::new(target_name.to_string(), target.clone(), merge_base, behind, ahead))
}

fn filtered(repo: &Repo, commits: Vec<CommitInfo>, paths: &[String]) -> Result<Vec<CommitInfo>, GitError> {
    if paths.is_empty() {
        return Ok(commits);
    }
    let mut out = Vec::new();
    for c in commits {
        if repo.touches(&c.id, paths)? {
            out.push(c);
        }
    }
    Ok(out)
}

fn sides(
    repo: &Repo,
    commits: Vec<CommitInfo>,
    tickets: &TicketMatcher,
    patch_ids: bool,
) -> Result<Vec<Side>, GitError> {
    commits
        .into_iter()
        .map(|c| {
            let patch_id = if patch_ids { repo.patch_id(&c.id)? } else { None };
            Ok(Side { record: to_record(c, tickets), patch_id })
        })
        .collect()
}

/// The report's view of one commit.
pub fn record(repo: &Repo, id: &CommitId, tickets: &TicketMatcher) -> Result<CommitRecord, GitError> {
    Ok(to_record(repo.commit_info(id)?, tickets))
}

fn to_record(info: CommitInfo, tickets: &TicketMatcher) -> CommitRecord {
    CommitRecord {
        sha: info.id,
        subject: info.subject,
        tickets: tickets.find(&info.message),
        author: info.author,
        email: info.email,
        date: info.date.to_rfc3339(),
        committed_at: info.committed.to_rfc3339(),
        merge: info.parents > 1,
        equivalent: None,
    }
}
