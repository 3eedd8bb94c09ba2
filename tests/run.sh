#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs the Debian packages the tests use
# when they are missing (git, docker-registry, skopeo, busybox-static, socat, openssl,
# openssh-client, openssh-server, man-db, bsdutils, time, postgresql), builds, runs every test. The Docker
# tests need a running daemon; they fail, saying how to start one, without.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v man >/dev/null || need+=(man-db)        # the man page test renders prodiff.1
command -v script >/dev/null || need+=(bsdutils)   # the progress test runs prodiff on a pty
command -v socat >/dev/null || need+=(socat)
command -v openssl >/dev/null || need+=(openssl)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/time ] || need+=(time)              # the hostile tests measure peak memory
# The ledger tests start their own PostgreSQL server (as the package's postgres user).
{ [ -x /usr/lib/postgresql/15/bin/initdb ] && id postgres >/dev/null 2>&1; } || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --locked --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite: every test binary's counts added up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "prodiff: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
