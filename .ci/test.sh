#!/usr/bin/env bash
# The test command (`make test`, and so CI): prerequisites, PostgreSQL,
# go vet, then every test with the race detector on SQLite and PostgreSQL,
# a closing count of passed, failed and skipped tests, and half a minute of
# fuzzing every request body through the router (FuzzEveryBody); the alert
# rules' promtool tests (.ci/promtool.sh); the Kubernetes manifests'
# kubeconform and kube-score (.ci/k8s.sh).
#
# Where PostgreSQL is required (CI=true, or SPA_REQUIRE_POSTGRES=1) a
# database that cannot be had fails the run here, loudly, and the Go tests
# fail instead of skipping their PostgreSQL variants (persistence/pgtest).
# Elsewhere the run goes on with SQLite only and says so.
# Arguments, if any, replace ./... (e.g. .ci/test.sh ./gateway/...).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "test: $*" >&2; }
die() { say "$*"; exit 1; }

required=
if [ "${CI:-}" = true ] || [ "${SPA_REQUIRE_POSTGRES:-}" = 1 ]; then required=1; fi

# The race detector needs cgo, and cgo a C compiler; without one Go turns
# cgo off and -race fails with a bare "requires cgo".
command -v go >/dev/null || die "Go is not installed: install Go 1.26 (https://go.dev/dl)"
cc=$(go env CC); cc=${cc:-gcc}
command -v "$cc" >/dev/null || die "no C compiler ($cc): the race detector needs cgo; install one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; macOS: xcode-select --install)"
[ "$(go env CGO_ENABLED)" = 1 ] || die "CGO_ENABLED=0: the race detector needs cgo; unset CGO_ENABLED"

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if url=$(.ci/postgres.sh); then
    TEST_DATABASE_URL=$url
  elif [ -n "$required" ]; then
    die "PostgreSQL is required (CI=true or SPA_REQUIRE_POSTGRES=1) and .ci/postgres.sh could not provide one (its reason is above). Fix: run as root on a Debian-like host so it can install/start PostgreSQL, or set TEST_DATABASE_URL=postgres://USER:PASS@HOST:5432/DB?sslmode=disable"
  else
    say "PostgreSQL unavailable: running on SQLite only (the PostgreSQL variants will be skipped)"
  fi
fi
if [ -n "${TEST_DATABASE_URL:-}" ] && command -v psql >/dev/null; then
  if ! psql "$TEST_DATABASE_URL" -X -Atqc 'select 1' >/dev/null 2>&1; then
    [ -n "$required" ] && die "TEST_DATABASE_URL does not accept a query (server down, wrong credentials?). Fix: unset it to let .ci/postgres.sh start one, or point it at a reachable PostgreSQL"
    say "TEST_DATABASE_URL does not answer: running on SQLite only"
    TEST_DATABASE_URL=
  fi
fi
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-}
[ -n "$required" ] && export SPA_REQUIRE_POSTGRES=1

go vet ./...
# The alert rules (deploy/prometheus): promtool check and unit tests, ~1s.
.ci/promtool.sh
# The Kubernetes manifests (deploy/k8s): kubeconform and kube-score, ~15s
# once compiled.
.ci/k8s.sh
# The browser tests of the ops console and /docs (cmd/spa
# TestConsoleAndDocsInABrowser, TestCluster/OpsConsole) drive Debian's
# chromium; under CI=true they fail without one, so install it when we can
# (as root, ~1 min once).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing Debian's chromium for the browser test"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } || true
fi

# The chaos suite's short form (cmd/spa TestChaos) builds network
# namespaces and drops packets with iptables; under CI=true it fails
# without it, so install it when we can (as root, a few seconds once).
if ! command -v iptables >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing iptables for the chaos suite"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables >/dev/null 2>&1; } || true
fi

mkdir -p bin; log=bin/test.log
# -v for the closing count (the whole output is kept in bin/test.log); the
# screen shows one line per package, and each failure with what led to it.
# cmd/spa first: its tests run longest (~8 min under -race, one after
# another) and go test starts packages in the order named, so named first
# it runs beside the others instead of after them. -p 3: most tests wait
# on nodes, timers and PostgreSQL, so two at a time left a core idle. On 2
# cores .ci/run took 918 s in the old order at -p 2, 754-778 s so.
pkgs=("$@"); [ $# -gt 0 ] || pkgs=(./cmd/spa ./...)
set +e
go test -p 3 -race -count=1 -timeout 15m -v "${pkgs[@]}" >"$log" 2>&1 &
tail -n +1 --pid=$! -f "$log" | grep --line-buffered -E '^(ok|FAIL|panic:)'
wait $!; rc=$?
set -e
if [ "$rc" != 0 ]; then
  say "failures (whole output: $log):"
  grep -B25 -E '^\s*--- FAIL|^panic:' "$log" | grep -vE '^\s*(=== (RUN|PAUSE|CONT|NAME)|--- PASS)' | tail -300 >&2
  # A failing test's own lines (t.Error, t.Log: "file_test.go:N: ..."),
  # which a long test's captured logs can push out of the lines above.
  say "what the failing tests said:"
  awk '/^=== (RUN|CONT|NAME) /{cur=$3; next}
       /^[[:space:]]+[A-Za-z0-9_]+_test\.go:[0-9]+: /{said[cur, n[cur]++]=$0; next}
       /^[[:space:]]*--- FAIL: /{failed[$3]=1}
       END{for (t in failed) for (i=(n[t]>40?n[t]-40:0); i<n[t]; i++) print t ": " said[t, i]}' "$log" | tail -200 >&2
fi

passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
if [ "$skipped" -gt 0 ]; then
  say "skipped tests:"
  grep -A1 -E '^\s*--- SKIP' "$log" | grep -vE '^--$' | sed 's/^/  /' >&2
fi
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  say "PostgreSQL: ran against $(sed -E 's#//([^:/@]+):[^@]*@#//\1:***@#; s#\?.*##' <<<"$TEST_DATABASE_URL")"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$rc" = 0 ] || exit "$rc"

# The router fuzz (cmd/spa FuzzEveryBody): every request body type through
# a whole node, PostgreSQL when we have it, for SPA_FUZZ_TIME (30s: CI stays under 15 minutes; 0 skips
# it, for a quick local run). Any 5xx, non-JSON answer or hung request
# fails the run; a failing input is kept under cmd/spa/testdata/fuzz.
fuzz=${SPA_FUZZ_TIME:-30s}
if [ "$fuzz" != 0 ]; then
  say "fuzzing every request body through the router for $fuzz"
  go test -run '^$' -fuzz '^FuzzEveryBody$' -fuzztime "$fuzz" ./cmd/spa/ 2>&1 | grep -vE '^fuzz: elapsed' || exit 1
fi
