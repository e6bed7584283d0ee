#!/usr/bin/env bash
# Set-up for a fresh machine: system packages where apt is available (best effort: the library
# works without them, on the embedded data subset and the wasm backend), then the npm packages
# and a build.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(dataset-fashion-mnist chromium libopenblas-dev libdnnl-dev gcc redis-server)
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
      echo "setup: apt-get failed; continuing without ${missing[*]} (the embedded data subset and the wasm backend still work)"
    fi
  fi
else
  echo "setup: no apt-get as root here; skipping system packages (${APT_PACKAGES[*]})"
fi

# onnxruntime-node ships its CPU binary in the npm package; its install script would only fetch GPU extras from nuget.org
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
npm run build
