#!/usr/bin/env bash
# Install, migrate, load the demo and start the platform on the embedded default:
# SQLite, local media storage, and a Celery worker over an embedded (filesystem) broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
PORT="${PORT:-8000}"
mkdir -p var
# Prometheus multiprocess mode: every web and worker process writes its samples here and
# /metrics sums them; emptied at each start (stale files would count dead processes).
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
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

# Two workers, as in production: one for the inference queue (the cases) and one for the
# default and training queues (periodic checks, saliency, retraining), so a retraining
# run never holds up a case. Each pool process takes its CPU threads from the policy in
# inference/devices.py (one for the demo's small model; LOOPGATE_TORCH_THREADS to
# choose) and every process waits passively (OMP_WAIT_POLICY=PASSIVE, set in
# loopgate/celery.py before torch loads). With the scheduler (celery beat: the sweeps
# that requeue stalled cases, expire leases and check automation levels) that makes
# three processes, each under scripts/supervise.sh: if one exits, the exit is logged to
# var/worker.log and it is started again after a back-off. One that keeps dying at
# start-up stops the whole demo, loudly, rather than leaving a web server that accepts
# cases nobody processes.
: >>var/worker.log
SUPERVISE_STOP_PID=$$ bash scripts/supervise.sh var/worker.log \
    .venv/bin/celery -A loopgate worker -Q inference -n "inference@%h" \
    --concurrency "${WORKER_CONCURRENCY:-1}" --loglevel INFO &
SUPERVISOR_PID=$!
SUPERVISE_STOP_PID=$$ bash scripts/supervise.sh var/worker.log \
    .venv/bin/celery -A loopgate worker -Q default,training -n "default@%h" \
    --concurrency 1 --loglevel INFO &
DEFAULT_SUPERVISOR_PID=$!
SUPERVISE_STOP_PID=$$ bash scripts/supervise.sh var/worker.log \
    .venv/bin/celery -A loopgate beat --loglevel INFO --schedule var/celerybeat-schedule &
BEAT_SUPERVISOR_PID=$!
GUNICORN_PID=""
stop_all() {
    trap - EXIT INT TERM
    [ -n "$GUNICORN_PID" ] && kill -TERM "$GUNICORN_PID" 2>/dev/null
    kill -TERM "$SUPERVISOR_PID" "$DEFAULT_SUPERVISOR_PID" "$BEAT_SUPERVISOR_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

.venv/bin/python manage.py bootstrap_demo --cases "${DEMO_CASES:-60}" --base-url "http://127.0.0.1:${PORT}"
echo "  Worker log:     var/worker.log   (Ctrl-C stops the web server, the workers and beat)"
.venv/bin/gunicorn loopgate.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
    --access-logfile - --log-level warning &
GUNICORN_PID=$!
# Waiting in the background lets the traps run at once (the supervisor stops the demo
# with SIGTERM when the worker cannot stay up).
wait "$GUNICORN_PID"
