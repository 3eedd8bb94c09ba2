//! Publishing end to end: the ledger history of `ledger.rs` recorded with `[publish]`
//! pointed at a local HTTP server that answers like a webhook receiver (scripted statuses,
//! `Retry-After`) and records every request. Asserts the exact requests, that a rerun sends
//! nothing, that a failure is retried after its backoff, and that the dry run sends nothing.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::ledger::History;

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One scripted answer: status, extra headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);

/// Answers a request as a provider would (a fake of a SaaS API replaying its wire format),
/// or None to leave it to the script.
pub type Route = Box<dyn FnMut(&Seen) -> Option<Answer> + Send>;

/// A local HTTP/1.1 server on a free port: answers from the script in order while it has
/// answers, else from the route (a provider's fake), else 200 `ok`; closes each connection
/// after its answer.
pub struct Server {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<Vec<Answer>>>,
    route: Arc<Mutex<Option<Route>>>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_slow(std::time::Duration::ZERO)
    }

    /// A server that waits `delay` before each answer (to make two clients overlap).
    pub fn start_slow(delay: std::time::Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Mutex<Vec<Answer>>> = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Mutex<Option<Route>>> = Arc::new(Mutex::new(None));
        let (s, sc, r) = (seen.clone(), script.clone(), route.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                std::thread::sleep(delay);
                let _ = serve(stream, &s, &sc, &r);
            }
        });
        Server { url, seen, script, route }
    }

    /// Answers what the script does not with `route`.
    pub fn route(&self, route: impl FnMut(&Seen) -> Option<Answer> + Send + 'static) {
        *self.route.lock().unwrap() = Some(Box::new(route));
    }

    /// Queues answers for the next requests.
    pub fn script(&self, answers: Vec<Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// Every request so far, and forgets them.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn serve(
    stream: std::net::TcpStream,
    seen: &Mutex<Vec<Seen>>,
    script: &Mutex<Vec<Answer>>,
    route: &Mutex<Option<Route>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let request = Seen { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() };
    let scripted = {
        let mut s = script.lock().unwrap();
        (!s.is_empty()).then(|| s.remove(0))
    };
    let routed = || route.lock().unwrap().as_mut().and_then(|r| r(&request));
    let (status, extra, text) = scripted.or_else(routed).unwrap_or((200, vec![], "ok".to_string()));
    seen.lock().unwrap().push(request);
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", text.len());
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    out.write_all(format!("{head}\r\n{text}").as_bytes())?;
    out.flush()
}

/// `%XX` escapes decoded (the fakes read query strings and label names as providers do).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// No form of any of `secrets` (plain, base64, JSON-escaped, URL-encoded: `canary::forms`)
/// is in the runs' output or in any of the `stored` ledger contents.
pub fn assert_no_secret(secrets: &[&str], runs: &[crate::util::Run], stored: &[&str]) {
    for secret in secrets {
        for form in crate::canary::forms(secret) {
            for r in runs {
                assert!(
                    !r.stdout.contains(&form) && !r.stderr.contains(&form),
                    "{form:?} leaked:\n{}\n{}",
                    r.stdout,
                    r.stderr
                );
            }
            assert!(!stored.iter().any(|s| s.contains(&form)), "{form:?} is in the ledger");
        }
    }
}

const SECRET: &str = "whsec-canary-7f3a9c1e55";
const NOW: &str = "2026-01-08T11:00:00Z";
/// The history's deployment events (fixtures/ledger/log.expected has 14 rows).
const EVENTS: usize = 14;

fn history(server: &Server) -> (History, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    h.append_config(&format!(
        "\n[[publish.webhook]]\nid = \"audit\"\nurl = \"{}/hooks/deploy\"\nsecret_env = \"HOOK_SECRET\"\n",
        server.url
    ));
    (h, dir)
}

#[test]
fn record_publishes_each_event_once_signed_and_a_rerun_sends_nothing() {
    let server = Server::start();
    let (h, dir) = history(&server);
    h.record_all_with(&[("HOOK_SECRET", SECRET)]);
    let seen = server.take();
    assert_eq!(seen.len(), EVENTS, "{seen:#?}");
    let mut ids: Vec<&str> = seen.iter().map(|s| s.header("idempotency-key").unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS, "every event once: {ids:?}");
    for s in &seen {
        assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/hooks/deploy"));
        assert_eq!(s.header("content-type"), Some("application/json"));
        let sig = prodiff::publish::hmac::sha256_hex(SECRET.as_bytes(), s.body.as_bytes());
        assert_eq!(s.header("x-prodiff-signature-256"), Some(format!("sha256={sig}").as_str()));
        let body: Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(body["id"].as_str(), s.header("idempotency-key"));
    }
    // The production rollback (first seen at the 11:00 run on the 7th), exactly.
    let rollback = seen.iter().find(|s| s.header("idempotency-key") == Some("production/api/1767783600")).unwrap();
    let body: Value = serde_json::from_str(&rollback.body).unwrap();
    let part = |v: &str| {
        json!({"image": format!("registry.example.com/shop/api:{v}"), "commit": h.repo.rev(&format!("v{v}")),
               "digests": [], "replicas": 2, "started_at": null})
    };
    let removed = body["removed"].clone();
    assert_eq!(
        body,
        json!({
            "version": 1, "id": "production/api/1767783600", "environment": "production", "service": "api",
            "kind": "rollback", "at": "2026-01-07T11:00:00Z", "first_seen": "2026-01-07T11:00:00Z",
            "prev_seen": "2026-01-07T10:00:00Z", "from": [part("1.2.0")], "to": [part("1.1.0")],
            "shipped": [], "removed": removed, "tickets": [],
        })
    );
    assert_eq!(removed[0]["sha"].as_str(), Some(h.repo.rev("SHOP-102 api: new cart").as_str()));

    let again = h.prodiff_with(&["publish"], NOW, &[("HOOK_SECRET", SECRET)]);
    again.expect_code(0);
    assert_eq!(again.stdout, "published: 0 sent, 0 failed, 0 waiting\n");
    assert!(server.take().is_empty(), "a rerun sends nothing");
    let ledger = std::fs::read(dir.path().join("ledger.db")).unwrap();
    assert!(!String::from_utf8_lossy(&ledger).contains(SECRET));
}

/// The history recorded without `[publish]`, then the webhook configured.
fn history_unpublished(server: &Server) -> (History, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (history_unpublished_in(server, dir.path().join("ledger.db").to_str().unwrap().to_string()), dir)
}

/// The same, in the ledger `ledger` (a file or a postgres URL).
fn history_unpublished_in(server: &Server, ledger: String) -> History {
    let h = History::new(ledger);
    h.record_all();
    h.append_config(&format!(
        "\n[[publish.webhook]]\nid = \"audit\"\nurl = \"{}/hooks/deploy\"\nsecret_env = \"HOOK_SECRET\"\n",
        server.url
    ));
    h
}

fn publish(h: &History, args: &[&str], now: &str) -> crate::util::Run {
    let mut all = vec!["publish"];
    all.extend_from_slice(args);
    h.prodiff_with(&all, now, &[("HOOK_SECRET", SECRET)])
}

#[test]
fn a_failed_send_is_retried_after_its_backoff() {
    let server = Server::start();
    let (h, _dir) = history_unpublished(&server);
    retried_after_backoff(&server, &h);
}

#[test]
fn a_failed_send_is_retried_after_its_backoff_postgres() {
    let server = Server::start();
    let h = history_unpublished_in(&server, crate::util_pg::database("publish"));
    retried_after_backoff(&server, &h);
}

/// One failure (500) among the events; the rest go out, the failed one after its minute.
fn retried_after_backoff(server: &Server, h: &History) {
    server.script(vec![(500, vec![], "{\"error\":\"down\"}".into())]);
    let first = publish(h, &[], NOW);
    first.expect_code(3);
    let failed = server.take();
    assert_eq!(failed.len(), EVENTS);
    let key = failed[0].header("idempotency-key").unwrap().to_string();
    assert_eq!(
        first.stdout,
        format!("published: 13 sent, 1 failed, 0 waiting\n  failed: audit {key}: HTTP 500 {{\"error\":\"down\"}}\n")
    );
    // Within the minute's backoff: nothing is sent.
    let waiting = publish(h, &[], "2026-01-08T11:00:59Z");
    waiting.expect_code(0);
    assert_eq!(waiting.stdout, "published: 0 sent, 0 failed, 1 waiting\n");
    assert!(server.take().is_empty());
    let retried = publish(h, &[], "2026-01-08T11:01:00Z");
    retried.expect_code(0);
    assert_eq!(retried.stdout, "published: 1 sent, 0 failed, 0 waiting\n");
    let again = server.take();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].header("idempotency-key"), Some(key.as_str()));
    assert_eq!(again[0].body, failed[0].body, "the same event, byte for byte");
}

#[test]
fn a_429_with_retry_after_stops_the_run_until_it_passes() {
    let server = Server::start();
    let (h, _dir) = history_unpublished(&server);
    server.script(vec![(429, vec![("retry-after", "120".into())], "rate limited".into())]);
    let first = publish(&h, &[], NOW);
    first.expect_code(3);
    assert_eq!(server.take().len(), 1, "nothing more after a 429");
    assert!(first.stdout.starts_with("published: 0 sent, 1 failed, 13 waiting\n"), "{}", first.stdout);
    let early = publish(&h, &[], "2026-01-08T11:01:59Z");
    assert_eq!(server.take().len(), 13, "the others were not rate-limited: sent now");
    early.expect_code(0);
    let later = publish(&h, &[], "2026-01-08T11:02:00Z");
    later.expect_code(0);
    assert_eq!(later.stdout, "published: 1 sent, 0 failed, 0 waiting\n");
    assert_eq!(server.take().len(), 1);
}

#[test]
fn the_dry_run_prints_the_requests_and_sends_and_stores_nothing() {
    let server = Server::start();
    let (h, _dir) = history_unpublished(&server);
    let dry = publish(&h, &["--dry-run", "--since", "29m"], NOW);
    dry.expect_code(0);
    assert!(server.take().is_empty(), "a dry run sends nothing");
    // The last 29 minutes hold the hotfix run (11:00): production's and eu's deploys.
    let blocks: Vec<&str> = dry.stdout.split("# audit\n").filter(|b| !b.is_empty()).collect();
    assert_eq!(blocks.len(), 2, "{}", dry.stdout);
    for b in &blocks {
        let mut lines = b.lines();
        assert_eq!(lines.next(), Some(format!("POST {}/hooks/deploy", server.url).as_str()));
        assert_eq!(lines.next(), Some("content-type: application/json"));
        assert!(lines.next().unwrap().starts_with("user-agent: prodiff/"));
        let key = lines.next().unwrap();
        assert!(key.starts_with("idempotency-key: ") && key.ends_with("/api/1767870000"), "{key}");
        let sig = lines.next().unwrap();
        assert_eq!(lines.next(), Some(""));
        let body = lines.next().unwrap();
        let hex = prodiff::publish::hmac::sha256_hex(SECRET.as_bytes(), body.as_bytes());
        assert_eq!(sig, format!("x-prodiff-signature-256: sha256={hex}"));
        assert_eq!(serde_json::from_str::<Value>(body).unwrap()["kind"], "deploy");
    }
    assert!(!dry.stdout.contains(SECRET) && !dry.stderr.contains(SECRET));
    let real = publish(&h, &[], NOW);
    real.expect_code(0);
    assert_eq!(real.stdout, "published: 14 sent, 0 failed, 0 waiting\n", "the dry run stored nothing");
    assert_eq!(server.take().len(), EVENTS);
}

#[test]
fn a_webhook_without_a_url_is_a_config_error_naming_its_line() {
    let server = Server::start();
    let (h, _dir) = history_unpublished(&server);
    let lines = std::fs::read_to_string(h.repo.scratch().join("prodiff.toml")).unwrap().lines().count();
    h.append_config("\n[[publish.webhook]]\nid = \"x\"\n");
    let bad = publish(&h, &[], NOW);
    bad.expect_code(2);
    let want = format!("prodiff.toml:{}:1:", lines + 2);
    assert!(bad.stderr.contains(&want), "{want} in {}", bad.stderr);
    assert!(bad.stderr.contains("publish.webhook[1]: `url` or `url_env` is required"), "{}", bad.stderr);
}

#[test]
fn a_target_url_that_is_not_http_is_a_config_error_naming_the_line() {
    let server = Server::start();
    let (h, _dir) = history_unpublished(&server);
    h.append_config("\n[[publish.webhook]]\nurl = \"ftp://example.com/x\"\n");
    let bad = publish(&h, &[], NOW);
    bad.expect_code(2);
    assert!(
        bad.stderr.contains("prodiff.toml:") && bad.stderr.contains("publish.webhook[1].url: not an http(s) URL"),
        "{}",
        bad.stderr
    );
}

/// The canary (see canary.rs) for publishing: a webhook URL that is itself a secret (from
/// `url_env`, a token in its path) and the HMAC secret, searched for in every form in the
/// output of `record`, `publish`, `publish --dry-run` and its failure message, and in the ledger.
#[test]
fn publishing_secrets_never_reach_output_or_the_ledger() {
    const URL_TOKEN: &str = "Cn-hookurl-5190xq";
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let h = History::new(ledger.to_str().unwrap().to_string());
    h.append_config("\n[[publish.webhook]]\nurl_env = \"HOOK_URL\"\nsecret_env = \"HOOK_SECRET\"\n");
    let url = format!("{}/services/T0/{URL_TOKEN}", server.url);
    let env = [("HOOK_SECRET", SECRET), ("HOOK_URL", url.as_str())];
    // The receiver fails once, echoing the URL it was called at.
    server.script(vec![(404, vec![], format!("no_service at {url}"))]);
    let mut runs = vec![];
    // Recording with the URL's variable unset: publishing fails, recording does not.
    h.record_all_with(&env[..1]);
    assert!(server.take().is_empty());
    runs.push(h.prodiff_with(&["publish", "--dry-run"], NOW, &env));
    runs.push(h.prodiff_with(&["publish"], NOW, &env));
    runs[1].expect_code(3);
    runs.push(h.prodiff_with(&["publish"], "2026-01-09T11:00:00Z", &env));
    runs.push(h.prodiff_with(&["record", "--offline", "-vv"], "2026-01-09T11:00:00Z", &env));
    assert_eq!(server.take().len(), EVENTS + 1, "the failed one was resent");
    assert_eq!(runs[0].stdout.matches("POST [redacted]\n").count(), EVENTS, "{}", runs[0].stdout);
    assert!(runs[1].stdout.contains("HTTP 404 no_service at [redacted]"), "{}", runs[1].stdout);
    let stored = String::from_utf8_lossy(&std::fs::read(&ledger).unwrap()).into_owned();
    assert_no_secret(&[SECRET, URL_TOKEN], &runs, &[&stored]);
}

/// Slack: a Block Kit message per event to the incoming webhook from `url_env`; Slack's
/// `400 invalid_payload` answer is a failure retried after its backoff; a rerun sends nothing.
#[test]
fn slack_gets_one_block_kit_message_per_event_and_its_errors_are_retried() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    h.record_all();
    h.append_config(
        "\n[[publish.slack]]\nurl_env = \"SLACK_URL\"\ncommit_url = \"https://github.com/shop/api/commit/{sha}\"\n",
    );
    let url = format!("{}/services/T000/B000/Cn-slack-XXXX", server.url);
    let env = [("SLACK_URL", url.as_str())];
    server.script(vec![(400, vec![], "invalid_payload".into())]);
    let first = h.prodiff_with(&["publish"], NOW, &env);
    first.expect_code(3);
    assert!(first.stdout.contains("1 failed") && first.stdout.contains("HTTP 400 invalid_payload"), "{}", first.stdout);
    assert!(!first.stdout.contains("Cn-slack-XXXX"));
    let seen = server.take();
    assert_eq!(seen.len(), EVENTS);
    assert!(seen.iter().all(|s| s.method == "POST" && s.path == "/services/T000/B000/Cn-slack-XXXX"));
    assert!(seen.iter().all(|s| s.header("content-type") == Some("application/json")));
    let rollback = seen
        .iter()
        .map(|s| serde_json::from_str::<Value>(&s.body).unwrap())
        .find(|b| b["text"].as_str().unwrap().starts_with("production/api: rollback"))
        .unwrap();
    let (v120, v110) = (h.repo.rev("v1.2.0"), h.repo.rev("v1.1.0"));
    let removed = h.repo.rev("SHOP-102 api: new cart");
    let (from, to) = (format!("1.2.0 ({})", &v120[..7]), format!("1.1.0 ({})", &v110[..7]));
    assert_eq!(
        rollback,
        json!({
            "text": format!("production/api: rollback {from} → {to}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "api → production: rollback"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Environment*\nproduction"},
                    {"type": "mrkdwn", "text": "*Service*\napi"},
                    {"type": "mrkdwn", "text": format!("*From*\n{from}")},
                    {"type": "mrkdwn", "text": format!("*To*\n{to}")},
                ]},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!(
                    "*Removed* (1)\n• <https://github.com/shop/api/commit/{removed}|`{}`> SHOP-102 api: new cart",
                    &removed[..7])}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": "Tickets: - · seen 2026-01-07 11:00 UTC · production/api/1767783600"}]},
            ]
        })
    );
    let retried = h.prodiff_with(&["publish"], "2026-01-08T11:01:00Z", &env);
    retried.expect_code(0);
    assert_eq!(retried.stdout, "published: 1 sent, 0 failed, 0 waiting\n");
    assert_eq!(server.take().len(), 1);
    let again = h.prodiff_with(&["publish"], "2026-01-08T12:00:00Z", &env);
    assert_eq!(again.stdout, "published: 0 sent, 0 failed, 0 waiting\n");
    assert!(server.take().is_empty());
}

/// A second publisher finds the target leased by the first and leaves it alone.
#[test]
fn a_publisher_holding_the_lease_keeps_a_second_one_off_the_target() {
    let server = Server::start();
    let (h, dir) = history_unpublished(&server);
    let path = dir.path().join("ledger.db");
    let _rt = tokio::runtime::Runtime::new().unwrap();
    let mut store = prodiff::ledger::sqlite::Sqlite::open(&path).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(NOW).unwrap().timestamp();
    use prodiff::ledger::Store as _;
    assert!(store.take_lease("publish:audit", "other-ci-job", now + 600, now).unwrap());
    let busy = publish(&h, &[], NOW);
    busy.expect_code(0);
    assert_eq!(
        busy.stdout,
        "published: 0 sent, 0 failed, 0 waiting\n  skipped: audit: another publisher is at work on it (its lease expires by itself)\n"
    );
    assert!(server.take().is_empty());
    // Once the lease has expired (its holder died), the target is published to again.
    let later = publish(&h, &[], "2026-01-08T11:10:00Z");
    later.expect_code(0);
    assert_eq!(later.stdout, "published: 14 sent, 0 failed, 0 waiting\n");
    assert_eq!(server.take().len(), EVENTS);
}

/// Two publishers started together (two CI jobs) against a slow receiver: each event is
/// sent once in all, whichever of them sends it.
#[test]
fn two_publishers_at_once_send_each_event_once() {
    let server = Server::start_slow(std::time::Duration::from_millis(80));
    let (h, _dir) = history_unpublished(&server);
    let job = h.invocation(&["publish"], NOW, &[("HOOK_SECRET", SECRET)]);
    let runs: Vec<crate::util::Run> = std::thread::scope(|s| {
        let a = s.spawn(|| job.run());
        let b = s.spawn(|| job.run());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let seen = server.take();
    let mut keys: Vec<&str> = seen.iter().map(|s| s.header("idempotency-key").unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((seen.len(), keys.len()), (EVENTS, EVENTS), "{:?}", runs.iter().map(|r| &r.stdout).collect::<Vec<_>>());
    let skipped = runs.iter().filter(|r| r.stdout.contains("skipped: audit")).count();
    assert_eq!(
        skipped,
        1,
        "one of them found the other at work: {:?}",
        runs.iter().map(|r| &r.stdout).collect::<Vec<_>>()
    );
}

/// A receiver that refuses some events by their content (a 422 for rollbacks): only those
/// fail, each is named, and the rest are acknowledged.
#[test]
fn a_receiver_refusing_some_events_fails_only_those() {
    let server = Server::start();
    let (h, _dir) = history_unpublished(&server);
    server
        .route(|req| req.body.contains("\"kind\":\"rollback\"").then(|| (422, vec![], "{\"message\":\"no\"}".into())));
    let run = publish(&h, &[], NOW);
    run.expect_code(3);
    let seen = server.take();
    let rollbacks: Vec<&Seen> = seen.iter().filter(|s| s.body.contains("\"kind\":\"rollback\"")).collect();
    assert!(!rollbacks.is_empty() && rollbacks.len() < EVENTS, "{seen:#?}");
    let failed = run.stdout.lines().filter(|l| l.contains("failed: audit")).count();
    assert_eq!(failed, rollbacks.len(), "{}", run.stdout);
    for r in rollbacks {
        let key = r.header("idempotency-key").unwrap();
        assert!(
            run.stdout.contains(&format!("failed: audit {key}: HTTP 422 {{\"message\":\"no\"}}")),
            "{}",
            run.stdout
        );
    }
    assert!(run.stdout.starts_with(&format!("published: {} sent, {failed} failed, 0 waiting\n", EVENTS - failed)));
}

/// A target whose secret's variable is unset fails alone (exit 2, a config error); the next
/// target still gets every event, and the failure names the variable.
#[test]
fn a_target_without_its_secret_fails_alone() {
    let server = Server::start();
    let (h, _dir) = history_unpublished(&server);
    h.append_config(&format!(
        "\n[[publish.webhook]]\nid = \"unsigned\"\nurl = \"{}/hooks/other\"\nsecret_env = \"PRODIFF_TEST_UNSET_SECRET\"\n\n\
         [[publish.webhook]]\nid = \"second\"\nurl = \"{}/hooks/second\"\n",
        server.url, server.url
    ));
    let run = publish(&h, &[], NOW);
    run.expect_code(2);
    assert!(run.stderr.contains("the secret's variable PRODIFF_TEST_UNSET_SECRET is not set"), "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "failed: unsigned: publish target unsigned: the secret's variable PRODIFF_TEST_UNSET_SECRET is not set"
        ),
        "{}",
        run.stdout
    );
    let seen = server.take();
    assert_eq!(seen.iter().filter(|s| s.path == "/hooks/second").count(), EVENTS);
    assert_eq!(seen.iter().filter(|s| s.path == "/hooks/deploy").count(), EVENTS);
    assert!(!seen.iter().any(|s| s.path == "/hooks/other"));
}
