"""The worker: an RQ 3 worker on the product's queues plus the periodic scheduler.

``python -m jobs.worker`` starts one; ``flask worker`` execs it (same arguments, same
environment, same process id). Its app is ``create_app(worker=True)``: no web-only extensions,
blueprints imported only if a job builds a URL, simple-salesforce without zeep/lxml, so the
worker and every work horse it forks start from ~85 MB instead of ~110 MB (a forked horse's peak
resident memory counts every page it inherited). Each job runs in its own forked work
horse inside an application context; the horse gets fresh database connections (a connection
must never be shared across a fork). The scheduler runs in a child process forked at start, so
the worker never forks a horse while a scheduler thread might hold a lock. The worker watches it
at every heartbeat (at least every SCHEDULER_CHECK_SECONDS while idle, every 30 s during a job):
a scheduler that died (killed, out of memory) is logged and forked again from the worker's main
thread. SIGTERM or SIGINT stops both: the worker finishes its current job (a second signal kills
it), the scheduler stops after its current tick.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys

from rq import SimpleWorker, Worker

from core.queues import QUEUE_NAMES, queue, redis_connection
from jobs.scheduler import Scheduler, load_tasks

log = logging.getLogger("terapage.worker")


class _AppContextMixin:
    flask_app = None
    # The periodic scheduler's process, watched by this worker (see _watch_scheduler).
    scheduler_proc: multiprocessing.Process | None = None
    scheduler_tick_seconds: float = 30
    scheduler_check_seconds: int | None = None
    scheduler_restarts = 0
    _scheduler_parent = None

    def supervise_scheduler(self, proc: multiprocessing.Process, tick_seconds: float,
                            check_seconds: int | None) -> None:
        self.scheduler_proc = proc
        self.scheduler_tick_seconds = tick_seconds
        self.scheduler_check_seconds = check_seconds
        self._scheduler_parent = os.getpid()

    @property
    def dequeue_timeout(self) -> int:
        # While idle, RQ waits in one blocking dequeue this long between heartbeats; shorter when
        # a scheduler is watched, so a dead one is noticed within SCHEDULER_CHECK_SECONDS.
        timeout = super().dequeue_timeout
        if self.scheduler_proc is not None and self.scheduler_check_seconds:
            timeout = max(1, min(timeout, int(self.scheduler_check_seconds)))
        return timeout

    def heartbeat(self, *args, **kwargs):
        result = super().heartbeat(*args, **kwargs)
        self._watch_scheduler()
        return result

    def _watch_scheduler(self) -> None:
        """Fork the scheduler again if it has died. Only the worker itself does this (a work horse
        inherits the attributes but is not the scheduler's parent), in its main thread."""
        proc = self.scheduler_proc
        if (proc is None or self._scheduler_parent != os.getpid() or getattr(self, "_stop_requested", False)
                or proc.is_alive()):
            return
        log.error("worker %s: scheduler process %s ended (exit code %s); starting a new one",
                  os.getpid(), proc.pid, proc.exitcode)
        self.scheduler_proc = start_scheduler_process(self.flask_app, self.scheduler_tick_seconds)
        self.scheduler_restarts += 1
        log.info("worker %s: scheduler process %s", os.getpid(), self.scheduler_proc.pid)

    def perform_job(self, job, queue, execution):  # noqa: D401 - RQ's hook
        app = self.flask_app
        if app is None:
            return super().perform_job(job, queue, execution)
        from core.extensions import db
        with app.app_context():
            if getattr(self, "_is_horse", False):
                # The horse inherited the parent's pooled connections; drop them unused.
                db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job (job timeouts kill the horse, not the worker)."""


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in the worker's own process (tests, debugging)."""


def make_worker(app=None, queues: list[str] | tuple[str, ...] = QUEUE_NAMES, connection=None,
                simple: bool = False):
    connection = connection or redis_connection()
    cls = AppSimpleWorker if simple else AppWorker
    worker = cls([queue(name, connection=connection) for name in queues], connection=connection)
    worker.flask_app = app
    return worker


def _scheduler_main(app, tick_seconds: float) -> None:
    """Body of the scheduler process (forked from the worker)."""
    from core.extensions import db

    with app.app_context():
        connection = redis_connection()  # this process's own connection, from the app's settings
        db.engine.dispose(close=False)   # never reuse the parent's pooled database connections
    scheduler = Scheduler(load_tasks(), connection=connection, app=app, tick_seconds=tick_seconds)

    def stop(_signum, _frame):
        scheduler.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler.run_forever()


def start_scheduler_process(app, tick_seconds: float) -> multiprocessing.Process:
    proc = multiprocessing.get_context("fork").Process(
        target=_scheduler_main, args=(app, tick_seconds), name="terapage-scheduler")
    proc.start()
    return proc


def limit_malloc_arenas(arenas: int) -> bool:
    """glibc's ``mallopt(M_ARENA_MAX, arenas)`` for this process and the horses it forks.

    A sync reads the next Salesforce page in a thread (sync.readahead): with glibc's default, that
    thread allocates the page's body and records in an arena of its own, and the main thread frees
    them there, which fragments both: a 100k import's horse peaked at 140 MB with read-ahead
    against 121 MB without; one arena gives 128 MB (the page held ahead accounts for the rest).
    ``0`` leaves glibc's default. False where there is no glibc (musl, macOS): nothing changed."""
    if arenas <= 0:
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_ARENA_MAX = -8  # malloc.h
    return bool(mallopt(M_ARENA_MAX, int(arenas)))


def run_worker(app, queues=QUEUE_NAMES, burst: bool = False, with_scheduler: bool = True,
               simple: bool = False, max_jobs: int | None = None) -> bool:
    """Work the queues until stopped (or, with ``burst``, until they are empty)."""
    tick_seconds = app.config.get("SCHEDULER_TICK_SECONDS", 30) if app is not None else 30
    limit_malloc_arenas(app.config.get("WORKER_MALLOC_ARENA_MAX", 1))
    with app.app_context():
        connection = redis_connection()
        tasks = load_tasks()  # a broken registry entry stops the start here, not later
        worker = make_worker(app, queues, connection=connection, simple=simple)
    scheduler_proc = None
    if with_scheduler:
        if burst:
            # One tick, in this process, before draining: what is due now gets enqueued.
            Scheduler(tasks, connection=connection, app=app, tick_seconds=tick_seconds).tick()
        else:
            scheduler_proc = start_scheduler_process(app, tick_seconds)
            log.info("worker %s: scheduler process %s", os.getpid(), scheduler_proc.pid)
            worker.supervise_scheduler(scheduler_proc, tick_seconds,
                                       app.config.get("SCHEDULER_CHECK_SECONDS", 30))
    try:
        # with_scheduler here is RQ's own scheduler: it moves jobs due via enqueue_in/enqueue_at
        # and retries with intervals back onto their queues (RQ takes its own lock per queue).
        return worker.work(burst=burst, with_scheduler=True, max_jobs=max_jobs, logging_level="INFO")
    finally:
        scheduler_proc = worker.scheduler_proc  # the one running now (it may have been restarted)
        if scheduler_proc is not None and scheduler_proc.is_alive():
            scheduler_proc.terminate()
            scheduler_proc.join(timeout=15)
            if scheduler_proc.is_alive():
                scheduler_proc.kill()
                scheduler_proc.join()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m jobs.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--queues", default=",".join(QUEUE_NAMES))
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--no-scheduler", action="store_true", help="do not run the periodic scheduler")
    parser.add_argument("--simple", action="store_true", help="run jobs in this process (no fork)")
    parser.add_argument("--max-jobs", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from core import create_app
    app = create_app(worker=True)
    run_worker(app, [q for q in args.queues.split(",") if q], burst=args.burst,
               with_scheduler=not args.no_scheduler, simple=args.simple, max_jobs=args.max_jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
