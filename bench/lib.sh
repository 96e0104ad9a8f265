# What every benchmark script shares; source it from the repository root
# after the options are read. It makes $work, a directory removed on exit
# together with every process whose pid is in $pids (a script adds its own
# clean-up to $on_exit), builds authserver into it, and defines free_port
# and wait_up.
# shellcheck shell=bash

work=$(mktemp -d)
pids=()
on_exit=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for c in "${on_exit[@]}"; do eval "$c" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# free_port prints a TCP port nobody listens on at the moment.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_up URL waits up to 10 seconds for URL to answer.
wait_up() {
  for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no server at $1" >&2
  return 1
}

# need_wrk exits unless wrk is installed.
need_wrk() { command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }; }

go build -o "$work/authserver" ./cmd/authserver
