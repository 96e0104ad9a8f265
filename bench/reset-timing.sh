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

. bench/lib.sh
go build -o "$work/resettiming" ./bench/resettiming

port=$(free_port)
base="http://127.0.0.1:$port/api/v1"
AUTH_DATABASE_DSN="$work/reset.db" AUTH_SERVER_ADDR="127.0.0.1:$port" \
AUTH_JWT_SECRET=reset-secret-reset-secret-reset-secret-0123 \
AUTH_RATELIMIT_RESET_PER_IP=0 AUTH_RATELIMIT_RESET_PER_ACCOUNT=0 \
  "$work/authserver" serve 2>"$work/server.log" &
pids+=($!)
wait_up "http://127.0.0.1:$port/readyz"
curl -fs "$base/auth/register" --json '{"email":"known@example.com","password":"a password of the known"}' >/dev/null

echo "# $(nproc) cores, $(go env GOVERSION), $(date -u +%F)" >&2
"$work/resettiming" -api "$base" -known ${KNOWN:-known@example.com} -unknown unknown@example.com -n "$n" -gap "$gap"
