#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth and
# a database named "test", then prints the URL the tests use. It starts the
# server if it is stopped and installs it with apt-get if it is missing.
# Everything it says goes to stderr; stdout carries only the URL.
set -euo pipefail

HOST=127.0.0.1 PORT=5432 DB=test
URL="postgres://postgres@${HOST}:${PORT}/${DB}?sslmode=disable"
say() { echo "postgres.sh: $*" >&2; }

ready() { pg_isready -h "$HOST" -p "$PORT" -q 2>/dev/null; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "PostgreSQL is not installed: installing it with apt-get"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
fi

if ! ready; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # The tests connect over TCP as postgres without a password.
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    say "allowing trust auth from 127.0.0.1 in $hba"
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || { say "PostgreSQL did not come up on $HOST:$PORT"; exit 1; }
fi

if ! psql -h "$HOST" -p "$PORT" -U postgres -d "$DB" -Atqc 'select 1' >/dev/null 2>&1; then
  say "creating database $DB"
  psql -h "$HOST" -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE $DB" >&2
fi
echo "$URL"
