#!/usr/bin/env bash
# Cherry-pick pairing on a long range with a small hotfix side: the synthetic repository of
# git-scale.sh (gen-history.py), cloned, with a hotfix branch off a mainline commit ~12k
# commits back carrying a cherry-pick of a later commit of the mainline and a hotfix of its own.
# prodiff status / diff for an environment running that branch, against
# `git rev-list --cherry-mark --left-right main...hotfix` (prodiff exits 1 there: the hotfix is
# drift, a denied finding), cold and warm patch-id cache,
# without and with a commit-graph. Figures go to benches/README.md by hand.
#
#   bash benches/pairing.sh            # BENCH_DIR=/tmp/prodiff-bench BENCH_COMMITS=200000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${BENCH_DIR:-${TMPDIR:-/tmp}/prodiff-bench}
commits=${BENCH_COMMITS:-200000}
for tool in hyperfine /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install hyperfine time)" >&2; exit 2; }
done

cargo build --release --quiet
bin=$PWD/target/release/prodiff
src=$work/repo
if [ ! -f "$work/.built-$commits" ]; then
  rm -rf "$work" && mkdir -p "$src"
  git -C "$src" init -q -b main
  python3 benches/gen-history.py "$commits" | git -C "$src" fast-import --quiet --done
  git -C "$src" checkout -q main
  touch "$work/.built-$commits"
fi
repo=$work/pairing
if [ ! -d "$repo" ]; then
  git clone -q "$src" "$repo"
  total=$(git -C "$repo" rev-list --first-parent --count main)
  base=$(git -C "$repo" rev-list --first-parent main | sed -n "$((total * 6 / 100))p")
  # The first commit of a feature branch adds a file: it applies anywhere, like a real hotfix.
  pick=$(git -C "$repo" rev-list --no-merges --grep='^FEAT-[0-9]*-0 ' main | sed -n 50p)
  export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com GIT_COMMITTER_NAME=Bench \
    GIT_COMMITTER_EMAIL=bench@example.com GIT_AUTHOR_DATE='@1700000000 +0000' GIT_COMMITTER_DATE='@1700000000 +0000'
  git -C "$repo" checkout -q -b hotfix "$base"
  git -C "$repo" cherry-pick -x "$pick" >/dev/null
  echo on > "$repo/hotfix.txt" && git -C "$repo" add hotfix.txt && git -C "$repo" commit -q -m "HOT-1 hotfix"
  git -C "$repo" checkout -q main
fi
rm -f "$repo/.git/objects/info/commit-graph"
rm -rf "$repo/.git/objects/info/commit-graphs"
tip=$(git -C "$repo" rev-parse hotfix)
echo "{\"workloads\": [{\"environment\": \"hotfix\", \"image\": \"bench/api:sha-${tip:0:12}\"}]}" > "$work/inventory-hotfix.json"
echo "main...hotfix: $(git -C "$repo" rev-list --left-right --count main...hotfix) (left right)"
echo "git cherry marks: $(git -C "$repo" rev-list --cherry-mark --left-right main...hotfix | cut -c1 | sort | uniq -c | tr '\n' ' ')"

cache=$work/pairing-cache
bench() { # label
  hyperfine -N -i --warmup 1 --runs 5 --style basic --export-markdown "$work/pairing-$1.md" \
    -n "git rev-list --cherry-mark --left-right" "git -C $repo rev-list --cherry-mark --left-right main...hotfix" \
    -n "prodiff status, cold cache" --prepare "rm -rf $cache" \
    "env PRODIFF_CACHE_DIR=$cache $bin status --repo $repo --inventory $work/inventory-hotfix.json" \
    -n "prodiff status, warm cache" \
    "env PRODIFF_CACHE_DIR=$cache $bin status --repo $repo --inventory $work/inventory-hotfix.json" \
    -n "prodiff diff --format json" \
    "env PRODIFF_CACHE_DIR=$cache $bin diff hotfix --repo $repo --inventory $work/inventory-hotfix.json --format json"
  cat "$work/pairing-$1.md"
  /usr/bin/time -f "prodiff diff hotfix --format json ($1): peak RSS %M KiB" \
    env PRODIFF_CACHE_DIR="$cache" "$bin" diff hotfix --repo "$repo" --inventory "$work/inventory-hotfix.json" --format json >/dev/null || true
}

echo "## without a commit-graph"
bench no-graph
git -C "$repo" commit-graph write --reachable
echo "## with a commit-graph"
bench graph
