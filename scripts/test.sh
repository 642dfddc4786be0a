#!/usr/bin/env bash
# The whole test suite: install, start PostgreSQL + Redis, lint, type-check, check import directions, run every test.
# Service-backed tests fail (never skip) when a service is down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/services.sh
export ORDERGUARD_TEST_PG_URL=${ORDERGUARD_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
export ORDERGUARD_TEST_REDIS_URL=${ORDERGUARD_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
. .venv/bin/activate
echo "== ruff"; ruff check .
echo "== mypy --strict"; mypy
echo "== import directions (pyproject.toml [tool.importlinter])"; lint-imports --no-cache
# Two worker processes (pytest-xdist): the suite is CPU-bound and every test owns its databases, key prefixes and
# ports, so it halves the wall time on a 2-core machine. ORDERGUARD_TEST_WORKERS=0 runs it in one process.
echo "== pytest"; pytest -q -p no:cacheprovider -n "${ORDERGUARD_TEST_WORKERS:-2}" "$@"
