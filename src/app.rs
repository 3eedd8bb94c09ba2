//! Orchestration: one short function per command. Each loads the audit (config, repository,
//! sources, resolution), compares, builds a `Report` and hands it to a renderer.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use anyhow::{bail, Context as _, Result};
use tokio::runtime::Runtime;

use crate::cli::{Cli, Command, DiffArgs, Global, StatusArgs};
use crate::compare::Comparison;
use crate::config::Config;
use crate::enrich;
use crate::git::Repo;
use crate::history;
use crate::model::{Code, CommitId, Finding, Workload};
use crate::report::{self, Format, Mainline, Report, Row};
use crate::resolve::{self, Deployment};
use crate::source::inventory;

/// Runs the command and returns its exit code (see `exit`).
/// `rt` is the one runtime (built in `main`) that registry lookups run on.
pub fn run(cli: &Cli, rt: &Runtime, out: &mut dyn Write) -> Result<u8> {
    match &cli.command {
        Command::Status(args) => status(&cli.global, rt, args, out),
        Command::Diff(args) => diff(&cli.global, rt, args, out),
    }
}

fn status(g: &Global, rt: &Runtime, args: &StatusArgs, out: &mut dyn Write) -> Result<u8> {
    let mut audit = Audit::load(g, rt)?;
    if !args.environments.is_empty() {
        audit.check_environments(&args.environments)?;
        audit
            .deployments
            .retain(|d| args.environments.contains(&d.environment));
    }
    let target = audit.mainline.clone();
    let rows = audit.compare_all(|_| Some(target.clone()))?;
    let report = audit.report("status", rows);
    render(&report, g.format, out, report::table::render_status)?;
    Ok(report.exit_code())
}

fn diff(g: &Global, rt: &Runtime, args: &DiffArgs, out: &mut dyn Write) -> Result<u8> {
    let mut audit = Audit::load(g, rt)?;
    audit.check_environments(std::slice::from_ref(&args.environment))?;
    let others: Vec<Deployment> = audit.deployments.clone();
    audit
        .deployments
        .retain(|d| d.environment == args.environment);
    if let Some(s) = &args.service {
        if !audit.deployments.iter().any(|d| &d.service == s) {
            let known: BTreeSet<&str> = audit
                .deployments
                .iter()
                .map(|d| d.service.as_str())
                .collect();
            bail!(
                "no service {s:?} in environment {:?} (services there: {})",
                args.environment,
                join(known)
            );
        }
        audit.deployments.retain(|d| &d.service == s);
    }
    let rows = match args.against.as_deref() {
        None => {
            let target = audit.mainline.clone();
            audit.compare_all(|_| Some(target.clone()))?
        }
        Some(other) if others.iter().any(|d| d.environment == other) => {
            let targets = env_targets(&others, other);
            audit.compare_all(|d| targets.get(&d.service).cloned())?
        }
        Some(rev) => {
            let commit = audit.repo.resolve_rev(rev)?;
            audit.compare_all(|_| Some((rev.to_string(), commit.clone())))?
        }
    };
    let report = audit.report("diff", rows);
    render(&report, g.format, out, report::table::render_diff)?;
    Ok(report.exit_code())
}

/// Each service's single resolved commit in environment `env`, named `env:NAME`. A service
/// running several commits there (or none resolved) has no single counterpart.
fn env_targets(deployments: &[Deployment], env: &str) -> HashMap<String, (String, CommitId)> {
    let mut commits: HashMap<String, BTreeSet<Option<CommitId>>> = HashMap::new();
    for d in deployments.iter().filter(|d| d.environment == env) {
        commits
            .entry(d.service.clone())
            .or_default()
            .insert(d.commit.clone());
    }
    commits
        .into_iter()
        .filter_map(
            |(service, set)| match set.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(c)] => Some((service, (format!("env:{env}"), c.clone()))),
                _ => None,
            },
        )
        .collect()
}

fn render(
    report: &Report,
    format: Format,
    out: &mut dyn Write,
    table: fn(&Report, &mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match format {
        Format::Table => table(report, out),
        Format::Json => report::json::render(report, out),
    }
    .context("writing the report")
}

/// Everything a command needs: repository, config, mainline, resolved deployments.
struct Audit {
    repo: Repo,
    config: Config,
    mainline: (String, CommitId),
    deployments: Vec<Deployment>,
    findings: Vec<Finding>,
}

impl Audit {
    fn load(g: &Global, rt: &Runtime) -> Result<Audit> {
        let repo = Repo::open(&g.repo)?;
        let config = Config::discover(g.config.as_deref(), repo.path())?;
        let mainline = repo.mainline(g.mainline.as_deref().or(config.mainline.as_deref()))?;
        let workloads = gather(g, &config)?;
        let shallow = repo.is_shallow();
        let registry = enrich::enrich(rt, &workloads, &config, g.offline);
        let mut deployments =
            resolve::deployments_with(&workloads, &registry.facts, &config, &repo, shallow);
        // Environments in promotion order (staging before production), then by name.
        let rank = |env: &str| {
            config
                .promotion
                .iter()
                .position(|p| p == env)
                .unwrap_or(usize::MAX)
        };
        deployments.sort_by(|a, b| {
            (rank(&a.environment), &a.environment).cmp(&(rank(&b.environment), &b.environment))
        });
        let mut findings = registry.findings;
        if shallow {
            findings.push(
                Finding::new(
                    Code::ShallowClone,
                    format!(
                        "{} is a shallow clone: commit counts would be wrong, so none are given",
                        repo.path().display()
                    ),
                )
                .hint("git fetch --unshallow --tags (in CI: actions/checkout with fetch-depth: 0)"),
            );
        }
        for env in &config.environments {
            if !workloads.iter().any(|w| w.environment == env.name) {
                let mut f = Finding::new(
                    Code::EmptyEnvironment,
                    "no source reported any workload".to_string(),
                );
                f.environment = Some(env.name.clone());
                findings.push(f);
            }
        }
        Ok(Audit {
            repo,
            config,
            mainline,
            deployments,
            findings,
        })
    }

    fn check_environments(&self, wanted: &[String]) -> Result<()> {
        let known: BTreeSet<&str> = self
            .deployments
            .iter()
            .map(|d| d.environment.as_str())
            .collect();
        for env in wanted {
            if !known.contains(env.as_str()) {
                bail!(
                    "no workloads in environment {env:?} (environments seen: {})",
                    join(known)
                );
            }
        }
        Ok(())
    }

    /// Compares every deployment with the target `target_of` picks for it; one git
    /// comparison per distinct (commit, target, paths).
    fn compare_all(
        &self,
        target_of: impl Fn(&Deployment) -> Option<(String, CommitId)>,
    ) -> Result<Vec<Row>> {
        let mut cache: HashMap<(CommitId, CommitId, Vec<String>), Comparison> = HashMap::new();
        let mut rows = Vec::new();
        for d in &self.deployments {
            let target = target_of(d);
            let cmp = match (&d.commit, &target) {
                (Some(running), Some((name, commit))) if !self.repo.is_shallow() => {
                    let paths = self.config.paths(&d.service).to_vec();
                    let key = (running.clone(), commit.clone(), paths);
                    if !cache.contains_key(&key) {
                        let c = history::compare(
                            &self.repo,
                            running,
                            name,
                            commit,
                            &key.2,
                            &self.config.tickets,
                        )?;
                        cache.insert(key.clone(), c);
                    }
                    let mut c = cache[&key].clone();
                    c.target = name.clone();
                    Some(c)
                }
                _ => None,
            };
            let mut row = Row::new(d.clone(), cmp);
            if target.is_none() && d.commit.is_some() {
                row.findings.push(
                    Finding::new(Code::NoCounterpart, "the environment compared with runs this service on no single resolved commit")
                        .at(&d.environment, &d.service),
                );
            }
            rows.push(row);
        }
        Ok(rows)
    }

    fn report(self, command: &str, results: Vec<Row>) -> Report {
        let complete = !self
            .findings
            .iter()
            .chain(results.iter().flat_map(|r| r.findings.iter()))
            .any(|f| f.code.is_incomplete());
        Report {
            schema_version: report::SCHEMA_VERSION,
            command: command.to_string(),
            repository: self.repo.path().display().to_string(),
            mainline: Mainline {
                name: self.mainline.0,
                commit: self.mainline.1,
            },
            shallow: self.repo.is_shallow(),
            complete,
            results,
            findings: self.findings,
        }
    }
}

/// Workloads from `--inventory` files and every inventory the config lists.
fn gather(g: &Global, config: &Config) -> Result<Vec<Workload>> {
    let mut workloads = Vec::new();
    for path in &g.inventory {
        workloads.extend(inventory::read(path, None)?);
    }
    for env in &config.environments {
        for path in &env.inventories {
            workloads.extend(inventory::read(path, Some(&env.name))?);
        }
    }
    if g.inventory.is_empty() && config.environments.iter().all(|e| e.inventories.is_empty()) {
        bail!("nothing to audit: pass --inventory FILE, or list sources under [environments] in prodiff.toml");
    }
    Ok(workloads)
}

fn join(items: BTreeSet<&str>) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.into_iter().collect::<Vec<_>>().join(", ")
    }
}
