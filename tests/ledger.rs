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
    Step {
        at: "2026-01-05T10:00:00Z",
        staging: &[("1.0.0", None)],
        production: &[("1.0.0", None), ("1.0.0", None)],
        eu: Some(&[("1.0.0", None)]),
        code: 0,
    },
    // A normal deploy; production's replicas say when they started.
    Step {
        at: "2026-01-06T10:00:00Z",
        staging: &[("1.1.0", None)],
        production: &[("1.1.0", Some("2026-01-06T09:30:00Z")), ("1.1.0", Some("2026-01-06T09:32:00Z"))],
        eu: Some(&[("1.1.0", None)]),
        code: 0,
    },
    Step {
        at: "2026-01-07T10:00:00Z",
        staging: &[("1.2.0", None)],
        production: &[("1.2.0", None), ("1.2.0", None)],
        eu: Some(&[("1.1.0", None)]),
        code: 0,
    },
    // Production rolls back; eu cannot be seen (it moves to 1.2.0 meanwhile).
    Step {
        at: "2026-01-07T11:00:00Z",
        staging: &[("1.2.0", None)],
        production: &[("1.1.0", None), ("1.1.0", None)],
        eu: None,
        code: 3,
    },
    // A partial rollout of 1.3.0 in production; eu is back, on 1.2.0.
    Step {
        at: "2026-01-08T10:00:00Z",
        staging: &[("1.2.0", None)],
        production: &[("1.3.0", None), ("1.1.0", None)],
        eu: Some(&[("1.2.0", None)]),
        code: 0,
    },
    // The rollout completes.
    Step {
        at: "2026-01-08T10:30:00Z",
        staging: &[("1.2.0", None)],
        production: &[("1.3.0", None), ("1.3.0", None)],
        eu: Some(&[("1.2.0", None)]),
        code: 0,
    },
    // The hotfix reaches production (started at 10:50); eu gets the fix cherry-picked on 1.1.
    Step {
        at: "2026-01-08T11:00:00Z",
        staging: &[("1.2.0", None)],
        production: &[("1.3.1", Some("2026-01-08T10:50:00Z")), ("1.3.1", Some("2026-01-08T10:51:00Z"))],
        eu: Some(&[("1.1.1", None)]),
        code: 0,
    },
];

/// The last step's time: `now` for the reading commands.
const NOW: &str = "2026-01-08T11:00:00Z";

/// A prodiff run as owned data (`History::invocation`).
pub struct Invocation {
    cwd: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Invocation {
    pub fn run(&self) -> Run {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        prodiff_env(&self.cwd, &args, None, &env)
    }
}

/// A history being recorded into one ledger.
pub struct History {
    pub repo: TestRepo,
    pub ledger: String,
    config: PathBuf,
    kubectl: PathBuf,
}

impl History {
    pub fn new(ledger: String) -> History {
        History::with_repo(ledger, history_repo())
    }

    /// The same steps on another repository with the same tags (`v1.0.0` … `v1.3.1`, `v1.1.1`).
    pub fn with_repo(ledger: String, repo: TestRepo) -> History {
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

    /// Appends `text` to this history's prodiff.toml (publishing tests add `[publish]`).
    pub fn append_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        config.push_str(text);
        std::fs::write(&self.config, config).unwrap();
    }

    /// Runs prodiff on this history's repository, config and ledger at `now`, with `env` added.
    pub fn prodiff_with(&self, args: &[&str], now: &str, env: &[(&str, &str)]) -> Run {
        self.invocation(args, now, env).run()
    }

    /// The same run as owned data, to be started from another thread.
    pub fn invocation(&self, args: &[&str], now: &str, env: &[(&str, &str)]) -> Invocation {
        let mut all = vec!["--repo", self.repo.path().to_str().unwrap(), "--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut vars = vec![
            ("PRODIFF_NOW", now),
            ("PRODIFF_LEDGER", self.ledger.as_str()),
            ("PRODIFF_KUBECTL", self.kubectl.to_str().unwrap()),
        ];
        vars.extend_from_slice(env);
        Invocation {
            cwd: self.repo.scratch().to_path_buf(),
            args: all.iter().map(|s| s.to_string()).collect(),
            env: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
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
                let digest = format!("sha256:{}", &version.replace('.', "").repeat(64)[..64]);
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
        self.record_with(step, &[])
    }

    fn record_with(&self, step: &Step, env: &[(&str, &str)]) -> Run {
        self.inventory("staging.json", "staging", step.staging);
        self.inventory("production.json", "production", step.production);
        self.pods(step.eu);
        let run = self.prodiff_with(&["record", "--offline"], step.at, env);
        run.expect_code(step.code);
        run
    }

    /// Writes what runs at `step` and records it into another ledger.
    fn record_into(&self, step: &Step, ledger: &str) -> Run {
        self.inventory("staging.json", "staging", step.staging);
        self.inventory("production.json", "production", step.production);
        self.pods(step.eu);
        let run = self.prodiff(&["record", "--offline", "--ledger", ledger], step.at);
        run.expect_code(step.code);
        run
    }

    /// Records every step.
    pub fn record_all(&self) {
        self.record_all_with(&[]);
    }

    /// Records every step with `env` added to prodiff's environment.
    pub fn record_all_with(&self, env: &[(&str, &str)]) {
        for step in STEPS {
            self.record_with(step, env);
        }
    }
}

/// Compares with fixtures/ledger/NAME (UPDATE_EXPECTED=1 rewrites it).
fn assert_expected(name: &str, actual: &str) {
    crate::demo::expect_fixture(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ledger").join(name), actual);
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
    assert_expected(
        "when-shop-102.expected",
        &when.stdout.replace(&h.repo.rev("SHOP-102 api: new cart"), "SHOP-102-SHA"),
    );
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
    assert_eq!(
        (blind["after"].as_str(), blind["by"].as_str()),
        (Some("2026-01-07T10:00:00Z"), Some("2026-01-08T10:00:00Z"))
    );
    assert_eq!(blind["exact"], Value::Null);
    // The commits shipped, compared with git itself.
    let shipped: Vec<&str> = blind["shipped"].as_array().unwrap().iter().map(|c| c["sha"].as_str().unwrap()).collect();
    assert_eq!(shipped, h.repo.rev_list(&["v1.2.0", "^v1.1.0"]));
    // `status` shows how long each state has run, from the ledger.
    let status = h.prodiff(&["status", "--offline", "--format", "json"], "2026-01-08T12:00:00Z").json();
    let deployed = |env: &str| crate::util::row(&status, env, "api")["deployed"].clone();
    assert_eq!(deployed("production")["exact"], "2026-01-08T10:50:00Z");
    assert_eq!(deployed("production")["age"], "1h 10m ago");
    assert_eq!(deployed("eu")["age"], "1h–1h 30m ago");
    assert_eq!(deployed("staging")["age"], "1d 2h–2d 2h ago");
    let table = h.prodiff(&["status", "--offline"], "2026-01-08T12:00:00Z");
    let header = table.stdout.lines().find(|l| l.starts_with("ENVIRONMENT")).unwrap().to_string();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns[..6], ["ENVIRONMENT", "SERVICE", "IMAGE", "N", "DEPLOYED", "COMMIT"], "{}", table.context);
    assert!(table.stdout.contains("  1d 2h–2d 2h ago  "), "{}", table.context);
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

/// The ledger's heartbeats, read through the library (both engines).
fn heartbeats(ledger: &str) -> Vec<prodiff::ledger::Heartbeat> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _entered = rt.enter();
    let mut store = prodiff::ledger::Location::parse(ledger).open().unwrap();
    store.heartbeats(i64::MIN).unwrap()
}

/// Four recorders at once (CI jobs racing, their clocks a minute apart, committing in any
/// order): one deployment event per service, bounded by the earliest run that saw it, and
/// every heartbeat kept.
fn concurrent_recorders(ledger: String) {
    let h = History::new(ledger);
    h.record(&STEPS[0]);
    h.inventory("staging.json", "staging", STEPS[1].staging);
    h.inventory("production.json", "production", STEPS[1].production);
    h.pods(STEPS[1].eu);
    let times = ["2026-01-06T10:03:00Z", "2026-01-06T10:00:00Z", "2026-01-06T10:02:00Z", "2026-01-06T10:01:00Z"];
    let children: Vec<_> = times
        .iter()
        .map(|t| {
            std::process::Command::new(env!("CARGO_BIN_EXE_prodiff"))
                .args(["--repo", h.repo.path().to_str().unwrap(), "--config", h.config.to_str().unwrap()])
                .args(["record", "--offline"])
                .env("PRODIFF_NOW", t)
                .env("PRODIFF_LEDGER", &h.ledger)
                .env("PRODIFF_KUBECTL", &h.kubectl)
                // Each waits 200 ms between reading a service's state and writing it: without
                // the writer lock they would interleave there (and duplicate the events).
                .env("PRODIFF_LEDGER_HOLD_MS", "200")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a recorder failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let log = h.prodiff(&["log", "--since", "1d", "--format", "json"], "2026-01-06T12:00:00Z").json();
    let mut events: Vec<(String, String, String, String)> = log["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("-").to_string();
            (s("environment"), s("kind"), s("after"), s("by"))
        })
        .collect();
    events.sort();
    let deploy = |env: &str| {
        (env.to_string(), "deploy".to_string(), STEPS[0].at.to_string(), "2026-01-06T10:00:00Z".to_string())
    };
    assert_eq!(events, vec![deploy("eu"), deploy("production"), deploy("staging")]);
    let beats = heartbeats(&h.ledger);
    assert_eq!(beats.len(), 5, "{beats:?}");
    assert!(beats.iter().all(|b| b.complete && b.failed.is_empty()), "{beats:?}");
}

#[test]
fn concurrent_recorders_on_sqlite_neither_lose_nor_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_recorders(dir.path().join("ledger.db").display().to_string());
}

#[test]
fn concurrent_recorders_on_postgresql_neither_lose_nor_duplicate() {
    concurrent_recorders(util_pg::database("concurrent"));
}

/// After the history: production rolls the hotfix back.
const LATER: Step = Step {
    at: "2026-01-08T12:00:00Z",
    staging: &[("1.2.0", None)],
    production: &[("1.3.0", None), ("1.3.0", None)],
    eu: Some(&[("1.1.1", None)]),
    code: 0,
};

/// A version-1 ledger (the first released schema) holding the whole recorded history is
/// upgraded in place by the next command, every later migration's backfill included: `log`,
/// `when` and `metrics` answer exactly as on a ledger recorded at the current version, and
/// it goes on recording the same way.
fn upgrades_from_v1(v1: String, modern: String) {
    let h = History::new(v1.clone());
    for step in STEPS {
        h.record_into(step, &modern);
    }
    copy_as_v1(&modern, &v1);
    let shop_102 = h.repo.rev("SHOP-102 api: new cart");
    let questions: [&[&str]; 6] = [
        &["log"],
        &["when", "SHOP-104"],
        &["when", &shop_102],
        &["metrics"],
        &["metrics", "--env", "production", "--format", "json"],
        &["log", "eu", "--format", "json"],
    ];
    let answers = |ledger: &str, now: &str| -> Vec<String> {
        questions
            .iter()
            .map(|q| {
                let run = h.prodiff(&[q, &["--ledger", ledger][..]].concat(), now);
                run.expect_code(0);
                run.stdout
            })
            .collect()
    };
    let upgraded = answers(&v1, NOW);
    {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let _entered = rt.enter();
        let mut store = prodiff::ledger::Location::parse(&v1).open().unwrap();
        assert_eq!(store.version().unwrap(), prodiff::ledger::schema::current());
        assert!(prodiff::ledger::schema::current() > 1);
        // Where `when TICKET` looks: every commit that ran, as the fresh ledger has them.
        let mut ran = store.running_commits().unwrap();
        let mut fresh = prodiff::ledger::Location::parse(&modern).open().unwrap().running_commits().unwrap();
        ran.sort();
        fresh.sort();
        assert_eq!(ran, fresh);
        assert!(ran.contains(&h.repo.rev("v1.1.1")), "{ran:?}");
    }
    let fresh = answers(&modern, NOW);
    for (q, (u, f)) in questions.iter().zip(upgraded.iter().zip(&fresh)) {
        assert_eq!(u, f, "prodiff {q:?} on the upgraded ledger");
    }
    assert!(fresh[3].contains("deployment frequency"), "{}", fresh[3]);
    h.record(&LATER);
    h.record_into(&LATER, &modern);
    assert_eq!(answers(&v1, LATER.at), answers(&modern, LATER.at));
}

/// How version 1 wrote a span.
const V1_INSERT_SPAN: &str = "INSERT INTO spans (environment, service, state_key, first_seen, last_seen, prev_seen, \
     started_at, parts, change) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (environment, service, first_seen) DO NOTHING";

/// Writes the spans and heartbeats of `from` into a new version-1 ledger at `to`, with the
/// statements of schema version 1.
fn copy_as_v1(from: &str, to: &str) {
    use prodiff::ledger::{schema, Location};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _entered = rt.enter();
    let mut source = Location::parse(from).open().unwrap();
    let spans = source.spans(&Default::default()).unwrap();
    let beats = source.heartbeats(i64::MIN).unwrap();
    let json = |s: &prodiff::ledger::Span| {
        (serde_json::to_string(&s.parts).unwrap(), serde_json::to_string(&s.change).unwrap())
    };
    match Location::parse(to) {
        Location::Sqlite(p) => {
            let mut v1 = prodiff::ledger::sqlite::Sqlite::open_at(&p, 1).unwrap();
            assert_eq!(prodiff::ledger::Store::version(&mut v1).unwrap(), 1);
            drop(v1);
            let conn = rusqlite::Connection::open(&p).unwrap();
            for s in spans.iter().rev() {
                let (parts, change) = json(s);
                let values = rusqlite::params![
                    s.environment,
                    s.service,
                    s.key,
                    s.first_seen,
                    s.last_seen,
                    s.prev_seen,
                    s.started_at,
                    parts,
                    change
                ];
                conn.execute(V1_INSERT_SPAN, values).unwrap();
            }
            for b in &beats {
                let failed = serde_json::to_string(&b.failed).unwrap();
                conn.execute(schema::INSERT_HEARTBEAT, rusqlite::params![b.at, b.complete as i64, failed, b.origin])
                    .unwrap();
            }
        }
        Location::Postgres(u) => {
            let mut v1 = prodiff::ledger::postgres::Postgres::open_at(&u, 1).unwrap();
            assert_eq!(prodiff::ledger::Store::version(&mut v1).unwrap(), 1);
            drop(v1);
            let (client, conn) = rt.block_on(tokio_postgres::connect(&u, tokio_postgres::NoTls)).unwrap();
            rt.spawn(conn);
            for s in spans.iter().rev() {
                let (parts, change) = json(s);
                let values: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
                    &s.environment,
                    &s.service,
                    &s.key,
                    &s.first_seen,
                    &s.last_seen,
                    &s.prev_seen,
                    &s.started_at,
                    &parts,
                    &change,
                ];
                rt.block_on(client.execute(V1_INSERT_SPAN, &values)).unwrap();
            }
            for b in &beats {
                let (failed, complete) = (serde_json::to_string(&b.failed).unwrap(), b.complete as i64);
                rt.block_on(client.execute(schema::INSERT_HEARTBEAT, &[&b.at, &complete, &failed, &b.origin])).unwrap();
            }
        }
    }
}

#[test]
fn a_v1_sqlite_ledger_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    upgrades_from_v1(path("v1.db"), path("modern.db"));
}

#[test]
fn a_v1_postgresql_ledger_is_upgraded() {
    upgrades_from_v1(util_pg::database("upgrade"), util_pg::database("modern"));
}

/// `record --import` of snapshots taken at each step writes the same ledger a live `record`
/// at each step does: the same log, byte for byte.
#[test]
fn importing_snapshots_backfills_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("imported.db").display().to_string());
    let mut files = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        h.inventory("staging.json", "staging", step.staging);
        h.inventory("production.json", "production", step.production);
        h.pods(step.eu);
        let path = dir.path().join(format!("snapshot-{i}.json"));
        h.prodiff(&["snapshot", "--offline", "-o", path.to_str().unwrap()], step.at).expect_code(0);
        files.push(path.display().to_string());
    }
    // Given in any order: placed by their time.
    files.reverse();
    let mut args = vec!["record", "--import"];
    args.extend(files.iter().map(String::as_str));
    let run = h.prodiff(&args, NOW);
    run.expect_code(3); // one of them was incomplete (eu unreachable)
    assert_eq!(run.stdout.lines().filter(|l| l.contains("(import ")).count(), STEPS.len(), "{}", run.context);
    let log = h.prodiff(&["log"], NOW);
    log.expect_code(0);
    assert_expected("log.expected", &log.stdout);
    // A snapshot written before snapshots carried their time cannot be placed: refused.
    let old = dir.path().join("old.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("observed_at");
    std::fs::write(&old, v.to_string()).unwrap();
    let run = h.prodiff(&["record", "--import", old.to_str().unwrap()], NOW);
    run.expect_code(2);
    assert!(run.stderr.contains("has no observed_at time"), "{}", run.context);
}

/// The PostgreSQL password never shows: not in what `record` prints, not in errors (a
/// wrong password, a missing database), not in `--help`.
#[test]
fn the_postgresql_password_never_shows() {
    let url = util_pg::database("secret");
    let h = History::new(url.clone());
    let run = h.record(&STEPS[0]);
    assert!(run.stdout.contains("into postgres://127.0.0.1:"), "{}", run.context);
    let wrong_pw = url.replace(util_pg::PASSWORD, "not-the-pw-Zq81");
    let missing_db = format!("{}_missing", url);
    for bad in [wrong_pw.as_str(), missing_db.as_str()] {
        let run = h.prodiff(&["log", "--ledger", bad], NOW);
        run.expect_code(2);
        assert!(run.stderr.contains("cannot connect to the ledger postgres://127.0.0.1:"), "{}", run.context);
        for secret in [util_pg::PASSWORD, "not-the-pw-Zq81"] {
            assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret), "{}", run.context);
        }
    }
    let help = h.prodiff(&["log", "--help"], NOW);
    assert!(!help.stdout.contains(util_pg::PASSWORD), "{}", help.stdout);
}

/// `watch` records cycle after cycle: a failing cycle (an inventory missing) is logged and
/// the loop goes on; SIGTERM stops it between cycles with exit 0.
#[test]
fn watch_records_in_a_loop_survives_a_failing_cycle_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("watch.db").display().to_string();
    let h = History::new(ledger.clone());
    h.inventory("staging.json", "staging", STEPS[0].staging);
    h.pods(STEPS[0].eu);
    // production.json is missing: the first cycle fails.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_prodiff"))
        .args(["--repo", h.repo.path().to_str().unwrap(), "--config", h.config.to_str().unwrap()])
        .args(["watch", "--every", "1s", "--offline"])
        .env("PRODIFF_LEDGER", &ledger)
        .env("PRODIFF_KUBECTL", &h.kubectl)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let mut wrote = false;
    loop {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "watch recorded too few cycles in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(300));
        if !wrote && Path::new(&ledger).exists() {
            h.inventory("production.json", "production", STEPS[0].production);
            wrote = true;
        }
        if Path::new(&ledger).exists() && heartbeats(&ledger).len() >= 2 {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("watch cycle 1 failed: ") && stderr.contains("production.json"), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    let beats = heartbeats(&ledger);
    assert!(beats.len() >= 2 && beats.iter().all(|b| b.complete && b.origin == "watch"), "{beats:?}");
    // The first successful cycle saw three services; later ones confirmed them.
    let log = h.prodiff(&["log", "--format", "json"], "2030-01-01T00:00:00Z").json();
    assert_eq!(log["deployments"].as_array().unwrap().len(), 3, "{log}");
}

/// `watch` with a webhook configured: each cycle publishes what it recorded, each event once,
/// and later cycles that record nothing new send nothing.
#[test]
fn watch_publishes_each_new_event_once() {
    let server = crate::publish::Server::start();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("watch.db").display().to_string();
    let h = History::new(ledger.clone());
    h.append_config(&format!("\n[[publish.webhook]]\nid = \"audit\"\nurl = \"{}/hooks/deploy\"\n", server.url));
    let step = |s: &Step| {
        h.inventory("staging.json", "staging", s.staging);
        h.inventory("production.json", "production", s.production);
        h.pods(s.eu);
    };
    step(&STEPS[0]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_prodiff"))
        .args(["--repo", h.repo.path().to_str().unwrap(), "--config", h.config.to_str().unwrap()])
        .args(["watch", "--every", "1s", "--offline"])
        .env("PRODIFF_LEDGER", &ledger)
        .env("PRODIFF_KUBECTL", &h.kubectl)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let wait_for = |seen: &mut Vec<crate::publish::Seen>, n: usize| {
        let start = std::time::Instant::now();
        while seen.len() < n {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "only {} of {n} requests in 60 s",
                seen.len()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
            seen.extend(server.take());
        }
    };
    // Three first sightings, then the deploy of 1.1.0 everywhere.
    wait_for(&mut seen, 3);
    step(&STEPS[1]);
    wait_for(&mut seen, 6);
    let beats = heartbeats(&ledger).len();
    while heartbeats(&ledger).len() < beats + 2 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    seen.extend(server.take());
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    seen.extend(server.take());
    let log = h.prodiff(&["log", "--format", "json"], "2030-01-01T00:00:00Z").json();
    let events = log["deployments"].as_array().unwrap();
    assert_eq!(events.len(), 6, "{log}");
    let mut keys: Vec<&str> = seen.iter().map(|s| s.header("idempotency-key").unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((seen.len(), keys.len()), (6, 6), "each event once, nothing more in later cycles: {keys:?}");
    let kinds: Vec<String> = seen
        .iter()
        .map(|s| serde_json::from_str::<Value>(&s.body).unwrap()["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["first-seen", "first-seen", "first-seen", "deploy", "deploy", "deploy"]);
}

/// The README's ledger demo (fixtures/demo/ledger.sh: five fleets recorded, then `log`,
/// `when SHOP-120` and `metrics`) answers exactly as the README shows, on both engines.
fn the_readme_demo(ledger: &str) {
    let out = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/ledger.sh"))
        .env("PRODIFF", env!("CARGO_BIN_EXE_prodiff"))
        .env("PRODIFF_LEDGER", ledger)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).replace(&crate::util_pg::redacted(ledger), "LEDGER");
    assert!(out.status.success(), "ledger.sh failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    crate::demo::expect_file("ledger.expected", &stdout);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&stdout.replace("into LEDGER", "into /tmp/tmp.x/ledger.db")),
        "the README shows another demo"
    );
}

#[test]
fn the_readme_ledger_demo_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_readme_demo(&dir.path().join("ledger.db").display().to_string());
}

#[test]
fn the_readme_ledger_demo_on_postgresql() {
    the_readme_demo(&util_pg::database("demo"));
}

/// `[ledger]` mistakes are configuration errors naming the file, line and key; reading a
/// ledger that is not there says how to make one.
#[test]
fn ledger_settings_are_checked_and_a_missing_ledger_says_what_to_do() {
    let h = History::new("/nonexistent/never.db".into());
    for (toml, want) in [
        ("[ledger]\nfix_window = \"soon\"\n", "prodiff.toml:2:14: ledger.fix_window: \"soon\" is not a duration"),
        ("[ledger]\nurl = \"mysql://db/x\"\n", "prodiff.toml:2:7: ledger.url: not a postgres:// URL"),
        ("[ledger]\nfix_pattern = \"(\"\n", "prodiff.toml:2:15: ledger.fix_pattern: invalid regular expression"),
        ("[ledger]\npaht = \"x.db\"\n", "prodiff.toml:2:1: unknown field `paht`"),
    ] {
        std::fs::write(&h.config, toml).unwrap();
        let run = h.prodiff(&["log"], NOW);
        run.expect_code(2);
        assert!(run.stderr.contains(want), "want {want:?}\n{}", run.context);
    }
    std::fs::write(&h.config, "").unwrap();
    let run = h.prodiff(&["metrics"], NOW);
    run.expect_code(2);
    assert!(run.stderr.contains("no ledger at /nonexistent/never.db: run `prodiff record` first"), "{}", run.context);
    let run = h.prodiff(&["log", "--since", "7"], NOW);
    run.expect_code(2);
}

/// `when` a ticket merged from a feature branch: the lead time from the commit counts the
/// branch's time, the lead time from the mainline starts at the merge (the first-parent
/// commit that brought it in), and the merge is named.
#[test]
fn when_measures_lead_time_from_the_commit_and_from_its_merge_into_the_mainline() {
    let r = TestRepo::new();
    let base = r.commit("main", "api: base", &[("api/a.go", "1\n")]);
    let feature = r.commit("feature", "SHOP-7 api: the feature", &[("api/f.go", "f\n")]);
    r.commit("main", "api: meanwhile", &[("api/b.go", "b\n")]);
    r.commit("main", "api: and more", &[("api/c.go", "c\n")]);
    let merge = r.merge("main", "feature", "Merge branch 'feature'");
    let ct = |sha: &str| r.git(&["log", "-1", "--format=%ct", sha]).trim().parse::<i64>().unwrap();
    let rfc = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (t1, t2) = (ct(&feature), ct(&merge));
    assert!(t2 - t1 >= 3 * 3600, "the merge comes hours after the commit");
    let config = r.scratch().join("prodiff.toml");
    std::fs::write(
        &config,
        format!("mainline = \"main\"\n[services.api]\nimage = \"{IMAGE}\"\n[environments.production]\ninventory = [\"production.json\"]\n"),
    )
    .unwrap();
    let ledger = r.scratch().join("ledger.db").display().to_string();
    let record = |sha: &str, started: i64, now: i64| {
        let w = json!({"workloads": [{"environment": "production", "service": "api", "image": format!("{IMAGE}:x"),
            "labels": {REV: sha}, "instance": "p-1/api", "started_at": rfc(started)}]});
        std::fs::write(r.scratch().join("production.json"), w.to_string()).unwrap();
        let args = ["--repo", r.path().to_str().unwrap(), "--config", config.to_str().unwrap(), "record", "--offline"];
        prodiff_env(r.scratch(), &args, None, &[("PRODIFF_NOW", &rfc(now)), ("PRODIFF_LEDGER", &ledger)])
            .expect_code(0);
    };
    record(&base, t2 - 7200, t2);
    record(&merge, t2 + 3600, t2 + 7200);
    let args = ["--repo", r.path().to_str().unwrap(), "--config", config.to_str().unwrap(), "when", "SHOP-7"];
    let env = [("PRODIFF_NOW", rfc(t2 + 7200)), ("PRODIFF_LEDGER", ledger.clone())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let json = prodiff_env(r.scratch(), &json_args, None, &env).json();
    assert_eq!(json["mainline"]["via"], merge.as_str(), "{json:#}");
    assert_eq!(json["mainline"]["at"], rfc(t2).as_str());
    let first = &json["answers"][0]["first"];
    assert_eq!(first["exact"], rfc(t2 + 3600).as_str());
    assert_eq!(first["lead_time_seconds"], t2 + 3600 - t1);
    assert_eq!(first["from_mainline_seconds"], 3600);
    let text = prodiff_env(r.scratch(), &args, None, &env);
    text.expect_code(0);
    assert!(
        text.stdout.contains(&format!(
            "From mainline: main had it at {} UTC ({})",
            &rfc(t2)[..16].replace('T', " "),
            &merge[..10]
        )),
        "{}",
        text.stdout
    );
}

/// One state of a service in `when_ledger`: first seen at, the commit of each image.
type State = (i64, Vec<Option<String>>);

/// A ledger for `when` to search: a dozen services of one environment over two months (the
/// commits are all on 2026-01-01, one an hour). Most run the asked commits within days, so
/// `when` reads every service's spans for a few days only, then the few left service by
/// service: one runs them only after a month of older states, one never does, one has the
/// fix as a cherry-pick on a release branch, one rolled back, one runs them on one image of
/// two, one ran them before its commit time (a skewed clock), one runs an unresolved image.
fn when_ledger() -> (TestRepo, Vec<(String, Vec<State>)>) {
    let r = TestRepo::new();
    let c: Vec<String> =
        (0..20).map(|i| r.commit("main", &format!("change {i}"), &[(&format!("f{i}"), "x\n")])).collect();
    r.branch("release", &c[5]);
    r.cherry_pick("release", "change 12", "pick 12");
    let pick = r.rev("pick 12");
    const DAY: i64 = 86_400;
    let day0 = 1_767_225_600 + DAY; // 2026-01-02
    let one = |s: &str| vec![Some(s.to_string())];
    let mut services: Vec<(String, Vec<State>)> = Vec::new();
    for k in 0..7 {
        // Early: forward through main, a state a day.
        services.push((
            format!("early{k}"),
            (0..6).map(|d| (day0 + d * DAY + k * 600, one(&c[12 + d as usize]))).collect(),
        ));
    }
    let mut late: Vec<State> = (0..30).map(|d| (day0 + d * DAY, one(&c[3 + (d as usize % 2)]))).collect();
    late.extend([(day0 + 45 * DAY, one(&c[16])), (day0 + 46 * DAY, one(&c[17]))]);
    services.push(("late".into(), late));
    services.push(("never".into(), (0..12).map(|d| (day0 + d * DAY, one(&c[1 + (d as usize % 2)]))).collect()));
    services.push(("picked".into(), vec![(day0, one(&c[5])), (day0 + DAY, one(&pick))]));
    services.push((
        "rolled-back".into(),
        vec![(day0, one(&c[10])), (day0 + DAY, one(&c[15])), (day0 + 2 * DAY, one(&c[10]))],
    ));
    services.push((
        "partly".into(),
        vec![(day0, one(&c[10])), (day0 + DAY, vec![Some(c[15].clone()), Some(c[10].clone())])],
    ));
    services.push(("skewed".into(), vec![(day0 - 10 * DAY, one(&c[19]))]));
    services.push(("unresolved".into(), vec![(day0, vec![None]), (day0 + DAY, vec![None, Some(c[13].clone())])]));
    (r, services)
}

/// The answers of `when` for each asked change equal those of reading every span of every
/// service from the commit time on (what `when` did before it read in windows and service by
/// service): the same first run (span, how), the same still-runs, on both engines.
fn when_reads_few_spans_yet_answers_as_reading_all(ledger: String) {
    use prodiff::history::contains::{self, PatchIds, Presence};
    use prodiff::ledger::{query, Change, Kind, Location, Part, Span};
    use prodiff::model::CommitId;
    let (r, services) = when_ledger();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _entered = rt.enter();
    let mut store = Location::parse(&ledger).open().unwrap();
    for (service, states) in &services {
        let mut prev: Option<i64> = None;
        for (at, commits) in states {
            let parts: Vec<Part> = commits
                .iter()
                .enumerate()
                .map(|(i, c)| Part {
                    image: format!("r.example.com/{service}:{i}"),
                    commit: c.clone(),
                    digests: vec![],
                    replicas: 1,
                    started_at: None,
                })
                .collect();
            let kind = if prev.is_some() { Kind::Deploy } else { Kind::FirstSeen };
            let change = Change { kind, from: None, shipped: vec![], removed: vec![], tickets: vec![] };
            let span = Span {
                id: None,
                environment: "prod".into(),
                service: service.clone(),
                key: prodiff::ledger::state_key(&parts),
                first_seen: *at,
                last_seen: at + 600,
                prev_seen: prev,
                started_at: None,
                parts,
                change,
            };
            assert!(store.insert_span(&span).unwrap());
            prev = Some(at + 600);
        }
    }
    let repo = prodiff::git::Repo::open(r.path()).unwrap();
    let all = store.spans(&Default::default()).unwrap();
    let asked: [&[&str]; 4] = [&["change 12"], &["change 15"], &["change 19"], &["change 12", "change 16"]];
    for subjects in asked {
        let wanted: Vec<CommitId> = subjects.iter().map(|s| CommitId(r.rev(s))).collect();
        let committed = wanted.iter().map(|c| repo.commit_info(c).unwrap().committed.timestamp()).max().unwrap();
        let answers = query::when(store.as_mut(), &repo, &wanted, committed, |_| Ok(true)).unwrap();
        // Every span, oldest first: the first of each service from a day before the commit.
        let mut pids = PatchIds::default();
        let mut runs = |part: &Part| -> Option<Option<CommitId>> {
            let running = CommitId(part.commit.clone()?);
            let mut picked = None;
            for w in &wanted {
                match contains::present(&repo, &mut pids, &running, w).unwrap() {
                    Presence::Deployed => {}
                    Presence::Equivalent(p) => picked = Some(p),
                    _ => return None,
                }
            }
            Some(picked)
        };
        let how = |picked: Option<CommitId>| match picked {
            None => "directly".to_string(),
            Some(p) => format!("as a cherry-pick ({})", p.short()),
        };
        for a in &answers {
            let mut mine: Vec<&Span> = all.iter().filter(|s| s.service == a.service).collect();
            mine.sort_by_key(|s| s.first_seen);
            let latest = mine.last().unwrap();
            let running: Vec<bool> = latest.parts.iter().map(|p| runs(p).is_some()).collect();
            let still = match running.iter().filter(|r| **r).count() {
                0 => "no",
                n if n == running.len() => "yes",
                _ => "partly",
            };
            let mut first = mine
                .iter()
                .filter(|s| s.first_seen >= committed - 86_400)
                .find_map(|s| s.parts.iter().find_map(&mut runs).map(|p| (s.first_seen, how(p))));
            if first.is_none() && still != "no" {
                first = latest.parts.iter().find_map(&mut runs).map(|p| (latest.first_seen, how(p)));
            }
            let got = a.first.as_ref().map(|f| (f.by, f.how.clone()));
            assert_eq!((got, a.still_runs), (first, still), "when {subjects:?}: {}/{}", a.environment, a.service);
        }
        assert_eq!(answers.len(), services.len());
    }
    // Every commit that ran, once (where `when TICKET` looks besides the mainline).
    let mut ran = store.running_commits().unwrap();
    ran.sort();
    let mut parts: Vec<String> = all.iter().flat_map(|s| s.parts.iter().filter_map(|p| p.commit.clone())).collect();
    parts.sort();
    parts.dedup();
    assert_eq!(ran, parts);
    // The cases are there: a late first run, a cherry-pick, a service that never ran it.
    let wanted = [CommitId(r.rev("change 12"))];
    let committed = repo.commit_info(&wanted[0]).unwrap().committed.timestamp();
    let answers = query::when(store.as_mut(), &repo, &wanted, committed, |_| Ok(true)).unwrap();
    let of = |s: &str| answers.iter().find(|a| a.service == s).unwrap();
    assert!(of("picked").first.as_ref().unwrap().how.starts_with("as a cherry-pick"), "{:?}", of("picked"));
    assert!(of("never").first.is_none());
    assert_eq!(of("late").first.as_ref().unwrap().by, services.iter().find(|s| s.0 == "late").unwrap().1[30].0);
}

#[test]
fn when_reads_few_spans_yet_answers_as_reading_all_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    when_reads_few_spans_yet_answers_as_reading_all(dir.path().join("ledger.db").display().to_string());
}

#[test]
fn when_reads_few_spans_yet_answers_as_reading_all_on_postgresql() {
    when_reads_few_spans_yet_answers_as_reading_all(util_pg::database("when"));
}
