#!/usr/bin/env bash
# Install everything Loopgate needs into .venv (idempotent; fast when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# Front-end packages (package-lock.json pins them): axe-core for the browser tests.
if command -v npm >/dev/null; then
    lock_stamp=node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)
    if [ ! -f "$lock_stamp" ]; then
        npm ci --no-audit --no-fund --loglevel=error
        touch "$lock_stamp"
    fi
else
    echo "npm is missing: install Node.js (Debian's nodejs and npm packages)" >&2
    exit 1
fi
# Chart.js for the monitoring dashboards, served as a static file (static/vendor is
# ignored by git: it is built from the pinned npm package, never edited by hand).
mkdir -p static/vendor/chart.js
cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.js/chart.umd.min.js
