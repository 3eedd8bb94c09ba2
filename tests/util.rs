//! Test scaffolding: git histories built from a compact spec with pinned identity and dates
//! (so SHAs are stable), and a command runner that shows stdout, stderr and cwd on failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A throwaway git repository whose commits get one-hour-apart pinned dates.
pub struct TestRepo {
    repo: PathBuf,
    dir: tempfile::TempDir,
    clock: std::cell::Cell<i64>,
    shas: std::cell::RefCell<HashMap<String, String>>,
}

/// 2026-01-01T00:00:00Z
const EPOCH: i64 = 1_767_225_600;

impl TestRepo {
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let r = TestRepo { repo, dir, clock: std::cell::Cell::new(EPOCH), shas: Default::default() };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    /// The repository (a subdirectory, so tests have a private scratch directory beside it).
    pub fn path(&self) -> &Path {
        &self.repo
    }

    /// A directory of the test's own for inventories and configs, outside the repository.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repository with pinned identity and the current pinned date.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(self.path(), args, self.clock.get())
    }

    /// Commits `files` (path, content) on `branch` (created from HEAD if missing) with
    /// `subject` as message; remembers the SHA under `subject`.
    pub fn commit(&self, branch: &str, subject: &str, files: &[(&str, &str)]) -> String {
        self.checkout(branch);
        for (path, content) in files {
            let p = self.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
            self.git(&["add", path]);
        }
        self.tick();
        self.git(&["commit", "-q", "--allow-empty", "-m", subject]);
        self.remember(subject)
    }

    /// Creates `branch` at `start` (a ref or remembered subject) without checking it out.
    pub fn branch(&self, branch: &str, start: &str) {
        let start = self.rev(start);
        self.git(&["branch", branch, &start]);
    }

    /// Merges `from` into `into` with a merge commit.
    pub fn merge(&self, into: &str, from: &str, subject: &str) -> String {
        self.checkout(into);
        self.tick();
        self.git(&["merge", "-q", "--no-ff", "-m", subject, from]);
        self.remember(subject)
    }

    /// Cherry-picks `what` onto `branch` with `-x` (adds the trailer); remembered as `subject`.
    pub fn cherry_pick(&self, branch: &str, what: &str, subject: &str) -> String {
        self.checkout(branch);
        self.tick();
        let sha = self.rev(what);
        self.git(&["cherry-pick", "-x", &sha]);
        self.remember(subject)
    }

    /// A lightweight tag, or an annotated one with `annotated`.
    pub fn tag(&self, name: &str, at: &str, annotated: bool) {
        let at = self.rev(at);
        self.tick();
        if annotated {
            self.git(&["tag", "-a", "-m", name, name, &at]);
        } else {
            self.git(&["tag", name, &at]);
        }
    }

    /// Moves an existing tag (force), as people do after a bad release.
    pub fn move_tag(&self, name: &str, to: &str) {
        let to = self.rev(to);
        self.git(&["tag", "-f", name, &to]);
    }

    /// The SHA of a remembered subject, or whatever git resolves.
    pub fn rev(&self, what: &str) -> String {
        if let Some(s) = self.shas.borrow().get(what) {
            return s.clone();
        }
        self.git(&["rev-parse", &format!("{what}^{{commit}}")]).trim().to_string()
    }

    /// `git rev-list ARGS` as a list of full SHAs, in git's order.
    pub fn rev_list(&self, args: &[&str]) -> Vec<String> {
        let mut a = vec!["rev-list"];
        a.extend_from_slice(args);
        self.git(&a).lines().map(str::to_string).collect()
    }

    fn checkout(&self, branch: &str) {
        let exists = Command::new("git")
            .args(["rev-parse", "--verify", "-q", &format!("refs/heads/{branch}")])
            .current_dir(self.path())
            .output()
            .unwrap()
            .status
            .success();
        let head_born = Command::new("git")
            .args(["rev-parse", "-q", "--verify", "HEAD"])
            .current_dir(self.path())
            .output()
            .unwrap()
            .status
            .success();
        if exists {
            self.git(&["checkout", "-q", branch]);
        } else if head_born {
            self.git(&["checkout", "-q", "-b", branch]);
        }
    }

    fn tick(&self) {
        self.clock.set(self.clock.get() + 3600);
    }

    fn remember(&self, subject: &str) -> String {
        let sha = self.git(&["rev-parse", "HEAD"]).trim().to_string();
        self.shas.borrow_mut().insert(subject.to_string(), sha.clone());
        sha
    }
}

/// git with a clean, pinned environment: no user config, fixed identity and date.
pub fn git_in(dir: &Path, args: &[&str], epoch: i64) -> String {
    let date = format!("@{epoch} +0000");
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?} failed in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The result of running prodiff.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub context: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.context))
    }

    /// Asserts the exit code, showing everything when it differs.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.context);
        self
    }
}

/// Runs the prodiff binary in `cwd` with `args`, feeding `stdin` if given.
pub fn prodiff(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    prodiff_env(cwd, args, stdin, &[])
}

/// `prodiff` with extra environment variables (and none of the caller's that change output).
pub fn prodiff_env(cwd: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prodiff"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("NO_COLOR")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("PRODIFF_NOW")
        .env_remove("PRODIFF_LEDGER");
    cmd.envs(env.iter().copied());
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("prodiff binary runs");
    if let Some(input) = stdin {
        // prodiff may exit (on a config error) before reading its input.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    let out: Output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!("cwd: {}\nargs: {args:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", cwd.display());
    Run { code: out.status.code().unwrap_or(-1), stdout, stderr, context }
}

/// Writes an inventory with one workload per (environment, service, image, labels).
/// (environment, service, image, labels)
pub type InventoryRow<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);

pub fn inventory(dir: &Path, name: &str, rows: &[InventoryRow]) -> PathBuf {
    let workloads: Vec<Value> = rows
        .iter()
        .map(|(env, service, image, labels)| {
            let labels: serde_json::Map<String, Value> =
                labels.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
            serde_json::json!({"environment": env, "service": service, "image": image, "labels": labels})
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&serde_json::json!({ "workloads": workloads })).unwrap())
        .unwrap();
    path
}

/// SHAs of a JSON commit array (`behind` or `ahead`).
pub fn shas(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|c| c["sha"].as_str().unwrap().to_string())
        .collect()
}

/// The finding codes of a JSON result row.
pub fn codes(row: &Value) -> Vec<String> {
    row["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_string()).collect()
}

/// The result row for an environment and service.
pub fn row<'a>(report: &'a Value, env: &str, service: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == env && r["service"] == service)
        .unwrap_or_else(|| panic!("no row {env}/{service} in {report:#}"))
}

/// The messages of the run-level findings with `code`.
pub fn messages<'a>(report: &'a Value, code: &str) -> Vec<&'a str> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| f["message"].as_str().unwrap())
        .collect()
}
