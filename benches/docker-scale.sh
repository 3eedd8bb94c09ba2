#!/usr/bin/env bash
# Docker at scale: 60 running containers from 5 images on the local daemon, audited through
# a counting proxy in front of the socket. Reports wall time and requests by kind: one
# container inspect per container (for its start time), one image inspect per distinct
# image. Everything it creates carries the label prodiff.bench=<id> and is removed at exit.
#
#   bash benches/docker-scale.sh          # BENCH_CONTAINERS=60
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
containers=${BENCH_CONTAINERS:-60}
id=prodiff-bench-$$
work=$(mktemp -d)
cargo build --release --quiet
bin=$PWD/target/release/prodiff
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  docker ps -aq --filter "label=prodiff.bench=$id" | xargs -r docker rm -f >/dev/null
  docker images -q --filter "label=prodiff.bench=$id" | sort -u | xargs -r docker rmi -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

repo=$work/repo
git init -q -b main "$repo"
cp /bin/busybox "$work/busybox"
for i in 0 1 2 3 4; do
  GIT_AUTHOR_DATE="@$((1700000000 + i * 3600)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + i * 3600)) +0000" \
    git -C "$repo" -c user.name=Bench -c user.email=b@example.com commit -q --allow-empty -m "release 1.$i.0"
  git -C "$repo" tag "v1.$i.0"
  echo "$i" > "$work/salt"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY salt /salt\nCMD ["/bin/busybox","sleep","3600"]\n' > "$work/Dockerfile"
  docker build -q -t "$id/svc$i:1.$i.0" --label "prodiff.bench=$id" \
    --label "org.opencontainers.image.revision=$(git -C "$repo" rev-parse HEAD)" "$work" >/dev/null 2>&1
done
start=$(date +%s.%N)
for n in $(seq 1 "$containers"); do
  i=$((n % 5))
  docker run -d --name "$id-$n" --label "prodiff.bench=$id" "$id/svc$i:1.$i.0" >/dev/null
done
echo "started $containers containers from 5 images in $(echo "$(date +%s.%N) - $start" | bc) s"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 benches/count-proxy.py "127.0.0.1:$port" /var/run/docker.sock "$work/requests.log" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
printf '[environments.bench]\ndocker = ["tcp://127.0.0.1:%s"]\n' "$port" > "$work/prodiff.toml"
for run in 1 2; do
  : > "$work/requests.log"
  /usr/bin/time -f "run $run: %e s wall, peak RSS %M KiB" "$bin" status --offline --repo "$repo" --config "$work/prodiff.toml" --format json > "$work/out.json" || true
  echo "run $run: $(wc -l < "$work/requests.log") requests:" \
    "$(grep -c '/containers/json' "$work/requests.log" || true) container list," \
    "$(grep -cE '/containers/[0-9a-f]+/json' "$work/requests.log" || true) container inspect," \
    "$(grep -cE '/images/.+/json' "$work/requests.log" || true) image inspect"
done
python3 - "$work/out.json" "$id" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ours = [x for x in r["results"] if x["image"].startswith(sys.argv[2])]
print(f"{sum(len(x['instances']) for x in ours)} containers in {len(ours)} rows, all resolved: {all(x['commit'] for x in ours)}")
PY
