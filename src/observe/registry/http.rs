//! The registry's HTTP, held by prodiff rather than by a registry client crate, because
//! prodiff needs what oci-client (the one it used to sit beside) hides: a HEAD that never
//! silently becomes a GET (Docker Hub counts GETs), the status and `Retry-After` of a 429,
//! the `Link` header of a tag list, and size limits.
//!
//! The token exchange is done here too: oci-client's token path has no total deadline and
//! no size bound (a token endpoint dripping a byte every two seconds hung it
//! forever; an endless token body grew without limit). A 401 with a `Bearer` challenge gets
//! a token from the realm (basic auth when the docker config has credentials, an OAuth2
//! refresh-token POST for identity tokens); a `Basic` challenge gets basic auth. Token
//! requests are not counted against the per-host bound. Every token is registered with
//! `redact`, and a refusing token endpoint is quoted only as a short redacted excerpt.
//!
//! Bounded: at most `CONCURRENCY` requests per registry host at once, at most `RETRIES`
//! retries on 429/5xx with backoff that honours `Retry-After` (saturating: a huge value
//! just means "too long, give up"), never waiting more than `MAX_WAIT` in total for one
//! request; every request, token requests included, has a total deadline (the registry
//! timeout, from connecting until the last body byte) and a size limit checked while the
//! body streams in.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use tokio::sync::{OnceCell, Semaphore};

use super::credentials::{self, Creds};
use super::RegistryError;
use crate::reference::DOCKER_HUB;

/// Requests in flight per registry host.
pub const CONCURRENCY: usize = 4;
/// Retries after a 429 or 5xx.
pub const RETRIES: u32 = 3;
/// The longest prodiff waits on retries for one request, whatever `Retry-After` says.
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// The largest token-endpoint answer read (real tokens are a few kilobytes).
pub const TOKEN_LIMIT: usize = 64 << 10;

type CredsAnswer = Result<Creds, credentials::CredsError>;

/// One answer. The body is empty for HEAD.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Transport {
    http: reqwest::Client,
    plain_http: BTreeSet<String>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// `Authorization` header values per (host, repository), once a challenge was answered.
    auth: Mutex<HashMap<(String, String), String>>,
    /// Credentials per host, looked up once (helpers are processes: run off the executor).
    creds: Mutex<HashMap<String, Arc<OnceCell<CredsAnswer>>>>,
    /// The lowest `ratelimit-remaining` each host reported.
    pub rate_limit: Mutex<HashMap<String, u64>>,
}

impl Transport {
    /// `plain_http`: the hosts to talk to over plain HTTP (loopback and configured ones).
    pub fn new(plain_http: BTreeSet<String>, timeout: Duration) -> Result<Transport, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("prodiff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Transport {
            http,
            plain_http,
            hosts: Mutex::default(),
            auth: Mutex::default(),
            creds: Mutex::default(),
            rate_limit: Mutex::default(),
        })
    }

    /// `https://host` or, for loopback and configured hosts, `http://host`. Docker Hub's
    /// API lives on `registry-1.docker.io`.
    pub fn base(&self, host: &str) -> String {
        let scheme = if self.plain_http.contains(host) { "http" } else { "https" };
        let host = if host == DOCKER_HUB { "registry-1.docker.io" } else { host };
        format!("{scheme}://{host}")
    }

    /// Sends `method` to `path` (starting with `/v2/`) of `host`, on behalf of `repository`
    /// (for the token scope). Answers larger than `limit` bytes are refused.
    pub async fn send(
        &self,
        method: Method,
        host: &str,
        repository: &str,
        path: &str,
        accept: Option<&str>,
        limit: usize,
    ) -> Result<Answer, RegistryError> {
        let url = format!("{}{path}", self.base(host));
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            let resp = self.once(&method, host, repository, &url, accept).await?;
            let status = resp.status();
            self.note_rate_limit(host, resp.headers());
            if status == StatusCode::UNAUTHORIZED && !authenticated {
                let challenge = header(resp.headers(), WWW_AUTHENTICATE.as_str());
                self.authenticate(host, repository, &challenge).await?;
                authenticated = true;
                continue;
            }
            if retriable(status) && attempt < RETRIES {
                let wait = retry_after(resp.headers(), chrono::Utc::now()).unwrap_or(backoff(attempt));
                // Saturating: `Retry-After: 18446744073709551615` is "too long", not an overflow.
                if waited.checked_add(wait).is_some_and(|total| total <= MAX_WAIT) {
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    attempt += 1;
                    continue;
                }
            }
            let headers = resp.headers().clone();
            let body = if method == Method::HEAD { Vec::new() } else { read_limited(resp, limit, host, path).await? };
            return Ok(Answer { status, headers, body });
        }
    }

    async fn once(
        &self,
        method: &Method,
        host: &str,
        repository: &str,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let _permit = self.permit(host).await;
        // The URL names repository and reference only; credentials travel in headers,
        // which are never logged.
        tracing::debug!("registry {host}: {method} {url}");
        let started = std::time::Instant::now();
        let mut req = self.http.request(method.clone(), url);
        if let Some(a) = accept {
            req = req.header(ACCEPT, a);
        }
        let auth = self.auth.lock().unwrap().get(&(host.to_string(), repository.to_string())).cloned();
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        let answer = req
            .send()
            .await
            .map_err(|e| RegistryError::Connect { registry: host.to_string(), message: transport_message(&e) });
        match &answer {
            Ok(r) => tracing::debug!(
                "registry {host}: {} {url} in {} ms",
                r.status().as_u16(),
                started.elapsed().as_millis()
            ),
            Err(e) => {
                tracing::info!("registry {host}: {method} {url} failed after {} ms: {e}", started.elapsed().as_millis())
            }
        }
        answer
    }

    async fn permit(&self, host: &str) -> tokio::sync::OwnedSemaphorePermit {
        let sem = self
            .hosts
            .lock()
            .unwrap()
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(CONCURRENCY)))
            .clone();
        sem.acquire_owned().await.expect("semaphores are never closed")
    }

    async fn creds(&self, host: &str) -> Result<Creds, RegistryError> {
        let cell = self.creds.lock().unwrap().entry(host.to_string()).or_default().clone();
        let found = cell
            .get_or_init(|| async {
                let h = host.to_string();
                tokio::task::spawn_blocking(move || credentials::lookup(&h))
                    .await
                    .expect("credential lookups do not panic")
            })
            .await;
        found.clone().map_err(|e| RegistryError::Credentials { registry: host.to_string(), message: e.to_string() })
    }

    /// Answers a 401 challenge: a bearer token from the realm, or basic auth.
    async fn authenticate(&self, host: &str, repository: &str, challenge: &str) -> Result<(), RegistryError> {
        let creds = self.creds(host).await?;
        let fail = |message: String| RegistryError::Auth {
            registry: host.to_string(),
            repository: repository.to_string(),
            message: crate::redact::text(&message),
        };
        let scheme = challenge.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let value = match (scheme.as_str(), &creds) {
            ("basic", Creds::Basic { user, password }) => basic(user, password),
            ("basic", _) => {
                return Err(fail(
                    "the registry wants a user name and password; the docker config has none for it (docker login)"
                        .into(),
                ))
            }
            ("bearer", Creds::IdentityToken(token)) => {
                self.refresh(challenge, repository, token).await.map_err(fail)?
            }
            ("bearer", _) => self.bearer(challenge, repository, &creds).await.map_err(fail)?,
            _ => return Err(fail(format!("unsupported challenge {scheme:?}"))),
        };
        self.auth.lock().unwrap().insert((host.to_string(), repository.to_string()), value);
        Ok(())
    }

    /// The token protocol of distribution: a GET of the challenge's realm with the scope,
    /// basic auth when there are credentials.
    async fn bearer(&self, challenge: &str, repository: &str, creds: &Creds) -> Result<String, String> {
        let params = challenge_params(challenge);
        let realm = params.get("realm").ok_or("the challenge names no realm")?;
        let mut query = vec![("scope", format!("repository:{repository}:pull"))];
        if let Some(service) = params.get("service") {
            query.push(("service", service.clone()));
        }
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
        let sep = if realm.contains('?') { '&' } else { '?' };
        let mut req = self.http.get(format!("{}{sep}{}", realm_url(realm)?, query.join("&")));
        if let Creds::Basic { user, password } = creds {
            req = req.header(AUTHORIZATION, basic(user, password));
        }
        self.token(req).await
    }

    /// Sends a token request and reads the token from its answer, bounded in time (the
    /// client's total deadline) and size (`TOKEN_LIMIT`, checked while reading).
    async fn token(&self, req: reqwest::RequestBuilder) -> Result<String, String> {
        let resp = req.send().await.map_err(|e| format!("token endpoint: {}", transport_message(&e)))?;
        let status = resp.status();
        let body = read_limited(resp, TOKEN_LIMIT, "token endpoint", "").await.map_err(|e| match e {
            RegistryError::TooLarge { .. } => format!("token endpoint answered more than {TOKEN_LIMIT} bytes"),
            RegistryError::Connect { message, .. } => format!("token endpoint: {message}"),
            other => other.to_string(),
        })?;
        if !status.is_success() {
            return Err(format!(
                "token endpoint answered HTTP {}: {}",
                status.as_u16(),
                crate::redact::excerpt(&String::from_utf8_lossy(&body))
            ));
        }
        let not_json = || "token endpoint answered something that is not JSON".to_string();
        let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|_| not_json())?;
        let token = answer["access_token"]
            .as_str()
            .or(answer["token"].as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| "token endpoint gave no token".to_string())?;
        crate::redact::register(token);
        Ok(format!("Bearer {token}"))
    }

    /// Exchanges an identity (refresh) token for an access token, as Docker does: an OAuth2
    /// POST to the challenge's realm (oci-client, for one, has no such path).
    async fn refresh(&self, challenge: &str, repository: &str, token: &str) -> Result<String, String> {
        let params = challenge_params(challenge);
        let realm = params.get("realm").ok_or("the challenge names no realm")?;
        let scope = format!("repository:{repository}:pull");
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("client_id", "prodiff"),
            ("scope", scope.as_str()),
            ("refresh_token", token),
        ];
        if let Some(service) = params.get("service") {
            form.push(("service", service));
        }
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
        let req = self
            .http
            .post(realm_url(realm)?)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        self.token(req).await
    }

    fn note_rate_limit(&self, host: &str, headers: &HeaderMap) {
        let remaining = header(headers, "ratelimit-remaining");
        let Some(n) = remaining.split(';').next().and_then(|n| n.trim().parse::<u64>().ok()) else {
            return;
        };
        let mut all = self.rate_limit.lock().unwrap();
        let low = all.entry(host.to_string()).or_insert(n);
        *low = (*low).min(n);
    }
}

/// The `key="value"` parameters of a `Bearer` challenge (values may hold commas).
fn challenge_params(challenge: &str) -> HashMap<String, String> {
    let rest = challenge.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String =
            chars.by_ref().skip_while(|c| *c == ',' || c.is_whitespace()).take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
}

/// A realm must be an http(s) URL; anything else is refused before a request is made.
fn realm_url(realm: &str) -> Result<&str, String> {
    let lower = realm.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(realm)
    } else {
        Err(format!("the challenge's realm {:?} is not an http(s) URL", crate::redact::excerpt(realm)))
    }
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn basic(user: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b}")
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn retriable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 10.2.3), from `now`; a date already
/// past means at once. Anything else is `None`: the caller backs off on its own.
fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = header(headers, RETRY_AFTER.as_str());
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.to_utc() - now).to_std().unwrap_or(Duration::ZERO))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 << attempt)
}

async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
    host: &str,
    path: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge { registry: host.to_string(), path: path.to_string(), limit };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(RegistryError::Connect { registry: host.to_string(), message: transport_message(&e) })
            }
        }
    }
}

/// A short reason for a transport failure (reqwest's chain, without URLs' query strings).
fn transport_message(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Headers a peer writes: any text parses to an answer, never a panic.
        #[test]
        fn peer_headers_never_panic(s in ".{0,300}") {
            let _ = challenge_params(&s);
            let _ = realm_url(&s);
            let mut h = HeaderMap::new();
            if let Ok(v) = s.parse() {
                h.insert(RETRY_AFTER, v);
            }
            let _ = retry_after(&h, chrono::Utc::now());
        }
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T08:49:07Z").unwrap().to_utc();
        let after = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, v.parse().unwrap());
            retry_after(&h, now)
        };
        assert_eq!(after("7"), Some(Duration::from_secs(7)));
        assert_eq!(after("Wed, 25 Nov 2026 08:49:37 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(after("Wed, 25 Nov 2026 08:00:00 GMT"), Some(Duration::ZERO), "a date already past");
        assert_eq!(after("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn challenges_parse_with_commas_inside_quotes() {
        let p = challenge_params(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "reg");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert_eq!(form_encode("a b/c:d"), "a%20b%2Fc%3Ad");
    }
}
