//! `prodiff plan`: what would deploying `--to` change in an environment? Load the audit,
//! pick each service's target, list the commits added and removed, the tickets, the risky
//! files and patches, check the target images, judge, render.

use std::io::Write;

use anyhow::{bail, Result};

use super::pipeline::{asking, job_summary, run_findings, running_per_service, shallow, Audit};
use crate::cli::{Global, PlanArgs};
use crate::history::release::{self};
use crate::history::Detail;
use crate::judge::report::SCHEMA_VERSION;
use crate::model::{Code, CommitId, Finding, ImageRef};
use crate::report::workflows::{self, FileChange, FilePatch, PlanReport, ServicePlan};
use crate::report::Format;
use crate::resolve::Deployment;

pub(super) fn plan(g: &Global, args: &PlanArgs, out: &mut dyn Write) -> Result<u8> {
    let audit = Audit::load_for(g, &args.environment, args.service.as_deref())?;
    let env_targets =
        audit.all.iter().any(|d| d.environment == args.to).then(|| super::pipeline::env_targets(&audit.all, &args.to));
    let mut services = Vec::new();
    for d in running_per_service(&audit) {
        let Some(running) = &d.commit else {
            bail!("{}/{} runs {}, which resolves to no commit: nothing to plan from", d.environment, d.service, d.image)
        };
        let (name, target, image_tags) = match &env_targets {
            Some(t) => {
                let (name, commit) = t.get(&d.service).cloned().ok_or_else(|| {
                    anyhow::anyhow!("{} does not run {} on one resolved commit: nothing to plan to", args.to, d.service)
                })?;
                (name, commit, Vec::new())
            }
            None => plan_target(&audit, d, &args.to)?,
        };
        if let Some(f) = shallow(&audit, d) {
            services.push(shallow_plan(d, running, name, target, f));
            continue;
        }
        let mut plan = service_plan(&audit, d, running, name, target, &args.patch)?;
        // An image tag (or a git tag mapped back to one) names the image to deploy: the
        // registry decides which of the candidate tags exists, and pins it by digest.
        if let Some(r) = d.image.named().filter(|_| !image_tags.is_empty()) {
            plan.image_tags = image_tags
                .iter()
                .map(|t| ImageRef { tag: Some(t.clone()), digest: None, ..r.clone() }.familiar())
                .collect();
            plan.target_image = plan.image_tags.first().cloned();
        }
        services.push(plan);
    }
    if !g.offline {
        check_target_images(&mut services, &audit.config, &args.environment)?;
    }
    let findings = run_findings(&audit, args.service.as_deref());
    let mut report = PlanReport {
        schema_version: SCHEMA_VERSION,
        command: "plan".into(),
        repository: audit.repo.path().display().to_string(),
        environment: args.environment.clone(),
        to: args.to.clone(),
        complete: false,
        services,
        findings,
        presentation: audit.presentation()?,
    };
    for s in &mut report.services {
        s.findings.iter_mut().for_each(|f| f.level = audit.config.policy.level(f.code));
    }
    let all = || report.findings.iter().chain(report.services.iter().flat_map(|s| &s.findings));
    report.complete = crate::judge::report::is_complete(all());
    let code = crate::judge::report::exit_code(all(), report.complete, g.allow_incomplete);
    workflows::render_plan(&report, g.format, out)?;
    job_summary(g, |file| workflows::render_plan(&report, Format::Markdown, file))?;
    Ok(code)
}

/// `--to` for one service: (name, commit, the image tags it may have, most likely first).
/// A git tag (`v1.5.0`) maps back through the service's git_tags to image tags (`1.5.0`);
/// an image tag (`1.5.0`) maps forward to its git tag; any other git ref has no image.
fn plan_target(audit: &Audit, d: &Deployment, to: &str) -> Result<(String, CommitId, Vec<String>)> {
    let templates = audit.config.git_tags(&d.service);
    if let Some(c) = audit.repo.tag_commit(to) {
        return Ok((to.to_string(), c, image_tags_of(audit, d, to, &templates)));
    }
    for template in &templates {
        let tag = template.replace("{tag}", to);
        if let Some(c) = audit.repo.tag_commit(&tag) {
            return Ok((tag, c, vec![to.to_string()]));
        }
    }
    match audit.repo.resolve_rev(to) {
        Ok(c) => Ok((to.to_string(), c, Vec::new())),
        Err(e) => bail!(
            "--to {to:?} is neither an environment, an image tag of {} (git tags {}) nor a git ref: {e}",
            d.service,
            templates.join(", ")
        ),
    }
}

/// The image tags git tag `git_tag` may stand for, through each template in reverse; the
/// template that maps what runs now to its git tag first (the scheme the registry uses).
pub(super) fn image_tags_of(audit: &Audit, d: &Deployment, git_tag: &str, templates: &[String]) -> Vec<String> {
    let running_tag = d.image.named().and_then(|r| r.tag.clone());
    let in_use =
        |t: &String| running_tag.as_ref().is_some_and(|tag| audit.repo.tag_commit(&t.replace("{tag}", tag)).is_some());
    let mut ordered: Vec<&String> = templates.iter().filter(|t| in_use(t)).collect();
    ordered.extend(templates.iter().filter(|t| !in_use(t)));
    let mut tags: Vec<String> = Vec::new();
    for t in ordered {
        if let Some(tag) = release::image_tag(git_tag, std::slice::from_ref(t)) {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    tags
}

fn service_plan(
    audit: &Audit,
    d: &Deployment,
    running: &CommitId,
    name: String,
    target: CommitId,
    patch: &[String],
) -> Result<ServicePlan> {
    let repo = &audit.repo;
    let paths = audit.config.paths(&d.service);
    let cmp = audit.comparisons.compare(repo, running, (&name, &target), paths, &audit.config.tickets, Detail::Full)?;
    let rollback = cmp.goes_back();
    let risky_patterns = audit.config.risky_paths(&d.service);
    let files: Vec<FileChange> = repo
        .diff_stat(running, &target)?
        .into_iter()
        .filter(|(p, ..)| release::under(p, paths))
        .map(|(path, added, removed)| FileChange {
            risky: release::is_risky(&path, &risky_patterns),
            path,
            added,
            removed,
        })
        .collect();
    let mut patches = Vec::new();
    for f in files.iter().filter(|f| patch.iter().any(|p| release::under(&f.path, std::slice::from_ref(p)))) {
        patches.push(FilePatch { path: f.path.clone(), diff: file_diff(repo, running, &target, &f.path)? });
    }
    let mut tickets: Vec<String> = cmp.missing().flat_map(|c| c.tickets.clone()).collect();
    tickets.sort();
    tickets.dedup();
    let findings = plan_findings(d, &cmp, rollback, &files);
    Ok(ServicePlan {
        target_image: None,
        image_tags: Vec::new(),
        service: d.service.clone(),
        image: d.image.to_string(),
        running: running.clone(),
        target: name,
        target_commit: target,
        rollback,
        added: cmp.behind,
        removed: cmp.ahead,
        tickets,
        files,
        patches,
        findings,
    })
}

fn plan_findings(
    d: &Deployment,
    cmp: &crate::history::compare::Comparison,
    rollback: bool,
    files: &[FileChange],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let dropped: Vec<String> = cmp.drift().map(|c| format!("{} {}", c.sha.short(), c.subject)).collect();
    if rollback {
        out.push(
            Finding::new(
                Code::Rollback,
                format!("{} is older than what runs: deploying it reverts {} commit(s)", cmp.target, dropped.len()),
            )
            .at(&d.environment, &d.service),
        );
    } else if !dropped.is_empty() {
        out.push(
            Finding::new(
                Code::DropsCommits,
                format!(
                    "deploying {} drops {} running commit(s) it lacks: {}",
                    cmp.target,
                    dropped.len(),
                    dropped.join("; ")
                ),
            )
            .hint(format!("get them into {} first (merge or cherry-pick)", cmp.target))
            .at(&d.environment, &d.service),
        );
    }
    let risky: Vec<&str> = files.iter().filter(|f| f.risky).map(|f| f.path.as_str()).collect();
    if !risky.is_empty() {
        let verb = if rollback { "reverts" } else { "changes" };
        out.push(
            Finding::new(Code::RiskyChange, format!("{verb} {}", risky.join(", ")))
                .hint("review the migration and its rollback before deploying")
                .at(&d.environment, &d.service),
        );
    }
    out
}

/// A unified diff of one file between two commits.
fn file_diff(repo: &crate::git::Repo, from: &CommitId, to: &CommitId, path: &str) -> Result<String> {
    let text = |c| -> Result<String> {
        Ok(repo.file_at(c, path)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default())
    };
    let (old, new) = (text(from)?, text(to)?);
    let diff = similar::TextDiff::from_lines(&old, &new);
    Ok(diff
        .unified_diff()
        .header(&format!("a/{path} ({})", from.short()), &format!("b/{path} ({})", to.short()))
        .to_string())
}

/// A plan that lists nothing: the clone is shallow.
fn shallow_plan(
    d: &Deployment,
    running: &CommitId,
    target: String,
    target_commit: CommitId,
    f: Finding,
) -> ServicePlan {
    ServicePlan {
        target_image: None,
        image_tags: Vec::new(),
        service: d.service.clone(),
        image: d.image.to_string(),
        running: running.clone(),
        target,
        target_commit,
        rollback: false,
        added: Vec::new(),
        removed: Vec::new(),
        tickets: Vec::new(),
        files: Vec::new(),
        patches: Vec::new(),
        findings: vec![f],
    }
}

/// Asks the registry for each plan's candidate images: the first that exists is the one
/// to deploy, pinned by its digest; an `image-not-in-registry` finding when none does (the
/// deploy would fail to pull), `registry-unreachable` when it could not be asked.
fn check_target_images(plans: &mut [ServicePlan], config: &crate::config::Config, env: &str) -> Result<()> {
    let refs: Vec<ImageRef> =
        plans.iter().flat_map(|p| &p.image_tags).filter_map(|i| ImageRef::parse(i).ok()).collect();
    if refs.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Handle::try_current().map_err(|e| anyhow::anyhow!("no async runtime: {e}"))?;
    let _p = crate::diag::progress(asking(&refs, "target"));
    let answers = crate::observe::enrich::tag_digests(&rt, &refs, config);
    for p in plans.iter_mut().filter(|p| !p.image_tags.is_empty()) {
        let found = p.image_tags.iter().find_map(|i| match answers.get(i) {
            Some(Ok(Some(digest))) => Some(format!("{i}@{digest}")),
            _ => None,
        });
        if found.is_some() {
            p.target_image = found;
            continue;
        }
        let failed: Vec<&String> =
            p.image_tags.iter().filter_map(|i| answers.get(i).and_then(|a| a.as_ref().err())).collect();
        let tried = p.image_tags.join(", ");
        let finding = match failed.first() {
            Some(message) => {
                Finding::new(Code::RegistryUnreachable, format!("cannot check {tried} in its registry: {message}"))
            }
            None => Finding::new(
                Code::ImageNotInRegistry,
                format!("the registry has no {tried}: deploying it would fail to pull"),
            )
            .hint("push the release image first"),
        };
        p.findings.push(finding.key(tried.clone()).at(env, &p.service));
    }
    Ok(())
}
