//! The GitHub Deployments target, and what both GitHub targets share (the REST API's
//! headers, the token, the repository, GitHub's error messages).
//!
//! Each environment change becomes a deployment of the commit that runs
//! (`POST /repos/{owner}/{repo}/deployments`: `ref` = the SHA, `auto_merge: false` so GitHub
//! never merges anything, `required_contexts: []` so no status check stands in the way),
//! then its status (`POST …/deployments/{id}/statuses`). The deployment's id is kept in the
//! ledger's delivery state, so a status that failed is retried on the same deployment, never
//! on a second one. A rollback is a new deployment of the older SHA, said so in the
//! description. A state with several commits (a partial rollout) is one deployment of the
//! commit this change brought (else the one with most replicas), with the status
//! `in_progress` and the others named: the environment then still shows the older
//! deployment as well, which is what runs. An image without a commit has no deployment: the
//! event is acknowledged with the reason.
//!
//! Builds requests only; `publish` sends them. Never reads git: the repository comes from
//! config (or the origin remote, filled in by `commands` when it opens the repository).

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::http::{Request, Response};
use super::{event, secret_from_env, Done, Skip, Step, Target};
use crate::config::publish::{GitHubDeployments, GitHubRepo, PublishConfig};
use crate::config::report::{Hosting, Service};
use crate::ledger::{Kind, Part, Span};

/// The REST API version requested (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
/// GitHub's limit on a status description; deployments get the same.
const MAX_DESCRIPTION: usize = 140;

/// Fills in the repository of every GitHub target that names none from the origin remote,
/// when that is on github.com (`git@github.com:OWNER/REPO.git`, `https://github.com/…`).
pub fn default_repository(config: &mut PublishConfig, origin: Option<&str>) {
    let Some(repository) = origin.and_then(github_repository) else { return };
    let targets = config.github_deployments.iter_mut().map(|t| &mut t.github);
    for g in targets.chain(config.github_issues.iter_mut().map(|t| &mut t.github)) {
        g.repository.get_or_insert_with(|| repository.clone());
    }
}

/// `OWNER/REPO` of a github.com remote URL.
fn github_repository(url: &str) -> Option<String> {
    let hosting = Hosting::from_remote(url).filter(|h| h.service == Service::GitHub)?;
    let path = hosting.base.split_once("github.com/")?.1;
    crate::config::publish::is_repository(path).then(|| path.to_string())
}

/// One GitHub target's API: where, as whom.
pub(super) struct Api<'a> {
    github: &'a GitHubRepo,
    repository: &'a str,
    token: String,
}

impl<'a> Api<'a> {
    /// The API for target `id` of `[[publish.TABLE]]`: its repository (an error says to set
    /// one) and its token (from the environment, registered with the redaction layer).
    pub(super) fn new(id: &str, table: &str, github: &'a GitHubRepo) -> Result<Api<'a>> {
        let repository = github.repository.as_deref().ok_or_else(|| {
            anyhow!(
                "publish target {id}: no repository: set `repository = \"OWNER/REPO\"` in its \
                 [[publish.{table}]] table (the origin remote is not on github.com)"
            )
        })?;
        let token = secret_from_env(id, &github.token_env, "token")?;
        Ok(Api { github, repository, token })
    }

    /// A request to `/repos/OWNER/REPO{path}` with GitHub's headers and a JSON body.
    pub(super) fn request(&self, method: &'static str, path: &str, body: Option<&Value>) -> Request {
        let url = format!("{}/repos/{}{path}", self.github.api_url, self.repository);
        let mut headers = vec![
            ("accept".to_string(), "application/vnd.github+json".to_string()),
            ("authorization".to_string(), format!("Bearer {}", self.token)),
            ("user-agent".to_string(), concat!("prodiff/", env!("CARGO_PKG_VERSION")).to_string()),
            ("x-github-api-version".to_string(), API_VERSION.to_string()),
        ];
        if body.is_some() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        Request { method, url, headers, body: body.map_or_else(String::new, Value::to_string) }
    }
}

/// GitHub's error answer as a message: `HTTP 422 Validation Failed: No ref found for: main`
/// (`message`, then each of `errors`), or the start of the body when it is not GitHub's JSON.
pub(super) fn explain(r: &Response) -> String {
    let parsed: Option<Value> = serde_json::from_str(&r.body).ok();
    let Some(message) = parsed.as_ref().and_then(|v| v["message"].as_str()) else {
        let body = crate::redact::clip(&crate::redact::text(r.body.trim()), 200);
        return format!("HTTP {} {body}", r.status).trim_end().to_string();
    };
    let errors: Vec<String> =
        parsed.as_ref().and_then(|v| v["errors"].as_array()).into_iter().flatten().map(error).collect();
    let text = if errors.is_empty() { message.to_string() } else { format!("{message}: {}", errors.join("; ")) };
    format!("HTTP {} {}", r.status, crate::redact::clip(&crate::redact::text(&text), 300))
}

/// One of a 422's `errors`: its `message`, else `resource.field code`.
fn error(e: &Value) -> String {
    if let Some(m) = e["message"].as_str().or(e.as_str()) {
        return m.to_string();
    }
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    format!("{}.{} {}", s("resource"), s("field"), s("code")).trim().to_string()
}

/// Clips a description to GitHub's 140 characters.
fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_DESCRIPTION {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_DESCRIPTION - 1).collect();
    out.push('…');
    out
}

/// The commit a state's deployment is of, and whether it is a partial rollout.
#[derive(Debug, PartialEq, Eq)]
pub struct Pick<'a> {
    pub part: &'a Part,
    pub sha: &'a str,
    /// The state runs other images too.
    pub partial: bool,
}

/// The commit to deploy: the only one, or of several the first that this change shipped,
/// else the one with most replicas (the first such); None when no image has a commit.
pub fn pick(span: &Span) -> Option<Pick<'_>> {
    let resolved: Vec<&Part> = span.parts.iter().filter(|p| p.commit.is_some()).collect();
    let mut keys: Vec<String> = span.parts.iter().map(Part::key).collect();
    keys.sort();
    keys.dedup();
    let partial = keys.len() > 1;
    let shipped = |p: &&&Part| span.change.shipped.iter().any(|c| Some(&c.sha) == p.commit.as_ref());
    let part = match resolved.iter().find(shipped) {
        Some(p) => *p,
        None => *resolved.iter().rev().max_by_key(|p| p.replicas)?,
    };
    Some(Pick { part, sha: part.commit.as_deref()?, partial })
}

/// `1.4.1 (10fea9a) + 1.4.0 (3340c29)`.
fn labels(parts: &[Part]) -> String {
    parts.iter().map(Part::label).collect::<Vec<_>>().join(" + ")
}

/// What the deployment and its status say: the version, and how it came.
pub fn description(span: &Span, pick: &Pick) -> String {
    let (service, version) = (&span.service, pick.part.label());
    let from = span.change.from.as_deref().map(labels);
    let text = if pick.partial {
        let others: Vec<&Part> = span.parts.iter().filter(|p| p.key() != pick.part.key()).collect();
        let others = others.iter().map(|p| p.label()).collect::<Vec<_>>().join(" + ");
        format!("{service} {version}: partial rollout, beside {others}")
    } else {
        match (span.change.kind, from) {
            (Kind::Rollback, Some(from)) => format!("{service} {version}: rollback from {from}"),
            (Kind::FirstSeen, _) | (_, None) => format!("{service} {version}: first seen running"),
            (_, Some(from)) => format!("{service} {version}, from {from}"),
        }
    };
    clip(&text)
}

/// The deployment's request body.
fn deployment_body(span: &Span, pick: &Pick, environment: &str) -> Value {
    json!({
        "ref": pick.sha,
        "environment": environment,
        "auto_merge": false,
        "required_contexts": [],
        "description": description(span, pick),
        "payload": {
            "prodiff": {
                "event": event::id(span),
                "kind": span.change.kind.as_str(),
                "service": span.service,
                "environment": span.environment,
                "version": pick.part.label(),
                "running": span.parts.iter().map(Part::label).collect::<Vec<_>>(),
                "from": span.change.from.as_ref().map(|f| f.iter().map(Part::label).collect::<Vec<_>>()),
            }
        },
    })
}

/// The status's request body.
fn status_body(target: &GitHubDeployments, span: &Span, pick: &Pick) -> Value {
    let mut body = json!({
        "state": if pick.partial { "in_progress" } else { "success" },
        "description": description(span, pick),
    });
    if let Some(url) = target.environment_urls.get(&span.environment) {
        body["environment_url"] = json!(url);
    }
    body
}

/// What GitHub answered a deployment: its `id`, or (a 202 "Auto-merged …", which creates
/// none) why there is no id.
fn deployment_id(r: &Response) -> Result<Value, String> {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    match v["id"].as_u64() {
        Some(id) => Ok(json!(id)),
        None => {
            let said = v["message"].as_str().map_or_else(|| crate::redact::clip(&r.body, 200), str::to_string);
            Err(format!("HTTP {} without a deployment id: {}", r.status, crate::redact::text(&said)))
        }
    }
}

/// The status URL's id: the kept one, or `{deployment id}` in a dry run.
fn kept_id(done: &Done) -> String {
    match done.get("deployment") {
        Some(Value::Number(n)) => n.to_string(),
        _ => "{deployment id}".to_string(),
    }
}

impl Target for GitHubDeployments {
    fn id(&self) -> &str {
        &self.id
    }

    /// Two steps: the deployment, then its status on the kept id.
    fn next(&self, span: &Span, done: &Done) -> Result<Option<Step>> {
        let (Some(environment), Some(pick)) = (self.github.environment(&span.environment), pick(span)) else {
            return Ok(None);
        };
        let api = Api::new(&self.id, "github_deployments", &self.github)?;
        if !done.contains_key("deployment") {
            let body = deployment_body(span, &pick, environment);
            let request = api.request("POST", "/deployments", Some(&body));
            return Ok(Some(Step { keep: deployment_id, ..Step::new("deployment", request) }));
        }
        if !done.contains_key("status") {
            let path = format!("/deployments/{}/statuses", kept_id(done));
            return Ok(Some(Step::new("status", api.request("POST", &path, Some(&status_body(self, span, &pick))))));
        }
        Ok(None)
    }

    fn skip(&self, span: &Span) -> Skip {
        if self.github.environment(&span.environment).is_none() {
            return Skip::Quietly;
        }
        match pick(span) {
            Some(_) => Skip::No,
            None => Skip::Because(format!("no deployment: no commit resolved for {}", labels(&span.parts))),
        }
    }

    fn explain(&self, r: &Response) -> String {
        explain(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Change, Commit};

    fn part(tag: &str, commit: Option<&str>, replicas: usize) -> Part {
        Part {
            image: format!("registry.example.com/shop/api:{tag}"),
            commit: commit.map(str::to_string),
            digests: vec![],
            replicas,
            started_at: None,
        }
    }

    fn span(kind: Kind, from: Option<Vec<Part>>, parts: Vec<Part>, shipped: &[&str]) -> Span {
        let commit =
            |sha: &&str| Commit { sha: sha.to_string(), subject: String::new(), committed_at: 0, tickets: vec![] };
        Span {
            id: Some(1),
            environment: "production".into(),
            service: "api".into(),
            key: String::new(),
            first_seen: 0,
            last_seen: 0,
            prev_seen: None,
            started_at: None,
            parts,
            change: Change {
                kind,
                from,
                shipped: shipped.iter().map(commit).collect(),
                removed: vec![],
                tickets: vec![],
            },
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_partial_rollout_deploys_the_commit_it_brought_in_progress() {
        let s = span(
            Kind::Deploy,
            Some(vec![part("1.1", Some(A), 2)]),
            vec![part("1.1", Some(A), 1), part("1.3", Some(B), 1)],
            &[B],
        );
        let p = pick(&s).unwrap();
        assert_eq!((p.sha, p.partial), (B, true));
        assert_eq!(description(&s, &p), "api 1.3 (bbbbbbb): partial rollout, beside 1.1 (aaaaaaa)");
        // Narrowed to one commit that shipped nothing new: the most replicas.
        let s = span(Kind::Changed, None, vec![part("1.1", Some(A), 1), part("1.3", Some(B), 3)], &[]);
        assert_eq!(pick(&s).unwrap().sha, B);
    }

    #[test]
    fn a_rollback_says_so_and_an_unresolved_image_has_no_deployment() {
        let s = span(Kind::Rollback, Some(vec![part("1.2", Some(B), 2)]), vec![part("1.1", Some(A), 2)], &[]);
        let p = pick(&s).unwrap();
        assert_eq!((p.sha, p.partial), (A, false));
        assert_eq!(description(&s, &p), "api 1.1 (aaaaaaa): rollback from 1.2 (bbbbbbb)");
        let s = span(Kind::Changed, None, vec![part("nightly", None, 1)], &[]);
        assert_eq!(pick(&s), None);
        // GitHub's 140 characters, at most.
        let long = span(Kind::Deploy, None, vec![part(&"x".repeat(200), Some(A), 1)], &[]);
        let text = description(&long, &pick(&long).unwrap());
        assert_eq!((text.chars().count(), text.ends_with('…')), (140, true));
    }

    #[test]
    fn githubs_errors_read_as_its_message() {
        let r = |status, body: &str| Response { status, retry_after: None, limited: false, body: body.to_string() };
        assert_eq!(
            explain(&r(
                401,
                r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#
            )),
            "HTTP 401 Bad credentials"
        );
        let v = r#"{"message":"Validation Failed","errors":[{"resource":"Deployment","code":"custom","field":"ref","message":"No ref found for: abc"},{"resource":"Deployment","field":"environment","code":"invalid"}],"documentation_url":"x"}"#;
        assert_eq!(
            explain(&r(422, v)),
            "HTTP 422 Validation Failed: No ref found for: abc; Deployment.environment invalid"
        );
        assert_eq!(explain(&r(502, "<html>bad gateway</html>")), "HTTP 502 <html>bad gateway</html>");
    }

    #[test]
    fn the_repository_comes_from_a_github_origin() {
        assert_eq!(github_repository("git@github.com:shop/api.git").as_deref(), Some("shop/api"));
        assert_eq!(github_repository("https://x:tok@github.com/shop/api").as_deref(), Some("shop/api"));
        assert_eq!(github_repository("git@gitlab.com:shop/api.git"), None);
        assert_eq!(github_repository("https://github.com/shop/api/sub"), None);
    }
}
