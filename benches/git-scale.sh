#!/usr/bin/env bash
# Git at scale: builds a synthetic repository (benches/gen-history.py: 200k commits with
# merges, release branches and ~500 tags) and times prodiff against git on the same ranges
# (~10k and ~150k commits), without and then with a commit-graph written by current git:
# wall and user time, the ratios of issue 19, and instruction counts (callgrind, when
# valgrind is installed: `perf stat` has no hardware counters on this machine) of the ~10k
# range. Also records prodiff's peak memory. Figures go to benches/README.md by hand.
#
#   bash benches/git-scale.sh     # BENCH_DIR=/tmp/prodiff-bench BENCH_COMMITS=200000 BENCH_RUNS=5
#                                 # BENCH_CALLGRIND=0 skips the instruction counts
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${BENCH_DIR:-${TMPDIR:-/tmp}/prodiff-bench}
commits=${BENCH_COMMITS:-200000}
for tool in hyperfine /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install hyperfine time)" >&2; exit 2; }
done

cargo build --release --quiet
bin=$PWD/target/release/prodiff
repo=$work/repo
if [ ! -f "$work/.built-$commits" ]; then
  rm -rf "$work" && mkdir -p "$repo"
  git -C "$repo" init -q -b main
  python3 benches/gen-history.py "$commits" | git -C "$repo" fast-import --quiet --done
  git -C "$repo" checkout -q main
  touch "$work/.built-$commits"
fi
rm -f "$repo/.git/objects/info/commit-graph"
rm -rf "$repo/.git/objects/info/commit-graphs"

# Two running commits on the mainline's first-parent chain: ~10k and ~150k commits behind.
total=$(git -C "$repo" rev-list --first-parent --count main)
recent=$(git -C "$repo" rev-list --first-parent main | sed -n "$((total * 46 / 1000))p")
old=$(git -C "$repo" rev-list --first-parent main | sed -n "$((total * 685 / 1000))p")
cat > "$work/inventory.json" <<JSON
{"workloads": [
  {"environment": "recent", "image": "bench/api:sha-${recent:0:12}"},
  {"environment": "old", "image": "bench/api:sha-${old:0:12}"}
]}
JSON
# A monorepo's view: ten services, each with a path filter (svcN/), all running `recent`.
{ echo 'mainline = "main"'
  for i in $(seq 0 9); do printf '[services.svc%d]\nimage = "bench/svc%d"\npaths = ["svc%d/"]\n' "$i" "$i" "$i"; done
} > "$work/paths.toml"
{ echo '{"workloads": ['
  for i in $(seq 0 9); do
    sep=,; [ "$i" = 9 ] && sep=
    echo "{\"environment\": \"recent\", \"image\": \"bench/svc$i:sha-${recent:0:12}\"}$sep"
  done
  echo ']}'
} > "$work/inventory-paths.json"
echo "repository: $(git -C "$repo" rev-list --count --all) commits, $(git -C "$repo" tag | wc -l) tags"
echo "recent: $(git -C "$repo" rev-list --count "$recent..main") commits behind; old: $(git -C "$repo" rev-list --count "$old..main") behind"

# The git log format of issue 19: the fields `prodiff diff` lists for every commit.
logfmt='%H%x00%P%x00%an%x00%ae%x00%at%x00%ct%x00%s'
runs=${BENCH_RUNS:-5}

# Mean wall and user time of each command of a hyperfine JSON export, with the ratios the
# issue asks for: status against `git rev-list --count`, diff against `git log --format`.
summary() { # json
  python3 - "$1" <<'PY'
import json, sys
rows = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ms = lambda r, k: 1000 * (r[k] if k == "mean" else r[k])
base = {"prodiff status": "git rev-list --count", "prodiff diff --format json": "git log --format"}
print("| command | wall | user | × git |")
print("| --- | ---: | ---: | ---: |")
for name, r in rows.items():
    ratio = ""
    if name in base:
        ratio = "%.2f× %s" % (r["mean"] / rows[base[name]]["mean"], base[name])
    print("| %s | %.1f ms ± %.1f | %.1f ms | %s |" % (name, 1000 * r["mean"], 1000 * r["stddev"], 1000 * r["user"], ratio))
PY
}

# Instructions (callgrind) of git and prodiff on one range: steady whatever the load.
instructions() { # label env sha
  [ "${BENCH_CALLGRIND:-1}" = 1 ] && command -v valgrind >/dev/null || return 0
  count() { valgrind --tool=callgrind --callgrind-out-file="$work/cg-$1.out" "${@:2}" 2>&1 >/dev/null |
    sed -n 's/.*Collected : //p'; }
  echo "instructions ($1, $2): git rev-list --count $(count "$1-$2-revlist" git -C "$repo" rev-list --count "$3..main")," \
    "prodiff status $(count "$1-$2-status" "$bin" status --repo "$repo" --inventory "$work/inventory.json" --env "$2")," \
    "git log --format $(count "$1-$2-log" git -C "$repo" log --format="$logfmt" "$3..main")," \
    "prodiff diff $(count "$1-$2-diff" "$bin" diff "$2" --repo "$repo" --inventory "$work/inventory.json" --format json)"
}

bench() { # label
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  for env in recent old; do
    sha=$recent; [ "$env" = old ] && sha=$old
    hyperfine -N --warmup 1 --runs "$runs" --style none --export-json "$work/$1-$env.json" \
      -n "git rev-list --count" "git -C $repo rev-list --count $sha..main" \
      -n "git log --format" "git -C $repo log --format=$logfmt $sha..main" \
      -n "prodiff status" "$bin status --repo $repo --inventory $work/inventory.json --env $env" \
      -n "prodiff diff --format json" "$bin diff $env --repo $repo --inventory $work/inventory.json --format json"
    echo "### $1, $env ($(git -C "$repo" rev-list --count "$sha..main") commits)"
    summary "$work/$1-$env.json"
  done
  instructions "$1" recent "$recent"
  hyperfine --warmup 1 --runs "$runs" --style basic --export-markdown "$work/$1-paths.md" \
    -n "git rev-list --count -- svcN/, once per service" \
    "for i in 0 1 2 3 4 5 6 7 8 9; do git -C $repo rev-list --count $recent..main -- svc\$i/; done" \
    -n "prodiff status, 10 services with paths" \
    "$bin status --repo $repo --config $work/paths.toml --inventory $work/inventory-paths.json --offline"
  cat "$work/$1-paths.md"
  /usr/bin/time -f "prodiff diff old --format json ($1): peak RSS %M KiB" \
    "$bin" diff old --repo "$repo" --inventory "$work/inventory.json" --format json >/dev/null
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

echo "## without a commit-graph"
bench no-graph
git -C "$repo" commit-graph write --reachable
echo "## with a commit-graph"
bench graph
