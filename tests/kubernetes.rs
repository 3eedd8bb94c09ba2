//! The Kubernetes source on a recorded `kubectl get pods -o json` (multi-container pods, an
//! init container, a native sidecar, replicas on different digests, a pod still pulling),
//! and live through a `kubectl` stand-in that replays the same recording (no cluster can
//! run here), including a context that fails.

use std::path::{Path, PathBuf};

use crate::demo::{demo_dir, make_demo_repo};
use crate::util::*;

fn pods() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubernetes/production-pods.json")
}

/// The demo repository (shop: api, web, worker), audited with `config`.
fn audit(config: &str, args: &[&str], env: &[(&str, &str)]) -> (Run, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    make_demo_repo(dir.path());
    let cfg = dir.path().join("prodiff.toml");
    std::fs::write(&cfg, config).unwrap();
    let repo = dir.path().join("shop");
    let mut all = args.to_vec();
    // registry.example.com does not exist: these tests are about Kubernetes, not registries.
    all.extend(["--offline", "--repo", repo.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--format", "json"]);
    (prodiff_env(dir.path(), &all, None, env), dir)
}

fn services() -> String {
    let demo = std::fs::read_to_string(demo_dir().join("prodiff.toml")).unwrap();
    let services = demo.split("[environments.staging]").next().unwrap();
    services.lines().filter(|l| !l.starts_with("promotion")).collect::<Vec<_>>().join("\n")
}

#[test]
fn recorded_pods_give_digests_replicas_and_pending_containers() {
    let config = format!("{}\n[environments.production]\nkubernetes = [{{ file = {:?} }}]\n", services(), pods());
    let (run, _dir) = audit(&config, &["status"], &[]);
    run.expect_code(1);
    let report = run.json();
    let rows = report["results"].as_array().unwrap();
    let api: Vec<_> = rows.iter().filter(|r| r["service"] == "api").collect();
    assert_eq!(api.len(), 2, "two api images: a rollout in progress");
    let old = api.iter().find(|r| r["image"] == "registry.example.com/shop/api:1.4.1").unwrap();
    assert_eq!(old["digests"], serde_json::json!([format!("sha256:{}", "1".repeat(64))]));
    assert_eq!(old["instances"].as_array().unwrap().len(), 1, "the completed init container is not a replica");
    assert_eq!(old["instances"][0]["name"], "shop/api-7d9f-abcde/api on node-eu-1");
    assert_eq!(old["instances"][0]["started_at"], "2026-11-18T09:12:00Z");
    assert!(codes(old).contains(&"mixed-versions".to_string()));
    let web = rows.iter().find(|r| r["service"] == "web").unwrap();
    assert_eq!(
        web["digests"],
        serde_json::json!([format!("sha256:{}", "3".repeat(64))]),
        "containerd's repo@digest form"
    );
    assert!(rows.iter().all(|r| r["service"] != "worker"), "a container still pulling runs nothing");
    let global: Vec<&str> =
        report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(global, ["pending-workload", "unclaimed-images", "registry-not-checked"]);
    assert!(report["findings"][0]["message"].as_str().unwrap().contains("waiting: ContainerCreating"));
    assert_eq!(report["findings"][1]["key"], "envoyproxy/envoy,fluent/fluent-bit");
}

#[test]
fn replicas_stuck_on_the_same_image_are_one_pending_finding_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pods()).unwrap()).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    let stuck = items.iter().find(|p| p["metadata"]["name"] == "worker-6b7c-pqrst").unwrap().clone();
    for suffix in ["uvwxy", "zabcd"] {
        let mut replica = stuck.clone();
        replica["metadata"]["name"] = format!("worker-6b7c-{suffix}").into();
        items.push(replica);
    }
    let saved = dir.path().join("pods.json");
    std::fs::write(&saved, list.to_string()).unwrap();
    let config = format!("{}\n[environments.production]\nkubernetes = [{{ file = {saved:?} }}]\n", services());
    let (run, _repo) = audit(&config, &["status"], &[]);
    let report = run.json();
    let pending: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "pending-workload").collect();
    assert_eq!(pending.len(), 1, "{report:#}");
    assert_eq!(pending[0]["count"], 3);
    let message = pending[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("3 replicas (shop/worker-6b7c-pqrst/worker, shop/worker-6b7c-uvwxy/worker, shop/worker-6b7c-zabcd/worker): not running (waiting: ContainerCreating)"),
        "{message}"
    );
}

#[test]
fn without_configured_services_sidecars_count_and_init_containers_do_not() {
    let config = format!("[environments.production]\nkubernetes = [{{ file = {:?} }}]\n", pods());
    let (run, _dir) = audit(&config, &["status"], &[]);
    let report = run.json();
    let mut services: Vec<&str> =
        report["results"].as_array().unwrap().iter().map(|r| r["service"].as_str().unwrap()).collect();
    services.dedup();
    // api and web from the app labels, envoy and the native sidecar fluent-bit from their images.
    assert_eq!(services, ["api", "envoy", "fluent-bit", "web"], "{report:#}");
}

#[test]
fn live_clusters_through_kubectl_and_a_context_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let kubectl = dir.path().join("kubectl");
    std::fs::write(
        &kubectl,
        format!(
            "#!/bin/sh\necho \"$@\" >> {log}\ncase \"$*\" in\n  *\"--context prod-eu\"*) cat {pods} ;;\n  *) echo 'error: context \"prod-us\" does not exist' >&2; exit 1 ;;\nesac\n",
            log = log.display(),
            pods = pods().display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&kubectl).status().unwrap();
    let config = format!(
        "{}\n[environments.production]\nkubernetes = [\n  {{ context = \"prod-eu\", namespace = \"shop\" }},\n  {{ context = \"prod-us\", selector = \"tier=web\" }},\n]\n",
        services()
    );
    let (run, _repo) = audit(
        &config,
        &["status", "--allow", "mixed-versions", "--allow", "hotfix-drift"],
        &[("PRODIFF_KUBECTL", kubectl.to_str().unwrap())],
    );
    run.expect_code(3);
    let report = run.json();
    assert_eq!(report["complete"], false);
    let unreachable =
        report["findings"].as_array().unwrap().iter().find(|f| f["code"] == "source-unreachable").unwrap();
    assert!(
        unreachable["message"].as_str().unwrap().contains("context prod-us namespace (the context's)"),
        "{unreachable}"
    );
    assert!(
        unreachable["message"].as_str().unwrap().contains("context \\\"prod-us\\\" does not exist")
            || unreachable["message"].as_str().unwrap().contains("context \"prod-us\" does not exist")
    );
    assert!(
        report["results"].as_array().unwrap().iter().any(|r| r["service"] == "web"),
        "the reachable context is still audited"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "get pods -o json --request-timeout=20s --context prod-eu --namespace shop",
            // No namespace: the context's, as kubectl does (not --all-namespaces).
            "get pods -o json --request-timeout=20s --context prod-us --selector tier=web"
        ]
    );
}

/// A kubectl stand-in that prints `stderr` (a recording of the real kubectl) and fails.
fn failing_kubectl(dir: &Path, stderr: &Path) -> PathBuf {
    let kubectl = dir.join("kubectl");
    std::fs::write(&kubectl, format!("#!/bin/sh\ncat {} >&2\nexit 1\n", stderr.display())).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&kubectl).status().unwrap();
    kubectl
}

fn unreachable_message(run: &Run) -> (String, String) {
    let report = run.json();
    let f = report["findings"].as_array().unwrap().iter().find(|f| f["code"] == "source-unreachable").unwrap();
    (f["message"].as_str().unwrap().to_string(), f["hint"].as_str().unwrap().to_string())
}

#[test]
fn an_unreachable_cluster_is_one_line_without_client_go_noise() {
    let dir = tempfile::tempdir().unwrap();
    // What kubectl 1.32 prints for a cluster that refuses connections (recorded on this machine).
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubernetes/unreachable.stderr");
    let kubectl = failing_kubectl(dir.path(), &recorded);
    let config = format!("{}\n[environments.production]\nkubernetes = [{{ context = \"dead\" }}]\n", services());
    let (run, _repo) = audit(&config, &["status"], &[("PRODIFF_KUBECTL", kubectl.to_str().unwrap())]);
    run.expect_code(3);
    let (message, _) = unreachable_message(&run);
    assert_eq!(
        message,
        format!(
            "kubectl context dead namespace (the context's): {} failed: The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?",
            kubectl.display()
        )
    );
    assert!(!run.stdout.contains("memcache.go") && !run.stderr.contains("memcache.go"), "{}", run.context);
}

#[test]
fn a_missing_kubectl_says_to_install_it_or_set_prodiff_kubectl() {
    let empty = tempfile::tempdir().unwrap();
    let config = format!("{}\n[environments.production]\nkubernetes = [{{ context = \"prod-eu\" }}]\n", services());
    // No kubectl on PATH.
    let (run, _repo) = audit(&config, &["status"], &[("PATH", empty.path().to_str().unwrap())]);
    run.expect_code(3);
    let (message, hint) = unreachable_message(&run);
    assert!(message.ends_with("kubectl is not installed (not found on PATH)"), "{message}");
    assert!(
        hint.starts_with("install kubectl (https://kubernetes.io/docs/tasks/tools/), or set PRODIFF_KUBECTL"),
        "{hint}"
    );
    // PRODIFF_KUBECTL naming a file that is not there.
    let gone = empty.path().join("kubectl-1.31");
    let (run, _repo) = audit(&config, &["status"], &[("PRODIFF_KUBECTL", gone.to_str().unwrap())]);
    run.expect_code(3);
    let (message, hint) = unreachable_message(&run);
    assert!(message.ends_with(&format!("PRODIFF_KUBECTL={} does not exist", gone.display())), "{message}");
    assert!(hint.contains("set PRODIFF_KUBECTL"), "{hint}");
}

#[test]
fn a_saved_file_that_is_not_a_pod_list_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("deploys.json");
    std::fs::write(&bad, r#"{"apiVersion": "v1", "kind": "DeploymentList", "items": []}"#).unwrap();
    let config = format!("[environments.production]\nkubernetes = [{{ file = {bad:?} }}]\n");
    let (run, _d) = audit(&config, &["status"], &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("kind \"DeploymentList\" is not a pod list"), "{}", run.context);
    let config = format!("[environments.production]\nkubernetes = [{{ file = {bad:?}, context = \"x\" }}]\n");
    let (run, _d) = audit(&config, &["status"], &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("prodiff.toml:2:15: environments.production.kubernetes: `file` reads saved pods"),
        "{}",
        run.context
    );
}
