#!/bin/sh
# Installs what the web tests need, when missing: web/node_modules (npm ci,
# exactly the versions of package-lock.json) and Debian's Chromium at
# /usr/bin/chromium (never a downloaded browser). Used by `make web-deps` and
# by the ctest fixture web_deps.
set -e
cd "$(dirname "$0")/.."

if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ] || [ ! -d node_modules/ws ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  command -v npm >/dev/null || { echo "npm is missing (Node 20+ is needed for the web tests)" >&2; exit 1; }
  echo "installing web/node_modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "missing /usr/bin/chromium; run: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi
