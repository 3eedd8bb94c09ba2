//! A sighting from a report's JSON form: what `record` saw live (the report it just built)
//! and what `record --import` reads from `snapshot` files are parsed by the same code, so a
//! backfill records exactly what a live run would have. An environment with a source that
//! could not be read (or that no source reported) contributes no services: what a run could
//! not see, it does not record.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use chrono::DateTime;
use serde_json::Value;

use super::{Part, Seen, Sighting};

/// The finding codes that mean an environment was not (fully) seen.
const BLIND: &[&str] = &["source-unreachable", "empty-environment"];

/// Parses a report (or snapshot) JSON. `at` is the run's time when the report carries none
/// (`observed_at`, which snapshots have).
pub fn from_report(report: &Value, at: Option<i64>, origin: &str) -> Result<Sighting> {
    let at = match report.get("observed_at").and_then(Value::as_str) {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("{origin}: observed_at {t:?} is not an RFC 3339 time"))?
            .timestamp(),
        None => at.with_context(|| {
            format!("{origin}: the snapshot has no observed_at time (written by an older prodiff): it cannot be placed in time")
        })?,
    };
    let results = report
        .get("results")
        .and_then(Value::as_array)
        .with_context(|| format!("{origin}: not a prodiff snapshot (no results array)"))?;
    let mut failed = Vec::new();
    let mut blind = BTreeSet::new();
    let run_findings = report.get("findings").and_then(Value::as_array).into_iter().flatten();
    let row_findings = results.iter().flat_map(|r| r.get("findings").and_then(Value::as_array).into_iter().flatten());
    for f in run_findings.chain(row_findings) {
        let code = f.get("code").and_then(Value::as_str).unwrap_or_default();
        if !BLIND.contains(&code) {
            continue;
        }
        let env = f.get("environment").and_then(Value::as_str);
        let message = f.get("message").and_then(Value::as_str).unwrap_or_default();
        failed.push(crate::redact::text(&format!("{}: {message}", env.unwrap_or("*"))));
        // A source failure no environment owns blinds the whole run.
        blind.insert(env.unwrap_or("*").to_string());
    }
    failed.sort();
    failed.dedup();
    let mut services: BTreeMap<(String, String), Vec<Part>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        let env = field(r, "environment", origin, i)?;
        let service = field(r, "service", origin, i)?;
        if blind.contains(&env) || blind.contains("*") {
            continue;
        }
        services.entry((env, service)).or_default().push(part(r, origin, i)?);
    }
    let complete = report.get("complete").and_then(Value::as_bool).unwrap_or(false);
    let seen =
        services.into_iter().map(|((environment, service), parts)| Seen { environment, service, parts }).collect();
    Ok(Sighting { at, complete, failed, seen, origin: origin.to_string() })
}

fn field(r: &Value, name: &str, origin: &str, i: usize) -> Result<String> {
    r.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("{origin}: results[{i}].{name} is missing or not a string"))
}

fn part(r: &Value, origin: &str, i: usize) -> Result<Part> {
    let strings = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = r
            .get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let instances = r.get("instances").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut started = None;
    for (j, inst) in instances.iter().enumerate() {
        if let Some(t) = inst.get("started_at").and_then(Value::as_str) {
            let t = DateTime::parse_from_rfc3339(t)
                .with_context(|| {
                    format!("{origin}: results[{i}].instances[{j}].started_at {t:?} is not an RFC 3339 time")
                })?
                .timestamp();
            started = Some(started.map_or(t, |s: i64| s.min(t)));
        }
    }
    Ok(Part {
        image: field(r, "image", origin, i)?,
        commit: r.get("commit").and_then(Value::as_str).map(str::to_string),
        digests: strings("digests"),
        replicas: instances.len().max(1),
        started_at: started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_environment_contributes_nothing_and_the_run_is_incomplete() {
        let report = serde_json::json!({
            "observed_at": "2026-01-02T10:00:00Z",
            "complete": false,
            "results": [
                {"environment": "eu", "service": "api", "image": "r/api:1", "commit": "aa", "digests": [],
                 "instances": [{"started_at": "2026-01-02T09:00:00Z"}, {"started_at": "2026-01-02T08:00:00Z"}], "findings": []},
                {"environment": "us", "service": "api", "image": "r/api:1", "commit": "aa", "digests": [], "instances": [], "findings": []}
            ],
            "findings": [{"code": "source-unreachable", "environment": "us", "message": "docker tcp://h:2375: refused"}]
        });
        let s = from_report(&report, None, "test").unwrap();
        assert_eq!(s.at, 1_767_348_000);
        assert!(!s.complete);
        assert_eq!(s.failed, vec!["us: docker tcp://h:2375: refused"]);
        assert_eq!(s.seen.len(), 1);
        assert_eq!(s.seen[0].environment, "eu");
        assert_eq!(s.seen[0].parts[0].replicas, 2);
        assert_eq!(s.seen[0].parts[0].started_at, Some(1_767_340_800));
    }

    #[test]
    fn a_snapshot_without_a_time_is_refused_saying_why() {
        let e = from_report(&serde_json::json!({"results": []}), None, "old.json").unwrap_err();
        assert!(e.to_string().contains("old.json: the snapshot has no observed_at"), "{e}");
    }
}
