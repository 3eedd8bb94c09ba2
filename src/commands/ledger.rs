//! What the ledger commands share: the repository, config and ledger they work on, reading
//! an existing ledger, naming what it holds when a filter matches nothing, and the ages
//! `status` shows. The commands themselves are `record`, `watch`, `log`, `when`, `metrics`.

use anyhow::{bail, Result};

use crate::cli::Global;
use crate::config::Config;
use crate::git::Repo;
use crate::judge::report::{Deployed, Report};
use crate::ledger::store::Filter;
use crate::ledger::{query, Location, Store};
use crate::report::Format;

/// The repository, its config and the ledger it records into.
pub(super) struct Opened {
    pub repo: Repo,
    pub config: Config,
    pub location: Location,
}

pub(super) fn open(g: &Global) -> Result<Opened> {
    let repo = Repo::open(g.repo())?;
    let mut config = Config::discover(g.config.as_deref(), repo.path())?;
    // GitHub targets without a `repository` publish to the origin remote's.
    crate::publish::github::default_repository(&mut config.publish, repo.remote_url("origin").as_deref());
    let (location, _) = Location::choose(g.ledger.as_deref(), &config.ledger, repo.path())?;
    Ok(Opened { repo, config, location })
}

pub(super) fn text_formats(g: &Global, command: &str) -> Result<()> {
    if matches!(g.format, Format::Github | Format::Junit) {
        bail!("{command} prints a table, json or markdown, not {:?}", g.format);
    }
    Ok(())
}

/// An environment or service the ledger never saw is a usage error naming what it has.
pub(super) fn known(store: &mut dyn Store, filter: &Filter) -> Result<()> {
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
pub(super) fn existing(location: &Location) -> Result<Box<dyn Store>> {
    if !location.exists() {
        bail!("no ledger at {}: run `prodiff record` first (or pass --ledger)", location.describe());
    }
    location.open()
}

/// `status` with a ledger (configured, or the default file once `record` wrote it): each
/// row gets how long its image has been running there. A ledger that cannot be read is a
/// warning on stderr, never a failed status.
pub(super) fn add_ages(g: &Global, report: &mut Report) -> Result<()> {
    // A ledger belongs to one repository; a fleet's status (several) shows no ages yet.
    if !report.repositories.is_empty() {
        return Ok(());
    }
    let o = open(g)?;
    let (location, explicit) = Location::choose(g.ledger.as_deref(), &o.config.ledger, o.repo.path())?;
    if !explicit && !location.exists() {
        return Ok(());
    }
    let now = super::pipeline::now()?.timestamp();
    match location.open().and_then(|mut store| ages(store.as_mut(), report, now)) {
        Ok(()) => {}
        Err(e) => tracing::warn!("ledger {}: {}", location.describe(), crate::redact::text(&format!("{e:#}"))),
    }
    Ok(())
}

fn ages(store: &mut dyn Store, report: &mut Report, now: i64) -> Result<()> {
    use crate::ledger::{human, time};
    for row in &mut report.results {
        let filter = Filter {
            environment: Some(row.environment.clone()),
            service: Some(row.service.clone()),
            since: None,
            until: None,
        };
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
        row.deployed =
            Some(Deployed { exact: s.started_at.map(time), after: s.prev_seen.map(time), by: time(s.first_seen), age });
    }
    Ok(())
}
