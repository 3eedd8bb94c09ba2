//! Publishing to tickets end to end: the ledger history of `ledger.rs` (tickets SHOP-101 to
//! SHOP-104 in its commit messages) recorded with `[[publish.jira]]` and `[[publish.trello]]`
//! pointed at the local `Server` of `publish.rs`, whose route answers as Jira Cloud's REST API
//! v3 and Trello's REST API do (their published descriptions: Jira's swagger-v3 `editIssue`,
//! `addComment`, `getTransitions`, `doTransition` and its `ErrorCollection`; Trello's
//! `/1/search`, `/1/cards/{id}` and `/1/cards/{id}/actions`, its `invalid token` and
//! `The requested resource was not found.`), keeping issues and cards as state. Asserts the
//! exact requests, that a rerun sends nothing, that a failure mid-event resumes where it
//! stopped, the errors, the dry run and that no secret leaks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::ledger::History;
use crate::publish::{percent_decode, Answer, Seen, Server};

const NOW: &str = "2026-01-08T11:00:00Z";
const EMAIL: &str = "deploy-bot@shop.example";
const JIRA_TOKEN: &str = "Cn-jira-token-4417";
const TRELLO_KEY: &str = "Cn-trello-key-8823";
const TRELLO_TOKEN: &str = "Cn-trello-tok-3391";

/// The event ids of production's deployments with tickets (`ENV/SERVICE/FIRST_SEEN`).
const SHOP_101: &str = "production/api/1767693600";
const SHOP_102_ROLLBACK: &str = "production/api/1767783600";
const SHOP_102_103: &str = "production/api/1767866400";
const SHOP_104: &str = "production/api/1767870000";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn json_answer(status: u16, body: Value) -> Answer {
    (status, vec![("content-type", "application/json".to_string())], body.to_string())
}

fn text_answer(status: u16, body: &str) -> Answer {
    (status, vec![("content-type", "text/plain; charset=utf-8".to_string())], body.to_string())
}

/// A request's path and its decoded query parameters.
fn split(target: &str) -> (String, BTreeMap<String, String>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_string(), params)
}

// ---- Jira Cloud, as its REST API v3 answers ---------------------------------------------

#[derive(Default)]
struct Issue {
    labels: Vec<String>,
    comments: Vec<Value>,
    status: &'static str,
}

/// Jira's side: issues with labels, comments and a workflow (To Do → In Progress → Done,
/// Done → Reopen), basic auth checked, faults answered once for `METHOD PATH`.
#[derive(Default)]
struct Jira {
    auth: String,
    issues: BTreeMap<String, Issue>,
    faults: Vec<(String, Answer)>,
    /// The next request is answered with a 400 quoting its Authorization header and path.
    echo: bool,
}

impl Jira {
    fn new(keys: &[&str]) -> Arc<Mutex<Jira>> {
        let issues = keys.iter().map(|k| (k.to_string(), Issue { status: "To Do", ..Issue::default() })).collect();
        let auth = format!("Basic {}", b64(&format!("{EMAIL}:{JIRA_TOKEN}")));
        Arc::new(Mutex::new(Jira { auth, issues, ..Jira::default() }))
    }

    fn serve(jira: &Arc<Mutex<Jira>>, server: &Server) {
        let j = jira.clone();
        server.route(move |s| Some(j.lock().unwrap().answer(s)));
    }

    fn answer(&mut self, s: &Seen) -> Answer {
        let (path, _) = split(&s.path);
        if std::mem::take(&mut self.echo) {
            let said = format!("bad request from {} at {path}", s.header("authorization").unwrap_or(""));
            return json_answer(400, json!({"errorMessages": [said], "errors": {}}));
        }
        if s.header("authorization") != Some(self.auth.as_str()) {
            return text_answer(401, "Client must be authenticated to access this resource.");
        }
        let line = format!("{} {path}", s.method);
        if let Some(i) = self.faults.iter().position(|(p, _)| *p == line) {
            return self.faults.remove(i).1;
        }
        let Some(rest) = path.strip_prefix("/rest/api/3/issue/") else {
            return text_answer(404, "<html><body>Oops, you've found a dead link.</body></html>");
        };
        let (key, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(issue) = self.issues.get_mut(key) else {
            let said = "Issue does not exist or you do not have permission to see it.";
            return json_answer(404, json!({"errorMessages": [said], "errors": {}}));
        };
        let body: Value = serde_json::from_str(&s.body).unwrap_or(Value::Null);
        match (s.method.as_str(), tail) {
            ("PUT", "") => {
                for op in body["update"]["labels"].as_array().unwrap() {
                    if let Some(l) = op["add"].as_str() {
                        if !issue.labels.iter().any(|x| x == l) {
                            issue.labels.push(l.to_string());
                        }
                    }
                    if let Some(l) = op["remove"].as_str() {
                        issue.labels.retain(|x| x != l);
                    }
                }
                (204, vec![], String::new())
            }
            ("POST", "comment") => {
                issue.comments.push(body["body"].clone());
                let id = format!("{}", 10000 + issue.comments.len());
                json_answer(
                    201,
                    json!({"self": format!("https://shop.atlassian.net/rest/api/3/issue/10010/comment/{id}"), "id": id,
                           "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Deploy Bot", "active": true},
                           "body": body["body"], "created": "2026-01-08T11:00:00.000+0000", "updated": "2026-01-08T11:00:00.000+0000"}),
                )
            }
            ("GET", "transitions") => {
                let offered: Vec<Value> = workflow(issue.status)
                    .iter()
                    .map(|(id, name, to)| {
                        json!({"id": id, "name": name, "to": {"self": "https://shop.atlassian.net/rest/api/3/status/10000",
                               "name": to, "id": "10000"}, "hasScreen": false, "isGlobal": true, "isInitial": false,
                               "isAvailable": true, "isConditional": false, "isLooped": false})
                    })
                    .collect();
                json_answer(200, json!({"expand": "transitions", "transitions": offered}))
            }
            ("POST", "transitions") => {
                let id = body["transition"]["id"].as_str().unwrap_or("");
                match workflow(issue.status).iter().find(|(i, _, _)| *i == id) {
                    Some((_, _, to)) => {
                        issue.status = to;
                        (204, vec![], String::new())
                    }
                    None => json_answer(
                        400,
                        json!({"errorMessages": [format!("Transition id '{id}' is not valid for this issue.")], "errors": {}}),
                    ),
                }
            }
            _ => text_answer(405, "Method Not Allowed"),
        }
    }
}

/// The transitions each status offers: (id, name, the status it leads to).
fn workflow(status: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match status {
        "To Do" => &[("21", "Start progress", "In Progress"), ("31", "Done", "Done")],
        "In Progress" => &[("11", "Stop progress", "To Do"), ("31", "Done", "Done")],
        _ => &[("41", "Reopen", "To Do")],
    }
}

fn jira_config(server: &Server, extra: &str) -> String {
    format!(
        "\n[[publish.jira]]\nid = \"jira\"\nurl = \"{}\"\nemail = \"{EMAIL}\"\ntoken_env = \"JIRA_TOKEN\"\n{extra}",
        server.url
    )
}

/// A history with Jira configured before recording (`publish_first`) or after.
fn jira_history(server: &Server, extra: &str, publish_first: bool) -> (History, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    if publish_first {
        h.append_config(&jira_config(server, extra));
        h.record_all_with(&[("JIRA_TOKEN", JIRA_TOKEN)]);
    } else {
        h.record_all();
        h.append_config(&jira_config(server, extra));
    }
    (h, dir)
}

fn publish(h: &History, args: &[&str], now: &str, env: &[(&str, &str)]) -> crate::util::Run {
    let mut all = vec!["publish"];
    all.extend_from_slice(args);
    h.prodiff_with(&all, now, env)
}

/// `METHOD PATH` of each request.
fn lines(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|s| format!("{} {}", s.method, s.path)).collect()
}

fn body(s: &Seen) -> Value {
    serde_json::from_str(&s.body).unwrap()
}

/// The ADF text of a comment's first paragraph.
fn first_paragraph(doc: &Value) -> String {
    doc["content"][0]["content"].as_array().unwrap().iter().map(|t| t["text"].as_str().unwrap()).collect()
}

#[test]
fn jira_gets_a_label_a_comment_and_a_transition_per_ticket_and_a_rerun_sends_nothing() {
    let server = Server::start();
    let jira = Jira::new(&["SHOP-101", "SHOP-102", "SHOP-103", "SHOP-104"]);
    Jira::serve(&jira, &server);
    let extra = "transition = \"Done\"\ncommit_url = \"https://github.com/shop/api/commit/{sha}\"\n";
    let (h, dir) = jira_history(&server, extra, true);
    let seen = server.take();
    let issue = |k: &str| format!("/rest/api/3/issue/{k}");
    let shipped = |k: &str, transition: bool| {
        let mut out = vec![format!("PUT {}", issue(k)), format!("POST {}/comment", issue(k))];
        out.push(format!("GET {}/transitions", issue(k)));
        if transition {
            out.push(format!("POST {}/transitions", issue(k)));
        }
        out
    };
    let mut want: Vec<String> = vec![];
    want.extend(shipped("SHOP-101", true));
    want.extend(shipped("SHOP-102", true));
    want.extend([format!("PUT {}", issue("SHOP-102")), format!("POST {}/comment", issue("SHOP-102"))]);
    // SHOP-102 is Done already: Done offers no "Done", so no transition is sent.
    want.extend(shipped("SHOP-102", false));
    want.extend(shipped("SHOP-103", true));
    want.extend(shipped("SHOP-104", true));
    assert_eq!(lines(&seen), want);
    let auth = format!("Basic {}", b64(&format!("{EMAIL}:{JIRA_TOKEN}")));
    for s in &seen {
        assert_eq!(s.header("authorization"), Some(auth.as_str()));
        assert_eq!(s.header("accept"), Some("application/json"));
        assert!(s.header("user-agent").unwrap().starts_with("prodiff/"));
        let content_type = if s.method == "GET" { None } else { Some("application/json") };
        assert_eq!(s.header("content-type"), content_type, "{} {}", s.method, s.path);
    }
    // The label operations, the transition bodies.
    let label = |op: &str| json!({"update": {"labels": [{op: "deployed-production"}]}});
    let puts: Vec<Value> = seen.iter().filter(|s| s.method == "PUT").map(body).collect();
    assert_eq!(puts, [label("add"), label("add"), label("remove"), label("add"), label("add"), label("add")]);
    let transitions: Vec<Value> =
        seen.iter().filter(|s| s.method == "POST" && s.path.ends_with("/transitions")).map(body).collect();
    assert_eq!(transitions, vec![json!({"transition": {"id": "31"}}); 4]);
    assert!(seen.iter().filter(|s| s.method == "GET").all(|s| s.body.is_empty()));
    // The first deploy's comment, exactly: the replicas' start time is exact.
    let sha = |what: &str| h.repo.rev(what);
    let commit = |what: &str, subject: &str| {
        let full = sha(what);
        json!({"type": "listItem", "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": &full[..7], "marks": [{"type": "code"},
                {"type": "link", "attrs": {"href": format!("https://github.com/shop/api/commit/{full}")}}]},
            {"type": "text", "text": format!(" {subject}")}]}]})
    };
    let short = |v: &str| format!("{v} ({})", &sha(&format!("v{v}"))[..7]);
    let comments: Vec<Value> =
        seen.iter().filter(|s| s.path.ends_with("/comment")).map(|s| body(s)["body"].clone()).collect();
    assert_eq!(
        comments[0],
        json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "SHOP-101 was deployed to production: "},
                {"type": "text", "text": format!("api {} → {}", short("1.0.0"), short("1.1.0")), "marks": [{"type": "strong"}]}]},
            {"type": "bulletList", "content": [commit("v1.1.0", "SHOP-101 api: faster checkout")]},
            {"type": "paragraph", "content": [{"type": "text",
                "text": format!("Seen by prodiff 2026-01-06 09:30 UTC (event {SHOP_101}).")}]}]})
    );
    // The rollback's: SHOP-102 removed, between the two runs that bound it.
    assert_eq!(
        comments[2],
        json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "SHOP-102 was removed from production by a rollback: "},
                {"type": "text", "text": format!("api {} → {}", short("1.2.0"), short("1.1.0")), "marks": [{"type": "strong"}]}]},
            {"type": "bulletList", "content": [commit("v1.2.0", "SHOP-102 api: new cart")]},
            {"type": "paragraph", "content": [{"type": "text",
                "text": format!("Seen by prodiff between 2026-01-07 10:00 and 11:00 UTC (event {SHOP_102_ROLLBACK}).")}]}]})
    );
    let firsts: Vec<String> = comments.iter().map(first_paragraph).collect();
    assert!(firsts[3].starts_with("SHOP-102 was deployed to production: api 1.1.0"), "{firsts:?}");
    assert!(firsts[4].starts_with("SHOP-103 was deployed to production: "), "{firsts:?}");
    {
        let j = jira.lock().unwrap();
        for k in ["SHOP-101", "SHOP-102", "SHOP-103", "SHOP-104"] {
            assert_eq!(
                (j.issues[k].labels.as_slice(), j.issues[k].status),
                (&["deployed-production".to_string()][..], "Done")
            );
        }
        assert_eq!(j.issues["SHOP-102"].comments.len(), 3);
    }
    let again = publish(&h, &[], NOW, &[("JIRA_TOKEN", JIRA_TOKEN)]);
    again.expect_code(0);
    assert_eq!(again.stdout, "published: 0 sent, 0 failed, 0 waiting\n");
    assert!(server.take().is_empty(), "a rerun sends nothing");
    let ledger = String::from_utf8_lossy(&std::fs::read(dir.path().join("ledger.db")).unwrap()).into_owned();
    assert!(!ledger.contains(JIRA_TOKEN) && !ledger.contains(&b64(&format!("{EMAIL}:{JIRA_TOKEN}"))));
}

/// The label is accepted, the comment is not: the next run sends the comment only.
#[test]
fn a_failure_mid_event_resumes_at_the_comment_without_repeating_the_label() {
    let server = Server::start();
    let jira = Jira::new(&["SHOP-101", "SHOP-102", "SHOP-103", "SHOP-104"]);
    Jira::serve(&jira, &server);
    let comment = "POST /rest/api/3/issue/SHOP-101/comment".to_string();
    let refused =
        json_answer(400, json!({"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}}));
    jira.lock().unwrap().faults.push((comment.clone(), refused));
    let (h, _dir) = jira_history(&server, "", false);
    let env = [("JIRA_TOKEN", JIRA_TOKEN)];
    let first = publish(&h, &[], NOW, &env);
    first.expect_code(3);
    assert_eq!(
        first.stdout,
        format!(
            "published: 13 sent, 1 failed, 0 waiting\n  failed: jira {SHOP_101}: SHOP-101/comment: HTTP 400 comment: Comment body can not be empty!\n"
        )
    );
    let seen = lines(&server.take());
    assert_eq!(&seen[..2], ["PUT /rest/api/3/issue/SHOP-101".to_string(), comment.clone()]);
    assert_eq!(seen.len(), 12, "every other ticket's label and comment: {seen:#?}");
    let early = publish(&h, &[], "2026-01-08T11:00:59Z", &env);
    assert_eq!(early.stdout, "published: 0 sent, 0 failed, 1 waiting\n");
    assert!(server.take().is_empty());
    let retried = publish(&h, &[], "2026-01-08T11:01:00Z", &env);
    retried.expect_code(0);
    assert_eq!(retried.stdout, "published: 1 sent, 0 failed, 0 waiting\n");
    assert_eq!(lines(&server.take()), [comment], "the comment only: the label was done");
    let j = jira.lock().unwrap();
    assert_eq!(j.issues["SHOP-101"].labels, ["deployed-production"]);
    assert_eq!(j.issues["SHOP-101"].comments.len(), 1);
}

/// A key that is no issue (404 in Jira's words) is a note, the event acknowledged; a 400 is a
/// failure in Jira's words; a wrong token is a 401 failure; a 429 stops the run until its
/// `Retry-After` has passed; a 404 that is not Jira's (a wrong `url`) is a failure.
#[test]
fn jira_errors_are_failures_in_jiras_words_and_a_key_that_is_no_issue_is_a_note() {
    let server = Server::start();
    let jira = Jira::new(&["SHOP-101", "SHOP-102", "SHOP-104"]);
    Jira::serve(&jira, &server);
    let field = "Field 'labels' cannot be set. It is not on the appropriate screen, or unknown.";
    let refused = json_answer(400, json!({"errorMessages": [], "errors": {"labels": field}}));
    jira.lock().unwrap().faults.push(("PUT /rest/api/3/issue/SHOP-104".into(), refused));
    let (h, _dir) = jira_history(&server, "", false);
    let env = [("JIRA_TOKEN", JIRA_TOKEN)];
    let first = publish(&h, &[], NOW, &env);
    first.expect_code(3);
    let missing = "no such issue, or the account may not see it (HTTP 404 Issue does not exist or you do not have permission to see it.): skipped";
    assert_eq!(
        first.stdout,
        format!(
            "published: 13 sent, 1 failed, 0 waiting\n  failed: jira {SHOP_104}: SHOP-104/label: HTTP 400 labels: {field}\n  note: jira {SHOP_102_103}: SHOP-103/label: {missing}\n"
        )
    );
    let seen = lines(&server.take());
    assert!(seen.contains(&"PUT /rest/api/3/issue/SHOP-103".to_string()));
    assert!(!seen.iter().any(|l| l.contains("SHOP-103/comment")), "no comment on an issue that is not there");

    // A wrong token: Jira's 401, retried later.
    let wrong = publish(&h, &[], "2026-01-08T11:01:00Z", &[("JIRA_TOKEN", "Cn-wrong-token-0001")]);
    wrong.expect_code(3);
    assert_eq!(
        wrong.stdout,
        format!("published: 0 sent, 1 failed, 0 waiting\n  failed: jira {SHOP_104}: SHOP-104/label: HTTP 401 Client must be authenticated to access this resource.\n")
    );
    assert_eq!(server.take().len(), 1);

    // Rate-limited: nothing more this run, and nothing before Retry-After has passed.
    let limited = json_answer(429, json!({"errorMessages": ["Rate limit exceeded."], "errors": {}}));
    let (status, mut headers, text) = limited;
    headers.push(("retry-after", "300".into()));
    jira.lock().unwrap().faults.push(("PUT /rest/api/3/issue/SHOP-104".into(), (status, headers, text)));
    let at = "2026-01-08T11:03:00Z";
    let rate = publish(&h, &[], at, &env);
    rate.expect_code(3);
    assert_eq!(
        rate.stdout,
        format!("published: 0 sent, 1 failed, 0 waiting\n  failed: jira {SHOP_104}: SHOP-104/label: HTTP 429 Rate limit exceeded.\n")
    );
    server.take();
    let early = publish(&h, &[], "2026-01-08T11:07:59Z", &env);
    assert_eq!(early.stdout, "published: 0 sent, 0 failed, 1 waiting\n");
    assert!(server.take().is_empty());
    let done = publish(&h, &[], "2026-01-08T11:08:00Z", &env);
    done.expect_code(0);
    assert_eq!(done.stdout, "published: 1 sent, 0 failed, 0 waiting\n");
    assert_eq!(lines(&server.take()), ["PUT /rest/api/3/issue/SHOP-104", "POST /rest/api/3/issue/SHOP-104/comment"]);
}

#[test]
fn a_404_that_is_not_jiras_is_a_failure_naming_the_url() {
    let server = Server::start();
    let jira = Jira::new(&["SHOP-101"]);
    Jira::serve(&jira, &server);
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    h.record_all();
    h.append_config(&format!(
        "\n[[publish.jira]]\nurl = \"{}/wiki\"\nemail = \"{EMAIL}\"\ntoken_env = \"JIRA_TOKEN\"\n",
        server.url
    ));
    let run = publish(&h, &[], NOW, &[("JIRA_TOKEN", JIRA_TOKEN)]);
    run.expect_code(3);
    let host = server.url.trim_start_matches("http://").split(':').next().unwrap().to_string();
    let line = format!(
        "  failed: jira:{host} {SHOP_101}: SHOP-101/label: HTTP 404 <html><body>Oops, you've found a dead link.</body></html>: not Jira's answer (is `url` the site's address?)"
    );
    assert!(run.stdout.contains(&line), "{}", run.stdout);
    assert!(run.stdout.starts_with("published: 9 sent, 5 failed, 0 waiting\n"), "{}", run.stdout);
}

// ---- Trello, as its REST API answers -----------------------------------------------------

struct Card {
    id: &'static str,
    board: &'static str,
    name: String,
    comments: Vec<String>,
}

/// Trello's side: cards on boards, searched by whole words of their names and comments
/// (case-insensitive, as Trello's search is), key and token checked, faults once per
/// `METHOD PATH`.
struct Trello {
    cards: Vec<Card>,
    faults: Vec<(String, Answer)>,
    /// The next request is answered 401 quoting its URL (key and token included).
    echo: bool,
}

impl Trello {
    fn new(cards: Vec<Card>) -> Arc<Mutex<Trello>> {
        Arc::new(Mutex::new(Trello { cards, faults: vec![], echo: false }))
    }

    fn serve(trello: &Arc<Mutex<Trello>>, server: &Server) {
        let t = trello.clone();
        server.route(move |s| Some(t.lock().unwrap().answer(s)));
    }

    fn answer(&mut self, s: &Seen) -> Answer {
        let (path, q) = split(&s.path);
        if std::mem::take(&mut self.echo) {
            return text_answer(401, &format!("invalid token for {}", s.path));
        }
        if q.get("key").map(String::as_str) != Some(TRELLO_KEY) {
            return text_answer(401, "invalid key");
        }
        if q.get("token").map(String::as_str) != Some(TRELLO_TOKEN) {
            return text_answer(401, "invalid token");
        }
        let line = format!("{} {path}", s.method);
        if let Some(i) = self.faults.iter().position(|(p, _)| *p == line) {
            return self.faults.remove(i).1;
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (s.method.as_str(), parts.as_slice()) {
            ("GET", ["1", "search"]) => self.search(&q),
            ("GET", ["1", "cards", id, "actions"]) if q.get("filter").map(String::as_str) == Some("commentCard") => {
                let Some(card) = self.cards.iter().find(|c| c.id == *id) else { return not_found() };
                let actions: Vec<Value> = card
                    .comments
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        json!({"id": format!("6a00000000000000000000{i:02}"), "idMemberCreator": "5c000000000000000000aaaa",
                               "data": {"text": text, "card": {"id": card.id, "name": card.name, "idShort": 7, "shortLink": "aBcD1234"},
                                        "board": {"id": card.board, "name": "Shop", "shortLink": "bOaRd123"},
                                        "list": {"id": "5e0000000000000000000001", "name": "Doing"}},
                               "type": "commentCard", "date": "2026-01-08T09:00:00.000Z",
                               "memberCreator": {"id": "5c000000000000000000aaaa", "fullName": "Ada", "username": "ada"}})
                    })
                    .collect();
                json_answer(200, Value::Array(actions))
            }
            ("PUT", ["1", "cards", id]) => {
                let Some(card) = self.cards.iter_mut().find(|c| c.id == *id) else { return not_found() };
                if let Some(name) = q.get("name") {
                    card.name = name.clone();
                }
                json_answer(
                    200,
                    json!({"id": card.id, "name": card.name, "idBoard": card.board, "idList": "5e0000000000000000000001",
                           "closed": false, "desc": "", "idShort": 7, "shortLink": "aBcD1234",
                           "url": format!("https://trello.com/c/aBcD1234/7-{}", card.id)}),
                )
            }
            _ => not_found(),
        }
    }

    fn search(&self, q: &BTreeMap<String, String>) -> Answer {
        assert_eq!(q.get("modelTypes").map(String::as_str), Some("cards"));
        let boards: Vec<&str> = q["idBoards"].split(',').collect();
        let query = q["query"].to_lowercase();
        let has_word = |text: &str| {
            text.to_lowercase().split(|c: char| c.is_whitespace() || "/()[]:,.".contains(c)).any(|w| w == query)
        };
        let cards: Vec<Value> = self
            .cards
            .iter()
            .filter(|c| boards.contains(&c.board) && (has_word(&c.name) || c.comments.iter().any(|t| has_word(t))))
            .map(|c| json!({"id": c.id, "name": c.name}))
            .collect();
        json_answer(
            200,
            json!({"options": {"terms": [{"text": q["query"]}], "modelTypes": ["cards"], "partial": false}, "cards": cards}),
        )
    }
}

fn not_found() -> Answer {
    text_answer(404, "The requested resource was not found.")
}

const BOARD: &str = "5d0000000000000000000b01";
const OTHER_BOARD: &str = "5d0000000000000000000b02";

/// The board's cards: one per ticket key but SHOP-104, a decoy `SHOP-1010`, a card named by
/// no key whose comment links the hotfix commit, and a SHOP-101 card on a board not searched.
fn cards(h: &History) -> Vec<Card> {
    let card = |id, board, name: &str, comments: Vec<String>| Card { id, board, name: name.to_string(), comments };
    let hotfix = h.repo.rev("v1.3.1");
    vec![
        card("5f0000000000000000000101", BOARD, "SHOP-101 Faster checkout", vec![]),
        card("5f0000000000000000001010", BOARD, "SHOP-1010 Checkout copy", vec![]),
        card("5f0000000000000000000102", BOARD, "[[ NOT DEPLOYED ]] SHOP-102 New cart", vec![]),
        card("5f0000000000000000000103", BOARD, "SHOP-103 Bigger cart", vec!["Needs SHOP-102 first".into()]),
        card(
            "5f0000000000000000000104",
            BOARD,
            "Customers see a crash on an empty cart",
            vec![format!("Fixed by https://github.com/shop/api/commit/{hotfix}")],
        ),
        card("5f0000000000000000000901", OTHER_BOARD, "SHOP-101 Another team's card", vec![]),
    ]
}

fn trello_config(server: &Server, extra: &str) -> String {
    format!(
        "\n[[publish.trello]]\nid = \"trello\"\nurl = \"{}\"\nkey_env = \"TRELLO_KEY\"\ntoken_env = \"TRELLO_TOKEN\"\nboards = [\"{BOARD}\"]\n{extra}",
        server.url
    )
}

const TRELLO_ENV: [(&str, &str); 2] = [("TRELLO_KEY", TRELLO_KEY), ("TRELLO_TOKEN", TRELLO_TOKEN)];

/// `METHOD PATH` and the query without key and token (checked by the fake).
fn trello_lines(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| {
            let (path, mut q) = split(&s.path);
            assert_eq!((q.remove("key"), q.remove("token")), (Some(TRELLO_KEY.into()), Some(TRELLO_TOKEN.into())));
            let q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} {path} {}", s.method, q.join(" "))
        })
        .collect()
}

#[test]
fn trello_cards_get_their_prefix_replaced_never_doubled_found_by_key_or_commit_and_a_rerun_sends_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    let trello = Trello::new(cards(&h));
    Trello::serve(&trello, &server);
    h.append_config(&trello_config(&server, "by_commit = true\n"));
    h.record_all_with(&TRELLO_ENV);
    let seen = server.take();
    for s in &seen {
        assert_eq!(s.header("accept"), Some("application/json"));
        assert!(s.body.is_empty());
    }
    let search =
        |q: &str| format!("GET /1/search card_fields=name cards_limit=50 idBoards={BOARD} modelTypes=cards query={q}");
    let commit = |v: &str| search(&h.repo.rev(v));
    let put = |id: &str, name: &str| format!("PUT /1/cards/5f0000000000000000000{id} name={name}");
    let want = vec![
        search("SHOP-101"),
        commit("v1.1.0"),
        put("101", "[[ IN PRODUCTION ]] SHOP-101 Faster checkout"),
        search("SHOP-102"),
        commit("v1.2.0"),
        put("102", "[[ IN PRODUCTION ]] SHOP-102 New cart"),
        // The rollback removed SHOP-102.
        search("SHOP-102"),
        commit("v1.2.0"),
        put("102", "[[ NOT DEPLOYED ]] SHOP-102 New cart"),
        // The partial rollout ships SHOP-102 and SHOP-103 (whose card names SHOP-102 only in a comment).
        search("SHOP-102"),
        search("SHOP-103"),
        // The commits as the ledger lists them, newest first.
        commit("v1.3.0"),
        commit("v1.2.0"),
        put("102", "[[ IN PRODUCTION ]] SHOP-102 New cart"),
        put("103", "[[ IN PRODUCTION ]] SHOP-103 Bigger cart"),
        // The hotfix: no card names SHOP-104; one card's comment links the commit.
        search("SHOP-104"),
        commit("v1.3.1"),
        "GET /1/cards/5f0000000000000000000104/actions filter=commentCard".to_string(),
        put("104", "[[ IN PRODUCTION ]] Customers see a crash on an empty cart"),
    ];
    assert_eq!(trello_lines(&seen), want);
    let names: Vec<String> = trello.lock().unwrap().cards.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        [
            "[[ IN PRODUCTION ]] SHOP-101 Faster checkout",
            "SHOP-1010 Checkout copy",
            "[[ IN PRODUCTION ]] SHOP-102 New cart",
            "[[ IN PRODUCTION ]] SHOP-103 Bigger cart",
            "[[ IN PRODUCTION ]] Customers see a crash on an empty cart",
            "SHOP-101 Another team's card",
        ]
    );
    let again = publish(&h, &[], NOW, &TRELLO_ENV);
    again.expect_code(0);
    assert_eq!(again.stdout, "published: 0 sent, 0 failed, 0 waiting\n");
    assert!(server.take().is_empty(), "a rerun sends nothing");
}

/// Trello's 401 `invalid token` is a failure; a card deleted between the search and the
/// rename (404) is a note; a 429 stops the run.
#[test]
fn trello_errors_invalid_token_a_card_gone_and_a_rate_limit() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    let trello = Trello::new(cards(&h));
    Trello::serve(&trello, &server);
    h.record_all();
    h.append_config(&trello_config(&server, ""));
    let wrong = publish(&h, &[], NOW, &[("TRELLO_KEY", TRELLO_KEY), ("TRELLO_TOKEN", "Cn-expired-token-77")]);
    wrong.expect_code(3);
    assert!(wrong.stdout.starts_with("published: 9 sent, 5 failed, 0 waiting\n"), "{}", wrong.stdout);
    assert!(wrong.stdout.contains(&format!("  failed: trello {SHOP_101}: SHOP-101/search: HTTP 401 invalid token\n")));
    assert_eq!(server.take().len(), 5);

    // The SHOP-101 card is deleted after the search found it.
    trello.lock().unwrap().faults.push(("PUT /1/cards/5f0000000000000000000101".into(), not_found()));
    let limited = (
        429,
        vec![("content-type", "application/json".to_string())],
        json!({"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}).to_string(),
    );
    trello.lock().unwrap().faults.push(("GET /1/search".into(), limited.clone()));
    // The first search is rate-limited (no Retry-After: a minute), the rest wait.
    let at = "2026-01-08T11:01:00Z";
    let rate = publish(&h, &[], at, &TRELLO_ENV);
    rate.expect_code(3);
    assert_eq!(
        rate.stdout,
        format!(
            "published: 0 sent, 1 failed, 4 waiting\n  failed: trello {SHOP_101}: SHOP-101/search: HTTP 429 {}\n",
            limited.2
        )
    );
    assert_eq!(server.take().len(), 1);
    let later = publish(&h, &[], "2026-01-08T11:02:00Z", &TRELLO_ENV);
    later.expect_code(0);
    assert!(later.stdout.starts_with("published: 5 sent, 0 failed, 0 waiting\n"), "{}", later.stdout);
    assert!(
        later.stdout.contains(&format!(
            "  note: trello {SHOP_101}: card/5f0000000000000000000101: the card is gone (HTTP 404 The requested resource was not found.): skipped\n"
        )),
        "{}",
        later.stdout
    );
    let names: Vec<String> = trello.lock().unwrap().cards.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names[0], "SHOP-101 Faster checkout", "the 404 fault left it as it was");
    assert_eq!(names[2], "[[ IN PRODUCTION ]] SHOP-102 New cart");
    // Without by_commit the card named by no key is not found.
    assert_eq!(names[4], "Customers see a crash on an empty cart");
}

// ---- Both: the dry run, secrets, config errors --------------------------------------------

#[test]
fn the_dry_run_prints_jira_and_trello_requests_with_placeholders_and_sends_nothing() {
    let jira_server = Server::start();
    let trello_server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    Jira::serve(&Jira::new(&["SHOP-104"]), &jira_server);
    Trello::serve(&Trello::new(cards(&h)), &trello_server);
    h.record_all();
    h.append_config(&jira_config(&jira_server, "transition = \"Done\"\n"));
    h.append_config(&trello_config(&trello_server, "by_commit = true\n"));
    let env = [TRELLO_ENV[0], TRELLO_ENV[1], ("JIRA_TOKEN", JIRA_TOKEN)];
    let dry = publish(&h, &["--dry-run", "--since", "29m"], NOW, &env);
    dry.expect_code(0);
    assert!(jira_server.take().is_empty() && trello_server.take().is_empty(), "a dry run sends nothing");
    // The last 29 minutes hold the 11:00 run: production ships SHOP-104 (eu is not configured).
    let blocks: Vec<&str> = dry.stdout.split("\n\n# ").collect();
    let head = |b: &str| b.trim_start_matches("# ").lines().take(2).collect::<Vec<_>>().join(" | ");
    let j = &jira_server.url;
    let t = &trello_server.url;
    let hotfix = h.repo.rev("v1.3.1");
    let keys = "key=[redacted]&token=[redacted]";
    let prefix = "%5B%5B%20IN%20PRODUCTION%20%5D%5D%20{card name}";
    let search = |q: &str| {
        format!("trello | GET {t}/1/search?query={q}&modelTypes=cards&idBoards={BOARD}&card_fields=name&cards_limit=50&{keys}")
    };
    assert_eq!(
        blocks.iter().map(|b| head(b)).collect::<Vec<_>>(),
        [
            format!("jira | PUT {j}/rest/api/3/issue/SHOP-104"),
            format!("jira | POST {j}/rest/api/3/issue/SHOP-104/comment"),
            format!("jira | GET {j}/rest/api/3/issue/SHOP-104/transitions"),
            format!("jira | POST {j}/rest/api/3/issue/SHOP-104/transitions"),
            search("SHOP-104"),
            format!("trello | PUT {t}/1/cards/{{card id}}?name={prefix}&{keys}"),
            search(&hotfix),
            format!("trello | GET {t}/1/cards/{{card id}}/actions?filter=commentCard&{keys}"),
            format!("trello | PUT {t}/1/cards/{{card id}}?name={prefix}&{keys}"),
        ]
    );
    assert!(blocks[0].contains("\nauthorization: Basic [redacted]\n"), "{}", blocks[0]);
    assert!(blocks[0].ends_with("{\"update\":{\"labels\":[{\"add\":\"deployed-production\"}]}}"), "{}", blocks[0]);
    assert!(blocks[3].ends_with("{\"transition\":{\"id\":\"{transition id}\"}}"), "{}", blocks[3]);
    for secret in [JIRA_TOKEN, TRELLO_KEY, TRELLO_TOKEN] {
        assert!(!dry.stdout.contains(secret) && !dry.stderr.contains(secret));
    }
    // Nothing was stored: the real run sends them.
    let real = publish(&h, &["--since", "29m"], NOW, &env);
    real.expect_code(0);
    assert_eq!(real.stdout, "published: 4 sent, 0 failed, 0 waiting\n", "two events, two targets");
    assert_eq!((jira_server.take().len(), trello_server.take().len()), (4, 4));
}

/// The canary for ticket targets: the Jira token, its base64 `email:token` (the header) and
/// Trello's key and token, searched for in every form in the output of `record` (`-vv`),
/// `publish`, `publish --dry-run`, failures whose bodies echo what was sent, and the ledger.
#[test]
fn ticket_secrets_never_reach_output_errors_the_dry_run_or_the_ledger() {
    let jira_server = Server::start();
    let trello_server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let h = History::new(ledger.to_str().unwrap().to_string());
    let jira = Jira::new(&["SHOP-101", "SHOP-102", "SHOP-103", "SHOP-104"]);
    Jira::serve(&jira, &jira_server);
    let trello = Trello::new(cards(&h));
    Trello::serve(&trello, &trello_server);
    let env = [TRELLO_ENV[0], TRELLO_ENV[1], ("JIRA_TOKEN", JIRA_TOKEN)];
    // Recording with the Jira token unset: publishing to Jira fails, recording does not.
    h.append_config(&jira_config(&jira_server, ""));
    h.append_config(&trello_config(&trello_server, "by_commit = true\n"));
    let mut runs = vec![];
    h.record_all_with(&env[..2]);
    assert!(jira_server.take().is_empty());
    trello_server.take();
    // The next request to each answers with an error quoting its credentials.
    jira.lock().unwrap().echo = true;
    trello.lock().unwrap().echo = true;
    runs.push(h.prodiff_with(&["publish", "--dry-run"], NOW, &env));
    runs.push(h.prodiff_with(&["publish"], NOW, &env));
    runs[1].expect_code(3);
    assert!(
        runs[1].stdout.contains("HTTP 400 bad request from Basic [redacted] at /rest/api/3/issue/SHOP-101"),
        "{}",
        runs[1].stdout
    );
    runs.push(h.prodiff_with(&["publish"], "2026-01-09T11:00:00Z", &env));
    runs.push(h.prodiff_with(&["record", "--offline", "-vv"], "2026-01-09T11:00:00Z", &env));
    assert_eq!(runs[0].stdout.matches("authorization: Basic [redacted]\n").count(), 12, "{}", runs[0].stdout);
    assert!(jira_server.take().iter().all(|s| s.header("authorization").is_some()));
    let stored = String::from_utf8_lossy(&std::fs::read(&ledger).unwrap()).into_owned();
    let header = b64(&format!("{EMAIL}:{JIRA_TOKEN}"));
    crate::publish::assert_no_secret(&[JIRA_TOKEN, header.as_str(), TRELLO_KEY, TRELLO_TOKEN], &runs, &[&stored]);
}

#[test]
fn ticket_target_config_errors_name_the_file_and_line() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    let config = h.repo.scratch().join("prodiff.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let lines = base.lines().count();
    let cases = [
        // (appended text, line of the fault counted from the appended text's first line, message)
        (format!("\n[[publish.jira]]\nurl = \"{}\"\ntoken_env = \"JIRA_TOKEN\"\n", server.url), 2, "publish.jira[0].email is required"),
        (format!("\n[[publish.jira]]\nurl = \"{}\"\nemail = \"a@b.c\"\ntoken_env = \"T\"\nlabel = \"in production\"\n", server.url), 6, "publish.jira[0].label: Jira labels cannot contain spaces"),
        ("\n[[publish.jira]]\nurl = \"jira.example.com\"\nemail = \"a@b.c\"\ntoken_env = \"T\"\n".to_string(), 3, "publish.jira[0].url: not an http(s) URL"),
        (format!("\n[[publish.jira]]\nurl = \"{}\"\nemail = \"a@b.c\"\ntoken_env = \"T\"\nlabel = \"\"\ncomment = false\n", server.url), 2, "publish.jira[0]: nothing to do (no label, no comment, no transition)"),
        ("\n[[publish.trello]]\nkey_env = \"K\"\ntoken_env = \"T\"\nboards = []\n".to_string(), 5, "publish.trello[0].boards: empty"),
        ("\n[[publish.trello]]\nkey_env = \"K\"\ntoken_env = \"T\"\nboards = [\"b1\"]\nremoved_prefix = \"[[ IN PRODUCTION ]]\"\n".to_string(), 6, "publish.trello[0]: deployed_prefix and removed_prefix are the same"),
        ("\n[[publish.trello]]\nkey_env = \"K\"\nboards = [\"b1\"]\nlabel = \"x\"\n".to_string(), 5, "unknown field `label`"),
    ];
    for (text, line, message) in cases {
        std::fs::write(&config, format!("{base}{text}")).unwrap();
        let bad = publish(&h, &[], NOW, &[]);
        bad.expect_code(2);
        let at = format!("prodiff.toml:{}:", lines + line);
        assert!(bad.stderr.contains(&at) && bad.stderr.contains(message), "{at} {message} in {}", bad.stderr);
    }
}

/// The README's `[[publish.jira]]` and `[[publish.trello]]` examples are valid config: a dry
/// run with them prints requests to the documented hosts.
#[test]
fn the_readmes_ticket_target_examples_are_valid_config() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("### Tickets: Jira Cloud and Trello").nth(1).unwrap().split("\n## ").next().unwrap();
    let examples: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .filter(|b| b.starts_with("[[publish.jira]]") || b.starts_with("[[publish.trello]]"))
        .collect();
    assert_eq!(examples.len(), 2, "{section}");
    let dir = tempfile::tempdir().unwrap();
    let h = History::new(dir.path().join("ledger.db").to_str().unwrap().to_string());
    h.record_all();
    for e in &examples {
        h.append_config(&format!("\n{e}"));
    }
    let env = [("JIRA_API_TOKEN", JIRA_TOKEN), ("TRELLO_API_KEY", TRELLO_KEY), ("TRELLO_TOKEN", TRELLO_TOKEN)];
    let dry = publish(&h, &["--dry-run", "--since", "29m"], NOW, &env);
    dry.expect_code(0);
    assert!(
        dry.stdout.contains("# jira\nPUT https://yourco.atlassian.net/rest/api/3/issue/SHOP-104\n"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("# trello\nGET https://api.trello.com/1/search?query=SHOP-104&"), "{}", dry.stdout);
}
