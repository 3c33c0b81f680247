#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use is running: installs Debian's postgresql and
# starts the cluster when needed. Idempotent; does nothing when the server already answers.
set -euo pipefail
url="${OELD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if [ -n "${OELD_TEST_DATABASE_URL:-}" ]; then
  echo "ensure-postgres: using OELD_TEST_DATABASE_URL as given"
  exit 0
fi
ready() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
if ready; then exit 0; fi
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "ensure-postgres: no PostgreSQL cluster found; installing Debian's postgresql (needs root and apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
version="$(ls /etc/postgresql | sort -V | tail -1)"
echo "ensure-postgres: starting PostgreSQL $version cluster 'main'"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do ready && break; sleep 1; done
if ! ready; then echo "ensure-postgres: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; fi
# The suite connects as postgres without a password over TCP from localhost.
if ! psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  echo "ensure-postgres: allowing trust auth for localhost in $hba (test machine only)"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
psql "$url" -Atqc 'SELECT 1' >/dev/null
echo "ensure-postgres: PostgreSQL ready at 127.0.0.1:5432"
