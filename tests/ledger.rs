//! The deployment ledger end to end: a deployment history driven through the real inventory
//! source and the Kubernetes source (a `kubectl` stand-in replaying pod lists, failing like
//! the real one for an unreachable cluster) across several `record` runs with `PRODIFF_NOW`
//! pinned: a normal deploy, a rollback, a hotfix, a partial rollout, an unreachable source
//! mid-history and a cherry-picked fix. The same history, with the same expected `log`,
//! `when` and `metrics` outputs, on SQLite and on a real PostgreSQL server.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::{prodiff_env, Run, TestRepo};
use crate::util_pg;

const REV: &str = "org.opencontainers.image.revision";
const IMAGE: &str = "registry.example.com/shop/api";

/// The repository: releases on main, a hotfix, and the fix cherry-picked onto 1.1.
fn history_repo() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "api: first release", &[("api/main.go", "v1\n")]);
    r.tag("v1.0.0", "HEAD", false);
    r.commit("main", "SHOP-101 api: faster checkout", &[("api/checkout.go", "fast\n")]);
    r.tag("v1.1.0", "HEAD", false);
    r.commit("main", "SHOP-102 api: new cart", &[("api/cart.go", "new\n")]);
    r.tag("v1.2.0", "HEAD", false);
    r.commit("main", "SHOP-103 api: bigger cart", &[("api/cart.go", "new\nbigger\n")]);
    r.tag("v1.3.0", "HEAD", false);
    r.commit("main", "SHOP-104 hotfix: crash on empty cart", &[("api/empty.go", "guard\n")]);
    r.tag("v1.3.1", "HEAD", false);
    r.branch("release-1.1", "v1.1.0");
    r.cherry_pick("release-1.1", "SHOP-104 hotfix: crash on empty cart", "pick SHOP-104");
    r.tag("v1.1.1", "pick SHOP-104", false);
    r
}

/// One replica in an inventory: (version, started_at).
type Replica<'a> = (&'a str, Option<&'a str>);

/// One `record` run: its time and what runs (staging, production, eu; eu `None` = the
/// cluster is unreachable).
struct Step<'a> {
    at: &'a str,
    staging: &'a [Replica<'a>],
    production: &'a [Replica<'a>],
    eu: Option<&'a [Replica<'a>]>,
    code: i32,
}

const STEPS: &[Step] = &[
    Step { at: "2026-01-05T10:00:00Z", staging: &[("1.0.0", None)], production: &[("1.0.0", None), ("1.0.0", None)], eu: Some(&[("1.0.0", None)]), code: 0 },
    // A normal deploy; production's replicas say when they started.
    Step { at: "2026-01-06T10:00:00Z", staging: &[("1.1.0", None)], production: &[("1.1.0", Some("2026-01-06T09:30:00Z")), ("1.1.0", Some("2026-01-06T09:32:00Z"))], eu: Some(&[("1.1.0", None)]), code: 0 },
    Step { at: "2026-01-07T10:00:00Z", staging: &[("1.2.0", None)], production: &[("1.2.0", None), ("1.2.0", None)], eu: Some(&[("1.1.0", None)]), code: 0 },
    // Production rolls back; eu cannot be seen (it moves to 1.2.0 meanwhile).
    Step { at: "2026-01-07T11:00:00Z", staging: &[("1.2.0", None)], production: &[("1.1.0", None), ("1.1.0", None)], eu: None, code: 3 },
    // A partial rollout of 1.3.0 in production; eu is back, on 1.2.0.
    Step { at: "2026-01-08T10:00:00Z", staging: &[("1.2.0", None)], production: &[("1.3.0", None), ("1.1.0", None)], eu: Some(&[("1.2.0", None)]), code: 0 },
    // The rollout completes.
    Step { at: "2026-01-08T10:30:00Z", staging: &[("1.2.0", None)], production: &[("1.3.0", None), ("1.3.0", None)], eu: Some(&[("1.2.0", None)]), code: 0 },
    // The hotfix reaches production (started at 10:50); eu gets the fix cherry-picked on 1.1.
    Step { at: "2026-01-08T11:00:00Z", staging: &[("1.2.0", None)], production: &[("1.3.1", Some("2026-01-08T10:50:00Z")), ("1.3.1", Some("2026-01-08T10:51:00Z"))], eu: Some(&[("1.1.1", None)]), code: 0 },
];

/// The last step's time: `now` for the reading commands.
const NOW: &str = "2026-01-08T11:00:00Z";

/// A history being recorded into one ledger.
pub struct History {
    pub repo: TestRepo,
    pub ledger: String,
    config: PathBuf,
    kubectl: PathBuf,
}

impl History {
    pub fn new(ledger: String) -> History {
        let repo = history_repo();
        let dir = repo.scratch().to_path_buf();
        let kubectl = dir.join("kubectl");
        let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubernetes/unreachable.stderr");
        std::fs::write(
            &kubectl,
            format!(
                "#!/bin/sh\nif [ -f {pods} ]; then cat {pods}; else cat {err} >&2; exit 1; fi\n",
                pods = dir.join("eu-pods.json").display(),
                err = recorded.display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&kubectl).status().unwrap();
        let config = dir.join("prodiff.toml");
        std::fs::write(
            &config,
            format!(
                "mainline = \"main\"\n\n[services.api]\nimage = \"{IMAGE}\"\n\n\
                 [environments.staging]\ninventory = [\"staging.json\"]\n\n\
                 [environments.production]\ninventory = [\"production.json\"]\n\n\
                 [environments.eu]\nkubernetes = [{{ context = \"eu\", namespace = \"shop\" }}]\n"
            ),
        )
        .unwrap();
        History { repo, ledger, config, kubectl }
    }

    /// Runs prodiff on this history's repository, config and ledger at `now`.
    pub fn prodiff(&self, args: &[&str], now: &str) -> Run {
        let mut all = vec!["--repo", self.repo.path().to_str().unwrap(), "--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        prodiff_env(
            self.repo.scratch(),
            &all,
            None,
            &[
                ("PRODIFF_NOW", now),
                ("PRODIFF_LEDGER", &self.ledger),
                ("PRODIFF_KUBECTL", self.kubectl.to_str().unwrap()),
            ],
        )
    }

    fn inventory(&self, name: &str, env: &str, replicas: &[Replica]) {
        let workloads: Vec<Value> = replicas
            .iter()
            .enumerate()
            .map(|(i, (version, started))| {
                let mut w = json!({
                    "environment": env, "service": "api", "image": format!("{IMAGE}:{version}"),
                    "labels": {REV: self.repo.rev(&format!("v{version}"))},
                    "instance": format!("{env}-{}/api", i + 1),
                });
                if let Some(t) = started {
                    w["started_at"] = json!(t);
                }
                w
            })
            .collect();
        let text = serde_json::to_string_pretty(&json!({ "workloads": workloads })).unwrap();
        std::fs::write(self.repo.scratch().join(name), text).unwrap();
    }

    fn pods(&self, replicas: Option<&[Replica]>) {
        let path = self.repo.scratch().join("eu-pods.json");
        let Some(replicas) = replicas else {
            let _ = std::fs::remove_file(&path);
            return;
        };
        let items: Vec<Value> = replicas
            .iter()
            .enumerate()
            .map(|(i, (version, started))| {
                let digest = format!("sha256:{}", version.replace('.', "").repeat(64)[..64].to_string());
                json!({
                    "metadata": {"name": format!("api-{i}"), "namespace": "shop", "labels": {"app.kubernetes.io/name": "api"}},
                    "spec": {"containers": [{"name": "api", "image": format!("{IMAGE}:{version}")}]},
                    "status": {"phase": "Running", "containerStatuses": [{
                        "name": "api", "image": format!("{IMAGE}:{version}"),
                        "imageID": format!("docker-pullable://{IMAGE}@{digest}"),
                        "ready": true, "state": {"running": {"startedAt": started}}
                    }]}
                })
            })
            .collect();
        std::fs::write(path, serde_json::to_string(&json!({"kind": "List", "items": items})).unwrap()).unwrap();
    }

    /// Writes what runs at `step` and records it.
    fn record(&self, step: &Step) -> Run {
        self.inventory("staging.json", "staging", step.staging);
        self.inventory("production.json", "production", step.production);
        self.pods(step.eu);
        let run = self.prodiff(&["record", "--offline"], step.at);
        run.expect_code(step.code);
        run
    }

    /// Records every step.
    pub fn record_all(&self) {
        for step in STEPS {
            self.record(step);
        }
    }
}

fn expected(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ledger").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares with a fixture, showing a diff (PRODIFF_BLESS=1 rewrites the fixture).
fn assert_expected(name: &str, actual: &str) {
    if std::env::var_os("PRODIFF_BLESS").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ledger").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let want = expected(name);
    if want != actual {
        let diff = similar::TextDiff::from_lines(want.as_str(), actual).unified_diff().header("expected", "actual").to_string();
        panic!("{name} differs:\n{diff}");
    }
}

/// The whole history and every answer, on one ledger.
fn the_history_answers(ledger: String) {
    let h = History::new(ledger);
    h.record_all();
    let log = h.prodiff(&["log"], NOW);
    log.expect_code(0);
    assert_expected("log.expected", &log.stdout);
    let prod = h.prodiff(&["log", "production", "--since", "2d", "--format", "markdown"], NOW);
    prod.expect_code(0);
    assert_expected("log-production-2d.expected.md", &prod.stdout);
    let when = h.prodiff(&["when", "SHOP-104"], NOW);
    when.expect_code(0);
    assert_expected("when-shop-104.expected", &when.stdout);
    let when = h.prodiff(&["when", &h.repo.rev("SHOP-102 api: new cart")], NOW);
    when.expect_code(0);
    assert_expected("when-shop-102.expected", &when.stdout.replace(&h.repo.rev("SHOP-102 api: new cart"), "SHOP-102-SHA"));
    let metrics = h.prodiff(&["metrics"], NOW);
    metrics.expect_code(0);
    assert_expected("metrics.expected", &metrics.stdout);
    let metrics = h.prodiff(&["metrics", "--env", "production", "--format", "json"], NOW);
    metrics.expect_code(0);
    assert_expected("metrics-production.expected.json", &metrics.stdout);
    let json = h.prodiff(&["log", "eu", "--format", "json"], NOW).json();
    let eu = json["deployments"].as_array().unwrap();
    // The 1.2.0 deploy happened while eu could not be seen: bounded by the last run that saw
    // 1.1.0 (10:00 on the 7th), not by the blind run at 11:00.
    let blind = eu.iter().find(|d| d["to"][0]["image"] == format!("{IMAGE}:1.2.0")).unwrap();
    assert_eq!((blind["after"].as_str(), blind["by"].as_str()), (Some("2026-01-07T10:00:00Z"), Some("2026-01-08T10:00:00Z")));
    assert_eq!(blind["exact"], Value::Null);
    // The commits shipped, compared with git itself.
    let shipped: Vec<&str> = blind["shipped"].as_array().unwrap().iter().map(|c| c["sha"].as_str().unwrap()).collect();
    assert_eq!(shipped, h.repo.rev_list(&["v1.2.0", "^v1.1.0"]));
}

#[test]
fn a_deployment_history_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_history_answers(dir.path().join("ledger.db").display().to_string());
}

#[test]
fn the_same_history_on_postgresql() {
    the_history_answers(util_pg::database("history"));
}
