#!/usr/bin/env bash
# Three spa nodes on loopback against one PostgreSQL (`make cluster`), and
# their graceful stop (`make cluster-stop`). Each node keeps its JetStream
# files, log and pid in $CLUSTER_DIR/spa-<i>; they share a token secret
# kept (mode 0600) in $CLUSTER_DIR/token-secret.
#
#   deploy/local-cluster.sh start   # DATABASE_URL defaults to .ci/postgres.sh's
#   deploy/local-cluster.sh stop
set -euo pipefail

BIN=${BIN:-bin/spa}
DIR=${CLUSTER_DIR:-data/cluster}
HTTP_BASE=${CLUSTER_HTTP_BASE:-8180}   # nodes listen on 8180, 8181, 8182
ADMIN_BASE=${CLUSTER_ADMIN_BASE:-9190} # admin listeners (/metrics, /debug/pprof): 9190, 9191, 9192
NATS_BASE=${CLUSTER_NATS_BASE:-4350}
ROUTE_BASE=${CLUSTER_ROUTE_BASE:-6350}
NODES=3
say() { echo "cluster: $*" >&2; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  local db=${DATABASE_URL:-}
  if [ -z "$db" ]; then
    # The local test server, in a database of its own (the tests use
    # schemas of their own in database "test").
    local test_url
    test_url=$(.ci/postgres.sh)
    db=${test_url/\/test\?//spa_cluster?}
    if ! psql "$db" -Atqc 'select 1' >/dev/null 2>&1; then
      psql "$test_url" -qc 'CREATE DATABASE spa_cluster' >&2
    fi
  fi
  mkdir -p "$DIR"
  local secret_file=$DIR/token-secret
  if [ ! -s "$secret_file" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 -w0 >"$secret_file")
  fi
  DATABASE_URL=$db "$BIN" migrate >&2
  local routes="" i
  for ((i = 0; i < NODES; i++)); do routes+="${routes:+,}127.0.0.1:$((ROUTE_BASE + i))"; done
  for ((i = 0; i < NODES; i++)); do
    local d=$DIR/spa-$i
    mkdir -p "$d"
    if alive "$d/pid"; then say "spa-$i already runs (pid $(cat "$d/pid"))"; continue; fi
    SPA_TOKEN_SECRET=$(cat "$secret_file") DATABASE_URL=$db \
      SPA_DATA_DIR=$d SPA_NODE_NAME=spa-$i \
      SPA_HTTP_ADDR=127.0.0.1:$((HTTP_BASE + i)) SPA_ADMIN_ADDR=127.0.0.1:$((ADMIN_BASE + i)) SPA_HTTP_ADVERTISE=http://127.0.0.1:$((HTTP_BASE + i)) \
      SPA_NATS_PORT=$((NATS_BASE + i)) \
      SPA_CLUSTER_ADDR=127.0.0.1:$((ROUTE_BASE + i)) SPA_CLUSTER_ROUTES=$routes \
      nohup "$BIN" serve >"$d/log" 2>&1 &
    echo $! >"$d/pid"
  done
  for ((i = 0; i < NODES; i++)); do
    local url=http://127.0.0.1:$((HTTP_BASE + i))/readyz ok=""
    for _ in $(seq 1 120); do
      if curl -fsS "$url" >/dev/null 2>&1; then ok=1; break; fi
      alive "$DIR/spa-$i/pid" || { say "spa-$i exited; see $DIR/spa-$i/log"; tail -5 "$DIR/spa-$i/log" >&2; exit 1; }
      sleep 0.5
    done
    [ -n "$ok" ] || { say "spa-$i is not ready after 60s; see $DIR/spa-$i/log"; exit 1; }
  done
  cat <<MSG
Three nodes are up (any node answers any request):
  http://127.0.0.1:${HTTP_BASE}  http://127.0.0.1:$((HTTP_BASE + 1))  http://127.0.0.1:$((HTTP_BASE + 2))
Their admin listeners (/metrics; /debug/pprof with an admin token):
  http://127.0.0.1:${ADMIN_BASE}  http://127.0.0.1:$((ADMIN_BASE + 1))  http://127.0.0.1:$((ADMIN_BASE + 2))
An admin token for all of them:
  SPA_TOKEN_SECRET=\$(cat $secret_file) $BIN token --subject me --role admin
Then, e.g.:  curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:${HTTP_BASE}/v1/cluster
Logs: $DIR/spa-*/log    Stop: make cluster-stop
MSG
}

stop() {
  local i pids=()
  for ((i = 0; i < NODES; i++)); do
    local f=$DIR/spa-$i/pid
    if alive "$f"; then kill -TERM "$(cat "$f")"; pids+=("$(cat "$f")"); fi
    rm -f "$f"
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  done
  say "stopped ${#pids[@]} node(s)"
}

case ${1:-start} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
