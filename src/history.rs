//! Gathers what `compare` needs from the repository: both ranges between a running commit
//! and a target, each commit's record and patch-id, and the service's path filter.
//! The only place where comparison touches git.

use crate::compare::{Comparison, Side};
use crate::git::{Brief, CommitInfo, GitError, Repo};
use crate::model::{CommitId, CommitRecord};
use crate::tickets::TicketMatcher;

/// How much of the target's side a comparison reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Every commit of both sides with subject, author, dates and tickets.
    Full,
    /// The target's side only as far as counting and dating it goes (id, commit date, merge
    /// or not; no subject, author or tickets), for views that show counts: with a
    /// commit-graph, no object of that side is read. The running side, which findings
    /// list, stays full.
    Counts,
}

/// Compares `running` with `target` (named `target_name` in reports). With `paths`, only
/// non-merge commits touching them are listed.
pub fn compare(
    repo: &Repo,
    running: &CommitId,
    (target_name, target): (&str, &CommitId),
    paths: &[String],
    tickets: &TicketMatcher,
    detail: Detail,
) -> Result<Comparison, GitError> {
    let (behind, includes_running) = match detail {
        Detail::Full => {
            let log = repo.log(target, running)?;
            (log.commits.into_iter().map(|c| to_record(c, tickets)).collect(), log.includes_exclude)
        }
        Detail::Counts => {
            let log = repo.log_brief(target, running)?;
            (log.commits.into_iter().map(brief_record).collect(), log.includes_exclude)
        }
    };
    // When the target contains what runs, nothing runs that the target lacks: no need to walk
    // the target's whole range a second time to find that out.
    let ahead = match includes_running {
        true => Vec::new(),
        false => repo.log(running, target)?.commits.into_iter().map(|c| to_record(c, tickets)).collect(),
    };
    let behind = filtered(repo, behind, paths)?;
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
    let behind = sides(repo, behind, pair)?;
    let ahead = sides(repo, ahead, pair)?;
    Ok(Comparison::new(target_name.to_string(), target.clone(), merge_base, behind, ahead))
}

fn filtered(repo: &Repo, commits: Vec<CommitRecord>, paths: &[String]) -> Result<Vec<CommitRecord>, GitError> {
    if paths.is_empty() {
        return Ok(commits);
    }
    let mut out = Vec::new();
    for c in commits {
        if repo.touches(&c.sha, paths)? {
            out.push(c);
        }
    }
    Ok(out)
}

fn sides(repo: &Repo, records: Vec<CommitRecord>, patch_ids: bool) -> Result<Side, GitError> {
    let patch_ids = match patch_ids {
        true => records.iter().map(|r| repo.patch_id(&r.sha)).collect::<Result<_, _>>()?,
        false => Vec::new(),
    };
    Ok(Side { records, patch_ids })
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

/// A record of what the walk knows without reading the commit: text fields stay empty.
fn brief_record(b: Brief) -> CommitRecord {
    CommitRecord {
        sha: b.id,
        subject: String::new(),
        tickets: Vec::new(),
        author: String::new(),
        email: String::new(),
        date: String::new(),
        committed_at: b.committed.to_rfc3339(),
        merge: b.parents > 1,
        equivalent: None,
    }
}
