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

use super::Observation;
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

/// `unix:///var/run/docker.sock`, `tcp://10.0.0.5:2376` (TLS with DOCKER_TLS_VERIFY and
/// DOCKER_CERT_PATH, like the docker CLI); `None`: `DOCKER_HOST`, else the local socket.
pub fn host_url(host: Option<&str>) -> String {
    let url = host
        .map(str::to_string)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    crate::redact::register_url(&url);
    url
}

/// Running containers on one host, as workloads of `environment`.
pub async fn observe(host: &str, environment: &str, config: &Config) -> Observation {
    match containers(host, environment, config).await {
        Ok(o) => o,
        Err(message) => unreachable(host, environment, message),
    }
}

/// Running Swarm tasks, as seen by a manager.
pub async fn observe_swarm(host: &str, environment: &str, config: &Config) -> Observation {
    match tasks(host, environment, config).await {
        Ok(o) => o,
        Err(message) => unreachable(host, environment, message),
    }
}

fn unreachable(host: &str, environment: &str, message: String) -> Observation {
    let mut f = Finding::new(Code::SourceUnreachable, format!("Docker host {host}: {message}"))
        .hint("is the daemon running and this user allowed to use it? (systemctl start docker; the docker group)")
        .key(host.to_string());
    f.environment = Some(environment.to_string());
    Observation { findings: vec![f], ..Observation::default() }
}

/// Connects and negotiates the API version; daemons older than 1.41 are refused.
async fn connect(host: &str) -> Result<Docker, String> {
    let limit = timeout();
    let docker = Docker::connect_with_host(host).map_err(|e| describe(&e))?.with_timeout(limit);
    let docker = tokio::time::timeout(limit, docker.negotiate_version())
        .await
        .map_err(|_| format!("no answer within {}s", limit.as_secs()))?
        .map_err(|e| describe(&e))?;
    let v = docker.client_version();
    if (v.major_version, v.minor_version) < MIN_API {
        return Err(format!(
            "API {}.{} is too old: prodiff needs {}.{} (Docker Engine 20.10) or newer",
            v.major_version, v.minor_version, MIN_API.0, MIN_API.1
        ));
    }
    Ok(docker)
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
async fn inspect_all(docker: &Docker, mut refs: Vec<String>) -> Result<HashMap<String, ImageFacts>, String> {
    refs.sort();
    refs.dedup();
    let facts = bounded(refs.clone(), |r| {
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

async fn containers(host: &str, environment: &str, config: &Config) -> Result<Observation, String> {
    let docker = connect(host).await?;
    let list = docker
        .list_containers(Some(ListContainersOptions { all: false, ..Default::default() }))
        .await
        .map_err(|e| describe(&e))?;
    let ids: Vec<String> = list.iter().filter_map(|c| c.id.clone()).collect();
    let inspected = bounded(ids, |id| {
        let docker = docker.clone();
        async move { inspect_container(&docker, &id).await }
    })
    .await?;
    let running: Vec<Container> = inspected.into_iter().flatten().collect();

    // Each distinct image once; a tag string only when its image's RepoTags do not list
    // it any more (it moved, or was removed), to learn what it names now.
    let mut images = inspect_all(&docker, running.iter().map(|c| c.image_id.clone()).collect()).await?;
    let moved: Vec<String> = running
        .iter()
        .filter(|c| !is_image_id(&c.image) && !images.get(&c.image_id).is_some_and(|f| f.tagged(&c.image)))
        .map(|c| c.image.clone())
        .collect();
    images.extend(inspect_all(&docker, moved).await?);

    let mut obs = Observation::default();
    for c in &running {
        let (w, findings) = workload(host, environment, config, c, &images);
        obs.workloads.extend(w);
        obs.findings.extend(findings);
    }
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
) -> (Option<Workload>, Vec<Finding>) {
    let mut findings = Vec::new();
    let instance = format!("{host}/{}", c.name);
    let at = |f: Finding| {
        let mut f = f.key(instance.clone());
        f.environment = Some(environment.to_string());
        f
    };
    let facts = images.get(&c.image_id);
    let image_id = Digest::parse(&c.image_id).ok();
    let mut image = if is_image_id(&c.image) { None } else { ImageSpec::parse(&c.image).ok() };
    // The tag string now names another image: the container still runs the old one.
    if let (Some(ImageSpec::Named(r)), Some(now)) = (&image, images.get(&c.image).and_then(|f| f.id.as_ref())) {
        if Some(now) != image_id.as_ref() {
            findings.push(at(Finding::new(
                Code::StaleTag,
                format!(
                    "{} was started from {}, which now names {}; it still runs {}",
                    c.name,
                    r,
                    now.short(),
                    image_id.as_ref().map(|d| d.short().to_string()).unwrap_or_else(|| c.image_id.clone())
                ),
            )
            .hint("the tag moved after the container started: redeploy, or pin images by digest")));
            image = Some(ImageSpec::Named(ImageRef { tag: None, digest: None, ..r.clone() }));
        }
    }
    let untagged = facts.is_none_or(|f| f.tags.is_empty());
    if untagged {
        findings.push(at(Finding::new(
            Code::UntaggedImage,
            format!("{} runs an image no tag names any more ({})", c.name, c.image_id),
        )
        .hint("a dangling image: find its revision label, or redeploy from a tag")));
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
    };
    (Some(w), findings)
}

async fn tasks(host: &str, environment: &str, config: &Config) -> Result<Observation, String> {
    let docker = connect(host).await?;
    let services = docker.list_services(None::<ListServicesOptions>).await.map_err(|e| describe(&e))?;
    let filters = HashMap::from([("desired-state".to_string(), vec!["running".to_string()])]);
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.map_err(|e| describe(&e))?;
    let mut obs = Observation::default();
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
        if spec_digest.is_some() && spec_digest != task_digest {
            let mut f = Finding::new(
                Code::TaskDigestMismatch,
                format!("task {instance} runs {task_image}, but service {name} specifies {spec_image}"),
            )
            .hint("an update or rollback is in progress or stuck: docker service ps")
            .key(instance.clone());
            f.environment = Some(environment.to_string());
            obs.findings.push(f);
        }
        let labels = match inspect_image(&docker, &task_image).await {
            Ok(f) => f.labels,
            Err(_) => BTreeMap::new(),
        };
        let service =
            image.named().and_then(|r| config.service_for_image(r)).map(|s| s.name.clone()).or(Some(name.clone()));
        obs.workloads.push(Workload {
            environment: environment.to_string(),
            service,
            image,
            image_id: None,
            repo_digests: Vec::new(),
            labels,
            instance: Some(instance),
            started_at: status.timestamp,
            origin: format!("swarm {host}"),
        });
    }
    Ok(obs)
}

fn digest_of(reference: &str) -> Option<Digest> {
    ImageRef::parse(reference).ok().and_then(|r| r.digest)
}

fn is_image_id(s: &str) -> bool {
    matches!(ImageSpec::parse(s), Ok(ImageSpec::Id(_)))
}

/// Runs `f` on every item, at most `CONCURRENCY` at a time, keeping the order.
async fn bounded<T, R, F, Fut>(items: Vec<T>, f: F) -> Result<Vec<R>, String>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<R, String>>,
{
    stream::iter(items).map(f).buffered(CONCURRENCY).collect::<Vec<_>>().await.into_iter().collect()
}

/// An error with its causes (`client error (Connect): Connection refused`): bollard's own
/// message alone rarely says what went wrong.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(bollard::errors::Error::RequestTimeoutError) = e.downcast_ref::<bollard::errors::Error>() {
        return format!("no answer within {}s", timeout().as_secs());
    }
    super::error_chain(e)
}
