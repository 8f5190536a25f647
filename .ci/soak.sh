#!/usr/bin/env bash
# make soak (not in CI): three nodes (deploy/local-cluster.sh, a fresh
# schema) under mixed open-loop load for SOAK_SECONDS, one node (spa-2)
# killed with SIGKILL every SOAK_KILL_EVERY seconds and started again.
# Every SOAK_SAMPLE seconds each node's heap in use, goroutines, open
# files and resident memory (its admin /metrics) and JetStream storage
# (the bytes under its data dir's nats/, where JetStream keeps its files) are sampled. The load runs
# in chunks of SOAK_CHUNK seconds, each a `spa loadgen` run on staff of
# its own whose checks (porcupine, overlapping appointments, replays)
# must pass. The report (SOAK_RESULTS/report.md) gives each metric's
# least-squares slope per hour on the two nodes never killed (their
# series run the whole soak) and over every node for JetStream storage,
# as a share of the metric's mean, and each kill's time to readiness.
# Samples of the first SOAK_WARMUP seconds (120) are left out of the
# slopes: the heap and the pools fill up then, which is not a leak.
# Tunables: SOAK_SECONDS (1800), SOAK_KILL_EVERY (240), SOAK_CHUNK (180),
# SOAK_RATE (200 operations/s), SOAK_SAMPLE (15), SOAK_RESULTS (bin/soak),
# TEST_DATABASE_URL (else .ci/postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/spa}
TOTAL=${SOAK_SECONDS:-1800}
KILL_EVERY=${SOAK_KILL_EVERY:-240}
CHUNK=${SOAK_CHUNK:-180}
RATE=${SOAK_RATE:-200}
SAMPLE=${SOAK_SAMPLE:-15}
WARMUP=${SOAK_WARMUP:-120}
OUT=${SOAK_RESULTS:-bin/soak}
PGURL=${TEST_DATABASE_URL:-$(.ci/postgres.sh)}
say() { echo "soak: $(date -u +%H:%M:%S) $*" >&2; }

rm -rf "$OUT" && mkdir -p "$OUT"
sep='?'; [[ $PGURL == *\?* ]] && sep='&'
schema="soak_$$"
db="$PGURL${sep}search_path=$schema"
psql "$PGURL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema" >/dev/null
dir=$(mktemp -d)
HTTP_BASE=18890 ADMIN_BASE=18990
cenv=(env BIN="$BIN" DATABASE_URL="$db" CLUSTER_DIR="$dir" CLUSTER_HTTP_BASE=$HTTP_BASE CLUSTER_ADMIN_BASE=$ADMIN_BASE
  CLUSTER_NATS_BASE=19090 CLUSTER_ROUTE_BASE=19190 SPA_HOLDS_PER_CLIENT=1000000 SPA_HOLDS_PER_IP=1000000 SPA_LOG_LEVEL=warn)
bg=()
cleanup() {
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  "${cenv[@]}" deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  psql "$PGURL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${cenv[@]}" deploy/local-cluster.sh start >"$OUT/cluster.log" 2>&1 || { cat "$OUT/cluster.log" >&2; exit 1; }
export SPA_TOKEN_SECRET
SPA_TOKEN_SECRET=$(cat "$dir/token-secret")
urls="http://127.0.0.1:$HTTP_BASE,http://127.0.0.1:$((HTTP_BASE + 1)),http://127.0.0.1:$((HTTP_BASE + 2))"
t0=$(date +%s)

# metric NAME URL: the value of an unlabelled series, or empty.
# (awk reads to the end: exiting early would fail curl, and the pipeline.)
metric() { curl -fs --max-time 2 "$2" 2>/dev/null | awk -v m="$1" '$1 == m && v == "" {v = $2} END {print v}' || true; }

sampler() {
  echo "seconds,node,heap_inuse_bytes,goroutines,open_fds,resident_bytes,jetstream_bytes" >"$OUT/samples.csv"
  while :; do
    local now=$(($(date +%s) - t0)) i
    for i in 0 1 2; do
      local m=http://127.0.0.1:$((ADMIN_BASE + i))/metrics
      local heap gor fds rss js
      heap=$(metric go_memstats_heap_inuse_bytes "$m") gor=$(metric go_goroutines "$m")
      fds=$(metric process_open_fds "$m") rss=$(metric process_resident_memory_bytes "$m")
      js=$(du -sb "$dir/spa-$i/nats" 2>/dev/null | cut -f1 || true)
      [ -n "$heap" ] && echo "$now,spa-$i,$heap,$gor,$fds,$rss,${js:-0}" >>"$OUT/samples.csv"
    done
    sleep "$SAMPLE"
  done
}

killer() {
  echo "kill_at_seconds,ready_after_seconds" >"$OUT/kills.csv"
  while :; do
    sleep "$KILL_EVERY"
    local pidf=$dir/spa-2/pid at
    at=$(($(date +%s) - t0))
    local pid
    pid=$(cat "$pidf")
    kill -9 "$pid" 2>/dev/null || true
    # Gone, not a zombie nobody reaped yet: start skips a node whose pid
    # file names a live process.
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || break; sleep 0.2; done
    rm -f "$pidf"
    local k0
    k0=$(date +%s.%N)
    "${cenv[@]}" deploy/local-cluster.sh start >>"$OUT/cluster.log" 2>&1 || { say "spa-2 did not come back"; }
    echo "$at,$(awk -v a="$k0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')" >>"$OUT/kills.csv"
    say "killed and restarted spa-2 at ${at}s"
  done
}

sampler & bg+=($!)
killer & bg+=($!)

fail=0 n=0
while (($(date +%s) - t0 + CHUNK <= TOTAL)); do
  n=$((n + 1))
  say "chunk $n"
  # The seed goes to the first URL: spa-0, never killed.
  if ! DATABASE_URL=$db "$BIN" loadgen --url "$urls" --label soak --name "chunk-$n" --quiet --idempotency \
    --scenario mixed --mode open --rate "$RATE" --workers 256 --duration "${CHUNK}s" --timeout 5s \
    --out "$OUT/chunk-$n.json" --summary "$OUT/chunk-$n.md" >/dev/null 2>"$OUT/chunk-$n.err"; then
    say "chunk $n FAILED: $(tail -1 "$OUT/chunk-$n.err")"
    fail=1
  fi
done
for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
bg=()

# slope FILE COLUMN NODES: least-squares slope per hour of the column over
# the samples of the given nodes (a regex), and the column's mean.
slope() {
  awk -F, -v col="$2" -v nodes="$3" -v warm="$WARMUP" 'NR > 1 && $1 >= warm && $2 ~ nodes && $col != "" {
      n++; x = $1 / 3600; y = $col; sx += x; sy += y; sxx += x * x; sxy += x * y }
    END { if (n < 3) { print "— —"; exit }
      b = (n * sxy - sx * sy) / (n * sxx - sx * sx); m = sy / n
      printf "%.0f %.0f %.1f\n", b, m, (m ? 100 * b / m : 0) }' "$1"
}
{
  echo "# Soak"
  echo
  echo "$(date -u +%Y-%m-%d): \`make soak\`: three nodes, mixed open-loop load at $RATE operations/s (keyed) for ${TOTAL}s in chunks of ${CHUNK}s, spa-2 killed with SIGKILL every ${KILL_EVERY}s and started again; samples every ${SAMPLE}s, the first ${WARMUP}s left out of the slopes."
  echo
  echo "| metric | nodes | slope per hour | mean | slope / mean per hour |"
  echo "|---|---|---:|---:|---:|"
  for spec in "heap in use (bytes):3" "goroutines:4" "open files:5" "resident memory (bytes):6"; do
    name=${spec%%:*} col=${spec##*:}
    for node in spa-0 spa-1; do
      read -r b m p < <(slope "$OUT/samples.csv" "$col" "^$node\$")
      echo "| $name | $node (never killed) | $b | $m | $p % |"
    done
  done
  read -r b m p < <(slope "$OUT/samples.csv" 7 "^spa-[0-2]\$")
  echo "| JetStream storage (bytes) | all three | $b | $m | $p % |"
  echo
  # The heap's floor (its lowest sample) per five minutes: the slope above
  # follows the collector's sawtooth as well as any growth; the floor is
  # what stays live.
  for node in spa-0 spa-1; do
    echo "Heap floor of $node per five minutes (MB): $(awk -F, -v n="$node" -v warm="$WARMUP" 'NR > 1 && $2 == n && $1 >= warm {
        w = int($1 / 300); if (!(w in m) || $3 < m[w]) m[w] = $3; if (w > last) last = w }
      END { for (w = 0; w <= last; w++) if (w in m) printf "%s%.0f", (s++ ? ", " : ""), m[w] / 1e6 }' "$OUT/samples.csv")."
  done
  echo
  echo "Kills of spa-2 and its time to readiness after the restart began (s): $(tail -n +2 "$OUT/kills.csv" | cut -d, -f2 | paste -sd' ')."
  echo
  echo "Each chunk's checks (its summary's verdict):"
  echo
  for f in "$OUT"/chunk-*.md; do
    echo "- $(basename "$f" .md): $(grep -m1 -o 'Correctness: [A-Z]*.*' "$f" | tr -d '*' || echo 'no result')"
  done
} >"$OUT/report.md"
cat "$OUT/report.md"
[ "$fail" = 0 ] || { say "a chunk failed its checks: $OUT"; exit 1; }
