#!/usr/bin/env bash
# A Redis replicated under Sentinel on one machine, to try the server's
# redis.sentinel.* settings: a master, one replica and three sentinels
# (quorum 2), all on loopback, from Debian's redis-server package (the
# same binary runs as a sentinel). The tests start their own set on free
# ports (internal/redistest); this script is for a person.
#
#   deploy/sentinel/run.sh start   # master :6380, replica :6381, sentinels :26380-26382
#   deploy/sentinel/run.sh status  # who is master, as the sentinels say
#   deploy/sentinel/run.sh kill    # SIGKILL the current master: watch the failover
#   deploy/sentinel/run.sh stop    # stop everything, remove the directory
#
# Then run the server with:
#   AUTH_REDIS_SENTINEL_MASTER=main \
#   AUTH_REDIS_SENTINEL_ADDRS=127.0.0.1:26380,127.0.0.1:26381,127.0.0.1:26382 \
#   go run ./cmd/authserver
set -euo pipefail
dir="${SENTINEL_DIR:-/tmp/authserver-sentinel}"
name=main
ports=(6380 6381)
sentinels=(26380 26381 26382)

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

master() { cli "${sentinels[0]}" SENTINEL get-master-addr-by-name "$name" | paste -sd: -; }

case "${1:-}" in
start)
  command -v redis-server >/dev/null || { echo "install redis-server (Debian: apt-get install redis-server)" >&2; exit 1; }
  mkdir -p "$dir"
  redis-server --port "${ports[0]}" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis-${ports[0]}.pid" --logfile "$dir/redis-${ports[0]}.log"
  redis-server --port "${ports[1]}" --bind 127.0.0.1 --save "" --appendonly no \
    --replicaof 127.0.0.1 "${ports[0]}" \
    --daemonize yes --pidfile "$dir/redis-${ports[1]}.pid" --logfile "$dir/redis-${ports[1]}.log"
  for p in "${sentinels[@]}"; do
    # A sentinel rewrites its own file: one each.
    cat >"$dir/sentinel-$p.conf" <<CONF
port $p
bind 127.0.0.1
daemonize yes
pidfile $dir/sentinel-$p.pid
logfile $dir/sentinel-$p.log
sentinel monitor $name 127.0.0.1 ${ports[0]} 2
sentinel down-after-milliseconds $name 1000
sentinel failover-timeout $name 5000
sentinel parallel-syncs $name 1
CONF
    redis-server "$dir/sentinel-$p.conf" --sentinel
  done
  # A failover needs the sentinels to know the replica and each other
  # (they meet through the master every 2 seconds).
  for _ in $(seq 1 100); do
    replicas=$(cli "${sentinels[0]}" SENTINEL replicas "$name" 2>/dev/null | grep -c '^name$' || true)
    others=$(cli "${sentinels[0]}" SENTINEL sentinels "$name" 2>/dev/null | grep -c '^name$' || true)
    [ "$replicas" -ge 1 ] && [ "$others" -ge 2 ] && break
    sleep 0.2
  done
  echo "master: $(master); sentinels: ${sentinels[*]/#/127.0.0.1:}"
  ;;
status)
  echo "master (as the sentinels say): $(master)"
  for p in "${ports[@]}"; do echo "127.0.0.1:$p $(cli "$p" ROLE 2>/dev/null | head -1 || echo down)"; done
  ;;
kill)
  m=$(master); port=${m##*:}
  kill -9 "$(cat "$dir/redis-$port.pid")"
  echo "killed the master $m; the sentinels promote the replica within a few seconds"
  ;;
stop)
  for f in "$dir"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.5 # let them exit before their directory goes
  rm -rf "$dir"
  ;;
*)
  sed -n '2,17p' "$0"; exit 2
  ;;
esac
