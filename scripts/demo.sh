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

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput >/dev/null

# The worker runs under a small supervisor: if it exits, the exit is logged to
# var/worker.log and it is started again after a back-off (1 s, doubling to 30 s; reset
# once a run lasted a minute). A worker that keeps dying at start-up (5 runs in a row
# under 10 s) stops the whole demo, loudly, rather than leaving a web server that
# accepts cases nobody processes.
supervise_worker() {
    local delay=1 quick_exits=0 child="" started ran code
    trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; kill -KILL -- "-$child" 2>/dev/null; fi; exit 0' TERM INT
    while true; do
        started=$(date +%s)
        # In its own session, so that what a crashed worker leaves behind (its embedded
        # beat, pool processes) can be killed with it as a group.
        setsid .venv/bin/celery -A loopgate worker --beat -Q inference,training,default \
            --concurrency "${WORKER_CONCURRENCY:-1}" --loglevel INFO \
            --schedule var/celerybeat-schedule >>var/worker.log 2>&1 &
        child=$!
        code=0
        wait "$child" || code=$?
        kill -KILL -- "-$child" 2>/dev/null || true
        child=""
        ran=$(( $(date +%s) - started ))
        if [ "$ran" -ge 60 ]; then delay=1; quick_exits=0; fi
        if [ "$ran" -lt 10 ]; then quick_exits=$((quick_exits + 1)); else quick_exits=0; fi
        if [ "$quick_exits" -ge 5 ]; then
            echo "$(date -u +%FT%TZ) SUPERVISOR: the worker exited $quick_exits times in a row within 10 s (last status $code); stopping the demo. See var/worker.log." \
                | tee -a var/worker.log >&2
            kill -TERM "$DEMO_PID" 2>/dev/null || true
            exit 1
        fi
        echo "$(date -u +%FT%TZ) SUPERVISOR: the worker exited with status $code after ${ran} s; restarting in ${delay} s" \
            | tee -a var/worker.log >&2
        sleep "$delay"
        delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
    done
}

DEMO_PID=$$
: >>var/worker.log
supervise_worker &
SUPERVISOR_PID=$!
GUNICORN_PID=""
stop_all() {
    trap - EXIT INT TERM
    [ -n "$GUNICORN_PID" ] && kill -TERM "$GUNICORN_PID" 2>/dev/null
    kill -TERM "$SUPERVISOR_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

.venv/bin/python manage.py bootstrap_demo --cases "${DEMO_CASES:-60}" --base-url "http://127.0.0.1:${PORT}"
echo "  Worker log:     var/worker.log   (Ctrl-C stops the web server and the worker)"
.venv/bin/gunicorn loopgate.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
    --access-logfile - --log-level warning &
GUNICORN_PID=$!
# Waiting in the background lets the traps run at once (the supervisor stops the demo
# with SIGTERM when the worker cannot stay up).
wait "$GUNICORN_PID"
