//! Image references, parsed and normalised the way Docker does.
//!
//! `nginx`, `docker.io/library/nginx:latest` and `index.docker.io/library/nginx` are one
//! repository; `localhost:5000/app`, `[::1]:5000/app` and `registry.example.com/app` name
//! their registry host; a bare 64-hex string or `sha256:<hex>` is an image ID, not a
//! repository. This module owns that grammar and nothing else: it does no I/O.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The registry Docker Hub references normalise to.
pub const DOCKER_HUB: &str = "docker.io";

/// A content digest such as `sha256:9f3c…`. Always lower-case `algorithm:hex`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, ReferenceError> {
        let bad = || ReferenceError::new(s, "a digest is `sha256:` followed by 64 hex digits");
        let (algo, hex) = s.split_once(':').ok_or_else(bad)?;
        let want = match algo {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(bad()),
        };
        if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Digest(format!("{algo}:{}", hex.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, for short displays (`9f3c2e1a4b5c`).
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or(&self.0)
    }

    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named image reference: registry, repository, and an optional tag and/or digest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// Normalised registry host, `docker.io` for Docker Hub, with its port if any.
    pub registry: String,
    /// Repository path, with `library/` for official Docker Hub images.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// What a workload's `image` field can hold.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageSpec {
    Named(ImageRef),
    /// A bare image ID (`sha256:…` or 64 hex digits): no repository, no tag.
    Id(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: &'static str,
}

impl ReferenceError {
    /// Keeps at most `redact::EXCERPT` characters of the input: a bad reference can be
    /// megabytes long.
    fn new(input: &str, reason: &'static str) -> Self {
        ReferenceError { input: crate::redact::clip(input, crate::redact::EXCERPT), reason }
    }
}

impl ImageRef {
    /// Parses `[host[:port]/]path[:tag][@digest]` with Docker's normalisation.
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        let err = |reason| ReferenceError::new(input, reason);
        if input.is_empty() {
            return Err(err("it is empty"));
        }
        if input.len() > 4096 || input.chars().any(|c| c.is_whitespace()) {
            return Err(err("it contains white space or is too long"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d)?)),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(err("a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -"));
            }
        }
        let (registry, path) = split_domain(name);
        let registry = normalise_registry(registry).ok_or_else(|| err("the registry host is not valid"))?;
        let repository =
            if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
        if !valid_path(&repository) {
            return Err(err("a repository is lower-case components of [a-z0-9] joined by . _ __ or -, separated by /"));
        }
        Ok(ImageRef { registry, repository, tag: tag.map(str::to_string), digest })
    }

    /// `registry/repository`, the key services are matched on.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short, familiar form: `nginx:1.25`, `ghcr.io/acme/api@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = if self.registry == DOCKER_HUB {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string()
        } else {
            self.name()
        };
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }

    /// The repository in its short form, without tag or digest: `nginx`, `ghcr.io/acme/api`.
    pub fn familiar_name(&self) -> String {
        ImageRef { tag: None, digest: None, ..self.clone() }.familiar()
    }

    /// The last path component: what a service is called when no config names it.
    pub fn short_name(&self) -> &str {
        self.repository.rsplit('/').next().unwrap_or(&self.repository)
    }
}

impl ImageSpec {
    pub fn parse(input: &str) -> Result<ImageSpec, ReferenceError> {
        if let Some(hex) = input.strip_prefix("sha256:") {
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(ImageSpec::Id(Digest::parse(input)?));
            }
        }
        if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(ImageSpec::Id(Digest::parse(&format!("sha256:{input}"))?));
        }
        ImageRef::parse(input).map(ImageSpec::Named)
    }

    pub fn named(&self) -> Option<&ImageRef> {
        match self {
            ImageSpec::Named(r) => Some(r),
            ImageSpec::Id(_) => None,
        }
    }
}

impl fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSpec::Named(r) => f.write_str(&r.familiar()),
            ImageSpec::Id(d) => write!(f, "{d}"),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// Docker's rule: the first component is a host when it has a `.` or `:`, is `localhost`,
/// or has upper-case letters (repositories cannot).
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn normalise_registry(host: &str) -> Option<String> {
    let lower = host.to_ascii_lowercase();
    if matches!(lower.as_str(), "index.docker.io" | "registry-1.docker.io" | "docker.io") {
        return Some(DOCKER_HUB.to_string());
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        (host.len() - after.len(), after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n.len(), Some(p)),
            None => (host.len(), None),
        }
    };
    let hostname = &host[..name];
    if hostname.is_empty() {
        return None;
    }
    if !hostname.starts_with('[')
        && !hostname.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
    {
        return None;
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return None;
        }
    }
    Some(host.to_string())
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(valid_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl Serialize for ImageSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ImageSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        for s in [
            "nginx",
            "library/nginx",
            "docker.io/nginx",
            "docker.io/library/nginx",
            "index.docker.io/library/nginx",
            "registry-1.docker.io/nginx",
        ] {
            let r = named(s);
            assert_eq!(r.name(), "docker.io/library/nginx", "{s}");
            assert_eq!(r.familiar(), "nginx", "{s}");
        }
        assert_eq!(named("acme/api:1.0").name(), "docker.io/acme/api");
    }

    #[test]
    fn registry_hosts_ports_and_ipv6() {
        let r = named("localhost:5000/shop/api:1.4.2");
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost:5000", "shop/api"));
        assert_eq!(r.tag.as_deref(), Some("1.4.2"));
        assert_eq!(named("localhost/api").registry, "localhost");
        assert_eq!(named("[::1]:5000/api:v1").registry, "[::1]:5000");
        assert_eq!(named("[::1]/api").registry, "[::1]");
        assert_eq!(named("registry.example.com/shop/api").short_name(), "api");
        assert_eq!(named("Registry/api").registry, "Registry");
    }

    #[test]
    fn tag_and_digest_together() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = named(&format!("ghcr.io/acme/api:1.2.3@{d}"));
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));
        assert_eq!(r.digest.as_ref().unwrap().as_str(), d);
        let r = named(&format!("ghcr.io/acme/api@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.familiar(), format!("ghcr.io/acme/api@{d}"));
    }

    #[test]
    fn bare_image_ids_are_not_repositories() {
        let hex = "b".repeat(64);
        assert!(matches!(ImageSpec::parse(&hex), Ok(ImageSpec::Id(_))));
        assert!(matches!(ImageSpec::parse(&format!("sha256:{hex}")), Ok(ImageSpec::Id(_))));
        assert!(matches!(ImageSpec::parse("abc123"), Ok(ImageSpec::Named(_))));
    }

    #[test]
    fn bad_references_are_rejected_with_a_reason() {
        for s in ["", "UPPER", "api:", "api:-x", "a b", "api@sha256:123", "host:99999/api", "[zz]:5/a", "a//b"] {
            assert!(ImageRef::parse(s).is_err(), "{s:?} should be rejected");
        }
    }
}
