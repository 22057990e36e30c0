#!/usr/bin/env bash
# Install, migrate, load the demo and start the platform on the embedded default:
# SQLite, local media storage, and a Celery worker over an embedded (filesystem) broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
PORT="${PORT:-8000}"
mkdir -p var
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
    [ -f var/secret_key ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
    DJANGO_SECRET_KEY="$(cat var/secret_key)"
    export DJANGO_SECRET_KEY
fi
# The Prometheus scrape token for /metrics; bootstrap_demo prints the same one.
if [ -z "${LOOPGATE_METRICS_TOKEN:-}" ]; then
    if [ ! -f var/metrics_token ]; then
        (umask 077 && .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(32))" > var/metrics_token)
    fi
    LOOPGATE_METRICS_TOKEN="$(cat var/metrics_token)"
    export LOOPGATE_METRICS_TOKEN
fi

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput >/dev/null

.venv/bin/celery -A loopgate worker --beat -Q inference,training,default \
    --concurrency "${WORKER_CONCURRENCY:-1}" --loglevel INFO \
    --schedule var/celerybeat-schedule >var/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill $WORKER_PID 2>/dev/null || true; wait $WORKER_PID 2>/dev/null || true' EXIT INT TERM

.venv/bin/python manage.py bootstrap_demo --cases "${DEMO_CASES:-60}" --base-url "http://127.0.0.1:${PORT}"
echo "  Worker log:     var/worker.log   (Ctrl-C stops the web server and the worker)"
.venv/bin/gunicorn loopgate.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
    --access-logfile - --log-level warning
