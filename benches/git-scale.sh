#!/usr/bin/env bash
# Git at scale: builds a synthetic repository (benches/gen-history.py: 200k commits with
# merges, release branches and ~500 tags) and times prodiff against git on the same ranges
# (~10k and ~150k commits), without and then with a commit-graph written by current git.
# Also records prodiff's peak memory. Figures go to benches/README.md by hand.
#
#   bash benches/git-scale.sh            # BENCH_DIR=/tmp/prodiff-bench BENCH_COMMITS=200000
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

bench() { # label
  for env in recent old; do
    sha=$recent; [ "$env" = old ] && sha=$old
    hyperfine -N --warmup 1 --runs 5 --style basic --export-markdown "$work/$1-$env.md" \
      -n "git rev-list --count" "git -C $repo rev-list --count $sha..main" \
      -n "git rev-list" "git -C $repo rev-list $sha..main" \
      -n "git log --format (the fields diff lists)" "git -C $repo log --format=%H%x00%s%x00%an%x00%ae%x00%aI%x00%cI%x00%P $sha..main" \
      -n "prodiff status" "$bin status --repo $repo --inventory $work/inventory.json --env $env" \
      -n "prodiff diff --format json" "$bin diff $env --repo $repo --inventory $work/inventory.json --format json"
    cat "$work/$1-$env.md"
  done
  hyperfine --warmup 1 --runs 5 --style basic --export-markdown "$work/$1-paths.md" \
    -n "git rev-list --count -- svcN/, once per service" \
    "for i in 0 1 2 3 4 5 6 7 8 9; do git -C $repo rev-list --count $recent..main -- svc\$i/; done" \
    -n "prodiff status, 10 services with paths" \
    "$bin status --repo $repo --config $work/paths.toml --inventory $work/inventory-paths.json --offline"
  cat "$work/$1-paths.md"
  /usr/bin/time -f "prodiff diff old --format json ($1): peak RSS %M KiB" \
    "$bin" diff old --repo "$repo" --inventory "$work/inventory.json" --format json >/dev/null
}

echo "## without a commit-graph"
bench no-graph
git -C "$repo" commit-graph write --reachable
echo "## with a commit-graph"
bench graph
