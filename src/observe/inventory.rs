//! The inventory source: a JSON file (or `-` for stdin) listing workloads, that any deploy
//! script can write. Only `environment` and `image` are required; unknown keys are errors
//! (a misspelt `lables` must not silently drop evidence).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::SourceError;
use crate::model::{Digest, ImageRef, ImageSpec, Workload};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    workloads: Vec<RawWorkload>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    environment: Option<NonEmpty>,
    service: Option<NonEmpty>,
    image: ImageSpec,
    image_id: Option<Digest>,
    #[serde(default)]
    repo_digests: Vec<PinnedRef>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    instance: Option<String>,
    started_at: Option<DateTime<Utc>>,
}

/// A string that must not be empty.
struct NonEmpty(String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(serde::de::Error::custom("must not be empty"));
        }
        Ok(NonEmpty(s))
    }
}

/// `repo@sha256:…`: a reference that must carry a digest.
struct PinnedRef(ImageRef);

impl<'de> Deserialize<'de> for PinnedRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let r = ImageRef::parse(&s).map_err(serde::de::Error::custom)?;
        if r.digest.is_none() {
            return Err(serde::de::Error::custom(format!("repo digest {s:?} has no @sha256:… digest")));
        }
        Ok(PinnedRef(r))
    }
}

/// Reads an inventory. `environment` is the environment the config lists this file under,
/// if any: rows may then omit their own, and must not name another.
pub fn read(path: &Path, environment: Option<&str>) -> Result<Vec<Workload>, SourceError> {
    parse(&super::read_text(path)?, path, environment)
}

/// `read` on text already read (`path` names it in errors).
pub fn parse(text: &str, path: &Path, environment: Option<&str>) -> Result<Vec<Workload>, SourceError> {
    let raw: RawInventory = super::parse_json(path, text)?;
    let origin = format!("inventory {}", path.display());
    raw.workloads
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let env = match (w.environment.map(|e| e.0), environment) {
                (Some(e), Some(want)) if e != want => {
                    return Err(SourceError::Inconsistent {
                        path: path.to_path_buf(),
                        message: format!(
                            "workloads[{i}].environment is {e:?}, but the config lists this file under [environments.{want}]"
                        ),
                    })
                }
                (Some(e), _) => e,
                (None, Some(want)) => want.to_string(),
                (None, None) => {
                    return Err(SourceError::Inconsistent {
                        path: path.to_path_buf(),
                        message: format!("workloads[{i}] has no \"environment\" (required unless the config lists this file under an environment)"),
                    })
                }
            };
            Ok(Workload {
                environment: env,
                service: w.service.map(|s| s.0),
                image: w.image,
                image_id: w.image_id,
                repo_digests: w.repo_digests.into_iter().map(|p| p.0).collect(),
                labels: w.labels,
                instance: w.instance,
                started_at: w.started_at,
                origin: origin.clone(),
                local_only: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_str(json: &str, env: Option<&str>) -> Result<Vec<Workload>, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(json.as_bytes()).unwrap();
        read(f.path(), env).map_err(|e| e.to_string().replace(&f.path().display().to_string(), "INV"))
    }

    #[test]
    fn the_documented_example_parses() {
        let id = format!("sha256:{}", "1".repeat(64));
        let json = format!(
            r#"{{"workloads": [{{"environment": "production", "service": "api",
              "image": "registry.example.com/shop/api:1.4.2", "image_id": "{id}",
              "repo_digests": ["registry.example.com/shop/api@{id}"],
              "labels": {{"org.opencontainers.image.revision": "abc"}},
              "instance": "prod-host-1/api-1", "started_at": "2026-11-20T10:00:00Z"}},
              {{"environment": "staging", "image": "nginx"}}]}}"#
        );
        let w = read_str(&json, None).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].digests().len(), 1);
        assert_eq!(w[0].started_at.unwrap().to_rfc3339(), "2026-11-20T10:00:00+00:00");
        assert_eq!(w[1].image.to_string(), "nginx");
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let e =
            read_str("{\"workloads\": [\n {\"environment\": \"p\",\n  \"image\": \"Bad Image\"}]}", None).unwrap_err();
        assert!(e.starts_with("INV:3:"), "{e}");
        assert!(e.contains("invalid image reference"), "{e}");
        let e = read_str("{\"workloads\": [{\"environment\": \"p\", \"image\": \"a\", \"lables\": {}}]}", None)
            .unwrap_err();
        assert!(e.contains("unknown field `lables`"), "{e}");
        let e = read_str("{\"workloads\": [{\"image\": \"a\"}]}", None).unwrap_err();
        assert!(e.contains("workloads[0] has no \"environment\""), "{e}");
        let e = read_str("{\"workloads\": [{\"environment\": \"\", \"image\": \"a\"}]}", None).unwrap_err();
        assert!(e.contains("must not be empty"), "{e}");
    }

    #[test]
    fn type_errors_name_the_key_and_bad_values_are_cut() {
        let w = r#"{"environment": "p", "image": "a"}"#;
        let json =
            format!(r#"{{"workloads": [{w}, {w}, {w}, {{"environment": "p", "image": "a", "labels": ["x"]}}]}}"#);
        let e = read_str(&json, None).unwrap_err();
        assert!(e.contains("workloads[3].labels: invalid type: sequence, expected a map"), "{e}");
        let huge = "Z".repeat(8 << 20);
        let e =
            read_str(&format!(r#"{{"workloads": [{{"environment": "p", "image": "{huge}"}}]}}"#), None).unwrap_err();
        assert!(e.len() < 1000 && e.contains("workloads[0].image"), "{} bytes: {}", e.len(), &e[..e.len().min(600)]);
    }

    #[test]
    fn invalid_utf8_gives_its_position() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"{\"workloads\": [\n  {\"environment\": \"p\xff\"}]}").unwrap();
        let e = read(f.path(), None).unwrap_err().to_string();
        assert!(e.ends_with(":2:21: invalid UTF-8 (byte 0xff at offset 36)"), "{e}");
    }

    #[test]
    fn a_file_listed_under_an_environment_may_omit_it_but_not_contradict_it() {
        let w = read_str("{\"workloads\": [{\"image\": \"a\"}]}", Some("prod")).unwrap();
        assert_eq!(w[0].environment, "prod");
        let e = read_str("{\"workloads\": [{\"environment\": \"dev\", \"image\": \"a\"}]}", Some("prod")).unwrap_err();
        assert!(e.contains("[environments.prod]"), "{e}");
    }
}
