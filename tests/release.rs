//! The release workflows on fixture histories: a bug in the UK release that the lagging US
//! release lacks, a fix cherry-picked onto a release branch, rollback excluding a ticket,
//! a migration a rollback would revert, `contains` through a cherry-pick, and seasoning.
//! Expected outputs are exact (fixtures/release/*.expected).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::demo::expect_fixture;
use crate::util::*;

/// main: v1.0.0, v1.1.0 (adds a migration), v1.2.0 (brings the totals bug), v1.3.0, then a
/// rounding fix that release/1.1 cherry-picks into v1.1.1.
fn regions() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "initial", &[("api/main.txt", "1")]);
    r.commit("main", "SHOP-1 cart", &[("api/cart.txt", "cart")]);
    r.tag("v1.0.0", "main", true);
    r.commit("main", "SHOP-2 orders table", &[("api/migrations/001_orders.sql", "CREATE TABLE orders (id int);\n")]);
    r.tag("v1.1.0", "main", true);
    r.commit("main", "SHOP-3 new totals (the bug)", &[("api/totals.txt", "sum * 1.1")]);
    r.tag("v1.2.0", "main", true);
    r.commit("main", "SHOP-4 receipts", &[("api/receipts.txt", "r")]);
    r.tag("v1.3.0", "main", true);
    r.commit("main", "SHOP-5 fix rounding", &[("api/round.txt", "half even")]);
    r.branch("release/1.1", "v1.1.0");
    r.cherry_pick("release/1.1", "SHOP-5 fix rounding", "picked SHOP-5");
    r.tag("v1.1.1", "release/1.1", false);
    r.git(&["checkout", "-q", "main"]);
    r
}

struct Fleet {
    repo: TestRepo,
    inv: PathBuf,
}

impl Fleet {
    /// (environment, image tag, started_at) rows for service `api`.
    fn new(rows: &[(&str, &str, &str)]) -> Fleet {
        let repo = regions();
        let workloads: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, (env, tag, started))| {
                serde_json::json!({"environment": env, "service": "api", "image": format!("registry.example.com/shop/api:{tag}"),
                    "instance": format!("{env}-{i}"), "started_at": started})
            })
            .collect();
        let inv = repo.scratch().join("fleet.json");
        std::fs::write(&inv, serde_json::json!({ "workloads": workloads }).to_string()).unwrap();
        Fleet { repo, inv }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None)
    }

    fn run_with(&self, args: &[&str], config: Option<&str>) -> Run {
        let mut all = args.to_vec();
        all.extend(["--inventory", self.inv.to_str().unwrap()]);
        let cfg = self.repo.scratch().join("prodiff.toml");
        if let Some(text) = config {
            std::fs::write(&cfg, text).unwrap();
            all.extend(["--config", cfg.to_str().unwrap()]);
        }
        // registry.example.com does not exist: these fleets are about git.
        all.push("--offline");
        prodiff_env(self.repo.path(), &all, None, &[("PRODIFF_NOW", "2026-11-22T12:00:00Z")])
    }

    fn sha(&self, what: &str) -> String {
        self.repo.rev(what)
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/release").join(name)
}

fn uk_us() -> Fleet {
    Fleet::new(&[("uk", "1.2.0", "2026-11-10T09:00:00Z"), ("us", "1.1.1", "2026-11-15T09:00:00Z")])
}

#[test]
fn a_bug_in_the_uk_release_that_the_lagging_us_release_lacks() {
    let f = uk_us();
    let run = f.run(&["contains", "SHOP-3"]);
    run.expect_code(4);
    expect_fixture(&fixture("contains-bug.expected"), &run.stdout);
    f.run(&["contains", "SHOP-3", "--env", "us"]).expect_code(1);
    f.run(&["is-deployed", "SHOP-3", "--env", "uk"]).expect_code(0);

    // The exact commits between the regions equal git's.
    let report = f.run(&["diff", "us", "--against", "uk", "--format", "json"]).json();
    let us = row(&report, "us", "api");
    assert_eq!(shas(&us["behind"]), f.repo.rev_list(&["v1.1.1..v1.2.0"]));
    assert_eq!(shas(&us["ahead"]), f.repo.rev_list(&["v1.2.0..v1.1.1"]));
    assert!(shas(&us["behind"]).contains(&f.sha("SHOP-3 new totals (the bug)")));
}

#[test]
fn contains_is_answered_through_a_cherry_pick() {
    let f = uk_us();
    let run = f.run(&["contains", "SHOP-5", "--format", "json"]);
    run.expect_code(4);
    let q = &run.json()["queries"][0];
    // The ticket stands for the mainline fix and its cherry-pick.
    let mut commits: Vec<&str> = q["commits"].as_array().unwrap().iter().map(|c| c["sha"].as_str().unwrap()).collect();
    commits.sort();
    let mut want = [f.sha("SHOP-5 fix rounding"), f.sha("picked SHOP-5")];
    want.sort();
    assert_eq!(commits, want);
    let answers = q["answers"].as_array().unwrap();
    let us = answers.iter().find(|a| a["environment"] == "us").unwrap();
    assert_eq!(us["state"], "equivalent");
    let uk = answers.iter().find(|a| a["environment"] == "uk").unwrap();
    assert_eq!(uk["state"], "not-deployed");

    // By SHA: the mainline fix is in the US as its cherry-pick.
    let fix = f.sha("SHOP-5 fix rounding");
    let run = f.run(&["contains", &fix[..10], "--env", "us", "--format", "json"]);
    run.expect_code(0);
    let running = &run.json()["queries"][0]["answers"][0]["running"][0];
    assert_eq!(running["state"], "equivalent");
    assert_eq!(running["commits"][0][1], serde_json::json!({"state": "equivalent", "via": f.sha("picked SHOP-5")}));
}

#[test]
fn some_replicas_is_partial_and_unknown_is_unknown() {
    let f = Fleet::new(&[("uk", "1.2.0", "2026-11-10T09:00:00Z"), ("uk", "1.1.0", "2026-11-01T09:00:00Z")]);
    let run = f.run(&["contains", "SHOP-3"]);
    run.expect_code(4);
    assert!(run.stdout.contains("uk           api      partially deployed"), "{}", run.context);
    let f = Fleet::new(&[("uk", "latest", "2026-11-10T09:00:00Z")]);
    f.run(&["contains", "SHOP-3"]).expect_code(3);
    let run = f.run(&["contains", "NOPE-1"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no commit in the history of main or of anything running mentions it"),
        "{}",
        run.context
    );
}

#[test]
fn rollback_excluding_a_ticket_picks_the_newest_clean_release() {
    let f = uk_us();
    let run = f.run(&["rollback", "uk", "--exclude", "SHOP-3"]);
    run.expect_code(0);
    expect_fixture(&fixture("rollback-uk-exclude-bug.expected"), &run.stdout);
    let report = f.run(&["rollback", "uk", "--exclude", "SHOP-3", "--format", "json"]).json();
    let api = &report["services"][0];
    let tags: Vec<&str> =
        api["candidates"].as_array().unwrap().iter().map(|c| c["git_tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["v1.1.1", "v1.1.0", "v1.0.0"], "newest first, the release branch included");
    assert_eq!(
        api["recommendation"],
        "registry.example.com/shop/api:1.1.1 (not pinned by digest: the registry was not asked)"
    );
    // Reverts: what runs and v1.1.1 lacks.
    let reverts: Vec<String> = api["candidates"][0]["reverts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reverts, f.repo.rev_list(&["--no-merges", "v1.1.1..v1.2.0"]));
}

#[test]
fn a_rollback_that_reverts_a_migration_is_flagged() {
    let f = uk_us();
    let run = f.run(&["rollback", "uk", "--exclude", "SHOP-2", "--format", "json"]);
    run.expect_code(0);
    let api = &run.json()["services"][0];
    let v100 = api["candidates"].as_array().unwrap().iter().find(|c| c["git_tag"] == "v1.0.0").unwrap();
    assert_eq!(v100["recommended"], true, "{api:#}");
    assert_eq!(v100["risky_files"], serde_json::json!(["api/migrations/001_orders.sql"]));
    assert_eq!(api["findings"][0]["code"], "risky-change");
    assert!(api["findings"][0]["message"].as_str().unwrap().contains("reverts api/migrations/001_orders.sql"));
    // Every release contains SHOP-1: no target, exit 1.
    let run = f.run(&["rollback", "uk", "--exclude", "SHOP-1"]);
    run.expect_code(1);
    assert!(run.stdout.contains("no-rollback-target"), "{}", run.context);
}

#[test]
fn plan_shows_what_a_deploy_ships_drops_and_migrates() {
    let f = uk_us();
    let run = f.run(&["plan", "us", "--to", "uk"]);
    run.expect_code(1);
    expect_fixture(&fixture("plan-us-to-uk.expected"), &run.stdout);
    let report = f.run(&["plan", "us", "--to", "1.2.0", "--format", "json"]).json();
    let api = &report["services"][0];
    assert_eq!(shas(&api["added"]), f.repo.rev_list(&["v1.1.1..v1.2.0"]));
    assert_eq!(shas(&api["removed"]), f.repo.rev_list(&["v1.2.0..v1.1.1"]));
    assert_eq!(api["findings"][0]["code"], "drops-commits", "the cherry-picked fix is not in 1.2.0");

    let f = Fleet::new(&[("prod", "1.0.0", "2026-11-10T09:00:00Z")]);
    let run = f.run(&["plan", "prod", "--to", "v1.1.0", "--patch", "api/migrations", "--format", "markdown"]);
    run.expect_code(0);
    expect_fixture(&fixture("plan-migration.expected.md"), &run.stdout);
    let run = f.run(&["plan", "prod", "--to", "v9"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--to \"v9\" is neither an environment, an image tag of api"), "{}", run.context);
}

#[test]
fn seasoning_is_satisfied_or_violated_by_deployment_times() {
    let config = "promotion = [\"uk\", \"us\"]\n[environments.uk]\n[environments.us]\n[[policy.seasoning]]\nenvironment = \"us\"\nmin_days = 7\n";
    let ok = Fleet::new(&[("uk", "1.1.0", "2026-11-01T09:00:00Z"), ("us", "1.1.0", "2026-11-10T09:00:00Z")]);
    let run = ok.run_with(&["check"], Some(config));
    run.expect_code(0);
    let early = Fleet::new(&[("uk", "1.1.0", "2026-11-01T09:00:00Z"), ("us", "1.1.0", "2026-11-04T09:00:00Z")]);
    let run = early.run_with(&["check"], Some(config));
    run.expect_code(1);
    assert!(
        run.stdout.contains(
            "seasoning-violated  us/api: reached us 3 day(s) after uk started running it; at least 7 required"
        ),
        "{}",
        run.context
    );
    // The US runs a release-branch build the UK never ran: violated, and unpromoted.
    let branch = Fleet::new(&[("uk", "1.2.0", "2026-11-01T09:00:00Z"), ("us", "1.1.1", "2026-11-20T09:00:00Z")]);
    let run = branch.run_with(&["check", "--format", "json"], Some(config));
    run.expect_code(1);
    let us = row(&run.json(), "us", "api").clone();
    assert_eq!(codes(&us), ["behind-mainline", "unpromoted-change", "seasoning-violated"]);
    assert_eq!(us["promotion"]["environment"], "uk");
    assert_eq!(shas(&us["promotion"]["ahead"]), vec![branch.sha("picked SHOP-5")]);
}

#[test]
fn rollback_asks_the_registry_skips_images_that_are_gone_and_pins_the_pick_by_digest() {
    use crate::util_registry::{Home, TestRegistry};
    let registry = TestRegistry::start();
    let home = Home::new();
    let r = regions();
    let host = registry.host();
    let mut digests = std::collections::HashMap::new();
    for (tag, git) in [("1.0.0", "v1.0.0"), ("1.1.0", "v1.1.0"), ("1.1.1", "v1.1.1"), ("1.2.0", "v1.2.0")] {
        let img =
            registry.push_image("shop/api", "linux/amd64", &[("org.opencontainers.image.revision", &r.rev(git))], tag);
        registry.tag("shop/api", tag, &img.manifest, img.media_type);
        digests.insert(tag, img.manifest);
    }
    // 1.1.1 was garbage-collected: rolling back to it would fail to pull.
    registry.delete_manifest("shop/api", &digests["1.1.1"]);
    let inv = r.scratch().join("uk.json");
    std::fs::write(&inv, serde_json::json!({"workloads": [{"environment": "uk", "service": "api", "image": format!("{host}/shop/api:1.2.0")}]}).to_string()).unwrap();
    let env = [
        ("PRODIFF_CACHE_DIR", home.cache().display().to_string()),
        ("DOCKER_CONFIG", home.docker().display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = prodiff_env(
        r.path(),
        &["rollback", "uk", "--exclude", "SHOP-3", "--format", "json", "--inventory", inv.to_str().unwrap()],
        None,
        &env,
    );
    run.expect_code(0);
    let api = &run.json()["services"][0];
    let by_tag = |t: &str| api["candidates"].as_array().unwrap().iter().find(|c| c["git_tag"] == t).unwrap().clone();
    assert_eq!(by_tag("v1.1.1")["image_exists"], false);
    assert_eq!(by_tag("v1.1.1")["recommended"], false, "its image is gone");
    assert_eq!(by_tag("v1.1.0")["image_exists"], true);
    assert_eq!(by_tag("v1.1.0")["recommended"], true);
    assert_eq!(by_tag("v1.1.0")["digest"], digests["1.1.0"].as_str());
    assert_eq!(api["recommendation"], format!("{host}/shop/api:1.1.0@{}", digests["1.1.0"]));
    let skopeo = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--no-tags",
            "--format",
            "{{.Digest}}",
            &format!("docker://{host}/shop/api:1.1.0"),
        ])
        .output()
        .expect("skopeo is installed (apt-get install skopeo)");
    assert_eq!(String::from_utf8_lossy(&skopeo.stdout).trim(), digests["1.1.0"], "skopeo agrees on the pinned digest");

    // A plan to an image tag names the image to deploy, pinned; a tag whose image is gone
    // is a finding before anyone tries to pull it.
    let plan = |to: &str| {
        let args = ["plan", "uk", "--to", to, "--format", "json", "--inventory", inv.to_str().unwrap()];
        prodiff_env(r.path(), &args, None, &env)
    };
    let run = plan("1.1.0");
    assert_eq!(run.json()["services"][0]["target_image"], format!("{host}/shop/api:1.1.0@{}", digests["1.1.0"]));
    let run = plan("1.1.1");
    let api = &run.json()["services"][0];
    assert!(api["findings"].as_array().unwrap().iter().any(|f| f["code"] == "image-not-in-registry"), "{api:#}");
}
