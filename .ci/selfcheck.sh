#!/usr/bin/env bash
# CI's check of its own test command, run before it (.ci/run):
#  1. .ci/postgres.sh yields a working URL from a PostgreSQL that requires
#     a password on TCP (a throwaway cluster on another port, dropped at the
#     end), both while it runs and after it was stopped;
#  2. the test command under CI=true with no reachable PostgreSQL exits
#     non-zero and names the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "selfcheck: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
[ -n "$version" ] || .ci/postgres.sh >/dev/null # installs PostgreSQL
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
name=spa_selfcheck_$$
cleanup() { pg_dropcluster --stop "$version" "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

say "throwaway cluster $version/$name on port $port, password (scram-sha-256) required on TCP"
pg_createcluster "$version" "$name" -p "$port" >/dev/null
hba=/etc/postgresql/$version/$name/pg_hba.conf
printf 'local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n' >"$hba"
pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -w -Atqc 'select 1' >/dev/null 2>&1 \
  && fail "the throwaway cluster accepted a passwordless TCP login: the check would prove nothing"

for state in running stopped; do
  [ "$state" = stopped ] && pg_ctlcluster --skip-systemctl-redirect "$version" "$name" stop
  url=$(SPA_PG_PORT=$port SPA_PG_DB=selfcheck .ci/postgres.sh) || fail "postgres.sh failed with the cluster $state"
  [ "$(psql "$url" -X -Atqc 'select 7*6')" = 42 ] || fail "postgres.sh's URL does not work with the cluster $state"
  say "postgres.sh with the cluster $state: ok"
done

out=$(CI=true TEST_DATABASE_URL="postgres://nobody:wrong@127.0.0.1:1/none?sslmode=disable" .ci/test.sh ./persistence/pgtest 2>&1) \
  && fail "the test command passed under CI=true with no reachable PostgreSQL"
grep -q 'Fix:' <<<"$out" || fail "the test command failed without naming the fix: $out"
say "CI=true without PostgreSQL fails and names the fix: ok"
