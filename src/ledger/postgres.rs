//! The PostgreSQL engine (tokio-postgres on the one runtime `main` builds), for teams whose
//! CI runners are ephemeral. Writers serialise on a transaction-scoped advisory lock, so
//! two recorders queue; the unique key on spans backs that up. The password in the URL is
//! registered with the redaction layer as soon as the URL is read, and never printed.
//! No TLS: point it at a database on a trusted network (or through a local tunnel).

use std::future::Future;

use anyhow::{Context as _, Result};
use tokio_postgres::{Client, NoTls, Row};

use super::schema;
use super::store::{self, json_columns, metrics_columns, DeploymentRow, Filter, RunningRow, SpanRow, Store};
use super::{Delivery, Deployment, Heartbeat, Running, Span};

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// The advisory lock every ledger writer takes (an arbitrary constant: "prodiff").
const WRITER_LOCK: i64 = 0x70726f64_69666600;

/// A ledger in a PostgreSQL database.
pub struct Postgres {
    client: Client,
    rt: tokio::runtime::Handle,
    /// The URL without its password, for messages.
    shown: String,
}

impl Postgres {
    /// Connects (10 s at most unless the URL says otherwise) and migrates to the current schema.
    pub fn open(url: &str) -> Result<Postgres> {
        Postgres::open_at(url, schema::current())
    }

    /// Connects and migrates up to `version` only (tests build old databases with it).
    pub fn open_at(url: &str, version: u32) -> Result<Postgres> {
        crate::redact::register_url(url);
        let shown = crate::redact::text(url);
        let mut config: tokio_postgres::Config =
            url.parse().with_context(|| format!("the ledger URL {shown} is not a PostgreSQL URL"))?;
        if let Some(pw) = config.get_password() {
            crate::redact::register(&String::from_utf8_lossy(pw));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        // Bounded in time: no statement (waiting for the writer lock included) runs longer
        // than two minutes, unless the URL sets its own options.
        if config.get_options().is_none() {
            config.options("-c statement_timeout=120000");
        }
        let rt = tokio::runtime::Handle::try_current().context("no async runtime: call app::run")?;
        let (client, connection) =
            rt.block_on(config.connect(NoTls)).with_context(|| format!("cannot connect to the ledger {shown}"))?;
        rt.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("ledger connection: {}", crate::redact::text(&e.to_string()));
            }
        });
        let mut pg = Postgres { client, rt, shown };
        pg.migrate(version)?;
        Ok(pg)
    }

    fn run<T>(&self, what: &str, f: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T> {
        self.rt.block_on(f).with_context(|| format!("ledger {}: {what}", self.shown))
    }

    fn migrate(&mut self, target: u32) -> Result<()> {
        self.begin()?;
        let result = (|| {
            let mut v = self.read_version()?;
            if v > schema::current() {
                anyhow::bail!(
                    "the ledger {} is at schema version {v}, newer than this prodiff knows ({}): upgrade prodiff",
                    self.shown,
                    schema::current()
                );
            }
            while v < target {
                v += 1;
                let sql = schema::migration(v, "BIGSERIAL PRIMARY KEY");
                self.run(&format!("migration {v}"), self.client.batch_execute(&sql))?;
                if schema::backfills(v) {
                    self.backfill().with_context(|| format!("ledger {}: migration {v}", self.shown))?;
                }
                self.run("migration", self.client.execute("UPDATE schema_version SET version = $1", &[&(v as i64)]))?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.commit(),
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    fn read_version(&self) -> Result<u32> {
        let row = self.run(
            "reading the schema version",
            self.client.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]),
        )?;
        if !row.get::<_, bool>(0) {
            return Ok(0);
        }
        let row =
            self.run("reading the schema version", self.client.query_one("SELECT version FROM schema_version", &[]))?;
        Ok(row.get::<_, i64>(0) as u32)
    }

    fn one(&self, sql: &str, env: &str, service: &str, at: i64) -> Result<Option<Span>> {
        let row = self.run("reading a deployment", self.client.query_opt(sql, &[&env, &service, &at]))?;
        row.map(|r| span_row(&r).into_span()).transpose()
    }

    /// Every span's plain columns from its `change` column, page by page.
    fn backfill(&mut self) -> Result<()> {
        let (mut after, mut full) = (i64::MIN, None);
        loop {
            let page = self
                .run("backfilling", self.client.query(schema::BACKFILL_PAGE, &[&after, &schema::BACKFILL_PAGE_SIZE]))?;
            let rows: Vec<(i64, String, String)> = page.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
            let Some(&(last, _, _)) = rows.last() else { return Ok(()) };
            let (columns, ran) = store::backfill_page(&rows)?;
            self.insert_ran(&ran.iter().map(String::as_str).collect::<Vec<_>>())?;
            for chunk in columns.chunks(schema::BACKFILL_PER_STATEMENT) {
                let mut values: Vec<Param> = Vec::with_capacity(chunk.len() * 4);
                for (id, (kind, at, subjects)) in chunk {
                    values.extend([id as Param, kind, at, subjects]);
                }
                if chunk.len() < schema::BACKFILL_PER_STATEMENT {
                    self.run("backfilling", self.client.execute(&schema::backfill(chunk.len()), &values))?;
                    continue;
                }
                if full.is_none() {
                    let sql = schema::backfill(schema::BACKFILL_PER_STATEMENT);
                    full = Some(self.run("backfilling", self.client.prepare(&sql))?);
                }
                let stmt = full.as_ref().expect("prepared above");
                self.run("backfilling", self.client.execute(stmt, &values))?;
            }
            after = last;
        }
    }

    /// Adds commits to `ran`, many per statement.
    fn insert_ran(&self, commits: &[&str]) -> Result<()> {
        for chunk in commits.chunks(schema::BACKFILL_PER_STATEMENT) {
            let values: Vec<Param> = chunk.iter().map(|c| c as Param).collect();
            self.run("writing what ran", self.client.execute(&schema::insert_ran(chunk.len()), &values))?;
        }
        Ok(())
    }

    fn running(&self, sql: &str, params: &[Param], what: &str) -> Result<Vec<Running>> {
        let rows = self.run(what, self.client.query(sql, params))?;
        rows.iter().map(|r| running_row(r).into_running()).collect()
    }
}

fn running_row(r: &Row) -> RunningRow {
    RunningRow {
        id: r.get(0),
        environment: r.get(1),
        service: r.get(2),
        first_seen: r.get(3),
        prev_seen: r.get(4),
        started_at: r.get(5),
        parts: r.get(6),
    }
}

fn span_row(r: &Row) -> SpanRow {
    SpanRow {
        id: r.get(0),
        environment: r.get(1),
        service: r.get(2),
        key: r.get(3),
        first_seen: r.get(4),
        last_seen: r.get(5),
        prev_seen: r.get(6),
        started_at: r.get(7),
        parts: r.get(8),
        change: r.get(9),
    }
}

impl Store for Postgres {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn version(&mut self) -> Result<u32> {
        self.read_version()
    }

    fn begin(&mut self) -> Result<()> {
        self.run("begin", self.client.batch_execute("BEGIN"))?;
        self.run(
            "waiting for the writer lock",
            self.client.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITER_LOCK]),
        )?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.run("commit", self.client.batch_execute("COMMIT"))
    }

    fn rollback(&mut self) -> Result<()> {
        self.run("rollback", self.client.batch_execute("ROLLBACK"))
    }

    fn insert_heartbeat(&mut self, h: &Heartbeat) -> Result<()> {
        let failed = serde_json::to_string(&h.failed)?;
        let complete = h.complete as i64;
        self.run(
            "writing the heartbeat",
            self.client.execute(schema::INSERT_HEARTBEAT, &[&h.at, &complete, &failed, &h.origin]),
        )?;
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
        let n = self.run(
            "writing a deployment",
            self.client.execute(
                schema::INSERT_SPAN,
                &[
                    &s.environment,
                    &s.service,
                    &s.key,
                    &s.first_seen,
                    &s.last_seen,
                    &s.prev_seen,
                    &s.started_at,
                    &parts,
                    &change,
                    &kind,
                    &shipped_at,
                    &subjects,
                ],
            ),
        )?;
        if n == 1 {
            self.run(
                "moving the latest deployment",
                self.client.execute(schema::ADVANCE_HEAD, &[&s.environment, &s.service, &s.first_seen]),
            )?;
            self.insert_ran(&store::ran(&s.parts))?;
        }
        Ok(n == 1)
    }

    fn confirm(&mut self, ids: &[i64], at: i64) -> Result<()> {
        for chunk in ids.chunks(500) {
            self.run("confirming deployments", self.client.execute(&schema::confirm(chunk), &[&at]))?;
        }
        Ok(())
    }

    fn update_span(&mut self, s: &Span) -> Result<()> {
        let (parts, change) = json_columns(s)?;
        let (kind, shipped_at, subjects) = metrics_columns(&s.change);
        let values: [Param; 11] = [
            &s.key,
            &s.first_seen,
            &s.last_seen,
            &s.prev_seen,
            &s.started_at,
            &parts,
            &change,
            &kind,
            &shipped_at,
            &subjects,
            &s.id,
        ];
        self.run("updating a deployment", self.client.execute(schema::UPDATE_SPAN, &values))?;
        self.insert_ran(&store::ran(&s.parts))
    }

    fn spans(&mut self, f: &Filter) -> Result<Vec<Span>> {
        let sql = schema::select_spans("::text");
        let (since, until) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        let rows =
            self.run("reading deployments", self.client.query(&sql, &[&f.environment, &f.service, &since, &until]))?;
        rows.iter().map(|r| span_row(r).into_span()).collect()
    }

    fn latest(&mut self) -> Result<Vec<Span>> {
        let rows = self.run("reading the latest deployments", self.client.query(&schema::latest(), &[]))?;
        rows.iter().map(|r| span_row(r).into_span()).collect()
    }

    fn running_between(&mut self, since: i64, until: i64) -> Result<Vec<Running>> {
        self.running(&schema::running_between(), &[&since, &until], "reading deployments")
    }

    fn running_of(&mut self, environment: &str, service: &str, since: i64, limit: i64) -> Result<Vec<Running>> {
        self.running(&schema::running_of(), &[&environment, &service, &since, &limit], "reading deployments")
    }

    fn latest_running(&mut self) -> Result<Vec<Running>> {
        self.running(&schema::latest_running(), &[], "reading the latest deployments")
    }

    fn deployments(&mut self, environment: Option<&str>, since: i64) -> Result<Vec<Deployment>> {
        let rows = self
            .run("reading deployments", self.client.query(&schema::deployments("::text"), &[&environment, &since]))?;
        rows.iter()
            .map(|r| {
                DeploymentRow {
                    id: r.get(0),
                    environment: r.get(1),
                    service: r.get(2),
                    first_seen: r.get(3),
                    started_at: r.get(4),
                    kind: r.get(5),
                    shipped_at: r.get(6),
                    shipped_subjects: r.get(7),
                }
                .into_deployment()
            })
            .collect()
    }

    fn first_heartbeat(&mut self, since: i64) -> Result<Option<i64>> {
        let row = self.run("reading heartbeats", self.client.query_one(schema::FIRST_HEARTBEAT, &[&since]))?;
        Ok(row.get(0))
    }

    fn running_commits(&mut self) -> Result<Vec<String>> {
        let rows = self.run("reading what ran", self.client.query(schema::SELECT_RAN, &[]))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn heartbeats(&mut self, since: i64) -> Result<Vec<Heartbeat>> {
        let rows = self.run("reading heartbeats", self.client.query(schema::SELECT_HEARTBEATS, &[&since]))?;
        rows.iter()
            .map(|r| {
                let failed: String = r.get(2);
                Ok(Heartbeat {
                    at: r.get(0),
                    complete: r.get::<_, i64>(1) != 0,
                    failed: serde_json::from_str(&failed)?,
                    origin: r.get(3),
                })
            })
            .collect()
    }

    fn deliveries(&mut self, target: &str) -> Result<Vec<Delivery>> {
        let rows = self.run("reading deliveries", self.client.query(schema::SELECT_DELIVERIES, &[&target]))?;
        Ok(rows
            .iter()
            .map(|r| Delivery {
                target: r.get(0),
                span_id: r.get(1),
                acked_at: r.get(2),
                attempts: r.get(3),
                next_attempt: r.get(4),
                last_error: r.get(5),
                state: r.get(6),
            })
            .collect())
    }

    fn put_delivery(&mut self, d: &Delivery) -> Result<()> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
            [&d.target, &d.span_id, &d.acked_at, &d.attempts, &d.next_attempt, &d.last_error, &d.state];
        self.run("writing a delivery", self.client.execute(schema::PUT_DELIVERY, &params))?;
        Ok(())
    }

    fn take_lease(&mut self, name: &str, holder: &str, expires: i64, now: i64) -> Result<bool> {
        let what = format!("taking the lease {name}");
        self.run(&what, self.client.execute(schema::TAKE_LEASE, &[&name, &holder, &expires, &now]))?;
        let row = self.run(&what, self.client.query_one(schema::LEASE_HOLDER, &[&name]))?;
        Ok(row.get::<_, String>(0) == holder)
    }

    fn drop_lease(&mut self, name: &str, holder: &str) -> Result<()> {
        self.run(&format!("dropping the lease {name}"), self.client.execute(schema::DROP_LEASE, &[&name, &holder]))?;
        Ok(())
    }
}
