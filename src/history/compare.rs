//! How a running commit differs from another: commits behind (in the other side, not
//! running: what the next release ships) and ahead (running, not in the other side: hotfix
//! drift), with cherry-picks recognised by patch-id on both sides, like
//! `git rev-list --cherry-mark --left-right`. Pure: no I/O, no async; `history` feeds it.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{Code, CommitId, CommitRecord, Finding};

/// One side of a comparison as `history` gathered it: the records, and beside them each
/// one's patch-id (None for merges and empty commits, which git never treats as cherry-picks
/// either). `patch_ids` is empty when none were computed (the other side is empty).
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub records: Vec<CommitRecord>,
    pub patch_ids: Vec<Option<String>>,
}

/// The difference between what runs and a target (the mainline, a ref, another environment).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// What is compared against: `main`, `v1.4.0`, `env:staging`.
    pub target: String,
    pub target_commit: CommitId,
    pub merge_base: Option<CommitId>,
    /// In the target, not running.
    pub behind: Vec<CommitRecord>,
    /// Running, not in the target.
    pub ahead: Vec<CommitRecord>,
}

impl Comparison {
    /// Builds the comparison, marking every commit whose patch the other side also has.
    pub fn new(
        target: String,
        target_commit: CommitId,
        merge_base: Option<CommitId>,
        behind: Side,
        ahead: Side,
    ) -> Comparison {
        let (behind, ahead) = mark_equivalents(behind, ahead);
        Comparison { target, target_commit, merge_base, behind, ahead }
    }

    /// Running commits the target lacks and has no equivalent of (merges excluded: a merge
    /// brings in commits that are listed themselves).
    pub fn drift(&self) -> impl Iterator<Item = &CommitRecord> {
        self.ahead.iter().filter(|c| !c.merge && c.equivalent.is_none())
    }

    /// Target commits not running in any form, merges apart: what deploying the target adds.
    pub fn added(&self) -> impl Iterator<Item = &CommitRecord> {
        self.behind.iter().filter(|c| !c.merge && c.equivalent.is_none())
    }

    /// Deploying the target goes back: it removes running commits (`drift`) and adds none
    /// (`added`). The one notion of a rollback for `plan` and `rollback`, counted the same.
    pub fn goes_back(&self) -> bool {
        self.drift().next().is_some() && self.added().next().is_none()
    }

    /// Target commits not running in any form.
    pub fn missing(&self) -> impl Iterator<Item = &CommitRecord> {
        self.behind.iter().filter(|c| c.equivalent.is_none())
    }

    /// `hotfix-drift` and `behind-mainline`, for the environment and service compared.
    pub fn findings(&self, env: &str, service: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        let drift: Vec<&CommitRecord> = self.drift().collect();
        if !drift.is_empty() {
            let list: Vec<String> = drift.iter().take(3).map(|c| format!("{} {}", c.sha.short(), c.subject)).collect();
            let more = if drift.len() > 3 { format!(" and {} more", drift.len() - 3) } else { String::new() };
            out.push(
                Finding::new(
                    Code::HotfixDrift,
                    format!(
                        "runs {} commit{} that {} does not have: {}{more}",
                        drift.len(),
                        plural(drift.len()),
                        self.target,
                        list.join("; ")
                    ),
                )
                .hint(format!("merge or cherry-pick them into {}, or the next release will drop them", self.target))
                .key(drift.iter().map(|c| c.sha.0.as_str()).collect::<Vec<_>>().join(","))
                .at(env, service),
            );
        }
        let missing = self.missing().count();
        if missing > 0 {
            out.push(
                Finding::new(
                    Code::BehindMainline,
                    format!(
                        "{missing} commit{} in {} {} not running yet",
                        plural(missing),
                        self.target,
                        if missing == 1 { "is" } else { "are" }
                    ),
                )
                .at(env, service),
            );
        }
        out
    }
}

/// Pairs commits across the two sides by patch-id. Returns the records with `equivalent` set.
fn mark_equivalents(behind: Side, ahead: Side) -> (Vec<CommitRecord>, Vec<CommitRecord>) {
    // patch-id -> the first commit with it, per side: one pass each, no pairwise search.
    let index = |side: &Side| {
        let mut map: HashMap<String, CommitId> = HashMap::new();
        for (record, pid) in side.records.iter().zip(&side.patch_ids) {
            if let Some(p) = pid {
                map.entry(p.clone()).or_insert_with(|| record.sha.clone());
            }
        }
        map
    };
    let (in_behind, in_ahead) = (index(&behind), index(&ahead));
    // In place: a side can hold 100k+ records.
    let mark = |side: Side, other: &HashMap<String, CommitId>| -> Vec<CommitRecord> {
        let mut records = side.records;
        for (record, pid) in records.iter_mut().zip(&side.patch_ids) {
            record.equivalent = pid.as_ref().and_then(|p| other.get(p).cloned());
        }
        records
    };
    (mark(behind, &in_ahead), mark(ahead, &in_behind))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(commits: &[(char, Option<&str>, bool)]) -> Side {
        Side {
            records: commits.iter().map(|&(sha, _, merge)| record(sha, merge)).collect(),
            patch_ids: commits.iter().map(|(_, pid, _)| pid.map(str::to_string)).collect(),
        }
    }

    fn record(sha: char, merge: bool) -> CommitRecord {
        CommitRecord {
            sha: CommitId(sha.to_string().repeat(40)),
            subject: format!("commit {sha}"),
            author: "A".into(),
            email: "a@example.com".into(),
            date: "2026-01-01T00:00:00+00:00".into(),
            committed_at: "2026-01-01T00:00:00+00:00".into(),
            tickets: vec![],
            merge,
            equivalent: None,
        }
    }

    #[test]
    fn cherry_picks_are_equivalent_on_both_sides_and_not_drift() {
        let behind = side(&[('a', Some("p1"), false), ('b', Some("p2"), false)]);
        let ahead = side(&[('c', Some("p1"), false), ('d', Some("p9"), false), ('e', None, true)]);
        let c = Comparison::new("main".into(), CommitId("f".repeat(40)), None, behind, ahead);
        assert_eq!(c.behind[0].equivalent.as_ref().unwrap().0, "c".repeat(40));
        assert_eq!(c.ahead[0].equivalent.as_ref().unwrap().0, "a".repeat(40));
        let drift: Vec<_> = c.drift().map(|r| r.subject.as_str()).collect();
        assert_eq!(drift, ["commit d"], "the merge and the cherry-pick are not drift");
        assert_eq!(c.missing().count(), 1);
        let codes: Vec<_> = c.findings("prod", "api").iter().map(|f| f.code).collect();
        assert_eq!(codes, [Code::HotfixDrift, Code::BehindMainline]);
    }

    #[test]
    fn identical_sides_have_no_findings() {
        let c = Comparison::new("main".into(), CommitId("f".repeat(40)), None, Side::default(), Side::default());
        assert!(c.findings("prod", "api").is_empty());
    }
}
