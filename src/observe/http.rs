//! Version endpoints: services that publish their build commit at a URL (Dockerflow's
//! `/__version__` with `{"commit": …}`, a bare SHA, or anything a JSON pointer or a regular
//! expression can pick out). What they report is compared with what runs, like a version
//! store. One request at a time, each bounded by a timeout; an endpoint that is slow, fails
//! or answers something that names no commit is `source-unreachable`, naming the URL.

use regex::Regex;

use super::versions::Reported;
use crate::model::{Code, Finding};

/// Bodies larger than this are not read: a version endpoint answers in bytes, not megabytes.
const MAX_BODY: usize = 64 * 1024;

pub use crate::config::observe::Endpoint;

/// Asks every endpoint of `environment`, one after another, on the current runtime.
pub fn read(endpoints: &[Endpoint], environment: &str) -> (Vec<Reported>, Vec<Finding>) {
    let (mut reported, mut findings) = (Vec::new(), Vec::new());
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return (reported, findings);
    };
    for e in endpoints {
        match rt.block_on(ask(e)) {
            Ok(value) => reported.push(Reported {
                environment: environment.to_string(),
                service: e.service.clone(),
                value,
                origin: format!("version endpoint {}", e.url),
            }),
            Err(message) => {
                let mut f = Finding::new(
                    Code::SourceUnreachable,
                    format!("version endpoint {} ({}): {message}", e.url, e.service),
                )
                .hint("check the URL from where prodiff runs, or its pointer/regex")
                .key(e.url.clone());
                f.environment = Some(environment.to_string());
                f.service = Some(e.service.clone());
                findings.push(f);
            }
        }
    }
    (reported, findings)
}

async fn ask(e: &Endpoint) -> Result<String, String> {
    let client = reqwest::Client::builder().timeout(e.timeout).build().map_err(|err| err.to_string())?;
    let response = client.get(&e.url).send().await.map_err(|err| {
        if err.is_timeout() {
            format!("no answer within {} ms", e.timeout.as_millis())
        } else {
            super::error_chain(&err)
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let bytes = read_limited(response).await?;
    let body = String::from_utf8_lossy(&bytes);
    commit_in(&body, e.pointer.as_deref(), e.regex.as_ref()).ok_or_else(|| {
        // The body may echo the request (its `Authorization` included): redacted whole
        // first (a cut could split a secret), then a short excerpt.
        let excerpt: String = crate::redact::text(&body).chars().take(80).collect();
        format!("answered, but no commit found in {excerpt:?}")
    })
}

/// The body, read chunk by chunk and abandoned as soon as it passes `MAX_BODY`: the
/// limit bounds what is read, not only what is kept.
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_large = || format!("answered more than a version endpoint should ({MAX_BODY} bytes)");
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| super::error_chain(&err))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The commit in a body: by regex, else by JSON pointer (default `/commit`), else the body
/// itself when it is a bare SHA.
pub fn commit_in(body: &str, pointer: Option<&str>, regex: Option<&Regex>) -> Option<String> {
    let is_sha = |s: &str| (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(re) = regex {
        let c = re.captures(body)?;
        let m = c.get(1).or_else(|| c.get(0))?.as_str().trim().to_string();
        return is_sha(&m).then_some(m);
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let found = v.pointer(pointer.unwrap_or("/commit"))?.as_str()?.trim().to_string();
        return is_sha(&found).then_some(found);
    }
    let bare = body.trim();
    (pointer.is_none() && is_sha(bare)).then(|| bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_name_a_commit() {
        let sha = "9f3c2e1a4b5c6d7e8f9012345678901234567890";
        assert_eq!(commit_in(sha, None, None).as_deref(), Some(sha));
        assert_eq!(
            commit_in(&format!("{{\"commit\": \"{sha}\", \"version\": \"1.4.2\"}}"), None, None).as_deref(),
            Some(sha)
        );
        assert_eq!(
            commit_in(&format!("{{\"build\": {{\"git\": \"{sha}\"}}}}"), Some("/build/git"), None).as_deref(),
            Some(sha)
        );
        let re = Regex::new(r"revision: ([0-9a-f]+)").unwrap();
        assert_eq!(commit_in(&format!("app 1.4\nrevision: {sha}\n"), None, Some(&re)).as_deref(), Some(sha));
        assert_eq!(commit_in("<html>oops</html>", None, None), None);
        assert_eq!(commit_in("{\"commit\": \"not a sha\"}", None, None), None);
    }
}
