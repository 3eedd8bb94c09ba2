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
    let behind = range(repo, (target, running), paths, tickets, detail)?;
    // When the target contains what runs, nothing runs that the target lacks: no need to walk
    // the target's whole range a second time to find that out.
    let ahead = match behind.includes_exclude {
        true => Range { records: Vec::new(), includes_exclude: false, unfiltered_empty: true },
        false => range(repo, (running, target), paths, tickets, Detail::Full)?,
    };
    // When one side is empty (before any path filter) the other commit is an ancestor: that
    // is the merge base, and asking libgit2 would walk the whole range again.
    let merge_base = match (behind.unfiltered_empty, ahead.unfiltered_empty) {
        (_, true) => Some(running.clone()),
        (true, _) => Some(target.clone()),
        _ => repo.merge_base(running, target)?,
    };
    // Patch-ids cost a diff each: only worth it when both sides have commits to pair.
    let pair = !behind.records.is_empty() && !ahead.records.is_empty();
    let behind = sides(repo, behind.records, pair)?;
    let ahead = sides(repo, ahead.records, pair)?;
    Ok(Comparison::new(target_name.to_string(), target.clone(), merge_base, behind, ahead))
}

/// One side of a comparison: `include ^exclude`, filtered by `paths`.
struct Range {
    records: Vec<CommitRecord>,
    /// `include` contains `exclude`: the opposite range is empty.
    includes_exclude: bool,
    /// Nothing in the range even before the path filter.
    unfiltered_empty: bool,
}

fn range(
    repo: &Repo,
    (include, exclude): (&CommitId, &CommitId),
    paths: &[String],
    tickets: &TicketMatcher,
    detail: Detail,
) -> Result<Range, GitError> {
    // Without a path filter nothing is filtered out: the records are the whole range.
    let unfiltered = |records: Vec<CommitRecord>, includes_exclude: bool| Range {
        unfiltered_empty: records.is_empty(),
        records,
        includes_exclude,
    };
    if paths.is_empty() {
        return Ok(match detail {
            Detail::Full => {
                let log = repo.log(include, exclude)?;
                unfiltered(log.commits.into_iter().map(|c| to_record(c, tickets)).collect(), log.includes_exclude)
            }
            Detail::Counts => {
                let log = repo.log_brief(include, exclude)?;
                unfiltered(log.commits.into_iter().map(brief_record).collect(), log.includes_exclude)
            }
        });
    }
    // With a path filter the walk is shared by every service on this range, and only the
    // commits that touch the paths are read.
    let log = repo.log_brief_shared(include, exclude)?;
    let mut records = Vec::new();
    for b in &log.commits {
        if repo.touches(&b.id, paths)? {
            records.push(match detail {
                Detail::Full => to_record(repo.commit_info(&b.id)?, tickets),
                Detail::Counts => brief_record(b.clone()),
            });
        }
    }
    Ok(Range { records, includes_exclude: log.includes_exclude, unfiltered_empty: log.commits.is_empty() })
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
