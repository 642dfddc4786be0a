#!/usr/bin/env bash
# The demo on the embedded default (SQLite, no server): install, simulate a shop, ingest it, replay the
# review desk's labels, train and promote a first champion model, serve.
# The service's data goes where every README command looks: ORDERGUARD_DATA_DIR, default var/. The simulated
# channel files go to DEMO_DIR (default var/demo). A second run with nothing changed goes straight to serving.
# Environment: DEMO_DAYS (default 42), DEMO_DIR, ORDERGUARD_DATA_DIR, ORDERGUARD_API__PORT (default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
. .venv/bin/activate
days=${DEMO_DAYS:-42}
dir=${DEMO_DIR:-var/demo}
export ORDERGUARD_DATA_DIR=${ORDERGUARD_DATA_DIR:-var}
if [ ! -f "$dir/shop/manifest.json" ]; then
  echo "== simulating $days days of the shop into $dir/shop"
  orderguard generate --days "$days" --seed 7 --out "$dir/shop"
fi
# What the order log was loaded from; when it matches, ingest and label import (idempotent, but a re-read of
# every file) are skipped.
loaded="$ORDERGUARD_DATA_DIR/.demo-loaded"
want="$(sha256sum "$dir/shop/manifest.json" | cut -d' ' -f1) $(cd "$dir" && pwd)"
if [ -f "$loaded" ] && [ -f "$ORDERGUARD_DATA_DIR/orderguard.db" ] && [ "$(cat "$loaded")" = "$want" ]; then
  echo "== $ORDERGUARD_DATA_DIR already holds this shop and its labels (remove $loaded to load them again)"
else
  echo "== ingesting channel files (idempotent: re-running changes nothing)"
  orderguard ingest "$dir"/shop/*.jsonl
  end=$(python -c 'import json,sys,datetime as d; m=json.load(open(sys.argv[1]))["config"]; print(d.date.fromisoformat(m["start"])+d.timedelta(days=m["days"]))' "$dir/shop/manifest.json")
  echo "== the review desk labels the orders placed before $end"
  orderguard label simulate --truth "$dir/shop/ground_truth.csv" --until "$end" --out "$dir/labels.csv"
  orderguard label import "$dir/labels.csv"
  echo "$want" > "$loaded"
fi
if ! orderguard model >/dev/null 2>&1; then
  echo "== training a first model on the labels and promoting it if it beats the rules"
  orderguard train --promote
fi
echo "== data in $ORDERGUARD_DATA_DIR; the README's commands read it from there (ORDERGUARD_DATA_DIR or --data-dir)"
echo "== serving on http://${ORDERGUARD_API__HOST:-127.0.0.1}:${ORDERGUARD_API__PORT:-8000} (docs at /docs)"
exec orderguard serve
