//! Declared state read from a GitOps repository at a ref (compose, Kubernetes manifests,
//! Helm values), version stores (file and command), and a disagreement across three sources.

use std::path::Path;

use crate::demo::demo_dir;
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

fn demo(dir: &Path) -> std::path::PathBuf {
    let out =
        std::process::Command::new("bash").arg(demo_dir().join("make-repo.sh")).arg(dir.join("shop")).output().unwrap();
    assert!(out.status.success());
    dir.join("shop")
}

#[test]
fn declared_running_and_reported_commits_that_disagree_are_named() {
    let g = gitops();
    let shop = demo(g.scratch());
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
    let shop = demo(g.scratch());
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
