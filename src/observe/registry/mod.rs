//! Registry truth: tag → digest → commit, asked of the registry itself.
//!
//! This module owns every registry conversation and nothing else (no resolution, no
//! findings: `enrich` turns its answers into those). The interface is small:
//! `tag_digest` (one HEAD, never a GET unless the registry omits `Docker-Content-Digest`),
//! `exists` (HEAD by digest), `image` (index → the wanted platform → manifest → config
//! labels and annotations) and `tags` (only when asked; follows `Link`, guards cycles).
//!
//! Everything fetched is hashed and checked against the digest asked for, and stored in the
//! persistent `cache` by digest; tag answers are asked again on every run. Answers are
//! memoised per run, so one `repository:tag` gets at most one HEAD.
//!
//! The protocol is spoken here directly over reqwest (`http`): what oci-client would do for
//! us it hides (HEAD that becomes GET, status and `Retry-After`, `Link`, size limits, a token
//! exchange without deadline); oci-client gives the media types (`manifest`), and is used
//! only in this module.

pub mod cache;
pub mod credentials;
pub mod http;
pub mod manifest;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::reference::{Digest, ImageRef};
use cache::Cache;
use http::{Answer, Transport};
use manifest::Manifest;
pub use manifest::Platform;

/// The largest manifest or index prodiff reads.
pub const MANIFEST_LIMIT: usize = 4 << 20;
/// The largest config blob prodiff reads.
pub const CONFIG_LIMIT: usize = 8 << 20;
/// The largest page of a tag list.
pub const TAGS_LIMIT: usize = 4 << 20;

pub use crate::config::observe::Limits;

/// Why a registry could not answer. Names the registry and what was asked, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: {message}")]
    Connect { registry: String, message: String },
    #[error("registry {registry}: {path} answered HTTP {status}{}", status_reason(.status))]
    Status { registry: String, path: String, status: u16 },
    #[error("registry {registry}: authentication for {repository} failed: {message}")]
    Auth { registry: String, repository: String, message: String },
    #[error("registry {registry}: credentials: {message}")]
    Credentials { registry: String, message: String },
    #[error("registry {registry}: {what} does not hash to the digest asked for (it hashes to {actual})")]
    DigestMismatch { registry: String, what: String, actual: String },
    #[error("registry {registry}: {path} is larger than {limit} bytes")]
    TooLarge { registry: String, path: String, limit: usize },
    #[error(
        "registry {registry}: {what} has more than {limit} {unit} (registry.{key} in prodiff.toml raises the limit)"
    )]
    TooMany { registry: String, what: String, limit: usize, unit: &'static str, key: &'static str },
    #[error("registry {registry}: {what}: {message}")]
    Invalid { registry: String, what: String, message: String },
}

/// How prodiff talks to registries (from `[registry]` in prodiff.toml).
#[derive(Debug, Clone)]
pub struct Options {
    /// Hosts (with port) that may be reached over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    pub timeout: Duration,
    pub platform: Platform,
    pub cache: Cache,
    pub limits: Limits,
}

/// What a registry says about one image (one digest, seen through its index if it has one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageFacts {
    /// The index digest, when the digest asked for is an index.
    pub index: Option<Digest>,
    /// The per-platform manifest digest (absent when the index has no wanted platform).
    pub manifest: Option<Digest>,
    pub config: Option<Digest>,
    pub labels: BTreeMap<String, String>,
    /// Index annotations, overridden by the manifest's.
    pub annotations: BTreeMap<String, String>,
}

impl ImageFacts {
    /// Every digest that names this image: index, manifest, config.
    pub fn digests(&self) -> BTreeSet<Digest> {
        [&self.index, &self.manifest, &self.config].into_iter().flatten().cloned().collect()
    }
}

type TagAnswer = Result<Option<Digest>, RegistryError>;
type Content = Result<Option<Vec<u8>>, RegistryError>;
/// (registry host, digest, kind): a manifest and a blob of one digest are different
/// questions (a 404 for one says nothing about the other).
type ContentKey = (String, Digest, Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Manifest,
    Blob,
}

pub struct Registry {
    transport: Transport,
    platform: Platform,
    cache: Cache,
    limits: Limits,
    heads: Mutex<HashMap<String, Arc<OnceCell<TagAnswer>>>>,
    /// Content fetched this run, by registry and digest: concurrent lookups of one image
    /// fetch it once. Keyed by registry too, so one registry's failure is not another's.
    contents: Mutex<HashMap<ContentKey, Arc<OnceCell<Content>>>>,
}

impl Registry {
    /// A client for the registries in `hosts` (to decide which of them get plain HTTP).
    pub fn new<'a>(options: &Options, hosts: impl IntoIterator<Item = &'a str>) -> Result<Registry, String> {
        let plain: BTreeSet<String> = hosts
            .into_iter()
            .filter(|h| is_loopback(h) || options.insecure.iter().any(|i| i == h))
            .map(str::to_string)
            .collect();
        Ok(Registry {
            transport: Transport::new(plain, options.timeout)?,
            platform: options.platform.clone(),
            cache: options.cache.clone(),
            limits: options.limits.clone(),
            heads: Mutex::default(),
            contents: Mutex::default(),
        })
    }

    /// The lowest `ratelimit-remaining` each host reported during this run.
    pub fn rate_limits(&self) -> HashMap<String, u64> {
        self.transport.rate_limit.lock().unwrap().clone()
    }

    /// The digest a tag names now (None: no such tag). One HEAD per repository:tag per run.
    pub async fn tag_digest(&self, image: &ImageRef, tag: &str) -> TagAnswer {
        let key = format!("{}:{tag}", image.name());
        let cell = self.heads.lock().unwrap().entry(key).or_default().clone();
        cell.get_or_init(|| self.head_tag(image, tag)).await.clone()
    }

    async fn head_tag(&self, image: &ImageRef, tag: &str) -> TagAnswer {
        let path = format!("/v2/{}/manifests/{tag}", image.repository);
        let a = self.manifest_request(Method::HEAD, image, &path).await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.expect_ok(image, &path, &a)?;
        if let Some(d) = a.header("docker-content-digest") {
            return Digest::parse(d.trim()).map(Some).map_err(|e| self.invalid(image, &path, e));
        }
        // No digest header: the digest is the hash of the body, which only a GET returns.
        let a = self.manifest_request(Method::GET, image, &path).await?;
        self.expect_ok(image, &path, &a)?;
        let digest = Digest::parse(&sha256(&a.body)).map_err(|e| self.invalid(image, &path, e))?;
        self.cache.put(&digest, &a.body);
        Ok(Some(digest))
    }

    /// Whether the registry still has the manifest `digest` (HEAD, never counted as a pull).
    pub async fn exists(&self, image: &ImageRef, digest: &Digest) -> Result<bool, RegistryError> {
        let path = format!("/v2/{}/manifests/{digest}", image.repository);
        let a = self.manifest_request(Method::HEAD, image, &path).await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        self.expect_ok(image, &path, &a)?;
        Ok(true)
    }

    /// The image behind a manifest or index digest: index → platform → manifest → config.
    /// None when the registry does not have `digest`.
    pub async fn image(&self, image: &ImageRef, digest: &Digest) -> Result<Option<ImageFacts>, RegistryError> {
        self.image_for(image, digest, &BTreeSet::new()).await
    }

    /// `image`, but from an index the platform that runs: the entry whose manifest or config
    /// digest is in `running` (a workload on arm64 runs the arm64 image), else the
    /// configured platform.
    pub async fn image_for(
        &self,
        image: &ImageRef,
        digest: &Digest,
        running: &BTreeSet<Digest>,
    ) -> Result<Option<ImageFacts>, RegistryError> {
        let Some(body) = self.manifest(image, digest).await? else {
            return Ok(None);
        };
        match self.parse(image, digest, &body)? {
            Manifest::Image { config, annotations } => {
                let facts = ImageFacts { manifest: Some(digest.clone()), annotations, ..ImageFacts::default() };
                self.with_config(image, facts, config).await.map(Some)
            }
            Manifest::Index { chosen, entries, annotations } => {
                let facts = ImageFacts { index: Some(digest.clone()), annotations, ..ImageFacts::default() };
                let running_entry = if running.contains(digest) {
                    None
                } else {
                    self.running_entry(image, &entries, chosen.as_ref(), running).await?
                };
                match running_entry.or(chosen) {
                    Some(m) => self.platform(image, facts, &m).await.map(Some),
                    None => Ok(Some(facts)),
                }
            }
        }
    }

    /// The index entry that runs: its manifest digest, or its config digest, is in `running`.
    /// The configured platform's entry (`likely`) is asked first and alone: it is usually
    /// the one that runs.
    async fn running_entry(
        &self,
        image: &ImageRef,
        entries: &[Digest],
        likely: Option<&Digest>,
        running: &BTreeSet<Digest>,
    ) -> Result<Option<Digest>, RegistryError> {
        if running.is_empty() {
            return Ok(None);
        }
        if let Some(e) = entries.iter().find(|e| running.contains(*e)) {
            return Ok(Some(e.clone()));
        }
        // The configured platform alone first: one request when it is the one that runs.
        if let Some(l) = likely {
            if self.runs(image, l, running).await? {
                return Ok(Some(l.clone()));
            }
        }
        // The others a few at a time (the per-host bound), in order, only until the running
        // one is found: dropping `pending` cancels the rest.
        let mut pending = FuturesOrdered::new();
        let mut rest = entries.iter().filter(|e| Some(*e) != likely);
        loop {
            while pending.len() < http::CONCURRENCY {
                let Some(e) = rest.next() else { break };
                pending.push_back(self.entry_runs(image, e, running));
            }
            let Some((e, found)) = pending.next().await else {
                return Ok(None);
            };
            if found? {
                return Ok(Some(e.clone()));
            }
        }
    }

    /// Whether the manifest `m` has its config digest in `running`.
    async fn runs(&self, image: &ImageRef, m: &Digest, running: &BTreeSet<Digest>) -> Result<bool, RegistryError> {
        let Some(body) = self.manifest(image, m).await? else {
            return Ok(false);
        };
        Ok(
            matches!(manifest::parse(&body, &self.platform), Ok(Manifest::Image { config, .. }) if running.contains(&config)),
        )
    }

    async fn entry_runs<'a>(
        &'a self,
        image: &'a ImageRef,
        e: &'a Digest,
        running: &'a BTreeSet<Digest>,
    ) -> (&'a Digest, Result<bool, RegistryError>) {
        (e, self.runs(image, e, running).await)
    }

    /// Adds one platform's manifest `m` (from an index) to `facts`.
    async fn platform(&self, image: &ImageRef, mut facts: ImageFacts, m: &Digest) -> Result<ImageFacts, RegistryError> {
        let Some(body) = self.manifest(image, m).await? else {
            return Ok(facts);
        };
        let Manifest::Image { config, annotations } = self.parse(image, m, &body)? else {
            return Err(self.invalid(image, m.as_str(), "an index inside an index"));
        };
        facts.manifest = Some(m.clone());
        facts.annotations.extend(annotations);
        self.with_config(image, facts, config).await
    }

    /// Reads the config blob's labels into `facts`.
    async fn with_config(
        &self,
        image: &ImageRef,
        mut facts: ImageFacts,
        config: Digest,
    ) -> Result<ImageFacts, RegistryError> {
        let blob = self.blob(image, &config).await?;
        facts.labels = manifest::labels(&blob).map_err(|e| self.invalid(image, config.as_str(), e))?;
        facts.config = Some(config);
        Ok(facts)
    }

    /// Every tag of the repository, following `Link` pages (cycles and runaway lists stop).
    pub async fn tags(&self, image: &ImageRef) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut path = format!("/v2/{}/tags/list?n=1000", image.repository);
        let mut seen = BTreeSet::new();
        let mut tags = Vec::new();
        while seen.insert(path.clone()) {
            if seen.len() > self.limits.max_tag_pages {
                return Err(self.too_many(image, "the tag list", self.limits.max_tag_pages, "pages", "max_tag_pages"));
            }
            let a =
                self.transport.send(Method::GET, &image.registry, &image.repository, &path, None, TAGS_LIMIT).await?;
            // distribution answers 404 NAME_UNKNOWN for a repository without tags.
            if a.status == StatusCode::NOT_FOUND {
                break;
            }
            self.expect_ok(image, &path, &a)?;
            let page: Page = serde_json::from_slice(&a.body).map_err(|e| self.invalid(image, &path, e))?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > self.limits.max_tags {
                return Err(self.too_many(image, "the tag list", self.limits.max_tags, "tags", "max_tags"));
            }
            match a.header("link").and_then(next_link) {
                Some(next) => path = next,
                None => break,
            }
        }
        Ok(tags)
    }

    /// Content by digest, once per run: from the cache, else from `fetch`.
    async fn content(
        &self,
        image: &ImageRef,
        digest: &Digest,
        kind: Kind,
        fetch: impl std::future::Future<Output = Content>,
    ) -> Content {
        let key = (image.registry.clone(), digest.clone(), kind);
        let cell = self.contents.lock().unwrap().entry(key).or_default().clone();
        cell.get_or_init(|| async {
            match self.cache.get(digest) {
                Some(b) => Ok(Some(b)),
                None => fetch.await,
            }
        })
        .await
        .clone()
    }

    /// A manifest body by digest: from the cache, else fetched and verified.
    async fn manifest(&self, image: &ImageRef, digest: &Digest) -> Content {
        self.content(image, digest, Kind::Manifest, self.fetch_manifest(image, digest)).await
    }

    async fn fetch_manifest(&self, image: &ImageRef, digest: &Digest) -> Content {
        let path = format!("/v2/{}/manifests/{digest}", image.repository);
        let a = self.manifest_request(Method::GET, image, &path).await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.expect_ok(image, &path, &a)?;
        self.verified(image, &path, digest, a.body).map(Some)
    }

    async fn blob(&self, image: &ImageRef, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let fetch = async { self.fetch_blob(image, digest).await.map(Some) };
        let body = self.content(image, digest, Kind::Blob, fetch).await?;
        // A cached entry is content; a fetch answers content or an error. Never None, but
        // an error is the answer rather than a panic if that ever changes.
        body.ok_or_else(|| self.invalid(image, digest.as_str(), "the blob is missing"))
    }

    async fn fetch_blob(&self, image: &ImageRef, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let path = format!("/v2/{}/blobs/{digest}", image.repository);
        let a = self.transport.send(Method::GET, &image.registry, &image.repository, &path, None, CONFIG_LIMIT).await?;
        self.expect_ok(image, &path, &a)?;
        self.verified(image, &path, digest, a.body)
    }

    fn verified(&self, image: &ImageRef, path: &str, digest: &Digest, body: Vec<u8>) -> Result<Vec<u8>, RegistryError> {
        verify(&body, digest).map_err(|actual| RegistryError::DigestMismatch {
            registry: image.registry.clone(),
            what: path.to_string(),
            actual,
        })?;
        self.cache.put(digest, &body);
        Ok(body)
    }

    async fn manifest_request(&self, method: Method, image: &ImageRef, path: &str) -> Result<Answer, RegistryError> {
        let accept = manifest::accept();
        self.transport.send(method, &image.registry, &image.repository, path, Some(&accept), MANIFEST_LIMIT).await
    }

    fn parse(&self, image: &ImageRef, digest: &Digest, body: &[u8]) -> Result<Manifest, RegistryError> {
        let m = manifest::parse(body, &self.platform).map_err(|e| self.invalid(image, digest.as_str(), e))?;
        match &m {
            Manifest::Index { entries, .. } if entries.len() > self.limits.max_index_entries => {
                let (limit, what) = (self.limits.max_index_entries, format!("index {digest}"));
                Err(RegistryError::TooMany {
                    registry: image.registry.clone(),
                    what,
                    limit,
                    unit: "entries",
                    key: "max_index_entries",
                })
            }
            _ => Ok(m),
        }
    }

    fn expect_ok(&self, image: &ImageRef, path: &str, a: &Answer) -> Result<(), RegistryError> {
        if a.status.is_success() {
            return Ok(());
        }
        Err(RegistryError::Status {
            registry: image.registry.clone(),
            path: path.to_string(),
            status: a.status.as_u16(),
        })
    }

    fn too_many(
        &self,
        image: &ImageRef,
        what: &str,
        limit: usize,
        unit: &'static str,
        key: &'static str,
    ) -> RegistryError {
        let what = format!("{what} of {}", image.repository);
        RegistryError::TooMany { registry: image.registry.clone(), what, limit, unit, key }
    }

    fn invalid(&self, image: &ImageRef, what: &str, e: impl ToString) -> RegistryError {
        RegistryError::Invalid { registry: image.registry.clone(), what: what.to_string(), message: e.to_string() }
    }
}

/// What an error status means for the user, when it is not obvious.
fn status_reason(status: &u16) -> &'static str {
    match status {
        401 => " (credentials refused or missing: docker login)",
        403 => " (access denied)",
        429 => " (rate limited, still after retries)",
        _ => "",
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Checks that `bytes` hash to `digest`; the error is the digest they do hash to.
pub fn verify(bytes: &[u8], digest: &Digest) -> Result<(), String> {
    if !digest.as_str().starts_with("sha256:") {
        return Err(format!("{} (only sha256 is verified)", digest.as_str()));
    }
    let actual = sha256(bytes);
    if actual == digest.as_str() {
        Ok(())
    } else {
        Err(actual)
    }
}

/// Docker's rule: a registry on loopback is reached over plain HTTP without configuration.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    if name == "localhost" {
        return true;
    }
    name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The path of `Link: </v2/…?last=x&n=100>; rel="next"` (absolute URLs keep their path).
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.replace(' ', "").contains("rel=\"next\"") {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let path = match target.find("://") {
            Some(i) => &target[i + 3 + target[i + 3..].find('/')?..],
            None => target,
        };
        path.starts_with("/v2/").then(|| path.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_get_plain_http() {
        for h in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["docker.io", "10.0.0.1:5000", "registry.local:5000", "[::2]:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn only_loopback_and_listed_hosts_get_plain_http() {
        let options = Options {
            insecure: vec!["r.example:5000".into()],
            timeout: Duration::from_secs(1),
            platform: Platform::default(),
            cache: Cache::none(),
            limits: Limits::default(),
        };
        let hosts = ["r.example:5000", "other.example:5000", "127.0.0.1:5000", "docker.io"];
        let r = Registry::new(&options, hosts).unwrap();
        let bases: Vec<String> = hosts.iter().map(|h| r.transport.base(h)).collect();
        assert_eq!(
            bases,
            [
                "http://r.example:5000",
                "https://other.example:5000",
                "http://127.0.0.1:5000",
                "https://registry-1.docker.io"
            ]
        );
    }

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link("</v2/a/tags/list?last=x&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?last=x&n=2")
        );
        assert_eq!(
            next_link("<https://r.example/v2/a/tags/list?last=y>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?last=y")
        );
        assert_eq!(next_link("</v2/a/tags/list?last=x>; rel=\"prev\""), None);
    }

    proptest::proptest! {
        /// A `Link` header is the peer's: any text is a path or nothing, never a panic.
        #[test]
        fn link_headers_never_panic(s in ".{0,300}") {
            if let Some(p) = next_link(&s) {
                proptest::prop_assert!(p.starts_with("/v2/"));
            }
        }
    }

    #[test]
    fn verification_names_the_actual_digest() {
        let d = Digest::parse(&sha256(b"hello")).unwrap();
        assert!(verify(b"hello", &d).is_ok());
        assert_eq!(verify(b"hullo", &d).unwrap_err(), sha256(b"hullo"));
    }
}
