//! The one interface both engines implement. Statements are written once (`schema`,
//! `$1`-style parameters, which SQLite and PostgreSQL both take); an engine only runs them
//! and converts rows. Every write happens between `begin` and `commit`, and `begin` holds
//! the ledger's writer lock (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock), so two
//! recorders never interleave.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};

use super::{Change, Delivery, Deployment, Heartbeat, Kind, Part, Running, Span};

/// Which spans a query wants.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub environment: Option<String>,
    pub service: Option<String>,
    /// Spans first seen at or after this time.
    pub since: Option<i64>,
    /// Spans first seen before this time.
    pub until: Option<i64>,
}

/// A ledger engine.
pub trait Store {
    /// `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;
    /// The schema version the database is at.
    fn version(&mut self) -> Result<u32>;
    /// Starts a write transaction, waiting for any other writer to finish.
    fn begin(&mut self) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self) -> Result<()>;
    fn insert_heartbeat(&mut self, h: &Heartbeat) -> Result<()>;
    /// The latest span of (env, service) first seen at or before `at`, and the earliest one
    /// first seen after it.
    fn around(&mut self, environment: &str, service: &str, at: i64) -> Result<(Option<Span>, Option<Span>)>;
    /// Inserts a span; false when one with the same (environment, service, first_seen)
    /// is already there (nothing is written then).
    fn insert_span(&mut self, span: &Span) -> Result<bool>;
    /// Marks these spans (by id) as seen at `at`, where they were last seen earlier.
    fn confirm(&mut self, ids: &[i64], at: i64) -> Result<()>;
    /// Rewrites a stored span (by id).
    fn update_span(&mut self, span: &Span) -> Result<()>;
    /// Spans matching `filter`, newest first.
    fn spans(&mut self, filter: &Filter) -> Result<Vec<Span>>;
    /// The latest span of every environment/service, by environment and service.
    fn latest(&mut self) -> Result<Vec<Span>>;
    /// What ran in every service's spans first seen in `since..until`, oldest first.
    fn running_between(&mut self, since: i64, until: i64) -> Result<Vec<Running>>;
    /// What ran in one service's spans first seen at or after `since`, oldest first, at
    /// most `limit` of them.
    fn running_of(&mut self, environment: &str, service: &str, since: i64, limit: i64) -> Result<Vec<Running>>;
    /// What runs now: the latest span of every environment/service.
    fn latest_running(&mut self) -> Result<Vec<Running>>;
    /// The spans first seen at or after `since` (of one environment, or all) as `metrics`
    /// reads them, in no particular order.
    fn deployments(&mut self, environment: Option<&str>, since: i64) -> Result<Vec<Deployment>>;
    /// Every heartbeat at or after `since`, oldest first.
    fn heartbeats(&mut self, since: i64) -> Result<Vec<Heartbeat>>;
    /// The time of the first heartbeat at or after `since`.
    fn first_heartbeat(&mut self, since: i64) -> Result<Option<i64>>;
    /// Every commit a span of the ledger ran, once each, in no particular order.
    fn running_commits(&mut self) -> Result<Vec<String>>;
    /// What one publishing target was sent so far, by span id.
    fn deliveries(&mut self, target: &str) -> Result<Vec<Delivery>>;
    /// Writes (inserts or replaces) the delivery of one (target, span).
    fn put_delivery(&mut self, d: &Delivery) -> Result<()>;
    /// Takes (or renews) the lease `name` for `holder` until `expires`, unless another
    /// holder's lease is still running at `now`; true when `holder` has it. Call it inside a
    /// transaction.
    fn take_lease(&mut self, name: &str, holder: &str, expires: i64, now: i64) -> Result<bool>;
    /// Gives up the lease `name` if `holder` has it.
    fn drop_lease(&mut self, name: &str, holder: &str) -> Result<()>;
}

/// Runs `f` in one write transaction: committed when it succeeds, rolled back otherwise.
pub fn transaction<T>(store: &mut dyn Store, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
    store.begin()?;
    match f(store) {
        Ok(v) => {
            store.commit()?;
            Ok(v)
        }
        Err(e) => {
            let _ = store.rollback();
            Err(e)
        }
    }
}

/// The columns of a span, as both engines store them.
pub struct SpanRow {
    pub id: i64,
    pub environment: String,
    pub service: String,
    pub key: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub prev_seen: Option<i64>,
    pub started_at: Option<i64>,
    pub parts: String,
    pub change: String,
}

impl SpanRow {
    /// The span, its JSON columns parsed; a malformed row is an error naming it.
    pub fn into_span(self) -> Result<Span> {
        use anyhow::Context as _;
        let what = || format!("ledger row {} ({}/{}) is malformed", self.id, self.environment, self.service);
        let parts = serde_json::from_str(&self.parts).with_context(what)?;
        let change = serde_json::from_str(&self.change).with_context(what)?;
        Ok(Span {
            id: Some(self.id),
            environment: self.environment.clone(),
            service: self.service.clone(),
            key: self.key.clone(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            prev_seen: self.prev_seen,
            started_at: self.started_at,
            parts,
            change,
        })
    }
}

/// A span's JSON columns (parts, change).
pub fn json_columns(span: &Span) -> Result<(String, String)> {
    Ok((serde_json::to_string(&span.parts)?, serde_json::to_string(&span.change)?))
}

/// The columns `when` reads of a span, as both engines store them.
pub struct RunningRow {
    pub id: i64,
    pub environment: String,
    pub service: String,
    pub first_seen: i64,
    pub prev_seen: Option<i64>,
    pub started_at: Option<i64>,
    pub parts: String,
}

impl RunningRow {
    /// What ran, its parts parsed; a malformed row is an error naming it.
    pub fn into_running(self) -> Result<Running> {
        let parts = serde_json::from_str(&self.parts)
            .with_context(|| format!("ledger row {} ({}/{}) is malformed", self.id, self.environment, self.service))?;
        Ok(Running {
            id: self.id,
            environment: self.environment,
            service: self.service,
            first_seen: self.first_seen,
            prev_seen: self.prev_seen,
            started_at: self.started_at,
            parts,
        })
    }
}

/// The plain columns `metrics` reads of a span.
pub struct DeploymentRow {
    pub id: i64,
    pub environment: String,
    pub service: String,
    pub first_seen: i64,
    pub started_at: Option<i64>,
    pub kind: Option<String>,
    pub shipped_at: Option<String>,
    pub shipped_subjects: Option<String>,
}

impl DeploymentRow {
    /// The deployment; a row without valid plain columns is an error naming it.
    pub fn into_deployment(self) -> Result<Deployment> {
        let bad =
            |column: &str| format!("ledger row {} ({}/{}): no valid {column}", self.id, self.environment, self.service);
        let kind = self.kind.as_deref().and_then(Kind::parse).with_context(|| bad("kind"))?;
        let times = self.shipped_at.as_deref().with_context(|| bad("shipped_at"))?;
        let shipped_at = times.split_whitespace().map(str::parse::<i64>).collect::<Result<Vec<_>, _>>();
        let shipped_at = shipped_at.with_context(|| bad("shipped_at"))?;
        let subjects = self.shipped_subjects.as_deref().with_context(|| bad("shipped_subjects"))?;
        let lines = if shipped_at.is_empty() { 0 } else { subjects.split('\n').count() };
        if lines != shipped_at.len() {
            anyhow::bail!("{} ({} commit times, {lines} subjects)", bad("shipped_subjects"), shipped_at.len());
        }
        Ok(Deployment {
            environment: self.environment,
            service: self.service,
            first_seen: self.first_seen,
            started_at: self.started_at,
            kind,
            shipped_at,
            shipped_subjects: self.shipped_subjects.unwrap_or_default(),
        })
    }
}

/// A span's plain columns: (kind, shipped_at, shipped_subjects).
pub type MetricsColumns = (&'static str, String, String);

/// A change's plain columns, as `metrics` reads them back. A subject is one line (git's
/// subjects are; a newline in one would be a space).
pub fn metrics_columns(change: &Change) -> MetricsColumns {
    let times: Vec<String> = change.shipped.iter().map(|c| c.committed_at.to_string()).collect();
    let subjects: Vec<String> = change.shipped.iter().map(|c| c.subject.replace('\n', " ")).collect();
    (change.kind.as_str(), times.join(" "), subjects.join("\n"))
}

/// The commits a state runs, once each, for `ran`.
pub fn ran(parts: &[Part]) -> Vec<&str> {
    let mut commits: Vec<&str> = parts.iter().filter_map(|p| p.commit.as_deref()).collect();
    commits.sort_unstable();
    commits.dedup();
    commits
}

/// What one page of the backfill writes: each span's plain columns, and the commits they ran.
pub type Backfill = (Vec<(i64, MetricsColumns)>, BTreeSet<String>);

/// One page of the backfill from spans (id, parts JSON, change JSON), each parsed exactly as
/// `record` reads what it wrote.
pub fn backfill_page(rows: &[(i64, String, String)]) -> Result<Backfill> {
    let (mut columns, mut ran) = (Vec::with_capacity(rows.len()), BTreeSet::new());
    for (id, parts, change) in rows {
        let malformed = || format!("ledger row {id} is malformed (backfilling its plain columns)");
        let parts: Vec<Part> = serde_json::from_str(parts).with_context(malformed)?;
        let change: Change = serde_json::from_str(change).with_context(malformed)?;
        columns.push((*id, metrics_columns(&change)));
        ran.extend(self::ran(&parts).into_iter().map(str::to_string));
    }
    Ok((columns, ran))
}
