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

# Front-end packages (package-lock.json pins them): Chart.js for the monitoring
# dashboards, axe-core for the browser tests. Without npm the platform still runs: the
# dashboards show their tables, and the browser tests say what is missing.
if command -v npm >/dev/null; then
    lock_stamp=node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)
    if [ ! -f "$lock_stamp" ]; then
        npm ci --no-audit --no-fund --loglevel=error
        touch "$lock_stamp"
    fi
    # Chart.js served as a static file (static/vendor is ignored by git: it is built
    # from the pinned npm package, never edited by hand).
    mkdir -p static/vendor/chart.js
    cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.js/chart.umd.min.js
else
    echo "npm not found: dashboards show tables without charts (install Node.js for them)" >&2
fi
