//! Commit lists must equal git's on every fixture history: linear, merges, release branches
//! with cherry-picks, annotated/lightweight/moved tags, path filters, shallow clones.

use crate::util::*;
use serde_json::Value;

const REV: &str = "org.opencontainers.image.revision";

/// main with a merged feature, a release branch off v1.0.0 carrying a cherry-pick of a
/// mainline fix and a hotfix that main never got.
fn release_history() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "initial", &[("api/app.txt", "1"), ("web/app.txt", "1")]);
    r.commit("main", "SHOP-1 add cart", &[("api/cart.txt", "cart")]);
    r.tag("v1.0.0", "main", true);
    r.commit("main", "SHOP-2 search", &[("web/search.txt", "search")]);
    r.branch("feature/pay", "main");
    r.commit("feature/pay", "SHOP-3 payments", &[("api/pay.txt", "pay")]);
    r.merge("main", "feature/pay", "Merge branch 'feature/pay'");
    r.commit("main", "SHOP-4 fix rounding", &[("api/round.txt", "round half even")]);
    r.branch("release/1.0", "v1.0.0");
    r.cherry_pick("release/1.0", "SHOP-4 fix rounding", "picked rounding");
    r.commit("release/1.0", "SHOP-9 hotfix: disable promo", &[("api/promo.txt", "off")]);
    r.tag("v1.0.1", "release/1.0", false);
    r.commit("main", "SHOP-5 new ui (#42)", &[("web/ui.txt", "ui")]);
    r.tag("v1.1.0", "main", true);
    r.git(&["checkout", "-q", "main"]);
    r
}

fn status(r: &TestRepo, inv: &std::path::Path, extra: &[&str]) -> Run {
    let mut args =
        vec!["status", "--format", "json", "--repo", r.path().to_str().unwrap(), "--inventory", inv.to_str().unwrap()];
    args.extend_from_slice(extra);
    prodiff(r.path(), &args, None)
}

#[test]
fn behind_and_ahead_equal_git_rev_list_on_a_release_branch() {
    let r = release_history();
    let c5 = r.rev("SHOP-5 new ui (#42)");
    let inv = inventory(
        r.scratch(),
        "inv-release.json",
        &[
            ("production", "api", "registry.example.com/shop/api:1.0.1", &[]),
            ("staging", "api", "registry.example.com/shop/api:1.1.0", &[(REV, &c5)]),
        ],
    );
    let run = status(&r, &inv, &[]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["mainline"]["name"], "main");

    let prod = row(&report, "production", "api");
    let h2 = r.rev("v1.0.1");
    assert_eq!(prod["commit"], h2.as_str());
    assert_eq!(prod["evidence"][0]["kind"], "git-tag");
    assert_eq!(prod["evidence"][0]["name"], "v1.0.1");
    assert_eq!(shas(&prod["behind"]), r.rev_list(&[&format!("{h2}..main")]));
    assert_eq!(shas(&prod["ahead"]), r.rev_list(&[&format!("main..{h2}")]));
    assert_eq!(prod["merge_base"], r.rev("v1.0.0").as_str());

    // Equivalence marks equal git's --cherry-mark on both sides.
    let marks = r.rev_list(&["--cherry-mark", "--left-right", "--no-merges", &format!("main...{h2}")]);
    let git_equal: Vec<String> = marks.iter().filter_map(|l| l.strip_prefix('=')).map(str::to_string).collect();
    let mut ours: Vec<String> = ["behind", "ahead"]
        .iter()
        .flat_map(|side| prod[*side].as_array().unwrap().iter())
        .filter(|c| !c["equivalent"].is_null())
        .map(|c| c["sha"].as_str().unwrap().to_string())
        .collect();
    let mut git_equal = git_equal;
    ours.sort();
    git_equal.sort();
    assert_eq!(ours, git_equal);
    assert_eq!(ours.len(), 2, "the cherry-pick and its original");

    let ahead: Vec<&Value> = prod["ahead"].as_array().unwrap().iter().collect();
    let hotfix = ahead.iter().find(|c| c["sha"] == h2.as_str()).unwrap();
    assert_eq!(hotfix["tickets"], serde_json::json!(["SHOP-9"]));
    assert_eq!(hotfix["subject"], "SHOP-9 hotfix: disable promo");
    assert_eq!(hotfix["author"], "Ada Lovelace");
    assert!(hotfix["equivalent"].is_null());
    assert_eq!(codes(prod), ["hotfix-drift", "behind-mainline"]);

    let staging = row(&report, "staging", "api");
    assert_eq!(staging["commit"], c5.as_str());
    assert_eq!(staging["behind"], serde_json::json!([]));
    assert_eq!(staging["ahead"], serde_json::json!([]));
    assert!(codes(staging).is_empty(), "{staging:#}");
    let merge =
        row(&report, "production", "api")["behind"].as_array().unwrap().iter().find(|c| c["merge"] == true).cloned();
    assert!(merge.is_some(), "the merge commit is listed like git rev-list lists it");
}

#[test]
fn diff_lists_the_exact_commits_both_ways_and_against_another_environment() {
    let r = release_history();
    let inv = inventory(
        r.scratch(),
        "inv-diff.json",
        &[("production", "api", "shop/api:1.0.1", &[]), ("staging", "api", "shop/api:1.1.0", &[])],
    );
    let repo = r.path().to_str().unwrap();
    let run = prodiff(r.path(), &["diff", "production", "--repo", repo, "--inventory", inv.to_str().unwrap()], None);
    run.expect_code(1);
    let h2 = r.rev("v1.0.1");
    for sha in r.rev_list(&[&format!("{h2}..main")]).iter().chain(r.rev_list(&[&format!("main..{h2}")]).iter()) {
        assert!(run.stdout.contains(&sha[..10]), "{} missing from\n{}", &sha[..10], run.stdout);
    }
    // The numbers status counts: the cherry-picked fix and its pick are listed, not counted.
    let counted =
        "Not running yet: 4 commits in main, not in production (not counted: 1 already running as a cherry-pick, =)";
    assert!(run.stdout.contains(counted), "{}", run.stdout);
    let counted = "Running but not in main: 1 commit (not counted: 1 cherry-pick of a main commit, =)";
    assert!(run.stdout.contains(counted), "{}", run.stdout);
    assert!(run.stdout.contains("(same change as"), "{}", run.stdout);

    let diff_against = |against: &str| {
        let args = [
            "diff",
            "production",
            "--against",
            against,
            "--format",
            "json",
            "--repo",
            repo,
            "--inventory",
            inv.to_str().unwrap(),
        ];
        prodiff(r.path(), &args, None).json()
    };

    // Against the staging environment: staging runs v1.1.0.
    let report = diff_against("staging");
    let prod = row(&report, "production", "api");
    let v110 = r.rev("v1.1.0");
    assert_eq!(prod["target"], "env:staging");
    assert_eq!(shas(&prod["behind"]), r.rev_list(&[&format!("{h2}..{v110}")]));
    assert_eq!(shas(&prod["ahead"]), r.rev_list(&[&format!("{v110}..{h2}")]));

    // Against a git ref.
    let report = diff_against("v1.0.0");
    let prod = row(&report, "production", "api");
    assert_eq!(shas(&prod["behind"]), Vec::<String>::new());
    assert_eq!(shas(&prod["ahead"]), r.rev_list(&[&format!("v1.0.0..{h2}")]));
}

#[test]
fn path_filters_equal_git_rev_list_with_a_pathspec() {
    let r = release_history();
    let cfg = r.scratch().join("paths.toml");
    // Directories with and without a slash, a file, wildcards (matched against each
    // commit's changed files), and a path no commit touches.
    let paths = [
        ("web", "web"),
        ("api", "api/"),
        ("search", "web/search.txt"),
        ("pay", "api/p*.txt"),
        ("txt", "*.txt"),
        ("none", "nope/"),
    ];
    let mut toml = String::new();
    let mut workloads = Vec::new();
    for (service, path) in paths {
        toml.push_str(&format!("[services.{service}]\nimage = \"shop/{service}\"\npaths = [\"{path}\"]\n"));
        // No service names: they come from the config's image mapping.
        workloads.push(serde_json::json!({"environment": "production", "image": format!("shop/{service}:1.0.0")}));
    }
    std::fs::write(&cfg, toml).unwrap();
    let inv = r.scratch().join("inv-paths.json");
    std::fs::write(&inv, serde_json::json!({ "workloads": workloads }).to_string()).unwrap();
    let run = status(&r, &inv, &["--config", cfg.to_str().unwrap()]);
    let report = run.json();
    for (service, path) in paths {
        let got = shas(&row(&report, "production", service)["behind"]);
        let want = r.rev_list(&["--full-history", "--no-merges", "v1.0.0..main", "--", path]);
        assert_eq!(got, want, "{service}: {path}");
        assert_eq!(want.is_empty(), service == "none", "{service}: {path}");
        // The merge base does not depend on the filter.
        let base = r.git(&["merge-base", "v1.0.0", "main"]);
        assert_eq!(row(&report, "production", service)["merge_base"], base.trim(), "{service}");
    }
}

#[test]
fn annotated_tags_are_peeled_and_a_moved_tag_conflicts_with_the_label() {
    let r = release_history();
    let c5 = r.rev("SHOP-5 new ui (#42)");
    // v1.1.0 is force-moved back to an older commit after the image was built from c5.
    r.move_tag("v1.1.0", "SHOP-2 search");
    let inv = inventory(
        r.scratch(),
        "inv-moved.json",
        &[("production", "api", "shop/api:1.1.0", &[(REV, &c5)]), ("staging", "api", "shop/api:1.0.0", &[])],
    );
    let run = status(&r, &inv, &[]);
    run.expect_code(1);
    let report = run.json();
    let prod = row(&report, "production", "api");
    assert_eq!(prod["commit"], c5.as_str(), "the image's own label is reported");
    assert_eq!(codes(prod), ["evidence-conflict"]);
    let msg = prod["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains(&c5[..10]) && msg.contains(&r.rev("SHOP-2 search")[..10]), "{msg}");
    // An annotated tag resolves to the commit, not the tag object.
    assert_eq!(row(&report, "staging", "api")["commit"], r.rev("SHOP-1 add cart").as_str());
}

#[test]
fn a_shallow_clone_gives_no_counts_and_says_what_to_fetch() {
    let r = release_history();
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    git_in(clone.path(), &["clone", "-q", "--depth", "2", "--no-single-branch", &url, "c"], 0);
    let repo = clone.path().join("c");
    let c5 = r.rev("SHOP-5 new ui (#42)");
    let inv = inventory(clone.path(), "inv.json", &[("production", "api", "shop/api", &[(REV, &c5)])]);
    let run = prodiff(&repo, &["status", "--format", "json", "--inventory", inv.to_str().unwrap()], None);
    run.expect_code(3);
    let report = run.json();
    assert_eq!(report["shallow"], true);
    assert_eq!(report["complete"], false);
    assert_eq!(report["findings"][0]["code"], "shallow-clone");
    assert!(report["findings"][0]["hint"].as_str().unwrap().contains("git fetch --unshallow --tags"));
    let prod = row(&report, "production", "api");
    assert_eq!(prod["commit"], c5.as_str());
    assert!(prod["behind"].is_null() && prod["ahead"].is_null(), "{prod:#}");

    let table = prodiff(&repo, &["status", "--inventory", inv.to_str().unwrap()], None);
    table.expect_code(3);
    assert!(table.stdout.contains("(shallow clone)"), "{}", table.stdout);
}

#[test]
fn commits_and_tags_missing_locally_are_findings_with_a_fetch_hint() {
    let r = release_history();
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let inv = inventory(
        r.scratch(),
        "inv-missing.json",
        &[("production", "api", "shop/api:9.9.9", &[]), ("production", "web", "shop/web:latest", &[(REV, unknown)])],
    );
    let run = status(&r, &inv, &[]);
    run.expect_code(1);
    let report = run.json();
    let api = row(&report, "production", "api");
    assert!(api["commit"].is_null());
    assert_eq!(codes(api), ["git-tag-missing", "unresolved"]);
    assert!(api["findings"][0]["hint"].as_str().unwrap().contains("git fetch --tags"));
    let web = row(&report, "production", "web");
    assert_eq!(codes(web), ["commit-not-found", "unresolved"]);
    assert!(web["findings"][0]["hint"].as_str().unwrap().contains(&format!("git fetch origin {unknown}")));
    assert!(web["behind"].is_null());
}

#[test]
fn replicas_on_different_images_are_grouped_and_flagged() {
    let r = release_history();
    let id_a = format!("sha256:{}", "a".repeat(64));
    let id_b = format!("sha256:{}", "b".repeat(64));
    let inv = r.scratch().join("inv-replicas.json");
    let json = serde_json::json!({"workloads": [
        {"environment": "production", "image": "shop/api:1.0.1", "image_id": id_a, "instance": "host-1/api-1"},
        {"environment": "production", "image": "shop/api:1.0.1", "image_id": id_a, "instance": "host-2/api-1"},
        {"environment": "production", "image": "shop/api:1.1.0", "image_id": id_b, "instance": "host-3/api-1"},
    ]});
    std::fs::write(&inv, json.to_string()).unwrap();
    // Docker Hub images with digests: tests never leave loopback.
    let report = status(&r, &inv, &["--offline"]).json();
    let rows: Vec<&Value> = report["results"].as_array().unwrap().iter().collect();
    assert_eq!(rows.len(), 2, "one row per distinct image");
    let old = rows.iter().find(|r| r["image"] == "shop/api:1.0.1").unwrap();
    assert_eq!(old["instances"].as_array().unwrap().len(), 2);
    assert_eq!(old["digests"], serde_json::json!([id_a]));
    for row in &rows {
        assert!(codes(row).contains(&"mixed-versions".to_string()), "{row:#}");
    }
}
