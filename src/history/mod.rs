//! Stage 4, history: takes a deployment's commit and a target (the mainline, another
//! environment, a release) and gives how they differ: ranges, cherry-pick pairing
//! (`compare`), whether a commit is deployed (`contains`), tickets, release tags and version
//! order (`release`). Reads git through `crate::git`; knows nothing of sources or reports.
//!
//! Gathers what `compare` needs from the repository: both ranges between a running commit
//! and a target, each commit's record and patch-id, and the service's path filter.
//! The only place where comparison touches git.

pub mod compare;
pub mod contains;
pub mod release;
pub mod tickets;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::git::{Brief, CommitInfo, GitError, Repo};
use crate::history::compare::{Comparison, Side};
use crate::history::tickets::TicketMatcher;
use crate::model::{CommitId, CommitRecord};

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

/// Comparisons already made in this run, by (running, target, paths): each pair of ranges is
/// walked and paired once, whichever views ask for it (the mainline, the predecessor in the
/// promotion path, `--against`, declared state, plans and rollbacks). A full comparison
/// also answers for counts.
#[derive(Default)]
pub struct Memo(RefCell<HashMap<MemoKey, (Detail, Rc<Comparison>)>>);

type MemoKey = (CommitId, CommitId, Vec<String>);

impl Memo {
    /// `compare`, or what it answered before for the same pair; named `target_name`.
    pub fn compare(
        &self,
        repo: &Repo,
        running: &CommitId,
        (target_name, target): (&str, &CommitId),
        paths: &[String],
        tickets: &TicketMatcher,
        detail: Detail,
    ) -> Result<Comparison, GitError> {
        let key = (running.clone(), target.clone(), paths.to_vec());
        let known =
            self.0.borrow().get(&key).filter(|(d, _)| *d == Detail::Full || *d == detail).map(|(_, c)| c.clone());
        let cmp = match known {
            Some(c) => c,
            None => {
                tracing::debug!("walking {}..{} ({target_name})", running.short(), target.short());
                let c = Rc::new(compare(repo, running, (target_name, target), paths, tickets, detail)?);
                self.0.borrow_mut().insert(key, (detail, c.clone()));
                c
            }
        };
        let mut cmp = Rc::unwrap_or_clone(cmp);
        cmp.target = target_name.to_string();
        Ok(cmp)
    }
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
    let (behind, ahead) = pair(repo, behind.records, ahead.records)?;
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

/// Up to how many distinct first paths the larger side is tested path by path.
const FIRST_PATHS: usize = 16;

/// Both sides with the patch-ids `Comparison` pairs them by, computed the way git's
/// `patch-ids.c` does: full patch-ids for the smaller side; on the other side a pre-hash of
/// the paths each commit changes first, and a full patch-id only where that matches one of
/// the smaller side's. A commit left without a patch-id has no equivalent. Nothing is
/// computed when a side is empty.
fn pair(repo: &Repo, behind: Vec<CommitRecord>, ahead: Vec<CommitRecord>) -> Result<(Side, Side), GitError> {
    if behind.is_empty() || ahead.is_empty() {
        return Ok((Side { records: behind, patch_ids: Vec::new() }, Side { records: ahead, patch_ids: Vec::new() }));
    }
    let small_is_ahead = ahead.len() <= behind.len();
    let (small, large) = if small_is_ahead { (&ahead, &behind) } else { (&behind, &ahead) };
    let mut small_ids = Vec::with_capacity(small.len());
    let mut wanted = HashSet::new();
    let mut first_paths = Vec::new();
    for r in small {
        let pid = if r.merge { None } else { repo.patch_id(&r.sha)? };
        if let (Some(_), Some((pre, first))) = (&pid, repo.patch_paths(&r.sha)?) {
            wanted.insert(pre);
            if !first_paths.contains(&first) {
                first_paths.push(first);
            }
        }
        small_ids.push(pid);
    }
    // A commit with one of those patches changes one of those first paths: looking that up
    // in two trees is cheaper than a tree diff, while the paths are few.
    let by_path = first_paths.len() <= FIRST_PATHS;
    let mut large_ids = Vec::with_capacity(large.len());
    for r in large {
        let candidate = !r.merge
            && !wanted.is_empty()
            && (!by_path || repo.touches(&r.sha, &first_paths)?)
            && repo.patch_prehash(&r.sha)?.is_some_and(|pre| wanted.contains(&pre));
        large_ids.push(if candidate { repo.patch_id(&r.sha)? } else { None });
    }
    let (behind_ids, ahead_ids) = if small_is_ahead { (large_ids, small_ids) } else { (small_ids, large_ids) };
    Ok((Side { records: behind, patch_ids: behind_ids }, Side { records: ahead, patch_ids: ahead_ids }))
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
