#!/usr/bin/env bash
# Every benchmark, one after the other: git at scale, cherry-pick pairing, the registry at
# scale, Docker at scale, the ledger at scale, fleet scale.
# Each prints the figures that benches/README.md records. Needs what the test suite needs plus
# hyperfine, time and bc (installed here when missing, as tests/run.sh does).
#
#   bash benches/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
command -v bc >/dev/null || missing+=(bc)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q "${missing[@]}" >/dev/null; else sudo apt-get install -y -q "${missing[@]}" >/dev/null; fi
fi
for bench in git-scale pairing registry-scale docker-scale ledger-scale scale; do
  echo "# benches/$bench.sh"
  bash "benches/$bench.sh"
done
