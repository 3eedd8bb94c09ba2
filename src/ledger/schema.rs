//! The ledger's one schema, as versioned migrations shared by both engines. Migration N
//! brings a database from version N-1 to N; `schema_version` holds the version reached.
//! Migration 1 is the first released schema and is never edited: changes are new
//! migrations (a test upgrades a version-1 database to the current one).
//!
//! `{id}` stands for the engine's auto-increment primary key column type.

/// Every migration, in order: migration `i + 1` is `MIGRATIONS[i]`.
pub const MIGRATIONS: &[&str] = &[
    // 1: heartbeats and spans.
    "CREATE TABLE schema_version (version BIGINT NOT NULL);
     INSERT INTO schema_version (version) VALUES (0);
     CREATE TABLE heartbeats (
         id {id},
         at BIGINT NOT NULL,
         complete BIGINT NOT NULL,
         failed TEXT NOT NULL,
         origin TEXT NOT NULL
     );
     CREATE TABLE spans (
         id {id},
         environment TEXT NOT NULL,
         service TEXT NOT NULL,
         state_key TEXT NOT NULL,
         first_seen BIGINT NOT NULL,
         last_seen BIGINT NOT NULL,
         prev_seen BIGINT,
         started_at BIGINT,
         parts TEXT NOT NULL,
         change TEXT NOT NULL,
         UNIQUE (environment, service, first_seen)
     );",
    // 2: indexes for `log --since` and `metrics` (time-ordered scans), and heartbeats by time.
    "CREATE INDEX spans_by_time ON spans (first_seen);
     CREATE INDEX heartbeats_by_time ON heartbeats (at);",
    // 3: each service's latest span, kept as spans are written, so `record` and `when` read
    // one row per service instead of scanning every span.
    "CREATE TABLE heads (
         environment TEXT NOT NULL,
         service TEXT NOT NULL,
         span_id BIGINT NOT NULL,
         PRIMARY KEY (environment, service)
     );
     INSERT INTO heads (environment, service, span_id)
         SELECT environment, service, id FROM spans s WHERE first_seen =
             (SELECT max(first_seen) FROM spans WHERE environment = s.environment AND service = s.service);",
    // 4: what each publishing target acknowledged per deployment event (exactly once,
    // eventually): a row per (target, span) once a send was tried; `acked_at` is set when the
    // target accepted it, `next_attempt` says when a failed one may be retried.
    "CREATE TABLE deliveries (
         id {id},
         target TEXT NOT NULL,
         span_id BIGINT NOT NULL,
         acked_at BIGINT,
         attempts BIGINT NOT NULL,
         next_attempt BIGINT NOT NULL,
         last_error TEXT NOT NULL,
         UNIQUE (target, span_id)
     );",
    // 5: publishing in several steps (a GitHub deployment, then its status; a label, then a
    // comment per ticket): `state` keeps what the steps done so far were answered (JSON, ""
    // before the first), so a retry goes on where it stopped and never repeats a step the
    // target accepted. `leases`: one publisher per target at a time (two CI jobs publishing
    // at once would both send); a lease expires by itself when its holder dies.
    "ALTER TABLE deliveries ADD COLUMN state TEXT NOT NULL DEFAULT '';
     CREATE TABLE leases (
         name TEXT PRIMARY KEY,
         holder TEXT NOT NULL,
         expires BIGINT NOT NULL
     );",
    // 6: plain columns for metrics and the commits each span ran (see UNPACKED).
    UNPACKED,
];

/// What `metrics` reads of a span, in plain columns: its kind, and the commit times and
/// subjects of the commits its change shipped (`shipped_at`: unix seconds separated by
/// spaces; `shipped_subjects`: one a line; both empty when it shipped none), so it parses
/// neither JSON column; and `ran`, every commit a span ran, once each (where `when TICKET`
/// looks for the ticket's commits besides the mainline). `record` writes them with the
/// span; spans written before are backfilled right after this migration, from their JSON
/// columns (see `backfills`).
const UNPACKED: &str = "ALTER TABLE spans ADD COLUMN kind TEXT;
     ALTER TABLE spans ADD COLUMN shipped_at TEXT;
     ALTER TABLE spans ADD COLUMN shipped_subjects TEXT;
     CREATE TABLE ran (sha TEXT PRIMARY KEY);";

/// Whether migration `n` (1-based) needs the backfill of those columns and `ran` run after its
/// statements (in its transaction). Found by content, so the migration may be renumbered.
pub fn backfills(n: u32) -> bool {
    MIGRATIONS.get(n as usize - 1) == Some(&UNPACKED)
}

/// The version a fully migrated database is at.
pub fn current() -> u32 {
    MIGRATIONS.len() as u32
}

/// Migration `n` (1-based) for an engine whose key column type is `id`.
pub fn migration(n: u32, id: &str) -> String {
    MIGRATIONS[n as usize - 1].replace("{id}", id)
}

/// The span columns, in the order engines read them.
pub const SPAN_COLUMNS: &str =
    "id, environment, service, state_key, first_seen, last_seen, prev_seen, started_at, parts, change";

pub const INSERT_HEARTBEAT: &str = "INSERT INTO heartbeats (at, complete, failed, origin) VALUES ($1, $2, $3, $4)";

pub const INSERT_SPAN: &str = "INSERT INTO spans (environment, service, state_key, first_seen, last_seen, prev_seen, \
     started_at, parts, change, kind, shipped_at, shipped_subjects) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (environment, service, first_seen) DO NOTHING";

/// `UPDATE … last_seen = $1` for the spans whose ids are listed (integers we read back,
/// written into the statement: one statement for any number of spans).
pub fn confirm(ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("UPDATE spans SET last_seen = $1 WHERE last_seen < $1 AND id IN ({})", list.join(", "))
}

pub const UPDATE_SPAN: &str = "UPDATE spans SET state_key = $1, first_seen = $2, last_seen = $3, prev_seen = $4, \
     started_at = $5, parts = $6, change = $7, kind = $8, shipped_at = $9, shipped_subjects = $10 WHERE id = $11";

/// `SELECT … WHERE` the latest span at or before $3.
pub fn before() -> String {
    format!(
        "SELECT {SPAN_COLUMNS} FROM spans WHERE environment = $1 AND service = $2 AND first_seen <= $3 \
         ORDER BY first_seen DESC LIMIT 1"
    )
}

/// The earliest span after $3.
pub fn after() -> String {
    format!(
        "SELECT {SPAN_COLUMNS} FROM spans WHERE environment = $1 AND service = $2 AND first_seen > $3 \
         ORDER BY first_seen ASC LIMIT 1"
    )
}

/// Spans by filter: $1 environment (or NULL), $2 service (or NULL), $3 since, $4 until
/// (exclusive); newest first.
pub fn select_spans(cast: &str) -> String {
    format!(
        "SELECT {SPAN_COLUMNS} FROM spans WHERE ($1{cast} IS NULL OR environment = $1) \
         AND ($2{cast} IS NULL OR service = $2) AND first_seen >= $3 AND first_seen < $4 \
         ORDER BY first_seen DESC, environment, service"
    )
}

/// The latest span of every environment/service, through `heads`.
pub fn latest() -> String {
    let columns: Vec<String> = SPAN_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect();
    format!("SELECT {} FROM heads h JOIN spans s ON s.id = h.span_id", columns.join(", "))
}

/// After inserting the span of ($1 environment, $2 service, $3 first_seen): it becomes the
/// head unless the head is later.
pub const ADVANCE_HEAD: &str = "INSERT INTO heads (environment, service, span_id) \
     SELECT environment, service, id FROM spans WHERE environment = $1 AND service = $2 AND first_seen = $3 \
     ON CONFLICT (environment, service) DO UPDATE SET span_id = excluded.span_id \
     WHERE (SELECT first_seen FROM spans WHERE id = heads.span_id) < $3";

/// What `when` reads of a span: where, when, and what ran (no `change`).
pub const RUNNING_COLUMNS: &str = "id, environment, service, first_seen, prev_seen, started_at, parts";

/// Every service's spans first seen in [$1, $2), oldest first.
pub fn running_between() -> String {
    format!(
        "SELECT {RUNNING_COLUMNS} FROM spans WHERE first_seen >= $1 AND first_seen < $2 \
         ORDER BY first_seen, environment, service"
    )
}

/// One service's spans ($1 environment, $2 service) first seen at or after $3, oldest
/// first, at most $4 (through the unique key's index).
pub fn running_of() -> String {
    format!(
        "SELECT {RUNNING_COLUMNS} FROM spans WHERE environment = $1 AND service = $2 AND first_seen >= $3 \
         ORDER BY first_seen LIMIT $4"
    )
}

/// The latest span of every environment/service, what ran only.
pub fn latest_running() -> String {
    let columns: Vec<String> = RUNNING_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect();
    format!("SELECT {} FROM heads h JOIN spans s ON s.id = h.span_id", columns.join(", "))
}

/// What `metrics` reads of the spans first seen at or after $2 (in environment $1, or all
/// when NULL): plain columns only.
pub fn deployments(cast: &str) -> String {
    format!(
        "SELECT id, environment, service, first_seen, started_at, kind, shipped_at, shipped_subjects FROM spans \
         WHERE ($1{cast} IS NULL OR environment = $1) AND first_seen >= $2"
    )
}

/// The backfill's pages: spans after id $1, by id, at most $2.
pub const BACKFILL_PAGE: &str = "SELECT id, parts, change FROM spans WHERE id > $1 ORDER BY id LIMIT $2";

/// How many spans the backfill reads at once.
pub const BACKFILL_PAGE_SIZE: i64 = 1000;

/// The plain columns of one span ($4): kind, shipped_at, shipped_subjects.
pub const SET_METRICS_COLUMNS: &str =
    "UPDATE spans SET kind = $1, shipped_at = $2, shipped_subjects = $3 WHERE id = $4";

/// How many spans one `backfill` statement writes (4 parameters each).
pub const BACKFILL_PER_STATEMENT: usize = 250;

/// `UPDATE spans … FROM (VALUES …)` of `rows` spans: (id, kind, shipped_at,
/// shipped_subjects) for each, as `$1…$4`, `$5…$8`, … (cast, so the types are known). For
/// PostgreSQL, one round trip for many spans; SQLite plans it as a scan of every span, so it
/// sets them one by one with `SET_METRICS_COLUMNS` instead.
pub fn backfill(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = |c: usize| r * 4 + c;
            format!(
                "(CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT))",
                p(1),
                p(2),
                p(3),
                p(4)
            )
        })
        .collect();
    format!(
        "UPDATE spans SET kind = v.column2, shipped_at = v.column3, shipped_subjects = v.column4 \
         FROM (VALUES {}) AS v WHERE spans.id = v.column1",
        values.join(", ")
    )
}

/// `INSERT INTO ran …` of `n` commits (`$1`…`$n`), those already there left as they are.
pub fn insert_ran(n: usize) -> String {
    let values: Vec<String> = (1..=n).map(|i| format!("(${i})")).collect();
    format!("INSERT INTO ran (sha) VALUES {} ON CONFLICT DO NOTHING", values.join(", "))
}

/// Every commit a span ran.
pub const SELECT_RAN: &str = "SELECT sha FROM ran";

/// The first heartbeat at or after $1 (NULL when none).
pub const FIRST_HEARTBEAT: &str = "SELECT min(at) FROM heartbeats WHERE at >= $1";

pub const SELECT_HEARTBEATS: &str =
    "SELECT at, complete, failed, origin FROM heartbeats WHERE at >= $1 ORDER BY at, id";

/// The deliveries of one target ($1).
pub const SELECT_DELIVERIES: &str = "SELECT target, span_id, acked_at, attempts, next_attempt, last_error, \
     state FROM deliveries WHERE target = $1 ORDER BY span_id";

/// Writes a delivery, replacing the one of the same (target, span).
pub const PUT_DELIVERY: &str = "INSERT INTO deliveries (target, span_id, acked_at, attempts, next_attempt, \
     last_error, state) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (target, span_id) DO UPDATE SET \
     acked_at = excluded.acked_at, attempts = excluded.attempts, next_attempt = excluded.next_attempt, \
     last_error = excluded.last_error, state = excluded.state";

/// Takes or renews the lease $1 for holder $2 until $3, unless another holder's lease
/// lasts past $4 (now); the caller then reads who holds it (`LEASE_HOLDER`). (Parameters
/// are numbered in the order they appear: SQLite numbers `$N` names that way.)
pub const TAKE_LEASE: &str = "INSERT INTO leases (name, holder, expires) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires \
     WHERE leases.holder = excluded.holder OR leases.expires <= $4";

pub const LEASE_HOLDER: &str = "SELECT holder FROM leases WHERE name = $1";

/// Gives up lease $1 if holder $2 has it.
pub const DROP_LEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
