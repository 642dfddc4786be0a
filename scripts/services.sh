#!/usr/bin/env bash
# Start the services the test suite needs on 127.0.0.1: PostgreSQL 15 (installed, down) and Redis
# (Debian's redis-server, installed here if missing), and install Debian's Chromium for the browser tests.
# Fails loudly when any of them cannot be had.
set -euo pipefail

start_postgres() {
  local hba=/etc/postgresql/15/main/pg_hba.conf
  if [ ! -f "$hba" ]; then
    echo "services: PostgreSQL 15 cluster 'main' not found ($hba missing)" >&2
    exit 1
  fi
  # Trust local TCP connections: the test cluster holds only throwaway databases.
  if ! grep -q '^# orderguard-trust' "$hba"; then
    { echo '# orderguard-trust'; echo 'host all all 127.0.0.1/32 trust'; echo 'host all all ::1/128 trust'; \
      cat "$hba"; } > "$hba.new"
    mv "$hba.new" "$hba"
    chown postgres:postgres "$hba" 2>/dev/null || true
  fi
  if ! pg_lsclusters -h | awk '$1=="15" && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster 15 main start
  else
    pg_ctlcluster 15 main reload
  fi
  for _ in $(seq 1 30); do
    if pg_isready -q -h 127.0.0.1 -p 5432; then return 0; fi
    sleep 1
  done
  echo "services: PostgreSQL did not become ready on 127.0.0.1:5432" >&2
  exit 1
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    (apt-get install -y -q redis-server >/dev/null 2>&1) || \
      (apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null)
  fi
  if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  fi
  for _ in $(seq 1 30); do
    if redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; then return 0; fi
    sleep 0.5
  done
  echo "services: Redis did not answer PING on 127.0.0.1:6379" >&2
  exit 1
}

# The browser tests drive Debian's Chromium through Playwright (no browser is downloaded).
install_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    (apt-get install -y -q chromium >/dev/null 2>&1) || \
      (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
  fi
  command -v chromium >/dev/null 2>&1 || { echo "services: Chromium could not be installed" >&2; exit 1; }
}

start_postgres
start_redis
install_chromium
echo "services: PostgreSQL 15 and Redis are up on 127.0.0.1; Chromium is at $(command -v chromium)"
