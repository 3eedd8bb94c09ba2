//! The Docker and Swarm sources against the real Docker Engine on this machine. Every image,
//! container and service a test makes carries the label `prodiff.test=<unique>` and a
//! `prodiff-test-<pid>-<n>` name, and is removed when the test ends, even on failure.
//! Without a daemon these tests fail and say how to start one; `PRODIFF_SKIP_DOCKER_TESTS=1`
//! skips them for contributors (CI never sets it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::util::*;

/// Docker tests share the daemon (and its swarm state): one at a time.
pub static DAEMON: Mutex<()> = Mutex::new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);
pub const REV: &str = "org.opencontainers.image.revision";

/// What one test created on the daemon; removed on drop.
pub struct Lab {
    pub name: String,
    build: tempfile::TempDir,
    swarm_created: bool,
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("the docker CLI is installed");
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Lab {
    /// `None` only when the contributor opted out.
    pub fn new() -> Option<Lab> {
        if std::env::var_os("PRODIFF_SKIP_DOCKER_TESTS").is_some_and(|v| v == "1") {
            eprintln!("PRODIFF_SKIP_DOCKER_TESTS=1: skipping a Docker test");
            return None;
        }
        let ok = Command::new("docker")
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "no reachable Docker daemon: start one (`sudo systemctl start docker` or `sudo dockerd &`), or set PRODIFF_SKIP_DOCKER_TESTS=1 to skip these tests");
        assert!(
            Path::new("/bin/busybox").exists(),
            "test images need a static busybox: apt-get install busybox-static"
        );
        let build = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", build.path().join("busybox")).unwrap();
        std::fs::write(
            build.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n",
        )
        .unwrap();
        let name = format!("prodiff-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        Some(Lab { name, build, swarm_created: false })
    }

    pub fn label(&self) -> String {
        format!("prodiff.test={}", self.name)
    }

    /// Builds `repo:tag` (under this lab's name) with labels; a `salt` makes distinct digests.
    pub fn image(&self, repo: &str, tag: &str, labels: &[(&str, &str)], salt: &str) -> String {
        let reference = format!("{}/{repo}:{tag}", self.name);
        std::fs::write(self.build.path().join("salt"), salt).unwrap();
        std::fs::write(
            self.build.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY salt /salt\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n",
        )
        .unwrap();
        let mut args = vec![
            "build".to_string(),
            "-q".into(),
            "--no-cache".into(),
            "-t".into(),
            reference.clone(),
            "--label".into(),
            self.label(),
        ];
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.push(self.build.path().display().to_string());
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        reference
    }

    /// Runs a container of `image` named `<lab>-<name>`, with extra labels.
    pub fn run(&self, name: &str, image: &str, labels: &[(&str, &str)]) -> String {
        let cname = format!("{}-{name}", self.name);
        let mut args =
            vec!["run".to_string(), "-d".into(), "--name".into(), cname.clone(), "--label".into(), self.label()];
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.push(image.to_string());
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cname
    }

    /// A prodiff config auditing this lab's containers on the local daemon as `env`.
    pub fn config(&self, dir: &Path, body: &str) -> PathBuf {
        let path = dir.join(format!("{}.toml", self.name));
        std::fs::write(&path, body).unwrap();
        path
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label());
        let quiet = |args: &[&str]| {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default()
        };
        for s in quiet(&["service", "ls", "-q", "--filter", &filter]).split_whitespace() {
            quiet(&["service", "rm", s]);
        }
        if self.swarm_created {
            quiet(&["swarm", "leave", "--force"]);
        }
        for c in quiet(&["ps", "-aq", "--filter", &filter]).split_whitespace() {
            quiet(&["rm", "-f", c]);
        }
        for i in
            quiet(&["images", "-q", "--filter", &filter]).split_whitespace().collect::<std::collections::BTreeSet<_>>()
        {
            quiet(&["rmi", "-f", i]);
        }
    }
}

/// A repository with v1.0.0 and v1.1.0 on main and a hotfix v1.0.1 on a release branch.
pub fn repo() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.tag("v1.0.0", "main", true);
    r.commit("main", "two", &[("a.txt", "2")]);
    r.tag("v1.1.0", "main", true);
    r.branch("release/1.0", "v1.0.0");
    r.commit("release/1.0", "hotfix", &[("b.txt", "fix")]);
    r.tag("v1.0.1", "release/1.0", false);
    r.git(&["checkout", "-q", "main"]);
    r
}

/// `--offline`: images built here are named like Docker Hub images, and this machine must
/// not ask Docker Hub; the registry test passes its own 127.0.0.1 registry instead.
fn status(r: &TestRepo, config: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["status", "--format", "json", "--config", config.to_str().unwrap()];
    if !extra.contains(&"--online") {
        args.push("--offline");
    }
    let extra: Vec<&str> = extra.iter().copied().filter(|a| *a != "--online").collect();
    let extra = extra.as_slice();
    args.extend_from_slice(extra);
    prodiff(r.path(), &args, None)
}

fn rows_of<'a>(report: &'a Value, service: &str) -> Vec<&'a Value> {
    report["results"].as_array().unwrap().iter().filter(|r| r["service"] == service).collect()
}

#[test]
fn replicas_on_different_digests_and_a_container_resolved_through_its_tag() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let (v100, v110) = (r.rev("v1.0.0"), r.rev("v1.1.0"));
    let old = lab.image("api", "1.0.0", &[(REV, &v100)], "a");
    let new = lab.image("api", "1.1.0", &[(REV, &v110)], "b");
    // No labels at all: the tag 1.1.0 must resolve through git tag v1.1.0.
    let plain = lab.image("web", "1.1.0", &[], "c");
    lab.run("api-1", &old, &[("com.docker.compose.service", "api")]);
    lab.run("api-2", &new, &[("com.docker.compose.service", "api")]);
    lab.run("web-1", &plain, &[]);
    let cfg = lab.config(r.scratch(), &format!("[services.api]\nimage = \"{0}/api\"\n[services.web]\nimage = \"{0}/web\"\n[environments.local]\ndocker = [\"default\"]\n", lab.name));
    let run = status(&r, &cfg, &[]);
    run.expect_code(1);
    let report = run.json();
    let api = rows_of(&report, "api");
    assert_eq!(api.len(), 2, "two images of one service: {report:#}");
    for row in &api {
        assert!(codes(row).contains(&"mixed-versions".to_string()), "{row:#}");
        let image_id = docker(&["inspect", "--format", "{{.Id}}", row["image"].as_str().unwrap()]);
        assert!(row["digests"].as_array().unwrap().iter().any(|d| d == image_id.as_str()), "{row:#}");
        assert!(row["instances"][0]["started_at"].is_string());
    }
    assert_eq!(api.iter().find(|r| r["image"] == old.as_str()).unwrap()["commit"], v100.as_str());
    assert_eq!(api.iter().find(|r| r["image"] == new.as_str()).unwrap()["commit"], v110.as_str());
    let web = rows_of(&report, "web")[0];
    assert_eq!(web["commit"], v110.as_str());
    assert_eq!(web["evidence"][0]["kind"], "git-tag");
}

#[test]
fn a_tag_moved_after_the_container_started_is_stale_and_not_trusted() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let (v100, v101) = (r.rev("v1.0.0"), r.rev("v1.0.1"));
    let first = lab.image("api", "stable", &[(REV, &v100)], "first");
    let old_id = docker(&["inspect", "--format", "{{.Id}}", &first]);
    lab.run("api", &first, &[]);
    // The tag moves to a new build; the container keeps running the old image.
    lab.image("api", "stable", &[(REV, &v101)], "second");
    let cfg = lab.config(
        r.scratch(),
        &format!("[services.api]\nimage = \"{}/api\"\n[environments.local]\ndocker = [\"default\"]\n", lab.name),
    );
    let report = status(&r, &cfg, &[]).json();
    let row = rows_of(&report, "api")[0].clone();
    assert_eq!(row["commit"], v100.as_str(), "the running image's label, not the moved tag: {row:#}");
    assert_eq!(row["digests"], serde_json::json!([old_id]));
    let stale = report["findings"].as_array().unwrap().iter().find(|f| f["code"] == "stale-tag").expect("stale-tag");
    assert!(stale["message"].as_str().unwrap().contains(&format!("started from {first}")), "{stale}");
    // The old image lost its tag: it is dangling now.
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["code"] == "untagged-image"));
}

/// A `docker-registry` on a free 127.0.0.1 port with temporary storage, killed on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "needs Debian's docker-registry: apt-get install docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n", dir.path().join("data").display()),
        )
        .unwrap();
        #[allow(clippy::zombie_processes)] // killed and waited for in Drop
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Registry { child, port, _dir: dir };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pushed_and_pulled_images_carry_real_repo_digests_and_swarm_tasks_are_audited() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new() else { return };
    let registry = Registry::start();
    let r = repo();
    let v101 = r.rev("v1.0.1");
    let local = lab.image("api", "1.0.1", &[(REV, &v101)], "pushed");
    let remote = format!("127.0.0.1:{}/{}/api:1.0.1", registry.port, lab.name);
    docker(&["tag", &local, &remote]);
    docker(&["push", "-q", &remote]);
    docker(&["rmi", &local, &remote]);
    docker(&["pull", "-q", &remote]);
    let pushed = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}", &format!("docker://{remote}")])
        .output()
        .expect("skopeo is installed (apt-get install skopeo)");
    let manifest = String::from_utf8_lossy(&pushed.stdout).trim().to_string();
    assert!(manifest.starts_with("sha256:"), "skopeo: {}", String::from_utf8_lossy(&pushed.stderr));
    lab.run("api", &remote, &[]);

    // A swarm service from the registry image (the spec pins tag@digest).
    if docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]) == "inactive" {
        docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        lab.swarm_created = true;
    }
    let svc = format!("{}-svc", lab.name);
    docker(&[
        "service",
        "create",
        "-q",
        "--detach",
        "--name",
        &svc,
        "--label",
        &lab.label(),
        "--container-label",
        &lab.label(),
        &remote,
    ]);
    let mut running = false;
    for _ in 0..100 {
        if docker(&["service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", &svc])
            .starts_with("Running")
        {
            running = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(running, "the swarm task did not start");

    let cfg = lab.config(
        r.scratch(),
        &format!(
            "[services.api]\nimage = \"127.0.0.1:{}/{}/api\"\n[environments.local]\ndocker = [\"default\"]\n[environments.swarm]\nswarm = [\"default\"]\n",
            registry.port, lab.name
        ),
    );
    let run = status(&r, &cfg, &["--online"]);
    let report = run.json();
    let local_rows: Vec<&Value> =
        report["results"].as_array().unwrap().iter().filter(|r| r["environment"] == "local").collect();
    // The plain container and the swarm task's container both run on this host.
    assert!(!local_rows.is_empty(), "{report:#}");
    for row in &local_rows {
        assert!(
            row["digests"].as_array().unwrap().iter().any(|d| d == manifest.as_str()),
            "RepoDigests carry the pushed manifest digest {manifest}: {row:#}"
        );
        assert_eq!(row["commit"], v101.as_str());
    }
    let swarm =
        report["results"].as_array().unwrap().iter().find(|r| r["environment"] == "swarm").expect("a swarm row");
    assert_eq!(swarm["service"], "api");
    assert!(swarm["image"].as_str().unwrap().ends_with(&format!("@{manifest}")), "the task runs tag@digest: {swarm:#}");
    assert_eq!(swarm["commit"], v101.as_str());
    assert!(swarm["instances"][0]["name"].as_str().unwrap().starts_with(&format!("{svc}.1 on node ")));
}

#[test]
fn an_unreachable_host_is_a_finding_and_the_others_are_still_audited() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let image = lab.image("api", "1.1.0", &[(REV, &r.rev("v1.1.0"))], "u");
    lab.run("api", &image, &[]);
    // An image named nothing like the service, claimed by a label selector.
    let job = lab.image("batch-runner", "1.1.0", &[(REV, &r.rev("v1.1.0"))], "w");
    lab.run("worker", &job, &[("shop.service", "worker")]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // A host that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang = silent.local_addr().unwrap().port();
    let cfg = lab.config(
        r.scratch(),
        &format!(
            "[services.api]\nimage = \"{}/api\"\n[services.worker]\nselector = \"shop.service=worker\"\n\
             [environments.local]\ndocker = [\"default\", \"tcp://127.0.0.1:{closed}\", \"tcp://127.0.0.1:{hang}\"]\n",
            lab.name
        ),
    );
    let args = ["status", "--offline", "--format", "json", "--config", cfg.to_str().unwrap()];
    let run = prodiff_env(r.path(), &args, None, &[("PRODIFF_DOCKER_TIMEOUT", "1")]);
    run.expect_code(3);
    let report = run.json();
    assert_eq!(report["complete"], false);
    let unreachable = messages(&report, "source-unreachable");
    assert_eq!(unreachable.len(), 2, "{report:#}");
    assert!(
        unreachable
            .iter()
            .any(|m| m.contains(&format!("tcp://127.0.0.1:{closed}")) && m.contains("Connection refused")),
        "{unreachable:?}"
    );
    assert!(
        unreachable.iter().any(|m| m.contains(&format!("tcp://127.0.0.1:{hang}")) && m.contains("no answer within 1s")),
        "{unreachable:?}"
    );
    assert_eq!(rows_of(&report, "api")[0]["commit"], r.rev("v1.1.0").as_str());
    assert_eq!(rows_of(&report, "worker")[0]["image"], job.as_str(), "the selector names the service");
    drop(silent);
}

#[test]
fn zero_config_finds_the_containers_built_from_this_repository() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let ours = lab.image("api", "dev", &[(REV, &r.rev("v1.0.1"))], "ours");
    let theirs = lab.image("other", "dev", &[(REV, "0123456789abcdef0123456789abcdef01234567")], "theirs");
    lab.run("ours", &ours, &[]);
    lab.run("theirs", &theirs, &[]);
    let run = prodiff(r.path(), &["status", "--offline", "--format", "json"], None);
    let report = run.json();
    let rows: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["image"].as_str().unwrap().starts_with(&lab.name))
        .collect();
    assert_eq!(rows.len(), 1, "only the container built from this repository: {report:#}");
    assert_eq!(rows[0]["environment"], "local");
    assert_eq!(rows[0]["commit"], r.rev("v1.0.1").as_str());
    assert!(codes(rows[0]).contains(&"hotfix-drift".to_string()));
}

/// A running container of `image` that keeps running after its tag is moved to a new build.
fn stale_container(lab: &Lab, repo: &str, name: &str, rev: &str) -> String {
    let image = lab.image(repo, "stable", &[(REV, rev)], &format!("{name}-old"));
    lab.run(name, &image, &[]);
    image
}

#[test]
fn an_unclaimed_container_with_a_stale_tag_does_not_fail_the_gate() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let web = lab.image("web", "1.1.0", &[(REV, &r.rev("v1.1.0"))], "web");
    lab.run("web", &web, &[]);
    // Someone else's container on the same daemon: its tag moved, it still runs the old build.
    let other = stale_container(&lab, "other", "other", &r.rev("v1.0.0"));
    lab.image("other", "stable", &[], "other-new");
    let cfg = lab.config(
        r.scratch(),
        &format!("[services.web]\nimage = \"{}/web\"\n[environments.local]\ndocker = [\"default\"]\n", lab.name),
    );
    let args = ["check", "--offline", "--format", "json", "--config", cfg.to_str().unwrap()];
    let run = prodiff(r.path(), &args, None);
    let report = run.json();
    let codes: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(!codes.contains(&"stale-tag") && !codes.contains(&"untagged-image"), "{report:#}");
    let unclaimed = messages(&report, "unclaimed-images");
    let familiar = other.rsplit_once(':').unwrap().0;
    assert!(unclaimed.iter().any(|m| m.contains(familiar)), "{unclaimed:?}");
    // Other engineers' containers on the shared daemon are unclaimed too: nothing denied.
    assert_eq!(report["check"]["denied"], 0, "{report:#}");
    run.expect_code(0);
}

#[test]
fn replicas_on_one_stale_tag_are_one_finding_with_a_count() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let image = lab.image("api", "stable", &[(REV, &r.rev("v1.0.0"))], "old");
    for i in 1..=3 {
        lab.run(&format!("api-{i}"), &image, &[]);
    }
    lab.image("api", "stable", &[(REV, &r.rev("v1.1.0"))], "new");
    let cfg = lab.config(
        r.scratch(),
        &format!("[services.api]\nimage = \"{}/api\"\n[environments.local]\ndocker = [\"default\"]\n", lab.name),
    );
    let report = status(&r, &cfg, &[]).json();
    let stale: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "stale-tag").collect();
    assert_eq!(stale.len(), 1, "one finding for three replicas: {report:#}");
    assert_eq!(stale[0]["count"], 3);
    let message = stale[0]["message"].as_str().unwrap();
    let names = format!("3 replicas ({0}-api-1, {0}-api-2, {0}-api-3): started from {image}", lab.name);
    assert!(message.starts_with(&names), "{message}");
    let untagged: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "untagged-image").collect();
    assert_eq!((untagged.len(), &untagged[0]["count"]), (1, &serde_json::json!(3)), "{report:#}");
}

#[test]
fn zero_config_asks_no_registry_about_images_only_built_here() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    // Named like a Docker Hub image, never pushed or pulled: no RepoDigests.
    let ours = lab.image("api", "1.0.1", &[(REV, &r.rev("v1.0.1"))], "local");
    lab.run("ours", &ours, &[]);
    // A stale container of another project on the same daemon is not reported either.
    stale_container(&lab, "other", "other", "0123456789abcdef0123456789abcdef01234567");
    lab.image("other", "stable", &[], "other-new");
    // Online: a registry that was asked would fail here (no route to Docker Hub) and exit 3.
    let run = prodiff(r.path(), &["status", "--format", "json"], None);
    let report = run.json();
    let all: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["results"].as_array().unwrap().iter().flat_map(|r| r["findings"].as_array().unwrap()))
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    for code in ["registry-unreachable", "registry-not-checked", "stale-tag"] {
        assert!(!all.contains(&code), "{code} in {report:#}");
    }
    assert_eq!(report["complete"], true, "{report:#}");
    let row = report["results"].as_array().unwrap().iter().find(|r| r["image"] == ours.as_str()).expect("our row");
    assert_eq!(row["commit"], r.rev("v1.0.1").as_str());
    run.expect_code(1); // hotfix-drift: v1.0.1 is not on main
}
