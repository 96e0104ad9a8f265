#!/usr/bin/env bash
# Timing of POST /api/v1/auth/password-reset for an email with an account
# against one without, on one server (the real binary, SQLite,
# password_key, default configuration but the reset rate limits off, so
# that every request takes the full path: the database check and the
# queue). The token row and the mail are made off the request path in both
# cases; the answer must not tell them apart. bench/resettiming interleaves
# the two in random order and prints both medians and a Mann-Whitney U
# test.
#
# Usage: bench/reset-timing.sh [-n requests per email] [-g gap between requests]
#   KNOWN=someone@example.com (no such account) runs the same comparison
#   between two addresses without an account: what noise alone looks like.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

n=400 gap=20ms
while getopts "n:g:" o; do
  case $o in
    n) n=$OPTARG ;; g) gap=$OPTARG ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
  esac
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/authserver" ./cmd/authserver
go build -o "$work/resettiming" ./bench/resettiming

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
base="http://127.0.0.1:$port/api/v1"
# The log goes to a file: the development mailer (LogMailer) writes the
# reset tokens there.
AUTH_DATABASE_DSN="$work/reset.db" AUTH_SERVER_ADDR="127.0.0.1:$port" \
AUTH_JWT_SECRET=reset-secret-reset-secret-reset-secret-0123 \
AUTH_RATELIMIT_RESET_PER_IP=0 AUTH_RATELIMIT_RESET_PER_ACCOUNT=0 \
  "$work/authserver" serve 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
curl -fs -X POST "$base/auth/register" -d '{"email":"known@example.com","password":"a password of the known"}' >/dev/null

echo "# $(nproc) cores, $(go env GOVERSION), $(date -u +%F)" >&2
"$work/resettiming" -api "$base" -known ${KNOWN:-known@example.com} -unknown unknown@example.com -n "$n" -gap "$gap"
