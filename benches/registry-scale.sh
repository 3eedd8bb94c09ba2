#!/usr/bin/env bash
# Registry at scale: 200 services x 4 environments (800 workloads, 800 distinct tags) against
# a local docker-registry, behind a counting proxy. Runs prodiff cold (empty cache) and
# warm, counts requests by method and kind, and times `skopeo inspect` once per image for
# comparison. Loopback only.
#
#   bash benches/registry-scale.sh        # BENCH_SERVICES=200 BENCH_DIR=/tmp/prodiff-bench-registry
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
services=${BENCH_SERVICES:-200}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/prodiff-bench-registry}
rm -rf "$work" && mkdir -p "$work"
cargo build --release --quiet
bin=$PWD/target/release/prodiff
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

reg=$(free_port)
cat > "$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$reg
log:
  level: error
YML
/usr/bin/docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
wait_port "$reg"
proxy=$(free_port)
python3 benches/count-proxy.py "127.0.0.1:$proxy" "127.0.0.1:$reg" "$work/requests.log" &
pids+=($!)
wait_port "$proxy"

# A repository whose four releases the images are labelled with.
repo=$work/repo
git init -q -b main "$repo"
revs=()
for i in 0 1 2 3; do
  GIT_AUTHOR_DATE="@$((1700000000 + i * 3600)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + i * 3600)) +0000" \
    git -C "$repo" -c user.name=Bench -c user.email=b@example.com commit -q --allow-empty -m "release 1.$i.0"
  git -C "$repo" tag "v1.$i.0"
  revs+=("$(git -C "$repo" rev-parse HEAD)")
done

start=$(date +%s.%N)
python3 benches/registry-push.py "127.0.0.1:$reg" "$services" 4 "${revs[@]}" > "$work/digests.json"
echo "pushed $services repositories x 4 tags in $(echo "$(date +%s.%N) - $start" | bc) s"

# Environment e runs release 1.e.0 of every service, pinned by its digest.
python3 - "$work/digests.json" "$proxy" > "$work/inventory.json" <<'PY'
import json, sys
digests, port = json.load(open(sys.argv[1])), sys.argv[2]
envs = ["dev", "staging", "uk", "us"]
rows = [{"environment": env, "service": repo, "image": f"127.0.0.1:{port}/{repo}:1.{e}.0",
         "repo_digests": [f"127.0.0.1:{port}/{repo}@{digests[repo][f'1.{e}.0']}"]}
        for repo in sorted(digests) for e, env in enumerate(envs)]
json.dump({"workloads": rows}, sys.stdout)
PY

count() { # label
  echo "$1: $(wc -l < "$work/requests.log") requests:" \
    "$(grep -c '^HEAD /v2/.*/manifests/' "$work/requests.log" || true) HEAD manifest," \
    "$(grep -c '^GET /v2/.*/manifests/' "$work/requests.log" || true) GET manifest," \
    "$(grep -c '^GET /v2/.*/blobs/' "$work/requests.log" || true) GET blob," \
    "$(grep -c '^GET /v2/.*/tags/list' "$work/requests.log" || true) GET tags/list," \
    "$(grep -c '^GET /v2/ ' "$work/requests.log" || true) GET /v2/"
}
export PRODIFF_CACHE_DIR=$work/cache
for run in cold warm; do
  : > "$work/requests.log"
  /usr/bin/time -f "$run: %e s wall, peak RSS %M KiB" "$bin" status --repo "$repo" --inventory "$work/inventory.json" --format json > "$work/$run.json" || true
  count "$run"
done
python3 - "$work/warm.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
resolved = sum(1 for x in r["results"] if x["commit"])
print(f"warm run: {len(r['results'])} rows, {resolved} resolved to a commit, complete={r['complete']}")
PY

start=$(date +%s.%N)
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [print(f"{r}:{t}") for r in sorted(d) for t in sorted(d[r])]' "$work/digests.json" |
  while read -r image; do skopeo inspect --tls-verify=false --no-tags "docker://127.0.0.1:$reg/$image" >/dev/null; done
echo "skopeo inspect, once per image ($((services * 4)) images): $(echo "$(date +%s.%N) - $start" | bc) s"
