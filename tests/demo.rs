//! The README's demo, end to end: the bundled repository, config and inventories give
//! exactly the expected outputs (fixtures/demo/*.expected; UPDATE_EXPECTED=1 rewrites them).

use std::path::{Path, PathBuf};

use crate::util::*;

pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

/// Builds the demo repository as `DIR/shop` and returns its path.
pub fn make_demo_repo(dir: &Path) -> PathBuf {
    let out =
        std::process::Command::new("bash").arg(demo_dir().join("make-repo.sh")).arg(dir.join("shop")).output().unwrap();
    assert!(out.status.success(), "make-repo.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    dir.join("shop")
}

fn demo_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    make_demo_repo(dir.path());
    dir
}

/// Compares with the expected file, showing a line diff when they differ.
pub fn expect_file(name: &str, actual: &str) {
    expect_fixture(&demo_dir().join(name), actual)
}

/// Compares `actual` with a file under fixtures/, showing a line diff when they differ.
pub fn expect_fixture(path: &Path, actual: &str) {
    let path = path.to_path_buf();
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected.as_str(), actual);
        panic!(
            "{} differs (UPDATE_EXPECTED=1 to accept):\n{}",
            path.display(),
            diff.unified_diff().header("expected", "actual")
        );
    }
}

/// Runs prodiff on a fresh demo repository, with the demo config unless `args` has one.
pub fn run_demo(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = demo_repo();
    let repo = dir.path().join("shop");
    let config = demo_dir().join("prodiff.toml");
    let mut all: Vec<&str> = args.to_vec();
    // The demo's registry.example.com does not exist: the demo is about git, not registries.
    all.extend(["--offline", "--repo", repo.to_str().unwrap()]);
    if !args.contains(&"--config") {
        all.extend(["--config", config.to_str().unwrap()]);
    }
    let mut run = prodiff_env(dir.path(), &all, None, env);
    // Paths differ per checkout; the rest must not.
    run.stdout =
        run.stdout.replace(repo.to_str().unwrap(), "<demo>").replace(demo_dir().to_str().unwrap(), "<fixtures>");
    run
}

#[test]
fn demo_status_answers_what_runs_where() {
    let run = run_demo(&["status"], &[]);
    run.expect_code(1);
    expect_file("status.expected", &run.stdout);
}

#[test]
fn demo_diff_lists_the_commits_both_ways() {
    let run = run_demo(&["diff", "production", "--service", "api"], &[]);
    run.expect_code(1);
    expect_file("diff-production-api.expected", &run.stdout);
}

#[test]
fn demo_json_is_stable() {
    let run = run_demo(&["status", "--format", "json"], &[]);
    run.expect_code(1);
    expect_file("status.expected.json", &run.stdout);
}

/// The fleet demo as fixtures/demo/fleet.sh runs it: shop and blog side by side, beside a
/// copy of fleet.toml and the inventories; paths replaced by `<demo>`.
fn run_fleet_demo(args: &[&str]) -> Run {
    let dir = demo_repo();
    let out = std::process::Command::new("bash")
        .arg(demo_dir().join("make-blog.sh"))
        .arg(dir.path().join("blog"))
        .output()
        .unwrap();
    assert!(out.status.success(), "make-blog.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    for f in ["fleet.toml", "staging.json", "production.json", "blog-staging.json", "blog-production.json"] {
        std::fs::copy(demo_dir().join(f), dir.path().join(f)).unwrap();
    }
    let config = dir.path().join("fleet.toml");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--offline", "--config", config.to_str().unwrap()]);
    let mut run = prodiff(dir.path(), &all, None);
    run.stdout = run.stdout.replace(dir.path().to_str().unwrap(), "<demo>");
    run
}

#[test]
fn demo_fleet_audits_two_repositories_in_one_run() {
    let run = run_fleet_demo(&["status"]);
    run.expect_code(1);
    expect_file("fleet-status.expected", &run.stdout);
    // The shop's rows are the one-repository demo's, word for word, but for their repository.
    let fleet = run_fleet_demo(&["status", "--format", "json"]).json();
    // Only the inventories' directory differs: the fleet reads copies beside fleet.toml.
    let single = std::fs::read_to_string(demo_dir().join("status.expected.json")).unwrap();
    let single: serde_json::Value = serde_json::from_str(&single.replace("<fixtures>", "<demo>")).unwrap();
    let shop: Vec<serde_json::Value> = fleet["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["repository"] == "shop")
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("repository");
            r
        })
        .collect();
    assert_eq!(&shop, single["results"].as_array().unwrap());
    assert_eq!(fleet["repositories"][1]["name"], "blog");
}
