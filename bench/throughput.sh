#!/usr/bin/env bash
# Throughput of GET /api/v1/auth/verify under every strategy, on SQLite and
# MySQL, as a ratio to a stateless yardstick measured in the same run.
#
# The yardstick (bench/yardstick) is a minimal Gin handler that checks an
# HS256 token with golang-jwt's strict parser and answers a small JSON,
# with no lookup and no logging. Each authserver runs with its default
# configuration (verification cache on, one log line per request into a
# file) but bcrypt cost 4, and is measured with wrk from the same machine:
# on a small machine wrk takes CPU from the server, which is why only the
# ratios measured in one run mean anything.
#
# Usage: bench/throughput.sh [-d seconds] [-c connections] [-t threads] [-s "strategies"] [-D "drivers"]
#   MySQL: AUTH_BENCH_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/) names a
#   server where the script may create and drop databases authbench_*.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

duration=5 conns=64 threads=2
strategies="stateless password_key single_device multi_device valid_date token_version session_table"
drivers="sqlite mysql"
while getopts "d:c:t:s:D:" o; do
  case $o in
    d) duration=$OPTARG ;; c) conns=$OPTARG ;; t) threads=$OPTARG ;;
    s) strategies=$OPTARG ;; D) drivers=$OPTARG ;;
    *) sed -n 2,16p "$0"; exit 2 ;;
  esac
done
mysql_base=${AUTH_BENCH_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in $(mariadb -uroot -h127.0.0.1 -N -e "SHOW DATABASES LIKE 'authbench\\_%'" 2>/dev/null); do
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE \`$db\`" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/authserver" ./cmd/authserver
go build -o "$work/yardstick" ./bench/yardstick

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_up() { # url
  for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "server at $1 did not start" >&2; return 1
}

# measure URL TOKEN: prints wrk's requests per second (after a 1s warm-up).
measure() {
  wrk -t"$threads" -c"$conns" -d1s -H "Authorization: Bearer $2" "$1" >/dev/null
  local out
  out=$(wrk -t"$threads" -c"$conns" -d"${duration}s" -H "Authorization: Bearer $2" "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers from $1:" >&2; echo "$out" >&2; return 1; fi
  awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}

yardstick() {
  local port; port=$(free_port)
  "$work/yardstick" -addr "127.0.0.1:$port" >"$work/ytoken" 2>/dev/null &
  local pid=$!; pids+=("$pid")
  wait_up "http://127.0.0.1:$port/api/v1/auth/verify" || true
  sleep 0.2
  measure "http://127.0.0.1:$port/api/v1/auth/verify" "$(head -1 "$work/ytoken")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# server DRIVER STRATEGY: prints req/s of verify for a fresh user.
server() {
  local driver=$1 strat=$2 port dsn
  port=$(free_port)
  if [ "$driver" = sqlite ]; then
    dsn="$work/$strat.db"
  else
    local db="authbench_$strat"
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
    dsn="${mysql_base%/}/$db"
  fi
  AUTH_STRATEGY=$strat AUTH_DATABASE_DRIVER=$driver AUTH_DATABASE_DSN=$dsn \
  AUTH_SERVER_ADDR=127.0.0.1:$port AUTH_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 \
  AUTH_PASSWORD_BCRYPT_COST=4 AUTH_COOKIES_SECURE=false \
    "$work/authserver" serve 2>>"$work/server-$driver-$strat.log" &
  local pid=$!; pids+=("$pid")
  local base="http://127.0.0.1:$port/api/v1"
  wait_up "http://127.0.0.1:$port/readyz"
  curl -fs -X POST "$base/auth/register" -d '{"email":"bench@example.com","password":"bench password"}' >/dev/null
  local token
  token=$(curl -fs -X POST "$base/auth/login" -d '{"email":"bench@example.com","password":"bench password","device_name":"wrk"}' |
    sed -E 's/.*"access_token":"([^"]*)".*/\1/')
  measure "$base/auth/verify" "$token"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "# verify throughput, wrk -t$threads -c$conns -d${duration}s, $(nproc) cores, $(date -u +%F)" >&2
y1=$(yardstick)
declare -A rps
for d in $drivers; do
  for s in $strategies; do
    rps[$d/$s]=$(server "$d" "$s")
    echo "  $d $s: ${rps[$d/$s]} req/s" >&2
  done
done
y2=$(yardstick)
y=$(( (y1 + y2) / 2 ))

echo
echo "yardstick: $y req/s (mean of $y1 before and $y2 after)"
echo
header="| strategy |"; sep="|---|"
for d in $drivers; do header+=" $d req/s | $d ratio |"; sep+="---|---|"; done
echo "$header"; echo "$sep"
for s in $strategies; do
  line="| \`$s\` |"
  for d in $drivers; do
    line+=" ${rps[$d/$s]} | $(awk -v a="${rps[$d/$s]}" -v b="$y" 'BEGIN {printf "%.2f×", a/b}') |"
  done
  echo "$line"
done
