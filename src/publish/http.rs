//! The one HTTP client of publishing (reqwest, rustls): a request as plain data, sent with a
//! timeout, the answer's body read up to a bound. Blocks on the runtime the command entered;
//! never follows redirects (a target's URL is what it is configured to be).

use std::time::Duration;

/// A request as data: what `--dry-run` prints and what `send` sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What a target answered.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// `Retry-After` in seconds (or GitHub's `x-ratelimit-reset` when none remain), if given.
    pub retry_after: Option<i64>,
    /// The first `MAX_BODY` bytes of the body, lossily decoded.
    pub body: String,
}

/// Bytes of a response body kept (error messages only need the start).
pub const MAX_BODY: usize = 64 * 1024;
/// Per request, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Sends `req`; an Err is a transport failure (no answer), redacted.
pub fn send(req: &Request, now: i64) -> Result<Response, String> {
    let handle = tokio::runtime::Handle::try_current().map_err(|e| format!("no runtime: {e}"))?;
    handle.block_on(send_async(req, now)).map_err(|e| crate::redact::text(&format!("{e:#}")))
}

async fn send_async(req: &Request, now: i64) -> anyhow::Result<Response> {
    let client = reqwest::Client::builder().timeout(TIMEOUT).redirect(reqwest::redirect::Policy::none()).build()?;
    let method = reqwest::Method::from_bytes(req.method.as_bytes())?;
    let mut builder = client.request(method, &req.url).body(req.body.clone());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let mut resp = builder.send().await?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers(), now);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok(Response { status, retry_after, body: String::from_utf8_lossy(&body).into_owned() })
}

/// Seconds to wait: `Retry-After` (seconds), else, when `x-ratelimit-remaining` is 0, until
/// `x-ratelimit-reset` (unix seconds).
fn retry_after(h: &reqwest::header::HeaderMap, now: i64) -> Option<i64> {
    let num = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(s) = num("retry-after") {
        return Some(s.max(0));
    }
    match (num("x-ratelimit-remaining"), num("x-ratelimit-reset")) {
        (Some(0), Some(reset)) => Some((reset - now).max(0)),
        _ => None,
    }
}
