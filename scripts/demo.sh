#!/usr/bin/env bash
# The demo on the embedded default (SQLite, no server): install, simulate a shop, ingest it, serve.
# Environment: DEMO_DAYS (default 30), DEMO_DIR (default var/demo), ORDERGUARD_API__PORT (default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
. .venv/bin/activate
days=${DEMO_DAYS:-30}
dir=${DEMO_DIR:-var/demo}
export ORDERGUARD_DATA_DIR=${ORDERGUARD_DATA_DIR:-$dir/data}
if [ ! -f "$dir/shop/manifest.json" ]; then
  echo "== simulating $days days of the shop into $dir/shop"
  orderguard generate --days "$days" --seed 7 --out "$dir/shop"
fi
echo "== ingesting channel files (idempotent: re-running changes nothing)"
orderguard ingest "$dir"/shop/*.jsonl
echo "== serving on http://${ORDERGUARD_API__HOST:-127.0.0.1}:${ORDERGUARD_API__PORT:-8000} (docs at /docs)"
exec orderguard serve
