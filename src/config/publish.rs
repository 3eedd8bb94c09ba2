//! `[publish]`: where deployment events are sent (collaboration tools, never production), as
//! plain data; the `publish` stage sends. Secrets are never in the file: only the names of
//! the environment variables holding them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `[publish]`: the targets, each opt-in.
#[derive(Debug, Clone, Default)]
pub struct PublishConfig {
    pub webhooks: Vec<WebhookTarget>,
    pub slack: Vec<SlackTarget>,
    pub jira: Vec<JiraTarget>,
    pub trello: Vec<TrelloTarget>,
    pub github_deployments: Vec<GitHubDeployments>,
    pub github_issues: Vec<GitHubIssues>,
}

impl PublishConfig {
    /// Whether any target is configured (`record` and `watch` publish only then).
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty()
            && self.slack.is_empty()
            && self.jira.is_empty()
            && self.trello.is_empty()
            && self.github_deployments.is_empty()
            && self.github_issues.is_empty()
    }
}

/// Where a target sends: a URL in the file, or (when the URL itself is a secret, like a
/// Slack webhook's) the environment variable holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Url(String),
    Env(String),
}

/// `[[publish.webhook]]`: the ledger event POSTed as versioned JSON, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The target's id in the ledger's delivery table (`webhook:<url host>` unless set).
    pub id: String,
    pub url: Target,
    /// The environment variable holding the HMAC-SHA256 secret.
    pub secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    #[serde(default)]
    webhook: Vec<Spanned<RawWebhook>>,
    #[serde(default)]
    slack: Vec<RawSlack>,
    #[serde(default)]
    jira: Vec<Spanned<RawJira>>,
    #[serde(default)]
    trello: Vec<Spanned<RawTrello>>,
    #[serde(default)]
    github_deployments: Vec<Spanned<RawGitHubDeployments>>,
    #[serde(default)]
    github_issues: Vec<Spanned<RawGitHubIssues>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    id: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
}

/// Validates `[publish]`; an error is (byte span, message) for the caller to place.
pub(super) fn validate(raw: RawPublish, known: &[&str]) -> Result<PublishConfig, (std::ops::Range<usize>, String)> {
    known_environments(&raw, known)?;
    let mut webhooks: Vec<WebhookTarget> = Vec::new();
    for (i, w) in raw.webhook.into_iter().enumerate() {
        let table = w.span();
        let w = w.into_inner();
        let (url, default_id, span) = match (&w.url, &w.url_env) {
            (Some(u), None) => {
                crate::redact::register_url(u.get_ref());
                let Some(host) = http_host(u.get_ref()) else {
                    return Err((u.span(), format!("publish.webhook[{i}].url: not an http(s) URL")));
                };
                (Target::Url(u.get_ref().clone()), format!("webhook:{host}"), u.span())
            }
            (None, Some(e)) if !e.get_ref().is_empty() => {
                (Target::Env(e.get_ref().clone()), format!("webhook:${}", e.get_ref()), e.span())
            }
            (Some(u), Some(_)) => {
                return Err((u.span(), format!("publish.webhook[{i}]: `url` or `url_env`, not both")));
            }
            (None, Some(e)) => return Err((e.span(), format!("publish.webhook[{i}].url_env: empty"))),
            (None, None) => return Err((table, format!("publish.webhook[{i}]: `url` or `url_env` is required"))),
        };
        let id = match &w.id {
            Some(id) if id.get_ref().trim().is_empty() => {
                return Err((id.span(), format!("publish.webhook[{i}].id: empty")));
            }
            Some(id) => id.get_ref().clone(),
            None => default_id,
        };
        if webhooks.iter().any(|t| t.id == id) {
            let span = w.id.as_ref().map(Spanned::span).unwrap_or(span);
            return Err((span, format!("publish.webhook[{i}]: a second target with id {id:?} (set `id`)")));
        }
        let secret_env = match w.secret_env {
            Some(s) if s.get_ref().is_empty() => {
                return Err((s.span(), format!("publish.webhook[{i}].secret_env: empty")));
            }
            s => s.map(Spanned::into_inner),
        };
        webhooks.push(WebhookTarget { id, url, secret_env });
    }
    let mut ids: Vec<String> = webhooks.iter().map(|w| w.id.clone()).collect();
    let slack = slack(raw.slack, &ids)?;
    ids.extend(slack.iter().map(|t| t.id.clone()));
    let jira = jira(raw.jira, &mut ids)?;
    let trello = trello(raw.trello, &mut ids)?;
    let (github_deployments, github_issues) = github(raw.github_deployments, raw.github_issues, &mut ids)?;
    Ok(PublishConfig { webhooks, slack, jira, trello, github_deployments, github_issues })
}

/// Every environment a target names (or defaults to) is one of `[environments]` (when the
/// config declares any): a misspelt one would silently never be published to.
fn known_environments(raw: &RawPublish, known: &[&str]) -> Result<(), Bad> {
    if known.is_empty() {
        return Ok(());
    }
    let check = |env: &str, span: std::ops::Range<usize>, key: String, defaulted: bool| {
        if known.contains(&env) {
            return Ok(());
        }
        let how = if defaulted { format!("defaults to {env:?}, which") } else { format!("{env:?}") };
        Err((
            span,
            format!("{key}: {how} is not an environment declared under [environments] (known: {})", known.join(", ")),
        ))
    };
    for (i, j) in raw.jira.iter().enumerate() {
        let key = format!("publish.jira[{i}].environments");
        match &j.get_ref().environments {
            Some(e) => e.get_ref().iter().try_for_each(|env| check(env, e.span(), key.clone(), false))?,
            None => check("production", j.span(), key, true)?,
        }
    }
    for (i, t) in raw.trello.iter().enumerate() {
        let key = format!("publish.trello[{i}].environment");
        match &t.get_ref().environment {
            Some(e) => check(e.get_ref(), e.span(), key, false)?,
            None => check("production", t.span(), key, true)?,
        }
    }
    let github = raw.github_deployments.iter().map(|t| ("github_deployments", t.get_ref().environments.as_ref()));
    let github = github.chain(raw.github_issues.iter().map(|t| ("github_issues", t.get_ref().environments.as_ref())));
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (table, envs) in github {
        let i = index.entry(table).or_default();
        for (env, name) in envs.into_iter().flatten() {
            check(env, name.span(), format!("publish.{table}[{i}].environments.{env}"), false)?;
        }
        *i += 1;
    }
    Ok(())
}

/// The host of an `http://` or `https://` URL (without user info or port), if it is one.
fn http_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// `[[publish.slack]]`: a Block Kit message per event to an incoming webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackTarget {
    /// The target's id in the ledger (`slack:$VAR` unless set).
    pub id: String,
    /// The environment variable holding the webhook URL (a secret: it is the credential).
    pub url_env: String,
    /// `https://github.com/org/repo/commit/{sha}`: commit links, when set.
    pub commit_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    id: Option<Spanned<String>>,
    url_env: Spanned<String>,
    commit_url: Option<Spanned<String>>,
}

/// Validates `[[publish.slack]]` entries against the ids already taken.
fn slack(raw: Vec<RawSlack>, taken: &[String]) -> Result<Vec<SlackTarget>, (std::ops::Range<usize>, String)> {
    let mut out: Vec<SlackTarget> = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        if s.url_env.get_ref().is_empty() {
            return Err((s.url_env.span(), format!("publish.slack[{i}].url_env: empty")));
        }
        let id =
            s.id.as_ref().map(|v| v.get_ref().clone()).unwrap_or_else(|| format!("slack:${}", s.url_env.get_ref()));
        if id.trim().is_empty() || taken.contains(&id) || out.iter().any(|t| t.id == id) {
            let span = s.id.as_ref().map(Spanned::span).unwrap_or(s.url_env.span());
            return Err((span, format!("publish.slack[{i}]: id {id:?} is empty or taken (set `id`)")));
        }
        if let Some(c) = &s.commit_url {
            if http_host(c.get_ref()).is_none() || !c.get_ref().contains("{sha}") {
                return Err((c.span(), format!("publish.slack[{i}].commit_url: an http(s) URL with {{sha}}")));
            }
        }
        out.push(SlackTarget {
            id,
            url_env: s.url_env.into_inner(),
            commit_url: s.commit_url.map(Spanned::into_inner),
        });
    }
    Ok(out)
}

// ---- Ticket targets: Jira Cloud and Trello -------------------------------------------------

/// A config error: the byte span at fault and the message.
type Bad = (std::ops::Range<usize>, String);

/// `[[publish.jira]]`: per ticket a deployment shipped to (or removed from) one of
/// `environments`, a label, a comment and optionally a transition, through Jira Cloud's REST
/// API v3 with basic auth (an account's email and an API token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraTarget {
    /// The target's id in the ledger (`jira:HOST` unless set).
    pub id: String,
    /// The site, `https://yourco.atlassian.net` (no trailing slash).
    pub url: String,
    /// The account the API token belongs to (the user half of basic auth).
    pub email: String,
    /// The environment variable holding the API token.
    pub token_env: String,
    /// Events in these environments count (default: production).
    pub environments: Vec<String>,
    /// The label, `{environment}` replaced (default `deployed-{environment}`); None: no labels.
    pub label: Option<String>,
    /// Whether each ticket gets a comment per event (default true).
    pub comment: bool,
    /// A transition (its id, all digits, or its name) taken when a ticket ships.
    pub transition: Option<String>,
    /// Only keys of these projects (`SHOP` for `SHOP-12`); empty: any Jira-style key.
    pub projects: Vec<String>,
    /// `https://github.com/org/repo/commit/{sha}`: commit links in comments, when set.
    pub commit_url: Option<String>,
}

/// `[[publish.trello]]`: the cards of tickets a deployment shipped to (or removed from)
/// `environment` renamed with a prefix, found by ticket key in their name (and, with
/// `by_commit`, by a comment naming a commit's full SHA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrelloTarget {
    /// The target's id in the ledger (`trello:BOARD+BOARD` unless set).
    pub id: String,
    /// The API's base, `https://api.trello.com` unless set (tests point it elsewhere).
    pub url: String,
    /// The environment variables holding the API key and the token (both secrets).
    pub key_env: String,
    pub token_env: String,
    /// The board ids searched (renames never reach another board).
    pub boards: Vec<String>,
    /// The environment whose deployments rename cards (default production).
    pub environment: String,
    /// The prefix of a card whose ticket runs there (default `[[ IN PRODUCTION ]]`).
    pub deployed_prefix: String,
    /// The prefix of a card whose ticket was removed from there (default `[[ NOT DEPLOYED ]]`).
    pub removed_prefix: String,
    /// Also find cards by a comment naming a shipped or removed commit's full SHA.
    pub by_commit: bool,
    /// Only keys of these projects; empty: any key but GitHub's `#123`.
    pub projects: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJira {
    id: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    environments: Option<Spanned<Vec<String>>>,
    label: Option<Spanned<String>>,
    comment: Option<bool>,
    transition: Option<Spanned<String>>,
    projects: Option<Spanned<Vec<String>>>,
    commit_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrello {
    id: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    key_env: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    boards: Option<Spanned<Vec<String>>>,
    environment: Option<Spanned<String>>,
    deployed_prefix: Option<Spanned<String>>,
    removed_prefix: Option<Spanned<String>>,
    by_commit: Option<bool>,
    projects: Option<Spanned<Vec<String>>>,
}

/// A required, non-empty string key of a table.
fn required(v: Option<Spanned<String>>, table: &std::ops::Range<usize>, key: &str) -> Result<Spanned<String>, Bad> {
    match v {
        None => Err((table.clone(), format!("{key} is required"))),
        Some(s) if s.get_ref().trim().is_empty() => Err((s.span(), format!("{key}: empty"))),
        Some(s) => Ok(s),
    }
}

/// The target id: the one set (non-empty, not taken) or the default.
fn target_id(
    id: Option<Spanned<String>>,
    default: String,
    at: &std::ops::Range<usize>,
    name: &str,
    taken: &mut Vec<String>,
) -> Result<String, Bad> {
    let (id, span) = match id {
        Some(i) => (i.get_ref().clone(), i.span()),
        None => (default, at.clone()),
    };
    if id.trim().is_empty() || taken.contains(&id) {
        return Err((span, format!("{name}: id {id:?} is empty or taken (set `id`)")));
    }
    taken.push(id.clone());
    Ok(id)
}

/// A list of project keys: upper-case letters, digits and `_`, led by a letter.
fn projects(v: Option<Spanned<Vec<String>>>, name: &str) -> Result<Vec<String>, Bad> {
    let Some(v) = v else { return Ok(vec![]) };
    let ok = |p: &String| {
        p.starts_with(|c: char| c.is_ascii_uppercase())
            && p.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    match v.get_ref().iter().find(|p| !ok(p)) {
        Some(p) => Err((v.span(), format!("{name}.projects: {p:?} is not a Jira project key (like SHOP)"))),
        None => Ok(v.into_inner()),
    }
}

/// An http(s) base URL without a trailing slash, its userinfo registered as a secret.
fn base_url(u: &Spanned<String>, name: &str) -> Result<(String, String), Bad> {
    crate::redact::register_url(u.get_ref());
    let Some(host) = http_host(u.get_ref()) else {
        return Err((u.span(), format!("{name}.url: not an http(s) URL")));
    };
    Ok((u.get_ref().trim_end_matches('/').to_string(), host.to_string()))
}

/// Validates `[[publish.jira]]` entries, taking their ids.
fn jira(raw: Vec<Spanned<RawJira>>, taken: &mut Vec<String>) -> Result<Vec<JiraTarget>, Bad> {
    let mut out = Vec::new();
    for (i, j) in raw.into_iter().enumerate() {
        let name = format!("publish.jira[{i}]");
        let table = j.span();
        let j = j.into_inner();
        let url = required(j.url, &table, &format!("{name}.url"))?;
        let (url, host) = base_url(&url, &name)?;
        let email = required(j.email, &table, &format!("{name}.email"))?.into_inner();
        let token_env = required(j.token_env, &table, &format!("{name}.token_env"))?.into_inner();
        let environments = match j.environments {
            Some(e) if e.get_ref().is_empty() || e.get_ref().iter().any(|s| s.trim().is_empty()) => {
                return Err((e.span(), format!("{name}.environments: empty, or an empty name")));
            }
            Some(e) => e.into_inner(),
            None => vec!["production".to_string()],
        };
        let label = match j.label {
            Some(l) if l.get_ref().chars().any(char::is_whitespace) => {
                return Err((l.span(), format!("{name}.label: Jira labels cannot contain spaces")));
            }
            Some(l) if l.get_ref().is_empty() => None,
            Some(l) => Some(l.into_inner()),
            None => Some("deployed-{environment}".to_string()),
        };
        let transition = match j.transition {
            Some(t) if t.get_ref().trim().is_empty() => return Err((t.span(), format!("{name}.transition: empty"))),
            t => t.map(|t| t.get_ref().trim().to_string()),
        };
        let comment = j.comment.unwrap_or(true);
        if label.is_none() && !comment && transition.is_none() {
            return Err((table, format!("{name}: nothing to do (no label, no comment, no transition)")));
        }
        let commit_url = match j.commit_url {
            Some(c) if http_host(c.get_ref()).is_none() || !c.get_ref().contains("{sha}") => {
                return Err((c.span(), format!("{name}.commit_url: an http(s) URL with {{sha}}")));
            }
            c => c.map(Spanned::into_inner),
        };
        let projects = projects(j.projects, &name)?;
        let id = target_id(j.id, format!("jira:{host}"), &table, &name, taken)?;
        out.push(JiraTarget {
            id,
            url,
            email,
            token_env,
            environments,
            label,
            comment,
            transition,
            projects,
            commit_url,
        });
    }
    Ok(out)
}

/// Validates `[[publish.trello]]` entries, taking their ids.
fn trello(raw: Vec<Spanned<RawTrello>>, taken: &mut Vec<String>) -> Result<Vec<TrelloTarget>, Bad> {
    let mut out = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let name = format!("publish.trello[{i}]");
        let table = t.span();
        let t = t.into_inner();
        let url = match &t.url {
            Some(u) => base_url(u, &name)?.0,
            None => "https://api.trello.com".to_string(),
        };
        let key_env = required(t.key_env, &table, &format!("{name}.key_env"))?.into_inner();
        let token_env = required(t.token_env, &table, &format!("{name}.token_env"))?.into_inner();
        let boards = match t.boards {
            None => return Err((table, format!("{name}.boards is required (the board ids to search)"))),
            Some(b) if b.get_ref().is_empty() => return Err((b.span(), format!("{name}.boards: empty"))),
            Some(b) => {
                match b.get_ref().iter().find(|id| id.is_empty() || !id.bytes().all(|c| c.is_ascii_alphanumeric())) {
                    Some(bad) => return Err((b.span(), format!("{name}.boards: {bad:?} is not a board id"))),
                    None => b.into_inner(),
                }
            }
        };
        let environment = match t.environment {
            Some(e) => required(Some(e), &table, &format!("{name}.environment"))?.into_inner(),
            None => "production".to_string(),
        };
        let prefix = |v: Option<Spanned<String>>, key: &str, default: &str| match v {
            Some(p) => required(Some(p), &table, &format!("{name}.{key}")).map(|p| p.get_ref().trim().to_string()),
            None => Ok(default.to_string()),
        };
        let removed_span = t.removed_prefix.as_ref().map_or(table.clone(), Spanned::span);
        let deployed_prefix = prefix(t.deployed_prefix, "deployed_prefix", "[[ IN PRODUCTION ]]")?;
        let removed_prefix = prefix(t.removed_prefix, "removed_prefix", "[[ NOT DEPLOYED ]]")?;
        if deployed_prefix == removed_prefix {
            return Err((removed_span, format!("{name}: deployed_prefix and removed_prefix are the same")));
        }
        let projects = projects(t.projects, &name)?;
        let id = target_id(t.id, format!("trello:{}", boards.join("+")), &table, &name, taken)?;
        out.push(TrelloTarget {
            id,
            url,
            key_env,
            token_env,
            boards,
            environment,
            deployed_prefix,
            removed_prefix,
            by_commit: t.by_commit.unwrap_or(false),
            projects,
        });
    }
    Ok(out)
}

// ---- GitHub targets: Deployments, issues and pull requests ---------------------------------

/// Where a GitHub target writes: the API, the repository, the token's variable, and which
/// environments it publishes under which GitHub names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubRepo {
    /// `https://api.github.com`, or GitHub Enterprise Server's `https://HOST/api/v3`
    /// (without a trailing `/`).
    pub api_url: String,
    /// `OWNER/REPO`; None in the file: the origin remote's when it is on github.com (filled
    /// in when the repository is opened), else publishing says to set it.
    pub repository: Option<String>,
    /// The environment variable holding the token (`GITHUB_TOKEN` unless set).
    pub token_env: String,
    /// prodiff environment -> GitHub environment name; empty: every environment, under its
    /// own name.
    pub environments: BTreeMap<String, String>,
}

impl GitHubRepo {
    /// The GitHub name of a prodiff environment, when this target publishes it.
    pub fn environment<'a>(&'a self, env: &'a str) -> Option<&'a str> {
        if self.environments.is_empty() {
            return Some(env);
        }
        self.environments.get(env).map(String::as_str)
    }
}

/// `[[publish.github_deployments]]`: a GitHub deployment and its status per environment change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubDeployments {
    /// The target's id in the ledger (`github-deployments` unless set).
    pub id: String,
    pub github: GitHubRepo,
    /// prodiff environment -> the URL its statuses link to (`environment_url`).
    pub environment_urls: BTreeMap<String, String>,
}

/// `[[publish.github_issues]]`: labels (and a comment once) on the issues and pull
/// requests a deployment shipped or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubIssues {
    /// The target's id in the ledger (`github-issues` unless set).
    pub id: String,
    pub github: GitHubRepo,
    /// The label's name, `{environment}` standing for the GitHub environment name
    /// (`deployed:{environment}` unless set).
    pub label: String,
    /// Whether an issue gets a comment the first time it reaches an environment.
    pub comment: bool,
}

/// The GitHub API when `api_url` is not set.
pub const GITHUB_API: &str = "https://api.github.com";
/// The token's variable when `token_env` is not set.
pub const GITHUB_TOKEN_ENV: &str = "GITHUB_TOKEN";
/// The label when `label` is not set.
pub const GITHUB_LABEL: &str = "deployed:{environment}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGitHubDeployments {
    id: Option<Spanned<String>>,
    repository: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    environments: Option<BTreeMap<String, Spanned<String>>>,
    environment_urls: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGitHubIssues {
    id: Option<Spanned<String>>,
    repository: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    environments: Option<BTreeMap<String, Spanned<String>>>,
    label: Option<Spanned<String>>,
    comment: Option<bool>,
}

/// The keys both GitHub tables share.
struct RawGitHub<'a> {
    key: String,
    table: std::ops::Range<usize>,
    repository: Option<&'a Spanned<String>>,
    api_url: Option<&'a Spanned<String>>,
    token_env: Option<&'a Spanned<String>>,
    environments: Option<&'a BTreeMap<String, Spanned<String>>>,
}

/// Validates the GitHub tables, their ids against (and into) `taken`.
fn github(
    deployments: Vec<Spanned<RawGitHubDeployments>>,
    issues: Vec<Spanned<RawGitHubIssues>>,
    taken: &mut Vec<String>,
) -> Result<(Vec<GitHubDeployments>, Vec<GitHubIssues>), Bad> {
    let deployments: Result<Vec<_>, _> =
        deployments.iter().enumerate().map(|(i, t)| github_deployments(i, t, taken)).collect();
    let deployments = deployments?;
    let issues: Result<Vec<_>, _> = issues.iter().enumerate().map(|(i, t)| github_issues(i, t, taken)).collect();
    Ok((deployments, issues?))
}

fn github_deployments(
    i: usize,
    t: &Spanned<RawGitHubDeployments>,
    taken: &mut Vec<String>,
) -> Result<GitHubDeployments, Bad> {
    let (key, r) = (format!("publish.github_deployments[{i}]"), t.get_ref());
    let shared = RawGitHub {
        key: key.clone(),
        table: t.span(),
        repository: r.repository.as_ref(),
        api_url: r.api_url.as_ref(),
        token_env: r.token_env.as_ref(),
        environments: r.environments.as_ref(),
    };
    let github = github_repo(&shared)?;
    let id = github_id(&key, r.id.as_ref(), "github-deployments", t.span(), taken)?;
    let mut environment_urls = BTreeMap::new();
    for (env, url) in r.environment_urls.iter().flatten() {
        if http_host(url.get_ref()).is_none() {
            return Err((url.span(), format!("{key}.environment_urls.{env}: not an http(s) URL")));
        }
        if github.environment(env).is_none() {
            return Err((url.span(), format!("{key}.environment_urls.{env}: not one of its `environments`")));
        }
        environment_urls.insert(env.clone(), url.get_ref().clone());
    }
    Ok(GitHubDeployments { id, github, environment_urls })
}

fn github_issues(i: usize, t: &Spanned<RawGitHubIssues>, taken: &mut Vec<String>) -> Result<GitHubIssues, Bad> {
    let (key, r) = (format!("publish.github_issues[{i}]"), t.get_ref());
    let shared = RawGitHub {
        key: key.clone(),
        table: t.span(),
        repository: r.repository.as_ref(),
        api_url: r.api_url.as_ref(),
        token_env: r.token_env.as_ref(),
        environments: r.environments.as_ref(),
    };
    let github = github_repo(&shared)?;
    let id = github_id(&key, r.id.as_ref(), "github-issues", t.span(), taken)?;
    let label = match &r.label {
        Some(l) if !l.get_ref().contains("{environment}") || l.get_ref().trim() != l.get_ref() => {
            let m = format!("{key}.label: a label name with {{environment}}, such as {GITHUB_LABEL:?}");
            return Err((l.span(), m));
        }
        Some(l) => l.get_ref().clone(),
        None => GITHUB_LABEL.to_string(),
    };
    Ok(GitHubIssues { id, github, label, comment: r.comment.unwrap_or(true) })
}

/// The repository, API, token variable and environments of a GitHub table.
fn github_repo(raw: &RawGitHub) -> Result<GitHubRepo, Bad> {
    let key = &raw.key;
    let repository = match raw.repository {
        Some(r) if !is_repository(r.get_ref()) => {
            return Err((r.span(), format!("{key}.repository: {:?} is not OWNER/REPO", r.get_ref())));
        }
        r => r.map(|r| r.get_ref().clone()),
    };
    let api_url = match raw.api_url {
        Some(u) if http_host(u.get_ref()).is_none() => {
            return Err((u.span(), format!("{key}.api_url: not an http(s) URL")));
        }
        Some(u) => {
            crate::redact::register_url(u.get_ref());
            u.get_ref().trim_end_matches('/').to_string()
        }
        None => GITHUB_API.to_string(),
    };
    let token_env = match raw.token_env {
        Some(t) if t.get_ref().trim().is_empty() => return Err((t.span(), format!("{key}.token_env: empty"))),
        Some(t) => t.get_ref().clone(),
        None => GITHUB_TOKEN_ENV.to_string(),
    };
    let mut environments = BTreeMap::new();
    if let Some(envs) = raw.environments {
        if envs.is_empty() {
            return Err((raw.table.clone(), format!("{key}.environments: empty (leave it out for every environment)")));
        }
        for (env, name) in envs {
            if name.get_ref().trim().is_empty() {
                return Err((name.span(), format!("{key}.environments.{env}: an empty GitHub environment name")));
            }
            environments.insert(env.clone(), name.get_ref().clone());
        }
    }
    Ok(GitHubRepo { api_url, repository, token_env, environments })
}

/// `OWNER/REPO` as GitHub spells names: letters, digits, `-`, `_`, `.`.
pub fn is_repository(s: &str) -> bool {
    let name = |p: &str| {
        !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(s.split_once('/'), Some((o, r)) if name(o) && name(r))
}

/// A GitHub table's id: as set, else `default`; unique among `taken`, which it joins.
fn github_id(
    key: &str,
    id: Option<&Spanned<String>>,
    default: &str,
    table: std::ops::Range<usize>,
    taken: &mut Vec<String>,
) -> Result<String, Bad> {
    let value = id.map_or(default, |v| v.get_ref().as_str()).to_string();
    let span = id.map_or(table, Spanned::span);
    if value.trim().is_empty() || taken.contains(&value) {
        return Err((span, format!("{key}: id {value:?} is empty or taken (set `id`)")));
    }
    taken.push(value.clone());
    Ok(value)
}
