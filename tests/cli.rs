//! The command line as a user meets it: zero-config runs, stdin, exit codes, and errors that
//! name the file, line and key at fault.

use crate::util::*;

fn linear() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.commit("main", "two", &[("a.txt", "2")]);
    r.tag("v1.0.0", "main", false);
    r
}

#[test]
fn zero_config_status_reads_the_inventory_from_stdin_and_exits_clean() {
    let r = linear();
    let inv = r#"{"workloads": [{"environment": "production", "image": "ghcr.io/acme/shop-api:1.0.0"}]}"#;
    let run = prodiff(r.path(), &["status", "--inventory", "-", "--format", "json"], Some(inv));
    run.expect_code(0);
    let report = run.json();
    let prod = row(&report, "production", "shop-api");
    assert_eq!(prod["commit"], r.rev("v1.0.0").as_str());
    assert_eq!(report["complete"], true);
    assert_eq!(report["mainline"]["name"], "main");
}

#[test]
fn the_mainline_falls_back_to_master_and_can_be_chosen() {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.git(&["branch", "-m", "main", "master"]);
    let inv = r#"{"workloads": [{"environment": "p", "image": "acme/api:1"}]}"#;
    let run = prodiff(r.path(), &["status", "--inventory", "-", "--format", "json"], Some(inv));
    assert_eq!(run.json()["mainline"]["name"], "master", "{}", run.context);
    let run = prodiff(r.path(), &["status", "--inventory", "-", "--mainline", "nope"], Some(inv));
    run.expect_code(2);
    assert!(run.stderr.contains("\"nope\" does not name a commit"), "{}", run.context);
}

#[test]
fn config_errors_name_the_file_line_and_key_and_exit_2() {
    let r = linear();
    std::fs::write(r.path().join("prodiff.toml"), "[services.api]\nimage = \"acme/api\"\nbranch = \"x\"\n").unwrap();
    let run = prodiff(r.path(), &["status", "--inventory", "-"], Some(r#"{"workloads": []}"#));
    run.expect_code(2);
    assert!(run.stderr.contains("prodiff.toml:3:1: unknown field `branch`"), "{}", run.context);

    std::fs::write(r.path().join("prodiff.toml"), "[tickets]\npatterns = [\"([A-Z]+\"]\n").unwrap();
    let run = prodiff(r.path(), &["status", "--inventory", "-"], Some(r#"{"workloads": []}"#));
    run.expect_code(2);
    assert!(run.stderr.contains("prodiff.toml:2:13: tickets.patterns: invalid regular expression"), "{}", run.context);

    let run = prodiff(r.path(), &["status", "--config", "/nonexistent/prodiff.toml"], None);
    run.expect_code(2);
    assert!(run.stderr.contains("cannot read /nonexistent/prodiff.toml"), "{}", run.context);
}

#[test]
fn inventory_errors_name_the_file_and_line_and_exit_2() {
    let r = linear();
    let inv = r.path().join("inv.json");
    std::fs::write(&inv, "{\"workloads\": [\n  {\"environment\": \"p\",\n   \"image\": \"acme/api:1\",\n   \"image_id\": \"sha256:123\"}]}").unwrap();
    let run = prodiff(r.path(), &["status", "--inventory", inv.to_str().unwrap()], None);
    run.expect_code(2);
    assert!(run.stderr.contains("inv.json:4:"), "{}", run.context);
    assert!(run.stderr.contains("a digest is `sha256:` followed by 64 hex digits"), "{}", run.context);

    let run = prodiff(r.path(), &["status", "--inventory", "missing.json"], None);
    run.expect_code(2);
    assert!(run.stderr.contains("cannot read missing.json"), "{}", run.context);
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let r = linear();
    let inv = r#"{"workloads": [{"environment": "production", "image": "acme/api:1.0.0"}]}"#;
    let run = prodiff(r.path(), &["diff", "prod", "--inventory", "-"], Some(inv));
    run.expect_code(2);
    assert!(
        run.stderr.contains("no workloads in environment \"prod\" (environments seen: production)"),
        "{}",
        run.context
    );
    let run = prodiff(r.path(), &["diff", "production", "--service", "web", "--inventory", "-"], Some(inv));
    run.expect_code(2);
    assert!(run.stderr.contains("no service \"web\""), "{}", run.context);
    // Zero-config with nothing to look at. A daemon of its own (none) keeps the Docker tests'
    // containers, whose revision labels can name this repository's pinned commits, out of it.
    let no_daemon = format!("unix://{}/no-docker.sock", r.scratch().display());
    let run = prodiff_env(r.path(), &["status"], None, &[("DOCKER_HOST", &no_daemon)]);
    run.expect_code(2);
    assert!(run.stderr.contains("nothing to audit"), "{}", run.context);
    let run = prodiff(r.path(), &["status", "--format", "yaml", "--inventory", "-"], Some(inv));
    run.expect_code(2);
    let not_a_repo = tempfile::tempdir().unwrap();
    let run = prodiff(not_a_repo.path(), &["status", "--inventory", "-"], Some(inv));
    run.expect_code(2);
    assert!(run.stderr.contains("cannot open a git repository"), "{}", run.context);
}

#[test]
fn a_closed_pipe_is_not_a_crash() {
    let r = linear();
    let rows: Vec<String> =
        (0..2000).map(|i| format!("{{\"environment\": \"e{i}\", \"image\": \"acme/api:1.0.0\"}}")).collect();
    let inv = r.path().join("big.json");
    std::fs::write(&inv, format!("{{\"workloads\": [{}]}}", rows.join(","))).unwrap();
    let script = format!(
        "set -o pipefail; {} status --inventory {} | head -c 10 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_prodiff"),
        inv.display()
    );
    let out = std::process::Command::new("bash").arg("-c").arg(&script).current_dir(r.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("status=0"), "{stdout}\n{stderr}");
}

#[test]
fn every_finding_code_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for code in prodiff::model::Code::ALL {
        let row = format!("| `{}` | {}", code.as_str(), code.default_level());
        assert!(readme.contains(&row), "README has no row starting {row:?}");
    }
}

#[test]
fn a_clone_uses_origin_head_as_the_mainline() {
    let upstream = linear();
    let clone = tempfile::tempdir().unwrap();
    git_in(clone.path(), &["clone", "-q", upstream.path().to_str().unwrap(), "c"], 0);
    let repo = clone.path().join("c");
    let inv = r#"{"workloads": [{"environment": "production", "image": "acme/api:1.0.0"}]}"#;
    let run = prodiff(&repo, &["status", "--inventory", "-", "--format", "json"], Some(inv));
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["mainline"]["name"], "origin/main");
    assert_eq!(report["mainline"]["commit"], upstream.rev("main").as_str());
}
