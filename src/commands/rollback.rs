//! `prodiff rollback`: which earlier release is safe to roll back to? Load the audit,
//! walk each service's earlier releases newest first, exclude those that lack a required
//! commit or still carry an excluded one, check the images, recommend, render.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Result};

use super::contains::query_commits;
use super::pipeline::{asking, job_summary, run_findings, running_per_service, shallow, Audit};
use crate::cli::{Global, RollbackArgs};
use crate::history::contains::{self, PatchIds, Presence};
use crate::history::release::{self, Version};
use crate::history::Detail;
use crate::judge::report::SCHEMA_VERSION;
use crate::model::{Code, CommitId, Finding, ImageRef};
use crate::report::workflows::{self, Candidate, Excluded, RollbackReport, ServiceRollback};
use crate::report::Format;
use crate::resolve::Deployment;

pub(super) fn rollback(g: &Global, args: &RollbackArgs, out: &mut dyn Write) -> Result<u8> {
    let audit = Audit::load_for(g, &args.environment, args.service.as_deref())?;
    let mut index = None;
    let mut excluded = Vec::new();
    for item in &args.exclude {
        excluded.push(Excluded { query: item.clone(), commits: query_commits(&audit, item, &mut index)? });
    }
    let mut pids = PatchIds::default();
    let mut services = Vec::new();
    for d in running_per_service(&audit) {
        let Some(running) = &d.commit else {
            bail!(
                "{}/{} runs {}, which resolves to no commit: no rollback can be planned",
                d.environment,
                d.service,
                d.image
            )
        };
        let service = match shallow(&audit, d) {
            Some(f) => empty_rollback(d, running, f),
            None => service_rollback(&audit, d, running, &excluded, (args.limit, args.pre_releases), &mut pids)?,
        };
        services.push(service);
    }
    check_images(&mut services, &audit.config, g.offline)?;
    let judged = |s: &ServiceRollback| s.affected && !s.findings.iter().any(|f| f.code == Code::ShallowClone);
    services.iter_mut().filter(|s| judged(s)).for_each(|s| recommend(s, g.offline));
    for s in &mut services {
        s.findings.iter_mut().for_each(|f| f.level = audit.config.policy.level(f.code));
    }
    let findings = run_findings(&audit, args.service.as_deref());
    let mut report = RollbackReport {
        schema_version: SCHEMA_VERSION,
        command: "rollback".into(),
        repository: audit.repo.path().display().to_string(),
        environment: args.environment.clone(),
        excluded,
        complete: false,
        services,
        findings,
    };
    let all = || report.findings.iter().chain(report.services.iter().flat_map(|s| &s.findings));
    report.complete = crate::judge::report::is_complete(all());
    let code = crate::judge::report::exit_code(all(), report.complete, g.allow_incomplete);
    workflows::render_rollback(&report, g.format, out)?;
    job_summary(g, |file| workflows::render_rollback(&report, Format::Markdown, file))?;
    Ok(code)
}

/// A rollback with no candidates: the clone is shallow.
fn empty_rollback(d: &Deployment, running: &CommitId, f: Finding) -> ServiceRollback {
    ServiceRollback {
        service: d.service.clone(),
        environment: d.environment.clone(),
        image: d.image.to_string(),
        running: running.clone(),
        affected: true,
        candidates: Vec::new(),
        earlier: 0,
        recommendation: None,
        findings: vec![f],
    }
}

fn service_rollback(
    audit: &Audit,
    d: &Deployment,
    running: &CommitId,
    excluded: &[Excluded],
    (limit, pre_releases): (usize, bool),
    pids: &mut PatchIds,
) -> Result<ServiceRollback> {
    let mut rollback = ServiceRollback {
        service: d.service.clone(),
        environment: d.environment.clone(),
        image: d.image.to_string(),
        running: running.clone(),
        affected: true,
        candidates: Vec::new(),
        earlier: 0,
        recommendation: None,
        findings: Vec::new(),
    };
    // Excluding a change concerns only the services that run it.
    if !excluded.is_empty() && !runs_any(audit, running, excluded, pids)? {
        rollback.affected = false;
        return Ok(rollback);
    }
    let releases = earlier_releases(audit, d, running, pre_releases)?;
    rollback.earlier = releases.len();
    for (git_tag, image_tag, commit) in releases.into_iter().take(limit) {
        rollback.candidates.push(candidate(audit, d, running, git_tag, image_tag, commit, excluded, pids)?);
    }
    Ok(rollback)
}

/// Whether `running` contains any excluded change, itself or as a cherry-pick (unknown in
/// a shallow clone counts as yes: it cannot be ruled out).
fn runs_any(audit: &Audit, running: &CommitId, excluded: &[Excluded], pids: &mut PatchIds) -> Result<bool> {
    for c in excluded.iter().flat_map(|e| &e.commits) {
        if !matches!(contains::present(&audit.repo, pids, running, c)?, Presence::Missing) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Asks the registry, once per candidate tag, whether the image still exists and which
/// digest it has now; the recommendation is then pinned by that digest. `--offline` (or an
/// image without a repository) leaves it "not checked".
fn check_images(services: &mut [ServiceRollback], config: &crate::config::Config, offline: bool) -> Result<()> {
    let refs: Vec<ImageRef> =
        services.iter().flat_map(|s| &s.candidates).filter_map(|c| ImageRef::parse(&c.image).ok()).collect();
    if offline || refs.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Handle::try_current().map_err(|e| anyhow::anyhow!("no async runtime: {e}"))?;
    let _p = crate::diag::progress(asking(&refs, "rollback candidate"));
    let answers = crate::observe::enrich::tag_digests(&rt, &refs, config);
    for s in services.iter_mut() {
        for c in &mut s.candidates {
            match answers.get(&c.image) {
                Some(Ok(Some(digest))) => {
                    c.image_exists = Some(true);
                    c.digest = Some(digest.clone());
                }
                Some(Ok(None)) => c.image_exists = Some(false),
                Some(Err(message)) => {
                    let f = Finding::new(
                        Code::RegistryUnreachable,
                        format!("cannot check {} in its registry: {message}", c.image),
                    )
                    .key(c.image.clone())
                    .at(&s.environment, &s.service);
                    s.findings.push(f);
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// The newest candidate free of every excluded change whose image is not known to be gone.
fn recommend(s: &mut ServiceRollback, offline: bool) {
    let pick = s
        .candidates
        .iter()
        .position(|c| c.contains.iter().all(|(_, p)| matches!(p, Presence::Missing)) && c.image_exists != Some(false));
    let Some(i) = pick else {
        let gone = s.candidates.iter().filter(|c| c.image_exists == Some(false)).count();
        let why = match (s.candidates.len(), gone) {
            (0, _) => "there is no earlier release".to_string(),
            (n, 0) => format!("each of the {n} earlier releases contains an excluded change"),
            (n, g) => format!(
                "of the {n} earlier releases, {g} no longer have an image and the others contain an excluded change"
            ),
        };
        // A wider --limit helps only when there are earlier releases it left out.
        let hint = match s.earlier - s.candidates.len() {
            0 => "fix forward".to_string(),
            more => format!("fix forward, or widen --limit ({more} earlier release(s) not judged)"),
        };
        s.findings.push(Finding::new(Code::NoRollbackTarget, why).hint(hint).at(&s.environment, &s.service));
        return;
    };
    s.candidates[i].recommended = true;
    let c = &s.candidates[i];
    if !c.risky_files.is_empty() {
        s.findings.push(
            Finding::new(
                Code::RiskyChange,
                format!("rolling back to {} reverts {}", c.git_tag, c.risky_files.join(", ")),
            )
            .hint("a reverted migration does not undo the schema: check the down-migration first")
            .at(&s.environment, &s.service),
        );
    }
    let asked_and_failed = s.findings.iter().any(|f| f.code == Code::RegistryUnreachable && f.key == c.image);
    s.recommendation = Some(match &c.digest {
        Some(d) => format!("{}@{d}", c.image),
        None if asked_and_failed => format!("{} (not pinned by digest: the registry could not be asked)", c.image),
        None if offline => format!("{} (not pinned by digest: the registry was not asked)", c.image),
        None => format!("{} (not pinned by digest: its registry is unknown)", c.image),
    });
}

/// How many commits of its own a release may have before it joins what runs (a release
/// branch's hotfixes); a tag further away is not an earlier release of this history.
const JOIN_CAP: usize = 2000;

/// Releases to go back to, by history, newest first: the service's release tags that are
/// ancestors of what runs, or that join its history below it with an older version (a
/// release branch: they add commits that do not run, and the candidate says so), ordered by
/// where they join it. A tag that descends from what runs is not earlier whatever its
/// version says, and a release candidate (`-rc.N`) is left out where a release runs, unless
/// `--pre-releases`.
/// Returns (git tag, image tag, commit).
fn earlier_releases(
    audit: &Audit,
    d: &Deployment,
    running: &CommitId,
    pre_releases: bool,
) -> Result<Vec<(String, String, CommitId)>> {
    let templates = audit.config.git_tags(&d.service);
    let releases: Vec<(Option<Version>, String, String, CommitId)> = audit
        .repo
        .tags()?
        .into_iter()
        .filter_map(|(git_tag, commit)| {
            release::image_tag(&git_tag, &templates).map(|t| (Version::parse(&t), git_tag, t, commit))
        })
        .collect();
    let current = releases.iter().filter(|r| &r.3 == running).filter_map(|r| r.0.clone()).max();
    let finals = current.as_ref().is_some_and(|v| !v.is_candidate()) && !pre_releases;
    let history: HashMap<CommitId, usize> =
        audit.repo.walk(std::slice::from_ref(running), &[])?.into_iter().enumerate().map(|(i, c)| (c, i)).collect();
    let mut earlier = Vec::new();
    for (version, git_tag, image_tag, commit) in releases {
        if &commit == running || (finals && version.as_ref().is_some_and(Version::is_candidate)) {
            continue;
        }
        let Some((at, own)) = audit.repo.joins(&commit, &history, JOIN_CAP)? else { continue };
        // At position 0 it descends from what runs: later, whatever its version. Off the
        // history of what runs, it is earlier only if its version is too (1.1.1 for 1.2.0,
        // not 2.41.0 for 2.40.0-hotfix.1).
        let off_older = matches!((&version, &current), (Some(v), Some(cur)) if v < cur);
        if at > 0 && (own == 0 || off_older) {
            earlier.push(((at, std::cmp::Reverse(own), std::cmp::Reverse(version)), git_tag, image_tag, commit));
        }
    }
    earlier.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    let mut seen = std::collections::HashSet::new();
    Ok(earlier.into_iter().filter(|r| seen.insert(r.3.clone())).map(|(_, g, t, c)| (g, t, c)).collect())
}

#[allow(clippy::too_many_arguments)]
fn candidate(
    audit: &Audit,
    d: &Deployment,
    running: &CommitId,
    git_tag: String,
    image_tag: String,
    commit: CommitId,
    excluded: &[Excluded],
    pids: &mut PatchIds,
) -> Result<Candidate> {
    let repo = &audit.repo;
    let paths = audit.config.paths(&d.service);
    let cmp =
        audit.comparisons.compare(repo, running, (&git_tag, &commit), paths, &audit.config.tickets, Detail::Full)?;
    let risky = audit.config.risky_paths(&d.service);
    let risky_files = repo
        .diff_stat(&commit, running)?
        .into_iter()
        .map(|(p, ..)| p)
        .filter(|p| release::under(p, paths) && release::is_risky(p, &risky))
        .collect();
    let mut contains = Vec::new();
    for e in excluded {
        let mut found = Presence::Missing;
        for c in &e.commits {
            let p = contains::present(repo, pids, &commit, c)?;
            if !matches!(p, Presence::Missing) {
                found = p;
                break;
            }
        }
        contains.push((e.query.clone(), found));
    }
    let image = match d.image.named() {
        Some(r) => format!("{}:{image_tag}", r.name().strip_prefix("docker.io/library/").unwrap_or(&r.name())),
        None => format!("{image_tag} (image repository unknown)"),
    };
    Ok(Candidate {
        digest: None,
        git_tag,
        image_tag,
        commit,
        image,
        image_exists: None,
        reverts: cmp.drift().cloned().collect(),
        adds: cmp.added().cloned().collect(),
        risky_files,
        contains,
        recommended: false,
    })
}
