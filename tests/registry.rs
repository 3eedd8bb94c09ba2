//! Registry truth against the real CNCF distribution registry: images pushed by hand
//! (multi-arch index, re-pushed tags, deleted manifests, labels that disagree with git
//! tags), basic auth with a docker config, and faults from a scripted proxy.

use serde_json::{json, Value};

use crate::util::*;
use crate::util_registry::*;

/// main: one → two (v1.0.0) → three (v1.1.0).
fn history() -> TestRepo {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.commit("main", "two", &[("a.txt", "2")]);
    r.tag("v1.0.0", "main", true);
    r.commit("main", "three", &[("a.txt", "3")]);
    r.tag("v1.1.0", "main", false);
    r
}

fn workload(env: &str, service: &str, image: &str, repo_digests: &[String], image_id: Option<&str>) -> Value {
    let mut w = json!({"environment": env, "service": service, "image": image, "repo_digests": repo_digests});
    if let Some(id) = image_id {
        w["image_id"] = json!(id);
    }
    w
}

#[test]
fn a_multi_arch_image_without_labels_resolves_through_its_registry_labels() {
    let r = history();
    let (c2, c3) = (r.rev("two"), r.rev("three"));
    let reg = TestRegistry::start();
    let amd = reg.push_image("shop/api", "linux/amd64", &[(REV, &c3)], "a");
    // Labelled differently only to show which platform's labels are read.
    let arm = reg.push_image("shop/api", "linux/arm64", &[(REV, &c2)], "a");
    let index = reg.push_index("shop/api", &[("linux/amd64", &amd), ("linux/arm64", &arm)]);
    reg.tag("shop/api", "main-build", &index, OCI_INDEX);

    // The digest a client sees is the index's; skopeo agrees.
    let image = format!("{}/shop/api:main-build", reg.host());
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", &format!("docker://{image}")])
        .output()
        .expect("skopeo is installed (apt-get install docker-registry skopeo)");
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(sha256(&raw.stdout), index);
    let digest = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}", &format!("docker://{image}")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&digest.stdout).trim(), index);

    let home = Home::new();
    let inv = write_inventory(
        home.dir.path(),
        vec![
            // Kubernetes-style: the index digest.
            workload("production", "api", &image, &[format!("{}/shop/api@{index}", reg.host())], None),
            // Classic Docker: only the amd64 config digest as image ID. Not a moved tag.
            workload("staging", "api", &image, &[], Some(&amd.config)),
            // An arm64 host: its config digest is in the index, under another platform.
            workload("edge", "api", &image, &[], Some(&arm.config)),
        ],
    );
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["complete"], true, "{}", run.context);
    for (env, commit) in [("production", &c3), ("staging", &c3), ("edge", &c2)] {
        let row = row(&report, env, "api");
        assert_eq!(row["commit"], commit.as_str(), "{env}: {}", run.context);
        // Not a release tag: the tags were listed; only main-build names it, no release.
        assert_eq!(evidence(row), [("registry-label".to_string(), commit.clone())], "{env}");
        assert_eq!(registry_codes(row), Vec::<String>::new(), "{env}: {}", run.context);
    }
}

#[test]
fn a_moved_tag_a_deleted_image_and_a_label_that_contradicts_the_git_tag() {
    let r = history();
    let (c2, c3) = (r.rev("two"), r.rev("three"));
    let reg = TestRegistry::start();
    let host = reg.host();
    // web: 1.0.0 and latest were one image; latest then moved to a new build.
    let old = reg.push_image("shop/web", "linux/amd64", &[(REV, &c2)], "old");
    reg.tag("shop/web", "1.0.0", &old.manifest, OCI_MANIFEST);
    reg.tag("shop/web", "latest", &old.manifest, OCI_MANIFEST);
    let new = reg.push_image("shop/web", "linux/amd64", &[(REV, &c3)], "new");
    reg.tag("shop/web", "latest", &new.manifest, OCI_MANIFEST);
    // worker: the running image was deleted from the registry.
    let gone = reg.push_image("shop/worker", "linux/amd64", &[(REV, &c3)], "gone");
    reg.tag("shop/worker", "1.1.0", &gone.manifest, OCI_MANIFEST);
    reg.delete_manifest("shop/worker", &gone.manifest);
    // pay: registry tag 1.1.0 labelled with the commit of git tag v1.0.0.
    let pay = reg.push_image("shop/pay", "linux/amd64", &[(REV, &c2)], "pay");
    reg.tag("shop/pay", "1.1.0", &pay.manifest, OCI_MANIFEST);

    let home = Home::new();
    let pinned = |repo: &str, d: &str| vec![format!("{host}/{repo}@{d}")];
    let inv = write_inventory(
        home.dir.path(),
        vec![
            workload("production", "web", &format!("{host}/shop/web:latest"), &pinned("shop/web", &old.manifest), None),
            workload(
                "production",
                "worker",
                &format!("{host}/shop/worker:1.1.0"),
                &pinned("shop/worker", &gone.manifest),
                None,
            ),
            workload("production", "pay", &format!("{host}/shop/pay:1.1.0"), &pinned("shop/pay", &pay.manifest), None),
        ],
    );
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(1);
    let report = run.json();

    // web runs the old latest: tag-moved, and `latest` resolves through the shared 1.0.0.
    let web = row(&report, "production", "web");
    assert_eq!(web["commit"], c2.as_str(), "{}", run.context);
    assert!(registry_codes(web).contains(&"tag-moved".to_string()), "{}", run.context);
    let ev = evidence(web);
    assert!(ev.contains(&("registry-label".into(), c2.clone())), "{ev:?}");
    assert!(ev.contains(&("registry-tag".into(), c2.clone())), "{ev:?}");
    let tag_ev = web["evidence"].as_array().unwrap().iter().find(|e| e["kind"] == "registry-tag").unwrap();
    assert_eq!((tag_ev["value"].as_str(), tag_ev["name"].as_str()), (Some("1.0.0"), Some("v1.0.0")));

    // worker: the image is gone; the git tag still resolves it.
    let worker = row(&report, "production", "worker");
    assert_eq!(registry_codes(worker), ["image-not-in-registry"], "{}", run.context);
    assert_eq!(worker["commit"], c3.as_str());

    // pay: registry label says v1.0.0's commit, git tag v1.1.0 says another: denied.
    let pay_row = row(&report, "production", "pay");
    assert_eq!(registry_codes(pay_row), ["evidence-conflict"], "{}", run.context);
    assert_eq!(report["complete"], true);
}

#[test]
fn a_digest_no_tag_names_any_more_is_reported_when_tags_were_listed() {
    let r = history();
    let c3 = r.rev("three");
    let reg = TestRegistry::start();
    let a = reg.push_image("shop/job", "linux/amd64", &[(REV, &c3)], "a");
    reg.tag("shop/job", "nightly", &a.manifest, OCI_MANIFEST);
    let b = reg.push_image("shop/job", "linux/amd64", &[(REV, &c3)], "b");
    reg.tag("shop/job", "nightly", &b.manifest, OCI_MANIFEST);
    let home = Home::new();
    let image = format!("{}/shop/job:nightly", reg.host());
    let inv = write_inventory(
        home.dir.path(),
        vec![workload("production", "job", &image, &[format!("{}/shop/job@{}", reg.host(), a.manifest)], None)],
    );
    let run = status(&home, r.path(), &inv, &[]);
    // A moved tag is denied by default (the gate's defaults).
    run.expect_code(1);
    let report = run.json();
    let job = row(&report, "production", "job");
    assert_eq!(registry_codes(job), ["tag-moved", "untagged-digest"], "{}", run.context);
    assert_eq!(job["commit"], c3.as_str());
}

#[test]
fn an_unreachable_registry_is_incomplete_and_the_others_still_resolve() {
    let r = history();
    let c3 = r.rev("three");
    let reg = TestRegistry::start();
    let img = reg.push_image("shop/api", "linux/amd64", &[(REV, &c3)], "x");
    let dead = format!("127.0.0.1:{}", free_port());
    let home = Home::new();
    let inv = write_inventory(
        home.dir.path(),
        vec![
            workload("production", "api", &format!("{}/shop/api@{}", reg.host(), img.manifest), &[], None),
            workload(
                "production",
                "web",
                &format!("{dead}/shop/web:1.0.0"),
                &[format!("{dead}/shop/web@{}", img.manifest)],
                None,
            ),
        ],
    );
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(3);
    let report = run.json();
    assert_eq!(report["complete"], false);
    assert_eq!(row(&report, "production", "api")["commit"], c3.as_str(), "{}", run.context);
    let web = row(&report, "production", "web");
    assert_eq!(registry_codes(web), ["registry-unreachable"], "{}", run.context);
    assert!(web["findings"][0]["message"].as_str().unwrap().contains(&dead), "{}", run.context);
    assert_eq!(web["commit"], r.rev("v1.0.0").as_str(), "the git tag still resolves it");

    // --offline asks nothing and says what was not checked; the api had only its registry
    // labels to resolve it, so it is unresolved now.
    let run = status(&home, r.path(), &inv, &["--offline"]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report["findings"][0]["code"], "registry-not-checked", "{}", run.context);
    assert!(registry_codes(row(&report, "production", "web")).is_empty());
    assert_eq!(registry_codes(row(&report, "production", "api")), ["unresolved"]);
}

#[test]
fn basic_auth_from_the_docker_config_and_the_password_never_shows() {
    let r = history();
    let c3 = r.rev("three");
    let password = "pr0diff-s3cret-pw";
    let reg = TestRegistry::start_with(Some(("ada", password)));
    let img = reg.push_image("shop/api", "linux/amd64", &[(REV, &c3)], "x");
    reg.tag("shop/api", "1.1.0", &img.manifest, OCI_MANIFEST);
    let home = Home::new();
    let image = format!("{}/shop/api:1.1.0", reg.host());
    let inv = write_inventory(
        home.dir.path(),
        vec![workload("production", "api", &image, &[format!("{}/shop/api@{}", reg.host(), img.manifest)], None)],
    );
    let auth = |user: &str, pw: &str| {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        std::fs::write(home.docker().join("config.json"), json!({"auths": {reg.host(): {"auth": b}}}).to_string())
            .unwrap();
    };

    // No credentials: denied, and it says so.
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(3);
    let msg = run.json()["results"][0]["findings"][0]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("docker login") || msg.contains("user name and password"), "{msg}");

    auth("ada", password);
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    let report = run.json();
    assert!(evidence(&report["results"][0]).contains(&("registry-label".into(), c3.clone())), "{}", run.context);

    // A wrong password fails without printing either password.
    let wrong = "wr0ng-pa55word-xyz";
    auth("ada", wrong);
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(3);
    for secret in [password, wrong] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{}", run.context);
    }

    // A credential helper (credHelpers over credsStore) is asked for this registry.
    std::fs::create_dir_all(home.bin()).unwrap();
    let helper = home.bin().join("docker-credential-prodifftest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread server\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"ada\",\"Secret\":\"{password}\"}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        home.docker().join("config.json"),
        json!({"credsStore": "missing-store", "credHelpers": {reg.host(): "prodifftest"}}).to_string(),
    )
    .unwrap();
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));

    // A default store that has nothing for this registry: the `auths` entry is used.
    std::fs::write(
        home.bin().join("docker-credential-emptystore"),
        "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(
        home.bin().join("docker-credential-emptystore"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("ada:{password}"));
    std::fs::write(
        home.docker().join("config.json"),
        json!({"credsStore": "emptystore", "auths": {format!("http://{}", reg.host()): {"auth": b}}}).to_string(),
    )
    .unwrap();
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
}

/// A registry holding `shop/api:1.1.0` (a two-platform index labelled with `three`).
fn api_registry(r: &TestRepo) -> (TestRegistry, Image, String) {
    let c3 = r.rev("three");
    let reg = TestRegistry::start();
    let amd = reg.push_image("shop/api", "linux/amd64", &[(REV, &c3)], "a");
    let arm = reg.push_image("shop/api", "linux/arm64", &[(REV, &c3)], "a");
    let index = reg.push_index("shop/api", &[("linux/amd64", &amd), ("linux/arm64", &arm)]);
    reg.tag("shop/api", "1.1.0", &index, OCI_INDEX);
    (reg, amd, index)
}

#[test]
fn head_first_retry_after_honoured_and_a_warm_cache_fetches_nothing_immutable() {
    let r = history();
    let (reg, amd, index) = api_registry(&r);
    let warm = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = warm.clone();
    let proxy = Proxy::start(reg.port, move |req, n| {
        if w.load(std::sync::atomic::Ordering::SeqCst) {
            return Act::ForwardWith(vec![("ratelimit-remaining".into(), "3;w=21600".into())]);
        }
        match (n, req.method.as_str()) {
            (0, "HEAD") => Act::Reply(429, vec![("Retry-After".into(), "1".into())], vec![]),
            _ => Act::Forward,
        }
    });
    let host = proxy.host();
    let image = format!("{host}/shop/api:1.1.0");
    let home = Home::new();
    let inv = write_inventory(
        home.dir.path(),
        vec![
            workload("production", "api", &image, &[format!("{host}/shop/api@{index}")], None),
            workload("staging", "api", &image, &[], Some(&amd.config)),
        ],
    );
    let started = std::time::Instant::now();
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After: 1 was not honoured");
    let tag_path = "/v2/shop/api/manifests/1.1.0";
    // One HEAD per repository:tag per run (two workloads share it), plus the retried 429.
    assert_eq!(proxy.count("HEAD", tag_path), 2, "{}", proxy.log());
    assert_eq!(proxy.count("GET", tag_path), 0, "no GET by tag: {}", proxy.log());
    assert_eq!(proxy.count("GET", "/manifests/sha256:"), 2, "index and amd64 manifest: {}", proxy.log());
    assert_eq!(proxy.count("GET", "/blobs/"), 1, "the amd64 config: {}", proxy.log());

    // Second run: the tag is asked again; nothing immutable is fetched again.
    warm.store(true, std::sync::atomic::Ordering::SeqCst);
    proxy.seen.lock().unwrap().clear();
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    assert_eq!(proxy.count("HEAD", tag_path), 1, "{}", proxy.log());
    assert_eq!(proxy.count("GET", "/manifests/"), 0, "{}", proxy.log());
    assert_eq!(proxy.count("GET", "/blobs/"), 0, "{}", proxy.log());
    let report = run.json();
    assert_eq!(row(&report, "production", "api")["commit"], r.rev("three").as_str());
    assert_eq!(report["findings"][0]["code"], "registry-rate-limit", "{}", run.context);
}

#[test]
fn server_errors_hangs_and_corrupt_bodies_are_reported_per_registry() {
    let r = history();
    let (reg, _, index) = api_registry(&r);
    let failing = Proxy::start(reg.port, |_, _| Act::Reply(500, vec![], b"boom".to_vec()));
    let hanging = Proxy::start(reg.port, |_, _| Act::Hang);
    let corrupt = Proxy::start(reg.port, |req, _| {
        if req.method == "GET" && req.path.contains("/manifests/sha256:") {
            Act::Corrupt
        } else {
            Act::Forward
        }
    });
    let huge = Proxy::start(reg.port, |req, _| {
        if req.method == "GET" && req.path.contains("/manifests/sha256:") {
            Act::Reply(200, vec![], vec![b' '; 5 << 20])
        } else {
            Act::Forward
        }
    });
    let home = Home::new();
    let config = home.dir.path().join("prodiff.toml");
    std::fs::write(&config, "[registry]\ntimeout_ms = 1000\n").unwrap();
    let rows: Vec<Value> = [("failing", &failing), ("hanging", &hanging), ("corrupt", &corrupt), ("huge", &huge)]
        .iter()
        .map(|(name, p)| {
            let host = p.host();
            workload("production", name, &format!("{host}/shop/api:1.1.0"), &[format!("{host}/shop/api@{index}")], None)
        })
        .collect();
    let inv = write_inventory(home.dir.path(), rows);
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(3);
    let report = run.json();
    let message = |service: &str| {
        let row = row(&report, "production", service);
        assert_eq!(registry_codes(row), ["registry-unreachable"], "{service}: {}", run.context);
        row["findings"][0]["message"].as_str().unwrap().to_string()
    };
    assert!(message("failing").contains("HTTP 500"), "{}", run.context);
    assert_eq!(failing.count("HEAD", "/manifests/1.1.0"), 4, "one try and three retries: {}", failing.log());
    assert!(message("hanging").contains("timed out"), "{}", run.context);
    assert!(message("corrupt").contains("does not hash to the digest"), "{}", run.context);
    assert!(message("corrupt").contains(&corrupt.host()));
    assert!(message("huge").contains("larger than 4194304 bytes"), "{}", run.context);
    // Content is addressed by digest: through a healthy path in the same run, the corrupt
    // mirror's answer would never be needed, which is why this run has no healthy path.
}

#[test]
fn bearer_tokens_from_the_challenge_realm_and_a_failing_token_endpoint() {
    let r = history();
    let (reg, _, index) = api_registry(&r);
    let challenge = |port: &std::sync::OnceLock<u16>| {
        let realm = format!("Bearer realm=\"http://127.0.0.1:{}/token\",service=\"test\"", port.get().unwrap());
        Act::Reply(401, vec![("WWW-Authenticate".into(), realm)], b"{}".to_vec())
    };
    let good_port = std::sync::Arc::new(std::sync::OnceLock::new());
    let p = good_port.clone();
    let good = Proxy::start(reg.port, move |req, _| {
        if req.path.starts_with("/token") {
            Act::Reply(
                200,
                vec![("Content-Type".into(), "application/json".into())],
                br#"{"token": "tok123"}"#.to_vec(),
            )
        } else if req.authorization.as_deref() == Some("Bearer tok123") {
            Act::Forward
        } else {
            challenge(&p)
        }
    });
    good_port.set(good.port).unwrap();
    let bad_port = std::sync::Arc::new(std::sync::OnceLock::new());
    let p = bad_port.clone();
    let bad = Proxy::start(reg.port, move |req, _| {
        if req.path.starts_with("/token") {
            Act::Reply(500, vec![], b"token service down".to_vec())
        } else {
            challenge(&p)
        }
    });
    bad_port.set(bad.port).unwrap();
    let home = Home::new();
    let rows: Vec<Value> = [("good", &good), ("bad", &bad)]
        .iter()
        .map(|(name, p)| {
            let host = p.host();
            workload("production", name, &format!("{host}/shop/api:1.1.0"), &[format!("{host}/shop/api@{index}")], None)
        })
        .collect();
    let inv = write_inventory(home.dir.path(), rows);
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(3);
    let report = run.json();
    let good_row = row(&report, "production", "good");
    assert!(evidence(good_row).contains(&("registry-label".into(), r.rev("three"))), "{}", run.context);
    assert!(good.count("GET", "/token") >= 1, "{}", good.log());
    let bad_row = row(&report, "production", "bad");
    assert_eq!(registry_codes(bad_row), ["registry-unreachable"], "{}", run.context);
    let msg = bad_row["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("token endpoint") && msg.contains(&bad.host()), "{msg}");
}

/// Writes a credential helper into the home's `bin` that answers `user` and `secret`.
fn helper(home: &Home, name: &str, user: &str, secret: &str) {
    std::fs::create_dir_all(home.bin()).unwrap();
    let path = home.bin().join(format!("docker-credential-{name}"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\nread server\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn an_identity_token_from_a_credential_helper_is_exchanged_for_an_access_token() {
    let r = history();
    let (reg, _, index) = api_registry(&r);
    let secret = "idt0ken-s3cret";
    let port = std::sync::Arc::new(std::sync::OnceLock::new());
    let p = port.clone();
    let proxy = Proxy::start(reg.port, move |req, _| {
        if req.path.starts_with("/token") {
            let ok = req.method == "POST"
                && req.body.contains("grant_type=refresh_token")
                && req.body.contains(&format!("refresh_token={secret}"))
                && req.body.contains("scope=repository%3Ashop%2Fapi%3Apull");
            return if ok {
                Act::Reply(200, vec![], br#"{"access_token": "acc1"}"#.to_vec())
            } else {
                Act::Reply(401, vec![], format!("bad request, you sent {}", req.body).into_bytes())
            };
        }
        if req.authorization.as_deref() == Some("Bearer acc1") {
            return Act::Forward;
        }
        let realm = format!("Bearer realm=\"http://127.0.0.1:{}/token\",service=\"test\"", p.get().unwrap());
        Act::Reply(401, vec![("WWW-Authenticate".into(), realm)], b"{}".to_vec())
    });
    port.set(proxy.port).unwrap();
    let home = Home::new();
    helper(&home, "idtest", "<token>", secret);
    std::fs::write(home.docker().join("config.json"), json!({"credHelpers": {proxy.host(): "idtest"}}).to_string())
        .unwrap();
    let host = proxy.host();
    let inv = write_inventory(
        home.dir.path(),
        vec![workload(
            "production",
            "api",
            &format!("{host}/shop/api:1.1.0"),
            &[format!("{host}/shop/api@{index}")],
            None,
        )],
    );
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    let report = run.json();
    assert!(evidence(&report["results"][0]).contains(&("registry-label".into(), r.rev("three"))), "{}", run.context);
}

#[test]
fn without_a_digest_header_the_tag_digest_is_the_hash_of_one_get() {
    let r = history();
    let (reg, _, index) = api_registry(&r);
    let proxy = Proxy::start(reg.port, |req, _| {
        if req.path.ends_with("/manifests/1.1.0") {
            Act::ForwardWithout("docker-content-digest".into())
        } else {
            Act::Forward
        }
    });
    let host = proxy.host();
    let home = Home::new();
    let inv = write_inventory(
        home.dir.path(),
        vec![workload(
            "production",
            "api",
            &format!("{host}/shop/api:1.1.0"),
            &[format!("{host}/shop/api@{index}")],
            None,
        )],
    );
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    assert_eq!(registry_codes(&run.json()["results"][0]), Vec::<String>::new(), "{}", run.context);
    assert_eq!(proxy.count("HEAD", "/manifests/1.1.0"), 1, "{}", proxy.log());
    assert_eq!(proxy.count("GET", "/manifests/1.1.0"), 1, "{}", proxy.log());
    // The index came with the GET: not fetched again by digest.
    assert_eq!(proxy.count("GET", &format!("/manifests/{index}")), 0, "{}", proxy.log());
}

#[test]
fn tag_lists_follow_link_pages_and_stop_on_cycles() {
    let r = history();
    let c2 = r.rev("two");
    let reg = TestRegistry::start();
    let img = reg.push_image("shop/web", "linux/amd64", &[], "x");
    let other = reg.push_image("shop/web", "linux/amd64", &[], "y");
    for t in ["a1", "a2", "a3", "a4"] {
        reg.tag("shop/web", t, &other.manifest, OCI_MANIFEST);
    }
    reg.tag("shop/web", "latest", &img.manifest, OCI_MANIFEST);
    reg.tag("shop/web", "1.0.0", &img.manifest, OCI_MANIFEST);
    // distribution 2.8 does not paginate tag lists, so the pages are scripted: three pages,
    // the second linked with an absolute URL.
    let paged = Proxy::start(reg.port, |req, _| {
        let page = |tags: &str, next: Option<&str>| {
            let link = next.map(|n| ("Link".to_string(), format!("<{n}>; rel=\"next\"")));
            Act::Reply(
                200,
                link.into_iter().collect(),
                format!(r#"{{"name": "shop/web", "tags": [{tags}]}}"#).into_bytes(),
            )
        };
        if req.path.contains("/tags/list?n=1000") {
            page(r#""a1", "a2""#, Some("http://elsewhere.invalid/v2/shop/web/tags/list?last=a2&n=2"))
        } else if req.path.contains("/tags/list?last=a2") {
            page(r#""a3", "latest""#, Some("/v2/shop/web/tags/list?last=latest&n=2"))
        } else if req.path.contains("/tags/list?last=latest") {
            page(r#""1.0.0""#, None)
        } else {
            Act::Forward
        }
    });
    // Two pages that link to each other.
    let cyclic = Proxy::start(reg.port, |req, _| {
        let page = |tags: &str, next: &str| {
            Act::Reply(
                200,
                vec![("Link".into(), format!("</v2/shop/web/tags/list?{next}>; rel=\"next\""))],
                format!(r#"{{"name": "shop/web", "tags": [{tags}]}}"#).into_bytes(),
            )
        };
        if req.path.contains("/tags/list?n=1000") {
            page(r#""latest""#, "last=b")
        } else if req.path.contains("/tags/list?last=b") {
            page(r#""1.0.0""#, "n=1000")
        } else {
            Act::Forward
        }
    });
    let home = Home::new();
    let rows = [("paged", &paged), ("cyclic", &cyclic)]
        .iter()
        .map(|(name, p)| {
            let host = p.host();
            workload(
                "production",
                name,
                &format!("{host}/shop/web:latest"),
                &[format!("{host}/shop/web@{}", img.manifest)],
                None,
            )
        })
        .collect();
    let inv = write_inventory(home.dir.path(), rows);
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    let report = run.json();
    for name in ["paged", "cyclic"] {
        let row = row(&report, "production", name);
        assert_eq!(row["commit"], c2.as_str(), "{name}: {}", run.context);
        assert_eq!(evidence(row), [("registry-tag".to_string(), c2.clone())], "{name}");
    }
    assert_eq!(paged.count("GET", "/tags/list"), 3, "{}", paged.log());
    assert_eq!(cyclic.count("GET", "/tags/list"), 2, "{}", cyclic.log());
}

#[test]
fn at_most_four_requests_at_once_per_registry_host() {
    let r = history();
    let c3 = r.rev("three");
    let reg = TestRegistry::start();
    let images: Vec<Image> = (0..10)
        .map(|i| {
            let img = reg.push_image("shop/api", "linux/amd64", &[(REV, &c3)], &i.to_string());
            reg.tag("shop/api", &format!("1.1.{i}"), &img.manifest, OCI_MANIFEST);
            img
        })
        .collect();
    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (now, max) = (in_flight.clone(), most.clone());
    let proxy = Proxy::start(reg.port, move |_, _| {
        use std::sync::atomic::Ordering::SeqCst;
        let n = now.fetch_add(1, SeqCst) + 1;
        max.fetch_max(n, SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(100));
        now.fetch_sub(1, SeqCst);
        Act::Forward
    });
    let host = proxy.host();
    let home = Home::new();
    let rows = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            workload(
                &format!("env{i}"),
                "api",
                &format!("{host}/shop/api:1.1.{i}"),
                &[format!("{host}/shop/api@{}", img.manifest)],
                None,
            )
        })
        .collect();
    let inv = write_inventory(home.dir.path(), rows);
    let run = status(&home, r.path(), &inv, &[]);
    assert_eq!(run.json()["complete"], true, "{}", run.context);
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=4).contains(&most), "{most} requests at once");
}

#[test]
fn docker_v2_manifest_lists_resolve_like_oci_indexes() {
    let r = history();
    let c3 = r.rev("three");
    let reg = TestRegistry::start();
    let amd = reg.push_image_in(Format::Docker, "shop/api", "linux/amd64", &[(REV, &c3)], "d");
    let arm = reg.push_image_in(Format::Docker, "shop/api", "linux/arm64", &[(REV, &c3)], "d");
    let list = reg.push_index_in(Format::Docker, "shop/api", &[("linux/amd64", &amd), ("linux/arm64", &arm)]);
    reg.tag("shop/api", "1.1.0", &list, DOCKER_LIST);
    let host = reg.host();
    let home = Home::new();
    let inv = write_inventory(
        home.dir.path(),
        vec![
            workload(
                "production",
                "api",
                &format!("{host}/shop/api:1.1.0"),
                &[format!("{host}/shop/api@{list}")],
                None,
            ),
            // The per-platform manifest digest (what `docker pull` on amd64 records by some tools).
            workload(
                "staging",
                "api",
                &format!("{host}/shop/api:1.1.0"),
                &[format!("{host}/shop/api@{}", amd.manifest)],
                None,
            ),
        ],
    );
    let run = status(&home, r.path(), &inv, &[]);
    run.expect_code(0);
    let report = run.json();
    for env in ["production", "staging"] {
        let row = row(&report, env, "api");
        assert_eq!(registry_codes(row), Vec::<String>::new(), "{env}: {}", run.context);
        let ev = evidence(row);
        assert!(ev.contains(&("registry-label".into(), c3.clone())), "{env}: {ev:?}");
        assert!(ev.contains(&("git-tag".into(), c3.clone())), "{env}: {ev:?}");
    }
}

/// Issue 19: a classic Docker host gives only its config digest, so the platform that runs
/// is found by reading the index's platform manifests: the configured platform's alone
/// first, then the others a few at a time (never more than the per-host bound in flight),
/// in order, and only until the running one is found. Sixteen platforms, the seventh runs:
/// the platforms after it are fetched only as far as the requests already in flight.
#[test]
fn an_index_is_read_a_few_platforms_at_a_time_and_only_until_the_running_one() {
    const BOUND: usize = 4; // src/observe/registry/http.rs CONCURRENCY
    let r = history();
    let (c2, c3) = (r.rev("two"), r.rev("three"));
    let reg = TestRegistry::start();
    // The first is the configured platform (linux/amd64, the default).
    let platforms: Vec<String> =
        (0..16).map(|i| if i == 0 { "linux/amd64".to_string() } else { format!("linux/arch{i:02}") }).collect();
    let running = 6;
    let images: Vec<Image> = platforms
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // Only the running platform carries c3: the row's commit says whose labels were read.
            let rev = if i == running { &c3 } else { &c2 };
            reg.push_image("shop/api", p, &[(REV, rev)], "fan")
        })
        .collect();
    let entries: Vec<(&str, &Image)> = platforms.iter().map(String::as_str).zip(&images).collect();
    let index = reg.push_index("shop/api", &entries);
    reg.tag("shop/api", "1.1.0", &index, OCI_INDEX);

    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (now, max) = (in_flight.clone(), most.clone());
    let proxy = Proxy::start(reg.port, move |_, _| {
        use std::sync::atomic::Ordering::SeqCst;
        let n = now.fetch_add(1, SeqCst) + 1;
        max.fetch_max(n, SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(150));
        now.fetch_sub(1, SeqCst);
        Act::Forward
    });
    let host = proxy.host();
    let home = Home::new();
    let inv = write_inventory(
        home.dir.path(),
        vec![workload("production", "api", &format!("{host}/shop/api:1.1.0"), &[], Some(&images[running].config))],
    );
    let run = status(&home, r.path(), &inv, &[]);
    let report = run.json();
    assert_eq!(report["complete"], true, "{}", run.context);
    let row = row(&report, "production", "api");
    assert_eq!(row["commit"], c3.as_str(), "the running platform's labels: {}", run.context);
    assert_eq!(registry_codes(row), Vec::<String>::new(), "not a moved tag: {}", run.context);

    let gets: Vec<usize> =
        images.iter().map(|img| proxy.count("GET", &format!("/manifests/{}", img.manifest))).collect();
    let log = proxy.log();
    assert_eq!(gets[0], 1, "the configured platform first: {log}");
    assert!(gets[1..=running].iter().all(|&n| n == 1), "each platform up to the running one once: {gets:?}\n{log}");
    // Those already in flight when the running one answered may have been asked...
    assert!(gets[running + 1..running + BOUND].iter().all(|&n| n <= 1), "{gets:?}\n{log}");
    // ...none after them.
    assert_eq!(gets[running + BOUND..], [0; 16 - 6 - BOUND], "nothing fetched after the match: {log}");
    assert_eq!(proxy.count("GET", "/blobs/"), 1, "one config blob, the running platform's: {log}");
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=BOUND).contains(&most), "{most} requests at once (in parallel, within the bound)\n{log}");
}
