//! `[publish]`: where deployment events are sent (collaboration tools, never production), as
//! plain data; the `publish` stage sends. Secrets are never in the file: only the names of
//! the environment variables holding them.

use serde::Deserialize;
use toml::Spanned;

/// `[publish]`: the targets, each opt-in.
#[derive(Debug, Clone, Default)]
pub struct PublishConfig {
    pub webhooks: Vec<WebhookTarget>,
    pub slack: Vec<SlackTarget>,
    pub jira: Vec<JiraTarget>,
    pub trello: Vec<TrelloTarget>,
}

impl PublishConfig {
    /// Whether any target is configured (`record` and `watch` publish only then).
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.slack.is_empty() && self.jira.is_empty() && self.trello.is_empty()
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
pub(super) fn validate(raw: RawPublish) -> Result<PublishConfig, (std::ops::Range<usize>, String)> {
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
    let ids: Vec<String> = webhooks.iter().map(|w| w.id.clone()).collect();
    let slack = slack(raw.slack, &ids)?;
    let mut taken: Vec<String> = ids.into_iter().chain(slack.iter().map(|s| s.id.clone())).collect();
    let jira = jira(raw.jira, &mut taken)?;
    let trello = trello(raw.trello, &mut taken)?;
    Ok(PublishConfig { webhooks, slack, jira, trello })
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
