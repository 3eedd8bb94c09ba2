//! The exit-code contract and the release workflows as a user in CI meets them: `plan`,
//! `rollback` and `contains` say when their answer is incomplete (and exit 3, as `status`
//! does), a rollback excluding a change judges only the services that run it, a git tag
//! maps back to the image tag the registry has, and `--format github` annotates.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;
use crate::util_registry::{free_port, Home, TestRegistry};

/// main: v1.0.0, v1.1.0, v1.2.0 (SHOP-3, the bug), with `api` and `web` in one repository.
fn shop() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "SHOP-1 cart", &[("api/cart.txt", "cart")]);
    r.tag("v1.0.0", "main", true);
    r.commit("main", "SHOP-2 orders", &[("api/orders.txt", "orders")]);
    r.tag("v1.1.0", "main", true);
    r.commit("main", "SHOP-3 new totals (the bug)", &[("api/totals.txt", "sum * 1.1")]);
    r.tag("v1.2.0", "main", true);
    r.commit("main", "SHOP-4 receipts (not released)", &[("api/receipts.txt", "r")]);
    r
}

fn write(r: &TestRepo, workloads: Vec<Value>) -> PathBuf {
    let path = r.scratch().join("fleet.json");
    std::fs::write(&path, serde_json::json!({ "workloads": workloads }).to_string()).unwrap();
    path
}

fn run(home: &Home, r: &TestRepo, inv: &Path, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--inventory", inv.to_str().unwrap()]);
    home.prodiff(r.path(), &all)
}

#[test]
fn plan_and_rollback_exit_3_when_the_registry_could_not_be_asked() {
    let r = shop();
    let home = Home::new();
    // Nothing listens there: every registry query fails at once.
    let host = format!("127.0.0.1:{}", free_port());
    let inv = write(
        &r,
        vec![serde_json::json!({"environment": "uk", "service": "api", "image": format!("{host}/shop/api:1.2.0")})],
    );
    let rollback = run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-3", "--format", "json"]);
    rollback.expect_code(3);
    let report = rollback.json();
    assert_eq!(report["complete"], false, "{}", rollback.context);
    let api = &report["services"][0];
    assert_eq!(api["findings"][0]["code"], "registry-unreachable", "{api:#}");
    assert_eq!(
        api["recommendation"],
        format!("{host}/shop/api:1.1.0 (not pinned by digest: the registry could not be asked)")
    );
    // The table says the same, and --allow-incomplete accepts it.
    let table = run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-3"]);
    table.expect_code(3);
    assert!(table.stdout.contains("Incomplete: something could not be observed"), "{}", table.context);
    assert!(table.stdout.contains("registry unreachable"), "the IMAGE column says why\n{}", table.context);
    run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-3", "--allow-incomplete"]).expect_code(0);

    let plan = run(&home, &r, &inv, &["plan", "uk", "--to", "1.1.0", "--format", "json"]);
    plan.expect_code(3);
    let report = plan.json();
    assert_eq!(report["complete"], false);
    assert_eq!(report["schema_version"], 1);
    let codes: Vec<&str> =
        report["services"][0]["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["rollback", "registry-unreachable"], "{}", plan.context);
    run(&home, &r, &inv, &["plan", "uk", "--to", "1.1.0", "--allow-incomplete"]).expect_code(0);

    // Offline, nothing was asked: complete, exit 0, and it says "was not asked".
    let offline = run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-3", "--offline", "--format", "json"]);
    offline.expect_code(0);
    assert_eq!(offline.json()["complete"], true);
    assert!(offline.json()["services"][0]["recommendation"].as_str().unwrap().ends_with("the registry was not asked)"));
}

#[test]
fn contains_says_when_it_is_complete_and_an_unreachable_registry_turns_yes_into_3() {
    let r = shop();
    let home = Home::new();
    let host = format!("127.0.0.1:{}", free_port());
    let digest = format!("sha256:{}", "ab".repeat(32));
    let running = |with_digest: bool| {
        let mut w =
            serde_json::json!({"environment": "uk", "service": "api", "image": format!("{host}/shop/api:1.2.0")});
        if with_digest {
            // A running digest makes the audit ask the (unreachable) registry about it.
            w["repo_digests"] = serde_json::json!([format!("{host}/shop/api@{digest}")]);
        }
        write(&r, vec![w])
    };
    let inv = running(false);
    let yes = run(&home, &r, &inv, &["contains", "SHOP-3", "--format", "json"]);
    yes.expect_code(0);
    assert_eq!(yes.json()["complete"], true, "{}", yes.context);
    assert_eq!(yes.json()["findings"], serde_json::json!([]));

    let inv = running(true);
    let unsure = run(&home, &r, &inv, &["contains", "SHOP-3", "--format", "json"]);
    unsure.expect_code(3);
    let report = unsure.json();
    assert_eq!(report["complete"], false, "{}", unsure.context);
    assert_eq!(report["queries"][0]["answers"][0]["state"], "deployed");
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["code"] == "registry-unreachable"));
    // Not deployed where it looked, but a registry did not answer: 3, not 1.
    run(&home, &r, &inv, &["contains", "SHOP-4"]).expect_code(3);
    run(&home, &r, &inv, &["contains", "SHOP-4", "--allow-incomplete"]).expect_code(1);
    run(&home, &r, &inv, &["contains", "SHOP-3", "--allow-incomplete"]).expect_code(0);
}

#[test]
fn rollback_excluding_a_change_judges_only_the_services_that_run_it() {
    let r = shop();
    let home = Home::new();
    let inv = write(
        &r,
        vec![
            serde_json::json!({"environment": "uk", "service": "api", "image": "registry.example.com/shop/api:1.2.0"}),
            // web runs a release without SHOP-3: nothing to roll back.
            serde_json::json!({"environment": "uk", "service": "web", "image": "registry.example.com/shop/web:1.1.0"}),
        ],
    );
    let rb = run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-3", "--offline", "--format", "json"]);
    rb.expect_code(0);
    let report = rb.json();
    let web = report["services"].as_array().unwrap().iter().find(|s| s["service"] == "web").unwrap();
    assert_eq!(web["affected"], false, "{web:#}");
    assert_eq!(web["findings"], serde_json::json!([]));
    assert_eq!(web["candidates"], serde_json::json!([]));
    let api = report["services"].as_array().unwrap().iter().find(|s| s["service"] == "api").unwrap();
    assert_eq!(api["affected"], true);
    assert_eq!(api["candidates"][0]["git_tag"], "v1.1.0");
    let table = run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-3", "--offline"]);
    assert!(table.stdout.contains("uk / web: runs "), "{}", table.context);
    assert!(table.stdout.contains("not affected, it runs none of SHOP-3"), "{}", table.context);
    assert!(!table.stdout.contains("no-rollback-target"), "{}", table.context);

    // Every release has SHOP-1: no target. A wider --limit would not help, so no such hint...
    let none = run(&home, &r, &inv, &["rollback", "uk", "--service", "api", "--exclude", "SHOP-1", "--offline"]);
    none.expect_code(1);
    assert!(none.stdout.contains("no-rollback-target"), "{}", none.context);
    assert!(none.stdout.contains("hint: fix forward\n"), "{}", none.context);
    assert!(!none.stdout.contains("--limit"), "{}", none.context);
    // ... unless --limit left earlier releases out.
    let args = ["rollback", "uk", "--service", "api", "--exclude", "SHOP-1", "--limit", "1", "--offline"];
    let limited = run(&home, &r, &inv, &args);
    limited.expect_code(1);
    assert!(
        limited.stdout.contains("hint: fix forward, or widen --limit (1 earlier release(s) not judged)"),
        "{}",
        limited.context
    );
}

#[test]
fn plan_to_a_git_tag_deploys_the_image_tag_the_registry_has() {
    let registry = TestRegistry::start();
    let home = Home::new();
    let r = shop();
    let host = registry.host();
    let push = |repo: &str, tag: &str, git: &str| {
        let img = registry.push_image(repo, "linux/amd64", &[("org.opencontainers.image.revision", &r.rev(git))], tag);
        registry.tag(repo, tag, &img.manifest, img.media_type);
        img.manifest
    };
    // api's registry uses bare versions, web's keeps the `v`.
    let api_110 = push("shop/api", "1.1.0", "v1.1.0");
    push("shop/api", "1.2.0", "v1.2.0");
    let web_110 = push("shop/web", "v1.1.0", "v1.1.0");
    let inv = write(
        &r,
        vec![
            serde_json::json!({"environment": "uk", "service": "api", "image": format!("{host}/shop/api:1.2.0")}),
            serde_json::json!({"environment": "uk", "service": "web", "image": format!("{host}/shop/web:v1.2.0")}),
        ],
    );
    let plan = run(&home, &r, &inv, &["plan", "uk", "--to", "v1.1.0", "--format", "json", "--allow-incomplete"]);
    let report = plan.json();
    let target = |s: &str| {
        report["services"].as_array().unwrap().iter().find(|p| p["service"] == s).unwrap()["target_image"].clone()
    };
    assert_eq!(target("api"), format!("{host}/shop/api:1.1.0@{api_110}"), "{}", plan.context);
    assert_eq!(target("web"), format!("{host}/shop/web:v1.1.0@{web_110}"), "{}", plan.context);

    // Neither 1.0.0 nor v1.0.0 was pushed: the finding names both.
    let plan = run(&home, &r, &inv, &["plan", "uk", "--to", "v1.0.0", "--service", "api", "--format", "json"]);
    let api = &plan.json()["services"][0];
    let missing = api["findings"].as_array().unwrap().iter().find(|f| f["code"] == "image-not-in-registry").unwrap();
    assert_eq!(
        missing["message"],
        format!("the registry has no {host}/shop/api:1.0.0, {host}/shop/api:v1.0.0: deploying it would fail to pull")
    );
}

#[test]
fn plan_to_a_git_tag_offline_follows_the_running_tag_scheme() {
    let r = shop();
    let home = Home::new();
    let inv = write(
        &r,
        vec![
            serde_json::json!({"environment": "uk", "service": "api", "image": "registry.example.com/shop/api:1.0.0"}),
        ],
    );
    let plan = run(&home, &r, &inv, &["plan", "uk", "--to", "v1.1.0", "--offline", "--format", "json"]);
    plan.expect_code(0);
    let report = plan.json();
    assert_eq!(report["complete"], true);
    assert_eq!(report["services"][0]["target"], "v1.1.0");
    assert_eq!(report["services"][0]["target_image"], "registry.example.com/shop/api:1.1.0", "{}", plan.context);
}

#[test]
fn format_github_annotates_plan_rollback_and_contains() {
    let r = shop();
    let home = Home::new();
    let inv = write(
        &r,
        vec![
            serde_json::json!({"environment": "uk", "service": "api", "image": "registry.example.com/shop/api:1.2.0"}),
        ],
    );
    let plan = run(&home, &r, &inv, &["plan", "uk", "--to", "v1.0.0", "--offline", "--format", "github"]);
    plan.expect_code(0);
    assert!(
        plan.stdout.starts_with("::warning title=prodiff rollback uk/api::uk/api: v1.0.0 is older than what runs"),
        "{}",
        plan.context
    );
    assert!(plan.stdout.contains("\nuk / api: "), "the table follows\n{}", plan.context);

    let rb = run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-1", "--offline", "--format", "github"]);
    rb.expect_code(1);
    assert!(
        rb.stdout.starts_with("::error title=prodiff no-rollback-target uk/api::uk/api: each of the 2 earlier releases contains an excluded change%0Ahint: fix forward\n"),
        "{}",
        rb.context
    );

    let c = run(&home, &r, &inv, &["contains", "SHOP-3", "--offline", "--format", "github"]);
    c.expect_code(0);
    // With GITHUB_STEP_SUMMARY set, the markdown goes to the job summary.
    let summary = r.scratch().join("summary.md");
    let args =
        ["plan", "uk", "--to", "v1.0.0", "--offline", "--format", "github", "--inventory", inv.to_str().unwrap()];
    let with_summary = prodiff_env(r.path(), &args, None, &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())]);
    with_summary.expect_code(0);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## Release plan: uk → v1.0.0\n"), "{md}");
    assert!(c.stdout.starts_with("::notice title=prodiff contains SHOP-3::uk/api deployed\n"), "{}", c.context);
    // JUnit stays refused for them.
    let j = run(&home, &r, &inv, &["contains", "SHOP-3", "--offline", "--format", "junit"]);
    j.expect_code(2);
}

#[test]
fn github_annotations_point_at_the_config_entry_at_fault() {
    let r = shop();
    let home = Home::new();
    let inv = write(
        &r,
        vec![
            serde_json::json!({"environment": "uk", "service": "api", "image": "registry.example.com/shop/api:1.2.0"}),
        ],
    );
    let config = "[environments.uk]\n\n[[policy.exceptions]]\ncode = \"hotfix-drift\"\nreason = \"old\"\n";
    std::fs::write(r.path().join("prodiff.toml"), config).unwrap();
    let check = run(&home, &r, &inv, &["check", "--offline", "--format", "github"]);
    check.expect_code(0);
    let line =
        check.stdout.lines().find(|l| l.contains("exception-unused")).unwrap_or_else(|| panic!("{}", check.context));
    assert!(line.starts_with("::warning file=prodiff.toml,line=3,title=prodiff exception-unused::"), "{line}");

    // A config that does not load: exit 2, and the annotation sits on the line at fault.
    std::fs::write(r.path().join("prodiff.toml"), "[environments.uk]\n\n[services.api]\nbranch = \"x\"\n").unwrap();
    let broken = run(&home, &r, &inv, &["check", "--offline", "--format", "github"]);
    broken.expect_code(2);
    assert!(broken.stderr.contains("prodiff.toml:4:1: unknown field `branch`"), "{}", broken.context);
    assert!(broken.stdout.starts_with("::error file=prodiff.toml,line=4,col=1,title=prodiff::"), "{}", broken.context);
    let plain = run(&home, &r, &inv, &["check", "--offline"]);
    assert_eq!(plain.stdout, "", "{}", plain.context);
}

#[test]
fn every_command_follows_one_exit_code_contract() {
    let r = shop();
    let home = Home::new();
    let host = format!("127.0.0.1:{}", free_port());
    let digest = format!("sha256:{}", "ab".repeat(32));
    // A registry that cannot be asked about what runs: every judging command is incomplete.
    let inv = write(
        &r,
        vec![serde_json::json!({"environment": "uk", "service": "api", "image": format!("{host}/shop/api:1.2.0"),
            "repo_digests": [format!("{host}/shop/api@{digest}")]})],
    );
    let commands: [&[&str]; 7] = [
        &["status"],
        &["diff", "uk"],
        &["check"],
        &["plan", "uk", "--to", "1.1.0"],
        &["rollback", "uk"],
        &["contains", "SHOP-3"],
        &["why", "SHOP-3"],
    ];
    for args in commands {
        let incomplete = run(&home, &r, &inv, args);
        incomplete.expect_code(3);
        let mut accepted = args.to_vec();
        accepted.push("--allow-incomplete");
        let code = run(&home, &r, &inv, &accepted).code;
        assert_eq!(code, 0, "{args:?} --allow-incomplete");
        let mut json = args.to_vec();
        json.extend(["--format", "json"]);
        let report = run(&home, &r, &inv, &json).json();
        assert_eq!(report["complete"], false, "{args:?}");
        assert_eq!(report["schema_version"], 1, "{args:?}");
        // A denied finding wins over incompleteness (contains answers a question: not it).
        if !matches!(args[0], "contains" | "why") {
            let mut denied = args.to_vec();
            denied.extend(["--deny", "registry-unreachable"]);
            run(&home, &r, &inv, &denied).expect_code(1);
        }
        // An unknown environment is a usage error everywhere.
        let mut bad = args.to_vec();
        bad.extend(["--env", "nowhere"]);
        if matches!(args[0], "diff" | "plan" | "rollback") {
            bad = vec![args[0], "nowhere"];
            bad.extend_from_slice(&args[2..]);
        }
        run(&home, &r, &inv, &bad).expect_code(2);
    }
    // snapshot records what it saw, incomplete or not.
    let snap = run(&home, &r, &inv, &["snapshot"]);
    snap.expect_code(0);
    assert_eq!(snap.json()["complete"], false);
}

#[test]
fn the_readme_documents_every_field_of_the_plan_rollback_contains_and_why_json() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section =
        readme.split("### `plan`, `rollback`, `contains` and `why`").nth(1).unwrap().split("\n## ").next().unwrap();
    let r = shop();
    let home = Home::new();
    let inv = write(
        &r,
        vec![
            serde_json::json!({"environment": "uk", "service": "api", "image": "registry.example.com/shop/api:1.2.0"}),
        ],
    );
    let runs = [
        run(&home, &r, &inv, &["plan", "uk", "--to", "v1.0.0", "--offline", "--format", "json"]).json(),
        run(&home, &r, &inv, &["rollback", "uk", "--exclude", "SHOP-3", "--offline", "--format", "json"]).json(),
        run(&home, &r, &inv, &["contains", "SHOP-3", "--offline", "--format", "json"]).json(),
        run(&home, &r, &inv, &["why", "SHOP-3", "--offline", "--format", "json"]).json(),
    ];
    let mut missing = Vec::new();
    for report in &runs {
        let mut objects = vec![report];
        for list in ["services", "queries"] {
            if let Some(first) = report[list].get(0) {
                objects.push(first);
                for inner in ["candidates", "answers", "files", "environments"] {
                    if let Some(x) = first[inner].get(0) {
                        objects.push(x);
                    }
                }
            }
        }
        for o in objects {
            for key in o.as_object().unwrap().keys() {
                if !names(section, key) {
                    missing.push(key.clone());
                }
            }
        }
    }
    assert!(missing.is_empty(), "the README does not document {missing:?}");
}

/// Whether `text` names the field `key` as a word (`key`, {key, …}, key[], …).
fn names(text: &str, key: &str) -> bool {
    text.match_indices(key).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + key.len()..].chars().next();
        matches!(before, Some('`' | '{' | ' ')) && matches!(after, Some('`' | ',' | '}' | '[' | ' '))
    })
}
