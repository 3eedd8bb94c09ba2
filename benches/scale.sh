#!/usr/bin/env bash
# Fleet scale: how prodiff's cost grows with the fleet. Each curve is run at several sizes;
# each size prints one markdown row: wall (best of BENCH_RUNS), the user time of that run,
# the peak RSS over the runs (GNU time), and wall and user time per unit. Flat per-unit
# columns are the target.
#
#   pods        a kubectl pod list of 2,500 .. 20,000 pods (10 replicas a deployment, an app
#               and a sidecar container each), through a `kubectl` stand-in that cats the JSON
#   inventory   an inventory of 250 .. 2,000 services x 5 environments (1,250 .. 10,000 workloads)
#   registries  5 .. 50 docker-registry processes on loopback ports, 20 workloads each, behind
#               one counting proxy process (requests and the most in flight, per registry)
#   monorepo    10 .. 100 path-filtered services in one 50,000-commit repository
#   history     10k, 100k and 1M-commit histories (gen-history.py): status and diff on a range
#               of ~68% of the history, without and with a commit-graph
#
#   bash benches/scale.sh [pods|inventory|registries|monorepo|history ...]   # default: all
#   BENCH_DIR=/tmp/prodiff-scale BENCH_RUNS=3 BENCH_HISTORIES="10000 100000 1000000"
# The repositories are built once and kept in BENCH_DIR (the 1M one takes a few minutes).
# Loopback only; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${BENCH_DIR:-${TMPDIR:-/tmp}/prodiff-scale}
runs=${BENCH_RUNS:-3}
histories=${BENCH_HISTORIES:-10000 100000 1000000}
curves=("$@")
[ ${#curves[@]} -gt 0 ] || curves=(pods inventory registries monorepo history)
for tool in /usr/bin/time python3 bc git; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install time bc)" >&2; exit 2; }
done
mkdir -p "$work"
cargo build --release --quiet
bin=$PWD/target/release/prodiff
export PRODIFF_CACHE_DIR=$work/cache NO_COLOR=1
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# repo DIR COMMITS [SERVICES]: a synthetic history, built once.
repo() {
  if [ ! -f "$1/.built" ]; then
    rm -rf "$1" && git init -q -b main "$1"
    python3 benches/gen-history.py "$2" "${3:-10}" | git -C "$1" fast-import --quiet --done
    git -C "$1" checkout -q main
    touch "$1/.built"
  fi
}

header() { # UNIT
  echo "| size | wall | user | peak RSS | wall per $1 | user per $1 |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
}

# measure SIZE UNITS CMD...: one row. Exit codes 0, 1 and 3 are answers (findings); others fail.
measure() {
  local size=$1 units=$2 best="" user="" rss=0 rc
  shift 2
  for _ in $(seq "$runs"); do
    rc=0
    /usr/bin/time -f "%e %U %M" -o "$work/time" "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
    if [ "$rc" != 0 ] && [ "$rc" != 1 ] && [ "$rc" != 3 ]; then
      echo "exit $rc: $*" >&2; tail -5 "$work/stderr" >&2; exit 1
    fi
    read -r w u m < <(tail -1 "$work/time")
    [ "$m" -gt "$rss" ] && rss=$m
    if [ -z "$best" ] || [ "$(echo "$w < $best" | bc)" = 1 ]; then best=$w user=$u; fi
  done
  printf '| %s | %.2f s | %.2f s | %d MiB | %s | %s |\n' "$size" "$best" "$user" $((rss / 1024)) \
    "$(per "$best" "$units")" "$(per "$user" "$units")"
}

per() { # SECONDS UNITS: per unit, in µs (one decimal) or ms
  local us
  us=$(echo "scale=1; $1 * 1000000 / $2" | bc)
  if [ "$(echo "$us >= 10000" | bc)" = 1 ]; then echo "$(echo "$us / 1000" | bc) ms"; else LC_ALL=C printf '%.1f µs\n' "$us"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# A 20k-commit repository whose 500 newest mainline commits the fleet runs (0 to ~550
# commits behind); `graph` yes or no: with or without a commit-graph.
fleet_repo() {
  repo "$work/repo20k" 20000
  git -C "$work/repo20k" rev-list --first-parent --max-count=500 main > "$work/commits.txt"
  if [ "$1" = yes ]; then
    [ -f "$work/repo20k/.git/objects/info/commit-graph" ] || git -C "$work/repo20k" commit-graph write --reachable
  else
    rm -rf "$work/repo20k/.git/objects/info/commit-graph" "$work/repo20k/.git/objects/info/commit-graphs"
  fi
}

distinct() { # FILE: how many distinct running commits an inventory or pod list names
  grep -o 'sha-[0-9a-f]\{12\}' "$1" | sort -u | wc -l
}

pods() {
  fleet_repo no
  local dir=$work/pods
  mkdir -p "$dir"
  printf '[environments.production]\nkubernetes = [{ context = "bench", namespace = "shop" }]\n' > "$dir/prodiff.toml"
  echo "## kubectl pod lists (status --offline, no commit-graph)"
  header pod
  for n in 2500 5000 10000 20000; do
    python3 benches/gen-fleet.py pods "$n" "$work/commits.txt" > "$dir/pods-$n.json"
    printf '#!/bin/sh\nexec cat %s\n' "$dir/pods-$n.json" > "$dir/kubectl"
    chmod +x "$dir/kubectl"
    PRODIFF_KUBECTL=$dir/kubectl measure \
      "$n pods, $((n / 10)) deployments ($(du -m "$dir/pods-$n.json" | cut -f1) MB, $(distinct "$dir/pods-$n.json") commits)" "$n" \
      "$bin" status --offline --repo "$work/repo20k" --config "$dir/prodiff.toml"
  done
}

inventory() {
  local dir=$work/inventory
  mkdir -p "$dir"
  for pass in "table no" "table yes" "json yes"; do
    read -r format graph <<< "$pass"
    fleet_repo "$graph"
    echo "## inventory, services x 5 environments (status --offline --format $format, commit-graph: $graph)"
    header workload
    for s in 250 500 1000 2000; do
      python3 benches/gen-fleet.py inventory "$s" 5 "$work/commits.txt" > "$dir/inv-$s.json"
      measure "$((s * 5)) workloads ($s services, $(distinct "$dir/inv-$s.json") commits)" "$((s * 5))" \
        "$bin" status --offline --repo "$work/repo20k" --inventory "$dir/inv-$s.json" --format "$format"
    done
  done
}

registries() {
  local dir=$work/registries count=50 per_reg=10
  rm -rf "$dir" && mkdir -p "$dir"
  # A repository whose two releases the images are labelled with.
  git init -q -b main "$dir/repo"
  local revs=()
  for i in 0 1; do
    GIT_AUTHOR_DATE="@$((1700000000 + i * 3600)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + i * 3600)) +0000" \
      git -C "$dir/repo" -c user.name=Bench -c user.email=b@example.com commit -q --allow-empty -m "release 1.$i.0"
    git -C "$dir/repo" tag "v1.$i.0"
    revs+=("$(git -C "$dir/repo" rev-parse HEAD)")
  done
  local regs=() proxies=() triples=()
  for r in $(seq 0 $((count - 1))); do
    regs+=("$(free_port)")
    mkdir -p "$dir/r$r"
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\nlog:\n  level: error\n' \
      "$dir/r$r/data" "${regs[$r]}" > "$dir/r$r/registry.yml"
    /usr/bin/docker-registry serve "$dir/r$r/registry.yml" >/dev/null 2>&1 &
    pids+=($!)
  done
  for r in $(seq 0 $((count - 1))); do
    proxies+=("$(free_port)")
    triples+=("127.0.0.1:${proxies[$r]}" "127.0.0.1:${regs[$r]}" "$dir/r$r/requests.log")
  done
  python3 benches/count-proxy.py "${triples[@]}" &
  pids+=($!)
  for r in $(seq 0 $((count - 1))); do
    wait_port "${regs[$r]}"
    wait_port "${proxies[$r]}"
    python3 benches/registry-push.py "127.0.0.1:${regs[$r]}" "$per_reg" 2 "${revs[@]}" > "$dir/r$r/digests.json"
  done
  echo "## registries: $count docker-registry processes on loopback, one counting proxy each (one process)"
  echo "($per_reg services x 2 environments per registry, each pinned by digest; cold = empty cache)"
  echo "| registries | run | wall | user | peak RSS | requests | per registry | most in flight at one registry | wall per registry |"
  echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for n in 5 10 25 50; do
    python3 - "$dir" "$n" "${proxies[@]}" > "$dir/inventory-$n.json" <<'PY'
import json, sys
d, n, ports = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
for r in range(n):
    digests = json.load(open(f"{d}/r{r}/digests.json"))
    for repo in sorted(digests):
        for e, env in enumerate(["staging", "production"]):
            host = f"127.0.0.1:{ports[r]}"
            rows.append({"environment": env, "service": f"r{r}-{repo}", "image": f"{host}/{repo}:1.{e}.0",
                         "repo_digests": [f"{host}/{repo}@{digests[repo][f'1.{e}.0']}"]})
json.dump({"workloads": rows}, sys.stdout)
PY
    rm -rf "$work/cache"
    for run in cold warm; do
      for r in $(seq 0 $((count - 1))); do : > "$dir/r$r/requests.log"; rm -f "$dir/r$r/requests.log.inflight"; done
      local row
      row=$(runs=1 measure "$n" "$n" "$bin" status --repo "$dir/repo" --inventory "$dir/inventory-$n.json" --format json)
      python3 - "$work/stdout" "$((n * per_reg * 2))" >&2 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
resolved = sum(1 for x in r["results"] if x["commit"])
if resolved != int(sys.argv[2]) or not r["complete"]:
    print(f"only {resolved} of {sys.argv[2]} rows resolved, complete={r['complete']}")
    sys.exit(1)
PY
      local total=0 most=0 k m
      for r in $(seq 0 $((n - 1))); do
        k=$(wc -l < "$dir/r$r/requests.log"); total=$((total + k))
        m=$(cat "$dir/r$r/requests.log.inflight" 2>/dev/null || echo 0); [ "$m" -gt "$most" ] && most=$m
      done
      # row: | size | wall | user | rss | wall/unit | user/unit |
      IFS='|' read -r _ _ wall user rss wper _ <<< "$row"
      echo "| $n | $run |$wall|$user|$rss| $total | $((total / n)) | $most |$wper|"
    done
  done
}

monorepo() {
  local dir=$work/monorepo
  repo "$dir/repo" 50000 100
  git -C "$dir/repo" rev-list --first-parent main > "$dir/mainline.txt"
  echo "## monorepo: services with a path filter each, one 50,000-commit repository (status --offline)"
  echo "(service i runs a commit 20-40% of the mainline back, spread evenly; about 10k-20k commits behind)"
  header service
  for s in 10 25 50 100; do
    python3 - "$dir" "$s" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
revs = [l.strip() for l in open(f"{d}/mainline.txt")]
lo, hi = len(revs) // 5, len(revs) * 2 // 5
with open(f"{d}/prodiff-{n}.toml", "w") as f:
    f.write('mainline = "main"\n')
    for i in range(n):
        f.write(f'[services.svc{i}]\nimage = "bench/svc{i}"\npaths = ["svc{i}/"]\n')
rows = []
for i in range(n):
    rev = revs[lo + (i * 7919) % n * (hi - lo) // max(n - 1, 1)]
    rows.append({"environment": "production", "image": f"bench/svc{i}:sha-{rev[:12]}"})
json.dump({"workloads": rows}, open(f"{d}/inventory-{n}.json", "w"))
PY
    measure "$s services" "$s" "$bin" status --offline --repo "$dir/repo" --config "$dir/prodiff-$s.toml" \
      --inventory "$dir/inventory-$s.json"
  done
}

history() {
  for graph in no yes; do
    for what in "git rev-list --count" "prodiff status" "prodiff diff --format json"; do
      echo "## $what on ~68% of a history, commit-graph: $graph"
      header commit
      for n in $histories; do
        local dir=$work/history-$n
        repo "$dir" "$n"
        if [ "$graph" = yes ]; then
          [ -f "$dir/.git/objects/info/commit-graph" ] || git -C "$dir" commit-graph write --reachable
        else
          rm -rf "$dir/.git/objects/info/commit-graph" "$dir/.git/objects/info/commit-graphs"
        fi
        local total old range
        total=$(git -C "$dir" rev-list --first-parent --count main)
        old=$(git -C "$dir" rev-list --first-parent main | sed -n "$((total * 685 / 1000))p")
        range=$(git -C "$dir" rev-list --count "$old..main")
        printf '{"workloads": [{"environment": "old", "image": "bench/api:sha-%s"}]}\n' "${old:0:12}" > "$dir.inventory.json"
        case $what in
          git*) measure "$range of $n" "$range" git -C "$dir" rev-list --count "$old..main" ;;
          *status) measure "$range of $n" "$range" "$bin" status --repo "$dir" --inventory "$dir.inventory.json" ;;
          *diff*) measure "$range of $n" "$range" "$bin" diff old --repo "$dir" --inventory "$dir.inventory.json" --format json ;;
        esac
      done
    done
  done
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); best of $runs runs"
for c in "${curves[@]}"; do
  "$c"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done
