#!/usr/bin/env bash
# Prints a URL of a PostgreSQL database the tests may use (stdout carries
# only the URL; everything said goes to stderr). It works whether
# PostgreSQL is absent (installs it with apt-get), installed and stopped
# (starts the cluster on the port), or installed and running, whatever its
# TCP authentication (trust, md5, scram): it never relies on trust, but
# talks to the server as the `postgres` OS user over the local socket (peer
# authentication, Debian's default) to create a login role with a password
# and the database, then checks the URL really logs in over TCP.
#
# Environment: SPA_PG_PORT (5432), SPA_PG_DB (test), SPA_PG_USER
# (spa_test), SPA_PG_PASSWORD (spa_test: a throwaway role on a local test
# server, not a secret). The role is a superuser so the tests see the same
# server as the postgres user (they create and drop schemas, the cluster
# tests a database).
set -euo pipefail

PORT=${SPA_PG_PORT:-5432} DB=${SPA_PG_DB:-test}
ROLE=${SPA_PG_USER:-spa_test} PASS=${SPA_PG_PASSWORD:-spa_test}
HOST=127.0.0.1
say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
  else die "need root (or passwordless sudo) to $*; or start PostgreSQL yourself and set TEST_DATABASE_URL=postgres://USER:PASS@127.0.0.1:5432/test?sslmode=disable"
  fi
}
# as_postgres runs a command as the postgres OS user (peer auth on the socket).
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ] && command -v runuser >/dev/null; then runuser -u postgres -- "$@"
  else as_root su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  fi
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  command -v apt-get >/dev/null || die "PostgreSQL is not installed and this is not a Debian-like system (no apt-get): install PostgreSQL 13+ and set TEST_DATABASE_URL"
  say "PostgreSQL is not installed: installing it with apt-get"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
fi

# The cluster that owns the port: start it if it is down, create one if
# none does (pg_lsclusters: version, name, port, status, ...).
read -r version name status < <(pg_lsclusters -h 2>/dev/null | awk -v p="$PORT" '$3 == p {print $1, $2, $4; exit}') || true
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  name=spa_test
  say "no PostgreSQL cluster on port $PORT: creating $version/$name"
  as_root pg_createcluster "$version" "$name" -p "$PORT" >&2
  status=down
fi
if [ "$status" != online ]; then
  say "starting PostgreSQL $version/$name on port $PORT"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start >&2 || true
fi
for _ in $(seq 1 60); do pg_isready -q -h "$HOST" -p "$PORT" && break; sleep 0.5; done
pg_isready -q -h "$HOST" -p "$PORT" || die "PostgreSQL $version/$name did not come up on $HOST:$PORT (see /var/log/postgresql/postgresql-$version-$name.log)"

# Role and database, over the local socket as postgres (idempotent).
psql_local() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@" >&2; }
psql_local -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN CREATE ROLE \"$ROLE\" LOGIN SUPERUSER; END IF;
END \$\$" -c "ALTER ROLE \"$ROLE\" WITH LOGIN SUPERUSER PASSWORD '$PASS'" \
  || die "could not create role $ROLE as the postgres OS user on port $PORT"
if ! as_postgres psql -X -Atq -p "$PORT" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  say "creating database $DB"
  psql_local -c "CREATE DATABASE \"$DB\" OWNER \"$ROLE\""
fi

URL="postgres://$ROLE:$PASS@$HOST:$PORT/$DB?sslmode=disable"
psql "$URL" -X -Atqc 'select 1' >/dev/null 2>&1 \
  || die "the role $ROLE cannot log in over TCP on $HOST:$PORT: check pg_hba.conf of $version/$name allows host connections from 127.0.0.1 (md5, scram-sha-256 or trust)"
echo "$URL"
