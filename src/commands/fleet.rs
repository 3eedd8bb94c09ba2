//! The fleet step of every command: load the config once, split it into one unit per
//! repository (`config::fleet`), observe every source once, hand each workload to its
//! repository (`resolve::fleet`), then audit the repositories in parallel, at most
//! `PARALLEL` at once, one `Repo` per thread (git2 repositories are not `Sync`), and merge
//! their reports. A repository that cannot be opened is a `repository-unavailable` finding
//! for its services; the others are still audited. One repository: exactly the old path.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Result};

use super::pipeline::{self, Audit, Unit};
use crate::cli::Global;
use crate::config::fleet::{self as units, Unit as ConfigUnit};
use crate::config::Config;
use crate::git::Repo;
use crate::history::Detail;
use crate::judge::report::{Report, Repository};
use crate::model::{Code, Finding, Workload};
use crate::observe::{Daemon, Observation};
use crate::resolve::fleet::{assign, Candidate};

/// How many repositories are read at once.
pub(super) const PARALLEL: usize = 4;

/// The run: its units and, in a fleet, what belongs to no single repository.
pub(super) struct Fleet {
    pub(super) units: Vec<Unit>,
    /// The config as loaded (policy, promotion, every service).
    pub(super) config: Config,
    /// Fleet only: the run's findings (sources, unclaimed images, empty environments).
    pub(super) findings: Vec<Finding>,
    pub(super) daemons: Vec<Daemon>,
    /// More than the `--repo` repository is in play: rows name their repository.
    fleet: bool,
}

/// A repository of the fleet that could not be audited, and the findings saying so.
pub(super) struct Unavailable {
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) findings: Vec<Finding>,
}

impl Fleet {
    pub(super) fn is_fleet(&self) -> bool {
        self.fleet
    }

    /// Config, units, one observation of every source, each workload handed to its unit.
    pub(super) fn load(g: &Global) -> Result<Fleet> {
        let config = load_config(g)?;
        let scanned = match &g.repos_dir {
            Some(dir) => units::scan(dir)?,
            None => Vec::new(),
        };
        let split = units::units(&config, &scanned, g.repo.is_some());
        let fleet = units::is_fleet(&config, &scanned);
        let opened = open_all(g, &split, fleet)?;
        if let (false, Some(Ok(repo))) = (fleet, opened.first()) {
            // One repository: a wrong mainline is said before any source is asked.
            pipeline::mainline_of(repo, &split[0].config, g.mainline.as_deref())?;
        }
        let candidates: Vec<Candidate<'_>> = split
            .iter()
            .zip(&opened)
            .map(|(u, r)| Candidate { config: &u.config, repo: r.as_ref().ok(), default: u.repo.is_none() })
            .collect();
        let seen = pipeline::gather(g, &config, &candidates)?;
        let (shares, findings) = distribute(seen, &config, &candidates);
        drop(candidates);
        let mut units = Vec::new();
        let no_default = !split.iter().any(|u| u.repo.is_none());
        for ((u, repo), seen) in split.into_iter().zip(opened).zip(shares) {
            let path = u.repo.unwrap_or_else(|| g.repo().to_path_buf());
            units.push(Unit {
                label: fleet.then(|| label_of(&path, repo.as_ref().ok())),
                // `--mainline` is the `--repo` repository's, or every one's when none is.
                mainline_flag: path == g.repo() || no_default,
                path,
                config: u.config,
                seen,
                empty: Vec::new(),
                failed: repo.err(),
            });
        }
        let (mut findings, empty, daemons) = findings;
        if !fleet {
            let u = &mut units[0];
            u.seen.findings = findings;
            u.seen.daemons = daemons;
            u.empty = empty;
            return Ok(Fleet { units, config, findings: Vec::new(), daemons: Vec::new(), fleet });
        }
        findings.extend(empty);
        Ok(Fleet { units, config, findings, daemons, fleet })
    }

    /// Every environment some repository runs; an unknown one asked for is an error.
    pub(super) fn check_environments(&self, wanted: &[String]) -> Result<()> {
        let known: BTreeSet<&str> =
            self.units.iter().flat_map(|u| u.seen.workloads.iter().map(|w| w.environment.as_str())).collect();
        for env in wanted {
            if !known.contains(env.as_str()) {
                bail!("no workloads in environment {env:?} (environments seen: {})", pipeline::join(known));
            }
        }
        Ok(())
    }

    /// Whether some repository's workloads run in `env`.
    pub(super) fn runs_environment(&self, env: &str) -> bool {
        self.units.iter().any(|u| u.seen.workloads.iter().any(|w| w.environment == env))
    }

    /// Keeps only the repository that runs `service` in `env` (an unknown one is an error
    /// naming what is there).
    pub(super) fn only_service(&mut self, service: &str, env: &str) -> Result<()> {
        let runs = |u: &Unit| {
            u.seen
                .workloads
                .iter()
                .any(|w| w.environment == env && crate::resolve::service_name(w, &u.config) == service)
        };
        if !self.units.iter().any(runs) {
            let known: BTreeSet<String> = self
                .units
                .iter()
                .flat_map(|u| {
                    u.seen
                        .workloads
                        .iter()
                        .filter(|w| w.environment == env)
                        .map(|w| crate::resolve::service_name(w, &u.config))
                })
                .collect();
            let known = known.iter().map(String::as_str).collect();
            bail!("no service {service:?} in environment {env:?} (services there: {})", pipeline::join(known));
        }
        self.units.retain(runs);
        Ok(())
    }

    /// Keeps only the repository that runs `service` in any of `envs` (all when empty).
    pub(super) fn only_service_anywhere(&mut self, service: &str, envs: &[String]) -> Result<()> {
        let here = |w: &Workload| envs.is_empty() || envs.contains(&w.environment);
        let names = |u: &Unit| -> BTreeSet<String> {
            u.seen.workloads.iter().filter(|w| here(w)).map(|w| crate::resolve::service_name(w, &u.config)).collect()
        };
        if !self.units.iter().any(|u| names(u).contains(service)) {
            let known: BTreeSet<String> = self.units.iter().flat_map(names).collect();
            let known = known.iter().map(String::as_str).collect();
            bail!("no service {service:?} runs in the environments asked (services: {})", pipeline::join(known));
        }
        self.units.retain(|u| names(u).contains(service));
        Ok(())
    }

    /// The one repository a command that needs one audits: with several, `--service` says
    /// which.
    pub(super) fn one(mut self, g: &Global) -> Result<Audit> {
        let names: Vec<String> = self.units.iter().filter_map(|u| u.label.clone()).collect();
        if self.units.len() > 1 {
            bail!("this audit spans {} repositories ({}): pass --service to pick one", names.len(), names.join(", "));
        }
        let Some(unit) = self.units.pop() else { bail!("no repository of this audit runs anything asked about") };
        if let Some(why) = &unit.failed {
            bail!("{}: {why}", unit.path.display());
        }
        let fleet = unit.label.is_some();
        let mut audit = Audit::build(g, unit)?;
        if fleet {
            audit.findings.splice(0..0, self.findings);
            audit.daemons = self.daemons;
        }
        Ok(audit)
    }

    /// Runs `f` on each repository's audit, at most `PARALLEL` at once, in unit order. With
    /// one repository it runs here and an error is the command's; in a fleet, a repository
    /// that cannot be audited gives `Err(finding)` for its services instead.
    pub(super) fn each<T: Send>(
        &mut self,
        g: &Global,
        f: impl Fn(Audit) -> Result<T> + Sync,
    ) -> Result<Vec<std::result::Result<T, Unavailable>>> {
        let units = std::mem::take(&mut self.units);
        if units.len() == 1 && units[0].label.is_none() {
            let unit = units.into_iter().next().expect("one unit");
            return Ok(vec![Ok(f(Audit::build(g, unit)?)?)]);
        }
        let rt = tokio::runtime::Handle::try_current().ok();
        let workers = std::env::var("PRODIFF_REPO_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(PARALLEL);
        Ok(bounded(units, workers.clamp(1, PARALLEL), |unit| {
            let _rt = rt.as_ref().map(|h| h.enter());
            audit_unit(g, unit, &f)
        }))
    }

    /// The reports of each repository as one: rows in promotion order, each naming its
    /// repository, and the run's findings; then judged once by the policy.
    pub(super) fn merge(self, parts: Vec<std::result::Result<Report, Unavailable>>) -> Result<Report> {
        let mut failures = Vec::new();
        let mut reports = Vec::new();
        let mut repositories = Vec::new();
        for p in parts {
            match p {
                Ok(r) => {
                    repositories.push(repository_of(&r));
                    reports.push(r);
                }
                Err(u) => {
                    let path = u.path.display().to_string();
                    repositories.push(Repository { name: u.name, path, mainline: None, shallow: false });
                    failures.extend(u.findings);
                }
            }
        }
        if reports.is_empty() {
            let why: Vec<String> = failures.iter().map(|f| f.message.clone()).collect();
            bail!("no repository of the fleet could be audited: {}", why.join("; "));
        }
        let mut base = reports.remove(0);
        if self.fleet {
            base.repositories = repositories;
            for r in reports {
                base.shallow |= r.shallow;
                base.results.extend(r.results);
                base.declared.extend(r.declared);
                for f in r.findings {
                    if !base.findings.contains(&f) {
                        base.findings.push(f);
                    }
                }
            }
            let rank = |env: &str| self.config.promotion.iter().position(|p| p == env).unwrap_or(usize::MAX);
            base.results
                .sort_by(|a, b| (rank(&a.environment), &a.environment).cmp(&(rank(&b.environment), &b.environment)));
            base.findings.splice(0..0, self.findings);
            base.findings.extend(failures);
            base.daemons = self.daemons;
        }
        base.complete = crate::judge::report::is_complete(base.all_findings());
        self.config.policy.apply(&mut base, pipeline::now()?);
        base.redact();
        Ok(base)
    }
}

/// The config: `--config`, else the repository's `prodiff.toml`; none over a directory of
/// clones (`--repos-dir` without `--repo`). The one-repository error for a directory that
/// is no git repository comes first, as it always did.
fn load_config(g: &Global) -> Result<Config> {
    let own = match (&g.config, &g.repos_dir, &g.repo) {
        (Some(_), ..) | (None, Some(_), None) => None,
        _ => Some(Repo::open(g.repo())?.path().to_path_buf()),
    };
    let mut config = match (&g.config, &own) {
        (None, None) => Config::default(),
        (explicit, root) => Config::discover(explicit.as_deref(), root.as_deref().unwrap_or(g.repo()))?,
    };
    config.policy.override_levels(&g.deny, &g.warn, &g.allow);
    Ok(config)
}

/// Each unit's repository; with one repository, failing to open it is the command's error.
fn open_all(g: &Global, split: &[ConfigUnit], fleet: bool) -> Result<Vec<std::result::Result<Repo, String>>> {
    let mut opened = Vec::new();
    for u in split {
        opened.push(match (&u.repo, fleet) {
            (None, false) => Ok(Repo::open(g.repo())?),
            (None, true) => Repo::open(g.repo()).map_err(|e| format!("{e:#}")),
            (Some(p), _) => open_clone(p),
        });
    }
    Ok(opened)
}

/// The run's findings: from the sources and `unclaimed-images`; `empty-environment` ones;
/// the daemons asked.
type RunFacts = (Vec<Finding>, Vec<Finding>, Vec<Daemon>);

/// What every source saw, split by unit: workloads and declared state by `assign`, reported
/// versions by the unit that configures the service (else the first).
fn distribute(seen: Observation, config: &Config, candidates: &[Candidate<'_>]) -> (Vec<Observation>, RunFacts) {
    let Observation { workloads, findings, declared, reported, daemons } = seen;
    let (workloads, unclaimed) = split_by_unit(workloads, config, candidates);
    let empty = empty_environments(config, workloads.iter().flatten());
    let (declared, _) = assign(declared, candidates);
    let mut shares: Vec<Observation> = workloads
        .into_iter()
        .zip(declared)
        .map(|(workloads, declared)| Observation { workloads, declared, ..Default::default() })
        .collect();
    for r in reported {
        let i = candidates.iter().position(|c| c.config.service(&r.service).is_some()).unwrap_or(0);
        shares[i].reported.push(r);
    }
    let mut findings = findings;
    findings.extend(unclaimed);
    (shares, (findings, empty, daemons))
}

/// `f` over `items` on at most `limit` threads at once; the results in the items' order.
fn bounded<T: Send, R: Send>(items: Vec<T>, limit: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let workers = limit.max(1).min(items.len());
    let queue = Mutex::new(items.into_iter().enumerate().collect::<std::collections::VecDeque<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                // Its own statement: a guard in a `while let` would be held for the whole
                // body, and the items would run one at a time.
                let next = queue.lock().expect("queue").pop_front();
                let Some((i, item)) = next else { break };
                let result = f(item);
                done.lock().expect("results").push((i, result));
            });
        }
    });
    let mut done = done.into_inner().expect("results");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// A clone named in the config: it must exist and be a git repository.
fn open_clone(path: &std::path::Path) -> std::result::Result<Repo, String> {
    if !path.exists() {
        return Err("no such directory".into());
    }
    let repo = Repo::open(path).map_err(|e| format!("{e:#}"))?;
    // `Repository::discover` looks upwards: a plain directory inside another clone is not it.
    let same = |a: &std::path::Path, b: &std::path::Path| a.canonicalize().ok() == b.canonicalize().ok();
    if !same(repo.path(), path) {
        return Err(format!("not a git repository (it lies inside {})", repo.path().display()));
    }
    Ok(repo)
}

/// The clone's directory name as the config (or `--repo`) gives it, as rows show it.
fn label_of(path: &std::path::Path, repo: Option<&Repo>) -> String {
    let name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    name(path)
        .or_else(|| repo.and_then(|r| name(r.path())))
        .or_else(|| path.canonicalize().ok().as_deref().and_then(name))
        .unwrap_or_else(|| path.display().to_string())
}

fn repository_of(r: &Report) -> Repository {
    Repository {
        name: r.results.iter().find_map(|row| row.repository.clone()).unwrap_or_else(|| {
            std::path::Path::new(&r.repository)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        path: r.repository.clone(),
        mainline: Some(r.mainline.clone()),
        shallow: r.shallow,
    }
}

/// Builds one repository's audit and runs `f`; in a fleet, what fails is a finding.
fn audit_unit<T>(g: &Global, unit: Unit, f: &impl Fn(Audit) -> Result<T>) -> std::result::Result<T, Unavailable> {
    let services = services_of(&unit);
    let path = unit.path.clone();
    let name = unit.label.clone().unwrap_or_else(|| label_of(&path, None));
    let outcome = match unit.failed.clone() {
        Some(why) => Err(why),
        None => Audit::build(g, unit).and_then(f).map_err(|e| format!("{e:#}")),
    };
    outcome.map_err(|why| Unavailable { findings: unavailable(&path, &why, &services), name, path })
}

/// `(environment, service)` of every workload the unit was given, and its configured
/// services that run nowhere.
fn services_of(unit: &Unit) -> Vec<(Option<String>, String)> {
    let mut out: Vec<(Option<String>, String)> = unit
        .seen
        .workloads
        .iter()
        .map(|w| (Some(w.environment.clone()), crate::resolve::service_name(w, &unit.config)))
        .collect();
    for s in &unit.config.services {
        if !out.iter().any(|(_, name)| name == &s.name) {
            out.push((None, s.name.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// One `repository-unavailable` finding per service (and environment) it leaves unaudited.
fn unavailable(path: &std::path::Path, why: &str, services: &[(Option<String>, String)]) -> Vec<Finding> {
    let message = |what: &str| format!("{}: {why}: {what} not audited", path.display());
    let hint = "clone it where the config says, or fix the service's `repo`";
    if services.is_empty() {
        return vec![Finding::new(Code::RepositoryUnavailable, message("its services are")).hint(hint)];
    }
    services
        .iter()
        .map(|(env, service)| {
            let mut f = Finding::new(Code::RepositoryUnavailable, message(&format!("service {service} is")))
                .hint(hint)
                .key(path.display().to_string());
            f.environment = env.clone();
            f.service = Some(service.clone());
            f
        })
        .collect()
}

/// Workloads by repository; one repository keeps the old rule (`resolve::claimed`).
fn split_by_unit(
    workloads: Vec<Workload>,
    config: &Config,
    candidates: &[Candidate<'_>],
) -> (Vec<Vec<Workload>>, Option<Finding>) {
    if candidates.len() == 1 && candidates[0].default {
        let (kept, unclaimed) = crate::resolve::claimed(workloads, config);
        return (vec![kept], unclaimed);
    }
    assign(workloads, candidates)
}

/// An `empty-environment` finding for each configured environment no source reported.
fn empty_environments<'a>(config: &Config, workloads: impl Iterator<Item = &'a Workload>) -> Vec<Finding> {
    let seen: BTreeSet<&str> = workloads.map(|w| w.environment.as_str()).collect();
    let mut out = Vec::new();
    for env in &config.environments {
        if !seen.contains(env.name.as_str()) {
            let mut f = Finding::new(Code::EmptyEnvironment, "no source reported any workload".to_string());
            f.environment = Some(env.name.clone());
            out.push(f);
        }
    }
    out
}

pub(super) fn status_report(g: &Global, environments: &[String], command: &str, detail: Detail) -> Result<Report> {
    let mut fleet = Fleet::load(g)?;
    fleet.check_environments(environments)?;
    let parts = fleet.each(g, |mut audit| {
        audit.only(environments)?;
        audit.detail = detail;
        let mut rows = audit.compare_with_mainline()?;
        audit.add_promotions(&mut rows)?;
        let declared = audit.cross_check(&mut rows)?;
        audit.unjudged(command, rows, declared)
    })?;
    fleet.merge(parts)
}

impl Audit {
    /// The audit of the repository running `service` in `env` (any, when none is named),
    /// narrowed to them; an unknown environment or service is an error.
    pub(super) fn load_for(g: &Global, env: &str, service: Option<&str>) -> Result<Audit> {
        let mut fleet = Fleet::load(g)?;
        fleet.check_environments(std::slice::from_ref(&env.to_string()))?;
        if let Some(s) = service {
            fleet.only_service(s, env)?;
        }
        fleet.units.retain(|u| u.seen.workloads.iter().any(|w| w.environment == env));
        let mut audit = fleet.one(g)?;
        audit.only(std::slice::from_ref(&env.to_string()))?;
        audit.only_service(service, env)?;
        Ok(audit)
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Regression: the queue's lock was held while an item ran (a guard in `while let`), so
    /// repositories were read one at a time. Two items that each wait for the other can only
    /// finish when they run at once.
    #[test]
    fn items_run_at_once_up_to_the_bound_and_keep_their_order() {
        // One mailbox per item: each posts to the other's, then waits on its own.
        let (to_a, inbox_a) = mpsc::channel();
        let (to_b, inbox_b) = mpsc::channel();
        let (inbox_a, inbox_b) = (std::sync::Mutex::new(inbox_a), std::sync::Mutex::new(inbox_b));
        let out = bounded(vec!["a", "b"], 4, |item| {
            let (other, mine) = if item == "a" { (&to_b, &inbox_a) } else { (&to_a, &inbox_b) };
            other.send(item).unwrap();
            let heard = mine.lock().unwrap().recv_timeout(Duration::from_secs(30));
            format!("{item} heard {}", heard.expect("the other item never ran alongside"))
        });
        assert_eq!(out, ["a heard b", "b heard a"]);
        let order = bounded((0..20).collect(), 3, |i: u32| i * 2);
        assert_eq!(order, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }
}
