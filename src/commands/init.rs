//! `prodiff init`: detects what it can (the repository's tags and mainline, the local
//! Docker daemon's containers, Docker and kubectl contexts) and writes the commented
//! config `crate::config::template` renders. Read-only everywhere but the one file it writes, which it
//! never overwrites without `--force`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::cli::{Global, InitArgs};
use crate::config::template::{self, Detected, Image};
use crate::config::Config;
use crate::git::Repo;
use crate::model::Code;

pub(super) fn init(g: &Global, args: &InitArgs, out: &mut dyn Write) -> Result<u8> {
    let repo = Repo::open(g.repo())?;
    let target = args.output.clone().unwrap_or_else(|| repo.path().join("prodiff.toml"));
    let to_stdout = target == Path::new("-");
    if !to_stdout && target.exists() && !args.force {
        bail!("{} exists: prodiff init does not overwrite it (pass --force to)", target.display());
    }
    let detected = detect(&repo, !args.no_detect)?;
    let text = template::render(&detected, &super::pipeline::now()?.format("%Y-%m-%d").to_string());
    // What init writes must load: a failure here is a bug in init, not in the user's setup.
    Config::parse(&text, &target).context("prodiff init wrote a config that does not load (a bug)")?;
    if to_stdout {
        out.write_all(text.as_bytes())?;
        return Ok(crate::exit::CLEAN);
    }
    std::fs::write(&target, &text).with_context(|| format!("cannot write {}", target.display()))?;
    let ours = detected.images.iter().filter(|i| i.ours).count();
    eprintln!(
        "prodiff: wrote {} ({ours} service(s) detected, {} context(s) suggested); edit it, then run `prodiff status`",
        target.display(),
        detected.docker_contexts.len() + detected.kube_contexts.len()
    );
    Ok(crate::exit::CLEAN)
}

fn detect(repo: &Repo, look_around: bool) -> Result<Detected> {
    let tags: Vec<String> = repo.tags()?.into_iter().map(|(name, _)| name).collect();
    let mut d = Detected {
        mainline: repo.mainline(None).ok().map(|(name, _)| name),
        tag_schemes: template::tag_schemes(&tags),
        ..Detected::default()
    };
    if !look_around {
        d.notes.push("Docker and Kubernetes (--no-detect)".into());
        return Ok(d);
    }
    docker_images(repo, &mut d)?;
    d.docker_contexts = docker_contexts(&docker_config_dir());
    match kube_contexts() {
        Ok(list) => d.kube_contexts = list,
        Err(why) => d.notes.push(format!("Kubernetes contexts: {why}")),
    }
    Ok(d)
}

/// The local daemon's containers, one entry per image repository.
fn docker_images(repo: &Repo, d: &mut Detected) -> Result<()> {
    let local = crate::observe::docker::endpoint(&crate::observe::docker::HostSpec::Default)?;
    let host = local.host.clone();
    let everything = |_: &crate::model::Workload| true;
    let seen = super::pipeline::observe_docker(&[(local, false)], "local", &Config::default(), &everything)?
        .pop()
        .unwrap_or_default();
    if let Some(f) = seen.findings.iter().find(|f| f.code == Code::SourceUnreachable) {
        d.notes.push(format!("Docker containers: {}", f.message));
        return Ok(());
    }
    d.docker = Some(host);
    let origin = repo.remote_url("origin");
    for w in &seen.workloads {
        let Some(image) = w.image.named() else { continue };
        let repository = image.familiar_name();
        // Instances are `HOST/NAME`: the host is said once, in the environment's comment.
        let container = w.instance.as_deref().and_then(|i| i.rsplit('/').next()).unwrap_or("a container").to_string();
        let ours = super::pipeline::built_here(w, repo, origin.as_deref());
        match d.images.iter_mut().find(|i| i.repository == repository) {
            Some(i) => {
                i.containers.push(container);
                i.ours |= ours;
            }
            None => d.images.push(Image {
                service: image.short_name().to_string(),
                repository,
                containers: vec![container],
                ours,
            }),
        }
    }
    d.images.sort_by(|a, b| a.repository.cmp(&b.repository));
    Ok(())
}

fn docker_config_dir() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"))
}

/// Docker contexts as the docker CLI stores them: `contexts/meta/<hash>/meta.json` with
/// `Name` and `Endpoints.docker.Host`. Unreadable entries are skipped.
fn docker_contexts(config_dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(config_dir.join("contexts/meta")) else { return Vec::new() };
    let mut out: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("meta.json")).ok())
        .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .filter_map(|v| {
            let name = v["Name"].as_str()?.to_string();
            let host = v["Endpoints"]["docker"]["Host"].as_str()?.to_string();
            Some((name, host))
        })
        .filter(|(name, _)| name != "default")
        .collect();
    out.sort();
    out
}

/// `kubectl config get-contexts -o name` (local: reads the kubeconfig, asks no cluster).
fn kube_contexts() -> Result<Vec<String>, String> {
    let bin = std::env::var("PRODIFF_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&bin)
        .args(["config", "get-contexts", "-o", "name"])
        .output()
        .map_err(|e| format!("cannot run {bin} ({e}): install kubectl or set PRODIFF_KUBECTL"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{bin} config get-contexts failed: {}", err.lines().next().unwrap_or("").trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}
