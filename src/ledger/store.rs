//! The one interface both engines implement. Statements are written once (`schema`,
//! `$1`-style parameters, which SQLite and PostgreSQL both take); an engine only runs them
//! and converts rows. Every write happens between `begin` and `commit`, and `begin` holds
//! the ledger's writer lock (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock), so two
//! recorders never interleave.

use anyhow::Result;

use super::{Delivery, Heartbeat, Span};

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
    /// Every heartbeat at or after `since`, oldest first.
    fn heartbeats(&mut self, since: i64) -> Result<Vec<Heartbeat>>;
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
