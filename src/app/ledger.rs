//! The ledger commands: `record` (audit like `status`, store what changed), `watch`, `log`,
//! `when` and `metrics`, and the ages `status` shows. Orchestration only: the ledger module
//! does the work.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Context as _, Result};

use crate::cli::{Global, LogArgs, MetricsArgs, RecordArgs, WatchArgs, WhenArgs};
use crate::config::Config;
use crate::git::{Lookup, Repo};
use crate::history::Detail;
use crate::ledger::store::Filter;
use crate::ledger::{events, metrics, query, render, sighting, Location, Sighting, Store};
use crate::model::CommitId;
use crate::report::Format;

/// The repository, its config and the ledger it records into.
struct Opened {
    repo: Repo,
    config: Config,
    location: Location,
}

fn open(g: &Global) -> Result<Opened> {
    let repo = Repo::open(&g.repo)?;
    let config = Config::discover(g.config.as_deref(), repo.path())?;
    let (location, _) = Location::choose(g.ledger.as_deref(), &config.ledger, repo.path())?;
    Ok(Opened { repo, config, location })
}

fn text_formats(g: &Global, command: &str) -> Result<()> {
    if matches!(g.format, Format::Github | Format::Junit) {
        bail!("{command} prints a table, json or markdown, not {:?}", g.format);
    }
    Ok(())
}

/// `prodiff record`: exit 0 when everything was observed, 3 when something was not (what was
/// seen is recorded all the same), 2 when the audit or the ledger failed.
pub(super) fn record(g: &Global, args: &RecordArgs, out: &mut dyn Write) -> Result<u8> {
    let o = open(g)?;
    let mut store = o.location.open()?;
    let sightings =
        if args.import.is_empty() { vec![observe(g, &args.environments, "record")?] } else { imports(&args.import)? };
    let mut complete = true;
    for s in &sightings {
        let outcome = events::record(store.as_mut(), s, &mut events::Git::new(&o.repo, &o.config))?;
        complete &= s.complete;
        summary(out, s, &outcome, &o.location)?;
    }
    Ok(if complete || g.allow_incomplete { crate::exit::CLEAN } else { crate::exit::INCOMPLETE })
}

/// One audit, as a sighting at `now`.
fn observe(g: &Global, environments: &[String], origin: &str) -> Result<Sighting> {
    let at = super::now()?.timestamp();
    let report = super::status_report(g, environments, "record", Detail::Counts)?;
    let value = serde_json::to_value(&report).context("serialising the audit")?;
    sighting::from_report(&value, Some(at), origin)
}

/// Snapshot files as sightings, oldest first.
fn imports(paths: &[std::path::PathBuf]) -> Result<Vec<Sighting>> {
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read snapshot {}", p.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("snapshot {} is not JSON", p.display()))?;
        out.push(sighting::from_report(&value, None, &format!("import {}", p.display()))?);
    }
    out.sort_by_key(|s| s.at);
    Ok(out)
}

fn summary(out: &mut dyn Write, s: &Sighting, o: &events::Outcome, at: &Location) -> Result<()> {
    writeln!(
        out,
        "{} ({}): {} deployment event(s), {} unchanged, into {}",
        crate::ledger::minute(s.at),
        s.origin,
        o.events,
        o.unchanged,
        at.describe()
    )?;
    for f in &s.failed {
        writeln!(out, "  not seen (nothing recorded for it): {f}")?;
    }
    for c in &o.contradicted {
        writeln!(out, "  skipped: {c}")?;
    }
    Ok(())
}

/// `prodiff watch`: exit 0 when stopped by a signal.
pub(super) fn watch(g: &Global, args: &WatchArgs, _out: &mut dyn Write) -> Result<u8> {
    let every = crate::ledger::parse_duration(&args.every).context("--every")?;
    let o = open(g)?;
    let mut store: Option<Box<dyn Store>> = None;
    let rt = tokio::runtime::Handle::try_current().context("no async runtime: call app::run")?;
    let stopped = crate::ledger::watch::run(&rt, std::time::Duration::from_secs(every as u64), || {
        if store.is_none() {
            store = Some(o.location.open()?);
        }
        let s = observe(g, &args.environments, "watch")?;
        let store = store.as_mut().expect("opened above");
        let outcome = events::record(store.as_mut(), &s, &mut events::Git::new(&o.repo, &o.config))?;
        let missing = if s.failed.is_empty() { String::new() } else { format!(", not seen: {}", s.failed.join("; ")) };
        Ok(format!("{} deployment event(s), {} unchanged{missing}", outcome.events, outcome.unchanged))
    })?;
    tracing::info!("watch: {stopped:?}");
    Ok(crate::exit::CLEAN)
}

/// `prodiff log`.
pub(super) fn log(g: &Global, args: &LogArgs, out: &mut dyn Write) -> Result<u8> {
    text_formats(g, "log")?;
    let o = open(g)?;
    let mut store = existing(&o.location)?;
    let since = match &args.since {
        Some(s) => Some(super::now()?.timestamp() - crate::ledger::parse_duration(s).context("--since")?),
        None => None,
    };
    let filter = Filter { environment: args.environment.clone(), service: args.service.clone(), since };
    let spans = query::log(store.as_mut(), &filter)?;
    if spans.is_empty() {
        known(store.as_mut(), &filter)?;
    }
    render::log(&spans, g.format, out)?;
    Ok(crate::exit::CLEAN)
}

/// An environment or service the ledger never saw is a usage error naming what it has.
fn known(store: &mut dyn Store, filter: &Filter) -> Result<()> {
    let all = store.spans(&Filter::default())?;
    if let Some(env) = &filter.environment {
        if !all.iter().any(|s| &s.environment == env) {
            let mut envs: Vec<&str> = all.iter().map(|s| s.environment.as_str()).collect();
            envs.sort();
            envs.dedup();
            bail!("the ledger has no environment {env:?} (environments there: {})", list(envs));
        }
    }
    if let Some(service) = &filter.service {
        if !all.iter().any(|s| &s.service == service) {
            let mut names: Vec<&str> = all.iter().map(|s| s.service.as_str()).collect();
            names.sort();
            names.dedup();
            bail!("the ledger has no service {service:?} (services there: {})", list(names));
        }
    }
    Ok(())
}

fn list(items: Vec<&str>) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The ledger, which must already exist for reading commands.
fn existing(location: &Location) -> Result<Box<dyn Store>> {
    if !location.exists() {
        bail!("no ledger at {}: run `prodiff record` first (or pass --ledger)", location.describe());
    }
    location.open()
}

/// `prodiff when`.
pub(super) fn when(g: &Global, args: &WhenArgs, out: &mut dyn Write) -> Result<u8> {
    text_formats(g, "when")?;
    let o = open(g)?;
    let mut store = existing(&o.location)?;
    let wanted = wanted_commits(&o, store.as_mut(), &args.item)?;
    let mut committed = i64::MIN;
    for c in &wanted {
        committed = committed.max(o.repo.commit_info(c)?.committed.timestamp());
    }
    let concerns = |service: &str| -> Result<bool> {
        let paths = o.config.paths(service);
        if paths.is_empty() {
            return Ok(true);
        }
        for c in &wanted {
            if o.repo.touches(c, paths)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let answers = query::when(store.as_mut(), &o.repo, &wanted, committed, concerns)?;
    let shas: Vec<String> = wanted.iter().map(|c| c.0.clone()).collect();
    render::when(&args.item, &shas, &answers, g.format, out)?;
    Ok(crate::exit::CLEAN)
}

/// A SHA stands for itself; a ticket key for every commit whose message mentions it, in the
/// history of the mainline and of everything the ledger saw run.
fn wanted_commits(o: &Opened, store: &mut dyn Store, item: &str) -> Result<Vec<CommitId>> {
    match o.repo.lookup_commit(item) {
        Lookup::Found(c) => return Ok(vec![c]),
        Lookup::Ambiguous => bail!("{item:?} matches several objects; give more digits"),
        Lookup::NotFound | Lookup::NotACommit => {}
    }
    if !o.config.tickets.is_key(item) {
        bail!("{item:?} is not a commit here, and not a ticket key under the configured patterns");
    }
    let (_, mainline) = o.repo.mainline(o.config.mainline.as_deref())?;
    let mut tips = vec![mainline];
    for s in store.spans(&Filter::default())? {
        for p in s.parts {
            if let Some(Lookup::Found(c)) = p.commit.as_deref().map(|c| o.repo.lookup_commit(c)) {
                tips.push(c);
            }
        }
    }
    tips.sort();
    tips.dedup();
    let mut found = Vec::new();
    for id in o.repo.walk(&tips, &[])? {
        let info = o.repo.commit_info(&id)?;
        if o.config.tickets.find(&info.message).iter().any(|t| t == item) {
            found.push(id);
        }
    }
    if found.is_empty() {
        bail!("no commit in the mainline or in anything the ledger saw run mentions {item}");
    }
    // A cherry-pick of a ticket's commit mentions the ticket too: the originals are the change.
    let picks: Vec<CommitId> = found.clone();
    let mut pids = crate::contains::PatchIds::default();
    let mut originals: Vec<CommitId> = Vec::new();
    let mut seen_patches: HashMap<String, ()> = HashMap::new();
    for c in picks.iter().rev() {
        match pids.get(&o.repo, c)? {
            Some(p) if seen_patches.contains_key(&p) => {}
            Some(p) => {
                seen_patches.insert(p, ());
                originals.push(c.clone());
            }
            None => originals.push(c.clone()),
        }
    }
    Ok(originals)
}

/// `prodiff metrics`.
pub(super) fn metrics(g: &Global, args: &MetricsArgs, out: &mut dyn Write) -> Result<u8> {
    text_formats(g, "metrics")?;
    let o = open(g)?;
    let mut store = existing(&o.location)?;
    let now = super::now()?.timestamp();
    let since = now - crate::ledger::parse_duration(&args.since).context("--since")?;
    let from = store.heartbeats(since)?.first().map(|h| h.at.max(since)).unwrap_or(since);
    let filter = Filter { environment: args.environment.clone(), service: None, since: Some(from) };
    let spans = store.spans(&filter)?;
    if spans.is_empty() {
        known(store.as_mut(), &filter)?;
    }
    let rules = metrics::Rules { fix_window: o.config.ledger.fix_window, fix_pattern: &o.config.ledger.fix_pattern };
    let m = metrics::compute(&spans, from, now, &rules);
    render::metrics(&m, args.environment.as_deref(), g.format, out)?;
    Ok(crate::exit::CLEAN)
}

/// `status` with a ledger (configured, or the default file once `record` wrote it): each
/// row gets how long its image has been running there. A ledger that cannot be read is a
/// warning on stderr, never a failed status.
pub(super) fn add_ages(g: &Global, report: &mut crate::report::Report) -> Result<()> {
    let o = open(g)?;
    let (location, explicit) = Location::choose(g.ledger.as_deref(), &o.config.ledger, o.repo.path())?;
    if !explicit && !location.exists() {
        return Ok(());
    }
    let now = super::now()?.timestamp();
    match location.open().and_then(|mut store| ages(store.as_mut(), report, now)) {
        Ok(()) => {}
        Err(e) => tracing::warn!("ledger {}: {}", location.describe(), crate::redact::text(&format!("{e:#}"))),
    }
    Ok(())
}

fn ages(store: &mut dyn Store, report: &mut crate::report::Report, now: i64) -> Result<()> {
    use crate::ledger::{human, time};
    for row in &mut report.results {
        let filter =
            Filter { environment: Some(row.environment.clone()), service: Some(row.service.clone()), since: None };
        let digests: Vec<String> = serde_json::from_value(serde_json::to_value(&row.digests)?)?;
        let part = crate::ledger::Part {
            image: row.image.clone(),
            commit: row.commit.as_ref().map(|c| c.0.clone()),
            digests,
            replicas: 0,
            started_at: None,
        };
        let key = part.key();
        // The earliest of the latest run of spans that all run this image.
        let mut since = None;
        for s in query::log(store, &filter)? {
            if !s.parts.iter().any(|p| p.key() == key) {
                break;
            }
            since = Some(s);
        }
        let Some(s) = since else { continue };
        let age = match (s.started_at, s.prev_seen) {
            (Some(t), _) => format!("{} ago", human(now - t)),
            (None, Some(a)) => format!("{}–{} ago", human(now - s.first_seen), human(now - a)),
            (None, None) => format!("over {} ago", human(now - s.first_seen)),
        };
        row.deployed = Some(crate::report::Deployed {
            exact: s.started_at.map(time),
            after: s.prev_seen.map(time),
            by: time(s.first_seen),
            age,
        });
    }
    Ok(())
}
