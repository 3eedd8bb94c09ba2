//! How a running commit differs from another: commits behind (in the other side, not
//! running: what the next release ships) and ahead (running, not in the other side: hotfix
//! drift), with cherry-picks recognised by patch-id on both sides, like
//! `git rev-list --cherry-mark --left-right`. Pure: no I/O, no async; `history` feeds it.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{Code, CommitId, CommitRecord, Finding};

/// One commit of a range as `history` gathered it: the record and its patch-id (None for
/// merges and empty commits, which git never treats as cherry-picks either).
#[derive(Clone, Debug)]
pub struct Side {
    pub record: CommitRecord,
    pub patch_id: Option<String>,
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
        behind: Vec<Side>,
        ahead: Vec<Side>,
    ) -> Comparison {
        let (behind, ahead) = mark_equivalents(behind, ahead);
        Comparison { target, target_commit, merge_base, behind, ahead }
    }

    /// Running commits the target lacks and has no equivalent of (merges excluded: a merge
    /// brings in commits that are listed themselves).
    pub fn drift(&self) -> impl Iterator<Item = &CommitRecord> {
        self.ahead.iter().filter(|c| !c.merge && c.equivalent.is_none())
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
fn mark_equivalents(behind: Vec<Side>, ahead: Vec<Side>) -> (Vec<CommitRecord>, Vec<CommitRecord>) {
    // patch-id -> the first commit with it, per side: one pass each, no pairwise search.
    let index = |sides: &[Side]| {
        let mut map: HashMap<String, CommitId> = HashMap::new();
        for s in sides {
            if let Some(p) = &s.patch_id {
                map.entry(p.clone()).or_insert_with(|| s.record.sha.clone());
            }
        }
        map
    };
    let (in_behind, in_ahead) = (index(&behind), index(&ahead));
    let mark = |sides: Vec<Side>, other: &HashMap<String, CommitId>| -> Vec<CommitRecord> {
        sides
            .into_iter()
            .map(|s| CommitRecord { equivalent: s.patch_id.as_ref().and_then(|p| other.get(p).cloned()), ..s.record })
            .collect()
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

    fn side(sha: char, pid: Option<&str>, merge: bool) -> Side {
        Side {
            record: CommitRecord {
                sha: CommitId(sha.to_string().repeat(40)),
                subject: format!("commit {sha}"),
                author: "A".into(),
                email: "a@example.com".into(),
                date: "2026-01-01T00:00:00+00:00".into(),
                committed_at: "2026-01-01T00:00:00+00:00".into(),
                tickets: vec![],
                merge,
                equivalent: None,
            },
            patch_id: pid.map(str::to_string),
        }
    }

    #[test]
    fn cherry_picks_are_equivalent_on_both_sides_and_not_drift() {
        let behind = vec![side('a', Some("p1"), false), side('b', Some("p2"), false)];
        let ahead = vec![side('c', Some("p1"), false), side('d', Some("p9"), false), side('e', None, true)];
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
        let c = Comparison::new("main".into(), CommitId("f".repeat(40)), None, vec![], vec![]);
        assert!(c.findings("prod", "api").is_empty());
    }
}
