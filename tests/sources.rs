//! Declared state read from a GitOps repository at a ref (compose, Kubernetes manifests,
//! Helm values), version stores (file and command), and a disagreement across three sources.
use crate::demo::{demo_dir, make_demo_repo};
use crate::util::*;

/// A GitOps repository: staging as compose, production as manifests plus Helm values.
fn gitops() -> TestRepo {
    let g = TestRepo::new();
    g.commit(
        "main",
        "declare shop",
        &[
            ("staging/compose.yaml", "services:\n  api:\n    image: registry.example.com/shop/api:1.5.0\n  redis:\n    image: redis:7\n"),
            (
                "production/api.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels:\n    app.kubernetes.io/name: api\n\
                 spec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: api\n        image: registry.example.com/shop/api:1.5.0\n\
                 ---\napiVersion: v1\nkind: Service\nmetadata:\n  name: api\n",
            ),
            ("production/values.yaml", "web:\n  replicaCount: 1\n  image:\n    repository: registry.example.com/shop/web\n    tag: 1.4.0\n"),
            ("README.md", "not yaml"),
        ],
    );
    g.tag("deployed", "main", false);
    // An edit nobody committed must not count: state is read at the ref.
    std::fs::write(g.path().join("production/api.yaml"), "kind: Deployment\nspec: {}\n").unwrap();
    g
}

#[test]
fn declared_running_and_reported_commits_that_disagree_are_named() {
    let g = gitops();
    let shop = make_demo_repo(g.scratch());
    let main = git_in(&shop, &["rev-parse", "main"], 0).trim().to_string();
    let running_api = git_in(&shop, &["rev-parse", "v1.4.1^{commit}"], 0).trim().to_string();
    std::fs::write(
        g.scratch().join("versions.txt"),
        format!("# what the deploy script wrote\napi {}\nweb={}\n", &running_api[..12], main),
    )
    .unwrap();
    let demo_cfg = std::fs::read_to_string(demo_dir().join("prodiff.toml")).unwrap();
    let services = demo_cfg.split("[environments.staging]").next().unwrap();
    let config = format!(
        "{services}\n[environments.staging]\ninventory = [{:?}]\ndeclared = [{{ repo = {:?}, ref = \"deployed\", path = \"staging\" }}]\n\
         [environments.production]\ninventory = [{:?}]\ndeclared = [{{ repo = {:?}, ref = \"deployed\", path = \"production\" }}]\n\
         versions = [{{ file = \"versions.txt\" }}]\n",
        demo_dir().join("staging.json"),
        g.path(),
        demo_dir().join("production.json"),
        g.path()
    );
    let cfg = g.scratch().join("prodiff.toml");
    std::fs::write(&cfg, config).unwrap();
    let run = prodiff(&shop, &["status", "--offline", "--config", cfg.to_str().unwrap(), "--format", "json"], None);
    run.expect_code(1);
    let report = run.json();

    let api = row(&report, "production", "api");
    let f =
        api["findings"].as_array().unwrap().iter().find(|f| f["code"] == "sources-disagree").expect("api disagrees");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains(&format!("running registry.example.com/shop/api:1.4.1 ({})", &running_api[..10])), "{msg}");
    assert!(msg.contains("production/api.yaml declares registry.example.com/shop/api:1.5.0"), "{msg}");
    assert!(
        msg.contains(&format!(
            "version file {} reports {}",
            g.scratch().join("versions.txt").display(),
            &running_api[..12]
        )),
        "{msg}"
    );
    assert_eq!(api["declared"]["image"], "registry.example.com/shop/api:1.5.0");

    let web = row(&report, "production", "web");
    let f =
        web["findings"].as_array().unwrap().iter().find(|f| f["code"] == "sources-disagree").expect("web disagrees");
    assert!(f["message"].as_str().unwrap().contains(&format!("reports {main}")), "{f}");
    let reported = web["evidence"].as_array().unwrap().iter().find(|e| e["kind"] == "reported").unwrap();
    assert_eq!(reported["commit"], main.as_str());

    // Staging agrees with its compose file; the compose file's redis is not a configured service.
    assert!(!codes(row(&report, "staging", "api")).contains(&"sources-disagree".to_string()));
    // The declared state is compared with the mainline too.
    let declared: Vec<_> = report["declared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["environment"].as_str().unwrap(), r["service"].as_str().unwrap()))
        .collect();
    assert_eq!(declared, [("staging", "api"), ("production", "api"), ("production", "web")]);
    let declared_web = &report["declared"][2];
    assert_eq!(
        shas(&declared_web["behind"]),
        git_in(&shop, &["rev-list", "--full-history", "--no-merges", "v1.4.0..main", "--", "services/web"], 0)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    );

    let table = prodiff(&shop, &["status", "--offline", "--config", cfg.to_str().unwrap()], None);
    assert!(table.stdout.contains("Declared (GitOps):"), "{}", table.stdout);
}

#[test]
fn a_version_command_that_fails_is_unreachable_and_bad_config_is_named() {
    let g = gitops();
    let shop = make_demo_repo(g.scratch());
    let cfg = g.scratch().join("prodiff.toml");
    let inv = demo_dir().join("production.json");
    std::fs::write(&cfg, format!("[environments.production]\ninventory = [{inv:?}]\nversions = [{{ command = \"echo nope >&2; exit 7\" }}]\n")).unwrap();
    let run = prodiff(
        &shop,
        &[
            "status",
            "--offline",
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "json",
            "--allow",
            "unresolved",
            "--allow",
            "hotfix-drift",
            "--allow",
            "evidence-conflict",
            "--allow",
            "git-tag-missing",
        ],
        None,
    );
    run.expect_code(3);
    let f = &run.json()["findings"][0];
    assert_eq!(f["code"], "source-unreachable");
    assert!(f["message"].as_str().unwrap().contains("exited with exit status: 7: nope"), "{f}");

    std::fs::write(&cfg, "[environments.production]\nversions = [{ file = \"a\", command = \"b\" }]\n").unwrap();
    let run = prodiff(&shop, &["status", "--offline", "--config", cfg.to_str().unwrap()], None);
    run.expect_code(2);
    assert!(
        run.stderr.contains("prodiff.toml:2:13: environments.production.versions: give either `file` or `command`"),
        "{}",
        run.context
    );
}

/// A tiny HTTP server on 127.0.0.1 answering per path: a version endpoint that is right,
/// one that disagrees, one slow, one failing, one answering garbage, one naming an unknown
/// commit. It serves until the test ends.
fn version_server(routes: Vec<(&'static str, u16, String, u64)>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 2048];
                let n = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body, delay) = routes
                    .iter()
                    .find(|(p, ..)| *p == path)
                    .map(|(_, s, b, d)| (*s, b.clone(), *d))
                    .unwrap_or((404, "not found".into(), 0));
                std::thread::sleep(std::time::Duration::from_millis(delay));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

#[test]
fn version_endpoints_right_wrong_slow_failing_and_garbage() {
    let g = gitops();
    let shop = make_demo_repo(g.scratch());
    let api = git_in(&shop, &["rev-parse", "v1.4.1^{commit}"], 0).trim().to_string();
    let main = git_in(&shop, &["rev-parse", "main"], 0).trim().to_string();
    let port = version_server(vec![
        (
            "/api/__version__",
            200,
            format!("{{\"source\": \"shop\", \"version\": \"1.4.1\", \"commit\": \"{api}\"}}"),
            0,
        ),
        ("/web", 200, format!("{main}\n"), 0),
        ("/worker", 200, "0123456789abcdef0123456789abcdef01234567".into(), 0),
        ("/slow", 200, api.clone(), 3000),
        ("/boom", 500, "internal error".into(), 0),
        ("/garbage", 200, "<html>maintenance</html>".into(), 0),
    ]);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let demo_cfg = std::fs::read_to_string(demo_dir().join("prodiff.toml")).unwrap();
    let services = demo_cfg.split("[environments.staging]").next().unwrap();
    let config = format!(
        "{services}\n[environments.production]\ninventory = [{:?}]\nendpoints = [\n  {{ service = \"api\", url = {:?} }},\n  {{ service = \"web\", url = {:?} }},\n  {{ service = \"worker\", url = {:?} }},\n]\n\
         [environments.staging]\ninventory = [{:?}]\nendpoints = [\n  {{ service = \"api\", url = {:?}, timeout_ms = 300 }},\n  {{ service = \"web\", url = {:?} }},\n  {{ service = \"worker\", url = {:?}, regex = \"commit=([0-9a-f]+)\" }},\n]\n",
        demo_dir().join("production.json"),
        url("/api/__version__"),
        url("/web"),
        url("/worker"),
        demo_dir().join("staging.json"),
        url("/slow"),
        url("/boom"),
        url("/garbage"),
    );
    let cfg = g.scratch().join("prodiff.toml");
    std::fs::write(&cfg, config).unwrap();
    let run = prodiff(&shop, &["status", "--offline", "--config", cfg.to_str().unwrap(), "--format", "json"], None);
    run.expect_code(1);
    let report = run.json();
    // Right: the endpoint agrees with what runs.
    let prod_api = row(&report, "production", "api");
    let reported = prod_api["evidence"].as_array().unwrap().iter().find(|e| e["kind"] == "reported").unwrap();
    assert_eq!(reported["commit"], api.as_str());
    assert!(!codes(prod_api).contains(&"sources-disagree".to_string()));
    // Wrong: another commit, and one this repository does not have.
    assert!(codes(row(&report, "production", "web")).contains(&"sources-disagree".to_string()));
    let worker = row(&report, "production", "worker");
    let f = worker["findings"].as_array().unwrap().iter().find(|f| f["code"] == "sources-disagree").unwrap();
    assert!(
        f["message"].as_str().unwrap().contains("reports 0123456789abcdef0123456789abcdef01234567 (no known commit)"),
        "{f}"
    );
    // Slow, failing and garbage: unreachable, naming the URL, and the run is incomplete.
    let unreachable = messages(&report, "source-unreachable");
    assert_eq!(unreachable.len(), 3, "{unreachable:?}");
    assert!(
        unreachable.iter().any(|m| m.contains(&url("/slow")) && m.contains("no answer within 300 ms")),
        "{unreachable:?}"
    );
    assert!(unreachable.iter().any(|m| m.contains(&url("/boom")) && m.contains("answered 500")), "{unreachable:?}");
    assert!(
        unreachable
            .iter()
            .any(|m| m.contains(&url("/garbage")) && m.contains("no commit found in \"<html>maintenance</html>\"")),
        "{unreachable:?}"
    );
    assert_eq!(report["complete"], false);
}
