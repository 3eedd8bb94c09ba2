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

use super::pipeline::{self, Audit};
use crate::cli::Global;
use crate::config::fleet::{self as units, Unit as ConfigUnit};
use crate::config::Config;
use crate::git::Repo;
use crate::judge::report::{Report, Repository};
use crate::model::{Code, Finding, Workload};
use crate::observe::{Daemon, Observation};
use crate::resolve::fleet::{assign, Candidate};

/// How many repositories are read at once.
pub(super) const PARALLEL: usize = 4;

/// One repository's share of the run.
pub(super) struct Unit {
    /// What rows call the repository; `None` when it is the only one.
    pub(super) label: Option<String>,
    pub(super) path: PathBuf,
    pub(super) config: Config,
    /// `--mainline` applies here.
    pub(super) mainline_flag: bool,
    /// Its workloads, declared state and reported versions; with one repository, also the
    /// run's findings and daemons.
    pub(super) seen: Observation,
    /// With one repository: `empty-environment` findings, which come last.
    pub(super) empty: Vec<Finding>,
    /// Why the repository cannot be audited (fleet only).
    pub(super) failed: Option<String>,
}

/// The run: its units and, in a fleet, what belongs to no single repository.
pub(super) struct Fleet {
    pub(super) units: Vec<Unit>,
    /// The config as loaded (policy, promotion, every service).
    pub(super) config: Config,
    /// Fleet only: the run's findings (sources, unclaimed images, empty environments).
    pub(super) findings: Vec<Finding>,
    pub(super) daemons: Vec<Daemon>,
}

impl Fleet {
    pub(super) fn is_fleet(&self) -> bool {
        self.units.iter().any(|u| u.label.is_some())
    }

    pub(super) fn load(g: &Global) -> Result<Fleet> {
        let own = match (&g.config, &g.repos_dir, &g.repo) {
            (Some(_), ..) => None,
            // A directory of clones, and no repository of its own: zero-config over them.
            (None, Some(_), None) => None,
            _ => Some(Repo::open(g.repo())?),
        };
        let root = own.as_ref().map(|r| r.path().to_path_buf());
        let mut config = match (&g.config, &root) {
            (None, None) => Config::default(),
            (explicit, root) => Config::discover(explicit.as_deref(), root.as_deref().unwrap_or(g.repo()))?,
        };
        config.policy.override_levels(&g.deny, &g.warn, &g.allow);
        let scanned = match &g.repos_dir {
            Some(dir) => units::scan(dir)?,
            None => Vec::new(),
        };
        let split = units::units(&config, &scanned, g.repo.is_some());
        let fleet = units::is_fleet(&config, &scanned);
        let default_flag = !split.iter().any(|u| u.repo.is_none());
        // One repository: opening it is the first thing that can fail, as it always was.
        let mut opened: Vec<Result<Repo, String>> = Vec::new();
        for u in &split {
            opened.push(match (&u.repo, fleet) {
                (None, false) => Ok(match own {
                    Some(ref r) => Repo::open(r.path())?,
                    None => Repo::open(g.repo())?,
                }),
                (None, true) => Repo::open(g.repo()).map_err(|e| format!("{e:#}")),
                (Some(p), _) => open_clone(p),
            });
        }
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
        let Observation { workloads, findings: observed, declared, reported, daemons } = seen;
        let (mut per_unit, unclaimed) = split_by_unit(workloads, &config, &candidates);
        let empty = empty_environments(&config, per_unit.iter().flatten());
        let (declared, _) = assign(declared, &candidates);
        let mut reported_per: Vec<Vec<_>> = split.iter().map(|_| Vec::new()).collect();
        for r in reported {
            let i = split.iter().position(|u| u.config.service(&r.service).is_some()).unwrap_or(0);
            reported_per[i].push(r);
        }
        let mut findings = observed;
        findings.extend(unclaimed);
        let mut out = Vec::new();
        for (((u, repo), declared), reported) in split.into_iter().zip(opened).zip(declared).zip(reported_per) {
            let ConfigUnit { repo: path, config: unit_config } = u;
            let path = path.unwrap_or_else(|| g.repo().to_path_buf());
            let label = fleet.then(|| label_of(&path, repo.as_ref().ok()));
            let workloads = std::mem::take(&mut per_unit[out.len()]);
            out.push(Unit {
                label,
                mainline_flag: path == g.repo() || default_flag,
                path,
                config: unit_config,
                seen: Observation { workloads, declared, reported, ..Default::default() },
                empty: Vec::new(),
                failed: repo.err(),
            });
        }
        if !fleet {
            let u = &mut out[0];
            u.seen.findings = std::mem::take(&mut findings);
            u.seen.daemons = daemons;
            u.empty = empty;
            return Ok(Fleet { units: out, config, findings: Vec::new(), daemons: Vec::new() });
        }
        findings.extend(empty);
        Ok(Fleet { units: out, config, findings, daemons })
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
        let unit = self.units.pop().expect("one unit");
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
    ) -> Result<Vec<std::result::Result<T, Vec<Finding>>>> {
        let units = std::mem::take(&mut self.units);
        if units.len() == 1 && units[0].label.is_none() {
            let unit = units.into_iter().next().expect("one unit");
            return Ok(vec![Ok(f(Audit::build(g, unit)?)?)]);
        }
        let rt = tokio::runtime::Handle::try_current().ok();
        let queue = Mutex::new(units.into_iter().enumerate().collect::<std::collections::VecDeque<_>>());
        let done = Mutex::new(Vec::new());
        let workers = PARALLEL.min(queue.lock().expect("queue").len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let _rt = rt.as_ref().map(|h| h.enter());
                    while let Some((i, unit)) = queue.lock().expect("queue").pop_front() {
                        let result = audit_unit(g, unit, &f);
                        done.lock().expect("results").push((i, result));
                    }
                });
            }
        });
        let mut done = done.into_inner().expect("results");
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, r)| r).collect())
    }

    /// The reports of each repository as one: rows in promotion order, each naming its
    /// repository, and the run's findings; then judged once by the policy.
    pub(super) fn merge(self, parts: Vec<std::result::Result<Report, Vec<Finding>>>) -> Result<Report> {
        let mut failures = Vec::new();
        let mut reports = Vec::new();
        for p in parts {
            match p {
                Ok(r) => reports.push(r),
                Err(f) => failures.extend(f),
            }
        }
        if reports.is_empty() {
            let why: Vec<String> = failures.iter().map(|f| f.message.clone()).collect();
            bail!("no repository of the fleet could be audited: {}", why.join("; "));
        }
        let fleet = self.is_fleet() || reports.len() > 1 || !failures.is_empty() || !self.findings.is_empty();
        let mut base = reports.remove(0);
        if fleet {
            base.repositories.push(repository_of(&base));
            for r in reports {
                base.repositories.push(repository_of(&r));
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
fn audit_unit<T>(g: &Global, unit: Unit, f: &impl Fn(Audit) -> Result<T>) -> std::result::Result<T, Vec<Finding>> {
    let services = services_of(&unit);
    let path = unit.path.clone();
    let outcome = match unit.failed.clone() {
        Some(why) => Err(why),
        None => Audit::build(g, unit).and_then(f).map_err(|e| format!("{e:#}")),
    };
    outcome.map_err(|why| unavailable(&path, &why, &services))
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
