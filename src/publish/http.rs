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
    /// Seconds to wait before asking again, when the target said (see `rate_limit`).
    pub retry_after: Option<i64>,
    /// The target said to slow down (429, or a 403 that is a rate limit): nothing more goes
    /// to it in this run.
    pub limited: bool,
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
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let num = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let limit = rate_limit(status, &num, &body, now);
    Ok(Response { status, retry_after: limit.wait, limited: limit.limited, body })
}

/// What an answer says about waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct Limit {
    pub wait: Option<i64>,
    pub limited: bool,
}

/// Reads an answer's rate-limit signals, as GitHub documents them (and Slack, Jira and
/// Trello follow): `Retry-After` in seconds (or an HTTP date) is the wait; else, when
/// `x-ratelimit-remaining` is 0, until `x-ratelimit-reset` (unix seconds); a 429, or a 403
/// with none remaining, a `Retry-After` or "secondary rate limit" in the body, is a rate
/// limit (and a 503 that names a time is a server asking for one), and one that names no
/// time waits a minute.
pub fn rate_limit(status: u16, header: &dyn Fn(&str) -> Option<String>, body: &str, now: i64) -> Limit {
    let num = |name: &str| header(name).and_then(|v| v.trim().parse::<i64>().ok());
    let retry_after = header("retry-after").and_then(|v| {
        let v = v.trim().to_string();
        v.parse::<i64>().ok().or_else(|| chrono::DateTime::parse_from_rfc2822(&v).ok().map(|t| t.timestamp() - now))
    });
    let exhausted = num("x-ratelimit-remaining") == Some(0);
    let wait = match (retry_after, exhausted, num("x-ratelimit-reset")) {
        (Some(s), _, _) => Some(s.max(0)),
        (None, true, Some(reset)) => Some((reset - now).max(0)),
        _ => None,
    };
    let secondary = body.to_ascii_lowercase().contains("secondary rate limit");
    let limited = status == 429
        || (status == 403 && (exhausted || retry_after.is_some() || secondary))
        || (status == 503 && retry_after.is_some());
    let wait = if limited { Some(wait.unwrap_or(60)) } else { wait };
    Limit { wait, limited }
}

#[cfg(test)]
mod tests {
    use super::{rate_limit, Limit};

    fn limit(status: u16, headers: &[(&str, &str)], body: &str) -> Limit {
        let h = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        rate_limit(status, &h, body, 1_000)
    }

    #[test]
    fn rate_limits_as_github_documents_them() {
        assert_eq!(limit(429, &[("retry-after", "30")], ""), Limit { wait: Some(30), limited: true });
        assert_eq!(limit(429, &[], ""), Limit { wait: Some(60), limited: true });
        let primary = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1300")];
        assert_eq!(limit(403, &primary, ""), Limit { wait: Some(300), limited: true });
        // None remaining but no reset time: still a limit, a minute.
        assert_eq!(limit(403, &[("x-ratelimit-remaining", "0")], ""), Limit { wait: Some(60), limited: true });
        let body = r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#;
        assert_eq!(limit(403, &[], body), Limit { wait: Some(60), limited: true });
        assert_eq!(limit(403, &[("retry-after", "120")], ""), Limit { wait: Some(120), limited: true });
        assert_eq!(
            limit(403, &[("retry-after", "Thu, 01 Jan 1970 00:20:00 GMT")], ""),
            Limit { wait: Some(200), limited: true }
        );
        // A 403 that is a permission problem is no rate limit.
        assert_eq!(
            limit(403, &[("x-ratelimit-remaining", "4999")], r#"{"message":"Resource not accessible by integration"}"#),
            Limit { wait: None, limited: false }
        );
        assert_eq!(limit(500, &[("retry-after", "5")], ""), Limit { wait: Some(5), limited: false });
    }
}
