//! The Docker source: what really runs on Docker hosts (and Swarm managers), through bollard.
//! Only list and inspect calls: prodiff never creates, starts, stops or removes anything.
//!
//! "What runs" is a set of digests, never the tag string a container was started with
//! (FIELD_NOTES): the image ID, the RepoDigests of the same repository, and on API 1.48+ the
//! manifest descriptor. Each distinct image is inspected once per host. A tag that now names
//! another image than the container runs is a `stale-tag` finding, and the tag is dropped
//! from the evidence. A host that cannot be read is `source-unreachable`; others go on.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, ListServicesOptions, ListTasksOptions,
};
use bollard::Docker;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

mod context;
mod ssh;

pub use context::{Endpoint, HostSpec, LOCAL_SOCKET};

use super::replicas::{self, PerReplica};
use super::{Daemon, Observation};
use crate::config::Config;
use crate::model::{Code, Digest, Finding, ImageRef, ImageSpec, Workload};

/// The label Compose puts on every container it starts.
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
/// Oldest API prodiff speaks (Engine 20.10).
const MIN_API: (usize, usize) = (1, 41);
/// Per request; a host that does not answer in time is unreachable, not a hang.
/// `PRODIFF_DOCKER_TIMEOUT` (seconds) changes it.
fn timeout() -> Duration {
    let secs = std::env::var("PRODIFF_DOCKER_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    Duration::from_secs(secs)
}
/// Inspect calls in flight per host.
const CONCURRENCY: usize = 4;

/// Over ssh every new connection is an ssh handshake and a remote `docker` start (~0.5 s on
/// a loaded machine): requests go one at a time, so connections are reused (10 containers:
/// 2-3 ssh processes instead of 5).
fn in_flight(at: &Endpoint) -> usize {
    if at.host.starts_with("ssh://") {
        1
    } else {
        CONCURRENCY
    }
}

/// The daemon a host entry means (see `context`): a missing or broken Docker context is an
/// error, as it is for the docker CLI.
pub fn endpoint(spec: &HostSpec) -> Result<Endpoint, context::ContextError> {
    let at = context::resolve(spec)?;
    // Userinfo in a host (`tcp://user:PW@host`) is a secret wherever it comes back.
    crate::redact::register_url(&at.host);
    Ok(at)
}

pub use crate::config::observe::check_ssh;

/// Whether a workload is audited; per-replica findings (`stale-tag`, `untagged-image`) are
/// raised only for those.
pub type Claim<'a> = &'a dyn Fn(&Workload) -> bool;

/// Running containers on one host, as workloads of `environment`.
pub async fn observe(at: &Endpoint, environment: &str, config: &Config, claim: Claim<'_>) -> Observation {
    let result = containers(at, environment, config, claim).await;
    finish(at, environment, "docker", result)
}

/// Running Swarm tasks, as seen by a manager.
pub async fn observe_swarm(at: &Endpoint, environment: &str, config: &Config, claim: Claim<'_>) -> Observation {
    let result = tasks(at, environment, config, claim).await;
    finish(at, environment, "swarm", result)
}

/// The observation, or a `source-unreachable` finding; either way the daemon is named for
/// the report header.
fn finish(at: &Endpoint, environment: &str, kind: &str, result: Result<Observation, String>) -> Observation {
    let (mut obs, reachable) = match result {
        Ok(o) => (o, true),
        Err(message) => (unreachable(at, environment, message), false),
    };
    obs.daemons.push(Daemon {
        environment: environment.to_string(),
        kind: kind.to_string(),
        host: at.host.clone(),
        context: at.context.clone(),
        chosen_by: at.chosen_by.clone(),
        reachable,
    });
    obs
}

fn unreachable(at: &Endpoint, environment: &str, message: String) -> Observation {
    let host = &at.host;
    let name = match &at.context {
        Some(c) => format!("Docker host {host} (context {c})"),
        None => format!("Docker host {host}"),
    };
    let mut f = Finding::new(Code::SourceUnreachable, format!("{name}: {message}"))
        .hint("is the daemon running and this user allowed to use it? (systemctl start docker; the docker group)")
        .key(host.to_string());
    f.environment = Some(environment.to_string());
    Observation { findings: vec![f], ..Observation::default() }
}

/// Connects and negotiates the API version; daemons older than 1.41 are refused.
async fn connect(at: &Endpoint) -> Result<Docker, String> {
    let limit = timeout();
    let (docker, ssh) = client(at)?;
    let docker = docker.with_timeout(limit);
    let answer = tokio::time::timeout(limit, docker.negotiate_version()).await;
    let negotiated = match answer {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
    };
    // Over ssh, what ssh said (refused, denied, no docker there) beats hyper's "reset".
    let docker = match (negotiated, ssh) {
        (Ok(d), _) => d,
        (Err(message), Some(ssh)) => return Err(ssh.last().await.unwrap_or(message)),
        (Err(message), None) => return Err(message),
    };
    let v = docker.client_version();
    if (v.major_version, v.minor_version) < MIN_API {
        return Err(format!(
            "API {}.{} is too old: prodiff needs {}.{} (Docker Engine 20.10) or newer",
            v.major_version, v.minor_version, MIN_API.0, MIN_API.1
        ));
    }
    Ok(docker)
}

/// A client for the endpoint: over ssh for `ssh://`; with the context's TLS material when
/// it has some; a plain `DOCKER_HOST` uses TLS like the docker CLI when `DOCKER_TLS_VERIFY`
/// and `DOCKER_CERT_PATH` are set.
fn client(at: &Endpoint) -> Result<(Docker, Option<ssh::Stderr>), String> {
    if at.host.starts_with("ssh://") {
        let (docker, stderr) = ssh::client(&at.host, timeout())?;
        return Ok((docker, Some(stderr)));
    }
    let secs = timeout().as_secs();
    match &at.tls {
        Some(t) => Docker::connect_with_ssl(&at.host, &t.key, &t.cert, &t.ca, secs, bollard::API_DEFAULT_VERSION),
        None => Docker::connect_with_host(&at.host),
    }
    .map(|d| (d, None))
    .map_err(|e| describe(&e))
}

/// One image as inspected: what names it and what it says about itself.
struct ImageFacts {
    id: Option<Digest>,
    tags: Vec<String>,
    repo_digests: Vec<ImageRef>,
    labels: BTreeMap<String, String>,
}

impl ImageFacts {
    /// Whether `reference` (as a container was started with it) is one of this image's tags.
    fn tagged(&self, reference: &str) -> bool {
        let key = |s: &str| {
            ImageRef::parse(s).ok().map(|r| (r.registry, r.repository, r.tag.unwrap_or_else(|| "latest".into())))
        };
        let want = key(reference);
        want.is_some() && self.tags.iter().any(|t| key(t) == want)
    }
}

/// Inspects each distinct reference once (bounded); references that no longer exist are
/// left out.
async fn inspect_all(docker: &Docker, mut refs: Vec<String>, n: usize) -> Result<HashMap<String, ImageFacts>, String> {
    refs.sort();
    refs.dedup();
    let facts = bounded(refs.clone(), n, |r| {
        let docker = docker.clone();
        async move { Ok(inspect_image(&docker, &r).await.ok()) }
    })
    .await?;
    Ok(refs.into_iter().zip(facts).filter_map(|(r, f)| f.map(|f| (r, f))).collect())
}

async fn inspect_image(docker: &Docker, reference: &str) -> Result<ImageFacts, String> {
    let i = docker.inspect_image(reference).await.map_err(|e| describe(&e))?;
    Ok(ImageFacts {
        id: i.id.as_deref().and_then(|d| Digest::parse(d).ok()),
        tags: i.repo_tags.unwrap_or_default(),
        repo_digests: i.repo_digests.unwrap_or_default().iter().filter_map(|r| ImageRef::parse(r).ok()).collect(),
        labels: i.config.and_then(|c| c.labels).unwrap_or_default().into_iter().collect(),
    })
}

/// A container as inspected, reduced to what a workload needs.
struct Container {
    name: String,
    /// What it was started with (`repo:tag`, or an image ID).
    image: String,
    image_id: String,
    manifest: Option<String>,
    labels: BTreeMap<String, String>,
    started_at: Option<DateTime<Utc>>,
}

async fn containers(
    at: &Endpoint,
    environment: &str,
    config: &Config,
    claim: Claim<'_>,
) -> Result<Observation, String> {
    let host = at.host.as_str();
    let docker = connect(at).await?;
    let list = docker
        .list_containers(Some(ListContainersOptions { all: false, ..Default::default() }))
        .await
        .map_err(|e| describe(&e))?;
    let ids: Vec<String> = list.iter().filter_map(|c| c.id.clone()).collect();
    let n = in_flight(at);
    let inspected = bounded(ids, n, |id| {
        let docker = docker.clone();
        async move { inspect_container(&docker, &id).await }
    })
    .await?;
    let running: Vec<Container> = inspected.into_iter().flatten().collect();

    // Each distinct image once; a tag string only when its image's RepoTags do not list
    // it any more (it moved, or was removed), to learn what it names now.
    let mut images = inspect_all(&docker, running.iter().map(|c| c.image_id.clone()).collect(), n).await?;
    let moved: Vec<String> = running
        .iter()
        .filter(|c| !is_image_id(&c.image) && !images.get(&c.image_id).is_some_and(|f| f.tagged(&c.image)))
        .map(|c| c.image.clone())
        .collect();
    images.extend(inspect_all(&docker, moved, n).await?);

    let mut obs = Observation::default();
    let mut per_replica = Vec::new();
    for c in &running {
        let (w, findings) = workload(host, environment, config, c, &images);
        // An unclaimed container's stale tag is not this audit's business (it is listed in
        // `unclaimed-images`).
        if w.as_ref().is_none_or(claim) {
            per_replica.extend(findings);
        }
        obs.workloads.extend(w);
    }
    obs.findings = replicas::group(per_replica);
    Ok(obs)
}

async fn inspect_container(docker: &Docker, id: &str) -> Result<Option<Container>, String> {
    let c = match docker.inspect_container(id, None::<InspectContainerOptions>).await {
        Ok(c) => c,
        // Gone between list and inspect: it no longer runs.
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
        Err(e) => return Err(describe(&e)),
    };
    let state = c.state.unwrap_or_default();
    if state.running != Some(true) {
        return Ok(None);
    }
    let config = c.config.unwrap_or_default();
    Ok(Some(Container {
        name: c.name.unwrap_or_default().trim_start_matches('/').to_string(),
        image: config.image.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        manifest: c.image_manifest_descriptor.and_then(|d| d.digest),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        started_at: state
            .started_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc)),
    }))
}

/// One container as a workload, with the findings its image raises.
fn workload(
    host: &str,
    environment: &str,
    config: &Config,
    c: &Container,
    images: &HashMap<String, ImageFacts>,
) -> (Option<Workload>, Vec<PerReplica>) {
    let mut findings = Vec::new();
    let instance = format!("{host}/{}", c.name);
    let at = |code: Code, what: String, hint: &'static str| PerReplica {
        code,
        environment: environment.to_string(),
        name: c.name.clone(),
        instance: instance.clone(),
        what,
        hint,
    };
    let facts = images.get(&c.image_id);
    let image_id = Digest::parse(&c.image_id).ok();
    let mut image = if is_image_id(&c.image) { None } else { ImageSpec::parse(&c.image).ok() };
    // The tag string now names another image: the container still runs the old one.
    if let (Some(ImageSpec::Named(r)), Some(now)) = (&image, images.get(&c.image).and_then(|f| f.id.as_ref())) {
        if Some(now) != image_id.as_ref() {
            let running = image_id.as_ref().map(|d| d.short().to_string()).unwrap_or_else(|| c.image_id.clone());
            findings.push(at(
                Code::StaleTag,
                format!("started from {r}, which now names {}; still running {running}", now.short()),
                "the tag moved after the container started: redeploy, or pin images by digest",
            ));
            image = Some(ImageSpec::Named(ImageRef { tag: None, digest: None, ..r.clone() }));
        }
    }
    let untagged = facts.is_none_or(|f| f.tags.is_empty());
    if untagged {
        findings.push(at(
            Code::UntaggedImage,
            format!("running an image no tag names any more ({})", c.image_id),
            "a dangling image: find its revision label, or redeploy from a tag",
        ));
    }
    let image = match (image, image_id.clone()) {
        (Some(i), _) => i,
        (None, Some(id)) => {
            facts.and_then(|f| f.tags.first()).and_then(|t| ImageSpec::parse(t).ok()).unwrap_or(ImageSpec::Id(id))
        }
        (None, None) => return (None, findings),
    };
    let repo = image.named().map(|r| (r.registry.clone(), r.repository.clone()));
    let repo_digests = facts
        .map(|f| {
            f.repo_digests
                .iter()
                .filter(|d| repo.as_ref().is_none_or(|(reg, rep)| &d.registry == reg && &d.repository == rep))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut labels = facts.map(|f| f.labels.clone()).unwrap_or_default();
    labels.extend(c.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let service = config
        .service_for(image.named(), &labels)
        .map(|s| s.name.clone())
        .or_else(|| c.labels.get(COMPOSE_SERVICE).cloned());
    let mut repo_digests: Vec<ImageRef> = repo_digests;
    if let (Some(m), Some(ImageSpec::Named(r))) =
        (c.manifest.as_deref().and_then(|m| Digest::parse(m).ok()), Some(&image))
    {
        repo_digests.push(ImageRef { tag: None, digest: Some(m), ..r.clone() });
    }
    let w = Workload {
        environment: environment.to_string(),
        service,
        image,
        image_id,
        repo_digests,
        labels,
        instance: Some(instance.clone()),
        started_at: c.started_at,
        origin: format!("docker {host}"),
        // Pulled or pushed images have RepoDigests; without any it was built here.
        local_only: facts.is_some_and(|f| f.repo_digests.is_empty()),
    };
    (Some(w), findings)
}

async fn tasks(at: &Endpoint, environment: &str, config: &Config, claim: Claim<'_>) -> Result<Observation, String> {
    let host = at.host.as_str();
    let docker = connect(at).await?;
    let services = docker.list_services(None::<ListServicesOptions>).await.map_err(|e| describe(&e))?;
    let filters = HashMap::from([("desired-state".to_string(), vec!["running".to_string()])]);
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.map_err(|e| describe(&e))?;
    let mut obs = Observation::default();
    let mut per_replica = Vec::new();
    for t in tasks {
        let status = t.status.clone().unwrap_or_default();
        if status.state != Some(bollard::models::TaskState::RUNNING) {
            continue;
        }
        let Some(svc) = services.iter().find(|s| s.id == t.service_id) else { continue };
        let spec = svc.spec.clone().unwrap_or_default();
        let name = spec.name.clone().unwrap_or_default();
        let spec_image = spec.task_template.and_then(|t| t.container_spec).and_then(|c| c.image).unwrap_or_default();
        let task_image = t.spec.and_then(|s| s.container_spec).and_then(|c| c.image).unwrap_or_default();
        let instance = format!(
            "{name}.{} on node {}",
            t.slot.unwrap_or(0),
            t.node_id.as_deref().map(|n| n.chars().take(12).collect::<String>()).unwrap_or_else(|| "?".into())
        );
        let Ok(image) = ImageSpec::parse(&task_image) else { continue };
        let (spec_digest, task_digest) = (digest_of(&spec_image), digest_of(&task_image));
        let mismatch = (spec_digest.is_some() && spec_digest != task_digest).then(|| PerReplica {
            code: Code::TaskDigestMismatch,
            environment: environment.to_string(),
            name: format!("task {instance}"),
            instance: instance.clone(),
            what: format!("runs {task_image}, but service {name} specifies {spec_image}"),
            hint: "an update or rollback is in progress or stuck: docker service ps",
        });
        let labels = match inspect_image(&docker, &task_image).await {
            Ok(f) => f.labels,
            Err(_) => BTreeMap::new(),
        };
        let service =
            image.named().and_then(|r| config.service_for_image(r)).map(|s| s.name.clone()).or(Some(name.clone()));
        let w = Workload {
            environment: environment.to_string(),
            service,
            image,
            image_id: None,
            repo_digests: Vec::new(),
            labels,
            instance: Some(instance),
            started_at: status.timestamp,
            origin: format!("swarm {host}"),
            local_only: false,
        };
        // Another team's service mid-update is not this audit's business.
        per_replica.extend(mismatch.filter(|_| claim(&w)));
        obs.workloads.push(w);
    }
    obs.findings = replicas::group(per_replica);
    Ok(obs)
}

fn digest_of(reference: &str) -> Option<Digest> {
    ImageRef::parse(reference).ok().and_then(|r| r.digest)
}

fn is_image_id(s: &str) -> bool {
    matches!(ImageSpec::parse(s), Ok(ImageSpec::Id(_)))
}

/// Runs `f` on every item, at most `n` at a time, keeping the order.
async fn bounded<T, R, F, Fut>(items: Vec<T>, n: usize, f: F) -> Result<Vec<R>, String>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<R, String>>,
{
    stream::iter(items).map(f).buffered(n).collect::<Vec<_>>().await.into_iter().collect()
}

/// An error with its causes (`client error (Connect): Connection refused`): bollard's own
/// message alone rarely says what went wrong.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(bollard::errors::Error::RequestTimeoutError) = e.downcast_ref::<bollard::errors::Error>() {
        return format!("no answer within {}s", timeout().as_secs());
    }
    super::error_chain(e)
}
