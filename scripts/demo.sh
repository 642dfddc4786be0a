#!/usr/bin/env bash
# The demo on the embedded default (SQLite, no server): install, simulate a shop, ingest it, replay the
# review desk's labels, train and promote a first champion model, serve.
# Environment: DEMO_DAYS (default 42), DEMO_DIR (default var/demo), ORDERGUARD_API__PORT (default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
. .venv/bin/activate
days=${DEMO_DAYS:-42}
dir=${DEMO_DIR:-var/demo}
export ORDERGUARD_DATA_DIR=${ORDERGUARD_DATA_DIR:-$dir/data}
if [ ! -f "$dir/shop/manifest.json" ]; then
  echo "== simulating $days days of the shop into $dir/shop"
  orderguard generate --days "$days" --seed 7 --out "$dir/shop"
fi
echo "== ingesting channel files (idempotent: re-running changes nothing)"
orderguard ingest "$dir"/shop/*.jsonl
end=$(python -c 'import json,sys,datetime as d; m=json.load(open(sys.argv[1]))["config"]; print(d.date.fromisoformat(m["start"])+d.timedelta(days=m["days"]))' "$dir/shop/manifest.json")
echo "== the review desk labels the orders placed before $end"
orderguard label simulate --truth "$dir/shop/ground_truth.csv" --until "$end" --out "$dir/labels.csv"
orderguard label import "$dir/labels.csv"
if ! orderguard model >/dev/null 2>&1; then
  echo "== training a first model on the labels and promoting it if it beats the rules"
  orderguard train --promote
fi
echo "== serving on http://${ORDERGUARD_API__HOST:-127.0.0.1}:${ORDERGUARD_API__PORT:-8000} (docs at /docs)"
exec orderguard serve
