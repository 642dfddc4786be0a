#!/usr/bin/env bash
# Create .venv and install orderguard with its locked dependencies (constraints.txt).
# Re-running is cheap: the install is skipped while pyproject.toml and constraints.txt are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.orderguard-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi
# Swagger UI for /docs, served from this machine (no CDN at run time): the npm distribution, pinned by checksum.
# Without network access /docs says the files are missing and /openapi.json still works.
ui=.venv/share/orderguard/swagger-ui
ui_version=5.35.0
ui_sha256=1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6
if [ ! -f "$ui/.version" ] || [ "$(cat "$ui/.version")" != "$ui_version" ]; then
  tmp=$(mktemp -d)
  if curl -fsSL --max-time 60 -o "$tmp/ui.tgz" \
      "https://registry.npmjs.org/swagger-ui-dist/-/swagger-ui-dist-$ui_version.tgz" \
      && echo "$ui_sha256  $tmp/ui.tgz" | sha256sum -c --status; then
    tar -xzf "$tmp/ui.tgz" -C "$tmp" package/swagger-ui-bundle.js package/swagger-ui.css package/LICENSE
    mkdir -p "$ui"
    mv "$tmp"/package/* "$ui"/
    echo "$ui_version" > "$ui/.version"
  else
    echo "bootstrap: could not fetch Swagger UI $ui_version; /docs will point at /openapi.json instead" >&2
  fi
  rm -rf "$tmp"
fi
