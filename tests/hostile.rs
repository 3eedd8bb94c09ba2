//! The hostile test bed (issue 12): a registry, token endpoint and version endpoint that
//! misbehave on purpose (scripted with the fault proxy of `util_registry`), and inputs an
//! attacker would write. One test per finding; each failed on the code before the fix.
//! Memory and time are asserted loosely ("finished, under 200 MiB"): these are guards
//! against hangs and unbounded growth, not timing tests.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::util::*;
use crate::util_registry::*;

/// Loose guards: a run that needs more is unbounded, not slow.
const DEADLINE: Duration = Duration::from_secs(90);
const MAX_RSS_MIB: u64 = 200;

fn history() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.commit("main", "two", &[("a.txt", "2")]);
    r
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn workload(image: &str, pinned: &[String], image_id: Option<&str>) -> Value {
    let mut w = json!({"environment": "production", "service": "api", "image": image, "repo_digests": pinned});
    if let Some(id) = image_id {
        w["image_id"] = json!(id);
    }
    w
}

/// A port that refuses connections (bound, then closed).
fn closed_port() -> u16 {
    free_port()
}

/// A scripted server with no upstream: every answer comes from `script`.
fn server(script: impl Fn(&Seen, usize) -> Act + Send + Sync + 'static) -> Proxy {
    Proxy::start(closed_port(), script)
}

/// A proxy in front of `upstream` that demands a bearer token from its own `/token`, which
/// `token` answers; with the right token (`Bearer good`) requests are forwarded.
fn bearer_proxy(upstream: u16, token: impl Fn(&Seen) -> Act + Send + Sync + 'static) -> Proxy {
    let port: Arc<OnceLock<u16>> = Arc::default();
    let p = port.clone();
    let proxy = Proxy::start(upstream, move |req, _| {
        if req.path.starts_with("/token") {
            return token(req);
        }
        if req.authorization.as_deref() == Some("Bearer good") {
            return Act::Forward;
        }
        let realm = format!("Bearer realm=\"http://127.0.0.1:{}/token\",service=\"test\"", p.get().unwrap());
        Act::Reply(401, vec![("WWW-Authenticate".into(), realm)], b"{}".to_vec())
    });
    port.set(proxy.port).unwrap();
    proxy
}

/// A registry holding `shop/api:1.0` (one amd64 image labelled with `two`).
fn registry(r: &TestRepo) -> (TestRegistry, Image) {
    let reg = TestRegistry::start();
    let img = reg.push_image("shop/api", "linux/amd64", &[(REV, &r.rev("two"))], "h");
    reg.tag("shop/api", "1.0", &img.manifest, OCI_MANIFEST);
    (reg, img)
}

/// `status --format json` under the loose guards, with `config` as prodiff.toml.
fn guarded(home: &Home, r: &TestRepo, config: &str, inventory: Option<&std::path::Path>) -> Bounded {
    let path = home.dir.path().join("prodiff.toml");
    std::fs::write(&path, config).unwrap();
    let mut args = vec!["status", "--format", "json", "--repo", r.path().to_str().unwrap()];
    args.extend(["--config", path.to_str().unwrap()]);
    if let Some(i) = inventory {
        args.extend(["--inventory", i.to_str().unwrap()]);
    }
    let started = std::time::Instant::now();
    let b = bounded(home.command(r.path(), &args), DEADLINE);
    // For the record (`--nocapture`), never asserted beyond the loose bounds.
    eprintln!("hostile run: {} MiB peak, {:.1?}", b.max_rss_mib, started.elapsed());
    assert_ne!(b.run.code, 101, "a panic\n{}", b.run.context);
    assert!(b.max_rss_mib < MAX_RSS_MIB, "peak memory {} MiB\n{}", b.max_rss_mib, b.run.context);
    b
}

fn messages(report: &Value) -> String {
    let mut all: Vec<String> = report["findings"].as_array().unwrap().iter().map(|f| f.to_string()).collect();
    for r in report["results"].as_array().unwrap() {
        all.extend(r["findings"].as_array().unwrap().iter().map(|f| f.to_string()));
    }
    all.join("\n")
}

fn assert_absent(haystack: &str, needles: &[&str], context: &str) {
    for n in needles {
        assert!(!haystack.contains(n), "{n:?} leaked\n{context}");
    }
}

// ---- secrets printed ----

#[test]
fn a_docker_host_with_userinfo_is_printed_and_keyed_without_it() {
    let r = history();
    let home = Home::new();
    let port = closed_port();
    let config = format!("[environments.production]\ndocker = [\"tcp://ops:Dh-pw-4411@127.0.0.1:{port}\"]\n");
    let b = guarded(&home, &r, &config, None);
    let report = b.run.json();
    let all = report["findings"].as_array().unwrap();
    let f = all.iter().find(|f| f["code"] == "source-unreachable").expect(&b.run.context);
    assert_eq!(f["key"], format!("tcp://127.0.0.1:{port}"), "{}", b.run.context);
    assert_absent(&(b.run.stdout.clone() + &b.run.stderr), &["Dh-pw-4411", "ops:"], &b.run.context);
}

#[test]
fn a_version_endpoint_with_userinfo_that_echoes_authorization_leaks_nothing() {
    let r = history();
    let home = Home::new();
    let echo = server(|req, _| {
        let body = format!("<html>no version here; you sent Authorization: {:?}</html>", req.authorization);
        Act::Reply(200, vec![], body.into_bytes())
    });
    let inv = write_inventory(
        home.dir.path(),
        vec![json!({"environment": "production", "service": "api", "image": "nginx"})],
    );
    let config = format!(
        "[environments.production]\ninventory = [{:?}]\n[[environments.production.endpoints]]\nservice = \"api\"\nurl = \"http://ep-user:Ep-pw-7723@{}/__version__\"\n",
        inv.display(),
        echo.host()
    );
    let b = guarded(&home, &r, &config, None);
    let sent = echo.seen.lock().unwrap()[0].authorization.clone().unwrap();
    assert_eq!(sent, format!("Basic {}", b64("ep-user:Ep-pw-7723")), "the endpoint got the credentials");
    let report = b.run.json();
    assert!(messages(&report).contains("no commit found in"), "{}", b.run.context);
    assert_absent(&b.run.stdout, &["Ep-pw-7723", &b64("ep-user:Ep-pw-7723")], &b.run.context);
}

/// A password whose `user:password` base64 holds a `/` (so JSON can escape it as `\/`).
fn slashy_login(user: &str, stem: &str) -> String {
    (1..10).map(|k| format!("{stem}&{}", "?".repeat(k))).find(|p| b64(&format!("{user}:{p}")).contains('/')).unwrap()
}

#[test]
fn a_token_endpoint_echoing_credentials_json_escaped_leaks_nothing() {
    let r = history();
    let (reg, img) = registry(&r);
    let user = "tok-user";
    let password = slashy_login(user, "Tk-pw-9051");
    let header = format!("Basic {}", b64(&format!("{user}:{password}")));
    let proxy = bearer_proxy(reg.port, |req| {
        // Echo what was sent, JSON-escaped the way PHP (`\/`) and Go (`\u0026`) do.
        let sent = req.authorization.clone().unwrap_or_default();
        let body = format!(
            r#"{{"errors":[{{"code":"DENIED","detail":"{}","raw":"{}"}}]}}"#,
            sent.replace('/', "\\/"),
            String::from_utf8(
                base64::engine::general_purpose::STANDARD.decode(sent.get(6..).unwrap_or("")).unwrap_or_default()
            )
            .unwrap_or_default()
            .replace('&', "\\u0026")
        );
        Act::Reply(401, vec![("Content-Type".into(), "application/json".into())], body.into_bytes())
    });
    let home = Home::new();
    std::fs::write(
        home.docker().join("config.json"),
        json!({"auths": {proxy.host(): {"auth": b64(&format!("{user}:{password}"))}}}).to_string(),
    )
    .unwrap();
    let host = proxy.host();
    let inv = write_inventory(home.dir.path(), vec![workload(&format!("{host}/shop/api:1.0"), &[], Some(&img.config))]);
    let b = guarded(&home, &r, "", Some(&inv));
    assert!(proxy.seen.lock().unwrap().iter().any(|s| s.authorization.as_deref() == Some(header.as_str())));
    let report = b.run.json();
    assert!(messages(&report).contains("token endpoint answered HTTP 401"), "{}", b.run.context);
    let escaped = header[6..].replace('/', "\\/");
    let go = password.replace('&', "\\u0026");
    assert_absent(&b.run.stdout, &[&password, &header[6..], &escaped, &go], &b.run.context);
}

#[test]
fn a_malformed_docker_config_is_reported_without_quoting_it() {
    let r = history();
    let proxy =
        server(|_, _| Act::Reply(401, vec![("WWW-Authenticate".into(), "Basic realm=\"r\"".into())], b"{}".to_vec()));
    let home = Home::new();
    let auth = b64("mus:Cfg-pw-3307");
    std::fs::write(home.docker().join("config.json"), json!({"auths": {proxy.host(): auth}}).to_string()).unwrap();
    let host = proxy.host();
    let id = format!("sha256:{}", "1".repeat(64));
    let inv = write_inventory(home.dir.path(), vec![workload(&format!("{host}/shop/api:1.0"), &[], Some(&id))]);
    let b = guarded(&home, &r, "", Some(&inv));
    let report = b.run.json();
    assert!(messages(&report).contains("a value has the wrong type"), "{}", b.run.context);
    assert_absent(&(b.run.stdout.clone() + &b.run.stderr), &[&auth, "Cfg-pw-3307"], &b.run.context);
}

#[test]
fn github_output_cannot_inject_workflow_commands() {
    let r = history();
    let home = Home::new();
    let service = "api\n::error::injected\r\n::set-env name=X::1";
    let inv = write_inventory(
        home.dir.path(),
        vec![
            json!({"environment": "production", "service": service, "image": "nginx:1", "labels": {"org.opencontainers.image.revision": "x\n::warning::also"}}),
        ],
    );
    let run = home.prodiff(
        r.path(),
        &[
            "status",
            "--offline",
            "--format",
            "github",
            "--inventory",
            inv.to_str().unwrap(),
            "--repo",
            r.path().to_str().unwrap(),
        ],
    );
    assert_ne!(run.code, 101, "{}", run.context);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let stop = lines.iter().position(|l| l.starts_with("::stop-commands::")).expect(&run.context);
    let token = lines[stop].trim_start_matches("::stop-commands::");
    assert!(token.len() >= 32, "an unguessable token: {token}");
    assert_eq!(lines.last().copied(), Some(format!("::{token}::").as_str()), "{}", run.context);
    for l in &lines[..stop] {
        assert!(l.starts_with("::error title=") || l.starts_with("::warning title="), "{l:?}\n{}", run.context);
    }
    for l in &lines[stop + 1..lines.len() - 1] {
        assert!(!l.starts_with("::"), "a command inside the table: {l:?}\n{}", run.context);
    }
}

// ---- panics ----

#[test]
fn a_table_cell_longer_than_65535_characters_does_not_panic() {
    let r = history();
    let home = Home::new();
    let service = "s".repeat(70_000);
    let inv = write_inventory(
        home.dir.path(),
        vec![json!({"environment": "production", "service": service, "image": "nginx"})],
    );
    let run = home.prodiff(r.path(), &["status", "--offline", "--inventory", inv.to_str().unwrap()]);
    assert_ne!(run.code, 101, "{}", &run.stderr);
    assert!(run.stdout.lines().any(|l| l.contains("ssss…")), "{}", &run.stdout[..run.stdout.len().min(2000)]);
}

#[test]
fn a_digest_asked_for_as_a_manifest_and_then_as_a_blob_does_not_panic() {
    let r = history();
    let (reg, img) = registry(&r);
    // A hostile index: its first entry is the config blob's digest (a 404 as a manifest),
    // its amd64 entry the real manifest, whose config is that same digest.
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": img.config, "size": 1, "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": OCI_MANIFEST, "digest": img.manifest, "size": img.bytes.len(), "platform": {"os": "linux", "architecture": "amd64"}},
    ]}))
    .unwrap();
    let digest = sha256(&index);
    let as_manifest = format!("/manifests/{}", img.config);
    let unknown = br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.to_vec();
    let proxy = Proxy::start(reg.port, move |req, _| {
        if req.path.ends_with("/manifests/1.0") || req.path.ends_with(&format!("/manifests/{digest}")) {
            let hs = vec![("Content-Type".into(), OCI_INDEX.into()), ("Docker-Content-Digest".into(), digest.clone())];
            Act::Reply(200, hs, index.clone())
        } else if req.path.ends_with(&as_manifest) {
            Act::Reply(404, vec![], unknown.clone())
        } else {
            Act::Forward
        }
    });
    let home = Home::new();
    let other = format!("sha256:{}", "2".repeat(64));
    let inv =
        write_inventory(home.dir.path(), vec![workload(&format!("{}/shop/api:1.0", proxy.host()), &[], Some(&other))]);
    let b = guarded(&home, &r, "", Some(&inv));
    let as_manifest = format!("/manifests/{}", img.config);
    assert_eq!(proxy.count("GET", &as_manifest), 1, "the blob digest was asked as a manifest: {}", proxy.log());
    assert_eq!(proxy.count("GET", &format!("/blobs/{}", img.config)), 1, "and as a blob: {}", proxy.log());
    assert_eq!(b.run.json()["results"].as_array().unwrap().len(), 1, "{}", b.run.context);
}

/// A proxy answering `shop/api:1.0` (and the index's digest) with `index`.
fn serve_index(upstream: u16, index: Vec<u8>) -> Proxy {
    let digest = sha256(&index);
    Proxy::start(upstream, move |req, _| {
        if req.path.ends_with("/manifests/1.0") || req.path.ends_with(&format!("/manifests/{digest}")) {
            let hs = vec![("Content-Type".into(), OCI_INDEX.into()), ("Docker-Content-Digest".into(), digest.clone())];
            Act::Reply(200, hs, index.clone())
        } else {
            Act::Forward
        }
    })
}

#[test]
fn a_huge_retry_after_after_an_earlier_retry_does_not_overflow() {
    let r = history();
    let (reg, img) = registry(&r);
    let proxy = Proxy::start(reg.port, |req, n| match (n, req.method.as_str()) {
        (0, _) => Act::Reply(429, vec![("Retry-After".into(), "1".into())], vec![]),
        (_, "HEAD") => Act::Reply(429, vec![("Retry-After".into(), u64::MAX.to_string())], vec![]),
        _ => Act::Forward,
    });
    let home = Home::new();
    let inv = write_inventory(
        home.dir.path(),
        vec![workload(&format!("{}/shop/api:1.0", proxy.host()), &[], Some(&img.config))],
    );
    let b = guarded(&home, &r, "", Some(&inv));
    assert!(messages(&b.run.json()).contains("HTTP 429"), "{}", b.run.context);
}

// ---- hangs and unbounded memory ----

#[test]
fn a_token_endpoint_dripping_a_byte_every_two_seconds_cannot_hang_the_run() {
    let r = history();
    let (reg, img) = registry(&r);
    let proxy = bearer_proxy(reg.port, |_| {
        Act::Drip(
            200,
            vec![],
            br#"{"token": "good", "padding": "........................"}"#.to_vec(),
            Duration::from_secs(2),
        )
    });
    let home = Home::new();
    let host = proxy.host();
    let inv = write_inventory(home.dir.path(), vec![workload(&format!("{host}/shop/api:1.0"), &[], Some(&img.config))]);
    let b = guarded(&home, &r, "[registry]\ntimeout_ms = 1500\n", Some(&inv));
    assert!(messages(&b.run.json()).contains("token endpoint: timed out"), "{}", b.run.context);
}

#[test]
fn an_endless_token_body_is_cut_at_the_limit() {
    let r = history();
    let (reg, img) = registry(&r);
    let proxy = bearer_proxy(reg.port, |_| Act::Endless(200, vec![("Content-Type".into(), "application/json".into())]));
    let home = Home::new();
    let host = proxy.host();
    let inv = write_inventory(home.dir.path(), vec![workload(&format!("{host}/shop/api:1.0"), &[], Some(&img.config))]);
    let b = guarded(&home, &r, "[registry]\ntimeout_ms = 60000\n", Some(&inv));
    assert!(messages(&b.run.json()).contains("token endpoint answered more than 65536 bytes"), "{}", b.run.context);
}

#[test]
fn a_hundred_tag_pages_of_four_mib_are_not_all_read() {
    let r = history();
    let (reg, img) = registry(&r);
    reg.tag("shop/api", "latest", &img.manifest, OCI_MANIFEST);
    let page: Arc<Vec<u8>> = Arc::new({
        let tags: Vec<String> = (0..380_000).map(|i| format!("t{i:07}")).collect();
        serde_json::to_vec(&json!({"name": "shop/api", "tags": tags})).unwrap()
    });
    assert!(page.len() <= 4 << 20);
    let proxy = Proxy::start(reg.port, move |req, n| {
        if req.path.contains("/tags/list") {
            let next = format!("</v2/shop/api/tags/list?n=1000&last=p{n}>; rel=\"next\"");
            Act::Reply(200, vec![("Link".into(), next)], page.to_vec())
        } else {
            Act::Forward
        }
    });
    let home = Home::new();
    let host = proxy.host();
    let inv = write_inventory(
        home.dir.path(),
        vec![workload(&format!("{host}/shop/api:latest"), &[format!("{host}/shop/api@{}", img.manifest)], None)],
    );
    let b = guarded(&home, &r, "", Some(&inv));
    assert!(messages(&b.run.json()).contains("has more than 10000 tags"), "{}", b.run.context);
    assert_eq!(proxy.count("GET", "/tags/list"), 1, "{}", proxy.log());
}

#[test]
fn an_endless_version_endpoint_is_read_only_to_its_limit() {
    let r = history();
    let home = Home::new();
    let endless = server(|_, _| Act::Endless(200, vec![]));
    let inv = write_inventory(
        home.dir.path(),
        vec![json!({"environment": "production", "service": "api", "image": "nginx"})],
    );
    let config = format!(
        "[environments.production]\ninventory = [{:?}]\n[[environments.production.endpoints]]\nservice = \"api\"\nurl = \"http://{}/v\"\ntimeout_ms = 60000\n",
        inv.display(),
        endless.host()
    );
    let b = guarded(&home, &r, &config, None);
    assert!(messages(&b.run.json()).contains("more than a version endpoint should (65536 bytes)"), "{}", b.run.context);
}

#[test]
fn an_index_of_3000_entries_is_refused_without_3000_requests() {
    let r = history();
    let (reg, _) = registry(&r);
    let entries: Vec<Value> = (0..3000)
        .map(|i| {
            json!({"mediaType": OCI_MANIFEST, "digest": sha256(format!("m{i}").as_bytes()), "size": 1,
                   "platform": {"os": "linux", "architecture": format!("arch{i}")}})
        })
        .collect();
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})).unwrap();
    let proxy = serve_index(reg.port, index);
    let home = Home::new();
    let other = format!("sha256:{}", "3".repeat(64));
    let inv =
        write_inventory(home.dir.path(), vec![workload(&format!("{}/shop/api:1.0", proxy.host()), &[], Some(&other))]);
    let b = guarded(&home, &r, "", Some(&inv));
    assert!(messages(&b.run.json()).contains("has more than 256 entries"), "{}", b.run.context);
    assert!(proxy.count("GET", "/manifests/sha256:") <= 1, "{}", proxy.log());
}

// ---- errors ----

#[test]
fn an_8_mb_bad_value_is_not_echoed_whole() {
    let r = history();
    let home = Home::new();
    let inv = home.dir.path().join("inventory.json");
    let huge = "Q".repeat(8 << 20);
    std::fs::write(&inv, format!(r#"{{"workloads": [{{"environment": "p", "image": "{huge}"}}]}}"#)).unwrap();
    let run = home.prodiff(r.path(), &["status", "--offline", "--inventory", inv.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.len() < 2000, "{} bytes of stderr", run.stderr.len());
    assert!(run.stderr.contains("workloads[0].image") && run.stderr.contains("characters)"), "{}", run.stderr);
}

#[test]
fn inventory_errors_name_the_key_and_invalid_utf8_its_position() {
    let r = history();
    let home = Home::new();
    let inv = home.dir.path().join("inventory.json");
    let w = r#"{"environment": "p", "image": "a"}"#;
    std::fs::write(
        &inv,
        format!("{{\"workloads\": [{w}, {w}, {w},\n {{\"environment\": \"p\", \"image\": \"a\", \"labels\": [1]}}]}}"),
    )
    .unwrap();
    let run = home.prodiff(r.path(), &["status", "--offline", "--inventory", inv.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("workloads[3].labels: invalid type: sequence"), "{}", run.stderr);
    std::fs::write(&inv, b"{\"workloads\": [\n{\"environment\": \"\xc3\x28\"}]}").unwrap();
    let run = home.prodiff(r.path(), &["status", "--offline", "--inventory", inv.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("inventory.json:2:18: invalid UTF-8 (byte 0xc3 at offset 33)"), "{}", run.stderr);
}

#[test]
fn config_errors_name_the_config_file_and_the_setting() {
    let r = history();
    let home = Home::new();
    let config = home.dir.path().join("prodiff.toml");
    let run = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let run = home.prodiff(r.path(), &["status", "--offline", "--config", config.to_str().unwrap()]);
        run.expect_code(2);
        assert!(run.stderr.contains(&config.display().to_string()), "{}", run.context);
        run.stderr
    };
    let e = run("[environments.production]\ninventory = [\"missing.json\"]\n");
    assert!(e.contains("environments.production.inventory in"), "{e}");
    let e = run("mainline = \"no-such-branch\"\n[environments.production]\ninventory = [\"missing.json\"]\n");
    assert!(e.contains("mainline = \"no-such-branch\" in"), "{e}");
    let not_git = home.dir.path().join("not-git");
    std::fs::create_dir_all(&not_git).unwrap();
    let e = run(&format!("[environments.production]\ndeclared = [{{ repo = {:?} }}]\n", not_git.display()));
    assert!(e.contains("environments.production.declared in"), "{e}");
}
