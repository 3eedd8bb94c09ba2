//! `prodiff why` on one fixture history that holds every case: a change only on a feature
//! branch, merged but not tagged, tagged but with no image pushed (a real registry), in
//! staging with seasoning not yet over (pinned now), in production as a cherry-pick,
//! reverted on the mainline after reaching staging, and a ticket with two commits of which
//! production runs one. Expected outputs are exact (fixtures/why/*.expected).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::demo::expect_fixture;
use crate::util::*;
use crate::util_registry::{write_inventory, Home, TestRegistry};

/// main: v1.0.0, SHOP-11 merged from a branch, SHOP-15 and SHOP-17 (part one) that
/// release/1.0 cherry-picks into v1.0.1, v1.1.0, SHOP-16, SHOP-17 (part two), v1.2.0, the
/// revert of SHOP-16, SHOP-12, v1.3.0, SHOP-13; SHOP-14 only on feature/wish.
fn history() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "initial", &[("api/main.txt", "1")]);
    r.tag("v1.0.0", "main", true);
    r.branch("feature/pay", "main");
    r.commit("feature/pay", "SHOP-11 payments", &[("api/pay.txt", "pay")]);
    r.merge("main", "feature/pay", "Merge SHOP-11 payments");
    r.commit("main", "SHOP-15 totals fix", &[("api/totals.txt", "fixed")]);
    r.commit("main", "SHOP-17 export, part one", &[("api/export.txt", "csv")]);
    r.tag("v1.1.0", "main", true);
    r.branch("release/1.0", "v1.0.0");
    r.cherry_pick("release/1.0", "SHOP-15 totals fix", "picked SHOP-15");
    r.cherry_pick("release/1.0", "SHOP-17 export, part one", "picked SHOP-17");
    r.tag("v1.0.1", "release/1.0", true);
    r.commit("main", "SHOP-16 banner", &[("api/banner.txt", "sale")]);
    r.commit("main", "SHOP-17 export, part two", &[("api/export.txt", "csv and json")]);
    r.tag("v1.2.0", "main", true);
    r.commit("main", "SHOP-18 docs", &[("README", "docs")]);
    let banner = r.rev("SHOP-16 banner");
    r.git(&["revert", "--no-edit", &banner]);
    r.commit("main", "SHOP-12 receipts", &[("api/receipts.txt", "r")]);
    r.tag("v1.3.0", "main", true);
    r.commit("main", "SHOP-13 search", &[("api/search.txt", "s")]);
    r.branch("feature/wish", "main");
    r.commit("feature/wish", "SHOP-14 wishlist", &[("api/wish.txt", "w")]);
    r.git(&["checkout", "-q", "main"]);
    r
}

struct Setup {
    repo: TestRepo,
    registry: TestRegistry,
    home: Home,
    inventory: PathBuf,
    config: PathBuf,
}

/// Staging runs 1.2.0 since 2026-11-20 noon, production 1.0.1; production needs 3 days in
/// staging. The registry has 1.0.1 and 1.2.0, not 1.3.0.
fn setup() -> Setup {
    let repo = history();
    let registry = TestRegistry::start();
    let host = registry.host();
    for tag in ["1.0.1", "1.2.0"] {
        let commit = repo.rev(&format!("v{tag}"));
        let image =
            registry.push_image("shop/api", "linux/amd64", &[("org.opencontainers.image.revision", &commit)], tag);
        registry.tag("shop/api", tag, &image.manifest, image.media_type);
    }
    let home = Home::new();
    let row = |env: &str, tag: &str, started: &str, i: usize| {
        json!({"environment": env, "service": "api", "image": format!("{host}/shop/api:{tag}"),
               "instance": format!("{env}-{i}"), "started_at": started})
    };
    let inventory = write_inventory(
        repo.scratch(),
        vec![
            row("staging", "1.2.0", "2026-11-20T12:00:00Z", 0),
            row("production", "1.0.1", "2026-11-01T09:00:00Z", 1),
            row("production", "1.0.1", "2026-11-01T09:05:00Z", 2),
        ],
    );
    let config = repo.scratch().join("prodiff.toml");
    std::fs::write(
        &config,
        "promotion = [\"staging\", \"production\"]\n\n[[policy.seasoning]]\nenvironment = \"production\"\nmin_days = 3\n",
    )
    .unwrap();
    Setup { repo, registry, home, inventory, config }
}

impl Setup {
    fn why(&self, args: &[&str]) -> Run {
        self.run_at("why", args, "2026-11-22T12:00:00Z")
    }

    fn run_at(&self, command: &str, args: &[&str], now: &str) -> Run {
        let mut all = vec![command];
        all.extend_from_slice(args);
        all.extend(["--inventory", self.inventory.to_str().unwrap(), "--config", self.config.to_str().unwrap()]);
        let out = self.home.command(self.repo.path(), &all).env("PRODIFF_NOW", now).output().unwrap();
        let scratch = self.repo.scratch().display().to_string();
        let stdout =
            String::from_utf8_lossy(&out.stdout).replace(&self.registry.host(), "REGISTRY").replace(&scratch, "$TMP");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let context = format!("args: {all:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        Run { code: out.status.code().unwrap_or(-1), stdout, stderr, context }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/why").join(name)
}

/// Each environment's links as (step, mark) pairs, and its next step.
fn chain(report: &Value, env: &str) -> (Vec<(String, String)>, Value) {
    let e = report["services"][0]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == env)
        .unwrap_or_else(|| panic!("no {env} in {report:#}"));
    let links = e["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["step"].as_str().unwrap().to_string(), l["mark"].as_str().unwrap().to_string()))
        .collect();
    (links, e["next"].clone())
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn why_walks_every_case_to_its_first_broken_link() {
    let s = setup();

    // Only on a feature branch.
    let run = s.why(&["SHOP-14"]);
    run.expect_code(1);
    expect_fixture(&fixture("feature-branch.expected"), &run.stdout);
    let report = s.why(&["SHOP-14", "--format", "json"]).json();
    let (links, next) = chain(&report, "production");
    assert_eq!(links, pairs(&[("in the repository", "yes"), ("on the mainline", "no"), ("runs it", "no")]));
    assert_eq!(next, "merge it into main");
    assert!(report["change"][1]["evidence"].as_str().unwrap().contains("only on feature/wish"), "{report:#}");

    // Merged, not tagged.
    let run = s.why(&["SHOP-13"]);
    run.expect_code(1);
    expect_fixture(&fixture("untagged.expected"), &run.stdout);

    // Tagged, no image pushed: the real registry says so.
    let run = s.why(&["SHOP-12"]);
    run.expect_code(1);
    expect_fixture(&fixture("no-image.expected"), &run.stdout);
    let report = s.why(&["SHOP-12", "--format", "json"]).json();
    assert_eq!(report["services"][0]["image"]["mark"], "no", "{report:#}");
    assert_eq!(
        report["services"][0]["image"]["evidence"],
        "the registry has no REGISTRY/shop/api:1.3.0, REGISTRY/shop/api:v1.3.0"
    );
    // Offline, the same link is unknown, and the answer incomplete.
    let run = s.why(&["SHOP-12", "--offline", "--format", "json"]);
    run.expect_code(3);
    assert_eq!(run.json()["services"][0]["image"]["mark"], "unknown");
    assert_eq!(run.json()["complete"], false);

    // In staging since 2026-11-20 noon; production needs three days there.
    let run = s.why(&["SHOP-11"]);
    run.expect_code(4);
    expect_fixture(&fixture("seasoning.expected"), &run.stdout);
    let report = s.why(&["SHOP-11", "--format", "json"]).json();
    let (links, next) = chain(&report, "production");
    assert_eq!(links.last().unwrap(), &("seasoned".to_string(), "no".to_string()));
    assert_eq!(next, "wait until 2026-11-23T12:00:00Z, then deploy");
    let (links, _) = chain(&report, "staging");
    assert_eq!(links, pairs(&[("runs it", "yes")]));

    // In production as a cherry-pick, asked by SHA.
    let fix = s.repo.rev("SHOP-15 totals fix");
    let run = s.why(&[&fix[..12]]);
    run.expect_code(0);
    expect_fixture(&fixture("cherry-pick.expected"), &run.stdout);
    let report = s.why(&[&fix, "--format", "json"]).json();
    let prod = report["services"][0]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "production")
        .unwrap();
    assert_eq!(prod["state"], "equivalent");
    let picked = s.repo.rev("picked SHOP-15");
    assert!(prod["links"][0]["evidence"].as_str().unwrap().contains(&picked[..7]), "{prod:#}");

    // Reverted on the mainline after reaching staging: the revert is not one of its commits.
    let run = s.why(&["SHOP-16"]);
    run.expect_code(4);
    expect_fixture(&fixture("reverted.expected"), &run.stdout);
    let report = s.why(&["SHOP-16", "--format", "json"]).json();
    assert_eq!(shas(&report["commits"]), vec![s.repo.rev("SHOP-16 banner")]);
    assert_eq!(report["change"][1]["mark"], "no");
    let revert = s.repo.rev_list(&["-1", "--grep", "This reverts commit", "main"]);
    assert!(report["change"][1]["evidence"].as_str().unwrap().contains(&revert[0][..7]), "{report:#}");

    // A ticket with two commits, production runs one (as a cherry-pick).
    let run = s.why(&["SHOP-17", "--env", "production"]);
    run.expect_code(4);
    expect_fixture(&fixture("partial-ticket.expected"), &run.stdout);
    let report = s.why(&["SHOP-17", "--env", "production", "--format", "json"]).json();
    assert_eq!(report["services"][0]["environments"].as_array().unwrap().len(), 1, "--env keeps production only");
    assert_eq!(report["services"][0]["environments"][0]["state"], "partial");
    assert_eq!(
        shas(&report["commits"]),
        s.repo.rev_list(&["--grep", "SHOP-17", "main"]),
        "the ticket's commits, as git finds them"
    );

    // Nothing of the kind here: the fetch to run, exit 3.
    let run = s.why(&["0123456789abcdef"]);
    run.expect_code(3);
    assert!(run.stdout.contains("✗ in the repository"), "{}", run.context);
    assert!(run.stdout.contains("next: git fetch --all --tags"), "{}", run.context);
}

#[test]
fn why_as_markdown_is_a_ticket_comment() {
    let s = setup();
    let run = s.why(&["SHOP-11", "--format", "markdown"]);
    run.expect_code(4);
    expect_fixture(&fixture("seasoning.expected.md"), &run.stdout);
}

/// With a ledger, "since when" is the ledger's: the first deployment that ran the change,
/// timed by its replicas' start (production, as the cherry-pick; staging, seen a run later).
#[test]
fn why_takes_since_when_from_the_ledger() {
    let s = setup();
    let ledger = s.repo.scratch().join("ledger.db");
    let ledger = ledger.to_str().unwrap();
    // Production alone first, then staging as well.
    let full = std::fs::read_to_string(&s.inventory).unwrap();
    let mut v: Value = serde_json::from_str(&full).unwrap();
    v["workloads"].as_array_mut().unwrap().retain(|w| w["environment"] == "production");
    std::fs::write(&s.inventory, v.to_string()).unwrap();
    s.run_at("record", &["--ledger", ledger], "2026-11-19T12:00:00Z").expect_code(0);
    std::fs::write(&s.inventory, &full).unwrap();
    s.run_at("record", &["--ledger", ledger], "2026-11-21T12:00:00Z").expect_code(0);
    let report = s.why(&["SHOP-15", "--ledger", ledger, "--format", "json"]).json();
    let runs = |env: &str| {
        let e = report["services"][0]["environments"].as_array().unwrap().iter().find(|e| e["environment"] == env);
        e.unwrap()["links"][0]["evidence"].as_str().unwrap().to_string()
    };
    let picked = s.repo.rev("picked SHOP-15");
    assert_eq!(runs("production"), format!("since 2026-11-01T09:00:00Z (ledger), as cherry-pick {}", &picked[..10]));
    assert_eq!(runs("staging"), "since 2026-11-20T12:00:00Z (ledger)");
    // Without the ledger, the replicas' start times, as a lower bound.
    let report = s.why(&["SHOP-15", "--format", "json"]).json();
    let e = &report["services"][0]["environments"][0]["links"][0]["evidence"];
    assert!(e.as_str().unwrap().starts_with("since at least"), "{report:#}");
}
