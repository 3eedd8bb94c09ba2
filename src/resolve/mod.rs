//! Stage 3, resolve: takes the observed workloads (and their registry facts) and gives
//! `Deployment`s, each with the commit it runs and the evidence for it. Imports observe,
//! git, config and the ground floor.
//!
//! Which commit is running: replicas are grouped into deployments, and each deployment is
//! resolved to a commit through evidence (revision labels, SHA tags, version tags matched
//! to git tags). Disagreeing evidence is a finding, never a silent choice; no evidence is an
//! `unresolved` finding, never a guess.

pub mod fleet;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;

use crate::config::Config;
use crate::git::{Lookup, Repo};
use crate::model::{Code, CommitId, Digest, Evidence, EvidenceKind, Finding, ImageSpec, RegistryFacts, Workload};

/// Revision labels, most specific first.
pub const REVISION_LABELS: &[&str] = &["org.opencontainers.image.revision", "org.label-schema.vcs-ref"];

/// `sha-9f3c2e1`, `sha256-…` is not a commit; `git-9f3c2e1`, `g9f3c2e1`, bare hex.
static SHA_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(sha-|sha_|sha|git-|commit-|g)?([0-9a-f]{7,40})$").unwrap());
/// `main-9f3c2e1`, `1.4.2-9f3c2e1`: a build tag ending in a commit id.
static SUFFIX_SHA_TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._]+-g?([0-9a-f]{7,40})$").unwrap());

/// What a resolver needs from a repository. `git::Repo` is the real one.
pub trait Commits {
    fn lookup_commit(&self, hex: &str) -> Lookup;
    fn tag_commit(&self, tag: &str) -> Option<CommitId>;
}

impl Commits for Repo {
    fn lookup_commit(&self, hex: &str) -> Lookup {
        Repo::lookup_commit(self, hex)
    }
    fn tag_commit(&self, tag: &str) -> Option<CommitId> {
        Repo::tag_commit(self, tag)
    }
}

/// One instance (container, pod, inventory row) of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub name: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub origin: String,
}

/// One distinct image of one service in one environment, with every replica running it.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub environment: String,
    pub service: String,
    pub image: ImageSpec,
    pub digests: Vec<Digest>,
    pub labels: BTreeMap<String, String>,
    pub instances: Vec<Instance>,
    pub commit: Option<CommitId>,
    pub evidence: Vec<Evidence>,
    pub findings: Vec<Finding>,
}

/// Whether the config audits this workload: always, unless it names services by image;
/// then only the workloads of a configured service.
pub fn is_claimed(w: &Workload, config: &Config) -> bool {
    !config.services.iter().any(|s| s.image.is_some())
        || w.service.as_deref().is_some_and(|s| config.service(s).is_some())
        || config.service_for(w.image.named(), &w.labels).is_some()
}

/// The service a workload belongs to: the name its source gave, else the configured service
/// for its image repository, else the last component of the repository.
pub fn service_name(w: &Workload, config: &Config) -> String {
    if let Some(s) = &w.service {
        return s.clone();
    }
    if let Some(s) = config.service_for(w.image.named(), &w.labels) {
        return s.name.clone();
    }
    match &w.image {
        ImageSpec::Named(r) => r.short_name().to_string(),
        ImageSpec::Id(d) => format!("image-{}", d.short()),
    }
}

/// When the config names services by image, only their workloads are audited: sidecars,
/// databases and other teams' images are set aside, and an `unclaimed-images` finding
/// (allowed by default) lists them. Without such services every workload counts.
pub fn claimed(workloads: Vec<Workload>, config: &Config) -> (Vec<Workload>, Option<Finding>) {
    let (kept, skipped): (Vec<Workload>, Vec<Workload>) = workloads.into_iter().partition(|w| is_claimed(w, config));
    (kept, unclaimed(&skipped))
}

/// The `unclaimed-images` finding listing what was set aside, if anything was.
fn unclaimed(skipped: &[Workload]) -> Option<Finding> {
    if skipped.is_empty() {
        return None;
    }
    let mut images: Vec<String> = skipped
        .iter()
        .map(|w| w.image.named().map(|r| r.familiar_name()).unwrap_or_else(|| w.image.to_string()))
        .collect();
    images.sort();
    images.dedup();
    let finding = Finding::new(
        Code::UnclaimedImages,
        format!("{} workload(s) run images no configured service claims: {}", skipped.len(), images.join(", ")),
    )
    .hint("add a [services.NAME] with that image to audit them")
    .key(images.join(","));
    Some(finding)
}

/// Groups workloads into deployments (environment × service × distinct image), resolves
/// each, and adds a `mixed-versions` finding where one service runs several images.
pub fn deployments(workloads: &[Workload], config: &Config, repo: &impl Commits, shallow: bool) -> Vec<Deployment> {
    deployments_with(workloads, &HashMap::new(), config, repo, shallow)
}

pub use crate::model::{is_release_tag, registry_key};

/// `deployments`, with what registries said about each workload's image (by `registry_key`).
pub fn deployments_with(
    workloads: &[Workload],
    registry: &HashMap<String, RegistryFacts>,
    config: &Config,
    repo: &impl Commits,
    shallow: bool,
) -> Vec<Deployment> {
    let mut groups: BTreeMap<(String, String, String), Vec<&Workload>> = BTreeMap::new();
    for w in workloads {
        let key = (w.environment.clone(), service_name(w, config), identity(w));
        groups.entry(key).or_default().push(w);
    }
    let mut out: Vec<Deployment> = groups
        .into_iter()
        .map(|((env, service, _), replicas)| {
            let first = replicas[0];
            let git_tags = config.git_tags(&service);
            let facts = registry.get(&registry_key(first));
            let (commit, evidence, findings) = resolve_with(first, facts, &env, &service, &git_tags, repo, shallow);
            Deployment {
                instances: replicas
                    .iter()
                    .map(|w| Instance { name: w.instance.clone(), started_at: w.started_at, origin: w.origin.clone() })
                    .collect(),
                digests: first.digests(),
                image: first.image.clone(),
                labels: first.labels.clone(),
                environment: env,
                service,
                commit,
                evidence,
                findings,
            }
        })
        .collect();
    flag_mixed_versions(&mut out);
    out
}

/// What makes two replicas "the same image": the image ID, else the registry digests,
/// else the reference string.
fn identity(w: &Workload) -> String {
    if let Some(id) = &w.image_id {
        return id.to_string();
    }
    let digests = w.digests();
    if !digests.is_empty() {
        return digests.iter().map(Digest::as_str).collect::<Vec<_>>().join(",");
    }
    w.image.to_string()
}

fn flag_mixed_versions(deployments: &mut [Deployment]) {
    let mut by_service: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, d) in deployments.iter().enumerate() {
        by_service.entry((d.environment.clone(), d.service.clone())).or_default().push(i);
    }
    for ((env, service), idx) in by_service.into_iter().filter(|(_, v)| v.len() > 1) {
        let variants: Vec<String> = idx
            .iter()
            .map(|&i| {
                let d = &deployments[i];
                let commit = d.commit.as_ref().map(|c| c.short().to_string()).unwrap_or_else(|| "unresolved".into());
                format!("{} ({} replica{}, {commit})", d.image, d.instances.len(), plural(d.instances.len()))
            })
            .collect();
        let f = Finding::new(Code::MixedVersions, format!("{} images run at once: {}", idx.len(), variants.join("; ")))
            .hint("finish or roll back the rollout so every replica runs one image")
            .key(idx.iter().map(|&i| deployments[i].image.to_string()).collect::<Vec<_>>().join(","))
            .at(&env, &service);
        for i in idx {
            deployments[i].findings.push(f.clone());
        }
    }
}

/// Resolves one image to a commit. Returns the commit (None when nothing resolves), all the
/// evidence considered, and the findings it raised.
pub fn resolve(
    w: &Workload,
    env: &str,
    service: &str,
    git_tags: &[String],
    repo: &impl Commits,
    shallow: bool,
) -> (Option<CommitId>, Vec<Evidence>, Vec<Finding>) {
    resolve_with(w, None, env, service, git_tags, repo, shallow)
}

/// `resolve`, also weighing what the registry said (`facts`): its revision labels and
/// annotations, and its other tags of the same image. Its findings join the deployment's.
#[allow(clippy::too_many_arguments)]
pub fn resolve_with(
    w: &Workload,
    facts: Option<&RegistryFacts>,
    env: &str,
    service: &str,
    git_tags: &[String],
    repo: &impl Commits,
    shallow: bool,
) -> (Option<CommitId>, Vec<Evidence>, Vec<Finding>) {
    let mut evidence = Vec::new();
    let mut findings = Vec::new();
    let fetch_hint = |what: &str| {
        if shallow {
            "the repository is shallow: git fetch --unshallow --tags".to_string()
        } else {
            format!(
                "{} (or git fetch --tags); a label inherited from a base image names a commit of another repository",
                fetch(what)
            )
        }
    };

    for key in REVISION_LABELS {
        let Some(value) = w.labels.get(*key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            continue;
        };
        let found =
            lookup(repo, value, &mut findings, &format!("label {key}={value}"), &fetch_hint(value), env, service);
        evidence.push(Evidence {
            kind: EvidenceKind::Label,
            name: key.to_string(),
            value: value.to_string(),
            commit: found,
        });
    }

    if let Some(f) = facts {
        for (key, value) in registry_labels(w, f) {
            let what = format!("registry label {key}={value}");
            let found = lookup(repo, &value, &mut findings, &what, &fetch_hint(&value), env, service);
            evidence.push(Evidence { kind: EvidenceKind::RegistryLabel, name: key, value, commit: found });
        }
        let own = w.image.named().and_then(|r| r.tag.as_deref());
        evidence.extend(registry_tags(f, own, git_tags, repo));
        findings.extend(f.findings.iter().cloned().map(|x| x.at(env, service)));
    }

    if let Some(tag) = w.image.named().and_then(|r| r.tag.as_deref()) {
        tag_evidence(tag, git_tags, repo, &mut evidence, &mut findings, env, service, shallow);
    }

    let mut distinct: Vec<&CommitId> = Vec::new();
    for c in evidence.iter().filter_map(|e| e.commit.as_ref()) {
        if !distinct.contains(&c) {
            distinct.push(c);
        }
    }
    match distinct.len() {
        0 => {
            let tried = if evidence.is_empty() {
                format!("{} has no revision label and no tag that names a commit or a git tag", w.image)
            } else {
                let e: Vec<String> = evidence.iter().map(Evidence::describe).collect();
                format!("none of the evidence names a commit of this repository: {}", e.join(", "))
            };
            findings.push(
                Finding::new(Code::Unresolved, tried)
                    .hint("build images with --label org.opencontainers.image.revision=$(git rev-parse HEAD), or tag them with their git tag")
                    .key(w.image.to_string())
                    .at(env, service),
            );
            (None, evidence, findings)
        }
        1 => (Some(distinct[0].clone()), evidence, findings),
        _ => {
            let chosen = distinct[0].clone();
            let claims: Vec<String> = evidence
                .iter()
                .filter_map(|e| e.commit.as_ref().map(|c| format!("{} says {}", e.describe(), c.short())))
                .collect();
            findings.push(
                Finding::new(
                    Code::EvidenceConflict,
                    format!(
                        "{}; reporting {}, from the {}",
                        claims.join(", "),
                        chosen.short(),
                        evidence_for(&evidence, &chosen)
                    ),
                )
                .hint("a moved git tag or a mislabelled build: check which is right, then re-tag or rebuild")
                .key(distinct.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(","))
                .at(env, service),
            );
            (Some(chosen), evidence, findings)
        }
    }
}

/// Revision labels and annotations from the registry that the runtime did not already report.
fn registry_labels(w: &Workload, f: &RegistryFacts) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for key in REVISION_LABELS {
        for source in [&f.labels, &f.annotations] {
            let Some(value) = source.get(*key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
                continue;
            };
            let known = w.labels.get(*key).is_some_and(|v| v.trim() == value);
            let pair = (key.to_string(), value.to_string());
            if !known && !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

/// Release-shaped tags the registry gives the same image, matched to git tags.
fn registry_tags(f: &RegistryFacts, own: Option<&str>, git_tags: &[String], repo: &impl Commits) -> Vec<Evidence> {
    let mut out = Vec::new();
    for tag in &f.tags {
        if Some(tag.as_str()) == own || !is_release_tag(tag) {
            continue;
        }
        let found = git_tags.iter().find_map(|t| {
            let name = t.replace("{tag}", tag);
            repo.tag_commit(&name).map(|c| (name, c))
        });
        if let Some((name, commit)) = found {
            out.push(Evidence { kind: EvidenceKind::RegistryTag, name, value: tag.clone(), commit: Some(commit) });
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn tag_evidence(
    tag: &str,
    git_tags: &[String],
    repo: &impl Commits,
    evidence: &mut Vec<Evidence>,
    findings: &mut Vec<Finding>,
    env: &str,
    service: &str,
    shallow: bool,
) {
    let sha = SHA_TAG
        .captures(tag)
        .map(|c| (c.get(1).is_some(), c[2].to_string()))
        .or_else(|| SUFFIX_SHA_TAG.captures(tag).map(|c| (true, c[1].to_string())))
        .filter(|(prefixed, hex)| *prefixed || hex.bytes().any(|b| b.is_ascii_alphabetic()));
    if let Some((_, hex)) = sha {
        let hint = if shallow { "git fetch --unshallow --tags".to_string() } else { fetch(&hex) };
        let found = lookup(repo, &hex, findings, &format!("tag {tag}"), &hint, env, service);
        evidence.push(Evidence {
            kind: EvidenceKind::ShaTag,
            name: tag.to_string(),
            value: tag.to_string(),
            commit: found,
        });
        return;
    }
    for template in git_tags {
        // `v1.2.0` with `v{tag}` would look for `vv1.2.0`.
        if template.starts_with("v{tag}") && tag.starts_with('v') {
            continue;
        }
        let name = template.replace("{tag}", tag);
        if let Some(commit) = repo.tag_commit(&name) {
            evidence.push(Evidence { kind: EvidenceKind::GitTag, name, value: tag.to_string(), commit: Some(commit) });
            return;
        }
    }
    if is_release_tag(tag) {
        let tried: Vec<String> = git_tags
            .iter()
            .filter(|t| !(t.starts_with("v{tag}") && tag.starts_with('v')))
            .map(|t| t.replace("{tag}", tag))
            .collect();
        findings.push(
            Finding::new(
                Code::GitTagMissing,
                format!("image tag {tag} looks like a release, but no git tag {} exists here", tried.join(" or ")),
            )
            .hint(if shallow { "git fetch --unshallow --tags" } else { "git fetch --tags" })
            .key(tag)
            .at(env, service),
        );
    }
}

fn lookup(
    repo: &impl Commits,
    hex: &str,
    findings: &mut Vec<Finding>,
    what: &str,
    hint: &str,
    env: &str,
    service: &str,
) -> Option<CommitId> {
    let (code, msg) = match repo.lookup_commit(hex) {
        Lookup::Found(c) => return Some(c),
        Lookup::NotFound => (Code::CommitNotFound, format!("{what} names no commit in this repository")),
        Lookup::NotACommit => (Code::CommitNotFound, format!("{what} names an object that is not a commit")),
        Lookup::Ambiguous => {
            let msg = format!("{what} is the start of several commits' ids; a longer SHA is needed");
            let hint = "tag images with a longer SHA (12 digits or more: git rev-parse --short=12)";
            findings.push(Finding::new(Code::AmbiguousCommit, msg).hint(hint).key(hex).at(env, service));
            return None;
        }
    };
    findings.push(Finding::new(code, msg).hint(hint).key(hex).at(env, service));
    None
}

/// How to get a missing commit: by its id when it is whole; a server hands out abbreviated
/// ids only with the branches that hold them.
fn fetch(hex: &str) -> String {
    if hex.len() == 40 {
        format!("git fetch origin {hex}")
    } else {
        "git fetch origin (an abbreviated id cannot be fetched by itself)".to_string()
    }
}

fn evidence_for(evidence: &[Evidence], commit: &CommitId) -> String {
    evidence.iter().find(|e| e.commit.as_ref() == Some(commit)).map(|e| e.kind.to_string()).unwrap_or_default()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    impl Commits for Fake {
        fn lookup_commit(&self, hex: &str) -> Lookup {
            match hex {
                h if A.starts_with(h) => Lookup::Found(CommitId(A.into())),
                h if B.starts_with(h) => Lookup::Found(CommitId(B.into())),
                "abcabca" => Lookup::Ambiguous,
                _ => Lookup::NotFound,
            }
        }
        fn tag_commit(&self, tag: &str) -> Option<CommitId> {
            match tag {
                "v1.0.0" => Some(CommitId(A.into())),
                "v2.0.0" => Some(CommitId(B.into())),
                _ => None,
            }
        }
    }

    fn run(image: &str, labels: &[(&str, &str)]) -> (Option<CommitId>, Vec<Evidence>, Vec<Code>) {
        let w = Workload {
            environment: "prod".into(),
            service: None,
            image: ImageSpec::parse(image).unwrap(),
            image_id: None,
            repo_digests: vec![],
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            instance: None,
            started_at: None,
            origin: "test".into(),
            local_only: false,
        };
        let tags: Vec<String> = crate::config::DEFAULT_GIT_TAGS.iter().map(|s| s.to_string()).collect();
        let (c, e, f) = resolve(&w, "prod", "api", &tags, &Fake, false);
        (c, e, f.iter().map(|f| f.code).collect())
    }

    #[test]
    fn label_and_tag_that_agree_resolve_without_findings() {
        let (c, e, f) = run("api:1.0.0", &[(REVISION_LABELS[0], A)]);
        assert_eq!(c.unwrap().0, A);
        assert_eq!(e.len(), 2);
        assert!(f.is_empty());
    }

    #[test]
    fn label_and_tag_that_disagree_are_a_conflict() {
        let (c, _, f) = run("api:2.0.0", &[(REVISION_LABELS[0], A)]);
        assert_eq!(c.unwrap().0, A, "the image's own label is reported");
        assert_eq!(f, [Code::EvidenceConflict]);
    }

    #[test]
    fn sha_shaped_tags_resolve() {
        for tag in ["sha-bbbbbbb", "bbbbbbbbbb", "gbbbbbbb", "main-bbbbbbbb", B] {
            let (c, e, f) = run(&format!("api:{tag}"), &[]);
            assert_eq!(c.map(|c| c.0).as_deref(), Some(B), "{tag}");
            assert_eq!(e[0].kind, EvidenceKind::ShaTag);
            assert!(f.is_empty(), "{tag}: {f:?}");
        }
    }

    #[test]
    fn nothing_resolves_is_unresolved_not_a_guess() {
        assert_eq!(run("api:latest", &[]).2, [Code::Unresolved]);
        assert_eq!(run("api:3.0.0", &[]).2, [Code::GitTagMissing, Code::Unresolved]);
        assert_eq!(run("api:sha-ccccccc", &[]).2, [Code::CommitNotFound, Code::Unresolved]);
        assert_eq!(run("api:abcabca", &[]).2, [Code::AmbiguousCommit, Code::Unresolved]);
        // An all-digit tag is a build number, not a missing commit.
        assert_eq!(run("api:12345678", &[]).2, [Code::GitTagMissing, Code::Unresolved]);
    }

    #[test]
    fn registry_labels_and_tags_join_the_evidence_without_repeating_the_runtime() {
        let w = Workload {
            environment: "prod".into(),
            service: None,
            image: ImageSpec::parse("api:latest").unwrap(),
            image_id: None,
            repo_digests: vec![],
            labels: [(REVISION_LABELS[0].to_string(), A.to_string())].into(),
            instance: None,
            started_at: None,
            origin: "test".into(),
            local_only: false,
        };
        let facts = RegistryFacts {
            labels: [(REVISION_LABELS[0].to_string(), A.to_string())].into(),
            annotations: [(REVISION_LABELS[0].to_string(), B.to_string())].into(),
            tags: vec!["latest".into(), "1.0.0".into(), "nightly".into()],
            findings: vec![Finding::new(Code::TagMoved, "moved")],
        };
        let tags = vec!["v{tag}".to_string()];
        let (c, e, f) = resolve_with(&w, Some(&facts), "prod", "api", &tags, &Fake, false);
        let kinds: Vec<String> = e.iter().map(|e| e.kind.to_string()).collect();
        // The runtime label is not repeated; the annotation disagrees; 1.0.0 is v1.0.0.
        assert_eq!(kinds, ["label", "registry-label", "registry-tag"]);
        assert_eq!(c.unwrap().0, A);
        let codes: Vec<Code> = f.iter().map(|f| f.code).collect();
        assert_eq!(codes, [Code::TagMoved, Code::EvidenceConflict]);
        assert_eq!(f[0].environment.as_deref(), Some("prod"));
    }

    #[test]
    fn a_foreign_label_falls_back_to_the_tag_and_says_so() {
        let (c, _, f) = run("api:1.0.0", &[(REVISION_LABELS[1], "cccccccccccc")]);
        assert_eq!(c.unwrap().0, A);
        assert_eq!(f, [Code::CommitNotFound]);
    }
}
