//! Credentials the way Docker finds them: `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`), `credHelpers` for this registry over `credsStore`, over the
//! base64 `auth` entries in `auths`. Helpers are run as `docker-credential-<name> get`.
//!
//! Secrets never leave this module in printable form: `Creds` has a redacting `Debug`, and
//! errors name the file or helper, never what it returned.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::reference::DOCKER_HUB;

/// The key Docker Hub credentials are stored under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, PartialEq, Eq)]
pub enum Creds {
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    /// A credential helper answered with user `<token>`: an OAuth2 refresh (identity) token.
    IdentityToken(String),
}

impl fmt::Debug for Creds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Creds::Anonymous => f.write_str("Anonymous"),
            Creds::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Creds::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Creds {
    /// The secret, so that messages can be scrubbed of it.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Creds::Anonymous => None,
            Creds::Basic { password, .. } => Some(password),
            Creds::IdentityToken(t) => Some(t),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CredsError {
    #[error("cannot read docker config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("credential helper docker-credential-{helper} failed for {registry}: {message}")]
    Helper { helper: String, registry: String, message: String },
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The docker config file Docker itself would read.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Credentials for a registry host (as normalised by `reference`: `docker.io` for Hub).
pub fn lookup(registry: &str) -> Result<Creds, CredsError> {
    let Some(path) = config_path().filter(|p| p.is_file()) else {
        return Ok(Creds::Anonymous);
    };
    let bad = |message: String| CredsError::Config { path: path.clone(), message };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let config = parse_config(&text).map_err(bad)?;
    let helper = matching(&config.cred_helpers, registry).cloned().or(config.creds_store.clone());
    if let Some(helper) = helper {
        if let Some(c) = run_helper(&helper, registry)? {
            return Ok(c);
        }
    }
    match matching(&config.auths, registry) {
        Some(entry) => from_entry(entry).map_err(|m| bad(format!("auths entry for {registry}: {m}"))),
        None => Ok(Creds::Anonymous),
    }
}

/// Parses a docker config and registers every secret in it with the redaction layer. The
/// error never quotes the file: serde quotes the bad value, and in this file the bad value
/// is often base64 `user:password` (an `auths` entry written as a bare string).
fn parse_config(text: &str) -> Result<DockerConfig, String> {
    let config: DockerConfig = serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                "a value has the wrong type (expected {\"auths\": {\"HOST\": {\"auth\": \"…\"}}}, \"credHelpers\": {\"HOST\": \"NAME\"}, \"credsStore\": \"NAME\")"
            }
            serde_json::error::Category::Eof => "the JSON ends early",
            _ => "not valid JSON",
        };
        format!("line {} column {}: {what} (values are not quoted: they may be credentials)", e.line(), e.column())
    })?;
    for entry in config.auths.values() {
        register(entry);
    }
    Ok(config)
}

/// Registers an `auths` entry's secrets, whether or not prodiff ends up using it.
fn register(entry: &AuthEntry) {
    if let Some(t) = &entry.identitytoken {
        crate::redact::register(t);
    }
    if let Some(a) = &entry.auth {
        crate::redact::register(a.trim());
        if let Ok(Creds::Basic { user, password }) =
            from_entry(&AuthEntry { auth: Some(a.clone()), identitytoken: None })
        {
            crate::redact::register_login(&user, &password);
        }
    }
}

/// The entry whose key names `registry`: keys may carry a scheme and a path
/// (`https://index.docker.io/v1/`), and Docker Hub has several names.
fn matching<'a, T>(map: &'a BTreeMap<String, T>, registry: &str) -> Option<&'a T> {
    map.iter().find(|(k, _)| key_host(k) == registry).map(|(_, v)| v)
}

fn key_host(key: &str) -> String {
    let no_scheme = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = no_scheme.split('/').next().unwrap_or(no_scheme);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

fn from_entry(entry: &AuthEntry) -> Result<Creds, String> {
    if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Creds::IdentityToken(t.to_string()));
    }
    let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(Creds::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "`auth` is not base64".to_string())?;
    let decoded = String::from_utf8(decoded).map_err(|_| "`auth` is not UTF-8".to_string())?;
    let (user, password) =
        decoded.split_once(':').ok_or_else(|| "`auth` is not base64 of user:password".to_string())?;
    Ok(Creds::Basic { user: user.to_string(), password: password.to_string() })
}

/// Runs `docker-credential-<helper> get`. `Ok(None)` when the helper has nothing stored.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Creds>, CredsError> {
    let fail =
        |message: String| CredsError::Helper { helper: helper.to_string(), registry: registry.to_string(), message };
    let server = if registry == DOCKER_HUB { DOCKER_HUB_KEY } else { registry };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // What a failing helper printed is not shown: it may echo what it holds.
        return Err(fail(format!("exited with {}", out.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail("answered something that is not credentials JSON".into()))?;
    Ok(Some(if answer.username == "<token>" {
        crate::redact::register(&answer.secret);
        Creds::IdentityToken(answer.secret)
    } else {
        crate::redact::register_login(&answer.username, &answer.secret);
        Creds::Basic { user: answer.username, password: answer.secret }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_hosts_and_docker_hub_has_many_names() {
        assert_eq!(key_host(DOCKER_HUB_KEY), "docker.io");
        assert_eq!(key_host("registry-1.docker.io"), "docker.io");
        assert_eq!(key_host("https://ghcr.io"), "ghcr.io");
        assert_eq!(key_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn a_malformed_config_is_reported_without_its_values() {
        let secret = base64::engine::general_purpose::STANDARD.encode("mus:er-pw-cfg1");
        let e = parse_config(&format!("{{\"auths\": {{\"r.example\": \"{secret}\"}}}}")).err().unwrap();
        assert!(e.starts_with("line 1 column"), "{e}");
        assert!(!e.contains(&secret) && !e.contains("er-pw-cfg1"), "{e}");
        let c = parse_config(&format!("{{\"auths\": {{\"r.example\": {{\"auth\": \"{secret}\"}}}}}}")).unwrap();
        assert_eq!(c.auths.len(), 1);
        assert_eq!(crate::redact::text(&format!("x {secret} er-pw-cfg1")), "x [redacted] [redacted]");
    }

    #[test]
    fn auth_entries_decode_and_debug_hides_the_secret() {
        let entry = AuthEntry {
            auth: Some(base64::engine::general_purpose::STANDARD.encode("ada:s3cret:x")),
            identitytoken: None,
        };
        let c = from_entry(&entry).unwrap();
        assert_eq!(c, Creds::Basic { user: "ada".into(), password: "s3cret:x".into() });
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
