//! The shared steps of every command: load the audit (config, repository, sources,
//! resolution), narrow it, compare with history, cross-check, finish the report (the
//! policy judges it) and emit it. Commands are short stories told with these steps.

use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};

use crate::cli::{ColorChoice, Global};
use crate::config::report::Links;
use crate::config::Config;
use crate::git::Lookup;
use crate::git::Repo;
use crate::history::{self, Detail};
use crate::judge::crosscheck;
use crate::judge::report::{Mainline, Presentation, Report, Row};
use crate::model::{Code, CommitId, Finding, ImageRef};
use crate::observe::enrich;
use crate::observe::versions::{self, Reported};
use crate::observe::{declared as declared_source, docker, http, inventory, kubernetes, Observation};
use crate::report::{self, Format, View};
use crate::resolve::fleet::Candidate;
use crate::resolve::{self, Deployment};

/// The status of the chosen environments (all when none), compared with the mainline and
/// judged by the policy.
/// The status table shows how many commits each row lacks, never which: those need not be
/// read. Every other format lists them.
pub(super) fn counts_only(g: &Global) -> Detail {
    if g.format == Format::Table {
        Detail::Counts
    } else {
        Detail::Full
    }
}

/// The mainline: `--mainline`, else the config's, else detected.
pub(super) fn mainline_of(repo: &Repo, config: &Config, flag: Option<&str>) -> Result<(String, CommitId)> {
    Ok(match (flag, config.mainline.as_deref()) {
        (None, Some(m)) => repo.mainline(Some(m)).with_context(|| listed_in(config, &format!("mainline = {m:?}")))?,
        (flag, _) => repo.mainline(flag)?,
    })
}

/// In a fleet, a finding about one repository is scoped to each service resolved there.
fn scoped(f: Finding, fleet: bool, deployments: &[Deployment]) -> Vec<Finding> {
    let pairs: BTreeSet<(&str, &str)> =
        deployments.iter().map(|d| (d.environment.as_str(), d.service.as_str())).collect();
    if !fleet || pairs.is_empty() {
        return vec![f];
    }
    pairs.into_iter().map(|(env, service)| f.clone().at(env, service)).collect()
}

/// Renders the report (and the GitHub job summary when asked for) and returns the exit code.
pub(super) fn emit(report: &Report, view: View, g: &Global, out: &mut dyn Write) -> Result<u8> {
    report::render(report, view, g.format, use_color(g.color), out).context("writing the report")?;
    job_summary(g, |file| report::markdown::render(report, view, file))?;
    Ok(report.exit_code(g.allow_incomplete))
}

/// With `--format github` and `GITHUB_STEP_SUMMARY` set, appends the markdown rendering to
/// the job summary.
pub(super) fn job_summary(g: &Global, render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    if g.format != Format::Github {
        return Ok(());
    }
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open GITHUB_STEP_SUMMARY {}", path.to_string_lossy()))?;
    let mut file = crate::redact::Writer::new(&mut file);
    render(&mut file).and_then(|()| file.finish()).context("writing the job summary")
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// "Now" for policies (lag in days, exception expiry): `PRODIFF_NOW` (RFC 3339) when set,
/// so a run can be reproduced; the clock otherwise.
pub(super) fn now() -> Result<DateTime<Utc>> {
    match std::env::var("PRODIFF_NOW") {
        Ok(s) => Ok(DateTime::parse_from_rfc3339(&s)
            .with_context(|| format!("PRODIFF_NOW={s:?} is not an RFC 3339 time like 2026-11-22T12:00:00Z"))?
            .with_timezone(&Utc)),
        Err(_) => Ok(Utc::now()),
    }
}

/// Each service's single resolved commit in environment `env`, named `env:NAME`. A service
/// running several commits there (or none resolved) has no single counterpart.
pub(super) fn env_targets(deployments: &[Deployment], env: &str) -> HashMap<String, (String, CommitId)> {
    let mut commits: HashMap<String, BTreeSet<Option<CommitId>>> = HashMap::new();
    for d in deployments.iter().filter(|d| d.environment == env) {
        commits.entry(d.service.clone()).or_default().insert(d.commit.clone());
    }
    commits
        .into_iter()
        .filter_map(|(service, set)| match set.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(c)] => Some((service, (format!("env:{env}"), c.clone()))),
            _ => None,
        })
        .collect()
}

/// Everything a command needs: repository, config, mainline, resolved deployments.
pub(super) struct Audit {
    pub(super) repo: Repo,
    pub(super) config: Config,
    /// What rows call this repository when the audit spans several.
    pub(super) label: Option<String>,
    pub(super) mainline: (String, CommitId),
    /// Every deployment seen, whatever the command selects.
    pub(super) all: Vec<Deployment>,
    /// The deployments the command reports on.
    pub(super) deployments: Vec<Deployment>,
    /// What GitOps repositories declare, resolved like what runs.
    pub(super) declared: Vec<Deployment>,
    /// What version stores report, with the commit each names here.
    pub(super) reported: Vec<(Reported, Option<CommitId>)>,
    pub(super) findings: Vec<Finding>,
    /// The Docker daemons asked (for the report header).
    pub(super) daemons: Vec<crate::observe::Daemon>,
    /// How much of the mainline's side comparisons read: everything, unless the view only
    /// counts it.
    pub(super) detail: Detail,
    /// The comparisons made so far in this run.
    pub(super) comparisons: history::Memo,
}

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

impl Audit {
    /// One repository's audit: its mainline, its workloads resolved against it.
    pub(super) fn build(g: &Global, unit: Unit) -> Result<Audit> {
        let Unit { label, path, config, mainline_flag, seen, empty, .. } = unit;
        let repo = Repo::open(&path)?;
        let mainline = mainline_of(&repo, &config, g.mainline.as_deref().filter(|_| mainline_flag))?;
        let Observation { workloads, findings: observed, declared, reported, daemons } = seen;
        let shallow = repo.is_shallow();
        let mut declared = resolve::deployments(&declared, &config, &repo, shallow);
        let reported = reported
            .into_iter()
            .map(|r| {
                let commit = match repo.lookup_commit(&r.value) {
                    Lookup::Found(c) => Some(c),
                    _ => None,
                };
                (r, commit)
            })
            .collect();
        let rt = tokio::runtime::Handle::try_current().context("no async runtime: call app::run")?;
        let registry = {
            let _p = (!g.offline).then(|| crate::diag::progress(registries_asked(&workloads)));
            enrich::enrich(&rt, &workloads, &config, g.offline)
        };
        let mut deployments = resolve::deployments_with(&workloads, &registry.facts, &config, &repo, shallow);
        // Environments in promotion order (staging before production), then by name.
        let rank = |env: &str| config.promotion.iter().position(|p| p == env).unwrap_or(usize::MAX);
        for list in [&mut deployments, &mut declared] {
            list.sort_by(|a, b| (rank(&a.environment), &a.environment).cmp(&(rank(&b.environment), &b.environment)));
        }
        let mut findings = observed;
        findings.extend(registry.findings);
        if shallow {
            let f = Finding::new(
                Code::ShallowClone,
                format!(
                    "{} is a shallow clone: commit counts would be wrong, so none are given",
                    repo.path().display()
                ),
            )
            .hint("git fetch --unshallow --tags (in CI: actions/checkout with fetch-depth: 0)");
            findings.extend(scoped(f, label.is_some(), &deployments));
        }
        findings.extend(empty);
        let all = deployments.clone();
        Ok(Audit {
            repo,
            config,
            label,
            mainline,
            all,
            deployments,
            declared,
            reported,
            findings,
            daemons,
            detail: Detail::Full,
            comparisons: Default::default(),
        })
    }

    /// Keeps only these environments (all when the list is empty); an unknown one is an
    /// error (in a fleet, `Fleet::check_environments` asked every repository first).
    pub(super) fn only(&mut self, wanted: &[String]) -> Result<()> {
        let known: BTreeSet<&str> = self.all.iter().map(|d| d.environment.as_str()).collect();
        for env in wanted {
            if !known.contains(env.as_str()) && self.label.is_none() {
                bail!("no workloads in environment {env:?} (environments seen: {})", join(known));
            }
        }
        if !wanted.is_empty() {
            self.deployments.retain(|d| wanted.contains(&d.environment));
            self.declared.retain(|d| wanted.contains(&d.environment));
            self.reported.retain(|(r, _)| wanted.contains(&r.environment));
            self.findings.retain(|f| f.environment.as_ref().is_none_or(|e| wanted.contains(e)));
        }
        Ok(())
    }

    /// Keeps only `service` (when given); an unknown one is an error naming what is there.
    pub(super) fn only_service(&mut self, service: Option<&str>, env: &str) -> Result<()> {
        let Some(s) = service else { return Ok(()) };
        if !self.deployments.iter().any(|d| d.service == s) {
            let known: BTreeSet<&str> = self.deployments.iter().map(|d| d.service.as_str()).collect();
            bail!("no service {s:?} in environment {env:?} (services there: {})", join(known));
        }
        self.deployments.retain(|d| d.service == s);
        Ok(())
    }

    /// For environments in the promotion path, how each row stands against the same service
    /// in the environment before it, and an `unpromoted-change` finding when it runs
    /// commits that predecessor does not.
    pub(super) fn add_promotions(&self, rows: &mut [Row]) -> Result<()> {
        if self.repo.is_shallow() {
            return Ok(());
        }
        for pair in self.config.promotion.windows(2) {
            let (pred, env) = (&pair[0], &pair[1]);
            let targets = env_targets(&self.all, pred);
            for row in rows.iter_mut().filter(|r| &r.environment == env) {
                let (Some(running), Some((name, pc))) = (&row.commit, targets.get(&row.service)) else { continue };
                let paths = self.config.paths(&row.service);
                // Only the count of the predecessor's commits is reported, never the list.
                let cmp = self.comparisons.compare(
                    &self.repo,
                    running,
                    (name, pc),
                    paths,
                    &self.config.tickets,
                    Detail::Counts,
                )?;
                let drift: Vec<_> = cmp.drift().cloned().collect();
                if !drift.is_empty() {
                    let list: Vec<String> =
                        drift.iter().take(3).map(|c| format!("{} {}", c.sha.short(), c.subject)).collect();
                    row.findings.push(
                        Finding::new(
                            Code::UnpromotedChange,
                            format!("runs {} commit(s) that {pred} does not run: {}", drift.len(), list.join("; ")),
                        )
                        .hint(format!("deploy through {pred} first"))
                        .key(drift.iter().map(|c| c.sha.0.as_str()).collect::<Vec<_>>().join(","))
                        .at(env, &row.service),
                    );
                }
                let since = self
                    .all
                    .iter()
                    .filter(|d| &d.environment == pred && d.service == row.service)
                    .flat_map(|d| d.instances.iter().filter_map(|i| i.started_at))
                    .min();
                let lag =
                    cmp.missing().filter_map(|c| chrono::DateTime::parse_from_rfc3339(&c.committed_at).ok()).min();
                row.promotion = Some(crate::judge::report::Promotion {
                    environment: pred.clone(),
                    commit: pc.clone(),
                    behind: cmp.missing().count(),
                    oldest_behind: lag.map(|t| t.with_timezone(&Utc)),
                    ahead: drift,
                    same: running == pc,
                    contains: self.repo.contains(pc, running)?,
                    since,
                });
            }
        }
        Ok(())
    }

    /// Declared and reported state beside what runs: disagreements become findings, and the
    /// declared state is compared with the mainline too.
    pub(super) fn cross_check(&mut self, rows: &mut [Row]) -> Result<Vec<Row>> {
        let (agreements, found) = crosscheck::check(&self.deployments, &self.declared, &self.reported);
        debug_assert_eq!(agreements.len(), rows.len(), "rows are the deployments compared, in order");
        rows.iter_mut().zip(agreements).for_each(|(row, a)| row.agree(a));
        self.findings.extend(found);
        let target = self.mainline.clone();
        self.compare_each(&self.declared, |_| Some(target.clone()))
    }

    pub(super) fn compare_with_mainline(&self) -> Result<Vec<Row>> {
        let _p = crate::diag::progress(format!(
            "comparing {} deployment(s) with {} ({})",
            self.deployments.len(),
            self.mainline.0,
            self.mainline.1.short()
        ));
        let target = self.mainline.clone();
        self.compare_all(|_| Some(target.clone()))
    }

    /// Compares every deployment with the target `target_of` picks for it; one git
    /// comparison per distinct (commit, target, paths).
    pub(super) fn compare_all(
        &self,
        target_of: impl Fn(&Deployment) -> Option<(String, CommitId)>,
    ) -> Result<Vec<Row>> {
        self.compare_each(&self.deployments, target_of)
    }

    pub(super) fn compare_each(
        &self,
        deployments: &[Deployment],
        target_of: impl Fn(&Deployment) -> Option<(String, CommitId)>,
    ) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for d in deployments {
            let target = target_of(d);
            let cmp = match (&d.commit, &target) {
                (Some(running), Some((name, commit))) if !self.repo.is_shallow() => Some(self.comparisons.compare(
                    &self.repo,
                    running,
                    (name, commit),
                    self.config.paths(&d.service),
                    &self.config.tickets,
                    self.detail,
                )?),
                _ => None,
            };
            let mut row = Row::new(d.clone(), cmp);
            if target.is_none() && d.commit.is_some() {
                row.findings.push(
                    Finding::new(
                        Code::NoCounterpart,
                        "the environment compared with runs this service on no single resolved commit",
                    )
                    .at(&d.environment, &d.service),
                );
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// The report, with the policy applied: every finding gets its final level here.
    pub(super) fn finish(self, command: &str, results: Vec<Row>) -> Result<Report> {
        let policy = self.config.policy.clone();
        let mut report = self.unjudged(command, results, Vec::new())?;
        policy.apply(&mut report, now()?);
        report.redact();
        Ok(report)
    }

    /// When, in which promotion order, and where commits and tickets link to: for HTML.
    pub(super) fn presentation(&self) -> Result<Presentation> {
        Ok(Presentation {
            generated_at: Some(now()?),
            promotion: self.config.promotion.clone(),
            links: Links::new(self.repo.remote_url("origin").as_deref(), self.config.ticket_url.clone()),
        })
    }

    /// The report before the policy judges it (a fleet judges the merged one once).
    pub(super) fn unjudged(self, command: &str, mut results: Vec<Row>, mut declared: Vec<Row>) -> Result<Report> {
        let presentation = self.presentation()?;
        for row in results.iter_mut().chain(declared.iter_mut()) {
            row.repository = self.label.clone();
        }
        let complete =
            !self.findings.iter().chain(results.iter().flat_map(|r| r.findings.iter())).any(|f| f.code.is_incomplete());
        Ok(Report {
            schema_version: crate::judge::report::SCHEMA_VERSION,
            command: command.to_string(),
            repository: self.repo.path().display().to_string(),
            repositories: Vec::new(),
            mainline: Mainline { name: self.mainline.0, commit: self.mainline.1 },
            shallow: self.repo.is_shallow(),
            complete,
            results,
            declared,
            findings: self.findings,
            daemons: self.daemons,
            check: None,
            observed_at: None,
            presentation,
        })
    }
}

/// What every source saw: `--inventory` files and the sources the config lists.
pub(super) fn gather(g: &Global, config: &Config, repos: &[Candidate<'_>]) -> Result<Observation> {
    if g.inventory.is_empty() && !config.environments.iter().any(|e| e.has_sources()) {
        return discover_local(config, repos);
    }
    let mut seen = Observation::default();
    for path in &g.inventory {
        seen.workloads.extend(inventory::read(path, None)?);
    }
    for env in &config.environments {
        for path in &env.inventories {
            let read = inventory::read(path, Some(&env.name));
            seen.workloads
                .extend(read.with_context(|| listed_in(config, &format!("environments.{}.inventory", env.name)))?);
        }
        for pods in &env.kubernetes {
            let _p = crate::diag::progress(format!("asking kubectl for the pods of {} ({pods:?})", env.name));
            let o = kubernetes::observe(pods, &env.name, config)?;
            seen.workloads.extend(o.workloads);
            seen.findings.extend(o.findings);
        }
        let mut hosts = Vec::new();
        for (spec, swarm) in env.docker.iter().map(|h| (h, false)).chain(env.swarm.iter().map(|h| (h, true))) {
            let at = docker::endpoint(spec).with_context(|| format!("environments.{}", env.name))?;
            hosts.push((at, swarm));
        }
        let claim = |w: &crate::model::Workload| repos.iter().any(|c| resolve::is_claimed(w, c.config));
        for o in observe_docker(&hosts, &env.name, config, &claim)? {
            seen.workloads.extend(o.workloads);
            seen.findings.extend(o.findings);
            seen.daemons.extend(o.daemons);
        }
        for d in &env.declared {
            let read = declared_source::read(d, &env.name);
            seen.declared
                .extend(read.with_context(|| listed_in(config, &format!("environments.{}.declared", env.name)))?);
        }
        let (reported, findings) = http::read(&env.endpoints, &env.name);
        seen.reported.extend(reported);
        seen.findings.extend(findings);
        for v in &env.versions {
            let (reported, findings) = versions::read(v, &env.name)?;
            seen.reported.extend(reported);
            seen.findings.extend(findings);
        }
    }
    Ok(seen)
}

/// `asking 2 registries (ghcr.io, 127.0.0.1:5000) about the running images`.
fn registries_asked(workloads: &[crate::model::Workload]) -> String {
    let hosts: BTreeSet<&str> = workloads
        .iter()
        .filter(|w| !w.digests().is_empty())
        .filter_map(|w| w.image.named())
        .map(|r| r.registry.as_str())
        .collect();
    format!(
        "asking {} registr{} ({}) about the running images",
        hosts.len(),
        if hosts.len() == 1 { "y" } else { "ies" },
        join(hosts)
    )
}

/// `KEY in prodiff.toml`: which setting of which config file an error is about.
fn listed_in(config: &Config, key: &str) -> String {
    match &config.path {
        Some(p) => format!("{key} in {}", p.display()),
        None => key.to_string(),
    }
}

pub(super) fn join(items: BTreeSet<&str>) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// Every Docker host and Swarm manager of an environment, at most four at once, on the
/// runtime `run` entered.
pub(super) fn observe_docker(
    hosts: &[(docker::Endpoint, bool)],
    env: &str,
    config: &Config,
    claim: docker::Claim<'_>,
) -> Result<Vec<Observation>> {
    use futures_util::stream::{self, StreamExt};
    if hosts.is_empty() {
        return Ok(Vec::new());
    }
    let rt = tokio::runtime::Handle::try_current().context("no async runtime: call app::run")?;
    let names: Vec<&str> = hosts.iter().map(|(at, _)| at.host.as_str()).collect();
    let _p = crate::diag::progress(format!("asking the Docker daemon(s) of {env}: {}", names.join(", ")));
    let futures = hosts.iter().map(|(at, swarm)| async move {
        let started = std::time::Instant::now();
        tracing::info!("docker {}: listing {}", at.host, if *swarm { "swarm services" } else { "containers" });
        let seen = if *swarm {
            docker::observe_swarm(at, env, config, claim).await
        } else {
            docker::observe(at, env, config, claim).await
        };
        tracing::info!(
            "docker {}: {} workload(s), {} finding(s) in {} ms",
            at.host,
            seen.workloads.len(),
            seen.findings.len(),
            started.elapsed().as_millis()
        );
        seen
    });
    Ok(rt.block_on(stream::iter(futures).buffered(4).collect()))
}

/// Zero-config on a Docker host: the containers of `DOCKER_HOST` (or the local socket) whose
/// image names a commit of a repository audited (revision label) or the repository itself
/// (`org.opencontainers.image.source` = its `origin` remote), as environment `local`.
fn discover_local(config: &Config, repos: &[Candidate<'_>]) -> Result<Observation> {
    let nothing = "nothing to audit: pass --inventory FILE, or list sources under [environments] in prodiff.toml";
    let origins: Vec<(&Repo, Option<String>)> =
        repos.iter().filter_map(|c| c.repo).map(|r| (r, r.remote_url("origin"))).collect();
    let ours = |w: &crate::model::Workload| {
        origins.iter().any(|(repo, origin)| built_here(w, repo, origin.as_deref()))
            || (repos.len() > 1 && repos.iter().any(|c| c.config.service_for(w.image.named(), &w.labels).is_some()))
    };
    // Other containers on the daemon are none of this audit's business: no findings about them.
    let local = docker::endpoint(&docker::HostSpec::Default)?;
    let mut seen = observe_docker(&[(local, false)], "local", config, &ours)?.pop().unwrap_or_default();
    if let Some(f) = seen.findings.iter().find(|f| f.code == Code::SourceUnreachable) {
        bail!("{nothing} (and no local Docker daemon to look at: {})", f.message);
    }
    seen.workloads.retain(|w| ours(w));
    if seen.workloads.is_empty() {
        let which = if origins.len() == 1 { "this repository" } else { "these repositories" };
        bail!("{nothing} (no running container on the local Docker daemon is built from {which})");
    }
    Ok(seen)
}

pub(super) use crate::resolve::fleet::built_here;

/// `asking 127.0.0.1:5000 about 3 rollback candidate image(s)`.
pub(super) fn asking(refs: &[ImageRef], what: &str) -> String {
    let hosts: std::collections::BTreeSet<&str> = refs.iter().map(|r| r.registry.as_str()).collect();
    format!("asking {} about {} {what} image(s)", hosts.into_iter().collect::<Vec<_>>().join(", "), refs.len())
}

/// What the audit found about the run and about what runs (an unreachable source or
/// registry, a shallow clone, conflicting evidence), for `service` when one is asked
/// about, at their policy levels: the answer stands on them, as `status` would say.
pub(super) fn run_findings(audit: &Audit, service: Option<&str>) -> Vec<Finding> {
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
pub(super) fn shallow(audit: &Audit, d: &Deployment) -> Option<Finding> {
    let f = audit.findings.iter().find(|f| f.code == Code::ShallowClone)?;
    Some(f.clone().at(&d.environment, &d.service))
}

/// Each service's running deployment in the audited environment (the first image when
/// replicas differ: `status` reports that as mixed-versions).
pub(super) fn running_per_service(audit: &Audit) -> Vec<&Deployment> {
    let mut seen = std::collections::BTreeSet::new();
    audit.deployments.iter().filter(|d| seen.insert(d.service.clone())).collect()
}
