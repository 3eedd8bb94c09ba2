//! Declared state: the images a GitOps repository pins for an environment, read at a ref
//! (never from a working tree someone may be editing). docker-compose files, Kubernetes
//! manifests (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod) and Helm values
//! (`image.repository` + `image.tag`, at the top or under a component key) are recognised
//! by their shape; other YAML files are ignored.

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::SourceError;
use crate::git::Repo;
use crate::model::{ImageSpec, Workload};

pub use crate::config::observe::DeclaredSource;

/// The images declared for `environment`, as workloads (one per declared service).
pub fn read(source: &DeclaredSource, environment: &str) -> Result<Vec<Workload>, SourceError> {
    let inconsistent = |message: String| SourceError::Inconsistent { path: source.repo.clone(), message };
    let repo = Repo::open(&source.repo).map_err(|e| inconsistent(e.to_string()))?;
    let commit = repo.resolve_rev(&source.rev).map_err(|e| inconsistent(e.to_string()))?;
    let files = repo.files_at(&commit, &source.path).map_err(|e| inconsistent(e.to_string()))?;
    let mut out = Vec::new();
    for (path, bytes) in files.iter().filter(|(p, _)| p.ends_with(".yaml") || p.ends_with(".yml")) {
        let origin = format!("declared {}@{}:{path}", source.repo.display(), source.rev);
        let text = String::from_utf8_lossy(bytes);
        for (service, image) in images_in(&text).map_err(|e| inconsistent(format!("{path} at {}: {e}", source.rev)))? {
            let image = ImageSpec::parse(&image)
                .map_err(|e| inconsistent(format!("{path} at {}: service {service}: {e}", source.rev)))?;
            out.push(Workload {
                environment: environment.to_string(),
                service: Some(service),
                image,
                image_id: None,
                repo_digests: Vec::new(),
                labels: Default::default(),
                instance: None,
                started_at: None,
                origin: origin.clone(),
                local_only: false,
            });
        }
    }
    Ok(out)
}

/// (service, image reference) pairs a YAML text declares, whatever of the three shapes it has.
pub fn images_in(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if let Some(services) = v.get("services").and_then(Value::as_mapping) {
            compose(services, &mut out);
        } else if v.get("kind").is_some() {
            manifest(&v, &mut out);
        } else {
            helm_values(&v, None, &mut out);
        }
    }
    Ok(out)
}

fn compose(services: &serde_yaml_ng::Mapping, out: &mut Vec<(String, String)>) {
    for (name, svc) in services {
        if let (Some(name), Some(image)) = (name.as_str(), svc.get("image").and_then(Value::as_str)) {
            out.push((name.to_string(), image.to_string()));
        }
    }
}

fn manifest(v: &Value, out: &mut Vec<(String, String)>) {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let pod_spec = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            v.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec"))
        }
        "CronJob" => v
            .get("spec")
            .and_then(|s| s.get("jobTemplate"))
            .and_then(|j| j.get("spec"))
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec")),
        "Pod" => v.get("spec"),
        _ => None,
    };
    let Some(spec) = pod_spec else { return };
    let meta = v.get("metadata");
    let app = meta
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get("app.kubernetes.io/name").or_else(|| l.get("app")))
        .or_else(|| meta.and_then(|m| m.get("name")))
        .and_then(Value::as_str);
    let containers = spec.get("containers").and_then(Value::as_sequence).cloned().unwrap_or_default();
    for c in &containers {
        let (Some(image), Some(name)) = (c.get("image").and_then(Value::as_str), c.get("name").and_then(Value::as_str))
        else {
            continue;
        };
        // The container named like the app (or the only one) is the app; others keep their names.
        let service = match app {
            Some(a) if containers.len() == 1 || name == a => a,
            _ => name,
        };
        out.push((service.to_string(), image.to_string()));
    }
}

/// `image: {repository, tag}` maps, at the top (service named after the repository) or
/// under a component key (`api: {image: …}`: service `api`).
fn helm_values(v: &Value, key: Option<&str>, out: &mut Vec<(String, String)>) {
    let Some(map) = v.as_mapping() else { return };
    if let Some(image) = map.get("image") {
        if let Some(repo) = image.get("repository").and_then(Value::as_str) {
            let reference = match (image.get("tag").and_then(scalar), image.get("digest").and_then(Value::as_str)) {
                (_, Some(d)) => format!("{repo}@{d}"),
                (Some(t), None) => format!("{repo}:{t}"),
                (None, None) => repo.to_string(),
            };
            let service =
                key.map(str::to_string).unwrap_or_else(|| repo.rsplit('/').next().unwrap_or(repo).to_string());
            out.push((service, reference));
        }
    }
    for (k, child) in map {
        if let (Some(k), true) = (k.as_str(), child.is_mapping()) {
            if k != "image" {
                helm_values(child, Some(k), out);
            }
        }
    }
}

/// Helm tags are often numbers in YAML (`tag: 1.5`): keep them as written.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_manifests_and_values_are_recognised() {
        let compose =
            "services:\n  api:\n    image: registry.example.com/shop/api:1.5.0\n  db:\n    image: postgres:16\n";
        assert_eq!(
            images_in(compose).unwrap(),
            [("api".into(), "registry.example.com/shop/api:1.5.0".into()), ("db".into(), "postgres:16".into())]
        );
        let manifests = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-deploy\n  labels:\n    app.kubernetes.io/name: web\n\
                         spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: shop/web:1.4.0\n      - name: envoy\n        image: envoyproxy/envoy:v1.31.0\n\
                         ---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
        assert_eq!(
            images_in(manifests).unwrap(),
            [("web".into(), "shop/web:1.4.0".into()), ("envoy".into(), "envoyproxy/envoy:v1.31.0".into())]
        );
        let values = "replicaCount: 2\nimage:\n  repository: registry.example.com/shop/worker\n  tag: 1.5\nsidecar:\n  image:\n    repository: fluent/fluent-bit\n    tag: \"3.1\"\n";
        assert_eq!(
            images_in(values).unwrap(),
            [
                ("worker".into(), "registry.example.com/shop/worker:1.5".into()),
                ("sidecar".into(), "fluent/fluent-bit:3.1".into())
            ]
        );
        assert!(images_in("a: [unclosed").is_err());
    }
}
