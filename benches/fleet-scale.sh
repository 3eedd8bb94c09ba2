#!/usr/bin/env bash
# A fleet: four synthetic repositories (benches/gen-history.py, 50k commits each), three
# path-filtered services in each, all running a commit ~35k behind. Times one fleet run
# (`--config fleet.toml`: sources read once, repositories read four at a time) against the
# same audit as four one-repository runs in a row. Figures go to benches/README.md by hand.
#
#   bash benches/fleet-scale.sh          # BENCH_DIR=/tmp/prodiff-fleet BENCH_COMMITS=50000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${BENCH_DIR:-${TMPDIR:-/tmp}/prodiff-fleet}
commits=${BENCH_COMMITS:-50000}
for tool in hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install hyperfine)" >&2; exit 2; }
done

cargo build --release --quiet
bin=$PWD/target/release/prodiff
repos=(r0 r1 r2 r3)
if [ ! -f "$work/.built-$commits" ]; then
  rm -rf "$work" && mkdir -p "$work"
  for r in "${repos[@]}"; do
    git -C "$work" init -q -b main "$r"
    python3 benches/gen-history.py "$commits" | git -C "$work/$r" fast-import --quiet --done
    git -C "$work/$r" checkout -q main
  done
  touch "$work/.built-$commits"
fi
total=$(git -C "$work/r0" rev-list --first-parent --count main)
old=$(git -C "$work/r0" rev-list --first-parent main | sed -n "$((total * 70 / 100))p")

: > "$work/fleet.toml"
echo '{"workloads": [' > "$work/inventory.json"
sep=
for r in "${repos[@]}"; do
  : > "$work/$r.toml"
  for i in 0 1 2; do
    block=$(printf '[services.%s-svc%d]\nimage = "bench/%s-svc%d"\npaths = ["svc%d/"]\n' "$r" "$i" "$r" "$i" "$i")
    printf '%s\n' "$block" >> "$work/$r.toml"
    printf '%s\nrepo = "%s"\n' "$block" "$r" >> "$work/fleet.toml"
    printf '%s{"environment": "production", "image": "bench/%s-svc%d:sha-%s"}\n' "$sep" "$r" "$i" "${old:0:12}" >> "$work/inventory.json"
    sep=,
  done
done
echo ']}' >> "$work/inventory.json"
echo "4 repositories of $(git -C "$work/r0" rev-list --count --all) commits; running $(git -C "$work/r0" rev-list --count "$old..main") behind"

singles=""
for r in "${repos[@]}"; do
  singles+="$bin status --offline --repo $work/$r --config $work/$r.toml --inventory $work/inventory.json >/dev/null; "
done
hyperfine --warmup 1 --runs 5 --style basic --export-markdown "$work/fleet.md" \
  -n "4 one-repository runs in a row" "$singles" \
  -n "one fleet run (4 repositories)" "$bin status --offline --config $work/fleet.toml --inventory $work/inventory.json"
cat "$work/fleet.md"
