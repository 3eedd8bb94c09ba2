//! Observe's sections of prodiff.toml (`[[environment]]` sources, `[registry]`), as plain
//! data with the pure parsing config's validation needs. Config fills them in; `observe`
//! reads them. Nothing here talks to a daemon, a cluster or a registry.

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

/// Where pods come from.
#[derive(Clone, Debug, PartialEq)]
pub enum PodSource {
    /// `kubectl get pods -o json` output saved to a file (`-`: stdin).
    File(PathBuf),
    /// A live cluster through `kubectl`.
    Live { context: Option<String>, namespace: Option<String>, selector: Option<String> },
}

/// A version endpoint: an HTTP URL that reports a service's commit.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub service: String,
    pub url: String,
    /// JSON pointer to the commit (`/build/git`); default: Dockerflow's `/commit`.
    pub pointer: Option<String>,
    /// A regex whose group 1 (or whole match) is the commit, for non-JSON bodies.
    pub regex: Option<Regex>,
    pub timeout: Duration,
}

/// Where one environment's declared state lives.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredSource {
    pub repo: std::path::PathBuf,
    pub rev: String,
    /// A file or directory in that repository.
    pub path: String,
}

impl DeclaredSource {
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.repo.display(), self.rev, self.path)
    }
}

/// Where a version store lives: a file, or a command that prints it.
#[derive(Clone, Debug, PartialEq)]
pub enum VersionSource {
    File(PathBuf),
    /// Run with `sh -c` from the config file's directory.
    Command {
        command: String,
        dir: PathBuf,
    },
}

/// One Docker host entry of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSpec {
    /// `unix:///…`, `tcp://…`, `ssh://…`: that daemon.
    Url(String),
    /// `"default"`: whatever the docker CLI would talk to.
    Default,
    /// `{ context = "NAME" }`: that Docker context.
    Context(String),
}

/// `ssh://[user@]host[:port]`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let rest = url.strip_prefix("ssh://").ok_or("not an ssh:// URL")?.trim_end_matches('/');
        if rest.contains('/') {
            return Err("an ssh:// host takes no path (ssh://user@host[:port])".into());
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, _)) if u.contains(':') => {
                // Never echo it: the part after ':' is a password.
                return Err(
                    "a password in an ssh:// URL is not supported: use a key (ssh-agent or ~/.ssh/config)".into()
                );
            }
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or("an unclosed [ in the ssh:// host")?;
                (h, after.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        let port = port.map(|p| p.parse::<u16>().map_err(|_| format!("{p:?} is not a port"))).transpose()?;
        if host.is_empty() || host.starts_with('-') {
            return Err("no host in the ssh:// URL".into());
        }
        Ok(SshTarget { user: user.filter(|u| !u.is_empty()), host: host.to_string(), port })
    }
}

/// Why an `ssh://` host cannot be used (a password in it, a path), in words that never
/// repeat the URL; `Ok` for other schemes.
pub fn check_ssh(url: &str) -> Result<(), String> {
    match url.starts_with("ssh://") {
        true => SshTarget::parse(url).map(|_| ()),
        false => Ok(()),
    }
}

/// A platform as `os/architecture[/variant]` (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform { os: os.to_string(), architecture: architecture.to_string(), variant })
    }
}

impl Default for Platform {
    fn default() -> Platform {
        Platform::parse("linux/amd64").unwrap()
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The bounds a registry peer cannot push prodiff past (`[registry]` in prodiff.toml sets
/// them; the README's "Limits" table lists them with the fixed ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Tags listed at most per repository; a longer list is an error, not a partial answer.
    pub max_tags: usize,
    /// Tag-list pages followed at most.
    pub max_tag_pages: usize,
    /// Entries an index may list; a longer index is refused.
    pub max_index_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_tags: 10_000, max_tag_pages: 100, max_index_entries: 256 }
    }
}

/// `bytes` as text, or where the first byte that is not UTF-8 is: (line, column, message).
pub(crate) fn utf8(bytes: Vec<u8>) -> Result<String, (usize, usize, String)> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let byte = e.as_bytes().get(at).copied().unwrap_or(0);
        (line, column, format!("invalid UTF-8 (byte 0x{byte:02x} at offset {at})"))
    })
}
