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
  # the period ends today (Beijing), so the review desk's queue holds this week's orders
  start=$(python -c 'import sys,datetime as d; z=d.timezone(d.timedelta(hours=8)); print(d.datetime.now(z).date()-d.timedelta(days=int(sys.argv[1])))' "$days")
  echo "== simulating $days days of the shop, from $start, into $dir/shop"
  orderguard generate --days "$days" --seed 7 --start "$start" --out "$dir/shop"
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
  echo "== ingesting the shop systems' fulfilment reports (payment callbacks, ERP, warehouse, carriers)"
  orderguard health ingest "$dir"/shop/fulfilment/fulfilment.jsonl
  end=$(python -c 'import json,sys,datetime as d; m=json.load(open(sys.argv[1]))["config"]; print(d.date.fromisoformat(m["start"])+d.timedelta(days=m["days"]))' "$dir/shop/manifest.json")
  echo "== the review desk labels the orders placed before $end"
  orderguard label simulate --truth "$dir/shop/ground_truth.csv" --until "$end" --out "$dir/labels.csv"
  orderguard label import "$dir/labels.csv"
  echo "$want" > "$loaded"
  fresh=1
fi
keys="$dir/api-keys.txt"
if [ -n "${fresh:-}" ] || [ ! -s "$keys" ]; then
  echo "== API keys, one per role (orderguard keys create; only their hashes are stored)"
  : > "$keys"
  chmod 600 "$keys"
  for role in order_system reviewer operations data_scientist marketing admin; do
    echo "$role $(orderguard keys create --name "demo $role" --role "$role" 2>/dev/null)" >> "$keys"
  done
fi
users="$dir/users.txt"
if [ -n "${fresh:-}" ] || [ ! -s "$users" ]; then
  echo "== users, one per role, who sign in at /signin (orderguard users add; argon2 hashes stored)"
  : > "$users"
  chmod 600 "$users"
  for role in reviewer operations data_scientist marketing admin order_system; do
    name=$(echo "$role" | tr _ -)
    ORDERGUARD_NEW_PASSWORD=$(python -c 'import secrets; print(secrets.token_urlsafe(12))')
    export ORDERGUARD_NEW_PASSWORD
    orderguard users add "$name" --role "$role" >/dev/null 2>&1 \
      || orderguard users change "$name" --role "$role" --enable --new-password >/dev/null
    echo "$name $ORDERGUARD_NEW_PASSWORD" >> "$users"
  done
  unset ORDERGUARD_NEW_PASSWORD
fi
if ! orderguard model >/dev/null 2>&1; then
  echo "== training a first model on the labels and promoting it if it beats the rules"
  orderguard train --promote
fi
if [ -n "${fresh:-}" ] || [ ! -f "$ORDERGUARD_DATA_DIR/.demo-scored" ]; then
  echo "== scoring the orders as the service would have when each came in (the review desk's queue and cases)"
  orderguard score-orders
  touch "$ORDERGUARD_DATA_DIR/.demo-scored"
fi
if [ -n "${fresh:-}" ] || [ ! -f "$ORDERGUARD_DATA_DIR/.demo-health" ]; then
  echo "== replaying the last 12 hours of order-health sweeps (the /health dashboard's chart of the day)"
  span=$(python -c 'import datetime as d; z=d.timezone(d.timedelta(hours=8)); n=d.datetime.now(z); f="%Y-%m-%dT%H:%M"; print((n-d.timedelta(hours=12)).strftime(f), n.strftime(f))')
  orderguard health sweep --from "${span% *}" --as-of "${span#* }" --every 10m --horizon "$((days + 3))d" --record >/dev/null
  touch "$ORDERGUARD_DATA_DIR/.demo-health"
fi
echo "== data in $ORDERGUARD_DATA_DIR; the README's commands read it from there (ORDERGUARD_DATA_DIR or --data-dir)"
echo "== the demo's API keys ($keys); send one as 'Authorization: Bearer <key>':"
sed 's/^/     /' "$keys"
order_key=$(awk '$1 == "order_system" {print $2}' "$keys")
echo "   e.g. curl -H \"Authorization: Bearer $order_key\" -H 'content-type: application/json' \\"
echo "          -d @tests/contracts/samples/site_order.json http://127.0.0.1:${ORDERGUARD_API__PORT:-8000}/v1/orders/site"
marketing_key=$(awk '$1 == "marketing" {print $2}' "$keys")
echo "   marketing's trusted customers: curl -H \"Authorization: Bearer $marketing_key\" \\"
echo "          'http://127.0.0.1:${ORDERGUARD_API__PORT:-8000}/v1/segments/trusted?limit=20'"
echo "   or a file: orderguard trust-pool --out $dir/trusted.xlsx (or .csv / .parquet)"
echo "== the demo's users ($users), one per role; sign in at http://127.0.0.1:${ORDERGUARD_API__PORT:-8000}/signin"
echo "   (the reviewer works the review desk at /desk: keys 1 2 3 give a verdict, j and k move):"
sed 's/^/     /' "$users"
operations_key=$(awk '$1 == "operations" {print $2}' "$keys")
echo "   operations' order health: curl -H \"Authorization: Bearer $operations_key\" \\"
echo "          http://127.0.0.1:${ORDERGUARD_API__PORT:-8000}/v1/health   (the page: /health, user operations)"
# the order-health monitor loads the whole simulated period, promotion day included
export ORDERGUARD_HEALTH__HORIZON=${ORDERGUARD_HEALTH__HORIZON:-$((days + 3))d}
echo "== serving on http://${ORDERGUARD_API__HOST:-127.0.0.1}:${ORDERGUARD_API__PORT:-8000} (docs at /docs)"
exec orderguard serve
