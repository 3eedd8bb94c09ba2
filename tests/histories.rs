//! What large real histories show that the small fixtures did not (issue 20), each on a
//! generated history and checked against git: cherry-pick pairing with a long range on one
//! side and a few commits on the other, mode-only changes under path filters, rollback
//! candidates ordered by history, shallow boundaries, a short id shared by a commit and a
//! blob, and ticket keys that are not tickets.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::*;

const REV: &str = "org.opencontainers.image.revision";

/// `git rev-list --cherry-mark --left-right --no-merges A...B`: the commits git marks `=`.
fn git_equivalents(r: &TestRepo, a: &str, b: &str) -> BTreeSet<String> {
    let marks = r.rev_list(&["--cherry-mark", "--left-right", "--no-merges", &format!("{a}...{b}")]);
    marks.iter().filter_map(|l| l.strip_prefix('=')).map(str::to_string).collect()
}

/// The commits of a JSON row marked equivalent, both sides.
fn our_equivalents(row: &Value) -> BTreeSet<String> {
    ["behind", "ahead"]
        .iter()
        .flat_map(|side| row[*side].as_array().unwrap().iter())
        .filter(|c| !c["equivalent"].is_null())
        .map(|c| c["sha"].as_str().unwrap().to_string())
        .collect()
}

/// A mainline of 60 commits, each adding a file; `hotfix` branches off commit 5 with two
/// cherry-picks of later mainline commits, a commit adding a file the mainline adds too (same
/// path, other content: the pre-hash matches, the patch-id must not) and a hotfix of its
/// own; `feature` runs 40 commits past the mainline, one of which the mainline cherry-picked.
fn long_and_short() -> TestRepo {
    let r = TestRepo::new();
    for n in 1..=60 {
        let file = format!("src/d{}/f{n}.txt", n % 4);
        r.commit("main", &format!("SHOP-{n} change {n}"), &[(&file, &format!("line {n}\n"))]);
    }
    r.branch("hotfix", "SHOP-5 change 5");
    r.cherry_pick("hotfix", "SHOP-30 change 30", "picked 30");
    r.cherry_pick("hotfix", "SHOP-51 change 51", "picked 51");
    r.commit("hotfix", "SHOP-99 same file, other change", &[("src/d1/f45.txt", "hotfix's own\n")]);
    r.commit("hotfix", "SHOP-98 hotfix", &[("hot.txt", "on\n")]);
    r.branch("feature", "main");
    for n in 1..=40 {
        r.commit("feature", &format!("FEAT-{n} feature {n}"), &[(&format!("feat/f{n}.txt"), &format!("{n}\n"))]);
    }
    r.cherry_pick("main", "FEAT-20 feature 20", "main picked FEAT-20");
    r.git(&["checkout", "-q", "main"]);
    r
}

#[test]
fn cherry_picks_pair_like_git_cherry_mark_whichever_side_is_small() {
    let r = long_and_short();
    let (hotfix, feature) = (r.rev("hotfix"), r.rev("feature"));
    let inv = inventory(
        r.scratch(),
        "inv-pairs.json",
        &[
            ("production", "api", "shop/api:hotfix", &[(REV, &hotfix)]),
            ("staging", "api", "shop/api:feature", &[(REV, &feature)]),
        ],
    );
    let cache = r.scratch().join("cache");
    let repo = r.path().to_str().unwrap();
    let run = || {
        let args = ["status", "--format", "json", "--repo", repo, "--inventory", inv.to_str().unwrap()];
        prodiff_env(r.path(), &args, None, &[("PRODIFF_CACHE_DIR", cache.to_str().unwrap())])
    };
    let first = run();
    let report = first.json();
    let prod = row(&report, "production", "api");
    assert_eq!(our_equivalents(prod), git_equivalents(&r, "main", &hotfix));
    assert_eq!(our_equivalents(prod).len(), 4, "two cherry-picks and their originals");
    let staging = row(&report, "staging", "api");
    assert_eq!(our_equivalents(staging), git_equivalents(&r, "main", &feature));
    assert_eq!(our_equivalents(staging).len(), 2, "FEAT-20 and the mainline's pick of it");

    // Only the small sides and the candidates were diffed in full: their patch-ids are cached,
    // the long sides' other commits are not.
    let cached: BTreeSet<String> = walk_files(&cache.join("patch-ids"));
    let picked_30 = r.rev("SHOP-30 change 30");
    let same_file = r.rev("SHOP-99 same file, other change");
    assert!(cached.contains(&picked_30) && cached.contains(&same_file), "{cached:?}");
    assert!(!cached.contains(&r.rev("SHOP-40 change 40")), "a commit on another path is not diffed in full");
    let behind = prod["behind"].as_array().unwrap().len();
    assert!(cached.len() < behind, "{} patch-ids for a range of {behind}", cached.len());

    // A second run reads them back and answers the same.
    let second = run();
    assert_eq!(second.stdout, first.stdout);
}

/// Every cached commit id under `patch-ids/ab/cdef…`.
fn walk_files(dir: &std::path::Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let sub = sub.unwrap();
        for f in std::fs::read_dir(sub.path()).unwrap() {
            let f = f.unwrap();
            out.insert(format!("{}{}", sub.file_name().to_string_lossy(), f.file_name().to_string_lossy()));
        }
    }
    out
}

#[test]
fn mode_only_changes_are_seen_by_path_filters_like_git() {
    let r = TestRepo::new();
    r.commit("main", "initial", &[("api/run.sh", "#!/bin/sh\n"), ("api/app.txt", "1"), ("web/tool.sh", "x")]);
    r.git(&["tag", "v1", "main"]);
    r.git(&["update-index", "--chmod=+x", "api/run.sh"]);
    r.commit("main", "SHOP-1 make run.sh executable", &[]);
    r.commit("main", "SHOP-2 change the app", &[("api/app.txt", "2")]);
    r.git(&["update-index", "--chmod=+x", "web/tool.sh"]);
    r.commit("main", "SHOP-3 make tool.sh executable", &[]);
    r.git(&["update-index", "--chmod=-x", "api/run.sh"]);
    r.commit("main", "SHOP-4 run.sh back to 100644", &[]);
    let v1 = r.rev("v1");
    let paths =
        [("file", "api/run.sh"), ("dir", "api"), ("web", "web/"), ("glob", "api/*.sh"), ("other", "api/app.txt")];
    let mut toml = String::from("mainline = \"main\"\n");
    let mut rows = Vec::new();
    for (service, path) in paths {
        toml.push_str(&format!("[services.{service}]\nimage = \"shop/{service}\"\npaths = [\"{path}\"]\n"));
        rows.push(serde_json::json!({"environment": "production", "image": format!("shop/{service}:x"),
            "labels": {REV: v1}}));
    }
    let cfg = r.scratch().join("modes.toml");
    std::fs::write(&cfg, toml).unwrap();
    let inv = r.scratch().join("inv-modes.json");
    std::fs::write(&inv, serde_json::json!({ "workloads": rows }).to_string()).unwrap();
    let args = ["status", "--format", "json", "--repo", r.path().to_str().unwrap(), "--config", cfg.to_str().unwrap()];
    // From the objects, then from a commit-graph (its trees are read from the graph).
    for graph in [false, true] {
        if graph {
            r.git(&["commit-graph", "write", "--reachable"]);
        }
        let report = prodiff(r.path(), &[&args[..], &["--inventory", inv.to_str().unwrap()]].concat(), None).json();
        for (service, path) in paths {
            let want = r.rev_list(&["--full-history", "--no-merges", "v1..main", "--", path]);
            assert_eq!(
                shas(&row(&report, "production", service)["behind"]),
                want,
                "{service}: {path} (graph: {graph})"
            );
        }
    }
    let file = r.rev_list(&["--full-history", "--no-merges", "v1..main", "--", "api/run.sh"]);
    assert_eq!(file.len(), 2, "git lists both mode changes of run.sh");
}

/// A blob whose id starts with the same seven hex digits (5b4ceea) as the commit
/// `short_prefix_history` makes: found by hashing `collision-N` blobs against commits
/// `SHOP-1 initial K` (pinned identity and date) until two shared a prefix.
const COLLIDING_BLOB: &str = "collision-132965\n";

fn short_prefix_history() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "SHOP-1 initial 150", &[("app.txt", "1\n")]);
    r
}

#[test]
fn a_short_sha_shared_by_a_commit_and_a_blob_names_the_commit() {
    let r = short_prefix_history();
    let commit = r.rev("SHOP-1 initial 150");
    let file = r.scratch().join("colliding.txt");
    std::fs::write(&file, COLLIDING_BLOB).unwrap();
    let blob = r.git(&["hash-object", "-w", file.to_str().unwrap()]).trim().to_string();
    assert_eq!(blob[..7], commit[..7], "the fixture blob shares the commit's short id ({commit})");
    let short = &commit[..7];
    // git agrees: the plain prefix is ambiguous, PREFIX^{commit} is the commit.
    let plain =
        std::process::Command::new("git").args(["rev-parse", "--verify", "-q", short]).current_dir(r.path()).output();
    assert!(!plain.unwrap().status.success());
    assert_eq!(r.git(&["rev-parse", &format!("{short}^{{commit}}")]).trim(), commit);
    let inv =
        inventory(r.scratch(), "inv-prefix.json", &[("production", "api", &format!("shop/api:sha-{short}"), &[])]);
    let args =
        ["status", "--format", "json", "--repo", r.path().to_str().unwrap(), "--inventory", inv.to_str().unwrap()];
    let report = prodiff(r.path(), &args, None).json();
    let prod = row(&report, "production", "api");
    assert_eq!(prod["commit"], commit.as_str(), "{prod:#}");
    assert!(codes(prod).is_empty(), "{prod:#}");
}

#[test]
fn an_abbreviated_id_that_is_missing_is_not_offered_to_git_fetch() {
    let r = short_prefix_history();
    let inv = inventory(r.scratch(), "inv-missing.json", &[("production", "api", "shop/api:sha-abcdef1", &[])]);
    let args =
        ["status", "--format", "json", "--repo", r.path().to_str().unwrap(), "--inventory", inv.to_str().unwrap()];
    let report = prodiff(r.path(), &args, None).json();
    let f = &row(&report, "production", "api")["findings"][0];
    assert_eq!(f["code"], "commit-not-found", "{f:#}");
    let hint = f["hint"].as_str().unwrap();
    assert!(!hint.contains("abcdef1"), "git fetch cannot ask a server for an abbreviated id: {hint}");
}

#[test]
fn ranges_hex_ids_and_dates_in_messages_are_not_tickets() {
    let r = TestRepo::new();
    r.commit("main", "SHOP-1 initial", &[("app.txt", "1")]);
    r.tag("v1.0.0", "main", false);
    r.commit("main", "SHOP-2 accept [A-Z0-9] in names\n\nThe pattern Z0-9 was too strict.", &[("a.txt", "2")]);
    r.commit("main", "Pin request 2C5F9A9-4151-4D8E-9C3A-1B2C3D4E5F60\n\nSee F9A9-4151.", &[("b.txt", "3")]);
    r.commit("main", "Bump openssl for CVE-2023-1234", &[("c.txt", "4")]);
    r.commit("main", "PAY-7 fix CVE-2023-1234 in the parser", &[("d.txt", "5")]);
    let inv = inventory(r.scratch(), "inv-tickets.json", &[("production", "api", "shop/api:1.0.0", &[])]);
    let repo = r.path().to_str().unwrap();
    let inv = inv.to_str().unwrap();
    let report =
        prodiff(r.path(), &["diff", "production", "--format", "json", "--repo", repo, "--inventory", inv], None);
    let report = report.json();
    let behind = row(&report, "production", "api")["behind"].as_array().unwrap().clone();
    let tickets: Vec<Value> = behind.iter().map(|c| c["tickets"].clone()).collect();
    assert_eq!(
        tickets,
        [serde_json::json!(["PAY-7"]), serde_json::json!([]), serde_json::json!([]), serde_json::json!(["SHOP-2"])]
    );

    // A CVE id is not a ticket key: say so, and how many messages hold it, as git counts them.
    let run = prodiff(r.path(), &["contains", "CVE-2023-1234", "--repo", repo, "--inventory", inv], None);
    run.expect_code(2);
    let git_count = r.rev_list(&["--fixed-strings", "--grep", "CVE-2023-1234", "main"]).len();
    assert_eq!(git_count, 2);
    assert!(run.stderr.contains("not a ticket key under the configured patterns"), "{}", run.context);
    assert!(run.stderr.contains(&format!("{git_count} commit messages contain it as text")), "{}", run.context);
    // A well-formed key nobody mentions is still said to be mentioned by no commit.
    let run = prodiff(r.path(), &["contains", "SHOP-77", "--repo", repo, "--inventory", inv], None);
    run.expect_code(2);
    assert!(run.stderr.contains("mentions it"), "{}", run.context);
}

/// The BEHIND and AHEAD cells of `status` for a row, and the counts `diff` heads it with.
fn status_cells(stdout: &str, env: &str) -> (String, String) {
    let line = stdout.lines().find(|l| l.starts_with(env)).unwrap_or_else(|| panic!("no {env} row in\n{stdout}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // ENVIRONMENT SERVICE IMAGE N COMMIT VIA BEHIND AHEAD FINDINGS
    (cells[6].to_string(), cells[7].to_string())
}

#[test]
fn diff_heads_each_side_with_the_numbers_status_shows() {
    let r = long_and_short();
    let hotfix = r.rev("hotfix");
    let inv = inventory(r.scratch(), "inv-views.json", &[("production", "api", "shop/api:hotfix", &[(REV, &hotfix)])]);
    let (repo, inv) = (r.path().to_str().unwrap(), inv.to_str().unwrap());
    let status = prodiff(r.path(), &["status", "--repo", repo, "--inventory", inv, "--color", "never"], None);
    let (behind, ahead) = status_cells(&status.stdout, "production");
    let diff = prodiff(r.path(), &["diff", "production", "--repo", repo, "--inventory", inv], None);
    // git's view: main...hotfix, less what --cherry-mark pairs.
    let left = r.rev_list(&["--cherry-mark", "--left-right", "--no-merges", &format!("main...{hotfix}")]);
    let only = |side: char| left.iter().filter(|l| l.starts_with(side)).count();
    assert_eq!((behind.clone(), ahead.clone()), (only('<').to_string(), only('>').to_string()), "{}", status.stdout);
    let head_behind = format!("Not running yet: {behind} commits in main, not in production (not counted: 2 already running as cherry-picks, =)");
    let head_ahead =
        format!("Running but not in main: {ahead} commits (not counted: 2 cherry-picks of main commits, =)");
    assert!(diff.stdout.contains(&head_behind), "{}", diff.stdout);
    assert!(diff.stdout.contains(&head_ahead), "{}", diff.stdout);
    assert!(diff.stdout.contains("= the same change (git patch-id) is on the other side"), "{}", diff.stdout);
}

/// A shallow clone (`--depth 4`) of a mainline of ten commits with a release branch off the
/// second: the clone has main's last four commits, and through the release branch the first
/// two, so commit 2 is here but hidden behind main's boundary.
fn shallow_clone() -> (TestRepo, tempfile::TempDir, std::path::PathBuf) {
    let r = TestRepo::new();
    for n in 1..=10 {
        r.commit("main", &format!("SHOP-{n} change {n}"), &[(&format!("f{n}.txt"), "x\n")]);
    }
    r.branch("release/1", "SHOP-2 change 2");
    r.commit("release/1", "SHOP-90 release fix", &[("r.txt", "r\n")]);
    r.tag("v1.1.0", "SHOP-8 change 8", true);
    r.git(&["checkout", "-q", "main"]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    git_in(dir.path(), &["clone", "-q", "--depth", "4", "--no-single-branch", &url, "c"], 0);
    let clone = dir.path().join("c");
    (r, dir, clone)
}

#[test]
fn plan_and_rollback_in_a_shallow_clone_say_so_like_status() {
    let (r, dir, clone) = shallow_clone();
    let c8 = r.rev("SHOP-8 change 8");
    let inv = inventory(dir.path(), "inv.json", &[("production", "api", "shop/api:1.1.0", &[(REV, &c8)])]);
    let inv = inv.to_str().unwrap();
    for args in
        [vec!["plan", "production", "--to", "origin/main", "--offline"], vec!["rollback", "production", "--offline"]]
    {
        let run = prodiff(&clone, &[&args[..], &["--format", "json", "--inventory", inv]].concat(), None);
        run.expect_code(3);
        let report = run.json();
        let f = &report["services"][0]["findings"];
        assert_eq!(f.as_array().unwrap().len(), 1, "{}", run.context);
        assert_eq!(f[0]["code"], "shallow-clone", "{}", run.context);
        assert!(f[0]["hint"].as_str().unwrap().contains("git fetch --unshallow"), "{}", run.context);
        assert!(!run.stderr.contains("object not found"), "{}", run.context);
    }
}

#[test]
fn contains_in_a_shallow_clone_is_exact_where_the_known_history_suffices() {
    let (r, dir, clone) = shallow_clone();
    let c8 = r.rev("SHOP-8 change 8");
    let inv = inventory(dir.path(), "inv.json", &[("production", "api", "shop/api:1.1.0", &[(REV, &c8)])]);
    let ask = |sha: &str| {
        let run = prodiff(&clone, &["contains", sha, "--format", "json", "--inventory", inv.to_str().unwrap()], None);
        let state = run.json()["queries"][0]["answers"][0]["state"].as_str().unwrap().to_string();
        (run.code, state)
    };
    // What git says in the full repository.
    let is_ancestor = |sha: &str| {
        let mut git = std::process::Command::new("git");
        git.args(["merge-base", "--is-ancestor", sha, &c8]).current_dir(r.path());
        git.output().unwrap().status.success()
    };
    let (c10, c8s, c2) = (r.rev("SHOP-10 change 10"), c8.clone(), r.rev("SHOP-2 change 2"));
    // Newer than what runs: provably not deployed, as in the full history.
    assert!(!is_ancestor(&c10));
    assert_eq!(ask(&c10), (1, "not-deployed".to_string()));
    assert!(is_ancestor(&c8s));
    assert_eq!(ask(&c8s), (0, "deployed".to_string()));
    // Here, but behind main's boundary: the clone cannot tell (git says it is deployed).
    assert!(is_ancestor(&c2));
    assert_eq!(ask(&c2), (3, "unknown".to_string()));
}

/// main: v2.39.0, v2.40.0, the change SHOP-3, v2.41.0-rc.1, SHOP-4, v2.41.0; a hotfix
/// branch off v2.40.0 with SHOP-9, tagged v2.40.0-hotfix.1 (which semver sorts below 2.40.0).
fn hotfix_tags() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "SHOP-1 initial", &[("app.txt", "1\n")]);
    r.tag("v2.39.0", "main", true);
    r.commit("main", "SHOP-2 cart", &[("cart.txt", "cart\n")]);
    r.tag("v2.40.0", "main", true);
    r.commit("main", "SHOP-3 new totals", &[("totals.txt", "t\n")]);
    r.tag("v2.41.0-rc.1", "main", true);
    r.commit("main", "SHOP-4 receipts", &[("receipts.txt", "r\n")]);
    r.tag("v2.41.0", "main", true);
    r.branch("hotfix/2.40", "v2.40.0");
    r.commit("hotfix/2.40", "SHOP-9 hotfix", &[("hot.txt", "h\n")]);
    r.tag("v2.40.0-hotfix.1", "hotfix/2.40", true);
    r.git(&["checkout", "-q", "main"]);
    r
}

/// `rollback ENV` as JSON for a service running image tag `tag`.
fn rollback_json(r: &TestRepo, tag: &str, extra: &[&str]) -> Value {
    let image = format!("registry.example.com/shop/api:{tag}");
    let inv = inventory(r.scratch(), &format!("inv-{tag}.json"), &[("production", "api", &image, &[])]);
    let mut args =
        vec!["rollback", "production", "--format", "json", "--offline", "--repo", r.path().to_str().unwrap()];
    args.extend_from_slice(&["--inventory", inv.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let run = prodiff(r.path(), &args, None);
    let report = run.json();
    report["services"][0].clone()
}

fn candidates(service: &Value) -> Vec<String> {
    service["candidates"].as_array().unwrap().iter().map(|c| c["git_tag"].as_str().unwrap().to_string()).collect()
}

fn is_ancestor(r: &TestRepo, a: &str, b: &str) -> bool {
    let mut git = std::process::Command::new("git");
    git.args(["merge-base", "--is-ancestor", a, b]).current_dir(r.path());
    git.output().unwrap().status.success()
}

#[test]
fn rollback_candidates_follow_history_not_semver() {
    let r = hotfix_tags();
    // Running the hotfix: its base v2.40.0 is the newest earlier release (semver puts it
    // above 2.40.0-hotfix.1), and it is free of the excluded hotfix.
    let api = rollback_json(&r, "2.40.0-hotfix.1", &["--exclude", "SHOP-9"]);
    assert_eq!(candidates(&api), ["v2.40.0", "v2.39.0"], "{api:#}");
    for tag in ["v2.40.0", "v2.39.0"] {
        assert!(is_ancestor(&r, tag, "v2.40.0-hotfix.1"), "{tag}");
    }
    assert!(!is_ancestor(&r, "v2.41.0", "v2.40.0-hotfix.1"));
    assert_eq!(api["candidates"][0]["recommended"], true);
    assert_eq!(shas(&api["candidates"][0]["reverts"]), r.rev_list(&["--no-merges", "v2.40.0..v2.40.0-hotfix.1"]));
    assert_eq!(api["candidates"][0]["adds"], serde_json::json!([]));

    // Running 2.40.0: the hotfix descends from it, so it is not an earlier release.
    let api = rollback_json(&r, "2.40.0", &[]);
    assert!(is_ancestor(&r, "v2.40.0", "v2.40.0-hotfix.1"));
    assert_eq!(candidates(&api), ["v2.39.0"], "{api:#}");

    // Running 2.41.0: no release candidate unless asked; the hotfix release branch is
    // earlier but adds a commit that does not run, and says which (as git lists it).
    let api = rollback_json(&r, "2.41.0", &[]);
    assert_eq!(candidates(&api), ["v2.40.0-hotfix.1", "v2.40.0", "v2.39.0"], "{api:#}");
    assert_eq!(shas(&api["candidates"][0]["adds"]), r.rev_list(&["v2.41.0..v2.40.0-hotfix.1"]));
    assert_eq!(api["candidates"][1]["adds"], serde_json::json!([]));
    let api = rollback_json(&r, "2.41.0", &["--pre-releases"]);
    assert_eq!(candidates(&api)[0], "v2.41.0-rc.1", "{api:#}");
}

#[test]
fn plan_to_an_older_release_is_a_rollback_counted_like_rollback() {
    let r = hotfix_tags();
    let inv =
        inventory(r.scratch(), "inv-plan.json", &[("production", "api", "registry.example.com/shop/api:2.41.0", &[])]);
    let plan = |to: &str| {
        let args =
            ["plan", "production", "--to", to, "--format", "json", "--offline", "--repo", r.path().to_str().unwrap()];
        let run = prodiff(r.path(), &[&args[..], &["--inventory", inv.to_str().unwrap()]].concat(), None);
        (run.code, run.json()["services"][0].clone())
    };
    let (code, api) = plan("2.40.0");
    assert_eq!(code, 0, "{api:#}");
    assert_eq!(api["rollback"], true);
    let reverted = r.rev_list(&["--no-merges", "v2.40.0..v2.41.0"]);
    assert_eq!(api["findings"][0]["code"], "rollback", "{api:#}");
    assert!(api["findings"][0]["message"].as_str().unwrap().contains(&format!("reverts {} commit(s)", reverted.len())));
    // What rollback says of the same target: the same commits reverted.
    let rb = rollback_json(&r, "2.41.0", &[]);
    let same = rb["candidates"].as_array().unwrap().iter().find(|c| c["git_tag"] == "v2.40.0").unwrap();
    assert_eq!(shas(&same["reverts"]), reverted);
    // The hotfix release adds a commit that does not run: not a rollback, and it drops two.
    let (code, api) = plan("2.40.0-hotfix.1");
    assert_eq!(code, 1);
    assert_eq!(api["rollback"], false);
    assert_eq!(api["findings"][0]["code"], "drops-commits", "{api:#}");
}
