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
}

impl PublishConfig {
    /// Whether any target is configured (`record` and `watch` publish only then).
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.slack.is_empty()
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
    Ok(PublishConfig { webhooks, slack })
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
