//! `prodiff check` as a pipeline meets it: the exit-code contract end to end, policy levels,
//! exceptions that expire, lag thresholds, baselines, and every output format.

use crate::demo::{demo_dir, expect_file, run_demo};
use crate::util::*;

const NOW: &str = "2026-11-22T12:00:00Z";

/// A repository whose production runs exactly main: the clean case.
fn clean_repo() -> (TestRepo, std::path::PathBuf) {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.tag("v1.0.0", "main", true);
    let inv = inventory(r.scratch(), "clean.json", &[("production", "api", "acme/api:1.0.0", &[])]);
    (r, inv)
}

#[test]
fn exit_codes_clean_violation_usage_incomplete() {
    let (r, inv) = clean_repo();
    let inv = inv.to_str().unwrap();
    prodiff(r.path(), &["check", "--inventory", inv], None).expect_code(0);

    // 1: a hotfix that main does not have.
    r.branch("release/1.0", "v1.0.0");
    r.commit("release/1.0", "hotfix", &[("b.txt", "fix")]);
    r.tag("v1.0.1", "release/1.0", false);
    let drift = inventory(r.scratch(), "drift.json", &[("production", "api", "acme/api:1.0.1", &[])]);
    let run = prodiff(r.path(), &["check", "--inventory", drift.to_str().unwrap()], None);
    run.expect_code(1);
    assert!(run.stdout.contains("check failed: 1 denied, 0 warnings"), "{}", run.context);

    // 2: a usage error.
    prodiff(r.path(), &["check", "--inventory", inv, "--deny", "no-such-code"], None).expect_code(2);

    // 3: something could not be observed (an environment whose source reported nothing),
    // and --allow-incomplete turns that into 0.
    let cfg = r.scratch().join("incomplete.toml");
    std::fs::write(
        &cfg,
        format!("[environments.production]\ninventory = [{inv:?}]\n[environments.us]\ninventory = [\"empty.json\"]\n"),
    )
    .unwrap();
    std::fs::write(r.scratch().join("empty.json"), "{\"workloads\": []}").unwrap();
    let run = prodiff(r.path(), &["check", "--config", cfg.to_str().unwrap()], None);
    run.expect_code(3);
    assert!(run.stdout.contains("empty-environment"), "{}", run.context);
    prodiff(r.path(), &["check", "--config", cfg.to_str().unwrap(), "--allow-incomplete"], None).expect_code(0);
    // A denied finding wins over an incomplete observation.
    let mixed = format!(
        "[environments.production]\ninventory = [{:?}]\n[environments.us]\ninventory = [\"empty.json\"]\n",
        drift.to_str().unwrap()
    );
    std::fs::write(&cfg, mixed).unwrap();
    prodiff(r.path(), &["check", "--config", cfg.to_str().unwrap()], None).expect_code(1);
}

#[test]
fn levels_can_be_changed_in_config_and_for_one_run() {
    run_demo(&["check", "--allow", "hotfix-drift", "--allow", "evidence-conflict"], &[]).expect_code(0);
    let run = run_demo(
        &["check", "--allow", "hotfix-drift", "--allow", "evidence-conflict", "--deny", "behind-mainline"],
        &[],
    );
    run.expect_code(1);
    assert!(
        run.stdout.contains("deny  behind-mainline  production/web: 2 commits in main are not running yet"),
        "{}",
        run.context
    );
}

#[test]
fn exceptions_hold_until_they_expire() {
    let cfg = |expires: &str| {
        let base = std::fs::read_to_string(demo_dir().join("prodiff.toml")).unwrap();
        format!(
            "{base}\n[policy]\nallow = [\"evidence-conflict\", \"unpromoted-change\"]\n\n[[policy.exceptions]]\ncode = \"hotfix-drift\"\nenvironment = \"production\"\n\
             service = \"api\"\nreason = \"SHOP-120 goes upstream with SHOP-130\"\nexpires = {expires}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prodiff.toml");
    // Inventories are relative to the config file.
    for f in ["production.json", "staging.json"] {
        std::fs::copy(demo_dir().join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(&path, cfg("2026-12-31")).unwrap();
    let run = run_demo(&["check", "--config", path.to_str().unwrap()], &[("PRODIFF_NOW", NOW)]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("check passed: 0 denied, 0 warnings, 1 accepted by exceptions or the baseline"),
        "{}",
        run.context
    );

    std::fs::write(&path, cfg("2026-11-01")).unwrap();
    let run = run_demo(&["check", "--config", path.to_str().unwrap()], &[("PRODIFF_NOW", NOW)]);
    run.expect_code(1);
    assert!(run.stdout.contains("exception-expired"), "{}", run.context);
    assert!(run.stdout.contains("expired on 2026-11-01 (SHOP-120 goes upstream with SHOP-130)"), "{}", run.context);
    assert!(run.stdout.contains("deny  hotfix-drift"), "the excused finding counts again\n{}", run.context);
}

#[test]
fn lag_thresholds_count_commits_and_days() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["production.json", "staging.json"] {
        std::fs::copy(demo_dir().join(f), dir.path().join(f)).unwrap();
    }
    let base = std::fs::read_to_string(demo_dir().join("prodiff.toml")).unwrap();
    let path = dir.path().join("prodiff.toml");
    std::fs::write(&path, format!("{base}\n[policy]\nallow = [\"hotfix-drift\", \"evidence-conflict\"]\n\n[[policy.lag]]\nenvironment = \"production\"\nmax_commits = 1\nmax_days = 1000\n")).unwrap();
    let run = run_demo(&["check", "--config", path.to_str().unwrap(), "--format", "json"], &[("PRODIFF_NOW", NOW)]);
    run.expect_code(1);
    let report = run.json();
    let web = row(&report, "production", "web");
    let lag: Vec<_> = web["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "lag-exceeded").collect();
    assert_eq!(lag.len(), 1, "{web:#}");
    assert!(
        lag[0]["message"].as_str().unwrap().starts_with("2 commits behind main (limit 1)"),
        "{}",
        lag[0]["message"]
    );
    // The worker lags by one commit: within the limit.
    assert!(!codes(row(&report, "production", "worker")).contains(&"lag-exceeded".to_string()));
    // Days: main's oldest commit production/web lacks landed on 2025-11-09.
    std::fs::write(
        &path,
        format!(
            "{base}\n[policy]\nallow = [\"hotfix-drift\", \"evidence-conflict\"]\n\n[[policy.lag]]\nmax_days = 300\n"
        ),
    )
    .unwrap();
    let run = run_demo(&["check", "--config", path.to_str().unwrap()], &[("PRODIFF_NOW", NOW)]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("production/web: main's oldest undeployed commit is 376 days old (limit 300)"),
        "{}",
        run.context
    );
}

#[test]
fn a_baseline_hides_old_drift_and_catches_new_drift() {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.tag("v1.0.0", "main", true);
    r.branch("release/1.0", "v1.0.0");
    r.commit("release/1.0", "SHOP-1 first hotfix", &[("b.txt", "fix")]);
    r.tag("v1.0.1", "release/1.0", false);
    let inv = inventory(r.scratch(), "b1.json", &[("production", "api", "acme/api:1.0.1", &[])]);
    let snap = r.scratch().join("baseline.json");
    let run =
        prodiff(r.path(), &["snapshot", "--inventory", inv.to_str().unwrap(), "-o", snap.to_str().unwrap()], None);
    run.expect_code(0);
    assert!(run.stderr.contains("wrote"), "{}", run.context);
    let run =
        prodiff(r.path(), &["check", "--inventory", inv.to_str().unwrap(), "--baseline", snap.to_str().unwrap()], None);
    run.expect_code(0);
    assert!(run.stdout.contains("No changes since the baseline"), "{}", run.context);

    // A second hotfix reaches production: new drift, caught, and the change is shown.
    r.commit("release/1.0", "SHOP-2 second hotfix", &[("c.txt", "fix")]);
    r.tag("v1.0.2", "release/1.0", false);
    let inv2 = inventory(r.scratch(), "b2.json", &[("production", "api", "acme/api:1.0.2", &[])]);
    let run = prodiff(
        r.path(),
        &["check", "--inventory", inv2.to_str().unwrap(), "--baseline", snap.to_str().unwrap()],
        None,
    );
    run.expect_code(1);
    assert!(run.stdout.contains("Changes since the baseline:"), "{}", run.context);
    assert!(run.stdout.contains("-production/api  acme/api:1.0.1"), "{}", run.context);
    assert!(run.stdout.contains("+production/api  acme/api:1.0.2"), "{}", run.context);
    assert!(run.stdout.contains("SHOP-2 second hotfix"), "{}", run.context);

    let bad = r.scratch().join("not-a-baseline.json");
    std::fs::write(&bad, "{}").unwrap();
    let run =
        prodiff(r.path(), &["check", "--inventory", inv.to_str().unwrap(), "--baseline", bad.to_str().unwrap()], None);
    run.expect_code(2);
    assert!(run.stderr.contains("is not a prodiff report: no schema_version"), "{}", run.context);
}

#[test]
fn every_format_renders_the_demo() {
    expect_file("check.expected.md", &run_demo(&["check", "--format", "markdown"], &[]).expect_code(1).stdout);
    let summary = tempfile::NamedTempFile::new().unwrap();
    let run = run_demo(&["check", "--format", "github"], &[("GITHUB_STEP_SUMMARY", summary.path().to_str().unwrap())]);
    run.expect_code(1);
    // The stop-commands token is random per run: the fixture holds a placeholder.
    let token = regex::Regex::new("prodiff-[0-9a-f]{32}").unwrap();
    assert_eq!(token.find_iter(&run.stdout).count(), 2, "{}", run.stdout);
    expect_file("check.expected.github", &token.replace_all(&run.stdout, "prodiff-TOKEN"));
    let md = std::fs::read_to_string(summary.path()).unwrap();
    assert!(md.starts_with("## prodiff check") && md.contains("❌ **Check failed**: 2 denied"), "{md}");
    expect_file("check.expected.junit.xml", &run_demo(&["check", "--format", "junit"], &[]).expect_code(1).stdout);
    let run = run_demo(&["plan", "production", "--to", "staging", "--format", "junit"], &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("use it with status, diff or check, not plan"), "{}", run.context);
    expect_file(
        "diff.expected.md",
        &run_demo(&["diff", "production", "--format", "markdown"], &[]).expect_code(1).stdout,
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let run = run_demo(&["status"], &[]);
    assert!(!run.stdout.contains('\x1b'), "no colour into a pipe");
    let run = run_demo(&["status", "--color", "always"], &[]);
    assert!(run.stdout.contains("\x1b[1;31mdeny \x1b[0m"), "{}", run.stdout);
}
