//! Publishing to GitHub end to end: the ledger history of `ledger.rs`, on a repository whose
//! commits name GitHub issues the ways GitHub repositories do (a merge commit `Merge pull
//! request #11 from …`, a squash merge `… (#12)`, `GH-13`, `shop/api#14`), recorded with
//! `[publish]` pointed at a local server that answers as GitHub's REST API does (its OpenAPI
//! description: 201 deployments with increasing ids, 202 `Auto-merged`, 401 `Bad
//! credentials`, 404 `Not Found`, 422 `Validation Failed` with `errors`, primary and
//! secondary rate limits). Asserts the exact requests, that a rerun sends nothing, that a
//! failed status is retried on the same deployment, the dry run, the token's redaction, and
//! for issues: a label per environment, a comment once, the label removed on rollback.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::ledger::History;
use crate::publish::{percent_decode, Answer, Seen, Server};
use crate::util::TestRepo;

const TOKEN: &str = "ghp_CanaryToken5h0uldNeverLeak0000";
const NOW: &str = "2026-01-08T11:00:00Z";
const REPO: &str = "shop/api";
const DOCS: &str = "https://docs.github.com/rest";

/// The history's repository: v1.1.0 is a pull request's merge commit, v1.2.0 a squash
/// merge, v1.3.0 names `GH-13`, the hotfix `shop/api#14`; release-1.1 picks the hotfix.
fn github_repo() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "api: first release", &[("api/main.go", "v1\n")]);
    r.tag("v1.0.0", "HEAD", false);
    r.branch("faster-checkout", "main");
    r.commit("faster-checkout", "api: faster checkout", &[("api/checkout.go", "fast\n")]);
    r.merge("main", "faster-checkout", "Merge pull request #11 from shop/faster-checkout");
    r.tag("v1.1.0", "HEAD", false);
    r.commit("main", "api: new cart (#12)", &[("api/cart.go", "new\n")]);
    r.tag("v1.2.0", "HEAD", false);
    r.commit("main", "api: bigger cart, closes GH-13", &[("api/cart.go", "new\nbigger\n")]);
    r.tag("v1.3.0", "HEAD", false);
    r.commit("main", "hotfix: crash on empty cart (shop/api#14)", &[("api/empty.go", "guard\n")]);
    r.tag("v1.3.1", "HEAD", false);
    r.branch("release-1.1", "v1.1.0");
    r.cherry_pick("release-1.1", "hotfix: crash on empty cart (shop/api#14)", "picked hotfix");
    r.tag("v1.1.1", "picked hotfix", false);
    r
}

/// What the fake GitHub holds.
#[derive(Default)]
struct GitHub {
    deployments: Vec<Value>,
    statuses: u64,
    labels: BTreeMap<u64, Vec<String>>,
    comments: Vec<(u64, String)>,
    /// Answers the next status requests get instead of a 201.
    fail_statuses: VecDeque<Answer>,
}

type Shared = Arc<Mutex<GitHub>>;

fn body(v: Value) -> String {
    v.to_string()
}

/// GitHub's `basic-error`.
fn error(status: u16, message: &str) -> Answer {
    (status, vec![], body(json!({"message": message, "documentation_url": DOCS, "status": status.to_string()})))
}

/// A 2xx with GitHub's rate-limit headers.
fn ok(status: u16, v: Value) -> Answer {
    let headers = vec![
        ("x-ratelimit-limit", "5000".to_string()),
        ("x-ratelimit-remaining", "4990".to_string()),
        ("x-ratelimit-reset", "1767870600".to_string()),
        ("x-github-api-version-selected", "2022-11-28".to_string()),
    ];
    (status, headers, body(v))
}

/// The route: GitHub's REST API for `REPO`, as its OpenAPI description answers.
fn answer(gh: &Shared, s: &Seen) -> Answer {
    if s.header("authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
        return error(401, "Bad credentials");
    }
    let Some(rest) = s.path.strip_prefix(&format!("/repos/{REPO}/")) else { return error(404, "Not Found") };
    let parts: Vec<&str> = rest.split('/').collect();
    let mut gh = gh.lock().unwrap();
    let request: Value = serde_json::from_str(&s.body).unwrap_or(Value::Null);
    match (s.method.as_str(), parts.as_slice()) {
        ("POST", ["deployments"]) => {
            let sha = request["ref"].as_str().unwrap_or("");
            if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                let errors = json!([{"resource": "Deployment", "code": "custom", "field": "ref",
                                     "message": format!("No ref found for: {sha}")}]);
                return (
                    422,
                    vec![],
                    body(json!({"message": "Validation Failed", "errors": errors, "documentation_url": DOCS})),
                );
            }
            let id = 1001 + gh.deployments.len() as u64;
            let deployment = json!({
                "url": format!("https://api.github.com/repos/{REPO}/deployments/{id}"), "id": id,
                "node_id": "MDEwOkRlcGxveW1lbnQx", "sha": sha, "ref": sha, "task": "deploy",
                "payload": request["payload"], "original_environment": request["environment"],
                "environment": request["environment"], "description": request["description"],
                "created_at": "2026-01-08T11:00:00Z", "updated_at": "2026-01-08T11:00:00Z",
                "statuses_url": format!("https://api.github.com/repos/{REPO}/deployments/{id}/statuses"),
                "repository_url": format!("https://api.github.com/repos/{REPO}"),
                "transient_environment": false, "production_environment": request["environment"] == "production",
            });
            gh.deployments.push(deployment.clone());
            ok(201, deployment)
        }
        ("POST", ["deployments", id, "statuses"]) => {
            if let Some(fail) = gh.fail_statuses.pop_front() {
                return fail;
            }
            let Some(d) = gh.deployments.iter().find(|d| d["id"].as_u64() == id.parse().ok()).cloned() else {
                return error(404, "Not Found");
            };
            gh.statuses += 1;
            ok(
                201,
                json!({"id": gh.statuses, "state": request["state"], "description": request["description"],
                           "environment": d["environment"], "environment_url": request["environment_url"],
                           "deployment_url": d["url"]}),
            )
        }
        ("POST", ["issues", n, "labels"]) => {
            let labels = gh.labels.entry(n.parse().unwrap()).or_default();
            for l in request["labels"].as_array().unwrap() {
                let l = l.as_str().unwrap().to_string();
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
            ok(
                200,
                json!(labels
                    .iter()
                    .map(|l| json!({"name": l, "color": "ededed", "default": false}))
                    .collect::<Vec<_>>()),
            )
        }
        ("DELETE", ["issues", n, "labels", name]) => {
            let labels = gh.labels.entry(n.parse().unwrap()).or_default();
            let name = percent_decode(name);
            if !labels.contains(&name) {
                return error(404, "Label does not exist");
            }
            labels.retain(|l| *l != name);
            ok(200, json!(labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>()))
        }
        ("POST", ["issues", n, "comments"]) => {
            gh.comments.push((n.parse().unwrap(), request["body"].as_str().unwrap().to_string()));
            ok(201, json!({"id": gh.comments.len(), "body": request["body"]}))
        }
        _ => error(404, "Not Found"),
    }
}

/// A server answering as GitHub does.
fn github() -> (Server, Shared) {
    let server = Server::start();
    let gh: Shared = Arc::default();
    let shared = gh.clone();
    server.route(move |s| Some(answer(&shared, s)));
    (server, gh)
}

fn deployments_config(server: &Server) -> String {
    format!(
        "\n[[publish.github_deployments]]\nrepository = \"{REPO}\"\napi_url = \"{}/\"\n\
         environments = {{ production = \"production\", eu = \"production-eu\" }}\n\
         environment_urls = {{ production = \"https://shop.example.com\" }}\n",
        server.url
    )
}

fn issues_config(server: &Server) -> String {
    format!(
        "\n[[publish.github_issues]]\nrepository = \"{REPO}\"\napi_url = \"{}\"\nenvironments = {{ production = \"production\" }}\n",
        server.url
    )
}

fn history(config: &str, record: bool) -> (History, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let h = History::with_repo(dir.path().join("ledger.db").to_str().unwrap().to_string(), github_repo());
    if record {
        h.record_all();
    }
    h.append_config(config);
    (h, dir)
}

fn env() -> [(&'static str, &'static str); 1] {
    [("GITHUB_TOKEN", TOKEN)]
}

fn publish(h: &History, args: &[&str], now: &str) -> crate::util::Run {
    let mut all = vec!["publish"];
    all.extend_from_slice(args);
    h.prodiff_with(&all, now, &env())
}

fn json_body(s: &Seen) -> Value {
    serde_json::from_str(&s.body).unwrap_or_else(|e| panic!("{e}: {}", s.body))
}

/// GitHub's headers on every request, the token as a bearer.
fn assert_headers(s: &Seen) {
    assert_eq!(s.header("accept"), Some("application/vnd.github+json"), "{s:?}");
    assert_eq!(s.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(s.header("x-github-api-version"), Some("2022-11-28"));
    assert!(s.header("user-agent").unwrap().starts_with("prodiff/"));
    let json = if s.body.is_empty() { None } else { Some("application/json") };
    assert_eq!(s.header("content-type"), json);
}

/// `1.2.0 (edcd8bc)` of tag `v1.2.0`.
fn label(h: &History, v: &str) -> String {
    format!("{v} ({})", &h.repo.rev(&format!("v{v}"))[..7])
}

/// One expected deployment: (event id, environment, version, kind, description, running, from, state).
struct Want<'a> {
    event: &'a str,
    environment: &'a str,
    version: &'a str,
    kind: &'a str,
    description: String,
    running: Vec<String>,
    from: Option<Vec<String>>,
    state: &'a str,
}

/// The history's deployments in production (as `production`) and eu (as `production-eu`),
/// oldest first; staging is not published.
fn wanted(h: &History) -> Vec<Want<'static>> {
    let l = |v: &str| label(h, v);
    let w =
        |event, environment, version, kind, description: String, running: Vec<String>, from: Option<Vec<String>>| {
            Want { event, environment, version, kind, description, running, from, state: "success" }
        };
    vec![
        w(
            "production/api/1767607200",
            "production",
            "1.0.0",
            "first-seen",
            format!("api {}: first seen running", l("1.0.0")),
            vec![l("1.0.0")],
            None,
        ),
        w(
            "eu/api/1767607200",
            "production-eu",
            "1.0.0",
            "first-seen",
            format!("api {}: first seen running", l("1.0.0")),
            vec![l("1.0.0")],
            None,
        ),
        w(
            "production/api/1767693600",
            "production",
            "1.1.0",
            "deploy",
            format!("api {}, from {}", l("1.1.0"), l("1.0.0")),
            vec![l("1.1.0")],
            Some(vec![l("1.0.0")]),
        ),
        w(
            "eu/api/1767693600",
            "production-eu",
            "1.1.0",
            "deploy",
            format!("api {}, from {}", l("1.1.0"), l("1.0.0")),
            vec![l("1.1.0")],
            Some(vec![l("1.0.0")]),
        ),
        w(
            "production/api/1767780000",
            "production",
            "1.2.0",
            "deploy",
            format!("api {}, from {}", l("1.2.0"), l("1.1.0")),
            vec![l("1.2.0")],
            Some(vec![l("1.1.0")]),
        ),
        w(
            "production/api/1767783600",
            "production",
            "1.1.0",
            "rollback",
            format!("api {}: rollback from {}", l("1.1.0"), l("1.2.0")),
            vec![l("1.1.0")],
            Some(vec![l("1.2.0")]),
        ),
        Want {
            state: "in_progress",
            ..w(
                "production/api/1767866400",
                "production",
                "1.3.0",
                "deploy",
                format!("api {}: partial rollout, beside {}", l("1.3.0"), l("1.1.0")),
                vec![l("1.1.0"), l("1.3.0")],
                Some(vec![l("1.1.0")]),
            )
        },
        w(
            "eu/api/1767866400",
            "production-eu",
            "1.2.0",
            "deploy",
            format!("api {}, from {}", l("1.2.0"), l("1.1.0")),
            vec![l("1.2.0")],
            Some(vec![l("1.1.0")]),
        ),
        w(
            "production/api/1767868200",
            "production",
            "1.3.0",
            "changed",
            format!("api {}, from {} + {}", l("1.3.0"), l("1.1.0"), l("1.3.0")),
            vec![l("1.3.0")],
            Some(vec![l("1.1.0"), l("1.3.0")]),
        ),
        w(
            "production/api/1767870000",
            "production",
            "1.3.1",
            "deploy",
            format!("api {}, from {}", l("1.3.1"), l("1.3.0")),
            vec![l("1.3.1")],
            Some(vec![l("1.3.0")]),
        ),
        w(
            "eu/api/1767870000",
            "production-eu",
            "1.1.1",
            "deploy",
            format!("api {}, from {}", l("1.1.1"), l("1.2.0")),
            vec![l("1.1.1")],
            Some(vec![l("1.2.0")]),
        ),
    ]
}

/// The two requests of deployment `id` for `w`: exact paths and bodies.
fn assert_deployment(h: &History, pair: &[Seen], id: u64, w: &Want) {
    let (d, s) = (&pair[0], &pair[1]);
    assert_headers(d);
    assert_headers(s);
    assert_eq!((d.method.as_str(), d.path.as_str()), ("POST", "/repos/shop/api/deployments"));
    let (environment, event) = (w.event.split('/').next().unwrap(), w.event);
    assert_eq!(
        json_body(d),
        json!({
            "ref": h.repo.rev(&format!("v{}", w.version)), "environment": w.environment,
            "auto_merge": false, "required_contexts": [], "description": w.description,
            "payload": {"prodiff": {"event": event, "kind": w.kind, "service": "api", "environment": environment,
                        "version": label(h, w.version), "running": w.running, "from": w.from}},
        }),
        "{event}"
    );
    assert_eq!(
        (s.method.as_str(), s.path.as_str()),
        ("POST", format!("/repos/shop/api/deployments/{id}/statuses").as_str())
    );
    let mut status = json!({"state": w.state, "description": w.description});
    if environment == "production" {
        status["environment_url"] = json!("https://shop.example.com");
    }
    assert_eq!(json_body(s), status, "{event}");
}

#[test]
fn record_creates_a_deployment_and_its_status_per_environment_change_once() {
    let (server, gh) = github();
    let dir = tempfile::tempdir().unwrap();
    let h = History::with_repo(dir.path().join("ledger.db").to_str().unwrap().to_string(), github_repo());
    h.append_config(&deployments_config(&server));
    h.record_all_with(&env());
    let seen = server.take();
    let want = wanted(&h);
    assert_eq!(seen.len(), 2 * want.len(), "{:#?}", seen.iter().map(|s| &s.path).collect::<Vec<_>>());
    for (i, (pair, w)) in seen.chunks(2).zip(&want).enumerate() {
        assert_deployment(&h, pair, 1001 + i as u64, w);
    }
    assert_eq!(gh.lock().unwrap().statuses, want.len() as u64);

    let again = publish(&h, &[], NOW);
    again.expect_code(0);
    assert_eq!(again.stdout, "published: 0 sent, 0 failed, 0 waiting\n");
    assert!(server.take().is_empty(), "a rerun sends nothing");
    // The ledger keeps each deployment's id, never the token.
    let mut store = prodiff::ledger::sqlite::Sqlite::open(&dir.path().join("ledger.db")).unwrap();
    use prodiff::ledger::Store as _;
    let mut states: Vec<String> =
        store.deliveries("github-deployments").unwrap().into_iter().map(|d| d.state).collect();
    states.sort();
    let ids: Vec<String> = (1001..1012).map(|id| format!(r#"{{"deployment":{id},"status":null}}"#)).collect();
    assert_eq!(states, ids);
    let ledger = std::fs::read(dir.path().join("ledger.db")).unwrap();
    assert!(!String::from_utf8_lossy(&ledger).contains(TOKEN));
}

/// The status of the first deployment fails (500, then GitHub's secondary rate limit); each
/// retry posts the status on the deployment already created, never a second deployment.
#[test]
fn a_failed_status_is_retried_on_the_same_deployment() {
    let (server, gh) = github();
    let (h, _dir) = history(&deployments_config(&server), true);
    gh.lock().unwrap().fail_statuses.push_back(error(500, "Server Error"));
    let first = publish(&h, &[], NOW);
    first.expect_code(3);
    assert_eq!(
        first.stdout,
        "published: 10 sent, 1 failed, 0 waiting\n  \
         failed: github-deployments production/api/1767607200: status: HTTP 500 Server Error\n"
    );
    assert_eq!(server.take().len(), 22);
    let secondary = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
    gh.lock().unwrap().fail_statuses.push_back((
        403,
        vec![("retry-after", "120".to_string())],
        body(json!({"message": secondary, "documentation_url": DOCS})),
    ));
    let limited = publish(&h, &[], "2026-01-08T11:01:00Z");
    limited.expect_code(3);
    assert_eq!(
        limited.stdout,
        format!("published: 0 sent, 1 failed, 0 waiting\n  failed: github-deployments production/api/1767607200: status: HTTP 403 {secondary}\n")
    );
    let retried = server.take();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].path, "/repos/shop/api/deployments/1001/statuses");
    // The secondary limit's Retry-After (120 s) holds it back, then the status goes to 1001.
    let early = publish(&h, &[], "2026-01-08T11:02:59Z");
    assert_eq!(early.stdout, "published: 0 sent, 0 failed, 1 waiting\n");
    assert!(server.take().is_empty());
    let done = publish(&h, &[], "2026-01-08T11:03:00Z");
    done.expect_code(0);
    assert_eq!(done.stdout, "published: 1 sent, 0 failed, 0 waiting\n");
    let last = server.take();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].path, "/repos/shop/api/deployments/1001/statuses");
    assert_eq!(gh.lock().unwrap().deployments.len(), 11, "no second deployment");
}

/// GitHub's refusals are failures with GitHub's message, retried later; the dry run shows
/// the deployment and its status with a placeholder for the id and sends nothing.
#[test]
fn githubs_refusals_are_failures_with_its_message() {
    let (server, _gh) = github();
    let (h, _dir) = history(&deployments_config(&server), true);
    let since = ["--since", "29m"];
    // The last 29 minutes: production's 1.3.1 (eu's is published too, as production-eu).
    let wrong = h.prodiff_with(&["publish", since[0], since[1]], NOW, &[("GITHUB_TOKEN", "ghp_wrongWrongWrong00")]);
    wrong.expect_code(3);
    assert!(
        wrong
            .stdout
            .contains("failed: github-deployments production/api/1767870000: deployment: HTTP 401 Bad credentials\n"),
        "{}",
        wrong.stdout
    );
    assert_eq!(server.take().len(), 2, "one deployment request per event, no status");
    let later = "2026-01-09T11:00:00Z";
    let validation = json!({"message": "Validation Failed", "documentation_url": DOCS, "errors": [
        {"resource": "Deployment", "code": "custom", "field": "ref", "message": "No ref found for: 7393d73"}]});
    server.script(vec![
        (422, vec![], body(validation)),
        (202, vec![], body(json!({"message": "Auto-merged main into topic-branch on deployment."}))),
    ]);
    let refused = publish(&h, &[], later);
    refused.expect_code(3);
    assert!(
        refused.stdout.contains("deployment: HTTP 422 Validation Failed: No ref found for: 7393d73\n"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains(
            "deployment: HTTP 202 without a deployment id: Auto-merged main into topic-branch on deployment.\n"
        ),
        "{}",
        refused.stdout
    );
    server.take();
    h.append_config(
        &deployments_config(&server)
            .replace("shop/api", "shop/gone")
            .replace("github_deployments]]", "github_deployments]]\nid = \"gone\""),
    );
    let missing = publish(&h, &since, NOW);
    missing.expect_code(3);
    assert!(
        missing.stdout.contains("failed: gone production/api/1767870000: deployment: HTTP 404 Not Found\n"),
        "{}",
        missing.stdout
    );
    assert!(!missing.stdout.contains(TOKEN) && !missing.stderr.contains(TOKEN));
}

#[test]
fn the_dry_run_prints_each_step_with_a_placeholder_for_the_deployment_id() {
    let (server, _gh) = github();
    let (h, _dir) = history(&deployments_config(&server), true);
    let dry = publish(&h, &["--dry-run", "--since", "29m"], NOW);
    dry.expect_code(0);
    assert!(server.take().is_empty(), "a dry run sends nothing");
    let blocks: Vec<&str> = dry.stdout.split("# github-deployments\n").filter(|b| !b.is_empty()).collect();
    assert_eq!(blocks.len(), 4, "{}", dry.stdout);
    let mut lines = blocks[1].lines();
    assert_eq!(
        lines.next(),
        Some(format!("POST {}/repos/shop/api/deployments/{{deployment id}}/statuses", server.url).as_str())
    );
    assert_eq!(lines.next(), Some("accept: application/vnd.github+json"));
    assert_eq!(lines.next(), Some("authorization: Bearer [redacted]"));
    assert!(lines.next().unwrap().starts_with("user-agent: prodiff/"));
    assert_eq!(lines.next(), Some("x-github-api-version: 2022-11-28"));
    assert_eq!(lines.next(), Some("content-type: application/json"));
    assert_eq!(lines.next(), Some(""));
    let status: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(status["state"], "success");
    assert!(blocks[0].starts_with(&format!("POST {}/repos/shop/api/deployments\n", server.url)));
    assert!(!dry.stdout.contains(TOKEN) && !dry.stderr.contains(TOKEN));
    // Nothing was stored: the real run sends all of them.
    let real = publish(&h, &[], NOW);
    assert_eq!(real.stdout, "published: 11 sent, 0 failed, 0 waiting\n");
}

/// The canary for the GitHub token: GitHub echoes it in an error; it is in no output, no
/// error, no dry run and not in the ledger, in any form.
#[test]
fn the_token_never_reaches_output_errors_or_the_ledger() {
    let (server, _gh) = github();
    let (h, dir) = history(&(deployments_config(&server) + &issues_config(&server)), true);
    let echo =
        body(json!({"message": format!("Problems parsing JSON near Bearer {TOKEN}"), "documentation_url": DOCS}));
    server.script(vec![(400, vec![], echo)]);
    let mut runs = vec![publish(&h, &[], NOW)];
    runs[0].expect_code(3);
    assert!(
        runs[0].stdout.contains("deployment: HTTP 400 Problems parsing JSON near Bearer [redacted]\n"),
        "{}",
        runs[0].stdout
    );
    let ledger = || {
        let mut bytes = std::fs::read(dir.path().join("ledger.db")).unwrap();
        bytes.extend(std::fs::read(dir.path().join("ledger.db-wal")).unwrap_or_default());
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let failed = ledger();
    assert!(failed.contains("Problems parsing JSON near Bearer [redacted]"), "the failure is stored, redacted");
    runs.push(h.prodiff_with(&["publish", "--dry-run"], NOW, &env()));
    runs.push(h.prodiff_with(&["publish", "-vv"], "2026-01-09T11:00:00Z", &env()));
    runs.push(h.prodiff_with(&["record", "--offline", "-vv"], "2026-01-09T11:00:00Z", &env()));
    assert!(runs[1].stdout.contains("authorization: Bearer [redacted]\n"));
    crate::publish::assert_no_secret(&[TOKEN], &runs, &[&failed, &ledger()]);
}

#[test]
fn github_config_errors_name_the_file_and_line() {
    let (server, _gh) = github();
    let (h, _dir) = history("", true);
    let lines = std::fs::read_to_string(h.repo.scratch().join("prodiff.toml")).unwrap().lines().count();
    h.append_config(&format!(
        "\n[[publish.github_deployments]]\napi_url = \"{}\"\nrepository = \"not-a-repository\"\n",
        server.url
    ));
    let bad = publish(&h, &[], NOW);
    bad.expect_code(2);
    let want = format!(
        "prodiff.toml:{}:14: publish.github_deployments[0].repository: \"not-a-repository\" is not OWNER/REPO",
        lines + 4
    );
    assert!(bad.stderr.contains(&want), "{want} in {}", bad.stderr);
}

#[test]
fn a_github_target_without_repository_takes_the_origin_remotes_or_says_to_set_one() {
    let (server, _gh) = github();
    let (h, _dir) = history(&format!("\n[[publish.github_deployments]]\napi_url = \"{}\"\n", server.url), true);
    let none = publish(&h, &["--since", "29m"], NOW);
    none.expect_code(2);
    assert!(
        none.stderr.contains("publish target github-deployments: no repository: set `repository = \"OWNER/REPO\"` in its [[publish.github_deployments]] table"),
        "{}",
        none.stderr
    );
    h.repo.git(&["remote", "add", "origin", "git@github.com:shop/api.git"]);
    let origin = publish(&h, &["--since", "29m"], NOW);
    origin.expect_code(0);
    // Every environment under its own name: staging is not in the last 29 minutes.
    assert_eq!(origin.stdout, "published: 2 sent, 0 failed, 0 waiting\n");
    let seen = server.take();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        [
            "/repos/shop/api/deployments",
            "/repos/shop/api/deployments/1001/statuses",
            "/repos/shop/api/deployments",
            "/repos/shop/api/deployments/1002/statuses",
        ]
    );
    assert_eq!(json_body(&seen[2])["environment"], "eu");
}

/// A state whose image resolves to no commit gets no deployment: acknowledged with the
/// reason, said once, never retried.
#[test]
fn an_unresolved_image_is_acknowledged_without_a_deployment() {
    let (server, _gh) = github();
    let (h, _dir) = history(&deployments_config(&server), true);
    let workloads = json!({"workloads": [{"environment": "production", "service": "api",
        "image": "registry.example.com/shop/api:nightly", "instance": "production-1/api"}]});
    std::fs::write(h.repo.scratch().join("production.json"), workloads.to_string()).unwrap();
    let record = h.prodiff_with(&["record", "--offline"], "2026-01-09T10:00:00Z", &env());
    // (An image without a commit leaves the audit incomplete; the state is recorded.)
    record.expect_code(3);
    let line = "  skipped: github-deployments production/api/1767952800: no deployment: no commit resolved for nightly (unresolved)\n";
    assert!(record.stdout.contains(line), "{}", record.stdout);
    let sent: Vec<String> = server.take().into_iter().map(|s| s.path).collect();
    assert_eq!(sent.len(), 22, "the history's 11 deployments, none for nightly: {sent:?}");
    let again = publish(&h, &[], "2026-01-09T11:00:00Z");
    assert_eq!(again.stdout, "published: 0 sent, 0 failed, 0 waiting\n");
}

/// Issues and pull requests: production's label on each one shipped, a comment the first
/// time only, the label removed by the rollback and put back by the next deploy.
#[test]
fn issues_get_the_environments_label_a_comment_once_and_lose_the_label_on_rollback() {
    let (server, gh) = github();
    let dir = tempfile::tempdir().unwrap();
    let h = History::with_repo(dir.path().join("ledger.db").to_str().unwrap().to_string(), github_repo());
    h.append_config(&issues_config(&server));
    h.record_all_with(&env());
    let seen = server.take();
    seen.iter().for_each(assert_headers);
    let label = json!({"labels": ["deployed:production"]});
    let comment = |n: u64, version: &str, at: &str, event: &str| {
        let body = format!(
            "Deployed to **production**: api {}, seen running {at} UTC.\n\n<sub>prodiff event {event}</sub>",
            version
        );
        (format!("POST /repos/shop/api/issues/{n}/comments"), json!({"body": body}))
    };
    let add = |n: u64| (format!("POST /repos/shop/api/issues/{n}/labels"), label.clone());
    let partial = format!("{} + {}", label_of(&h, "1.1.0"), label_of(&h, "1.3.0"));
    let want = vec![
        // 1.1.0 (the merge of pull request #11), first seen by the 10:00 run, started 09:30.
        add(11),
        comment(11, &label_of(&h, "1.1.0"), "2026-01-06 09:30", "production/api/1767693600"),
        add(12),
        comment(12, &label_of(&h, "1.2.0"), "2026-01-07 10:00", "production/api/1767780000"),
        // The rollback removes 1.2.0, and #12 with it.
        ("DELETE /repos/shop/api/issues/12/labels/deployed%3Aproduction".to_string(), Value::Null),
        // The partial rollout of 1.3.0 ships #12 again (no second comment) and GH-13.
        add(12),
        add(13),
        comment(13, &partial, "2026-01-08 10:00", "production/api/1767866400"),
        add(14),
        comment(14, &label_of(&h, "1.3.1"), "2026-01-08 10:50", "production/api/1767870000"),
    ];
    let got: Vec<(String, Value)> = seen
        .iter()
        .map(|s| (format!("{} {}", s.method, s.path), if s.body.is_empty() { Value::Null } else { json_body(s) }))
        .collect();
    assert_eq!(got, want);
    let gh = gh.lock().unwrap();
    let labels: Vec<(u64, &[String])> = gh.labels.iter().map(|(n, l)| (*n, l.as_slice())).collect();
    let prod = ["deployed:production".to_string()];
    assert_eq!(labels, [(11, &prod[..]), (12, &prod[..]), (13, &prod[..]), (14, &prod[..])]);
    assert_eq!(gh.comments.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [11, 12, 13, 14], "one comment per issue");
    drop(gh);
    let again = publish(&h, &[], NOW);
    assert_eq!(again.stdout, "published: 0 sent, 0 failed, 0 waiting\n");
    assert!(server.take().is_empty());
}

fn label_of(h: &History, v: &str) -> String {
    label(h, v)
}

/// GitHub's primary rate limit (403, none remaining) stops the issues target until the
/// reset; the label already added is not sent again, the comment comes after the reset.
#[test]
fn the_primary_rate_limit_holds_issues_back_until_its_reset() {
    let (server, _gh) = github();
    let (h, _dir) = history(&issues_config(&server), true);
    let reset = chrono::DateTime::parse_from_rfc3339("2026-01-08T11:05:00Z").unwrap().timestamp();
    let limit = (
        403,
        vec![("x-ratelimit-remaining", "0".to_string()), ("x-ratelimit-reset", reset.to_string())],
        body(json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS})),
    );
    // The first label goes through, the comment after it is refused.
    server.script(vec![(200, vec![], "[]".to_string()), limit]);
    let first = publish(&h, &[], NOW);
    first.expect_code(3);
    assert!(
        first.stdout.starts_with("published: 0 sent, 1 failed, 4 waiting\n  failed: github-issues production/api/1767693600: once:production/#11/comment: HTTP 403 API rate limit exceeded for user ID 1.\n"),
        "{}",
        first.stdout
    );
    assert_eq!(server.take().len(), 2);
    let early = publish(&h, &[], "2026-01-08T11:04:59Z");
    assert!(early.stdout.starts_with("published: 4 sent, 0 failed, 1 waiting\n"), "{}", early.stdout);
    server.take();
    let after = publish(&h, &[], "2026-01-08T11:05:00Z");
    assert_eq!(after.stdout, "published: 1 sent, 0 failed, 0 waiting\n");
    let rest = server.take();
    assert_eq!(rest.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["/repos/shop/api/issues/11/comments"]);
}

/// The dry run of the issues target: the comment once per issue across events there too.
#[test]
fn the_issues_dry_run_comments_once_per_issue() {
    let (server, _gh) = github();
    let (h, _dir) = history(&issues_config(&server), true);
    let dry = publish(&h, &["--dry-run"], NOW);
    dry.expect_code(0);
    assert!(server.take().is_empty());
    let requests: Vec<&str> =
        dry.stdout.lines().filter(|l| l.starts_with("POST ") || l.starts_with("DELETE ")).collect();
    let path = |p: &str| format!("{}/repos/shop/api/issues/{p}", server.url);
    assert_eq!(requests.iter().filter(|l| **l == format!("POST {}", path("12/comments"))).count(), 1, "{}", dry.stdout);
    assert_eq!(requests.iter().filter(|l| **l == format!("POST {}", path("12/labels"))).count(), 2);
    assert_eq!(
        requests.iter().filter(|l| **l == format!("DELETE {}", path("12/labels/deployed%3Aproduction"))).count(),
        1
    );
    assert_eq!(requests.len(), 10, "{}", dry.stdout);
}
