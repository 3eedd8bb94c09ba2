#!/usr/bin/env python3
"""Generates a deployment ledger for benches/ledger-scale.sh: ENVS x SERVICES timelines over
DAYS days, each service moving forward through the commits of a linear repository (written
with git fast-import) with an occasional rollback, plus a heartbeat every 10 minutes.

  ledger-gen.py REPO OUT_DIR [DAYS] [SERVICES] [ENVS]

Writes REPO (a git repository), OUT_DIR/spans.csv and OUT_DIR/heartbeats.csv (the columns
of the ledger's tables in schema order without ids; spans in time order, as `record` writes
them), and prints the commit to ask `when` about.
"""
import csv, json, os, random, subprocess, sys

repo, out = sys.argv[1], sys.argv[2]
days = int(sys.argv[3]) if len(sys.argv) > 3 else 730
services = int(sys.argv[4]) if len(sys.argv) > 4 else 200
envs = ["dev", "staging", "production", "eu"][: int(sys.argv[5]) if len(sys.argv) > 5 else 4]
commits_n = 3000
start = 1_700_000_000
random.seed(7)

os.makedirs(repo, exist_ok=True)
subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
stream = []
for i in range(commits_n):
    t = start - 86_400 + i * (days * 86_400 // commits_n)
    msg = f"SHOP-{1000 + i} change {i}\n"
    data = f"{i}\n"
    stream.append(f"commit refs/heads/main\nmark :{i + 1}\ncommitter Bench <b@example.com> {t} +0000\n"
                  f"data {len(msg)}\n{msg}" + (f"from :{i}\n" if i else "") +
                  f"M 644 inline f{i % 50}.txt\ndata {len(data)}\n{data}\n")
p = subprocess.run(["git", "-C", repo, "fast-import", "--quiet"], input="".join(stream).encode(), check=True)
shas = subprocess.run(["git", "-C", repo, "rev-list", "--reverse", "main"], capture_output=True, check=True,
                      text=True).stdout.split()
times = [start - 86_400 + i * (days * 86_400 // commits_n) for i in range(commits_n)]

per = 625  # deployments per timeline: 800 timelines x 625 = 500k
rows = []
for env in envs:
    for s in range(services):
        svc = f"svc{s:03d}"
        idx, prev_seen, prev_parts = 0, None, None
        for k in range(per):
            t = start + (k * days * 86_400) // per + random.randint(0, 3000)
            back = prev_parts is not None and random.random() < 0.03
            new = max(0, idx - 1) if back else min(commits_n - 1, max(idx + 1, (k * commits_n) // per))
            while times[new] > t and new > 0:
                new -= 1
            parts = [{"image": f"r.example.com/{svc}:{new}", "commit": shas[new], "digests": [], "replicas": 2,
                      "started_at": t - 60}]
            shipped = [] if back else [{"sha": shas[j], "subject": f"SHOP-{1000 + j} change {j}",
                                        "committed_at": times[j], "tickets": [f"SHOP-{1000 + j}"]}
                                       for j in range(idx + 1 if prev_parts else new, new + 1)][-5:]
            removed = [{"sha": shas[idx], "subject": f"SHOP-{1000 + idx} change {idx}", "committed_at": times[idx],
                        "tickets": [f"SHOP-{1000 + idx}"]}] if back else []
            kind = "first-seen" if prev_parts is None else ("rollback" if back else "deploy")
            change = {"kind": kind, "from": prev_parts, "shipped": shipped if prev_parts else [], "removed": removed,
                      "tickets": sorted({t for c in shipped for t in c["tickets"]}) if prev_parts else []}
            last = t + 600
            # The plain columns `record` writes beside the JSON: kind, shipped_at, shipped_subjects.
            rows.append([env, svc, shas[new], t, last, prev_seen if prev_seen is not None else "", t - 60,
                         json.dumps(parts), json.dumps(change), kind,
                         " ".join(str(c["committed_at"]) for c in change["shipped"]),
                         "\n".join(c["subject"] for c in change["shipped"])])
            idx, prev_seen, prev_parts = new, last, parts
# A ledger `record` wrote holds its spans in the order of time (each run appends its changes).
rows.sort(key=lambda r: (r[3], r[0], r[1]))
with open(os.path.join(out, "spans.csv"), "w", newline="") as f:
    csv.writer(f).writerows(rows)
with open(os.path.join(out, "heartbeats.csv"), "w", newline="") as f:
    w = csv.writer(f)
    for t in range(start, start + days * 86_400, 600):
        w.writerow([t, 1, "[]", "watch"])
print(shas[commits_n // 2])
