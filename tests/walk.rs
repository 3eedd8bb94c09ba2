//! The history walk against `git rev-list` on a generated history that is hard on it: merges
//! and octopus merges, many commits with equal dates, commits dated far in the future (so
//! older than their children), messages with blank first lines and non-UTF-8 names. Run without a
//! commit-graph, with a complete one, with a split chain of two layers, with one that misses
//! the newest commits, and with a corrupt one (which must be ignored with a warning).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// A deterministic pseudo-random sequence (no dependency, same history on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A fast-import stream of `count` commits starting at mark `first`, continuing `tips`
/// (branch name, mark of its tip). With `skew`, one commit in ten is dated 20 minutes before
/// its predecessor.
fn stream(rng: &mut Lcg, first: u64, count: u64, tips: &mut Vec<(String, u64)>, skew: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut clock: i64 = 1_700_000_000 + first as i64 * 600;
    for mark in first..first + count {
        let roll = rng.below(100);
        // A third share the second of the previous commit; a few are dated two months ahead,
        // so their children are older than they are.
        clock += if rng.below(3) == 0 { 0 } else { 600 };
        if skew && rng.below(10) == 0 {
            clock -= 1800;
        }
        let date = if rng.below(60) == 0 { clock + 86_400 * 60 } else { clock };
        let b = rng.below(tips.len() as u64) as usize;
        let (target, parents) = if roll < 15 && tips.len() > 1 {
            // A merge of another branch, sometimes an octopus of two more.
            let mut parents = vec![tips[b].1];
            for _ in 0..if roll < 4 { 2 } else { 1 } {
                let other = tips[rng.below(tips.len() as u64) as usize].1;
                if !parents.contains(&other) {
                    parents.push(other);
                }
            }
            (tips[b].0.clone(), parents)
        } else if roll < 22 {
            // A new branch from an older commit.
            let base = 1 + rng.below(mark - 1);
            tips.push((format!("topic{mark}"), base));
            (format!("topic{mark}"), vec![base])
        } else {
            (tips[b].0.clone(), vec![tips[b].1])
        };
        let name = if mark % 17 == 0 { b"Jos\xe9 M\xfcller".to_vec() } else { b"Ada Lovelace".to_vec() };
        let message = match mark % 5 {
            0 => format!("\n\nKEY-{mark} leading blank lines\n\nbody\n"),
            1 => format!("KEY-{mark} two-line\nsubject\n\nand a body\n"),
            _ => format!("KEY-{mark} change {mark}\n"),
        };
        write!(out, "commit refs/heads/{target}\nmark :{mark}\nauthor ").unwrap();
        out.extend_from_slice(&name);
        writeln!(out, " <dev{}@example.com> {date} +0200", mark % 3).unwrap();
        writeln!(out, "committer CI <ci@example.com> {date} +0000\ndata {}\n{message}", message.len()).unwrap();
        writeln!(out, "from :{}", parents[0]).unwrap();
        for p in &parents[1..] {
            writeln!(out, "merge :{p}").unwrap();
        }
        writeln!(out, "M 644 inline f{}.txt\ndata <<END\n{mark}\nEND\n", mark % 7).unwrap();
        tips.iter_mut().find(|t| t.0 == target).expect("the branch exists").1 = mark;
    }
    out
}

fn import(repo: &Path, stream: &[u8], marks: &Path) {
    let marks_arg = format!("--export-marks={}", marks.display());
    let import_arg = format!("--import-marks-if-exists={}", marks.display());
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet", &marks_arg, &import_arg])
        .current_dir(repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .expect("git is installed");
    child.stdin.take().unwrap().write_all(stream).unwrap();
    assert!(child.wait().unwrap().success(), "git fast-import failed");
}

const ROOT: &[u8] = b"commit refs/heads/main\nmark :1\nauthor R <r@example.com> 1700000000 +0000\n\
committer R <r@example.com> 1700000000 +0000\ndata 5\nroot\nM 644 inline f.txt\ndata 2\nr\n\n";

/// 300 commits, then 120 more; a split commit-graph layer after each part, and a complete
/// single-file graph of the first part kept aside as the stale one.
fn history() -> (TestRepo, Vec<u8>) {
    let r = TestRepo::new();
    let marks = r.scratch().join("marks");
    import(r.path(), ROOT, &marks);
    let mut rng = Lcg(7);
    let mut tips = vec![("main".to_string(), 1)];
    import(r.path(), &stream(&mut rng, 2, 300, &mut tips, false), &marks);
    r.git(&["commit-graph", "write", "--reachable"]);
    let stale = std::fs::read(r.path().join(".git/objects/info/commit-graph")).unwrap();
    std::fs::remove_file(r.path().join(".git/objects/info/commit-graph")).unwrap();
    r.git(&["commit-graph", "write", "--reachable", "--split=no-merge"]);
    import(r.path(), &stream(&mut rng, 302, 120, &mut tips, false), &marks);
    r.git(&["commit-graph", "write", "--reachable", "--split=no-merge"]);
    let chain = std::fs::read_to_string(r.path().join(".git/objects/info/commit-graphs/commit-graph-chain")).unwrap();
    assert_eq!(chain.lines().count(), 2, "two layers:\n{chain}");
    (r, stale)
}

/// Every environment runs a different commit; compared with three different mainlines.
/// `thorough` also checks git's own answer and the records' fields.
fn check_against_git(r: &TestRepo, inv: &Path, expect_warning: bool, thorough: bool) {
    let branches = r.git(&["for-each-ref", "--format=%(refname:short)", "refs/heads/"]);
    let topics: Vec<&str> = branches.lines().filter(|b| b.starts_with("topic")).collect();
    assert!(topics.len() >= 4, "the history has topic branches: {topics:?}");
    for mainline in ["main", topics[1], topics[topics.len() - 2]] {
        let args = ["status", "--format", "json", "--mainline", mainline, "--inventory", inv.to_str().unwrap()];
        let run = prodiff(r.path(), &args, None);
        assert_eq!(run.stderr.contains("not using the commit-graph"), expect_warning, "{}", run.context);
        let report = run.json();
        // The table view reads only what it counts (with a graph, no commit objects): its
        // counts must be the full report's.
        let table = prodiff(r.path(), &["status", "--mainline", mainline, "--inventory", inv.to_str().unwrap()], None);
        for row in report["results"].as_array().unwrap() {
            let env = row["environment"].as_str().unwrap();
            let line = table.stdout.lines().find(|l| l.split_whitespace().next() == Some(env)).unwrap();
            let cells: Vec<&str> = line.split_whitespace().collect();
            let missing = row["behind"].as_array().unwrap().iter().filter(|c| c["equivalent"].is_null()).count();
            let drift = row["ahead"].as_array().unwrap();
            let drift = drift.iter().filter(|c| c["equivalent"].is_null() && c["merge"] == false).count();
            assert_eq!((cells[6], cells[7]), (missing.to_string().as_str(), drift.to_string().as_str()), "{line}");
        }
        for row in report["results"].as_array().unwrap() {
            let c = row["commit"].as_str().unwrap();
            let (behind, ahead) = (rev_list(r, &format!("{c}..{mainline}")), rev_list(r, &format!("{mainline}..{c}")));
            // git's walk is a heuristic under clock skew; this history stays within what it
            // gets right, checked (on the first pass) against full walks of both sides.
            if thorough {
                assert_eq!(sorted(&behind), difference(r, mainline, c), "git rev-list {c}..{mainline} is exact");
                assert_eq!(sorted(&ahead), difference(r, c, mainline), "git rev-list {mainline}..{c} is exact");
            }
            assert_eq!(shas(&row["behind"]), behind, "{c}..{mainline}");
            assert_eq!(shas(&row["ahead"]), ahead, "{mainline}..{c}");
            if thorough {
                check_records(r, &row["behind"]);
                check_records(r, &row["ahead"]);
            }
        }
    }
}

/// Rewrites every first-parent position in a commit-graph's CDAT chunk to one past its end.
fn point_parents_outside(graph: &mut [u8]) {
    let be = |b: &[u8]| u64::from_be_bytes(b[..8].try_into().unwrap()) as usize;
    let chunks = graph[6] as usize;
    let (mut cdat, mut end) = (None, 0);
    for c in 0..chunks {
        let at = 8 + c * 12;
        if &graph[at..at + 4] == b"CDAT" {
            cdat = Some(be(&graph[at + 4..]));
            end = be(&graph[at + 16..]);
        }
    }
    let mut entry = cdat.expect("a CDAT chunk");
    while entry + 36 <= end {
        if graph[entry + 20..entry + 24] != [0x70, 0, 0, 0] {
            graph[entry + 20..entry + 24].copy_from_slice(&0x0fff_ffffu32.to_be_bytes());
        }
        entry += 36;
    }
}

fn sorted(list: &[String]) -> Vec<String> {
    let mut list = list.to_vec();
    list.sort();
    list
}

/// Commits reachable from `a` and not from `b`, by walking both completely.
fn difference(r: &TestRepo, a: &str, b: &str) -> Vec<String> {
    let below_b: std::collections::HashSet<String> = rev_list(r, b).into_iter().collect();
    sorted(&rev_list(r, a).into_iter().filter(|c| !below_b.contains(c)).collect::<Vec<_>>())
}

/// `git rev-list RANGE` with git's own commit-graph use off: the reference must not depend on
/// the graph under test (git stops with "invalid parent position" on the broken one).
fn rev_list(r: &TestRepo, range: &str) -> Vec<String> {
    r.git(&["-c", "core.commitGraph=false", "rev-list", range]).lines().map(str::to_string).collect()
}

/// Subject, author, email and both dates as git prints them.
fn check_records(r: &TestRepo, commits: &Value) {
    for c in commits.as_array().unwrap().iter().take(3) {
        let sha = c["sha"].as_str().unwrap();
        // Names are not all UTF-8: prodiff reports them lossily, so compare lossily.
        let out = Command::new("git")
            .args(["-c", "core.commitGraph=false", "log", "-1", "--format=%s%x00%an%x00%ae%x00%at%x00%ct", sha])
            .current_dir(r.path())
            .output()
            .unwrap();
        let git = String::from_utf8_lossy(&out.stdout);
        let want: Vec<&str> = git.trim_end().split('\0').collect();
        let when = |field: &str| chrono::DateTime::parse_from_rfc3339(c[field].as_str().unwrap()).unwrap().timestamp();
        assert_eq!(c["subject"], want[0], "{sha}");
        assert_eq!(c["author"], want[1], "{sha}");
        assert_eq!(c["email"], want[2], "{sha}");
        assert_eq!(when("date").to_string(), want[3], "{sha}");
        assert_eq!(when("committed_at").to_string(), want[4], "{sha}");
    }
}

#[test]
fn commit_lists_equal_git_rev_list_with_and_without_commit_graphs() {
    let (r, stale) = history();
    let all = r.rev_list(&["--all"]);
    assert_eq!(all.len(), 421);
    assert!(!r.rev_list(&["--min-parents=3", "--all"]).is_empty(), "the history has octopus merges");
    let rows: Vec<(String, String)> = (0..24)
        .map(|i| (format!("e{i}"), format!("example.com/app:sha-{}", &all[(i * 37 + 5) % all.len()][..12])))
        .collect();
    let rows: Vec<InventoryRow> = rows.iter().map(|(e, i)| (e.as_str(), "app", i.as_str(), &[][..])).collect();
    let inv = inventory(r.scratch(), "inv.json", &rows);
    let info = r.path().join(".git/objects/info");

    // A split chain of two layers.
    check_against_git(&r, &inv, false, true);
    // One file that lacks the 120 newest commits: those are read from objects.
    std::fs::write(info.join("commit-graph"), &stale).unwrap();
    check_against_git(&r, &inv, false, false);
    // One complete file.
    std::fs::remove_file(info.join("commit-graph")).unwrap();
    r.git(&["commit-graph", "write", "--reachable"]);
    check_against_git(&r, &inv, false, false);
    // A corrupt one: ignored, with a warning, and the answer is still git's.
    let mut corrupt = std::fs::read(info.join("commit-graph")).unwrap();
    corrupt.truncate(corrupt.len() / 2);
    std::fs::remove_file(info.join("commit-graph")).unwrap();
    std::fs::write(info.join("commit-graph"), &corrupt).unwrap();
    check_against_git(&r, &inv, true, false);
    // One whose parent positions point outside it: found during the walk, which starts over
    // without it.
    std::fs::remove_file(info.join("commit-graph")).unwrap();
    r.git(&["commit-graph", "write", "--reachable"]);
    let mut broken = std::fs::read(info.join("commit-graph")).unwrap();
    point_parents_outside(&mut broken);
    std::fs::remove_file(info.join("commit-graph")).unwrap();
    std::fs::write(info.join("commit-graph"), &broken).unwrap();
    check_against_git(&r, &inv, true, false);
    // Like git, core.commitGraph=false means the graph is not read at all (so no warning).
    r.git(&["config", "core.commitGraph", "false"]);
    check_against_git(&r, &inv, false, false);
    r.git(&["config", "--unset", "core.commitGraph"]);
    // None at all.
    std::fs::remove_file(info.join("commit-graph")).unwrap();
    std::fs::remove_dir_all(info.join("commit-graphs")).unwrap();
    check_against_git(&r, &inv, false, true);
    // Commits stored as deltas on each other (prodiff reads packs itself): the same answers.
    r.git(&["repack", "-q", "-adf", "--depth=50", "--window=250"]);
    let packed = r.git(&["count-objects", "-v"]);
    assert!(packed.contains("count: 0\n"), "nothing loose is left:\n{packed}");
    check_against_git(&r, &inv, false, true);
}

/// Where commits are dated before their parents, git's date-ordered walk can stop before it
/// has seen everything the hidden side reaches, and `git rev-list` then lists commits that
/// side has. With a commit-graph prodiff finishes the walk by generation, and lists exactly
/// the difference; in git's order, without git's extra commits.
#[test]
fn with_a_commit_graph_lists_are_exact_where_dates_lie_and_git_rev_list_is_not() {
    let r = TestRepo::new();
    let marks = r.scratch().join("marks");
    import(r.path(), ROOT, &marks);
    let mut tips = vec![("main".to_string(), 1)];
    import(r.path(), &stream(&mut Lcg(11), 2, 300, &mut tips, true), &marks);
    r.git(&["commit-graph", "write", "--reachable"]);
    let all = r.rev_list(&["--all"]);
    let rows: Vec<(String, String)> = (0..16)
        .map(|i| (format!("e{i}"), format!("example.com/app:sha-{}", &all[(i * 19 + 3) % all.len()][..12])))
        .collect();
    let rows: Vec<InventoryRow> = rows.iter().map(|(e, i)| (e.as_str(), "app", i.as_str(), &[][..])).collect();
    let inv = inventory(r.scratch(), "inv.json", &rows);
    let mut git_wrong = 0;
    for mainline in ["main", tips[1].0.as_str(), tips[tips.len() / 2].0.as_str()] {
        let args = ["status", "--format", "json", "--mainline", mainline, "--inventory", inv.to_str().unwrap()];
        let report = prodiff(r.path(), &args, None).json();
        for row in report["results"].as_array().unwrap() {
            let c = row["commit"].as_str().unwrap();
            for (side, (a, b)) in [("behind", (mainline, c)), ("ahead", (c, mainline))] {
                let exact = difference(&r, a, b);
                let git = rev_list(&r, &format!("{b}..{a}"));
                git_wrong += usize::from(sorted(&git) != exact);
                let in_git_order: Vec<String> = git.into_iter().filter(|s| exact.contains(s)).collect();
                assert_eq!(shas(&row[side]), in_git_order, "{b}..{a}");
            }
        }
    }
    assert!(git_wrong > 0, "this history makes git rev-list list commits the hidden side has");
}
