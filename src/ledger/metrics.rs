//! The four DORA keys from what the ledger saw run, each with its sample size, how it was
//! derived and its performance band (the bands of the 2023 State of DevOps report). Pure:
//! deployments in (as `Store::deployments` reads them, or from spans), figures out.
//! Definitions (also in the README):
//!
//! - deployment frequency: `deploy` events (new commits reached an environment/service)
//!   per day over the observed window;
//! - lead time for changes: for every commit a deployment shipped, its commit time to the
//!   deployment (the replica start when known, else the first run that saw it);
//! - change failure rate: deployments whose next change of that service there is a
//!   rollback, or a deployment within `fix_window` shipping a commit matching `fix_pattern`
//!   (a rollout completing in between does not count as that next change);
//! - failed deployment recovery time: from a failed deployment to that next change.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Serialize;

use super::{Deployment, Kind, Span};

/// One figure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figure {
    pub name: &'static str,
    /// The value in its unit (per day, seconds, percent); none without a sample.
    pub value: Option<f64>,
    /// For lead and recovery times: the 90th percentile too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    pub unit: &'static str,
    /// How many deployments (or commits, for lead time) it stands on.
    pub sample: usize,
    pub sample_of: &'static str,
    /// `elite`, `high`, `medium`, `low`; none without a sample.
    pub band: Option<&'static str>,
}

/// What `metrics` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    /// The window: from (the later of --since and the first heartbeat) to now.
    pub from: i64,
    pub to: i64,
    pub deployments: usize,
    pub figures: Vec<Figure>,
}

/// How failures are recognised.
pub struct Rules<'a> {
    pub fix_window: i64,
    pub fix_pattern: &'a Regex,
}

/// The metrics of `spans` (any order) over `from..=to`.
pub fn compute(spans: &[Span], from: i64, to: i64, rules: &Rules) -> Metrics {
    let deployments: Vec<Deployment> = spans.iter().map(Deployment::from).collect();
    compute_from(&deployments, from, to, rules)
}

/// The metrics of `spans` (deployments in any order) over `from..=to`.
pub fn compute_from(spans: &[Deployment], from: i64, to: i64, rules: &Rules) -> Metrics {
    let mut by_service: BTreeMap<(&str, &str), Vec<&Deployment>> = BTreeMap::new();
    for s in spans.iter().filter(|s| s.at() >= from && s.at() <= to) {
        by_service.entry((&s.environment, &s.service)).or_default().push(s);
    }
    let (mut deploys, mut leads, mut failed, mut recoveries) = (0usize, Vec::new(), 0usize, Vec::new());
    for list in by_service.values_mut() {
        list.sort_by_key(|s| s.at());
        for (i, s) in list.iter().enumerate() {
            if s.kind != Kind::Deploy {
                continue;
            }
            deploys += 1;
            leads.extend(s.shipped_at.iter().map(|t| (s.at() - t) as f64));
            // A rollout completing (`changed`) is not the next change: what follows it is.
            let next = list[i + 1..].iter().find(|n| n.kind != Kind::Changed);
            if let Some(next) = next.filter(|n| fixes(s, n, rules)) {
                failed += 1;
                recoveries.push((next.at() - s.at()) as f64);
            }
        }
    }
    let days = ((to - from).max(1) as f64) / 86_400.0;
    let frequency = (deploys > 0).then(|| deploys as f64 / days);
    let rate = (deploys > 0).then(|| 100.0 * failed as f64 / deploys as f64);
    let figures = vec![
        Figure {
            name: "deployment frequency",
            value: frequency,
            p90: None,
            unit: "per day",
            sample: deploys,
            sample_of: "deployments",
            band: frequency.map(frequency_band),
        },
        time_figure("lead time for changes", &mut leads, "commits", lead_band),
        Figure {
            name: "change failure rate",
            value: rate,
            p90: None,
            unit: "percent",
            sample: deploys,
            sample_of: "deployments",
            band: rate.map(failure_band),
        },
        time_figure("failed deployment recovery time", &mut recoveries, "failed deployments", recovery_band),
    ];
    Metrics { from, to, deployments: deploys, figures }
}

/// Whether `next` is the remedy of a failed `s`: a rollback, or a fix soon after.
fn fixes(s: &Deployment, next: &Deployment, rules: &Rules) -> bool {
    match next.kind {
        Kind::Rollback => true,
        Kind::Deploy => {
            next.at() - s.at() <= rules.fix_window && next.subjects().any(|subject| rules.fix_pattern.is_match(subject))
        }
        _ => false,
    }
}

fn time_figure(name: &'static str, values: &mut [f64], of: &'static str, band: fn(f64) -> &'static str) -> Figure {
    values.sort_by(f64::total_cmp);
    let median = percentile(values, 50.0);
    Figure {
        name,
        value: median,
        p90: percentile(values, 90.0),
        unit: "seconds",
        sample: values.len(),
        sample_of: of,
        band: median.map(band),
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

const DAY: f64 = 86_400.0;

fn frequency_band(per_day: f64) -> &'static str {
    match per_day {
        f if f >= 1.0 => "elite",
        f if f >= 1.0 / 7.0 => "high",
        f if f >= 1.0 / 30.0 => "medium",
        _ => "low",
    }
}

fn lead_band(secs: f64) -> &'static str {
    match secs {
        s if s < DAY => "elite",
        s if s < 7.0 * DAY => "high",
        s if s < 30.0 * DAY => "medium",
        _ => "low",
    }
}

fn failure_band(percent: f64) -> &'static str {
    match percent {
        p if p <= 5.0 => "elite",
        p if p <= 10.0 => "high",
        p if p <= 15.0 => "medium",
        _ => "low",
    }
}

fn recovery_band(secs: f64) -> &'static str {
    match secs {
        s if s < 3600.0 => "elite",
        s if s < DAY => "high",
        s if s < 7.0 * DAY => "medium",
        _ => "low",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
    }

    #[test]
    fn bands_at_their_edges() {
        assert_eq!(frequency_band(1.0), "elite");
        assert_eq!(frequency_band(0.2), "high");
        assert_eq!(failure_band(10.0), "high");
        assert_eq!(failure_band(50.0), "low");
        assert_eq!(recovery_band(3599.0), "elite");
        assert_eq!(lead_band(8.0 * DAY), "medium");
    }
}
