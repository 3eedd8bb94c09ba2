//! The deployment ledger: what prodiff observed, over time, in a real database. It stores
//! *changes*, not copies: one row per state an environment/service was seen in (a span from
//! the first run that saw it to the last), the transition into it (commits shipped and
//! removed, tickets, rollback), and a heartbeat per run so gaps are known. Beside each span's
//! JSON it keeps the few plain columns `metrics` reads, and every commit that ran (`ran`), so
//! reading commands need not parse what they do not use.
//!
//! This module owns the nouns and where the ledger lives; `store` is the one interface both
//! engines (`sqlite`, `postgres`) implement, `events` turns observations into spans,
//! `query`/`metrics` read them back (`report::ledger` prints them) and `watch` loops
//! `record`. A stage after judge and before report: it never asks production anything
//! itself (observations come in as `Sighting`s, parsed from a judged report) and never
//! renders.

pub mod events;
pub mod metrics;
pub mod postgres;
pub mod query;
pub mod schema;
pub mod sighting;
pub mod sqlite;
pub mod store;
pub mod watch;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chrono::{DateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};

pub use store::Store;

/// One image of a service as one run saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub image: String,
    /// The resolved commit (full SHA), when one resolved.
    pub commit: Option<String>,
    pub digests: Vec<String>,
    pub replicas: usize,
    /// The earliest replica's start (unix seconds), when the source gives it.
    pub started_at: Option<i64>,
}

impl Part {
    /// What identifies this image: its commit, else its digests, else its name.
    pub fn key(&self) -> String {
        match (&self.commit, self.digests.is_empty()) {
            (Some(c), _) => c.clone(),
            (None, false) => self.digests.join("+"),
            (None, true) => self.image.clone(),
        }
    }

    /// `1.4.1 (10fea9a)`: the image tag and the short commit.
    pub fn label(&self) -> String {
        let tag = image_tag(&self.image);
        match &self.commit {
            Some(c) if tag.is_empty() => c[..c.len().min(7)].to_string(),
            Some(c) => format!("{tag} ({})", &c[..c.len().min(7)]),
            None if tag.is_empty() => self.image.clone(),
            None => format!("{tag} (unresolved)"),
        }
    }
}

/// The tag of an image reference (`…/api:1.4.1@sha256:…` -> `1.4.1`), or "".
fn image_tag(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, t)| t).unwrap_or("")
}

/// The key of a set of parts: their sorted distinct keys (replica counts do not count).
pub fn state_key(parts: &[Part]) -> String {
    let mut keys: Vec<String> = parts.iter().map(Part::key).collect();
    keys.sort();
    keys.dedup();
    keys.join(" ")
}

/// What one run saw of one service in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub environment: String,
    pub service: String,
    pub parts: Vec<Part>,
}

/// What one run observed: when, whether completely, which sources failed, and every service
/// seen where its environment's sources all answered.
#[derive(Clone, Debug, Default)]
pub struct Sighting {
    pub at: i64,
    pub complete: bool,
    /// `ENV: message` for every source that could not be read.
    pub failed: Vec<String>,
    pub seen: Vec<Seen>,
    /// `record`, `watch`, `import FILE`.
    pub origin: String,
}

/// A commit a deployment shipped or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub subject: String,
    /// Committer time, unix seconds.
    pub committed_at: i64,
    pub tickets: Vec<String>,
}

/// What a span ran, without its change: what `when` reads (the parts are its only JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    pub id: i64,
    pub environment: String,
    pub service: String,
    pub first_seen: i64,
    pub prev_seen: Option<i64>,
    pub started_at: Option<i64>,
    pub parts: Vec<Part>,
}

/// A span as `metrics` reads it, from plain columns: no JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub environment: String,
    pub service: String,
    pub first_seen: i64,
    pub started_at: Option<i64>,
    pub kind: Kind,
    /// The commit times of the commits it shipped.
    pub shipped_at: Vec<i64>,
    /// Their subjects, one a line.
    pub shipped_subjects: String,
}

impl Deployment {
    /// As `Span::at`: the exact start time, else the first run that saw it.
    pub fn at(&self) -> i64 {
        self.started_at.unwrap_or(self.first_seen)
    }

    /// The subjects of the commits it shipped.
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        self.shipped_subjects.split('\n').take(self.shipped_at.len())
    }
}

impl From<&Span> for Deployment {
    fn from(s: &Span) -> Deployment {
        let (_, _, shipped_subjects) = store::metrics_columns(&s.change);
        Deployment {
            environment: s.environment.clone(),
            service: s.service.clone(),
            first_seen: s.first_seen,
            started_at: s.started_at,
            kind: s.change.kind,
            shipped_at: s.change.shipped.iter().map(|c| c.committed_at).collect(),
            shipped_subjects,
        }
    }
}

/// What kind of change a span's transition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The first run that saw this service here: where it came from is unknown.
    FirstSeen,
    /// New commits reached the environment.
    Deploy,
    /// Commits were removed and none added (a cherry-pick of a removed commit does not count
    /// as added): a move back to an older state.
    Rollback,
    /// Same commits, other images (a rebuild, a narrowed rollout, an unresolved image).
    Changed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FirstSeen => "first-seen",
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::Changed => "changed",
        }
    }

    /// The kind `as_str` names.
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::FirstSeen, Kind::Deploy, Kind::Rollback, Kind::Changed].into_iter().find(|k| k.as_str() == s)
    }
}

/// The transition into a state, computed with git when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: Kind,
    /// The state before (none for `first-seen`).
    pub from: Option<Vec<Part>>,
    pub shipped: Vec<Commit>,
    pub removed: Vec<Commit>,
    pub tickets: Vec<String>,
}

/// One state an environment/service was in: the ledger's row, and its deployment event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub id: Option<i64>,
    pub environment: String,
    pub service: String,
    pub key: String,
    /// The first run that saw this state (the upper bound of the change).
    pub first_seen: i64,
    /// The last run that saw it so far.
    pub last_seen: i64,
    /// The last run that saw the state before (the lower bound); none when first seen.
    pub prev_seen: Option<i64>,
    /// The exact time of the change, when a replica's start time falls within the bounds.
    pub started_at: Option<i64>,
    pub parts: Vec<Part>,
    pub change: Change,
}

impl Span {
    /// When the change happened, for figures: the exact start time, else the first run that
    /// saw it (the upper bound).
    pub fn at(&self) -> i64 {
        self.started_at.unwrap_or(self.first_seen)
    }
}

/// A heartbeat: one row per run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub at: i64,
    pub complete: bool,
    pub failed: Vec<String>,
    pub origin: String,
}

/// What one publishing target was sent of one deployment event (a span).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The target's id (`[[publish.webhook]] id`).
    pub target: String,
    pub span_id: i64,
    /// When the target accepted it; none while it has not.
    pub acked_at: Option<i64>,
    /// Sends tried so far.
    pub attempts: i64,
    /// Not to be retried before this time (unix seconds).
    pub next_attempt: i64,
    /// The last failure, redacted ("" once acknowledged).
    pub last_error: String,
    /// What the target answered to the steps done so far (JSON; "" before the first).
    pub state: String,
}

/// Where the ledger lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A `postgres://` URL or a libpq key=value string (may hold a password: never print it).
    Postgres(String),
}

impl Location {
    /// `--ledger`/`PRODIFF_LEDGER` (a path or a postgres URL), else `[ledger] url`, else
    /// `[ledger] path`, else a file per repository under the user's data directory.
    /// `explicit` tells whether anything but the default was chosen.
    pub fn choose(flag: Option<&str>, config: &crate::config::LedgerConfig, repo: &Path) -> Result<(Location, bool)> {
        if let Some(f) = flag.filter(|f| !f.is_empty()) {
            return Ok((Location::parse(f), true));
        }
        if let Some(url) = &config.url {
            return Ok((Location::Postgres(url.clone()), true));
        }
        if let Some(path) = &config.path {
            return Ok((Location::Sqlite(path.clone()), true));
        }
        Ok((Location::Sqlite(default_path(repo)?), false))
    }

    /// A postgres URL or key=value string, else a file path.
    pub fn parse(s: &str) -> Location {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains("host=") {
            crate::redact::register_url(s);
            Location::Postgres(s.to_string())
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }

    /// Whether a ledger is there to read without creating one: a configured one always is,
    /// the default file only once `record` wrote it.
    pub fn exists(&self) -> bool {
        match self {
            Location::Sqlite(p) => p.exists(),
            Location::Postgres(_) => true,
        }
    }

    /// For messages: the path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(u) => crate::redact::text(u),
        }
    }

    /// Opens (creating and migrating as needed) the ledger.
    pub fn open(&self) -> Result<Box<dyn Store>> {
        match self {
            Location::Sqlite(p) => Ok(Box::new(sqlite::Sqlite::open(p)?)),
            Location::Postgres(u) => Ok(Box::new(postgres::Postgres::open(u)?)),
        }
    }
}

/// `$XDG_DATA_HOME/prodiff/<name>-<hash>.db` (else `~/.local/share/prodiff/…`): one file per
/// repository, named after its directory and a hash of its canonical path.
pub fn default_path(repo: &Path) -> Result<PathBuf> {
    use sha2::Digest as _;
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/share")))
        .context("no data directory for the ledger: set XDG_DATA_HOME or HOME, or pass --ledger")?;
    let canonical = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    let hash = sha2::Sha256::digest(canonical.to_string_lossy().as_bytes());
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let name: String = canonical
        .file_name()
        .map(|n| {
            n.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
        })
        .unwrap_or_else(|| "repo".into());
    Ok(base.join("prodiff").join(format!("{name}-{hex}.db")))
}

/// `7d`, `90d`, `10m`: a duration in seconds (see `config::parse_duration`).
pub fn parse_duration(s: &str) -> Result<i64> {
    crate::config::parse_duration(s).map_err(anyhow::Error::msg)
}

/// Unix seconds as a UTC time.
pub fn time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// `2026-01-02 10:05` (UTC).
pub fn minute(secs: i64) -> String {
    time(secs).format("%Y-%m-%d %H:%M").to_string()
}

/// `3d 4h`, `2h 5m`, `45m`, `30s`: a span of time for people.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert!(parse_duration("7").unwrap_err().to_string().contains("units"));
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn human_spans() {
        assert_eq!(human(45), "45s");
        assert_eq!(human(3600 + 300), "1h 5m");
        assert_eq!(human(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }

    #[test]
    fn a_postgres_location_never_describes_its_password() {
        let l = Location::parse("postgres://ledger:s3cret-pw@127.0.0.1:5432/prodiff");
        assert!(matches!(l, Location::Postgres(_)));
        assert!(!l.describe().contains("s3cret-pw"), "{}", l.describe());
        assert_eq!(Location::parse("/tmp/x.db"), Location::Sqlite("/tmp/x.db".into()));
    }

    #[test]
    fn part_labels_and_keys() {
        let p = Part {
            image: "registry.example.com/shop/api:1.4.1".into(),
            commit: Some("10fea9a142aa".into()),
            digests: vec![],
            replicas: 2,
            started_at: None,
        };
        assert_eq!(p.label(), "1.4.1 (10fea9a)");
        assert_eq!(p.key(), "10fea9a142aa");
    }
}
