//! `prodiff why COMMIT|TICKET`: gathers the facts the chain needs (git for the change, the
//! registry for its image, the audit for each environment) and hands them to `why`, which
//! decides each link.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use super::fleet::Fleet;
use super::pipeline::{job_summary, join, now, run_findings, Audit};
use crate::cli::{Global, WhyArgs};
use crate::git::Lookup;
use crate::history::contains::{self, PatchIds, Presence, State};
use crate::history::release::Version;
use crate::history::{self, Detail};
use crate::judge::report::{Mainline, Report, SCHEMA_VERSION};
use crate::judge::why::{
    self, CommitFacts, EnvFacts, FirstRan, ImageFact, InRelease, OnMainline, Predecessor, ServiceChain,
};
use crate::ledger::{self, query, Location};
use crate::model::{CommitId, Finding, ImageRef, Level};
use crate::report::why::{self as render, WhyReport};
use crate::report::Format;
use anyhow::Result;

pub(super) fn why(g: &Global, args: &WhyArgs, out: &mut dyn Write) -> Result<u8> {
    // In a fleet, `--service` picks the repository whose chain is walked.
    let mut fleet = Fleet::load(g)?;
    fleet.check_environments(&args.environments)?;
    if let Some(s) = &args.service {
        fleet.only_service_anywhere(s, &args.environments)?;
    }
    let audit = fleet.one(g)?;
    for env in &args.environments {
        if !audit.all.iter().any(|d| &d.environment == env) {
            audit_only_error(&audit, env)?;
        }
    }
    let mainline = Mainline { name: audit.mainline.0.clone(), commit: audit.mainline.1.clone() };
    let mut report = WhyReport {
        schema_version: SCHEMA_VERSION,
        command: "why".into(),
        repository: audit.repo.path().display().to_string(),
        mainline,
        complete: false,
        query: args.item.clone(),
        commits: Vec::new(),
        change: Vec::new(),
        next: None,
        services: Vec::new(),
        findings: run_findings(&audit, args.service.as_deref()),
    };
    let commits = match query(&audit, &args.item)? {
        Ok(c) => c,
        Err(missing) => {
            report.change = vec![why::Link { step: "in the repository", mark: why::Mark::No, evidence: missing }];
            report.next = Some("git fetch --all --tags (or from the remote that has it), then ask again".into());
            render::render(&report, g.format, out)?;
            return Ok(crate::exit::INCOMPLETE);
        }
    };
    let mut pids = PatchIds::default();
    let facts = commits.iter().map(|c| commit_facts(&audit, c, &mut pids)).collect::<Result<Vec<_>>>()?;
    let (change, change_next) = why::change_links(&facts, &audit.mainline.0);
    report.commits = facts.iter().map(|f| f.record.clone()).collect();

    let first_ran = ledger_first_ran(g, &audit, &commits)?;
    let mut envs = environment_facts(&audit, &commits, &facts, &mut pids, args, &first_ran)?;
    let mut images = BTreeMap::new();
    for e in &envs {
        if !images.contains_key(&e.service) {
            let service_envs: Vec<&EnvFacts> = envs.iter().filter(|x| x.service == e.service).collect();
            images
                .insert(e.service.clone(), why::image_link(&image_fact(&audit, g, &e.service, &service_envs, &facts)));
        }
    }
    // What would block a deployment: the denied findings `status` would report, judged by
    // the same policy (this ends the audit).
    let mut audit = audit;
    audit.detail = Detail::Counts;
    let mut rows = audit.compare_with_mainline()?;
    audit.add_promotions(&mut rows)?;
    let status = audit.finish("why", rows)?;
    attach_blockers(&status, &mut envs);

    let now = now()?;
    let mut states = Vec::new();
    let mut by_service: BTreeMap<String, Vec<EnvFacts>> = BTreeMap::new();
    for e in envs {
        by_service.entry(e.service.clone()).or_default().push(e);
    }
    for (service, envs) in by_service {
        let Some(image) = images.remove(&service) else { continue };
        let mut chain = ServiceChain { service: service.clone(), image: image.clone(), environments: Vec::new() };
        for e in envs.iter().filter(|e| args.environments.is_empty() || args.environments.contains(&e.environment)) {
            states.push(e.state);
            chain.environments.push(why::env_chain(e, &change, change_next.as_deref(), image.as_ref(), now));
        }
        if !chain.environments.is_empty() {
            report.services.push(chain);
        }
    }
    let unknown = report
        .services
        .iter()
        .flat_map(|s| &s.environments)
        .flat_map(|e| &e.links)
        .any(|l| l.mark == why::Mark::Unknown);
    report.complete = crate::judge::report::is_complete(
        report.findings.iter().filter(|f| f.code != crate::model::Code::ShallowClone),
    ) && !states.contains(&State::Unknown)
        && !unknown;
    report.change = change;
    report.next = change_next;
    render::render(&report, g.format, out)?;
    job_summary(g, |file| render::render(&report, Format::Markdown, file))?;
    Ok(contains::verdict_of(&states, report.complete || g.allow_incomplete))
}

fn audit_only_error(audit: &Audit, env: &str) -> Result<()> {
    let known: std::collections::BTreeSet<&str> = audit.all.iter().map(|d| d.environment.as_str()).collect();
    anyhow::bail!("no workloads in environment {env:?} (environments seen: {})", join(known))
}

/// When the ledger (configured, or the default file once `record` wrote it) saw each
/// environment/service first run every one of `commits`. No ledger: nothing, and the times
/// come from the replicas' start times. A ledger that cannot be read is a warning, as for
/// `status`.
fn ledger_first_ran(g: &Global, audit: &Audit, commits: &[CommitId]) -> Result<HashMap<(String, String), FirstRan>> {
    let (location, explicit) = Location::choose(g.ledger.as_deref(), &audit.config.ledger, audit.repo.path())?;
    if commits.is_empty() || (!explicit && !location.exists()) {
        return Ok(HashMap::new());
    }
    let mut committed = i64::MIN;
    for c in commits {
        committed = committed.max(audit.repo.commit_info(c)?.committed.timestamp());
    }
    let concerns = |service: &str| -> Result<bool> {
        let paths = audit.config.paths(service);
        for c in commits {
            if paths.is_empty() || audit.repo.touches(c, paths)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let answers = match location
        .open()
        .and_then(|mut store| query::when(store.as_mut(), &audit.repo, commits, committed, concerns))
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("ledger {}: {}", location.describe(), crate::redact::text(&format!("{e:#}")));
            return Ok(HashMap::new());
        }
    };
    Ok(answers
        .into_iter()
        .filter_map(|w| {
            let f = w.first?;
            let first = FirstRan {
                by: ledger::time(f.exact.unwrap_or(f.by)),
                exact: f.exact.is_some(),
                after: f.after.map(ledger::time),
            };
            Some(((w.environment, w.service), first))
        })
        .collect())
}

/// The commits the query stands for; `Err(evidence)` when the repository has none of them
/// (a SHA not fetched, a ticket no commit mentions): an answer, not a failure.
fn query(audit: &Audit, item: &str) -> Result<Result<Vec<CommitId>, String>> {
    let hex = item.len() >= 7 && item.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && audit.repo.lookup_commit(item) == Lookup::NotFound {
        return Ok(Err(format!("no commit {item} in {}", audit.repo.path().display())));
    }
    let commits = match audit.repo.lookup_commit(item) {
        Lookup::Found(c) => vec![c],
        Lookup::Ambiguous => anyhow::bail!("{item:?} matches several objects; give more digits"),
        Lookup::NotFound | Lookup::NotACommit if !audit.config.tickets.is_key(item) => {
            // Not a ticket key: `contains` says why, and what to do.
            return super::contains::query_commits(audit, item, &mut None).map(Ok);
        }
        Lookup::NotFound | Lookup::NotACommit => ticket_commits(audit, item)?,
    };
    if commits.is_empty() {
        return Ok(Err(format!(
            "no commit on any branch, on {} or in anything running mentions {item}",
            audit.mainline.0
        )));
    }
    // A revert mentions the ticket too, but counts against it, not as one of its commits:
    // it shows as the mainline link's evidence.
    let mut kept = Vec::new();
    let mut merges = Vec::new();
    for c in &commits {
        let info = audit.repo.commit_info(c)?;
        if commits.iter().any(|other| other != c && why::reverts(&info.message, other)) {
            continue;
        }
        if info.parents > 1 {
            merges.push(c.clone());
        } else {
            kept.push(c.clone());
        }
    }
    // A merge that mentions it only brings its commits in; it is the change only when the
    // ticket has no commit of its own.
    if kept.is_empty() {
        kept = merges;
    }
    // A cherry-pick of one of its commits is that commit again: keep the mainline's copy.
    let mut by_patch: Vec<(Option<String>, CommitId)> = Vec::new();
    for c in kept {
        let pid = audit.repo.patch_id(&c)?;
        match by_patch.iter_mut().find(|(p, _)| pid.is_some() && p == &pid) {
            Some(entry) if !audit.repo.contains(&audit.mainline.1, &entry.1)? => entry.1 = c,
            Some(_) => {}
            None => by_patch.push((pid, c)),
        }
    }
    Ok(Ok(by_patch.into_iter().map(|(_, c)| c).collect()))
}

/// Every commit mentioning `ticket` in the history of the mainline, of what runs and of
/// every branch (a change may not have left its feature branch yet), newest first.
fn ticket_commits(audit: &Audit, ticket: &str) -> Result<Vec<CommitId>> {
    let _p = crate::diag::progress(format!("finding {ticket} in the history of every branch and of what runs"));
    let mut tips = super::contains::ticket_tips(audit);
    tips.extend(audit.repo.branches()?.into_iter().map(|(_, tip)| tip));
    tips.sort();
    tips.dedup();
    let mut out = Vec::new();
    for id in audit.repo.walk(&tips, &[])? {
        let info = audit.repo.commit_info(&id)?;
        if audit.config.tickets.find(&info.message).iter().any(|t| t == ticket) {
            out.push(id);
        }
    }
    Ok(out)
}

fn commit_facts(audit: &Audit, c: &CommitId, pids: &mut PatchIds) -> Result<CommitFacts> {
    let repo = &audit.repo;
    let record = history::record(repo, c, &audit.config.tickets)?;
    let tip = &audit.mainline.1;
    let info = repo.commit_info(c)?;
    let mut reverted_by = None;
    let mainline = if repo.contains(tip, c)? {
        // Clock skew aside, no first-parent commit older than a day before it holds it.
        let chain = repo.first_parents(tip, info.committed - chrono::Duration::days(1))?;
        let i = why::brought_in(&chain, |m| repo.contains(m, c))?.unwrap_or(0);
        let via = chain.get(i).cloned().unwrap_or_else(|| c.clone());
        let via_info = repo.commit_info(&via)?;
        for later in repo.range(tip, c)? {
            let m = repo.commit_info(&later)?;
            if why::reverts(&m.message, c) {
                reverted_by = Some((later, m.committed));
                break;
            }
        }
        OnMainline::Merged { via, via_subject: via_info.subject, at: via_info.committed }
    } else {
        match contains::present(repo, pids, tip, c)? {
            Presence::Equivalent(p) => {
                let at = repo.commit_info(&p)?.committed;
                OnMainline::Picked { via: p, at }
            }
            Presence::Unknown => OnMainline::Unknown,
            _ => {
                let mut on = Vec::new();
                for (name, branch_tip) in repo.branches()? {
                    if name != audit.mainline.0 && repo.contains(&branch_tip, c)? {
                        on.push(name);
                    }
                }
                if on.is_empty() {
                    OnMainline::Nowhere
                } else {
                    OnMainline::Branches(on)
                }
            }
        }
    };
    Ok(CommitFacts { record, mainline, reverted_by, release: release_of(audit, c, pids)? })
}

/// The first version tag holding `c`, itself or as a cherry-pick.
fn release_of(audit: &Audit, c: &CommitId, pids: &mut PatchIds) -> Result<InRelease> {
    let mut tags: Vec<(Version, String, CommitId)> = audit
        .repo
        .tags()?
        .into_iter()
        .filter_map(|(name, commit)| Version::parse(&name).map(|v| (v, name, commit)))
        .collect();
    if tags.is_empty() {
        return Ok(InRelease::NoVersionTags);
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, name, commit) in &tags {
        match contains::present(&audit.repo, pids, commit, c)? {
            Presence::Deployed => return Ok(InRelease::Tag { tag: name.clone(), picked: None }),
            Presence::Equivalent(p) => return Ok(InRelease::Tag { tag: name.clone(), picked: Some(p) }),
            Presence::Missing | Presence::Unknown => {}
        }
    }
    Ok(InRelease::Untagged { newest: tags.last().map(|t| t.1.clone()) })
}

/// What each service concerned runs in each environment (every environment: a predecessor
/// counts even when `--env` leaves it out), in promotion order.
fn environment_facts(
    audit: &Audit,
    commits: &[CommitId],
    facts: &[CommitFacts],
    pids: &mut PatchIds,
    args: &WhyArgs,
    first_ran: &HashMap<(String, String), FirstRan>,
) -> Result<Vec<EnvFacts>> {
    let release = facts.iter().map(|f| match &f.release {
        InRelease::Tag { tag, .. } => Some(tag.clone()),
        _ => None,
    });
    // The release that holds every commit: the highest of their first releases.
    let release: Option<String> = release
        .collect::<Option<Vec<_>>>()
        .and_then(|tags| tags.into_iter().max_by(|a, b| Version::parse(a).cmp(&Version::parse(b))));
    let mut out: Vec<EnvFacts> = Vec::new();
    let places = super::contains::by_place(&audit.all);
    for ((_, environment, service), deployments) in places {
        if args.service.as_ref().is_some_and(|s| s != &service) {
            continue;
        }
        let relevant = super::contains::relevant(audit, &service, commits)?;
        if relevant.is_empty() {
            continue;
        }
        let paths = audit.config.paths(&service);
        let mut states = Vec::new();
        let mut e = EnvFacts {
            environment: environment.clone(),
            service: service.clone(),
            state: State::Unknown,
            running: Vec::new(),
            replicas: (0, 0),
            lacking: Vec::new(),
            picked: Vec::new(),
            since: None,
            first_ran: first_ran.get(&(environment.clone(), service.clone())).cloned(),
            behind: None,
            predecessor: None,
            seasoning: None,
            blockers: Vec::new(),
            excepted: Vec::new(),
            release: release.clone(),
        };
        for d in &deployments {
            let r = super::contains::running_state(audit, d, &relevant, pids)?;
            let version = d.image.named().and_then(|n| n.tag.clone()).unwrap_or_else(|| d.image.to_string());
            let commit = d.commit.as_ref().map(|c| c.short().to_string()).unwrap_or_else(|| "unresolved".into());
            e.running.push(format!("{version} ({commit})"));
            e.replicas.0 += d.instances.len();
            if matches!(r.state, State::Deployed | State::Equivalent) {
                e.replicas.1 += d.instances.len();
                let start = d.instances.iter().filter_map(|i| i.started_at).min();
                e.since = match (e.since, start) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            for (c, p) in &r.commits {
                match p {
                    Presence::Missing if !e.lacking.contains(c) => e.lacking.push(c.clone()),
                    Presence::Equivalent(x) if !e.picked.contains(x) => e.picked.push(x.clone()),
                    _ => {}
                }
            }
            states.push(r.state);
        }
        e.running.sort();
        e.running.dedup();
        e.state = contains::combine(&states);
        if let [d] = deployments.as_slice() {
            if let (Some(running), false) = (&d.commit, audit.repo.is_shallow()) {
                let cmp = audit.comparisons.compare(
                    &audit.repo,
                    running,
                    (&audit.mainline.0, &audit.mainline.1),
                    paths,
                    &audit.config.tickets,
                    Detail::Counts,
                )?;
                e.behind = Some(cmp.missing().count());
            }
        }
        if let Some(pos) = audit.config.promotion.iter().position(|p| p == &environment) {
            if let Some(pred) = pos.checked_sub(1).map(|p| &audit.config.promotion[p]) {
                e.predecessor = Some(match out.iter().find(|x| &x.environment == pred && x.service == service) {
                    Some(p) => Predecessor::of(p),
                    None => Predecessor {
                        environment: pred.clone(),
                        state: State::NotDeployed,
                        since: None,
                        evidence: "runs no such service".into(),
                    },
                });
            }
        }
        e.seasoning = audit
            .config
            .policy
            .seasoning
            .iter()
            .find(|r| r.environment == environment)
            .map(|r| (r.min_days, r.origin.clone()));
        out.push(e);
    }
    Ok(out)
}

/// Whether an image holding the change exists for `service`: it runs somewhere, or the
/// release's image tag is in the registry.
fn image_fact(audit: &Audit, g: &Global, service: &str, envs: &[&EnvFacts], facts: &[CommitFacts]) -> ImageFact {
    if let Some(e) = envs.iter().find(|e| matches!(e.state, State::Deployed | State::Equivalent)) {
        let image = audit
            .all
            .iter()
            .find(|d| d.environment == e.environment && d.service == service)
            .map(|d| d.image.to_string())
            .unwrap_or_default();
        return ImageFact::Runs { environment: e.environment.clone(), image };
    }
    let Some(tag) = envs.first().and_then(|e| e.release.clone()) else {
        if facts.iter().all(|f| f.release == InRelease::NoVersionTags) {
            return ImageFact::Unknown(
                "nothing runs it, and without version tags which image holds it is unknown".into(),
            );
        }
        return ImageFact::NoRelease;
    };
    let Some(d) = audit.all.iter().find(|d| d.service == service && d.image.named().is_some()) else {
        return ImageFact::Unknown(format!("no running image of {service} names its repository"));
    };
    let tags = super::plan::image_tags_of(audit, d, &tag, &audit.config.git_tags(service));
    let Some(r) = d.image.named() else { return ImageFact::Unknown("no repository".into()) };
    let refs: Vec<String> =
        tags.iter().map(|t| ImageRef { tag: Some(t.clone()), digest: None, ..r.clone() }.familiar()).collect();
    if refs.is_empty() {
        return ImageFact::Unknown(format!("no tag template of {service} maps {tag} to an image tag"));
    }
    if g.offline {
        return ImageFact::Unknown(format!("--offline: the registry was not asked for {}", refs.join(", ")));
    }
    let parsed: Vec<ImageRef> = refs.iter().filter_map(|i| ImageRef::parse(i).ok()).collect();
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return ImageFact::Unknown("no async runtime".into());
    };
    let answers = crate::observe::enrich::tag_digests(&rt, &parsed, &audit.config);
    if let Some(found) = refs.iter().find_map(|i| match answers.get(i) {
        Some(Ok(Some(digest))) => Some(format!("{i}@{digest}")),
        _ => None,
    }) {
        return ImageFact::InRegistry { image: found };
    }
    match refs.iter().find_map(|i| answers.get(i).and_then(|a| a.as_ref().err())) {
        Some(message) => ImageFact::Unknown(format!("cannot ask the registry: {message}")),
        None => ImageFact::Missing { tried: refs },
    }
}

/// Denied findings and excepted ones on (environment, service), from the status report.
fn attach_blockers(report: &Report, envs: &mut [EnvFacts]) {
    for e in envs {
        let here = |f: &&Finding| {
            f.environment.as_deref().is_none_or(|x| x == e.environment)
                && f.service.as_deref().is_none_or(|x| x == e.service)
        };
        let rows = report.results.iter().filter(|r| r.environment == e.environment && r.service == e.service);
        let all: Vec<&Finding> =
            rows.flat_map(|r| r.findings.iter()).chain(report.findings.iter().filter(here)).collect();
        e.blockers = all.iter().filter(|f| f.level == Level::Deny).map(|f| (*f).clone()).collect();
        e.excepted = all.iter().filter(|f| f.suppressed.is_some()).map(|f| (*f).clone()).collect();
    }
}
