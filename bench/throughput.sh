#!/usr/bin/env bash
# Throughput of GET /api/v1/auth/verify under every strategy, on SQLite and
# MySQL (and PostgreSQL with -D), as a ratio to a stateless yardstick
# measured in the same run.
#
# The yardstick (bench/yardstick) is a minimal Gin handler that checks an
# HS256 token with golang-jwt's strict parser and answers a small JSON,
# with no lookup and no logging. Each authserver runs with its default
# configuration (verification cache on, one log line per request into a
# file, server.heap_floor_mib 64) but bcrypt cost 4, and is measured with
# wrk from the same machine; AUTH_* variables in the environment reach the
# servers (AUTH_SERVER_HEAP_FLOOR_MIB=0 measures them with Go's GC default).
# By default wrk shares the machine's cores with the server under test, as
# in the measurements the project started from (wrk -t2 -c64); with -p
# every server (the yardstick too) runs on core 0 and wrk on core 1
# (taskset), which isolates the server's CPU cost per request and is
# harsher on anything beyond the yardstick's work. Either way only the
# ratios measured in one run mean anything.
#
# The yardstick runs the whole time; every strategy is measured in rounds
# that alternate a run of the yardstick and a run of the server, and its
# ratio is the median of the rounds' ratios, so that what else the machine
# does weighs on both alike.
#
# Usage: bench/throughput.sh [-p] [-d seconds] [-r rounds] [-c connections] [-t threads] [-s "strategies"] [-D "drivers"]
#   MySQL: AUTH_BENCH_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/) names a
#   server where the script may create and drop databases authbench_*.
#   PostgreSQL (-D "sqlite mysql postgres"): AUTH_BENCH_POSTGRES_DSN (default
#   postgres://root@127.0.0.1:5432/postgres?sslmode=disable), a URL to an
#   existing database of a server where the same is allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

duration=4 rounds=5 conns=64 threads=2 pin=
strategies="stateless password_key single_device multi_device valid_date token_version session_table"
drivers="sqlite mysql"
while getopts "pd:r:c:t:s:D:" o; do
  case $o in
    p) pin=1 conns=32 threads=1 ;;
    d) duration=$OPTARG ;; r) rounds=$OPTARG ;; c) conns=$OPTARG ;; t) threads=$OPTARG ;;
    s) strategies=$OPTARG ;; D) drivers=$OPTARG ;;
    *) sed -n 2,26p "$0"; exit 2 ;;
  esac
done
mysql_base=${AUTH_BENCH_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
pg_admin=${AUTH_BENCH_POSTGRES_DSN:-postgres://root@127.0.0.1:5432/postgres?sslmode=disable}
pg_path=${pg_admin%%\?*} pg_query=${pg_admin#"${pg_admin%%\?*}"}
# Pin the servers and the load generator to cores of their own.
on_server=() on_load=()
if [ -n "$pin" ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  on_server=(taskset -c 0) on_load=(taskset -c 1)
fi

. bench/lib.sh
need_wrk
drop_bench_databases() {
  for db in $(mariadb -uroot -h127.0.0.1 -N -e "SHOW DATABASES LIKE 'authbench\\_%'" 2>/dev/null); do
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE \`$db\`" 2>/dev/null || true
  done
  if [[ " $drivers " == *" postgres "* ]]; then
    for db in $(psql "$pg_admin" -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'authbench\\_%'" 2>/dev/null); do
      psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
    done
  fi
}
on_exit+=(drop_bench_databases)
go build -o "$work/yardstick" ./bench/yardstick

# measure URL TOKEN: prints wrk's requests per second (after a 1s warm-up).
measure() {
  "${on_load[@]}" wrk -t"$threads" -c"$conns" -d1s -H "Authorization: Bearer $2" "$1" >/dev/null
  sleep 0.2
  local out
  out=$("${on_load[@]}" wrk -t"$threads" -c"$conns" -d"${duration}s" -H "Authorization: Bearer $2" "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers from $1:" >&2; echo "$out" >&2; return 1; fi
  awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}

# The yardstick, started once.
yport=$(free_port)
"${on_server[@]}" "$work/yardstick" -addr "127.0.0.1:$yport" >"$work/ytoken" 2>/dev/null &
pids+=("$!")
wait_up "http://127.0.0.1:$yport/api/v1/auth/verify"
sleep 0.2
yurl="http://127.0.0.1:$yport/api/v1/auth/verify"
ytoken=$(head -1 "$work/ytoken")

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# server DRIVER STRATEGY: starts the server for a fresh user and measures
# it against the yardstick in rounds; prints "req/s ratio yardstick-req/s".
server() {
  local driver=$1 strat=$2 port dsn
  port=$(free_port)
  if [ "$driver" = sqlite ]; then
    dsn="$work/$strat.db"
  elif [ "$driver" = postgres ]; then
    local db="authbench_$strat"
    PGOPTIONS="-c client_min_messages=warning" psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    dsn="${pg_path%/*}/$db$pg_query"
  else
    local db="authbench_$strat"
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
    dsn="${mysql_base%/}/$db"
  fi
  AUTH_STRATEGY=$strat AUTH_DATABASE_DRIVER=$driver AUTH_DATABASE_DSN=$dsn \
  AUTH_SERVER_ADDR=127.0.0.1:$port AUTH_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 \
  AUTH_PASSWORD_BCRYPT_COST=4 AUTH_COOKIES_SECURE=false \
    "${on_server[@]}" "$work/authserver" serve 2>>"$work/server-$driver-$strat.log" &
  local pid=$!; pids+=("$pid")
  local base="http://127.0.0.1:$port/api/v1"
  wait_up "http://127.0.0.1:$port/readyz"
  curl -fs "$base/auth/register" --json '{"email":"bench@example.com","password":"bench password"}' >/dev/null
  local token
  token=$(curl -fs "$base/auth/login" --json '{"email":"bench@example.com","password":"bench password","device_name":"wrk"}' |
    sed -E 's/.*"access_token":"([^"]*)".*/\1/')
  local s y ratios="" srps="" yrps=""
  for _ in $(seq 1 "$rounds"); do
    y=$(measure "$yurl" "$ytoken")
    s=$(measure "$base/auth/verify" "$token")
    ratios+="$(awk -v a="$s" -v b="$y" 'BEGIN {printf "%.4f", a/b}')"$'\n'
    srps+="$s"$'\n'; yrps+="$y"$'\n'
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(median <<<"$srps") $(median <<<"$ratios") $(median <<<"$yrps")"
}

echo "# verify throughput, wrk -t$threads -c$conns -d${duration}s, $rounds rounds, $(nproc) cores${on_server:+ (servers on core 0, wrk on core 1)}, $(date -u +%F)" >&2
declare -A rps ratio ys
for d in $drivers; do
  for s in $strategies; do
    read -r r q y < <(server "$d" "$s")
    rps[$d/$s]=$r; ratio[$d/$s]=$q; ys[$d/$s]=$y
    echo "  $d $s: $r req/s, ${q}× the yardstick's $y" >&2
  done
done

echo
echo "verify req/s (median of $rounds rounds) and its ratio to the yardstick (median of the rounds' ratios);"
echo "the yardstick answered $(printf '%s\n' "${ys[@]}" | median) req/s (median over the run)"
echo
header="| strategy |"; sep="|---|"
for d in $drivers; do header+=" $d req/s | $d ratio |"; sep+="---|---|"; done
echo "$header"; echo "$sep"
for s in $strategies; do
  line="| \`$s\` |"
  for d in $drivers; do
    line+=" ${rps[$d/$s]} | $(awk -v q="${ratio[$d/$s]}" 'BEGIN {printf "%.3f×", q}') |"
  done
  echo "$line"
done
