#!/usr/bin/env bash
# Install everything and run the whole test suite against real PostgreSQL and Redis,
# with a real Celery worker and a real headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/browser.sh
bash scripts/services.sh

export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-test-only-secret-key-not-for-production}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/loopgate}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
export LOOPGATE_REQUIRE_SERVICES="${LOOPGATE_REQUIRE_SERVICES:-1}"
mkdir -p test-output

# promtool (Debian's prometheus package) checks the alert rules under deploy/.
if ! command -v promtool >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
    else
        echo "promtool is missing: install Debian's prometheus package (sudo apt-get install prometheus)" >&2
        exit 1
    fi
fi

# Static checks first: any failure stops the run before the tests start.
for check in ".venv/bin/ruff check ." ".venv/bin/lint-imports" ".venv/bin/mypy" \
    ".venv/bin/hadolint Dockerfile" \
    "promtool check rules deploy/prometheus/loopgate-rules.yml"; do
    echo "+ $check"
    $check
done
.venv/bin/python -c "import json; json.load(open('deploy/grafana/loopgate-pipeline.json'))"
# The compose file, where Docker's CLI (with its compose plugin) is installed.
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    echo "+ docker compose config --quiet"
    DJANGO_SECRET_KEY=compose-config-check docker compose config --quiet
fi

echo "+ .venv/bin/python -m pytest $*"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "no tests were collected" >&2
    exit 1
fi
exit "$status"
