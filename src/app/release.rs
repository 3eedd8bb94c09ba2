//! The release workflows: `contains` (is it deployed?), `plan` (what would a deploy change?)
//! and `rollback` (which earlier release is safe?). Orchestration only; the decisions live
//! in `contains`, `release` and `compare`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{bail, Result};

use super::Audit;
use crate::cli::{ContainsArgs, Global, PlanArgs, RollbackArgs};
use crate::contains::{self, PatchIds, Presence, State};
use crate::git::Lookup;
use crate::history::{self, Detail};
use crate::model::{Code, CommitId, Finding, ImageRef};
use crate::release::{self, Version};
use crate::report::workflows::{
    self, Answer, Candidate, ContainsReport, Excluded, FileChange, FilePatch, PlanReport, QueryAnswer, RollbackReport,
    Running, ServicePlan, ServiceRollback,
};
use crate::report::{Format, Mainline, SCHEMA_VERSION};
use crate::resolve::Deployment;

pub(super) fn contains(g: &Global, args: &ContainsArgs, out: &mut dyn Write) -> Result<u8> {
    let mut audit = Audit::load(g)?;
    audit.only(&args.environments)?;
    let mut pids = PatchIds::default();
    let mut index = None;
    let mut queries = Vec::new();
    let mut states = Vec::new();
    for item in &args.items {
        let commits = query_commits(&audit, item, &mut index)?;
        let answers = answers(&audit, &commits, &mut pids)?;
        states.extend(answers.iter().map(|a| a.state));
        let records =
            commits.iter().map(|c| history::record(&audit.repo, c, &audit.config.tickets)).collect::<Result<_, _>>()?;
        queries.push(QueryAnswer { query: item.clone(), commits: records, answers });
    }
    let findings = run_findings(&audit, None);
    // A shallow clone leaves an answer unknown only where the known history does not
    // suffice: those answers say so themselves.
    let complete = crate::report::is_complete(findings.iter().filter(|f| f.code != Code::ShallowClone))
        && !states.contains(&State::Unknown);
    let report = ContainsReport {
        schema_version: SCHEMA_VERSION,
        command: "contains".into(),
        repository: audit.repo.path().display().to_string(),
        mainline: Mainline { name: audit.mainline.0.clone(), commit: audit.mainline.1.clone() },
        complete,
        queries,
        findings,
    };
    workflows::render_contains(&report, g.format, out)?;
    super::job_summary(g, |file| workflows::render_contains(&report, Format::Markdown, file))?;
    Ok(contains::verdict_of(&states, complete || g.allow_incomplete))
}

/// A SHA stands for itself; anything else is a ticket key, standing for every commit whose
/// message mentions it in the history of the mainline and of everything running.
fn query_commits(
    audit: &Audit,
    item: &str,
    index: &mut Option<HashMap<String, Vec<CommitId>>>,
) -> Result<Vec<CommitId>> {
    match audit.repo.lookup_commit(item) {
        Lookup::Found(c) => return Ok(vec![c]),
        Lookup::Ambiguous => bail!("{item:?} matches several objects; give more digits"),
        Lookup::NotFound | Lookup::NotACommit => {}
    }
    if index.is_none() {
        *index = Some(ticket_index(audit)?);
    }
    match index.as_ref().and_then(|i| i.get(item)) {
        Some(commits) => Ok(commits.clone()),
        None if !audit.config.tickets.is_key(item) => {
            let texts = match mentions(audit, item)? {
                0 => String::new(),
                1 => " (1 commit message contains it as text)".to_string(),
                n => format!(" ({n} commit messages contain it as text)"),
            };
            bail!(
                "{item:?} is not a commit here, and not a ticket key under the configured patterns{texts}: \
                 add a pattern under [tickets] in prodiff.toml, or ask for the commits themselves"
            )
        }
        None => bail!(
            "{item:?} is not a commit here, and no commit in the history of {} or of anything running mentions it (ticket patterns: see [tickets] in prodiff.toml)",
            audit.mainline.0
        ),
    }
}

/// `asking 127.0.0.1:5000 about 3 rollback candidate image(s)`.
fn asking(refs: &[ImageRef], what: &str) -> String {
    let hosts: std::collections::BTreeSet<&str> = refs.iter().map(|r| r.registry.as_str()).collect();
    format!("asking {} about {} {what} image(s)", hosts.into_iter().collect::<Vec<_>>().join(", "), refs.len())
}

/// How many commit messages in the history `contains` searches hold `text` literally.
fn mentions(audit: &Audit, text: &str) -> Result<usize> {
    let mut n = 0;
    for id in audit.repo.walk(&ticket_tips(audit), &[])? {
        n += usize::from(audit.repo.commit_info(&id)?.message.contains(text));
    }
    Ok(n)
}

fn ticket_tips(audit: &Audit) -> Vec<CommitId> {
    let mut tips = vec![audit.mainline.1.clone()];
    tips.extend(audit.all.iter().filter_map(|d| d.commit.clone()));
    tips.sort();
    tips.dedup();
    tips
}

/// Ticket key -> commits mentioning it, oldest last, from one walk of all relevant history.
fn ticket_index(audit: &Audit) -> Result<HashMap<String, Vec<CommitId>>> {
    let _p = crate::diag::progress("finding ticket keys in the history of the mainline and of what runs");
    let mut index: HashMap<String, Vec<CommitId>> = HashMap::new();
    for id in audit.repo.walk(&ticket_tips(audit), &[])? {
        let info = audit.repo.commit_info(&id)?;
        for t in audit.config.tickets.find(&info.message) {
            index.entry(t).or_default().push(id.clone());
        }
    }
    Ok(index)
}

/// One answer per environment × service the commits concern (a path-filtered service is
/// concerned only by commits touching its paths).
fn answers(audit: &Audit, commits: &[CommitId], pids: &mut PatchIds) -> Result<Vec<Answer>> {
    let mut groups: BTreeMap<(usize, String, String), Vec<&Deployment>> = BTreeMap::new();
    for (i, d) in audit.deployments.iter().enumerate() {
        let order = audit.deployments.iter().position(|x| x.environment == d.environment).unwrap_or(i);
        groups.entry((order, d.environment.clone(), d.service.clone())).or_default().push(d);
    }
    let mut out = Vec::new();
    for ((_, environment, service), deployments) in groups {
        let paths = audit.config.paths(&service);
        let mut relevant = Vec::new();
        for c in commits {
            if paths.is_empty() || audit.repo.touches(c, paths)? {
                relevant.push(c.clone());
            }
        }
        if relevant.is_empty() {
            continue;
        }
        let mut running = Vec::new();
        for d in deployments {
            running.push(running_state(audit, d, &relevant, pids)?);
        }
        let state = contains::combine(&running.iter().map(|r| r.state).collect::<Vec<_>>());
        out.push(Answer { environment, service, state, running });
    }
    Ok(out)
}

fn running_state(audit: &Audit, d: &Deployment, commits: &[CommitId], pids: &mut PatchIds) -> Result<Running> {
    let mut presences = Vec::new();
    if let Some(running) = &d.commit {
        for c in commits {
            presences.push((c.clone(), contains::present(&audit.repo, pids, running, c)?));
        }
    }
    let state = if d.commit.is_some() {
        contains::state_of(&presences.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>())
    } else {
        State::Unknown
    };
    Ok(Running {
        image: d.image.to_string(),
        commit: d.commit.clone(),
        replicas: d.instances.len(),
        state,
        commits: presences,
    })
}

pub(super) fn plan(g: &Global, args: &PlanArgs, out: &mut dyn Write) -> Result<u8> {
    let mut audit = Audit::load(g)?;
    audit.only(std::slice::from_ref(&args.environment))?;
    audit.only_service(args.service.as_deref(), &args.environment)?;
    let env_targets =
        audit.all.iter().any(|d| d.environment == args.to).then(|| super::env_targets(&audit.all, &args.to));
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
    report.complete = crate::report::is_complete(all());
    let code = crate::report::exit_code(all(), report.complete, g.allow_incomplete);
    workflows::render_plan(&report, g.format, out)?;
    super::job_summary(g, |file| workflows::render_plan(&report, Format::Markdown, file))?;
    Ok(code)
}

/// What the audit found about the run and about what runs (an unreachable source or
/// registry, a shallow clone, conflicting evidence), for `service` when one is asked
/// about, at their policy levels: the answer stands on them, as `status` would say.
fn run_findings(audit: &Audit, service: Option<&str>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let about_running = audit.deployments.iter().flat_map(|d| &d.findings);
    for f in audit.findings.iter().chain(about_running) {
        let wanted = service.is_none() || f.service.is_none() || f.service.as_deref() == service;
        if wanted && !findings.contains(f) {
            findings.push(f.clone());
        }
    }
    findings.iter_mut().for_each(|f| f.level = audit.config.policy.level(f.code));
    findings
}

/// In a shallow clone no range can be counted (git walks to the boundary without a word),
/// so plans and rollbacks carry the `shallow-clone` finding `status` gives, and exit 3.
fn shallow(audit: &Audit, d: &Deployment) -> Option<Finding> {
    let f = audit.findings.iter().find(|f| f.code == Code::ShallowClone)?;
    Some(f.clone().at(&d.environment, &d.service))
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

/// Each service's running deployment in the audited environment (the first image when
/// replicas differ: `status` reports that as mixed-versions).
fn running_per_service(audit: &Audit) -> Vec<&Deployment> {
    let mut seen = std::collections::BTreeSet::new();
    audit.deployments.iter().filter(|d| seen.insert(d.service.clone())).collect()
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
fn image_tags_of(audit: &Audit, d: &Deployment, git_tag: &str, templates: &[String]) -> Vec<String> {
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
    cmp: &crate::compare::Comparison,
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

pub(super) fn rollback(g: &Global, args: &RollbackArgs, out: &mut dyn Write) -> Result<u8> {
    let mut audit = Audit::load(g)?;
    audit.only(std::slice::from_ref(&args.environment))?;
    audit.only_service(args.service.as_deref(), &args.environment)?;
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
    report.complete = crate::report::is_complete(all());
    let code = crate::report::exit_code(all(), report.complete, g.allow_incomplete);
    workflows::render_rollback(&report, g.format, out)?;
    super::job_summary(g, |file| workflows::render_rollback(&report, Format::Markdown, file))?;
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
    let answers = crate::enrich::tag_digests(&rt, &refs, config);
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
    let answers = crate::enrich::tag_digests(&rt, &refs, config);
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
