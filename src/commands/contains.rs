//! `prodiff contains`: is a commit (or every commit of a ticket) deployed? Load the audit,
//! turn each item into commits, answer for every running deployment (ancestry, then
//! patch-id equivalence), render. The decisions live in `history::contains`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{bail, Result};

use super::fleet::Fleet;
use super::pipeline::{job_summary, run_findings, Audit};
use crate::cli::{ContainsArgs, Global};
use crate::git::Lookup;
use crate::history::contains::{self, PatchIds, State};
use crate::history::{self};
use crate::judge::report::{Mainline, SCHEMA_VERSION};
use crate::model::{Code, CommitId, Finding};
use crate::report::workflows::{self, Answer, ContainsReport, QueryAnswer, Running};
use crate::report::Format;
use crate::resolve::Deployment;

pub(super) fn contains(g: &Global, args: &ContainsArgs, out: &mut dyn Write) -> Result<u8> {
    let mut fleet = Fleet::load(g)?;
    fleet.check_environments(&args.environments)?;
    if let Some(s) = &args.service {
        fleet.only_service_anywhere(s, &args.environments)?;
    }
    let fleet_mode = fleet.is_fleet();
    let parts = fleet.each(g, |mut audit| {
        audit.only(&args.environments)?;
        if let Some(s) = &args.service {
            audit.deployments.retain(|d| &d.service == s);
        }
        let mut pids = PatchIds::default();
        let mut index = None;
        let mut found = Vec::new();
        for item in &args.items {
            let commits = match query_commits(&audit, item, &mut index) {
                Ok(c) => c,
                // In a fleet, an item need only be found somewhere: a miss here is data.
                Err(e) if fleet_mode => {
                    found.push(Err(format!("{e:#}")));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let answers = answers(&audit, &commits, &mut pids)?;
            let records = commits
                .iter()
                .map(|c| history::record(&audit.repo, c, &audit.config.tickets))
                .collect::<Result<_, _>>()?;
            found.push(Ok(QueryAnswer {
                query: item.clone(),
                repository: audit.label.clone(),
                commits: records,
                answers,
            }));
        }
        let head = (audit.repo.path().display().to_string(), Mainline::of(&audit.mainline));
        Ok((head, found, run_findings(&audit, args.service.as_deref())))
    })?;
    let mut findings = fleet.findings.clone();
    findings.iter_mut().for_each(|f| f.level = fleet.config.policy.level(f.code));
    let mut head = None;
    let mut per_item: Vec<Vec<std::result::Result<QueryAnswer, String>>> = args.items.iter().map(|_| vec![]).collect();
    for part in parts {
        match part {
            Ok((h, found, fs)) => {
                head.get_or_insert(h);
                for (slot, q) in per_item.iter_mut().zip(found) {
                    slot.push(q);
                }
                findings.extend(fs.into_iter().filter(|f| !findings.contains(f)).collect::<Vec<_>>());
            }
            Err(u) => {
                let level = |f: Finding| Finding { level: fleet.config.policy.level(f.code), ..f };
                findings.extend(u.findings.into_iter().map(level))
            }
        }
    }
    let Some((repository, mainline)) = head else { bail!("no repository of the fleet could be audited") };
    let mut queries = Vec::new();
    for (item, answers) in args.items.iter().zip(per_item) {
        let (hits, misses): (Vec<_>, Vec<_>) = answers.into_iter().partition(|a| a.is_ok());
        if hits.is_empty() {
            let why = misses.into_iter().find_map(|m| m.err()).unwrap_or_default();
            bail!("{item:?} is found in no repository of the fleet: {why}");
        }
        queries.extend(hits.into_iter().filter_map(|h| h.ok()));
    }
    let states: Vec<State> = queries.iter().flat_map(|q| q.answers.iter().map(|a| a.state)).collect();
    // A shallow clone leaves an answer unknown only where the known history does not
    // suffice: those answers say so themselves.
    let complete = crate::judge::report::is_complete(findings.iter().filter(|f| f.code != Code::ShallowClone))
        && !states.contains(&State::Unknown);
    let report = ContainsReport {
        schema_version: SCHEMA_VERSION,
        command: "contains".into(),
        repository,
        mainline,
        complete,
        queries,
        findings,
    };
    workflows::render_contains(&report, g.format, out)?;
    job_summary(g, |file| workflows::render_contains(&report, Format::Markdown, file))?;
    Ok(contains::verdict_of(&states, complete || g.allow_incomplete))
}

/// A SHA stands for itself; anything else is a ticket key, standing for every commit whose
/// message mentions it in the history of the mainline and of everything running.
pub(super) fn query_commits(
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

/// How many commit messages in the history `contains` searches hold `text` literally.
fn mentions(audit: &Audit, text: &str) -> Result<usize> {
    let mut n = 0;
    for id in audit.repo.walk(&ticket_tips(audit), &[])? {
        n += usize::from(audit.repo.commit_info(&id)?.message.contains(text));
    }
    Ok(n)
}

pub(super) fn ticket_tips(audit: &Audit) -> Vec<CommitId> {
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
    let mut out = Vec::new();
    for ((_, environment, service), deployments) in by_place(&audit.deployments) {
        let relevant = relevant(audit, &service, commits)?;
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

/// Deployments by (environment's order of appearance, environment, service): one place each.
pub(super) fn by_place(deployments: &[Deployment]) -> BTreeMap<(usize, String, String), Vec<&Deployment>> {
    let mut groups: BTreeMap<(usize, String, String), Vec<&Deployment>> = BTreeMap::new();
    for (i, d) in deployments.iter().enumerate() {
        let order = deployments.iter().position(|x| x.environment == d.environment).unwrap_or(i);
        groups.entry((order, d.environment.clone(), d.service.clone())).or_default().push(d);
    }
    groups
}

/// The commits that concern `service`: all of them, or those touching its paths.
pub(super) fn relevant(audit: &Audit, service: &str, commits: &[CommitId]) -> Result<Vec<CommitId>> {
    let paths = audit.config.paths(service);
    let mut out = Vec::new();
    for c in commits {
        if paths.is_empty() || audit.repo.touches(c, paths)? {
            out.push(c.clone());
        }
    }
    Ok(out)
}

pub(super) fn running_state(
    audit: &Audit,
    d: &Deployment,
    commits: &[CommitId],
    pids: &mut PatchIds,
) -> Result<Running> {
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
