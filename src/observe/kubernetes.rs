//! The Kubernetes source: pods as `kubectl get pods -o json` prints them, from a file, stdin
//! or a live `kubectl` call with the user's kubeconfig and context (so every auth plugin
//! works as it does for the user; kube-rs would add minutes of compile time for the same).
//!
//! What runs is read from container *statuses*, not the spec: `imageID` names the digest
//! actually pulled (`docker-pullable://repo@sha256:…`, a containerd `repo@sha256:…`, or an
//! image ID). Init containers ran to completion and are not "what runs"; native sidecars
//! (init containers with `restartPolicy: Always`) are. A container that is not running yet
//! (still pulling, crash-looping) is a `pending-workload` finding, not a workload.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::replicas::{self, PerReplica};
use super::{Observation, SourceError};
use crate::config::Config;
use crate::model::{Code, Digest, Finding, ImageRef, ImageSpec, Workload};

/// Labels that name an application, most specific first.
const APP_LABELS: &[&str] = &["app.kubernetes.io/name", "app"];

pub use crate::config::observe::PodSource;

#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Deserialize)]
struct Pod {
    metadata: Metadata,
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    node_name: Option<String>,
    #[serde(default)]
    init_containers: Vec<ContainerSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerSpec {
    name: String,
    restart_policy: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    image: String,
    #[serde(default, rename = "imageID")]
    image_id: String,
    #[serde(default)]
    state: BTreeMap<String, ContainerState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerState {
    started_at: Option<DateTime<Utc>>,
    reason: Option<String>,
}

/// Reads pods for `environment` from one source. A live cluster that cannot be read is a
/// `source-unreachable` finding; a file that cannot be read or parsed is an error.
pub fn observe(source: &PodSource, environment: &str, config: &Config) -> Result<Observation, SourceError> {
    match source {
        PodSource::File(path) => {
            let text = super::read_text(path)?;
            parse(&text, path, environment, config)
        }
        PodSource::Live { context, namespace, selector } => {
            let what = describe(context, namespace);
            match kubectl(context, namespace, selector) {
                Ok(text) => parse(&text, Path::new(&what), environment, config),
                Err(Failure { message, hint }) => {
                    let mut f = Finding::new(Code::SourceUnreachable, format!("kubectl {what}: {message}"))
                        .hint(hint)
                        .key(what);
                    f.environment = Some(environment.to_string());
                    Ok(Observation { findings: vec![f], ..Observation::default() })
                }
            }
        }
    }
}

/// No namespace: the context's own (kubectl's `default` when it sets none), as kubectl does;
/// `*`: every namespace.
fn describe(context: &Option<String>, namespace: &Option<String>) -> String {
    format!(
        "context {} namespace {}",
        context.as_deref().unwrap_or("(current)"),
        match namespace.as_deref() {
            None => "(the context's)",
            Some(ALL_NAMESPACES) => "(all)",
            Some(n) => n,
        }
    )
}

/// `namespace = "*"`: `--all-namespaces`.
pub const ALL_NAMESPACES: &str = "*";

/// Why a live cluster could not be read, in one line, and what to do about it.
struct Failure {
    message: String,
    hint: String,
}

/// `kubectl get pods -o json`, bounded in time. `PRODIFF_KUBECTL` names another binary.
fn kubectl(context: &Option<String>, namespace: &Option<String>, selector: &Option<String>) -> Result<String, Failure> {
    let configured = std::env::var("PRODIFF_KUBECTL").ok().filter(|b| !b.is_empty());
    let bin = configured.clone().unwrap_or_else(|| "kubectl".into());
    let mut cmd = Command::new(&bin);
    cmd.args(["get", "pods", "-o", "json", "--request-timeout=20s"]);
    if let Some(c) = context {
        cmd.args(["--context", c]);
    }
    match namespace.as_deref() {
        Some(ALL_NAMESPACES) => {
            cmd.arg("--all-namespaces");
        }
        Some(n) => {
            cmd.args(["--namespace", n]);
        }
        None => {}
    }
    if let Some(s) = selector {
        cmd.args(["--selector", s]);
    }
    let check = "check the context with `kubectl --context CONTEXT get pods`".to_string();
    let out = match run_with_timeout(cmd, Duration::from_secs(30)) {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing(configured.as_deref())),
        Err(e) => return Err(Failure { message: format!("cannot run {bin}: {e}"), hint: check }),
    };
    if !out.status.success() {
        let message = format!("{bin} failed: {}", last_line(&String::from_utf8_lossy(&out.stderr)));
        return Err(Failure { message, hint: check });
    }
    String::from_utf8(out.stdout)
        .map_err(|_| Failure { message: format!("{bin} printed something that is not UTF-8"), hint: check })
}

fn missing(configured: Option<&str>) -> Failure {
    let message = match configured {
        Some(bin) => format!("PRODIFF_KUBECTL={bin} does not exist"),
        None => "kubectl is not installed (not found on PATH)".to_string(),
    };
    let hint = "install kubectl (https://kubernetes.io/docs/tasks/tools/), or set PRODIFF_KUBECTL to the kubectl binary to use";
    Failure { message, hint: hint.to_string() }
}

/// kubectl's own conclusion, without the klog lines (`E1203 07:33:09.643513 27039
/// memcache.go:265] …`) client-go repeats before it: the last line that is not one of
/// them, else the last of them.
fn last_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let plain = lines.iter().rev().find(|l| !is_klog(l));
    plain.or(lines.last()).map(|l| l.to_string()).unwrap_or_else(|| "(nothing on stderr)".into())
}

/// `E1203 07:33:09.643513   27039 memcache.go:265] …`: severity, MMDD, time, pid, file:line].
fn is_klog(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let head = parts.next().unwrap_or("");
    let time = parts.next().unwrap_or("");
    let _pid = parts.next();
    let at = parts.next().unwrap_or("");
    head.len() == 5
        && head.starts_with(['I', 'W', 'E', 'F'])
        && head[1..].bytes().all(|b| b.is_ascii_digit())
        && time.contains(':')
        && at.ends_with(']')
}

fn run_with_timeout(mut cmd: Command, limit: Duration) -> std::io::Result<std::process::Output> {
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let started = std::time::Instant::now();
    // Drain stdout on a thread so a large pod list cannot fill the pipe while we wait.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).map(|_| buf)
    });
    loop {
        if let Some(status) = child.try_wait()? {
            let mut stderr = Vec::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_end(&mut e, &mut stderr)?;
            }
            let stdout = reader.join().map_err(|_| std::io::Error::other("reader thread panicked"))??;
            return Ok(std::process::Output { status, stdout, stderr });
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {}s", limit.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses a pod list (or a single pod) into workloads and findings.
pub fn parse(text: &str, origin: &Path, environment: &str, config: &Config) -> Result<Observation, SourceError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| super::invalid_json(origin, &e))?;
    let pods: Vec<Pod> = if value.get("kind").and_then(|k| k.as_str()) == Some("Pod") {
        vec![serde_json::from_value(value).map_err(|e| super::invalid_json(origin, &e))?]
    } else {
        let list: PodList = serde_json::from_value(value).map_err(|e| super::invalid_json(origin, &e))?;
        if !list.kind.is_empty() && list.kind != "List" && list.kind != "PodList" {
            return Err(SourceError::Inconsistent {
                path: origin.to_path_buf(),
                message: format!("kind {:?} is not a pod list: use `kubectl get pods -o json`", list.kind),
            });
        }
        list.items
    };
    let mut obs = Observation::default();
    let mut pending = Vec::new();
    for pod in &pods {
        observe_pod(pod, origin, environment, config, &mut obs, &mut pending)?;
    }
    // Five replicas stuck on one image pulling are one finding.
    obs.findings = replicas::group(pending);
    Ok(obs)
}

fn observe_pod(
    pod: &Pod,
    origin: &Path,
    environment: &str,
    config: &Config,
    obs: &mut Observation,
    pending: &mut Vec<PerReplica>,
) -> Result<(), SourceError> {
    let sidecars: Vec<&str> = pod
        .spec
        .init_containers
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let running = pod
        .status
        .container_statuses
        .iter()
        .chain(pod.status.init_container_statuses.iter().filter(|s| sidecars.contains(&s.name.as_str())));
    let app = APP_LABELS.iter().find_map(|l| pod.metadata.labels.get(*l));
    let main = main_container(pod, app.map(String::as_str));
    for status in running {
        let instance = format!("{}/{}/{}", pod.metadata.namespace, pod.metadata.name, status.name);
        let Some(started_at) = status.state.get("running").map(|s| s.started_at) else {
            let why = status
                .state
                .iter()
                .next()
                .map(|(k, s)| format!("{k}{}", s.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()));
            pending.push(PerReplica {
                code: Code::PendingWorkload,
                environment: environment.to_string(),
                name: instance.clone(),
                instance: instance.clone(),
                what: format!(
                    "not running ({}); its image {} is not counted",
                    why.unwrap_or_else(|| "no state".into()),
                    status.image
                ),
                hint: "wait, or look at the pod (kubectl describe pod)",
            });
            continue;
        };
        let image = parse_image(&status.image, origin, &instance)?;
        let (image_id, repo_digests) = parse_image_id(&status.image_id);
        let service = service(&image, config, app, Some(status.name.as_str()) == main);
        let node = pod.spec.node_name.as_deref().map(|n| format!(" on {n}")).unwrap_or_default();
        obs.workloads.push(Workload {
            environment: environment.to_string(),
            service,
            image,
            image_id,
            repo_digests,
            labels: BTreeMap::new(),
            instance: Some(format!("{instance}{node}")),
            started_at,
            origin: format!("kubernetes {}", origin.display()),
            local_only: false,
        });
    }
    Ok(())
}

/// The container an app label speaks for: the one named like the app, else the only one.
fn main_container<'a>(pod: &'a Pod, app: Option<&'a str>) -> Option<&'a str> {
    let names: Vec<&str> = pod.status.container_statuses.iter().map(|s| s.name.as_str()).collect();
    match app {
        Some(a) if names.contains(&a) => Some(a),
        _ if names.len() == 1 => Some(names[0]),
        _ => None,
    }
}

/// The configured service for the image wins; else the app label names the main container;
/// else resolution names it after the image repository.
fn service(image: &ImageSpec, config: &Config, app: Option<&String>, is_main: bool) -> Option<String> {
    if let Some(s) = image.named().and_then(|r| config.service_for_image(r)) {
        return Some(s.name.clone());
    }
    if is_main {
        app.cloned()
    } else {
        None
    }
}

fn parse_image(image: &str, origin: &Path, instance: &str) -> Result<ImageSpec, SourceError> {
    ImageSpec::parse(image)
        .map_err(|e| SourceError::Inconsistent { path: origin.to_path_buf(), message: format!("{instance}: {e}") })
}

/// `docker-pullable://repo@sha256:…` and containerd's `repo@sha256:…` are registry digests
/// (Kubernetes reports the index digest for multi-arch images); `docker://sha256:…` and a
/// bare `sha256:…` are image IDs. Anything else (empty while pulling) says nothing.
fn parse_image_id(raw: &str) -> (Option<Digest>, Vec<ImageRef>) {
    let s = raw.strip_prefix("docker-pullable://").or_else(|| raw.strip_prefix("docker://")).unwrap_or(raw);
    if let Ok(d) = Digest::parse(s) {
        return (Some(d), Vec::new());
    }
    match ImageRef::parse(s) {
        Ok(r) if r.digest.is_some() => (None, vec![r]),
        _ => (None, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klog_lines_are_left_out_of_the_one_line_message() {
        let stderr = include_str!("../../fixtures/kubernetes/unreachable.stderr");
        assert_eq!(
            last_line(stderr),
            "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?"
        );
        assert!(last_line("E1203 07:33:09.643513   27039 memcache.go:265] only this").ends_with("only this"));
        assert_eq!(last_line("error: context \"x\" does not exist\n"), "error: context \"x\" does not exist");
    }

    #[test]
    fn image_ids_in_every_runtime_form() {
        let hex = "a".repeat(64);
        let (id, digests) = parse_image_id(&format!("docker-pullable://registry.example.com/shop/api@sha256:{hex}"));
        assert_eq!((id, digests[0].name()), (None, "registry.example.com/shop/api".to_string()));
        let (id, _) = parse_image_id(&format!("docker://sha256:{hex}"));
        assert_eq!(id.unwrap().hex(), hex);
        let (id, digests) = parse_image_id(&format!("docker.io/library/nginx@sha256:{hex}"));
        assert!(id.is_none() && digests[0].repository == "library/nginx");
        assert_eq!(parse_image_id(""), (None, vec![]));
    }
}
