//! The four manifest media types, parsed just far enough: an index (Docker manifest list or
//! OCI index) lists per-platform manifests; an image manifest (Docker v2 or OCI) names its
//! config blob. Annotations are kept from both, labels come from the config blob.

use std::collections::BTreeMap;

use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use serde::Deserialize;

use crate::reference::Digest;

/// The `Accept` header for manifests: all four types, or registries rewrite or 404.
pub fn accept() -> String {
    [OCI_IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE]
        .join(", ")
}

pub use crate::config::observe::Platform;

impl Platform {
    fn matches(&self, p: &RawPlatform) -> bool {
        p.os == self.os && p.architecture == self.architecture && (self.variant.is_none() || self.variant == p.variant)
    }
}

#[derive(Deserialize)]
struct RawManifest {
    manifests: Option<Vec<RawEntry>>,
    config: Option<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawEntry {
    digest: String,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    digest: String,
}

#[derive(Deserialize)]
struct RawConfig {
    config: Option<RawContainerConfig>,
}

#[derive(Deserialize)]
struct RawContainerConfig {
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// A multi-platform index; `chosen` is the entry for the wanted platform, if any.
    Index {
        chosen: Option<Digest>,
        /// Every platform's manifest (attestations, with platform `unknown`, left out).
        entries: Vec<Digest>,
        annotations: BTreeMap<String, String>,
    },
    Image {
        config: Digest,
        annotations: BTreeMap<String, String>,
    },
}

/// Parses a manifest body, picking `platform` from an index.
pub fn parse(bytes: &[u8], platform: &Platform) -> Result<Manifest, String> {
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if let Some(entries) = raw.manifests {
        let chosen = entries
            .iter()
            .find(|e| e.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .map(|e| Digest::parse(&e.digest).map_err(|e| e.to_string()))
            .transpose()?;
        let entries = entries
            .iter()
            .filter(|e| e.platform.as_ref().is_none_or(|p| p.os != "unknown"))
            .map(|e| Digest::parse(&e.digest).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        return Ok(Manifest::Index { chosen, entries, annotations: raw.annotations });
    }
    let config = raw.config.ok_or("neither an index nor an image manifest (no `manifests`, no `config`)")?;
    Ok(Manifest::Image {
        config: Digest::parse(&config.digest).map_err(|e| e.to_string())?,
        annotations: raw.annotations,
    })
}

/// The labels of an image config blob.
pub fn labels(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(raw.config.and_then(|c| c.labels).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_picks_the_platform_and_skips_attestations() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let body = format!(
            r#"{{"manifests": [
              {{"digest": "{}", "platform": {{"os": "unknown", "architecture": "unknown"}}}},
              {{"digest": "{}", "platform": {{"os": "linux", "architecture": "arm64", "variant": "v8"}}}},
              {{"digest": "{}", "platform": {{"os": "linux", "architecture": "amd64"}}}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let pick = |p: &str| match parse(body.as_bytes(), &Platform::parse(p).unwrap()).unwrap() {
            Manifest::Index { chosen, .. } => chosen.map(|c| c.to_string()),
            m => panic!("{m:?}"),
        };
        assert_eq!(pick("linux/amd64"), Some(d('c')));
        assert_eq!(pick("linux/arm64"), Some(d('b')));
        assert_eq!(pick("linux/arm64/v8"), Some(d('b')));
        assert_eq!(pick("linux/s390x"), None);
    }
}
