//! `prodiff init` on a real repository and the real Docker daemon: it finds the container
//! built from the repository, the tag scheme, Docker and kubectl contexts (kubectl is a
//! stand-in script), writes a commented prodiff.toml that the real config parser loads (its
//! suggestions uncommented too), refuses to overwrite it without --force, and says what it
//! could not detect. The test's image and container carry a unique name and label and are
//! removed even on failure.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// A container (and its image) this test made; removed on drop.
struct Container {
    name: String,
}

impl Container {
    fn start(name: &str, image: &str, revision: &str) -> Container {
        assert!(
            Path::new("/bin/busybox").exists(),
            "test images need a static busybox: apt-get install busybox-static"
        );
        let c = Container { name: name.to_string() };
        let build = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", build.path().join("busybox")).unwrap();
        std::fs::write(
            build.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n",
        )
        .unwrap();
        let label = format!("prodiff.test={name}");
        let rev = format!("org.opencontainers.image.revision={revision}");
        docker(&[
            "build",
            "-q",
            "--no-cache",
            "-t",
            image,
            "--label",
            &label,
            "--label",
            &rev,
            build.path().to_str().unwrap(),
        ]);
        docker(&["run", "-d", "--name", name, "--label", &label, image]);
        c
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let filter = format!("label=prodiff.test={}", self.name);
        let ids = |args: &[&str]| {
            let out = Command::new("docker").args(args).output().map(|o| o.stdout).unwrap_or_default();
            String::from_utf8_lossy(&out).split_whitespace().map(String::from).collect::<Vec<_>>()
        };
        for id in ids(&["ps", "-aq", "--filter", &filter]) {
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        }
        for id in ids(&["images", "-q", "--filter", &filter]) {
            let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
        }
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("the docker CLI is installed");
    assert!(
        out.status.success(),
        "docker {args:?} failed (is the daemon running? `sudo dockerd &`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A home with a kubectl stand-in that knows two contexts and a Docker context `remote`.
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let kubectl = home.path().join("kubectl");
    std::fs::write(
        &kubectl,
        "#!/bin/sh\n[ \"$1 $2 $3 $4\" = \"config get-contexts -o name\" ] || exit 1\nprintf 'kind-prod\\nstaging.eu\\n'\n",
    )
    .unwrap();
    Command::new("chmod").args(["+x", kubectl.to_str().unwrap()]).status().unwrap();
    let meta = home.path().join("docker/contexts/meta/0123abcd");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        r#"{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://127.0.0.1:2376","SkipTLSVerify":false}}}"#,
    )
    .unwrap();
    home
}

fn init(r: &TestRepo, home: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let kubectl = home.join("kubectl").display().to_string();
    let docker_config = home.join("docker").display().to_string();
    let mut env = vec![
        ("PRODIFF_KUBECTL", kubectl.as_str()),
        ("DOCKER_CONFIG", docker_config.as_str()),
        ("PRODIFF_NOW", "2026-11-22T12:00:00Z"),
    ];
    env.extend_from_slice(extra);
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    prodiff_env(r.path(), &all, None, &env)
}

/// Lines like `#[environments.x]` and `#docker = [...]` are suggestions; `# text` explains.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if !rest.starts_with(' ') && !rest.is_empty() && !rest.starts_with("promotion") => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn init_writes_a_commented_config_from_what_it_finds_and_it_loads() {
    let r = TestRepo::new();
    let unique = format!("prodiff-init-{}-{}", std::process::id(), chrono_free_nanos());
    // Content unique to this run, so no other test's container names one of these commits.
    r.commit("main", "one", &[("api/a.txt", &unique)]);
    r.tag("v1.0.0", "main", true);
    r.commit("main", "two", &[("api/a.txt", "2")]);
    r.tag("v1.1.0", "main", true);
    let image = format!("{unique}/api:1.1.0");
    let _c = Container::start(&unique, &image, &r.rev("v1.1.0"));
    let home = home();

    let run = init(&r, home.path(), &[], &[]);
    run.expect_code(0);
    assert!(run.stderr.contains("prodiff: wrote "), "{}", run.context);
    let text = std::fs::read_to_string(r.path().join("prodiff.toml")).unwrap();
    let service =
        format!("[services.api]\n# Seen running in {unique}, built from this repository.\nimage = \"{unique}/api\"\n");
    assert!(text.contains(&service), "{text}");
    assert!(
        text.contains("# How an image tag maps to a git tag; found 2 tag(s) like v1.0.0.\ngit_tags = [\"v{tag}\"]\n"),
        "{text}"
    );
    assert!(text.contains("mainline = \"main\""), "{text}");
    assert!(text.contains("[environments.local]\ndocker = [\"default\"]"), "{text}");
    assert!(text.contains("#[environments.remote]\n#docker = [{ context = \"remote\" }]"), "{text}");
    assert!(text.contains("#[environments.kind-prod]\n#kubernetes = [{ context = \"kind-prod\" }]"), "{text}");
    assert!(text.contains("#[environments.\"staging.eu\"]"), "{text}");

    // The real parser loads it, and with every suggestion taken too.
    prodiff::config::Config::parse(&text, Path::new("prodiff.toml")).expect("the written file loads");
    let all = uncommented(&text);
    prodiff::config::Config::parse(&all, Path::new("prodiff.toml"))
        .unwrap_or_else(|e| panic!("uncommented, it does not load: {e}\n{all}"));

    // prodiff uses it as written: the container is audited as service api on v1.1.0.
    let status = prodiff(r.path(), &["status", "--offline", "--format", "json"], None);
    let report = status.json();
    let api = row(&report, "local", "api");
    assert_eq!(api["commit"], r.rev("v1.1.0").as_str(), "{}", status.context);
    assert_eq!(api["image"], image.as_str());

    // It never overwrites without --force.
    std::fs::write(r.path().join("prodiff.toml"), "# mine\n").unwrap();
    let again = init(&r, home.path(), &[], &[]);
    again.expect_code(2);
    assert!(
        again.stderr.contains("prodiff.toml exists: prodiff init does not overwrite it (pass --force to)"),
        "{}",
        again.context
    );
    assert_eq!(std::fs::read_to_string(r.path().join("prodiff.toml")).unwrap(), "# mine\n");
    init(&r, home.path(), &["--force"], &[]).expect_code(0);
    assert!(std::fs::read_to_string(r.path().join("prodiff.toml")).unwrap().contains("[services.api]"));
}

#[test]
fn init_says_what_it_could_not_detect() {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    let home = home();
    let missing = home.path().join("no-kubectl").display().to_string();
    let extra = [("DOCKER_HOST", "unix:///nonexistent/docker.sock"), ("PRODIFF_KUBECTL", missing.as_str())];
    let run = init(&r, home.path(), &["--output", "-"], &extra);
    run.expect_code(0);
    let text = &run.stdout;
    assert!(text.contains("# Not detected: Docker containers: "), "{text}");
    assert!(text.contains("nonexistent/docker.sock"), "{text}");
    assert!(text.contains("install kubectl or set PRODIFF_KUBECTL"), "{text}");
    assert!(text.contains("# No release tags found"), "{text}");
    assert!(!r.path().join("prodiff.toml").exists(), "--output - writes nothing");
    prodiff::config::Config::parse(text, Path::new("prodiff.toml")).expect("loads");
    prodiff::config::Config::parse(&uncommented(text), Path::new("prodiff.toml")).expect("uncommented, loads");
    let offline = init(&r, home.path(), &["--output", "-", "--no-detect"], &[]);
    assert!(offline.stdout.contains("# Not detected: Docker and Kubernetes (--no-detect)"), "{}", offline.context);
}

fn chrono_free_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000
}
