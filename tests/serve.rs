//! `prodiff serve` on the demo, on a free loopback port: the pages in chromium and with a
//! plain HTTP client, the read-only and size bounds (405, 413, 431), the bearer token (401,
//! never printed), the loopback default, and a slow source that does not hold pages up.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::demo::{demo_dir, make_demo_repo};
use crate::util_browser::{self, cell};

/// A running `prodiff serve`, stopped when dropped (even when the test fails).
struct Served {
    child: Child,
    /// `127.0.0.1:PORT`, from the line it prints on stderr.
    addr: String,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (at most 90 s) until `/` answers 200: the first audit has finished.
    fn ready(&self) -> &Served {
        let started = Instant::now();
        loop {
            if get(&self.addr, "/", &[]).status == 200 {
                return self;
            }
            assert!(started.elapsed() < Duration::from_secs(90), "no audit finished in 90 s:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Starts serve on the demo with `args` (and `env`), on a port the system picks.
fn serve(args: &[&str], env: &[(&str, &str)], config: Option<&Path>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let repo = make_demo_repo(dir.path());
    let stderr = dir.path().join("stderr");
    let config = config.map(Path::to_path_buf).unwrap_or_else(|| demo_dir().join("prodiff.toml"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prodiff"));
    cmd.arg("serve").args(args).args(["--offline", "--repo"]).arg(&repo).arg("--config").arg(&config);
    cmd.env_remove("RUST_LOG").env_remove("PRODIFF_LEDGER").env_remove("PRODIFF_NOW").envs(env.iter().copied());
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&stderr).unwrap());
    let child = cmd.spawn().expect("prodiff serve starts");
    let mut served = Served { child, addr: String::new(), stderr, _dir: dir };
    let started = Instant::now();
    while served.addr.is_empty() {
        let text = served.stderr();
        if let Some(at) = text.find("serving http://") {
            let rest = &text[at + "serving http://".len()..];
            served.addr = rest[..rest.find('/').unwrap()].to_string();
        }
        if let Some(status) = served.child.try_wait().unwrap() {
            panic!("prodiff serve exited ({status}):\n{text}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "serve printed no address:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    served
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// A plain HTTP/1.1 request (one connection, `Connection: close`), within 30 s.
fn request(addr: &str, raw: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer { status, head: head.to_ascii_lowercase(), body: body.to_string() }
}

fn get(addr: &str, path: &str, headers: &[&str]) -> Answer {
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    request(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n").as_bytes())
}

#[test]
fn the_dashboard_serves_the_matrix_and_its_pages() {
    let s = serve(&["--port", "0", "--interval", "30"], &[], None);
    // No --bind: loopback.
    assert!(s.addr.starts_with("127.0.0.1:"), "{}", s.stderr());
    s.ready();

    let home = get(&s.addr, "/", &[]);
    assert!(home.head.contains("content-type: text/html; charset=utf-8"), "{}", home.head);
    assert!(home.head.contains("content-security-policy: default-src 'none'"), "{}", home.head);
    assert!(home.body.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert!(home.body.contains("Result of the audit that finished at"), "{}", home.body);
    let api = cell(&home.body, "production", "api");
    assert!(
        api.contains(">1.4.1<") && api.contains("10fea9a142") && api.contains("<span class=\"n\">↑ 1</span> ahead"),
        "{api}"
    );
    assert!(home.body.contains("<a href=\"/env/production\">production</a>"));

    let env = get(&s.addr, "/env/production", &[]);
    assert_eq!(env.status, 200);
    assert!(env.body.contains("<title>prodiff: environment production</title>"));
    cell(&env.body, "production", "web");
    assert!(!env.body.contains("data-env=\"staging\""), "the production page shows staging");
    assert!(env.body.contains("SHOP-120 hotfix: crash on empty cart"), "the commits are listed");

    let service = get(&s.addr, "/service/api", &[]);
    assert_eq!(service.status, 200);
    cell(&service.body, "staging", "api");
    cell(&service.body, "production", "api");
    assert!(!service.body.contains("data-service=\"web\""));

    assert_eq!(get(&s.addr, "/env/nowhere", &[]).status, 404);
    // No ledger here: no timeline or metrics, and the page says how to get one.
    assert!(!home.body.contains("/timeline"), "{}", home.body);
    let t = get(&s.addr, "/timeline", &[]);
    assert_eq!(t.status, 404);
    assert!(t.body.contains("No deployment ledger here yet"), "{}", t.body);
    assert_eq!(get(&s.addr, "/etc/passwd", &[]).status, 404);

    // HEAD: the headers of GET, no body.
    let head = request(&s.addr, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has a body: {}", head.body);
    assert!(head.head.contains(&format!("content-length: {}", home.body.len())), "{}", head.head);

    // Read-only, and bounded.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = request(
            &s.addr,
            format!("{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 405, "{method}: {}", r.head);
        assert!(r.head.contains("allow: get, head"), "{}", r.head);
    }
    let r = request(&s.addr, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    assert_eq!(r.status, 413, "{}", r.head);
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(64 * 1024));
    assert_eq!(request(&s.addr, huge.as_bytes()).status, 431);

    // The same pages in a real browser: no console messages (the CSP would report a
    // blocked style or script there), and a screenshot.
    let dir = util_browser::artefacts("serve");
    for (path, name) in [("/", "matrix"), ("/env/production", "env-production"), ("/service/api", "service-api")] {
        let url = format!("http://{}{path}", s.addr);
        let page = util_browser::load(&url);
        assert!(page.console.is_empty(), "{path}: console messages:\n{}", page.console.join("\n"));
        assert!(page.dom.contains("data-env=\"production\" data-service=\"api\""), "{path}: {}", page.dom);
        util_browser::screenshot(&url, &dir.join(format!("{name}.png")), 1000);
    }
    // Every request is logged with its status, nothing more.
    let log = s.stderr();
    assert!(!log.contains("X-Big") && !log.contains("aaaa"), "{log}");
}

#[test]
fn a_token_is_required_when_set_and_never_printed() {
    let token = "dash-7f3e9a1c-secret";
    let s = serve(&["--port", "0", "--token-env", "DASH_TOKEN", "-v"], &[("DASH_TOKEN", token)], None);
    assert!(s.stderr().contains("bearer token required"));
    let started = Instant::now();
    loop {
        let r = get(&s.addr, "/", &[&format!("Authorization: Bearer {token}")]);
        if r.status == 200 {
            assert!(r.body.contains("data-env=\"production\""));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no audit finished:\n{}", s.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    for headers in [
        &[][..],
        &["Authorization: Bearer wrong-token-wrong-token"][..],
        &[&format!("Authorization: Basic {token}")[..]][..],
    ] {
        let r = get(&s.addr, "/", headers);
        assert_eq!(r.status, 401, "{headers:?}: {}", r.head);
        assert!(r.head.contains("www-authenticate: bearer realm=\"prodiff\""), "{}", r.head);
        assert!(!r.body.contains("data-env"), "a page leaked without the token");
    }
    // -v logs every request; the token is in none of them.
    let log = s.stderr();
    assert!(log.contains("serve: GET / 401") && log.contains("serve: GET / 200"), "{log}");
    assert!(!log.contains(token), "{log}");
}

#[test]
fn serve_refuses_a_remote_address_without_allow_remote_and_a_missing_token() {
    let dir = tempfile::tempdir().unwrap();
    let repo = make_demo_repo(dir.path());
    let config = demo_dir().join("prodiff.toml");
    let base = ["--offline", "--repo", repo.to_str().unwrap(), "--config", config.to_str().unwrap()];
    let run = |extra: &[&str]| {
        let mut args = vec!["serve"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&base);
        crate::util::prodiff_env(dir.path(), &args, None, &[])
    };
    let r = run(&["--bind", "0.0.0.0:0"]);
    r.expect_code(2);
    assert!(r.stderr.contains("--bind 0.0.0.0: not a loopback address"), "{}", r.context);
    let r = run(&["--port", "0", "--token-env", "PRODIFF_TEST_NO_SUCH_VARIABLE"]);
    r.expect_code(2);
    assert!(r.stderr.contains("PRODIFF_TEST_NO_SUCH_VARIABLE is not set, or empty"), "{}", r.context);
}

#[test]
fn a_slow_source_does_not_hold_pages_up() {
    // A version endpoint that accepts and never answers: each audit waits its 3 s timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in silent.incoming().take(100).flatten() {
            open.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prodiff.toml");
    let demo = std::fs::read_to_string(demo_dir().join("prodiff.toml")).unwrap().replace(
        "inventory = [\"production.json\"]",
        &format!(
            "inventory = [\"{}\"]\nendpoints = [{{ service = \"api\", url = \"http://127.0.0.1:{port}/version\", timeout_ms = 3000 }}]",
            demo_dir().join("production.json").display()
        ),
    );
    let demo = demo.replace(
        "inventory = [\"staging.json\"]",
        &format!("inventory = [\"{}\"]", demo_dir().join("staging.json").display()),
    );
    std::fs::write(&config, demo).unwrap();
    let s = serve(&["--port", "0", "--interval", "1"], &[], Some(&config));
    // Before the first audit finished: a page saying so, at once.
    let first = get(&s.addr, "/", &[]);
    if first.status == 503 {
        assert!(first.body.contains("The first audit is running"), "{}", first.body);
        assert!(first.head.contains("retry-after: 2"), "{}", first.head);
    }
    s.ready();
    // Audits now run back to back, each held 3 s by the endpoint: a page asked meanwhile
    // is the previous result, saying a new audit is running.
    let started = Instant::now();
    loop {
        let r = get(&s.addr, "/", &[]);
        assert_eq!(r.status, 200);
        if r.body.contains("A new audit is running.") {
            assert!(r.body.contains("source-unreachable"), "the endpoint's finding is shown");
            assert!(r.body.contains("⚠ Incomplete"), "the result says it is incomplete");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never served during an audit:\n{}", r.body);
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(s);
    // Unblock the holder thread: connect until it has taken its 100.
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            break;
        }
    }
    held.join().unwrap();
}

/// Records the README's ledger demo (five moments of staging and production) into
/// `DIR/ledger.db`, with a config that has a promotion path; returns the config.
fn record_ledger_demo(dir: &Path) -> PathBuf {
    let repo = make_demo_repo(dir);
    let config = dir.join("prodiff.toml");
    std::fs::write(
        &config,
        "mainline = \"main\"\npromotion = [\"staging\", \"production\"]\n[services.api]\nimage = \"registry.example.com/shop/api\"\n\
         paths = [\"services/api\"]\n[environments.staging]\ninventory = [\"staging.json\"]\n\
         [environments.production]\ninventory = [\"production.json\"]\n",
    )
    .unwrap();
    let ledger = dir.join("ledger.db");
    let fleet = |now: &str, staging: &str, production: &str, started: Option<&str>| {
        let row = |tag: &str, started: Option<&str>| {
            let started = started.map(|s| format!(", \"started_at\": \"{s}\"")).unwrap_or_default();
            format!("{{\"workloads\": [{{\"service\": \"api\", \"image\": \"registry.example.com/shop/api:{tag}\"{started}}}]}}")
        };
        std::fs::write(dir.join("staging.json"), row(staging, None)).unwrap();
        std::fs::write(dir.join("production.json"), row(production, started)).unwrap();
        let args = ["record", "--offline", "--repo", repo.to_str().unwrap(), "--config", config.to_str().unwrap()];
        let args = [&args[..], &["--ledger", ledger.to_str().unwrap()]].concat();
        crate::util::prodiff_env(dir, &args, None, &[("PRODIFF_NOW", now)]).expect_code(0);
    };
    fleet("2025-11-17T12:00:00Z", "1.4.0", "1.4.0", None);
    fleet("2025-11-18T12:00:00Z", "1.5.0", "1.4.0", None);
    fleet("2025-11-19T12:00:00Z", "1.5.0", "1.5.0", Some("2025-11-19T11:00:00Z"));
    fleet("2025-11-19T13:00:00Z", "1.5.0", "1.4.0", None);
    fleet("2025-11-20T12:00:00Z", "1.5.0", "1.4.1", Some("2025-11-20T09:12:00Z"));
    config
}

#[test]
fn the_timeline_and_metrics_pages_draw_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let config = record_ledger_demo(dir.path());
    let ledger = dir.path().join("ledger.db");
    let s = serve(
        &["--port", "0", "--ledger", ledger.to_str().unwrap()],
        &[("PRODIFF_NOW", "2025-11-21T12:00:00Z")],
        Some(&config),
    );
    s.ready();
    let home = get(&s.addr, "/", &[]);
    assert!(home.body.contains("<a href=\"/timeline\">Timeline</a> <a href=\"/metrics\">Metrics</a>"), "{}", home.body);
    // The cells say how long each state has run, from the ledger.
    let staging = cell(&home.body, "staging", "api");
    assert!(staging.contains("1 replica · deployed 3d–4d ago (ledger) · via git-tag"), "{staging}");
    let production = cell(&home.body, "production", "api");
    assert!(production.contains("1 replica · deployed 1d 2h ago (ledger)"), "{production}");

    let t = get(&s.addr, "/timeline", &[]);
    assert_eq!(t.status, 200, "{}", t.body);
    let body = &t.body;
    assert!(body.contains("6 changes in the ledger, from 2025-11-17 12:00 to 2025-11-21 12:00."), "{body}");
    // The table, newest first: the hotfix, the rollback between two runs, 1.5.0's deploy...
    let rows: Vec<&str> = body.split("<tr class=\"").skip(1).collect();
    assert_eq!(rows.len(), 6, "{body}");
    assert!(rows[0].starts_with("deploy\"><td>2025-11-20 09:12</td><td>production/api</td><td>● deploy</td><td>1.4.0 (a06f55e)</td><td>1.4.1 (10fea9a)</td><td>2</td><td>0</td><td>SHOP-110, SHOP-120</td>"), "{}", rows[0]);
    assert!(rows[1].starts_with("rollback\"><td>between 2025-11-19 12:00 and 2025-11-19 13:00</td><td>production/api</td><td>↺ rollback</td><td>1.5.0 (f8902f6)</td><td>1.4.0 (a06f55e)</td><td>0</td><td>2</td>"), "{}", rows[1]);
    assert!(rows[5].contains("<td>○ first seen</td>"), "{}", rows[5]);
    // Lanes in promotion order: staging above production.
    assert!(body.find(">staging/api</text>").unwrap() < body.find(">production/api</text>").unwrap(), "{body}");

    let m = get(&s.addr, "/metrics", &[]);
    assert_eq!(m.status, 200, "{}", m.body);
    let prod = &m.body[m.body.find("data-env=\"production\"").expect("production's figures")..];
    // What `prodiff metrics --env production` gives on the same ledger (fixtures/demo/ledger.expected).
    for want in [
        "<p>2 deployments.</p>",
        "<td>deployment frequency</td><td><strong>0.50 per day</strong></td><td>–</td><td>high</td><td>2 deployments</td>",
        "<td>lead time for changes</td><td><strong>10d 20h</strong></td><td>12d 22h</td><td>medium</td><td>4 commits</td>",
        "<td>change failure rate</td><td><strong>50.0%</strong></td><td>–</td><td>low</td><td>2 deployments</td>",
        "<td>failed deployment recovery time</td><td><strong>2h</strong></td><td>2h</td><td>high</td><td>1 failed deployments</td>",
    ] {
        assert!(prod.contains(want), "no {want:?} in:\n{prod}");
    }
    assert!(m.body.contains("data-env=\"staging\""), "staging has figures too");
    assert!(m.body.contains("<title>2025-11-19: 1 deployment, 1 rollback</title>"), "{}", m.body);

    let dir = util_browser::artefacts("serve-ledger");
    for (path, name) in [("/timeline", "timeline"), ("/metrics", "metrics")] {
        let url = format!("http://{}{path}", s.addr);
        let page = util_browser::load(&url);
        assert!(page.console.is_empty(), "{path}: console messages:\n{}", page.console.join("\n"));
        assert!(page.dom.contains("<svg"), "{path}: no chart");
        util_browser::screenshot(&url, &dir.join(format!("{name}.png")), 1000);
    }
}
