"""The Celery application: inference, training and periodic checks run here."""

import os

# PyTorch's OpenMP threads (and MKL's) busy-wait between parallel regions by default,
# taking the CPU the web server and the database need. The OpenMP runtime reads this
# once, when torch's shared libraries are loaded: it must be in the environment before
# anything imports torch. Every Loopgate process (``celery -A loopgate``, gunicorn
# ``loopgate.wsgi``, ``manage.py``) imports this package first, so this is the place;
# an operator's own value is kept (D78).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import logging  # after the OpenMP environment, on purpose
import threading
import time

from celery import Celery, bootsteps
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.settings")

app = Celery("loopgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class RecoverAfterReconnect(bootsteps.StartStopStep):
    """When the worker reconnects to its broker, queue a sweep of the waiting cases.

    A broker that restarted may have lost the messages of cases still ``received``;
    rather than let them wait for the stall time, the sweep queues every case waiting
    longer than ``LOOPGATE_RECONNECT_REQUEUE_SECONDS`` once (duplicates are no-ops).
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, parent: object) -> None:
        if getattr(parent, "restart_count", 0) <= 1:
            return  # the first connection: nothing was lost
        from django.conf import settings

        from processing.tasks import cases_requeue_stalled

        try:
            cases_requeue_stalled.apply_async(
                kwargs={"received_older_than": settings.LOOPGATE_RECONNECT_REQUEUE_SECONDS}
            )
        except Exception:  # the broker went away again; the periodic sweep remains
            logging.getLogger(__name__).warning("sweep after reconnect not queued", exc_info=True)


app.steps["consumer"].add(RecoverAfterReconnect)


@task_prerun.connect
@task_postrun.connect
def _task_connections(sender: object = None, **_: object) -> None:
    """A task's database connections as a web request's (D148): kept up to
    ``CONN_MAX_AGE``, closed when broken or left with autocommit off, and checked before
    the next query (``CONN_HEALTH_CHECKS``). Celery's fix-up closes them only every
    ``CELERY_DB_REUSE_MAX`` tasks. An eagerly run task runs inside its caller's
    transaction: its connections are the caller's, not touched."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def _record_pool_size(sender: object = None, **_: object) -> None:
    """Tell the pool processes how many of them share the host's cores (inherited through
    the environment); an operator who runs several workers on one host sets
    ``LOOPGATE_WORKER_PROCESSES`` to their total instead."""
    concurrency = getattr(sender, "concurrency", None)
    if isinstance(concurrency, int) and concurrency > 0:
        os.environ.setdefault("LOOPGATE_WORKER_PROCESSES", str(concurrency))


_threads_pid: int | None = None


def cpu_threads_apply() -> int:
    """Give this worker process its CPU thread budget (``inference.devices.cpu_threads_policy``)
    and log it as torch reports it. Runs once per process, before any task."""
    global _threads_pid
    import torch
    from django.conf import settings

    from inference.devices import (
        available_cores,
        configure_cpu_threads,
        cpu_threads_policy,
        worker_processes,
    )

    if _threads_pid != os.getpid():
        _threads_pid = os.getpid()
        cores, processes = available_cores(), worker_processes()
        configure_cpu_threads(
            cpu_threads_policy(
                cores=cores, processes=processes, requested=settings.LOOPGATE_TORCH_THREADS
            )
        )
        logging.getLogger(__name__).info(
            "worker process %d: torch threads %d (cores %d, worker processes %d, "
            "LOOPGATE_TORCH_THREADS %s), OMP_WAIT_POLICY %s",
            os.getpid(),
            torch.get_num_threads(),
            cores,
            processes,
            settings.LOOPGATE_TORCH_THREADS,
            os.environ.get("OMP_WAIT_POLICY"),
        )
    return torch.get_num_threads()


@worker_process_init.connect
def _configure_cpu_threads(**_: object) -> None:
    cpu_threads_apply()


@worker_process_init.connect
def _warm_models(**_: object) -> None:
    """Load the deployed models in each new worker process, off the start-up path.

    A pool process must report ready within a few seconds, so the loading runs in a
    thread; the first task waits on the model cache's lock if it arrives sooner.
    """
    from django.conf import settings

    from kernel.heap import heap_settle

    if not settings.LOOPGATE_WARM_MODELS:
        heap_settle("the worker process started")
        return

    def warm() -> None:
        from django.db import connection

        from modelops.runtime import models_warm

        try:
            models_warm()
        except Exception:  # e.g. a database not migrated yet
            logging.getLogger(__name__).warning("model warm-up skipped", exc_info=True)
        finally:
            connection.close()
        # What the process and its models hold from now on, out of the collector's
        # full passes (D144).
        heap_settle("the worker process loaded its models")

    threading.Thread(target=warm, name="loopgate-warm-models", daemon=True).start()


@worker_process_init.connect
def _start_heartbeat(**_: object) -> None:
    _heartbeat_start()


@worker_ready.connect
def _start_heartbeat_without_pool_processes(sender: object = None, **_: object) -> None:
    """The solo and thread pools run tasks in the main process: it records the heartbeat."""
    pool = getattr(getattr(sender, "controller", None), "pool_cls", None)
    module = getattr(pool, "__module__", "") or str(pool)
    if "prefork" not in module:
        cpu_threads_apply()
        _heartbeat_start()


_heartbeat_pid: int | None = None


def _heartbeat_start() -> None:
    """Record this worker process's heartbeat every few seconds, in a daemon thread.

    The first beat also queues a sweep: a pool process that starts may be replacing one
    that was killed, whose claimed cases another worker may take over at once.
    """
    global _heartbeat_pid
    if _heartbeat_pid == os.getpid():
        return
    _heartbeat_pid = os.getpid()
    from django.conf import settings

    interval = settings.LOOPGATE_WORKER_HEARTBEAT_SECONDS

    def beat() -> None:
        from django.db import connection

        from processing.services import worker_heartbeat_record
        from processing.tasks import cases_requeue_stalled

        first = True
        while True:
            try:
                worker_heartbeat_record()
                if first:
                    cases_requeue_stalled.delay()
                    first = False
            except Exception:  # a database or broker away for a while
                logging.getLogger(__name__).warning("worker heartbeat failed", exc_info=True)
            finally:
                connection.close()
            time.sleep(interval)

    threading.Thread(target=beat, name="loopgate-heartbeat", daemon=True).start()
