#!/usr/bin/env bash
# Keep a process running: start it again whenever it exits, with back-off, and say so.
#
#   scripts/supervise.sh LOG_FILE COMMAND [ARGS...]
#
# scripts/demo.sh runs one supervisor per process: the inference worker, the worker for
# the default and training queues, and beat; several may share one LOG_FILE (each
# restart line names its command).
#
# The command's output and every restart go to LOG_FILE (restarts also to stderr). The
# delay before a restart starts at SUPERVISE_DELAY seconds (1), doubles up to 30 and is
# reset once a run lasted a minute. A command that exits SUPERVISE_MAX_QUICK_EXITS times
# in a row (5) within 10 s of starting is given up on: the supervisor logs it, sends
# SIGTERM to SUPERVISE_STOP_PID (if set: the demo stops rather than run without a
# worker) and exits 1. SIGTERM or SIGINT to the supervisor stops the command and exits 0.
# The command runs in its own session, so that what a crashed run leaves behind (a
# Celery worker's pool processes, its embedded beat) is killed with it.
set -uo pipefail
log="$1"
shift
delay="${SUPERVISE_DELAY:-1}"
max_quick="${SUPERVISE_MAX_QUICK_EXITS:-5}"
quick_exits=0
child=""

say() { echo "$(date -u +%FT%TZ) SUPERVISOR: $*" | tee -a "$log" >&2; }

stop() {
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
        kill -KILL -- "-$child" 2>/dev/null
    fi
    exit 0
}
trap stop TERM INT

while true; do
    started=$(date +%s)
    setsid "$@" >>"$log" 2>&1 &
    child=$!
    code=0
    wait "$child" || code=$?
    kill -KILL -- "-$child" 2>/dev/null || true
    child=""
    ran=$(($(date +%s) - started))
    if [ "$ran" -ge 60 ]; then delay="${SUPERVISE_DELAY:-1}"; fi
    if [ "$ran" -lt 10 ]; then quick_exits=$((quick_exits + 1)); else quick_exits=0; fi
    if [ "$quick_exits" -ge "$max_quick" ]; then
        say "$1 exited $quick_exits times in a row within 10 s (last status $code); giving up. See $log."
        if [ -n "${SUPERVISE_STOP_PID:-}" ]; then kill -TERM "$SUPERVISE_STOP_PID" 2>/dev/null; fi
        exit 1
    fi
    say "$1 exited with status $code after ${ran} s; restarting in ${delay} s"
    sleep "$delay"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
done
