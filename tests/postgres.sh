#!/usr/bin/env bash
# Start (up) or stop (down) a local PostgreSQL cluster for the multi-worker storage test (root, Debian's
# postgresql package). `up` prints the URL to put in NASPROXY_TEST_POSTGRES.
set -euo pipefail
version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
[ -n "$version" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }
case "${1:-up}" in
  up)
    pg_ctlcluster "$version" main start 2>/dev/null || true
    for _ in $(seq 30); do su postgres -c "pg_isready -q" && break; sleep 1; done
    su postgres -c "psql -qtA -c \"SELECT 1 FROM pg_roles WHERE rolname = 'nasproxy'\"" | grep -q 1 ||
      su postgres -c "psql -q -c \"CREATE ROLE nasproxy LOGIN PASSWORD 'nasproxy' CREATEDB\""
    su postgres -c "psql -q -c 'ALTER ROLE nasproxy CREATEDB'" >/dev/null  # the race test makes fresh databases
    su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS nasproxy_test'" >/dev/null
    su postgres -c "psql -q -c 'CREATE DATABASE nasproxy_test OWNER nasproxy'"
    echo "postgresql+psycopg://nasproxy:nasproxy@127.0.0.1:5432/nasproxy_test"
    ;;
  down)
    pg_ctlcluster "$version" main stop || true
    ;;
esac
