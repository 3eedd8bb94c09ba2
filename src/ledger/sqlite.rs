//! The embedded engine (rusqlite, SQLite compiled in): one file per repository. Writers
//! take SQLite's write lock up front (`BEGIN IMMEDIATE`) and wait up to a minute for it, so
//! concurrent recorders queue instead of failing; WAL keeps readers unblocked meanwhile.

use std::path::Path;

use anyhow::{Context as _, Result};
use rusqlite::{params, Connection, OptionalExtension as _};

use super::schema;
use super::store::{self, json_columns, metrics_columns, DeploymentRow, Filter, RunningRow, SpanRow, Store};
use super::{Delivery, Deployment, Heartbeat, Running, Span};

/// A ledger in a SQLite file.
pub struct Sqlite {
    conn: Connection,
    path: String,
}

impl Sqlite {
    /// Opens (creating the file and its directory if needed) and migrates to the current schema.
    pub fn open(path: &Path) -> Result<Sqlite> {
        Sqlite::open_at(path, schema::current())
    }

    /// Opens and migrates up to `version` only (tests build old databases with it).
    pub fn open_at(path: &Path, version: u32) -> Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the ledger directory {}", dir.display()))?;
        }
        let shown = path.display().to_string();
        let conn = Connection::open(path).with_context(|| format!("cannot open the ledger {shown}"))?;
        conn.busy_timeout(std::time::Duration::from_secs(60))?;
        conn.pragma_update(None, "journal_mode", "WAL").with_context(|| format!("ledger {shown}"))?;
        let mut s = Sqlite { conn, path: shown };
        s.migrate(version)?;
        Ok(s)
    }

    fn migrate(&mut self, target: u32) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE").with_context(|| self.at("locking for migration"))?;
        let result = (|| {
            let mut v = self.read_version()?;
            if v > schema::current() {
                anyhow::bail!(
                    "the ledger {} is at schema version {v}, newer than this prodiff knows ({}): upgrade prodiff",
                    self.path,
                    schema::current()
                );
            }
            while v < target {
                v += 1;
                let sql = schema::migration(v, "INTEGER PRIMARY KEY AUTOINCREMENT");
                self.conn.execute_batch(&sql).with_context(|| self.at(&format!("migration {v}")))?;
                if schema::backfills(v) {
                    self.backfill().with_context(|| self.at(&format!("migration {v}")))?;
                }
                self.conn.execute("UPDATE schema_version SET version = $1", params![v])?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.conn.execute_batch("COMMIT").with_context(|| self.at("committing the migration")),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn read_version(&self) -> Result<u32> {
        let has: bool = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)?;
        if !has {
            return Ok(0);
        }
        let v: i64 = self.conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))?;
        Ok(v as u32)
    }

    fn at(&self, what: &str) -> String {
        format!("ledger {}: {what}", self.path)
    }

    fn one(&self, sql: &str, env: &str, service: &str, at: i64) -> Result<Option<Span>> {
        let row = self.conn.query_row(sql, params![env, service, at], span_row).optional()?;
        row.map(SpanRow::into_span).transpose()
    }

    /// Every span's plain columns from its `change` column, page by page.
    fn backfill(&mut self) -> Result<()> {
        let mut after = i64::MIN;
        loop {
            let rows = {
                let mut stmt = self.conn.prepare_cached(schema::BACKFILL_PAGE)?;
                let rows = stmt
                    .query_map(params![after, schema::BACKFILL_PAGE_SIZE], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<rusqlite::Result<Vec<(i64, String, String)>>>()?
            };
            let Some(&(last, _, _)) = rows.last() else { return Ok(()) };
            let (columns, ran) = store::backfill_page(&rows)?;
            let mut stmt = self.conn.prepare_cached(schema::SET_METRICS_COLUMNS)?;
            for (id, (kind, at, subjects)) in columns {
                stmt.execute(params![kind, at, subjects, id])?;
            }
            self.insert_ran(&ran.iter().map(String::as_str).collect::<Vec<_>>())?;
            after = last;
        }
    }

    /// Adds commits to `ran` (one statement, prepared once per count).
    fn insert_ran(&self, commits: &[&str]) -> Result<()> {
        for chunk in commits.chunks(schema::BACKFILL_PER_STATEMENT) {
            let mut stmt = self.conn.prepare_cached(&schema::insert_ran(chunk.len()))?;
            stmt.execute(rusqlite::params_from_iter(chunk)).with_context(|| self.at("writing what ran"))?;
        }
        Ok(())
    }

    fn running(&self, sql: &str, params: impl rusqlite::Params, what: &str) -> Result<Vec<Running>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, running_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.at(what))?;
        rows.into_iter().map(RunningRow::into_running).collect()
    }
}

fn running_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunningRow> {
    Ok(RunningRow {
        id: r.get(0)?,
        environment: r.get(1)?,
        service: r.get(2)?,
        first_seen: r.get(3)?,
        prev_seen: r.get(4)?,
        started_at: r.get(5)?,
        parts: r.get(6)?,
    })
}

fn span_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SpanRow> {
    Ok(SpanRow {
        id: r.get(0)?,
        environment: r.get(1)?,
        service: r.get(2)?,
        key: r.get(3)?,
        first_seen: r.get(4)?,
        last_seen: r.get(5)?,
        prev_seen: r.get(6)?,
        started_at: r.get(7)?,
        parts: r.get(8)?,
        change: r.get(9)?,
    })
}

impl Store for Sqlite {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    fn version(&mut self) -> Result<u32> {
        self.read_version()
    }

    fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE").with_context(|| self.at("waiting for the writer lock"))
    }

    fn commit(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT").with_context(|| self.at("commit"))
    }

    fn rollback(&mut self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK").with_context(|| self.at("rollback"))
    }

    fn insert_heartbeat(&mut self, h: &Heartbeat) -> Result<()> {
        let failed = serde_json::to_string(&h.failed)?;
        self.conn
            .execute(schema::INSERT_HEARTBEAT, params![h.at, h.complete as i64, failed, h.origin])
            .with_context(|| self.at("writing the heartbeat"))?;
        Ok(())
    }

    fn around(&mut self, environment: &str, service: &str, at: i64) -> Result<(Option<Span>, Option<Span>)> {
        Ok((
            self.one(&schema::before(), environment, service, at)?,
            self.one(&schema::after(), environment, service, at)?,
        ))
    }

    fn insert_span(&mut self, s: &Span) -> Result<bool> {
        let (parts, change) = json_columns(s)?;
        let (kind, shipped_at, subjects) = metrics_columns(&s.change);
        let n = self
            .conn
            .execute(
                schema::INSERT_SPAN,
                params![
                    s.environment,
                    s.service,
                    s.key,
                    s.first_seen,
                    s.last_seen,
                    s.prev_seen,
                    s.started_at,
                    parts,
                    change,
                    kind,
                    shipped_at,
                    subjects
                ],
            )
            .with_context(|| self.at("writing a deployment"))?;
        if n == 1 {
            self.conn
                .execute(schema::ADVANCE_HEAD, params![s.environment, s.service, s.first_seen])
                .with_context(|| self.at("moving the latest deployment"))?;
            self.insert_ran(&store::ran(&s.parts))?;
        }
        Ok(n == 1)
    }

    fn confirm(&mut self, ids: &[i64], at: i64) -> Result<()> {
        for chunk in ids.chunks(500) {
            self.conn
                .execute(&schema::confirm(chunk), params![at])
                .with_context(|| self.at("confirming deployments"))?;
        }
        Ok(())
    }

    fn update_span(&mut self, s: &Span) -> Result<()> {
        let (parts, change) = json_columns(s)?;
        let (kind, shipped_at, subjects) = metrics_columns(&s.change);
        self.conn
            .execute(
                schema::UPDATE_SPAN,
                params![
                    s.key,
                    s.first_seen,
                    s.last_seen,
                    s.prev_seen,
                    s.started_at,
                    parts,
                    change,
                    kind,
                    shipped_at,
                    subjects,
                    s.id
                ],
            )
            .with_context(|| self.at("updating a deployment"))?;
        self.insert_ran(&store::ran(&s.parts))
    }

    fn spans(&mut self, f: &Filter) -> Result<Vec<Span>> {
        let sql = schema::select_spans("");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(
                params![f.environment, f.service, f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX)],
                span_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.at("reading deployments"))?;
        rows.into_iter().map(SpanRow::into_span).collect()
    }

    fn latest(&mut self) -> Result<Vec<Span>> {
        let mut stmt = self.conn.prepare_cached(&schema::latest())?;
        let rows = stmt
            .query_map([], span_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.at("reading the latest deployments"))?;
        rows.into_iter().map(SpanRow::into_span).collect()
    }

    fn running_between(&mut self, since: i64, until: i64) -> Result<Vec<Running>> {
        self.running(&schema::running_between(), params![since, until], "reading deployments")
    }

    fn running_of(&mut self, environment: &str, service: &str, since: i64, limit: i64) -> Result<Vec<Running>> {
        self.running(&schema::running_of(), params![environment, service, since, limit], "reading deployments")
    }

    fn latest_running(&mut self) -> Result<Vec<Running>> {
        self.running(&schema::latest_running(), [], "reading the latest deployments")
    }

    fn deployments(&mut self, environment: Option<&str>, since: i64) -> Result<Vec<Deployment>> {
        let mut stmt = self.conn.prepare_cached(&schema::deployments(""))?;
        let rows = stmt
            .query_map(params![environment, since], |r| {
                Ok(DeploymentRow {
                    id: r.get(0)?,
                    environment: r.get(1)?,
                    service: r.get(2)?,
                    first_seen: r.get(3)?,
                    started_at: r.get(4)?,
                    kind: r.get(5)?,
                    shipped_at: r.get(6)?,
                    shipped_subjects: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.at("reading deployments"))?;
        rows.into_iter().map(DeploymentRow::into_deployment).collect()
    }

    fn first_heartbeat(&mut self, since: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(schema::FIRST_HEARTBEAT, params![since], |r| r.get(0))
            .with_context(|| self.at("reading heartbeats"))
    }

    fn running_commits(&mut self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(schema::SELECT_RAN)?;
        let rows = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>();
        rows.with_context(|| self.at("reading what ran"))
    }

    fn heartbeats(&mut self, since: i64) -> Result<Vec<Heartbeat>> {
        let mut stmt = self.conn.prepare_cached(schema::SELECT_HEARTBEATS)?;
        let rows = stmt
            .query_map(params![since], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| self.at("reading heartbeats"))?;
        rows.into_iter()
            .map(|(at, complete, failed, origin)| {
                Ok(Heartbeat { at, complete: complete != 0, failed: serde_json::from_str(&failed)?, origin })
            })
            .collect()
    }

    fn deliveries(&mut self, target: &str) -> Result<Vec<Delivery>> {
        let mut stmt = self.conn.prepare(schema::SELECT_DELIVERIES)?;
        let rows = stmt
            .query_map(params![target], |r| {
                Ok(Delivery {
                    target: r.get(0)?,
                    span_id: r.get(1)?,
                    acked_at: r.get(2)?,
                    attempts: r.get(3)?,
                    next_attempt: r.get(4)?,
                    last_error: r.get(5)?,
                    state: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| format!("ledger {}: reading deliveries", self.path))?;
        Ok(rows)
    }

    fn put_delivery(&mut self, d: &Delivery) -> Result<()> {
        self.conn
            .execute(
                schema::PUT_DELIVERY,
                params![d.target, d.span_id, d.acked_at, d.attempts, d.next_attempt, d.last_error, d.state],
            )
            .with_context(|| format!("ledger {}: writing a delivery", self.path))?;
        Ok(())
    }

    fn take_lease(&mut self, name: &str, holder: &str, expires: i64, now: i64) -> Result<bool> {
        let what = || format!("ledger {}: taking the lease {name}", self.path);
        self.conn.execute(schema::TAKE_LEASE, params![name, holder, expires, now]).with_context(what)?;
        let held: String = self.conn.query_row(schema::LEASE_HOLDER, params![name], |r| r.get(0)).with_context(what)?;
        Ok(held == holder)
    }

    fn drop_lease(&mut self, name: &str, holder: &str) -> Result<()> {
        self.conn
            .execute(schema::DROP_LEASE, params![name, holder])
            .with_context(|| format!("ledger {}: dropping the lease {name}", self.path))?;
        Ok(())
    }
}
