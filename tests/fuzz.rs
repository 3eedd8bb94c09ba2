//! Fuzzing on the stable toolchain (issue 12): proptest feeds the input parsers random and
//! mutated inputs (valid seeds with bytes flipped, tokens inserted, parts cut or repeated)
//! and asserts the one property that matters for all of them: an answer or an error,
//! never a panic. Errors must also stay short (a bad value is quoted in part, not whole).
//!
//! The suite runs `PRODIFF_FUZZ_CASES` cases per target (default 64, a few seconds). The
//! longer run (documented in the README) repeats batches with fresh random seeds until
//! `PRODIFF_FUZZ_SECONDS` have passed, per target, and prints how many cases ran:
//! `PRODIFF_FUZZ_SECONDS=600 PRODIFF_FUZZ_CASES=5000 cargo test --test main fuzz:: -- --test-threads=1 --nocapture`.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use prodiff::config::Config;
use prodiff::observe::registry::manifest;
use prodiff::observe::registry::Platform;
use prodiff::observe::{inventory, kubernetes};
use prodiff::reference::{ImageRef, ImageSpec};

/// The longest error message a parser may produce for these inputs (bad values are cut
/// to 200 characters, which escaping can make ten bytes each).
const MAX_ERROR: usize = 4_000;

fn cases() -> u32 {
    std::env::var("PRODIFF_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// Runs `check` on `cases()` inputs from `strategy` (batches of them, each with a fresh
/// random seed, until `PRODIFF_FUZZ_SECONDS` passed); a failure names the minimal input.
fn fuzz<S: Strategy>(strategy: S, check: impl Fn(S::Value)) {
    let seconds: u64 = std::env::var("PRODIFF_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let started = std::time::Instant::now();
    let mut batches = 0u64;
    loop {
        let config = RunnerConfig { cases: cases(), failure_persistence: None, ..RunnerConfig::default() };
        let result = TestRunner::new(config).run(&strategy, |v| {
            check(v);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        batches += 1;
        if started.elapsed().as_secs() >= seconds {
            break;
        }
    }
    if seconds > 0 {
        eprintln!("fuzz: {} cases in {:.0?}", batches * u64::from(cases()), started.elapsed());
    }
}

/// Tokens that parsers treat specially, to insert anywhere.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "-1",
    "1e999",
    "18446744073709551616",
    "@",
    "sha256:",
    "/",
    "..",
    "%",
    "\n",
    "\u{2028}",
    "é",
    "\u{0}",
    "=",
    "'''",
    "[[",
];

/// A seed with up to 8 mutations: flip, insert a token, cut, repeat.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    let op = (0usize..4, any::<usize>(), any::<u8>(), 0usize..TOKENS.len());
    proptest::collection::vec(op, 0..8).prop_map(move |ops| {
        let mut b = seed.as_bytes().to_vec();
        for (kind, at, byte, token) in ops {
            let i = if b.is_empty() { 0 } else { at % b.len() };
            match kind {
                0 if !b.is_empty() => b[i] ^= byte | 1,
                1 => b.splice(i..i, TOKENS[token].bytes()).for_each(drop),
                2 => b.truncate(i),
                _ => {
                    let part = b[i..(i + 64).min(b.len())].to_vec();
                    b.splice(i..i, part.into_iter().cycle().take(64 * (byte as usize % 8))).for_each(drop);
                }
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

fn short(e: impl std::fmt::Display) {
    let e = e.to_string();
    assert!(e.len() <= MAX_ERROR, "an error of {} bytes: {}", e.len(), &e[..MAX_ERROR.min(e.len())]);
}

const INVENTORY: &str = r#"{"workloads": [{"environment": "production", "service": "api",
  "image": "registry.example.com/shop/api:1.4.2@sha256:1111111111111111111111111111111111111111111111111111111111111111",
  "image_id": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
  "repo_digests": ["registry.example.com/shop/api@sha256:1111111111111111111111111111111111111111111111111111111111111111"],
  "labels": {"org.opencontainers.image.revision": "abc"}, "instance": "h/1", "started_at": "2026-11-20T10:00:00Z"}]}"#;

const INDEX: &str = r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [{"digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "size": 1,
  "platform": {"os": "linux", "architecture": "amd64"}}, {"digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
  "platform": {"os": "unknown", "architecture": "unknown"}}], "annotations": {"org.opencontainers.image.revision": "abc"}}"#;

const IMAGE: &str = r#"{"schemaVersion": 2, "config": {"digest": "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"},
  "annotations": {"a": "b"}}"#;

const CONFIG_BLOB: &str =
    r#"{"architecture": "amd64", "os": "linux", "config": {"Labels": {"org.opencontainers.image.revision": "abc"}}}"#;

const PRODIFF_TOML: &str = r#"mainline = "main"
promotion = ["staging", "production"]
[services.api]
image = "registry.example.com/shop/api"
paths = ["services/api"]
git_tags = ["api-v{tag}"]
[environments.staging]
inventory = ["staging.json"]
docker = ["tcp://10.0.0.5:2376"]
endpoints = [{ service = "api", url = "https://api.example/__version__", pointer = "/commit", regex = "v([0-9a-f]+)" }]
[environments.production]
inventory = ["production.json"]
[registry]
insecure = ["r.example:5000"]
timeout_ms = 500
platform = "linux/arm64/v8"
max_tags = 100
[policy]
deny = ["hotfix-drift"]
"#;

#[test]
fn fuzz_the_reference_parser() {
    let chars =
        prop::sample::select(vec!['a', 'Z', '0', '9', '/', ':', '@', '.', '-', '_', '[', ']', 's', 'h', 'f', 'é', ' ']);
    let structured = proptest::collection::vec(chars, 0..120).prop_map(|c| c.into_iter().collect::<String>());
    let seeds = mutated("registry.example.com:5000/shop/api:1.4.2@sha256:1111111111111111111111111111111111111111111111111111111111111111");
    fuzz(prop_oneof![any::<String>(), structured, seeds], |s| {
        let _ = ImageRef::parse(&s).map(|r| (r.to_string(), r.familiar(), r.name())).map_err(short);
        let _ = ImageSpec::parse(&s).map(|r| r.to_string()).map_err(short);
        let _ = prodiff::reference::Digest::parse(&s).map_err(short);
    });
}

#[test]
fn fuzz_the_inventory() {
    fuzz(prop_oneof![any::<String>(), mutated(INVENTORY)], |s| {
        let _ = inventory::parse(&s, Path::new("inventory.json"), None).map_err(short);
        let _ = inventory::parse(&s, Path::new("inventory.json"), Some("production")).map_err(short);
    });
}

#[test]
fn fuzz_the_config() {
    fuzz(prop_oneof![any::<String>(), mutated(PRODIFF_TOML)], |s| {
        let _ = Config::parse(&s, Path::new("/etc/prodiff/prodiff.toml")).map_err(short);
    });
}

#[test]
fn fuzz_manifests_indexes_and_config_blobs() {
    let seeds = prop_oneof![any::<String>(), mutated(INDEX), mutated(IMAGE), mutated(CONFIG_BLOB)];
    fuzz(seeds, |s| {
        for p in ["linux/amd64", "linux/arm64/v8"] {
            let _ = manifest::parse(s.as_bytes(), &Platform::parse(p).unwrap()).map_err(short);
        }
        let _ = manifest::labels(s.as_bytes()).map_err(short);
        let _ = Platform::parse(&s).map(|p| p.to_string());
    });
}

const BASELINE: &str = r#"{"schema_version": 1, "command": "snapshot", "results": [{"environment": "production",
  "service": "api", "image": "r/api:1", "commit": "aéééééééééééé", "behind": [], "ahead": null,
  "findings": [{"code": "hotfix-drift", "environment": "production", "service": "api", "key": "k", "message": "m"}]}],
  "findings": [{"code": "shallow-clone", "message": "x"}]}"#;

#[test]
fn fuzz_baselines() {
    fuzz(prop_oneof![any::<String>(), mutated(BASELINE)], |s| {
        let _ = prodiff::judge::baseline::Baseline::parse(&s, Path::new("baseline.json")).map_err(short);
    });
}

#[test]
fn fuzz_kubectl_json() {
    const PODS: &str = include_str!("../fixtures/kubernetes/production-pods.json");
    let config = Config::default();
    fuzz(prop_oneof![any::<String>(), mutated(PODS)], |s| {
        let _ = kubernetes::parse(&s, Path::new("pods.json"), "production", &config).map_err(short);
    });
}
