#!/usr/bin/env bash
# The ledger at scale: a generated ledger of 2 years x 200 services x 4 environments
# (500,000 deployment events, 105,000 heartbeats; benches/ledger-gen.py) loaded into SQLite
# and into a PostgreSQL server this script starts (initdb in a temporary directory, as the
# postgres user when run as root, stopped at the end), in time order as `record` writes
# them, with the plain columns and the `ran` table `record` writes beside the JSON; then
# `log --since 7d`, `when COMMIT`, `when TICKET` and `metrics --since 90d` timed with
# hyperfine on both, the load average printed before each.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q --release --locked
bin=$PWD/target/release/prodiff
work=$(mktemp -d)
chmod 755 "$work"
pg=/usr/lib/postgresql/15/bin
as=()
[ "$(id -u)" = 0 ] && as=(setpriv --reuid=postgres --regid=postgres --init-groups)
cleanup() { [ -f "$work/pg/postmaster.pid" ] && "${as[@]}" "$pg/pg_ctl" -D "$work/pg" -m fast stop >/dev/null; rm -rf "$work"; }
trap cleanup EXIT
echo "generating the ledger…"
commit=$(python3 benches/ledger-gen.py "$work/repo" "$work")
python3 -c 'import csv, sys; [print(sum(1 for _ in csv.reader(open(f))), f) for f in sys.argv[1:]]' "$work/spans.csv" "$work/heartbeats.csv"
now=$(date -u -d @$((1700000000 + 730 * 86400)) +%Y-%m-%dT%H:%M:%SZ)
export PRODIFF_NOW=$now
cd "$work/repo"

# SQLite: create the schema through prodiff (a first record migrates), then load the CSVs.
echo '{"workloads": [{"environment": "setup", "service": "setup", "image": "r.example.com/setup:1"}]}' > "$work/setup.json"
"$bin" --ledger "$work/ledger.db" record --offline --allow-incomplete --inventory "$work/setup.json" >/dev/null
python3 - "$work" <<'PY'
import csv, sqlite3, sys
w = sys.argv[1]
db = sqlite3.connect(f"{w}/ledger.db")
with open(f"{w}/spans.csv") as f:
    db.executemany("INSERT INTO spans (environment, service, state_key, first_seen, last_seen, prev_seen, started_at, parts, change, kind, shipped_at, shipped_subjects) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   ([r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]) if r[5] else None, int(r[6])] + r[7:] for r in csv.reader(f)))
with open(f"{w}/heartbeats.csv") as f:
    db.executemany("INSERT INTO heartbeats (at, complete, failed, origin) VALUES (?,?,?,?)", csv.reader(f))
# What record writes beside the spans: every commit that ran (a generated span runs one
# commit, its state key; the setup span none), and each service's latest (what migration 3
# does for existing spans).
db.executescript("INSERT INTO ran (sha) SELECT DISTINCT state_key FROM spans WHERE environment <> 'setup'; DELETE FROM heads; INSERT INTO heads (environment, service, span_id) SELECT environment, service, id FROM spans s WHERE first_seen = (SELECT max(first_seen) FROM spans WHERE environment = s.environment AND service = s.service);")
db.commit()
PY

# PostgreSQL.
mkdir "$work/pg" && chown postgres "$work/pg" 2>/dev/null || true
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as[@]}" "$pg/initdb" -D "$work/pg" -U prodiff --auth=trust -E UTF8 --no-sync >/dev/null
"${as[@]}" "$pg/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
url="postgres://prodiff@127.0.0.1:$port/postgres"
"$bin" --ledger "$url" record --offline --allow-incomplete --inventory "$work/setup.json" >/dev/null
"$pg/psql" -q -h 127.0.0.1 -p "$port" -U prodiff -d postgres \
  -c "\\copy spans (environment, service, state_key, first_seen, last_seen, prev_seen, started_at, parts, change, kind, shipped_at, shipped_subjects) FROM '$work/spans.csv' WITH (FORMAT csv, FORCE_NOT_NULL (shipped_at, shipped_subjects))" \
  -c "\\copy heartbeats (at, complete, failed, origin) FROM '$work/heartbeats.csv' CSV" -c "INSERT INTO ran (sha) SELECT DISTINCT state_key FROM spans WHERE environment <> 'setup'" -c "DELETE FROM heads; INSERT INTO heads (environment, service, span_id) SELECT environment, service, id FROM spans s WHERE first_seen = (SELECT max(first_seen) FROM spans WHERE environment = s.environment AND service = s.service)" -c "VACUUM ANALYZE"

# The commit's ticket (`SHOP-2500 change 1500`): `when TICKET` too.
ticket=$(git log -1 --format=%s "$commit" | cut -d' ' -f1)
load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }
for ledger in "$work/ledger.db" "$url"; do
  echo "# $( [ "$ledger" = "$url" ] && echo PostgreSQL || echo SQLite)"
  "$bin" --ledger "$ledger" log production --since 7d | wc -l
  "$bin" --ledger "$ledger" when "$commit" | head -3
  "$bin" --ledger "$ledger" metrics --since 90d
  load
  hyperfine -N -i --warmup 1 --runs 5 \
    "$bin --ledger $ledger log --since 7d" \
    "$bin --ledger $ledger when $commit" \
    "$bin --ledger $ledger when $ticket" \
    "$bin --ledger $ledger metrics --since 90d" 2>&1 | grep -E "Benchmark|Time"
done

# `record` against `status` on the same fleet: 200 services x 4 environments (800 workloads
# from an inventory), into a ledger that already knows them (the steady state of `watch`).
python3 - "$work" <<'PY'
import json, subprocess, sys
w = sys.argv[1]
shas = subprocess.run(["git", "-C", f"{w}/repo", "rev-list", "main"], capture_output=True, text=True, check=True).stdout.split()
rows = [{"environment": e, "service": f"svc{s:03d}", "image": f"r.example.com/svc{s:03d}:{s}",
         "labels": {"org.opencontainers.image.revision": shas[(s * 7) % 500]}}
        for e in ["dev", "staging", "production", "eu"] for s in range(200)]
json.dump({"workloads": rows}, open(f"{w}/fleet.json", "w"))
PY
"$bin" --ledger "$work/fleet.db" record --offline --inventory "$work/fleet.json" | tail -1
load
hyperfine -N -i --warmup 1 --runs 5 \
  "$bin status --offline --inventory $work/fleet.json" \
  "$bin --ledger $work/fleet.db record --offline --inventory $work/fleet.json" \
  "$bin --ledger $url record --offline --inventory $work/fleet.json" 2>&1 | grep -E "Benchmark|Time"
