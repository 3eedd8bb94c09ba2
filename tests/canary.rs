//! The canary test (issue 12): unique secrets planted in every place prodiff reads
//! credentials from (docker config `auths` and identity tokens, a per-registry credential
//! helper, the default `credsStore`, tokens from token endpoints, userinfo of Docker hosts,
//! of `DOCKER_HOST` and of version endpoints), with peers that echo what they were sent.
//! Every output format, the log lines of `-vv`, the job summary, the snapshot baseline and the cache are then
//! searched for each secret raw, in base64, JSON-escaped and percent-encoded.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use serde_json::json;

use crate::util::*;
use crate::util_registry::*;

const AUTH_USER: &str = "cn-user";
const AUTH_PW: &str = "Cn-auth-pw-5521/&?";
const UNUSED_IDTOKEN: &str = "Cn-idtok-unused-8812";
const HELPER_IDTOKEN: &str = "Cn-helper-idtok-2291";
const ACCESS_TOKEN: &str = "Cn-access-7734";
const STORE_USER: &str = "store-user";
const STORE_PW: &str = "Cn-store-pw-6610+/=";
const BEARER_TOKEN: &str = "Cn-bearer-4478";
const DOCKER_HOST_PW: &str = "Cn-dockerhost-3390";
const DOCKER_ENV_PW: &str = "Cn-dockerenv-1187";
const ENDPOINT_PW: &str = "Cn-endpoint-9902";

const SECRETS: [&str; 9] = [
    AUTH_PW,
    UNUSED_IDTOKEN,
    HELPER_IDTOKEN,
    ACCESS_TOKEN,
    STORE_PW,
    BEARER_TOKEN,
    DOCKER_HOST_PW,
    DOCKER_ENV_PW,
    ENDPOINT_PW,
];

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every form a secret could come back in.
pub(crate) fn forms(secret: &str) -> Vec<String> {
    let mut roots = vec![secret.to_string(), b64(secret)];
    for (user, pw) in [(AUTH_USER, AUTH_PW), (STORE_USER, STORE_PW), ("ep-user", ENDPOINT_PW)] {
        if pw == secret {
            roots.push(b64(&format!("{user}:{pw}")));
        }
    }
    let mut out = Vec::new();
    for r in roots {
        let json = serde_json::to_string(&r).unwrap();
        let json = json[1..json.len() - 1].to_string();
        let percent: String = r
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        out.extend([json.replace('/', "\\/"), json.replace('&', "\\u0026"), json, percent, r]);
    }
    out.sort();
    out.dedup();
    out
}

/// A registry proxy that wants `Basic` auth with the planted `auths` login.
fn basic_proxy(upstream: u16) -> Proxy {
    let want = format!("Basic {}", b64(&format!("{AUTH_USER}:{AUTH_PW}")));
    Proxy::start(upstream, move |req, _| {
        if req.authorization.as_deref() == Some(want.as_str()) {
            Act::Forward
        } else {
            Act::Reply(401, vec![("WWW-Authenticate".into(), "Basic realm=\"canary\"".into())], b"{}".to_vec())
        }
    })
}

/// A registry proxy with its own `/token`: `token` answers it, `Bearer {accepted}` passes.
fn bearer_proxy(upstream: u16, accepted: &'static str, token: fn(&Seen) -> Act) -> Proxy {
    let port: Arc<OnceLock<u16>> = Arc::default();
    let p = port.clone();
    let proxy = Proxy::start(upstream, move |req, _| {
        if req.path.starts_with("/token") {
            return token(req);
        }
        if req.authorization.as_deref() == Some(format!("Bearer {accepted}").as_str()) {
            return Act::Forward;
        }
        let realm = format!("Bearer realm=\"http://127.0.0.1:{}/token\",service=\"canary\"", p.get().unwrap());
        Act::Reply(401, vec![("WWW-Authenticate".into(), realm)], b"{}".to_vec())
    });
    port.set(proxy.port).unwrap();
    proxy
}

/// The refresh-token exchange: the helper's identity token in, the access token out.
fn refresh(req: &Seen) -> Act {
    if req.body.contains(&format!("refresh_token={HELPER_IDTOKEN}")) {
        Act::Reply(200, vec![], json!({"access_token": ACCESS_TOKEN}).to_string().into_bytes())
    } else {
        Act::Reply(400, vec![], format!("{{\"error\":\"bad\",\"you_sent\":{:?}}}", req.body).into_bytes())
    }
}

/// The token GET with the store's login: the bearer token out.
fn issue(req: &Seen) -> Act {
    let want = format!("Basic {}", b64(&format!("{STORE_USER}:{STORE_PW}")));
    if req.authorization.as_deref() == Some(want.as_str()) {
        Act::Reply(200, vec![], json!({"token": BEARER_TOKEN}).to_string().into_bytes())
    } else {
        Act::Reply(401, vec![], b"{}".to_vec())
    }
}

/// A token endpoint that refuses, echoing the header it got JSON-escaped (`\/`).
fn refuse_echoing(req: &Seen) -> Act {
    let sent = req.authorization.clone().unwrap_or_default().replace('/', "\\/");
    Act::Reply(401, vec![], format!("{{\"details\":\"refused {sent}\"}}").into_bytes())
}

fn write_helper(home: &Home, name: &str, body: &str) {
    std::fs::create_dir_all(home.bin()).unwrap();
    let path = home.bin().join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\nread server\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// Every command worth running, in every format it has.
fn commands(snapshot: &str) -> Vec<Vec<&str>> {
    let mut runs: Vec<Vec<&str>> = Vec::new();
    for format in ["table", "json", "markdown", "github", "junit", "html"] {
        runs.push(vec!["status", "--format", format]);
        runs.push(vec!["check", "--format", format]);
    }
    for format in ["table", "json", "markdown", "github", "html"] {
        runs.push(vec!["diff", "production", "--format", format]);
    }
    // Log lines too: -vv logs every request and every host asked.
    runs.push(vec!["status", "-vv", "--format", "json"]);
    runs.push(vec!["snapshot", "--output", snapshot]);
    runs.push(vec!["check", "--baseline", snapshot, "--format", "json"]);
    runs
}

#[test]
fn canary_secrets_appear_in_no_output_summary_baseline_or_cache() {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    let reg = TestRegistry::start();
    let img = reg.push_image("shop/api", "linux/amd64", &[(REV, &r.rev("one"))], "canary");
    reg.tag("shop/api", "1.0", &img.manifest, OCI_MANIFEST);
    let basic = basic_proxy(reg.port);
    let helper = bearer_proxy(reg.port, ACCESS_TOKEN, refresh);
    let store = bearer_proxy(reg.port, BEARER_TOKEN, issue);
    let refusing = bearer_proxy(reg.port, "never", refuse_echoing);
    let echo = Proxy::start(free_port(), |req, _| {
        Act::Reply(200, vec![], format!("no version; Authorization was {:?}", req.authorization).into_bytes())
    });

    let home = Home::new();
    write_helper(&home, "cnhelper", &format!("echo '{{\"Username\":\"<token>\",\"Secret\":\"{HELPER_IDTOKEN}\"}}'"));
    // The store answers for every registry but the one left to `auths`.
    write_helper(
        &home,
        "cnstore",
        &format!(
            "if [ \"$server\" = \"{}\" ]; then echo 'credentials not found in native keychain'; exit 1; fi\necho '{}'",
            basic.host(),
            json!({"Username": STORE_USER, "Secret": STORE_PW})
        ),
    );
    let config = json!({
        "auths": {
            basic.host(): {"auth": b64(&format!("{AUTH_USER}:{AUTH_PW}"))},
            "other.example": {"identitytoken": UNUSED_IDTOKEN},
        },
        "credHelpers": {helper.host(): "cnhelper"},
        "credsStore": "cnstore",
    });
    std::fs::write(home.docker().join("config.json"), config.to_string()).unwrap();

    let rows: Vec<_> = [("basic", &basic), ("helper", &helper), ("store", &store), ("refusing", &refusing)]
        .iter()
        .map(|(service, p)| json!({"service": service, "image": format!("{}/shop/api:1.0", p.host()), "image_id": img.config}))
        .collect();
    let inv = home.dir.path().join("production.json");
    std::fs::write(&inv, json!({"workloads": rows}).to_string()).unwrap();
    let staging = home.dir.path().join("staging.json");
    std::fs::write(&staging, json!({"workloads": [{"service": "api", "image": "nginx"}]}).to_string()).unwrap();
    let dead = free_port();
    let toml = format!(
        "[environments.staging]\ninventory = [{staging:?}]\ndocker = [\"default\"]\n\
         [environments.production]\ninventory = [{inv:?}]\ndocker = [\"tcp://dk-user:{DOCKER_HOST_PW}@127.0.0.1:{dead}\"]\n\
         [[environments.production.endpoints]]\nservice = \"basic\"\nurl = \"http://ep-user:{ENDPOINT_PW}@{}/__version__\"\n",
        echo.host()
    );
    let config_path = home.dir.path().join("prodiff.toml");
    std::fs::write(&config_path, toml).unwrap();

    let summary = home.dir.path().join("summary.md");
    let snapshot = home.dir.path().join("baseline.json");
    let (repo, cfg) = (r.path().to_str().unwrap(), config_path.to_str().unwrap());
    let mut seen: Vec<(String, String)> = Vec::new();
    for args in commands(snapshot.to_str().unwrap()) {
        let mut all = args.clone();
        all.extend(["--repo", repo, "--config", cfg]);
        let out = home
            .command(r.path(), &all)
            .env("DOCKER_HOST", format!("tcp://dh-user:{DOCKER_ENV_PW}@127.0.0.1:{dead}"))
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("PRODIFF_NOW", "2026-12-01T00:00:00Z")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(![Some(101), Some(2)].contains(&out.status.code()), "{args:?}: {:?}\n{stderr}", out.status);
        seen.push((format!("{args:?} stdout"), String::from_utf8_lossy(&out.stdout).into_owned()));
        seen.push((format!("{args:?} stderr"), stderr));
    }
    let written = [&summary, &snapshot].map(|p| (p.display().to_string(), std::fs::read(p).unwrap()));
    for (name, bytes) in files_under(&home.cache()).into_iter().chain(written) {
        seen.push((name, String::from_utf8_lossy(&bytes).into_owned()));
    }

    assert_eq!(seen[4].0, r#"["status", "--format", "json"] stdout"#);
    // The secrets were in play: every peer got what it asked for.
    let report: serde_json::Value = serde_json::from_str(&seen[4].1).expect("status --format json");
    for service in ["basic", "helper", "store"] {
        let row = row(&report, "production", service);
        assert!(evidence(row).iter().any(|(k, _)| k == "registry-label"), "{service} resolved: {row:#}");
    }
    assert!(refusing.count("GET", "/token") >= 1 && echo.count("GET", "/__version__") >= 1);
    assert!(!files_under(&home.cache()).is_empty(), "the cache was written");
    let logs = &seen.iter().find(|(n, _)| n.starts_with(r#"["status", "-vv""#) && n.ends_with("stderr")).unwrap().1;
    assert!(logs.contains(&format!("docker tcp://127.0.0.1:{dead}")), "the log names the hosts asked:\n{logs}");

    for secret in SECRETS {
        for form in forms(secret) {
            for (name, text) in &seen {
                assert!(!text.contains(&form), "{secret} leaked as {form:?} in {name}:\n{text}");
            }
        }
    }
}
