//! Stage 1, config: takes `prodiff.toml` (or nothing) and gives a validated `Config`. It
//! only parses and validates: each stage's section types are plain data here (`observe`,
//! `history`, `judge` submodules), importing only the ground floor, and the stages re-export
//! and act on them. `template` writes the commented file `init` proposes.
//!
//! `prodiff.toml`: parsed into raw structs that reject unknown keys, then validated into a
//! typed `Config`. Every error names the file, the line and the key at fault.
//!
//! Without a file, `Config::default()` is the zero-config behaviour: services are named after
//! the image repository, image tags map to `v{tag}` or `{tag}`, the mainline is detected.

pub mod fleet;
pub mod history;
pub mod judge;
pub mod ledger;
pub mod observe;
pub mod publish;
pub mod report;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::model::{Code, Level};
use crate::reference::ImageRef;
use history::TicketMatcher;
use judge::{Exception, LagRule, Policy, SeasoningRule};
pub use ledger::{parse_duration, LedgerConfig};
use observe::{DeclaredSource, Endpoint, HostSpec, Platform, PodSource, VersionSource};
pub use publish::{JiraTarget, TrelloTarget};
pub use publish::{PublishConfig, SlackTarget, Target as PublishTarget, WebhookTarget};

/// The file looked for in the repository root when `--config` is not given.
pub const FILE_NAME: &str = "prodiff.toml";

/// Changes reviewers must see, when a service does not say: database migrations and schemas.
pub const DEFAULT_RISKY_PATHS: &[&str] = &["migrations/", "*.sql", "schema.*"];

/// How image tags map to git tags when a service does not say.
pub const DEFAULT_GIT_TAGS: &[&str] = &["v{tag}", "{tag}"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: PathBuf, line: usize, column: usize, message: String },
    #[error("service {service:?} is defined twice: in {first} and in {second}")]
    Clash { service: String, first: PathBuf, second: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, if any.
    pub path: Option<PathBuf>,
    /// Relative paths in the config (inventories) are relative to this directory.
    pub base_dir: PathBuf,
    pub mainline: Option<String>,
    /// Environments in order of promotion (`staging` before `production`).
    pub promotion: Vec<String>,
    pub tickets: TicketMatcher,
    pub services: Vec<ServiceConfig>,
    pub environments: Vec<EnvironmentConfig>,
    pub policy: Policy,
    pub registry: RegistryConfig,
    /// `[report] ticket_url`: where ticket keys link to in the HTML report.
    pub ticket_url: Option<report::TicketTemplate>,
    /// `repos = ["../a", "../b"]`: repositories whose own `prodiff.toml` services this
    /// file pulls in (their services are in `services`, each naming its `repo`).
    pub repos: Vec<PathBuf>,
    pub ledger: LedgerConfig,
    /// `[publish]`: where deployment events are sent.
    pub publish: PublishConfig,
}

/// `[registry]`: how registries are asked (see `registry`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// Registry hosts (`host:port`) reached over plain HTTP; loopback ones need no entry.
    pub insecure: Vec<String>,
    /// Connect and request timeout.
    pub timeout: std::time::Duration,
    /// The platform picked from multi-platform indexes.
    pub platform: Platform,
    /// Bounds on what a registry may make prodiff read.
    pub limits: observe::Limits,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            insecure: Vec::new(),
            timeout: std::time::Duration::from_secs(10),
            platform: Platform::default(),
            limits: observe::Limits::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub name: String,
    /// The image repository (`registry/repo`, no tag) that identifies this service.
    pub image: Option<ImageRef>,
    /// Path filter for monorepos: only commits touching these paths count.
    pub paths: Vec<String>,
    /// Git tag templates for an image tag, tried in order: `v{tag}`.
    pub git_tags: Vec<String>,
    /// Paths whose change reviewers must see (migrations, schemas): flagged in plans and
    /// rollbacks. `migrations/` matches a directory anywhere, `*.sql` a file name.
    pub risky_paths: Vec<String>,
    /// `label=value`: containers carrying this label belong to the service, whatever image.
    pub selector: Option<(String, String)>,
    /// The clone the service is built from (`repo = "../calendar"`, relative to the config);
    /// `None`: the `--repo` repository.
    pub repo: Option<PathBuf>,
    /// The mainline in that repository; `None`: detected there.
    pub mainline: Option<String>,
    /// Ticket patterns for that repository; `None`: the config's `[tickets]`.
    pub tickets: Option<TicketMatcher>,
}

#[derive(Debug, Clone)]
pub struct EnvironmentConfig {
    pub name: String,
    pub inventories: Vec<PathBuf>,
    /// Pods: saved `kubectl get pods -o json` output, or live clusters through kubectl.
    pub kubernetes: Vec<PodSource>,
    /// Docker hosts (`unix://…`, `tcp://…`, `ssh://…`, `default`, a context): their running
    /// containers.
    pub docker: Vec<HostSpec>,
    /// Swarm managers: their services' running tasks.
    pub swarm: Vec<HostSpec>,
    /// What a GitOps repository declares for this environment.
    pub declared: Vec<DeclaredSource>,
    /// Version stores: service -> commit, from a file or a command.
    pub versions: Vec<VersionSource>,
    /// Version endpoints: a URL per service that answers with its build commit.
    pub endpoints: Vec<Endpoint>,
}

impl EnvironmentConfig {
    pub fn has_sources(&self) -> bool {
        !self.inventories.is_empty()
            || !self.kubernetes.is_empty()
            || !self.docker.is_empty()
            || !self.swarm.is_empty()
            || !self.declared.is_empty()
            || !self.versions.is_empty()
            || !self.endpoints.is_empty()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            path: None,
            base_dir: PathBuf::from("."),
            mainline: None,
            promotion: Vec::new(),
            tickets: TicketMatcher::defaults(),
            services: Vec::new(),
            environments: Vec::new(),
            policy: Policy::default(),
            registry: RegistryConfig::default(),
            ticket_url: None,
            repos: Vec::new(),
            ledger: LedgerConfig::default(),
            publish: PublishConfig::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mainline: Option<String>,
    #[serde(default)]
    promotion: Vec<Spanned<String>>,
    tickets: Option<RawTickets>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    environments: BTreeMap<String, RawEnvironment>,
    policy: Option<RawPolicy>,
    registry: Option<RawRegistry>,
    report: Option<RawReport>,
    #[serde(default)]
    repos: Vec<Spanned<String>>,
    ledger: Option<RawLedger>,
    publish: Option<publish::RawPublish>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    ticket_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLedger {
    path: Option<String>,
    url: Option<Spanned<String>>,
    fix_window: Option<Spanned<String>>,
    fix_pattern: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    insecure: Vec<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    platform: Option<Spanned<String>>,
    max_tags: Option<Spanned<u64>>,
    max_tag_pages: Option<Spanned<u64>>,
    max_index_entries: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    warn: Vec<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    lag: Vec<Spanned<RawLag>>,
    #[serde(default)]
    exceptions: Vec<Spanned<RawException>>,
    #[serde(default)]
    seasoning: Vec<Spanned<RawSeasoning>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeasoning {
    environment: Spanned<String>,
    min_days: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLag {
    environment: Option<String>,
    against: Option<Spanned<String>>,
    max_commits: Option<usize>,
    max_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    code: Spanned<String>,
    environment: Option<String>,
    service: Option<String>,
    key: Option<String>,
    reason: Spanned<String>,
    expires: Option<Spanned<RawDate>>,
}

/// `expires = 2026-12-31` (a TOML date) or `expires = "2026-12-31"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDate {
    Toml(toml::value::Datetime),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    patterns: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: Option<Spanned<String>>,
    #[serde(default)]
    paths: Vec<String>,
    git_tags: Option<Vec<Spanned<String>>>,
    risky_paths: Option<Vec<String>>,
    selector: Option<Spanned<String>>,
    repo: Option<String>,
    mainline: Option<String>,
    tickets: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    #[serde(default)]
    inventory: Vec<String>,
    #[serde(default)]
    kubernetes: Vec<Spanned<RawKubernetes>>,
    #[serde(default)]
    docker: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    swarm: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    declared: Vec<RawDeclared>,
    #[serde(default)]
    versions: Vec<Spanned<RawVersions>>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
}

/// `{ repo = "../gitops", ref = "main", path = "apps/shop/production" }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclared {
    repo: String,
    #[serde(rename = "ref")]
    rev: Option<String>,
    #[serde(default)]
    path: String,
}

/// `{ file = "versions.json" }` or `{ command = "./deployed-versions.sh production" }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersions {
    file: Option<String>,
    command: Option<String>,
}

/// `{ service = "api", url = "https://api.example.com/__version__", pointer = "/commit" }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    service: String,
    url: Spanned<String>,
    pointer: Option<String>,
    regex: Option<Spanned<String>>,
    timeout_ms: Option<u64>,
}

/// `{ file = "pods.json" }` or `{ context = "prod", namespace = "shop", selector = "tier=web" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    file: Option<String>,
    context: Option<String>,
    namespace: Option<String>,
    selector: Option<String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes =
            std::fs::read(path).map_err(|e| ConfigError::Read { path: path.to_path_buf(), message: e.to_string() })?;
        let text = observe::utf8(bytes).map_err(|(line, column, message)| ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
        })?;
        let mut config = Config::parse(&text, path)?;
        fleet::pull_in(&mut config)?;
        Ok(config)
    }

    /// The config for a repository: `explicit` if given, else `prodiff.toml` in the
    /// repository root if present, else the defaults.
    pub fn discover(explicit: Option<&Path>, repo_root: &Path) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Config::load(p),
            None => {
                let p = repo_root.join(FILE_NAME);
                if p.is_file() {
                    Config::load(&p)
                } else {
                    Ok(Config { base_dir: repo_root.to_path_buf(), ..Config::default() })
                }
            }
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            let message = crate::redact::clip_quoted(&message);
            ConfigError::Invalid { path: path.to_path_buf(), line, column, message }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at(span, e.message().trim().to_string())
        })?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base_dir = if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir };

        let tickets = match raw.tickets {
            None => TicketMatcher::defaults(),
            Some(t) => ticket_matcher(t.patterns, "tickets.patterns", &at)?,
        };

        let mut services = Vec::new();
        for (name, s) in raw.services {
            let image = match s.image {
                None => None,
                Some(img) => Some(
                    parse_repository(img.get_ref())
                        .map_err(|m| at(img.span(), format!("services.{name}.image: {m}")))?,
                ),
            };
            let git_tags = match s.git_tags {
                None => DEFAULT_GIT_TAGS.iter().map(|t| t.to_string()).collect(),
                Some(ts) => {
                    let mut out = Vec::new();
                    for t in ts {
                        if !t.get_ref().contains("{tag}") {
                            return Err(at(
                                t.span(),
                                format!(
                                    "services.{name}.git_tags: {:?} has no {{tag}} placeholder (for example \"v{{tag}}\")",
                                    t.get_ref()
                                ),
                            ));
                        }
                        out.push(t.into_inner());
                    }
                    out
                }
            };
            let risky_paths =
                s.risky_paths.unwrap_or_else(|| DEFAULT_RISKY_PATHS.iter().map(|p| p.to_string()).collect());
            let selector = match s.selector {
                None => None,
                Some(sel) => match sel.get_ref().split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => Some((k.trim().to_string(), v.trim().to_string())),
                    _ => {
                        return Err(at(
                            sel.span(),
                            format!("services.{name}.selector: {:?} is not `label=value`", sel.get_ref()),
                        ))
                    }
                },
            };
            let tickets = match s.tickets {
                None => None,
                Some(ps) => Some(ticket_matcher(ps, &format!("services.{name}.tickets"), &at)?),
            };
            services.push(ServiceConfig {
                image,
                paths: s.paths,
                git_tags,
                risky_paths,
                selector,
                repo: s.repo.map(|r| base_dir.join(r)),
                mainline: s.mainline,
                tickets,
                name,
            });
        }

        let mut environments = Vec::new();
        for (name, e) in raw.environments {
            let mut kubernetes = Vec::new();
            for k in e.kubernetes {
                let span = k.span();
                let k = k.into_inner();
                kubernetes.push(match (k.file, k.context.is_some() || k.namespace.is_some() || k.selector.is_some()) {
                    (Some(f), false) => PodSource::File(if f == "-" { PathBuf::from("-") } else { base_dir.join(f) }),
                    (None, _) => PodSource::Live { context: k.context, namespace: k.namespace, selector: k.selector },
                    (Some(_), true) => {
                        return Err(at(
                            span,
                            format!("environments.{name}.kubernetes: `file` reads saved pods; it cannot go with context, namespace or selector"),
                        ))
                    }
                });
            }
            let declared = e
                .declared
                .into_iter()
                .map(|d| DeclaredSource {
                    repo: base_dir.join(d.repo),
                    rev: d.rev.unwrap_or_else(|| "HEAD".into()),
                    path: d.path,
                })
                .collect();
            let mut versions = Vec::new();
            for v in e.versions {
                let span = v.span();
                versions.push(match v.into_inner() {
                    RawVersions { file: Some(f), command: None } => VersionSource::File(base_dir.join(f)),
                    RawVersions { file: None, command: Some(c) } => {
                        VersionSource::Command { command: c, dir: base_dir.clone() }
                    }
                    _ => {
                        return Err(at(span, format!("environments.{name}.versions: give either `file` or `command`")))
                    }
                });
            }
            let mut endpoints = Vec::new();
            for ep in e.endpoints {
                let url = ep.url.get_ref();
                crate::redact::register_url(url);
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(at(
                        ep.url.span(),
                        format!("environments.{name}.endpoints: {url:?} is not an http:// or https:// URL"),
                    ));
                }
                let regex = match &ep.regex {
                    None => None,
                    Some(r) => Some(Regex::new(r.get_ref()).map_err(|err| {
                        at(r.span(), format!("environments.{name}.endpoints: invalid regular expression: {err}"))
                    })?),
                };
                endpoints.push(Endpoint {
                    service: ep.service,
                    url: ep.url.into_inner(),
                    pointer: ep.pointer,
                    regex,
                    timeout: std::time::Duration::from_millis(ep.timeout_ms.unwrap_or(5000).clamp(1, 600_000)),
                });
            }
            let mut docker = Vec::new();
            let mut swarm = Vec::new();
            for (list, key, out) in [(e.docker, "docker", &mut docker), (e.swarm, "swarm", &mut swarm)] {
                for h in list {
                    if let Some(url) = h.get_ref().as_str() {
                        crate::redact::register_url(url);
                    }
                    let host = docker_host(h.get_ref())
                        .map_err(|m| at(h.span(), format!("environments.{name}.{key}: {m}")))?;
                    out.push(host);
                }
            }
            environments.push(EnvironmentConfig {
                name,
                docker,
                swarm,
                inventories: e.inventory.iter().map(|p| base_dir.join(p)).collect(),
                kubernetes,
                declared,
                versions,
                endpoints,
            });
        }

        let mut promotion = Vec::new();
        for p in raw.promotion {
            let name = p.get_ref();
            if promotion.contains(name) {
                return Err(at(p.span(), format!("promotion: {name:?} is listed twice")));
            }
            if !environments.is_empty() && !environments.iter().any(|e| &e.name == name) {
                return Err(at(
                    p.span(),
                    format!("promotion: {name:?} is not an environment declared under [environments]"),
                ));
            }
            promotion.push(p.into_inner());
        }

        let policy = match raw.policy {
            None => Policy::default(),
            Some(p) => parse_policy(p, &at, path, &promotion)?,
        };

        let registry = match raw.registry {
            None => RegistryConfig::default(),
            Some(r) => registry_config(r, &at)?,
        };

        let ticket_url = match raw.report.and_then(|r| r.ticket_url) {
            None => None,
            Some(t) => Some(
                report::TicketTemplate::parse(t.get_ref())
                    .map_err(|m| at(t.span(), format!("report.ticket_url: {m}")))?,
            ),
        };
        let repos = raw.repos.into_iter().map(|r| base_dir.join(r.into_inner())).collect();
        let mut ledger = LedgerConfig::default();
        if let Some(l) = raw.ledger {
            ledger.path = l.path.map(|p| base_dir.join(p));
            if let Some(url) = l.url {
                crate::redact::register_url(url.get_ref());
                if !url.get_ref().starts_with("postgres://") && !url.get_ref().starts_with("postgresql://") {
                    return Err(at(url.span(), "ledger.url: not a postgres:// URL (a SQLite file is `path`)".into()));
                }
                ledger.url = Some(url.into_inner());
            }
            if let Some(w) = l.fix_window {
                ledger.fix_window =
                    parse_duration(w.get_ref()).map_err(|m| at(w.span(), format!("ledger.fix_window: {m}")))?;
            }
            if let Some(p) = l.fix_pattern {
                ledger.fix_pattern = Regex::new(p.get_ref())
                    .map_err(|e| at(p.span(), format!("ledger.fix_pattern: invalid regular expression: {e}")))?;
            }
        }
        let publish = match raw.publish {
            None => PublishConfig::default(),
            Some(p) => {
                let known: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
                publish::validate(p, &known).map_err(|(span, m)| at(span, m))?
            }
        };
        Ok(Config {
            repos,
            policy,
            registry,
            ticket_url,
            ledger,
            publish,
            path: Some(path.to_path_buf()),
            base_dir,
            mainline: raw.mainline,
            promotion,
            tickets,
            services,
            environments,
        })
    }

    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The configured service whose image repository is `image`'s.
    pub fn service_for_image(&self, image: &ImageRef) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| {
            s.image.as_ref().is_some_and(|i| i.registry == image.registry && i.repository == image.repository)
        })
    }

    /// The configured service a workload belongs to: by label selector, else by image.
    pub fn service_for(
        &self,
        image: Option<&ImageRef>,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Option<&ServiceConfig> {
        self.services
            .iter()
            .find(|s| s.selector.as_ref().is_some_and(|(k, v)| labels.get(k) == Some(v)))
            .or_else(|| image.and_then(|i| self.service_for_image(i)))
    }

    /// Git tag templates for a service (the defaults for services the config does not name).
    pub fn git_tags(&self, service: &str) -> Vec<String> {
        match self.service(service) {
            Some(s) => s.git_tags.clone(),
            None => DEFAULT_GIT_TAGS.iter().map(|t| t.to_string()).collect(),
        }
    }

    pub fn risky_paths(&self, service: &str) -> Vec<String> {
        match self.service(service) {
            Some(s) => s.risky_paths.clone(),
            None => DEFAULT_RISKY_PATHS.iter().map(|p| p.to_string()).collect(),
        }
    }

    pub fn paths(&self, service: &str) -> &[String] {
        self.service(service).map(|s| s.paths.as_slice()).unwrap_or(&[])
    }
}

/// Regular expressions from `key`, each error naming its line.
fn ticket_matcher(
    patterns: Vec<Spanned<String>>,
    key: &str,
    at: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<TicketMatcher, ConfigError> {
    let mut res = Vec::new();
    for p in patterns {
        let re =
            Regex::new(p.get_ref()).map_err(|e| at(p.span(), format!("{key}: invalid regular expression: {e}")))?;
        res.push(re);
    }
    Ok(TicketMatcher::new(res))
}

fn parse_policy(
    raw: RawPolicy,
    at: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
    path: &Path,
    promotion: &[String],
) -> Result<Policy, ConfigError> {
    let code = |s: &Spanned<String>, key: &str| {
        Code::parse(s.get_ref()).ok_or_else(|| {
            at(s.span(), format!("{key}: unknown finding code {:?} (see the README's list)", s.get_ref()))
        })
    };
    let origin = |span: std::ops::Range<usize>| {
        let ConfigError::Invalid { line, .. } = at(span, String::new()) else { unreachable!() };
        format!("{}:{line}", path.display())
    };
    let mut policy = Policy::default();
    for (list, level, key) in [
        (&raw.allow, Level::Allow, "policy.allow"),
        (&raw.warn, Level::Warn, "policy.warn"),
        (&raw.deny, Level::Deny, "policy.deny"),
    ] {
        for c in list {
            if policy.levels.insert(code(c, key)?, level).is_some() {
                return Err(at(c.span(), format!("{key}: {:?} is given two levels", c.get_ref())));
            }
        }
    }
    for l in raw.lag {
        let span = l.span();
        let l = l.into_inner();
        if l.max_commits.is_none() && l.max_days.is_none() {
            return Err(at(span, "policy.lag: set max_commits, max_days or both".into()));
        }
        let predecessor = match l.against.as_ref().map(|a| a.get_ref().as_str()) {
            None | Some("mainline") => false,
            Some("predecessor") => true,
            Some(other) => {
                let span = l.against.as_ref().map(|a| a.span()).unwrap_or(span);
                return Err(at(
                    span,
                    format!("policy.lag.against: {other:?} is neither \"mainline\" nor \"predecessor\""),
                ));
            }
        };
        policy.lag.push(LagRule {
            environment: l.environment,
            predecessor,
            max_commits: l.max_commits,
            max_days: l.max_days,
            origin: origin(span),
        });
    }
    for s in raw.seasoning {
        let span = s.span();
        let s = s.into_inner();
        if promotion.iter().position(|p| p == s.environment.get_ref()).is_none_or(|i| i == 0) {
            return Err(at(
                s.environment.span(),
                format!(
                    "policy.seasoning: {:?} has no predecessor in `promotion` to season in",
                    s.environment.get_ref()
                ),
            ));
        }
        policy.seasoning.push(SeasoningRule {
            environment: s.environment.into_inner(),
            min_days: s.min_days,
            origin: origin(span),
        });
    }
    for e in raw.exceptions {
        let span = e.span();
        let e = e.into_inner();
        if e.reason.get_ref().trim().is_empty() {
            return Err(at(e.reason.span(), "policy.exceptions: reason must say why the finding is accepted".into()));
        }
        let expires = match e.expires {
            None => None,
            Some(d) => {
                let text = match d.get_ref() {
                    RawDate::Toml(t) => t.to_string(),
                    RawDate::Text(s) => s.clone(),
                };
                Some(text.parse::<chrono::NaiveDate>().map_err(|_| {
                    at(d.span(), format!("policy.exceptions: expires {text:?} is not a date like 2026-12-31"))
                })?)
            }
        };
        policy.exceptions.push(Exception {
            code: code(&e.code, "policy.exceptions")?,
            environment: e.environment,
            service: e.service,
            key: e.key,
            reason: e.reason.into_inner(),
            expires,
            origin: origin(span),
        });
    }
    Ok(policy)
}

/// `"unix:///var/run/docker.sock"`, `"tcp://h:2376"`, `"ssh://user@h"`, `"default"`, or
/// `{ context = "NAME" }`.
fn docker_host(value: &toml::Value) -> Result<HostSpec, String> {
    const SCHEMES: [&str; 5] = ["unix://", "tcp://", "http://", "https://", "ssh://"];
    let what =
        "is not a Docker host (unix:///path, tcp://host:port, ssh://user@host, \"default\", or { context = \"NAME\" })";
    match value {
        toml::Value::String(s) if s == "default" => Ok(HostSpec::Default),
        toml::Value::String(s) if SCHEMES.iter().any(|p| s.starts_with(p)) => {
            observe::check_ssh(s)?;
            Ok(HostSpec::Url(s.clone()))
        }
        toml::Value::Table(t) => match (t.get("context"), t.len()) {
            (Some(toml::Value::String(c)), 1) if !c.is_empty() => Ok(HostSpec::Context(c.clone())),
            _ => Err(format!("{value} {what}")),
        },
        other => Err(format!("{other} {what}")),
    }
}

fn parse_repository(s: &str) -> Result<ImageRef, String> {
    let r = ImageRef::parse(s).map_err(|e| e.to_string())?;
    if r.tag.is_some() || r.digest.is_some() {
        return Err(format!("{s:?} must be a repository without a tag or digest"));
    }
    Ok(r)
}

fn registry_config(
    r: RawRegistry,
    at: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<RegistryConfig, ConfigError> {
    let mut out = RegistryConfig::default();
    for host in r.insecure {
        let ok = ImageRef::parse(&format!("{}/x", host.get_ref()))
            .is_ok_and(|i| &i.registry == host.get_ref() && host.get_ref().contains(['.', ':']));
        if !ok {
            return Err(at(
                host.span(),
                format!(
                    "registry.insecure: {:?} is not a registry host (host:port, no scheme or path)",
                    host.get_ref()
                ),
            ));
        }
        out.insecure.push(host.into_inner());
    }
    if let Some(t) = r.timeout_ms {
        if *t.get_ref() == 0 || *t.get_ref() > 600_000 {
            return Err(at(t.span(), "registry.timeout_ms: must be 1 to 600000".into()));
        }
        out.timeout = std::time::Duration::from_millis(*t.get_ref());
    }
    let limits = &mut out.limits;
    for (value, key, max, slot) in [
        (r.max_tags, "max_tags", 1_000_000, &mut limits.max_tags),
        (r.max_tag_pages, "max_tag_pages", 10_000, &mut limits.max_tag_pages),
        (r.max_index_entries, "max_index_entries", 100_000, &mut limits.max_index_entries),
    ] {
        if let Some(v) = value {
            if *v.get_ref() == 0 || *v.get_ref() > max {
                return Err(at(v.span(), format!("registry.{key}: must be 1 to {max}")));
            }
            *slot = *v.get_ref() as usize;
        }
    }
    if let Some(p) = r.platform {
        out.platform = Platform::parse(p.get_ref()).ok_or_else(|| {
            at(
                p.span(),
                format!(
                    "registry.platform: {:?} is not os/architecture[/variant] (for example \"linux/arm64\")",
                    p.get_ref()
                ),
            )
        })?;
    }
    Ok(out)
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|i| before.len() - i).unwrap_or(before.len() + 1);
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("prodiff.toml")).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_name_the_line_and_key() {
        let e = err("mainline = \"main\"\n\n[services.api]\nimage = \"acme/api\"\nimgae = \"x\"\n");
        assert!(e.starts_with("prodiff.toml:5:1: unknown field `imgae`"), "{e}");
    }

    #[test]
    fn bad_regexes_name_the_line() {
        let e = err("[tickets]\npatterns = [\n  \"ok-[0-9]+\",\n  \"(unclosed\",\n]\n");
        assert!(e.starts_with("prodiff.toml:4:3: tickets.patterns: invalid regular expression"), "{e}");
    }

    #[test]
    fn templates_need_a_placeholder_and_images_no_tag() {
        let e = err("[services.api]\ngit_tags = [\"release\"]\n");
        assert!(e.contains("prodiff.toml:2:13: services.api.git_tags"), "{e}");
        let e = err("[services.api]\nimage = \"acme/api:1.0\"\n");
        assert!(e.contains("prodiff.toml:2:9: services.api.image"), "{e}");
    }

    #[test]
    fn promotion_must_name_declared_environments() {
        let e = err("promotion = [\"staging\", \"prod\"]\n[environments.staging]\n");
        assert!(e.starts_with("prodiff.toml:1:25: promotion: \"prod\" is not an environment"), "{e}");
    }

    #[test]
    fn publish_targets_must_name_declared_environments() {
        let envs = "[environments.staging]\n[environments.prod]\n";
        let jira = "[[publish.jira]]\nurl = \"https://x.atlassian.net\"\nemail = \"a@b.c\"\ntoken_env = \"T\"\n";
        let e = err(&format!("{envs}{jira}"));
        assert!(
            e.starts_with("prodiff.toml:3:1: publish.jira[0].environments: defaults to \"production\", which is not an environment declared under [environments] (known: prod, staging)"),
            "{e}"
        );
        let e = err(&format!(
            "{envs}[[publish.trello]]\nkey_env = \"K\"\ntoken_env = \"T\"\nboards = [\"b\"]\nenvironment = \"prdo\"\n"
        ));
        assert!(
            e.starts_with("prodiff.toml:7:15: publish.trello[0].environment: \"prdo\" is not an environment"),
            "{e}"
        );
        let e = err(&format!(
            "{envs}[[publish.github_issues]]\nrepository = \"o/r\"\nenvironments = {{ stagign = \"staging\" }}\n"
        ));
        assert!(e.contains("publish.github_issues[0].environments.stagign: \"stagign\" is not an environment"), "{e}");
        assert!(Config::parse(&format!("{envs}{jira}environments = [\"prod\"]\n"), Path::new("prodiff.toml")).is_ok());
    }

    #[test]
    fn policy_codes_dates_and_reasons_are_checked() {
        let e = err("[policy]\ndeny = [\"hotfix-drfit\"]\n");
        assert!(e.starts_with("prodiff.toml:2:9: policy.deny: unknown finding code \"hotfix-drfit\""), "{e}");
        let e = err("[[policy.exceptions]]\ncode = \"hotfix-drift\"\nreason = \"x\"\nexpires = \"soon\"\n");
        assert!(e.starts_with("prodiff.toml:4:11: policy.exceptions: expires \"soon\""), "{e}");
        let e = err("[[policy.exceptions]]\ncode = \"hotfix-drift\"\nreason = \" \"\n");
        assert!(e.contains("reason must say why"), "{e}");
        let c = Config::parse(
            "[policy]\nallow = [\"mixed-versions\"]\n[[policy.lag]]\nmax_days = 14\n\
             [[policy.exceptions]]\ncode = \"hotfix-drift\"\nreason = \"r\"\nexpires = 2026-12-31\n",
            Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(c.policy.level(Code::MixedVersions), Level::Allow);
        assert_eq!(c.policy.lag[0].origin, "p.toml:3");
        assert_eq!(c.policy.exceptions[0].expires.unwrap().to_string(), "2026-12-31");
        assert_eq!(c.policy.exceptions[0].origin, "p.toml:5");
    }

    #[test]
    fn registry_settings_are_validated() {
        let e = err("[registry]\ninsecure = [\"http://r.example:5000\"]\n");
        assert!(e.starts_with("prodiff.toml:2:13: registry.insecure"), "{e}");
        let e = err("[registry]\nplatform = \"amd64\"\n");
        assert!(e.starts_with("prodiff.toml:2:12: registry.platform"), "{e}");
        let e = err("[registry]\ntimeout = 3\n");
        assert!(e.contains("unknown field `timeout`"), "{e}");
        let c = Config::parse(
            "[registry]\ninsecure = [\"r.example:5000\"]\ntimeout_ms = 500\nplatform = \"linux/arm64/v8\"\n",
            Path::new("prodiff.toml"),
        )
        .unwrap();
        assert_eq!(c.registry.insecure, ["r.example:5000"]);
        assert_eq!(c.registry.timeout.as_millis(), 500);
        assert_eq!(c.registry.platform.to_string(), "linux/arm64/v8");
    }

    #[test]
    fn docker_hosts_are_urls_default_or_contexts() {
        let c = Config::parse(
            "[environments.p]\ndocker = [\"default\", \"ssh://deploy@h:2222\", { context = \"prod\" }]\n",
            Path::new("prodiff.toml"),
        )
        .unwrap();
        assert_eq!(
            c.environments[0].docker,
            [HostSpec::Default, HostSpec::Url("ssh://deploy@h:2222".into()), HostSpec::Context("prod".into())]
        );
        let e = err("[environments.p]\nswarm = [{ contxt = \"prod\" }]\n");
        assert!(
            e.starts_with("prodiff.toml:2:10: environments.p.swarm: { contxt = \"prod\" } is not a Docker host"),
            "{e}"
        );
        let e = err("[environments.p]\ndocker = [\"ssh://deploy:hunter2@h\"]\n");
        assert!(e.starts_with("prodiff.toml:2:11: environments.p.docker: a password in an ssh:// URL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = err("[environments.p]\ndocker = [\"docker.example:2376\"]\n");
        assert!(
            e.starts_with("prodiff.toml:2:11: environments.p.docker: \"docker.example:2376\" is not a Docker host"),
            "{e}"
        );
    }

    #[test]
    fn a_full_config_is_typed() {
        let c = Config::parse(
            "mainline = \"trunk\"\npromotion = [\"staging\", \"production\"]\n\
             [services.api]\nimage = \"registry.example.com/shop/api\"\npaths = [\"services/api\"]\n\
             git_tags = [\"api-v{tag}\"]\n[environments.staging]\ninventory = [\"s.json\"]\n\
             [environments.production]\n",
            Path::new("/etc/p/prodiff.toml"),
        )
        .unwrap();
        assert_eq!(c.mainline.as_deref(), Some("trunk"));
        assert_eq!(c.git_tags("api"), ["api-v{tag}"]);
        assert_eq!(c.git_tags("web"), ["v{tag}", "{tag}"]);
        assert_eq!(c.environments[1].inventories, [PathBuf::from("/etc/p/s.json")]);
        let img = ImageRef::parse("registry.example.com/shop/api:9").unwrap();
        assert_eq!(c.service_for_image(&img).unwrap().name, "api");
    }
}
