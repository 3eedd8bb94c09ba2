//! Which repository of the fleet a workload was built from. The config decides first (a
//! service it names, by name, label selector or image); then evidence: the image's
//! `org.opencontainers.image.source` label names a clone's `origin` remote, or a revision
//! label names a commit found in that clone. What nothing claims is listed, never guessed.

use crate::config::Config;
use crate::git::{Lookup, Repo};
use crate::model::{Finding, Workload};

/// One repository as assignment sees it: its share of the config, and the clone when it
/// could be opened.
pub struct Candidate<'a> {
    pub config: &'a Config,
    pub repo: Option<&'a Repo>,
    /// The `--repo` repository: it takes what its config claims when no other does.
    pub default: bool,
}

/// Splits workloads by repository: one list per candidate, in order, and the
/// `unclaimed-images` finding for what none takes.
pub fn assign(workloads: Vec<Workload>, candidates: &[Candidate<'_>]) -> (Vec<Vec<Workload>>, Option<Finding>) {
    let mut out: Vec<Vec<Workload>> = candidates.iter().map(|_| Vec::new()).collect();
    let mut skipped = Vec::new();
    let origins: Vec<Option<String>> =
        candidates.iter().map(|c| c.repo.and_then(|r| r.remote_url("origin")).map(|u| normalise_url(&u))).collect();
    for w in workloads {
        match pick(&w, candidates, &origins) {
            Some(i) => out[i].push(w),
            None => skipped.push(w),
        }
    }
    (out, super::unclaimed(&skipped))
}

fn pick(w: &Workload, candidates: &[Candidate<'_>], origins: &[Option<String>]) -> Option<usize> {
    let named = |c: &Candidate<'_>| {
        w.service.as_deref().is_some_and(|s| c.config.service(s).is_some())
            || c.config.service_for(w.image.named(), &w.labels).is_some()
    };
    let by_image = |c: &Candidate<'_>| c.config.services.iter().any(|s| s.image.is_some());
    candidates
        .iter()
        .position(named)
        .or_else(|| {
            candidates.iter().zip(origins).position(|(c, origin)| {
                !c.default && !by_image(c) && c.repo.is_some_and(|r| built_here(w, r, origin.as_deref()))
            })
        })
        .or_else(|| candidates.iter().position(|c| c.default && super::is_claimed(w, c.config)))
}

/// Whether a workload's image was built from this repository: a revision label names a
/// commit here, or its source label is the (normalised) `origin` remote.
pub fn built_here(w: &Workload, repo: &Repo, origin: Option<&str>) -> bool {
    let ours = super::REVISION_LABELS
        .iter()
        .filter_map(|k| w.labels.get(*k))
        .any(|v| matches!(repo.lookup_commit(v), Lookup::Found(_)));
    let source = w.labels.get(SOURCE_LABEL).map(|s| normalise_url(s));
    ours || (source.is_some() && source.as_deref() == origin.map(normalise_url).as_deref())
}

/// The OCI label naming the repository an image was built from.
pub const SOURCE_LABEL: &str = "org.opencontainers.image.source";

/// `git@github.com:acme/shop.git`, `ssh://git@github.com/acme/shop` and
/// `https://github.com/acme/shop` are one repository: `github.com/acme/shop`.
pub fn normalise_url(url: &str) -> String {
    let u = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let (scheme, u) = match u.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, u),
    };
    let u = u.rsplit_once('@').map(|(_, rest)| rest).unwrap_or(u);
    // scp-like `host:path`; with a scheme, a colon is a port (`ssh://h:22/o/r`).
    let u = match scheme {
        None => u.replacen(':', "/", 1),
        Some(_) => match u.split_once('/') {
            Some((host, path)) => format!("{}/{path}", host.split(':').next().unwrap_or(host)),
            None => u.to_string(),
        },
    };
    u.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::normalise_url;

    #[test]
    fn remotes_in_every_spelling_are_one_repository() {
        for url in [
            "git@github.com:o/r",
            "git@github.com:o/r.git",
            "https://github.com/o/r",
            "https://github.com/o/r.git",
            "https://github.com/O/R/",
            "ssh://git@github.com/o/r",
            "ssh://git@github.com:22/o/r.git",
            "https://user:token@github.com/o/r",
        ] {
            assert_eq!(normalise_url(url), "github.com/o/r", "{url}");
        }
        assert_ne!(normalise_url("https://github.com/o/r2"), "github.com/o/r");
    }
}
