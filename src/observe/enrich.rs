//! Registry enrichment: before resolution, ask each workload's registry what its tag names
//! now and what the running digest is, and turn the answers into `RegistryFacts` (revision
//! labels and annotations, other tags of the same image) and findings (`tag-moved`,
//! `image-not-in-registry`, `untagged-digest`, `registry-unreachable`, rate limits).
//!
//! Registry answers become evidence of their own kinds (`registry-label`, `registry-tag`,
//! weighed in `resolve`) rather than being copied into the workload's labels: the report
//! then says where a commit came from, and a registry label that disagrees with the git
//! tag (or with a runtime label) is an `evidence-conflict`, not a silent overwrite.
//!
//! Runs in one async phase on the runtime `main` built; no git work happens here, so git2
//! stays off the executor. Facts are only read from digests the workload runs: without a
//! digest prodiff cannot know what runs, and it does not guess from what a tag names now.
//! Tags are listed only when the workload's own tag is not a release (`latest`, `sha-…`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::model::{is_release_tag, registry_key};
use crate::model::{Code, Digest, Finding, ImageRef, RegistryFacts, Workload};
use crate::observe::registry::cache::Cache;
use crate::observe::registry::{ImageFacts, Options, Registry, RegistryError};

/// Tags HEADed at most per repository when looking for the tags of a running image.
pub const MAX_TAG_HEADS: usize = 100;
/// Below this `ratelimit-remaining`, prodiff says so.
pub const LOW_RATE_LIMIT: u64 = 10;

/// Registry facts per workload (by `registry_key`) and findings about the whole run.
#[derive(Debug, Default)]
pub struct Enrichment {
    pub facts: HashMap<String, RegistryFacts>,
    pub findings: Vec<Finding>,
}

/// One image to ask about: the reference, the digests it is pinned to in the registry
/// (reference digest, repo digests of the same repository) and the runtime's image ID.
#[derive(Clone)]
struct Target {
    key: String,
    image: ImageRef,
    pinned: Vec<Digest>,
    image_id: Option<Digest>,
}

/// Asks the registries about every named workload; `offline` asks nothing and says so.
pub fn enrich(rt: &Handle, workloads: &[Workload], config: &Config, offline: bool) -> Enrichment {
    let targets = targets(workloads);
    if targets.is_empty() {
        return Enrichment::default();
    }
    if offline {
        return Enrichment { facts: HashMap::new(), findings: vec![not_checked(&targets)] };
    }
    let options = Options {
        insecure: config.registry.insecure.clone(),
        timeout: config.registry.timeout,
        platform: config.registry.platform.clone(),
        cache: Cache::from_env(),
        limits: config.registry.limits.clone(),
    };
    let hosts: BTreeSet<&str> = targets.iter().map(|t| t.image.registry.as_str()).collect();
    let registry = match Registry::new(&options, hosts.iter().copied()) {
        Ok(r) => Arc::new(r),
        Err(message) => return unreachable_all(&targets, &message),
    };
    let facts = rt.block_on(ask_all(registry.clone(), targets));
    Enrichment { facts, findings: rate_limit_findings(&registry) }
}

fn targets(workloads: &[Workload]) -> Vec<Target> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for w in workloads {
        let Some(image) = w.image.named() else {
            continue;
        };
        // Without a running digest there is nothing to ask (see the module docs); an image
        // only ever built locally is in no registry.
        if w.digests().is_empty() || w.local_only {
            continue;
        }
        let key = registry_key(w);
        if !seen.insert(key.clone()) {
            continue;
        }
        let mut pinned: Vec<Digest> = image.digest.iter().cloned().collect();
        for r in w.repo_digests.iter().filter(|r| r.name() == image.name()) {
            pinned.extend(r.digest.clone().filter(|d| !pinned.contains(d)));
        }
        out.push(Target { key, image: image.clone(), pinned, image_id: w.image_id.clone() });
    }
    out
}

async fn ask_all(registry: Arc<Registry>, targets: Vec<Target>) -> HashMap<String, RegistryFacts> {
    let mut set = JoinSet::new();
    for t in targets {
        let registry = registry.clone();
        set.spawn(async move {
            let facts = match ask(&registry, &t).await {
                Ok(f) => f,
                Err(e) => unreachable(&e),
            };
            (t.key, facts)
        });
    }
    let mut out = HashMap::new();
    while let Some(joined) = set.join_next().await {
        let (key, facts) = joined.expect("registry tasks do not panic");
        out.insert(key, facts);
    }
    out
}

/// What the registry says about one target.
async fn ask(registry: &Arc<Registry>, t: &Target) -> Result<RegistryFacts, RegistryError> {
    let mut out = RegistryFacts::default();
    let running: BTreeSet<Digest> = t.pinned.iter().chain(&t.image_id).cloned().collect();
    let via_tag = match &t.image.tag {
        Some(tag) if !running.is_empty() => tag_check(registry, t, tag, &running, &mut out).await?,
        _ => None,
    };
    let facts = match via_tag {
        Some(f) => Some(f),
        None => running_image(registry, t, &mut out).await?,
    };
    let Some(facts) = facts else {
        return Ok(out);
    };
    let own_is_release = t.image.tag.as_deref().is_some_and(is_release_tag);
    if !own_is_release {
        let same: BTreeSet<Digest> = facts.digests().into_iter().chain(running).collect();
        sibling_tags(registry, t, &same, &mut out).await?;
    }
    out.labels = facts.labels;
    out.annotations = facts.annotations;
    Ok(out)
}

/// HEADs the tag. When it names the running image, returns that image's facts; when it
/// names another image, that is `tag-moved`. The whole image (index, the manifest and
/// config digests of the platform that runs) is compared with every running digest, so an
/// index digest on one side and a manifest or config digest on the other, or an arm64
/// host, is not mistaken for a move.
async fn tag_check(
    registry: &Registry,
    t: &Target,
    tag: &str,
    running: &BTreeSet<Digest>,
    out: &mut RegistryFacts,
) -> Result<Option<ImageFacts>, RegistryError> {
    let Some(now) = registry.tag_digest(&t.image, tag).await? else {
        return Ok(None);
    };
    let Some(facts) = registry.image_for(&t.image, &now, running).await? else {
        return Ok(None);
    };
    if running.contains(&now) || facts.digests().iter().any(|d| running.contains(d)) {
        return Ok(Some(facts));
    }
    let was: Vec<&str> = running.iter().map(Digest::short).collect();
    out.findings.push(
        Finding::new(
            Code::TagMoved,
            format!(
                "{}:{tag} now names {} in the registry, not the running image ({})",
                t.image.name(),
                now.short(),
                was.join(", ")
            ),
        )
        .hint("the tag was re-pushed after this deployment: redeploy to run what it names now, or deploy by digest"),
    );
    Ok(None)
}

/// The running image, asked by digest: pinned (registry) digests first, then the image ID
/// (which may be a config digest that no registry serves as a manifest, so its absence
/// proves nothing). `image-not-in-registry` when none of the pinned digests is there.
async fn running_image(
    registry: &Registry,
    t: &Target,
    out: &mut RegistryFacts,
) -> Result<Option<ImageFacts>, RegistryError> {
    let running: BTreeSet<Digest> = t.pinned.iter().chain(&t.image_id).cloned().collect();
    for d in &t.pinned {
        if registry.exists(&t.image, d).await? {
            return registry.image_for(&t.image, d, &running).await;
        }
    }
    if !t.pinned.is_empty() {
        let gone: Vec<&str> = t.pinned.iter().map(Digest::short).collect();
        out.findings.push(
            Finding::new(
                Code::ImageNotInRegistry,
                format!("{} no longer has the running image ({})", t.image.name(), gone.join(", ")),
            )
            .hint("it cannot be pulled again (new replica, rollback): re-push it, and check the registry's cleanup policy"),
        );
        return Ok(None);
    }
    match &t.image_id {
        Some(id) if registry.exists(&t.image, id).await? => registry.image_for(&t.image, id, &running).await,
        _ => Ok(None),
    }
}

/// Lists the repository's tags and HEADs them to find the ones naming the running image.
/// `untagged-digest` only when every tag was checked.
async fn sibling_tags(
    registry: &Arc<Registry>,
    t: &Target,
    image: &BTreeSet<Digest>,
    out: &mut RegistryFacts,
) -> Result<(), RegistryError> {
    let mut tags = registry.tags(&t.image).await?;
    let complete = tags.len() <= MAX_TAG_HEADS;
    if !complete {
        // Too many to ask about each: the newest releases are the likeliest to match.
        tags.retain(|t| is_release_tag(t));
        tags.sort_by_key(|t| std::cmp::Reverse(version_key(t)));
        tags.truncate(MAX_TAG_HEADS);
    }
    // Asked at once; the per-host bound in `registry` keeps this polite.
    let mut set = JoinSet::new();
    for tag in tags {
        let (registry, repo) = (registry.clone(), t.image.clone());
        set.spawn(async move {
            let digest = registry.tag_digest(&repo, &tag).await;
            (tag, digest)
        });
    }
    while let Some(joined) = set.join_next().await {
        let (tag, digest) = joined.expect("registry tasks do not panic");
        if digest?.is_some_and(|d| image.contains(&d)) {
            out.tags.push(tag);
        }
    }
    out.tags.sort();
    if complete && out.tags.is_empty() {
        out.findings.push(
            Finding::new(
                Code::UntaggedDigest,
                format!("no tag of {} names the running image any more", t.image.name()),
            )
            .hint("tag the running image with its release so tag-based cleanup keeps it"),
        );
    }
    Ok(())
}

/// `v1.10.2-rc.1` → [1, 10, 2, 1]: numbers in order, for sorting releases newest first.
fn version_key(tag: &str) -> Vec<u64> {
    tag.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).map(|p| p.parse().unwrap_or(u64::MAX)).collect()
}

fn unreachable(e: &RegistryError) -> RegistryFacts {
    RegistryFacts {
        findings: vec![Finding::new(Code::RegistryUnreachable, e.to_string()).hint(
            "check the registry's address, network and credentials (docker login HOST); --offline skips registries",
        )],
        ..RegistryFacts::default()
    }
}

fn unreachable_all(targets: &[Target], message: &str) -> Enrichment {
    let facts = targets
        .iter()
        .map(|t| {
            let e = RegistryError::Connect { registry: t.image.registry.clone(), message: message.to_string() };
            (t.key.clone(), unreachable(&e))
        })
        .collect();
    Enrichment { facts, findings: Vec::new() }
}

fn not_checked(targets: &[Target]) -> Finding {
    let hosts: BTreeSet<&str> = targets.iter().map(|t| t.image.registry.as_str()).collect();
    Finding::new(
        Code::RegistryNotChecked,
        format!(
            "--offline: {} image{} not checked against {} (tag moves, deleted images, registry labels and tags)",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            hosts.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

fn rate_limit_findings(registry: &Registry) -> Vec<Finding> {
    let mut limits: Vec<(String, u64)> = registry.rate_limits().into_iter().collect();
    limits.sort();
    limits
        .into_iter()
        .filter(|(_, n)| *n < LOW_RATE_LIMIT)
        .map(|(host, n)| {
            Finding::new(
                Code::RegistryRateLimit,
                format!("registry {host} allows {n} more pulls in its current window"),
            )
            .hint("wait for the window to reset, or docker login for a higher limit")
        })
        .collect()
}

/// What each tag names now in its registry (for rollback targets): `Ok(Some(digest))`,
/// `Ok(None)` when the registry has no such tag, `Err` when it could not be asked. One HEAD
/// per reference, within the per-host bound.
pub fn tag_digests(rt: &Handle, refs: &[ImageRef], config: &Config) -> HashMap<String, Result<Option<Digest>, String>> {
    let options = Options {
        insecure: config.registry.insecure.clone(),
        timeout: config.registry.timeout,
        platform: config.registry.platform.clone(),
        cache: Cache::from_env(),
        limits: config.registry.limits.clone(),
    };
    let hosts: BTreeSet<&str> = refs.iter().map(|r| r.registry.as_str()).collect();
    let registry = match Registry::new(&options, hosts.iter().copied()) {
        Ok(r) => Arc::new(r),
        Err(message) => return refs.iter().map(|r| (r.familiar(), Err(message.clone()))).collect(),
    };
    rt.block_on(async {
        let mut set = JoinSet::new();
        for r in refs.iter().filter(|r| r.tag.is_some()).cloned() {
            let registry = registry.clone();
            set.spawn(async move {
                let tag = r.tag.clone().expect("filtered on tags");
                let answer = registry.tag_digest(&r, &tag).await.map_err(|e| e.to_string());
                (r.familiar(), answer)
            });
        }
        let mut out = HashMap::new();
        while let Some(joined) = set.join_next().await {
            let (key, answer) = joined.expect("registry tasks do not panic");
            out.insert(key, answer);
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ImageSpec;

    #[test]
    fn releases_sort_newest_first() {
        let mut tags = vec!["1.9.0", "v1.10.0", "1.2.10", "1.2.9"];
        tags.sort_by_key(|t| std::cmp::Reverse(version_key(t)));
        assert_eq!(tags, ["v1.10.0", "1.9.0", "1.2.10", "1.2.9"]);
    }

    #[test]
    fn only_digests_of_the_same_repository_are_pinned_and_digestless_workloads_are_skipped() {
        let d = |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let w = |image: &str, repo_digests: Vec<String>, image_id: Option<Digest>| Workload {
            environment: "prod".into(),
            service: None,
            image: ImageSpec::parse(image).unwrap(),
            image_id,
            repo_digests: repo_digests.iter().map(|r| ImageRef::parse(r).unwrap()).collect(),
            labels: Default::default(),
            instance: None,
            started_at: None,
            origin: "test".into(),
            local_only: false,
        };
        let workloads = [
            w(
                "r.example/shop/api:1.0",
                vec![format!("r.example/shop/api@{}", d('a')), format!("mirror.example/shop/api@{}", d('b'))],
                Some(d('c')),
            ),
            w("r.example/shop/web:1.0", vec![], None),
        ];
        let t = targets(&workloads);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].pinned, [d('a')]);
        assert_eq!(t[0].image_id, Some(d('c')));
    }
}
