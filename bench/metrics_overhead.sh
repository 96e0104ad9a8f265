#!/usr/bin/env bash
# Overhead of the Prometheus metrics on GET /api/v1/auth/verify: two
# servers of the same build and configuration (password_key, SQLite,
# verification cache on, a log line per request into a file, bcrypt cost
# 4), one with metrics.addr set and one without, measured with wrk in
# alternating rounds in one run (off, on, off, on, ...), so that a change
# in the machine's load hits both alike. Only the ratio means anything.
#
# Usage: bench/metrics_overhead.sh [-d seconds] [-c connections] [-t threads] [-r rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

duration=5 conns=64 threads=2 rounds=3
while getopts "d:c:t:r:" o; do
  case $o in
    d) duration=$OPTARG ;; c) conns=$OPTARG ;; t) threads=$OPTARG ;; r) rounds=$OPTARG ;;
    *) sed -n 2,10p "$0"; exit 2 ;;
  esac
done

. bench/lib.sh
need_wrk


# start NAME METRICS_ADDR: starts a server, writes "port token" to $work/NAME.info.
start() {
  local name=$1 maddr=$2 port
  port=$(free_port)
  AUTH_DATABASE_DSN="$work/$name.db" AUTH_SERVER_ADDR=127.0.0.1:$port AUTH_METRICS_ADDR=$maddr \
  AUTH_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 AUTH_PASSWORD_BCRYPT_COST=4 AUTH_COOKIES_SECURE=false \
    "$work/authserver" serve 2>>"$work/$name.log" &
  pids+=("$!")
  local base="http://127.0.0.1:$port/api/v1"
  wait_up "http://127.0.0.1:$port/readyz"
  curl -fs "$base/auth/register" --json '{"email":"bench@example.com","password":"bench password"}' >/dev/null
  local token
  token=$(curl -fs "$base/auth/login" --json '{"email":"bench@example.com","password":"bench password"}' |
    sed -E 's/.*"access_token":"([^"]*)".*/\1/')
  echo "$port $token" >"$work/$name.info"
}

measure() { # PORT TOKEN: req/s
  local out
  out=$(wrk -t"$threads" -c"$conns" -d"${duration}s" -H "Authorization: Bearer $2" "http://127.0.0.1:$1/api/v1/auth/verify")
  if grep -q "Non-2xx" <<<"$out"; then echo "$out" >&2; return 1; fi
  awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}

maddr=127.0.0.1:$(free_port)
start off ""
start on "$maddr"
read -r off_port off_token <"$work/off.info"
read -r on_port on_token <"$work/on.info"
# Warm both up.
wrk -t"$threads" -c"$conns" -d1s -H "Authorization: Bearer $off_token" "http://127.0.0.1:$off_port/api/v1/auth/verify" >/dev/null
wrk -t"$threads" -c"$conns" -d1s -H "Authorization: Bearer $on_token" "http://127.0.0.1:$on_port/api/v1/auth/verify" >/dev/null

echo "# verify throughput, metrics off vs on, wrk -t$threads -c$conns -d${duration}s, $rounds rounds, $(nproc) cores, $(date -u +%F)" >&2
offs=() ons=()
for r in $(seq 1 "$rounds"); do
  off=$(measure "$off_port" "$off_token"); offs+=("$off")
  on=$(measure "$on_port" "$on_token"); ons+=("$on")
  echo "  round $r: off $off req/s, on $on req/s" >&2
done
curl -fs "http://$maddr/metrics" | grep -q 'authserver_token_verifications_total{result="ok"}' ||
  { echo "the metrics server did not count the verifications" >&2; exit 1; }

sum() { local s=0; for v in "$@"; do s=$((s + v)); done; echo "$s"; }
off_total=$(sum "${offs[@]}") on_total=$(sum "${ons[@]}")
echo
echo "metrics off: $((off_total / rounds)) req/s (rounds: ${offs[*]})"
echo "metrics on:  $((on_total / rounds)) req/s (rounds: ${ons[*]})"
awk -v a="$on_total" -v b="$off_total" 'BEGIN {printf "on / off: %.3f (%+.1f%%)\n", a/b, (a/b-1)*100}'
