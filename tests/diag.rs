//! Diagnostics a user waiting on prodiff sees: a progress line on a terminal (a real pty,
//! through `script`) naming the registry being waited on, nothing of it when stderr is a
//! pipe, and `-v`, `-vv` and `RUST_LOG` saying which registry and request.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::*;
use crate::util_registry::free_port;

/// A registry address that accepts connections and never answers, until `stop` is set
/// (or 20 s have passed).
fn silent_registry(stop: Arc<AtomicBool>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut held = Vec::new();
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, handle)
}

/// A repository with v1.2.0 and an inventory whose running digest makes prodiff ask the
/// registry at `port`; a config with a 2 s registry timeout.
fn fleet(port: u16) -> (TestRepo, PathBuf, PathBuf) {
    let r = TestRepo::new();
    r.commit("main", "one", &[("a.txt", "1")]);
    r.tag("v1.2.0", "main", false);
    let host = format!("127.0.0.1:{port}");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let inv = r.scratch().join("inv.json");
    let w = serde_json::json!({"environment": "p", "service": "api", "image": format!("{host}/shop/api:1.2.0"),
        "repo_digests": [format!("{host}/shop/api@{digest}")]});
    std::fs::write(&inv, serde_json::json!({ "workloads": [w] }).to_string()).unwrap();
    let config = r.scratch().join("prodiff.toml");
    std::fs::write(&config, "[registry]\ntimeout_ms = 2000\n").unwrap();
    (r, inv, config)
}

fn args<'a>(r: &'a TestRepo, inv: &'a Path, config: &'a Path) -> Vec<&'a str> {
    vec![
        "status",
        "--repo",
        r.path().to_str().unwrap(),
        "--inventory",
        inv.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]
}

#[test]
fn a_slow_registry_shows_progress_on_a_terminal_and_none_in_a_pipe() {
    let stop = Arc::new(AtomicBool::new(false));
    let (port, server) = silent_registry(stop.clone());
    let (r, inv, config) = fleet(port);
    let cmd: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_prodiff").to_string())
        .chain(args(&r, &inv, &config).into_iter().map(String::from))
        .collect();
    // `script` gives prodiff a real terminal; everything it writes lands in our stdout.
    let out = Command::new("script")
        .args(["-qec", &cmd.join(" "), "/dev/null"])
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("script is installed (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    let waiting = format!("asking 1 registry (127.0.0.1:{port}) about the running images (1s)");
    assert!(screen.contains(&waiting), "no progress line on the terminal:\n{screen}");
    assert!(screen.contains("\u{1b}[2K"), "the progress line is cleared:\n{screen}");
    assert!(screen.contains("registry-unreachable"), "{screen}");

    // The same run into pipes: no progress line, no log.
    let piped = prodiff_env(r.path(), &args(&r, &inv, &config), None, &[]);
    assert!(!piped.stderr.contains("asking"), "{}", piped.context);
    assert!(piped.stdout.contains("timed out"), "{}", piped.context);
    piped.expect_code(3);
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
}

#[test]
fn verbose_says_which_registry_and_request_is_waited_on() {
    // Nothing listens: each request fails at once.
    let port = free_port();
    let (r, inv, config) = fleet(port);
    let base = args(&r, &inv, &config);
    let with = |extra: &[&str], env: &[(&str, &str)]| {
        let mut a = base.clone();
        a.extend_from_slice(extra);
        prodiff_env(r.path(), &a, None, env)
    };
    let request = format!("registry 127.0.0.1:{port}: HEAD http://127.0.0.1:{port}/v2/shop/api/manifests/1.2.0");

    let quiet = with(&[], &[]);
    assert_eq!(quiet.stderr, "", "{}", quiet.context);

    let v = with(&["-v"], &[]);
    assert!(
        v.stderr.contains(&format!("INFO asking 1 registry (127.0.0.1:{port}) about the running images")),
        "{}",
        v.context
    );
    assert!(v.stderr.contains(&format!("{request} failed after ")), "{}", v.context);
    assert!(!v.stderr.contains("DEBUG"), "{}", v.context);
    assert!(!v.stdout.contains("INFO"), "logs never go to stdout\n{}", v.context);

    let vv = with(&["-vv"], &[]);
    assert!(vv.stderr.contains(&format!("DEBUG {request}\n")), "{}", vv.context);
    assert!(vv.stderr.contains("DEBUG walking "), "{}", vv.context);

    let env = with(&[], &[("RUST_LOG", "prodiff=debug")]);
    assert!(env.stderr.contains(&format!("DEBUG {request}\n")), "{}", env.context);
    let bad = with(&[], &[("RUST_LOG", "prodiff=loud")]);
    assert!(bad.stderr.contains("is not a valid filter"), "{}", bad.context);
}
