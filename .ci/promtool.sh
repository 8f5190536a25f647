#!/usr/bin/env bash
# The alert rules' checks: promtool check rules and promtool test rules
# over deploy/prometheus, and every alert named in the unit tests at least
# twice (once firing, once silent). promtool comes from Debian's
# prometheus package (apt-get, ~40s once; the run itself takes ~1s). Under
# CI=true a promtool that cannot be had fails the run; elsewhere it is
# skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "promtool: $*" >&2; }
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's prometheus package for promtool"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; } || true
  fi
fi
if ! command -v promtool >/dev/null; then
  [ "${CI:-}" = true ] && { say "promtool is required under CI=true (apt-get install prometheus)"; exit 1; }
  say "promtool not installed: alert rules not checked (apt-get install prometheus)"; exit 0
fi
rules=(deploy/prometheus/*.yml)
promtool check rules "${rules[@]}" >/dev/null
promtool test rules deploy/prometheus/tests/*.yml
missing=0
for a in $(grep -h -oE '^\s*- alert: \S+' "${rules[@]}" | awk '{print $3}'); do
  n=$(grep -h -cE "alertname: $a\b" deploy/prometheus/tests/*.yml | awk '{s+=$1} END {print s+0}')
  if [ "$n" -lt 2 ]; then say "alert $a has $n test case(s): want one firing and one silent"; missing=1; fi
done
[ "$missing" = 0 ] || exit 1
say "$(grep -h -cE '^\s*- alert:' "${rules[@]}" | awk '{s+=$1} END {print s+0}') alerts checked and unit-tested"
