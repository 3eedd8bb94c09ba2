//! The nouns prodiff works with: what runs (`Workload`), which commit that is (`Evidence`,
//! `CommitId`), how it differs (`CommitRecord`) and what is wrong (`Finding`).
//!
//! Findings are data, not errors: drift, an unresolvable image or a shallow clone are
//! findings with a stable kebab-case code. `Err` is kept for "could not do the job at all".

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;

pub use crate::reference::{Digest, ImageRef, ImageSpec};

/// A full commit id (40 hex digits for SHA-1 repositories).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CommitId(pub String);

impl CommitId {
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(10)]
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One running (or declared) instance of an image, as a source observed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub environment: String,
    /// The service name the source gave, if any; otherwise config or the image decide.
    pub service: Option<String>,
    pub image: ImageSpec,
    /// The image ID the runtime reports (config digest, or manifest digest on containerd).
    pub image_id: Option<Digest>,
    /// Registry digests the runtime knows for this image (`repo@sha256:…`).
    pub repo_digests: Vec<ImageRef>,
    pub labels: BTreeMap<String, String>,
    pub instance: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// Where this workload was read from, for messages (`inventory prod.json`).
    pub origin: String,
    /// Built on its host and never pushed or pulled (Docker: no RepoDigests): no registry
    /// can know it, so none is asked, and its name does not leave the machine.
    pub local_only: bool,
}

impl Workload {
    /// Every digest that names what this workload runs: the image ID, the registry digests
    /// and a digest pinned in the reference. Sorted, without duplicates.
    pub fn digests(&self) -> Vec<Digest> {
        let mut all: Vec<Digest> = self.image_id.iter().cloned().collect();
        all.extend(self.repo_digests.iter().filter_map(|r| r.digest.clone()));
        match &self.image {
            ImageSpec::Named(r) => all.extend(r.digest.clone()),
            ImageSpec::Id(d) => all.push(d.clone()),
        }
        all.sort();
        all.dedup();
        all
    }
}

/// How one piece of evidence points at a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// An image label such as `org.opencontainers.image.revision`.
    Label,
    /// An image tag shaped like a commit id (`sha-9f3c2e1`).
    ShaTag,
    /// An image tag matched to a git tag (`1.4.2` -> `v1.4.2`).
    GitTag,
    /// A version store (file, command, endpoint) reports this commit for the service.
    Reported,
    /// A revision label of the image config, or a revision annotation of its manifest or
    /// index, read from the registry (the runtime did not report it).
    RegistryLabel,
    /// Another tag of the same image in the registry (`latest` is also `1.4.2`), matched to
    /// a git tag.
    RegistryTag,
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvidenceKind::Label => "label",
            EvidenceKind::ShaTag => "sha-tag",
            EvidenceKind::GitTag => "git-tag",
            EvidenceKind::Reported => "reported",
            EvidenceKind::RegistryLabel => "registry-label",
            EvidenceKind::RegistryTag => "registry-tag",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// The label key, or the git tag name the image tag was matched to.
    pub name: String,
    /// The value as found: the label value or the image tag.
    pub value: String,
    /// The commit it names in this repository, when it names one.
    pub commit: Option<CommitId>,
}

impl Evidence {
    pub fn describe(&self) -> String {
        match self.kind {
            EvidenceKind::Label | EvidenceKind::RegistryLabel => {
                let full_sha = self.value.len() == 40 && self.value.bytes().all(|b| b.is_ascii_hexdigit());
                let value = if full_sha { &self.value[..10] } else { &self.value };
                let source = if self.kind == EvidenceKind::Label { "label" } else { "registry label" };
                format!("{source} {}={value}", self.name)
            }
            EvidenceKind::ShaTag => format!("tag {}", self.value),
            EvidenceKind::GitTag => format!("tag {} (git tag {})", self.value, self.name),
            EvidenceKind::RegistryTag => {
                format!("registry tag {} (git tag {})", self.value, self.name)
            }
            EvidenceKind::Reported => format!("{} says {}", self.name, self.value),
        }
    }
}

/// A commit in a range, with what a reader needs to recognise it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitRecord {
    pub sha: CommitId,
    pub subject: String,
    pub author: String,
    pub email: String,
    /// Author date, RFC 3339.
    pub date: String,
    /// Committer date, RFC 3339: when the commit landed where it is.
    pub committed_at: String,
    pub tickets: Vec<String>,
    pub merge: bool,
    /// The commit on the other side with the same patch (a cherry-pick), if any.
    pub equivalent: Option<CommitId>,
}

/// What a registry said about the image a workload runs, for resolution (see `enrich`).
/// `findings` have no environment or service yet; the deployment they end up in adds them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistryFacts {
    /// Labels of the image config.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the manifest and its index.
    pub annotations: BTreeMap<String, String>,
    /// Other tags naming the same image (only known when tags were listed).
    pub tags: Vec<String>,
    pub findings: Vec<Finding>,
}

/// How bad a finding is under the policy in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Allow,
    Warn,
    Deny,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Deny => "deny",
        })
    }
}

/// Defines the finding codes once: variant, stable code, default level, whether the finding
/// means prodiff could not observe something, and what it means.
macro_rules! codes {
    ($($variant:ident = $code:literal, $level:ident, $incomplete:literal, $doc:literal;)*) => {
        /// Every finding prodiff can report. The kebab-case codes are a stable interface.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            pub fn default_level(self) -> Level {
                match self { $(Code::$variant => Level::$level),* }
            }

            /// True when the finding means part of the answer could not be observed.
            pub fn is_incomplete(self) -> bool {
                match self { $(Code::$variant => $incomplete),* }
            }

            pub fn meaning(self) -> &'static str {
                match self { $(Code::$variant => $doc),* }
            }

            pub fn parse(s: &str) -> Option<Code> {
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    HotfixDrift = "hotfix-drift", Deny, false,
        "The environment runs commits the mainline does not have (cherry-picks of mainline commits excluded).";
    BehindMainline = "behind-mainline", Allow, false,
        "The mainline has commits the environment does not run yet: what the next release ships.";
    EvidenceConflict = "evidence-conflict", Deny, false,
        "Two pieces of evidence (label, SHA tag, version tag) name different commits.";
    Unresolved = "unresolved", Deny, true,
        "No evidence resolves the image to a commit of this repository.";
    CommitNotFound = "commit-not-found", Warn, false,
        "A label or SHA tag names a commit that is not in the local repository.";
    AmbiguousCommit = "ambiguous-commit", Warn, false,
        "A short SHA matches more than one object in the repository.";
    GitTagMissing = "git-tag-missing", Warn, false,
        "The image tag looks like a release, but no matching git tag exists locally.";
    MixedVersions = "mixed-versions", Deny, false,
        "Replicas of one service in one environment run different images.";
    ShallowClone = "shallow-clone", Warn, true,
        "The repository is a shallow clone: commit counts cannot be trusted, so none are given.";
    NoCounterpart = "no-counterpart", Warn, false,
        "The environment compared with does not run this service on one resolved commit, so there is nothing to diff.";
    SourceUnreachable = "source-unreachable", Warn, true,
        "A source (Docker host, registry, cluster) could not be read: its workloads are missing from the answer.";
    LagExceeded = "lag-exceeded", Deny, false,
        "The environment lags the mainline by more commits or days than a `[[policy.lag]]` rule allows.";
    ExceptionExpired = "exception-expired", Deny, false,
        "A `[[policy.exceptions]]` entry is past its expiry date: what it excused counts again.";
    ExceptionUnused = "exception-unused", Warn, false,
        "A `[[policy.exceptions]]` entry matched no finding.";
    DropsCommits = "drops-commits", Deny, false,
        "A planned deploy would drop running commits that the target does not have (a hotfix the release lacks).";
    Rollback = "rollback", Warn, false,
        "A planned deploy goes back to an older commit: it reverts what runs now.";
    RiskyChange = "risky-change", Warn, false,
        "A plan or rollback changes (or reverts) risky paths: migrations, schemas.";
    NoRollbackTarget = "no-rollback-target", Deny, false,
        "No earlier release is free of every excluded commit or ticket.";
    UnpromotedChange = "unpromoted-change", Warn, false,
        "The environment runs commits its predecessor in the promotion path does not run.";
    SeasoningViolated = "seasoning-violated", Deny, false,
        "A release reached the environment before running in its predecessor for the `[[policy.seasoning]]` minimum.";
    SeasoningUnverified = "seasoning-unverified", Warn, true,
        "Seasoning cannot be checked: no start times, or the predecessor has moved on to a newer release.";
    PendingWorkload = "pending-workload", Warn, false,
        "A container is not running (still pulling, crash-looping): its image is not counted as what runs.";
    UnclaimedImages = "unclaimed-images", Allow, false,
        "Workloads run images that no configured service claims (sidecars, databases): they are not audited.";
    SourcesDisagree = "sources-disagree", Deny, false,
        "Sources name different commits for one service: running images, declared (GitOps) state, version stores.";
    StaleTag = "stale-tag", Deny, false,
        "A container's tag now names another image on its host: it still runs the old one (reported by digest).";
    UntaggedImage = "untagged-image", Warn, false,
        "A container runs an image no tag names any more (dangling).";
    TaskDigestMismatch = "task-digest-mismatch", Deny, false,
        "A Swarm task runs another digest than its service specifies (an update or rollback in progress or stuck).";
    EmptyEnvironment = "empty-environment", Warn, true,
        "An environment declared in the config has no workloads in any source.";
    TagMoved = "tag-moved", Deny, false,
        "The registry's tag now names another image than the one running: it was re-pushed after the deployment.";
    ImageNotInRegistry = "image-not-in-registry", Warn, false,
        "The registry no longer has the running digest (deleted or garbage-collected): it cannot be pulled again.";
    UntaggedDigest = "untagged-digest", Allow, false,
        "No tag of the repository names the running image any more (checked only when tags were listed).";
    RegistryUnreachable = "registry-unreachable", Warn, true,
        "A registry could not be asked (down, timed out, denied, or answered content that failed verification).";
    RegistryRateLimit = "registry-rate-limit", Warn, false,
        "A registry reported few requests left in its rate limit (Docker Hub's ratelimit-remaining).";
    RegistryNotChecked = "registry-not-checked", Allow, false,
        "--offline: registry answers (tag moves, deleted images, registry labels) were not checked.";
    RepositoryUnavailable = "repository-unavailable", Warn, true,
        "A fleet repository is missing or is not a git clone: its services are not audited; the others are.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Something worth telling about one service in one environment (or the whole run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub message: String,
    /// What to do about it, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What the finding is about, stable across runs (the drifting SHAs, the missing tag):
    /// with code, environment and service it identifies the finding for baselines.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Why the level was lowered to `allow`: an exception's reason, or the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
    /// The config entry at fault, `FILE:LINE` (a policy rule or exception), so a CI
    /// annotation can point at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// How many replicas it concerns, when one finding stands for several (a stale tag on
    /// ten containers is one finding with count 10).
    #[serde(skip_serializing_if = "single")]
    pub count: usize,
}

fn single(count: &usize) -> bool {
    *count <= 1
}

impl Finding {
    pub fn new(code: Code, message: impl Into<String>) -> Finding {
        Finding {
            code,
            level: code.default_level(),
            environment: None,
            service: None,
            message: message.into(),
            hint: None,
            key: String::new(),
            suppressed: None,
            origin: None,
            count: 1,
        }
    }

    /// The config entry (`FILE:LINE`) this finding is about.
    pub fn origin(mut self, origin: impl Into<String>) -> Finding {
        self.origin = Some(origin.into());
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Finding {
        self.key = key.into();
        self
    }

    /// `code environment/service key`: the identity a baseline remembers.
    pub fn identity(&self) -> (Code, Option<&str>, Option<&str>, &str) {
        (self.code, self.environment.as_deref(), self.service.as_deref(), self.key.as_str())
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }

    pub fn at(mut self, environment: &str, service: &str) -> Finding {
        self.environment = Some(environment.to_string());
        self.service = Some(service.to_string());
        self
    }
}

/// `1.4.2`, `v2.0.0-rc.1`, `2026.11`: tags that name a release.
static VERSION_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^v?[0-9]+(\.[0-9]+)*([-+][0-9A-Za-z.+-]+)?$").unwrap());

/// The key registry facts are stored under for a workload: its image and running digests.
pub fn registry_key(w: &Workload) -> String {
    let mut key = w.image.to_string();
    for d in w.digests() {
        key.push('|');
        key.push_str(d.as_str());
    }
    key
}

/// Whether an image tag names a release (`1.4.2`, `v2.0.0-rc.1`), as opposed to `latest`
/// or a build tag.
pub fn is_release_tag(tag: &str) -> bool {
    VERSION_TAG.is_match(tag)
}
