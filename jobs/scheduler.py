"""The periodic scheduler: a tick every SCHEDULER_TICK_SECONDS calls the tasks of jobs.periodic.

Every worker runs one, so several schedulers tick at once. Before calling a task, a scheduler
takes a Redis key named after the task and its slot (``floor(now / every)``) with SET NX and an
expiry; only the scheduler that sets it calls the task, so each task runs once per slot however
many schedulers run, and a scheduler that dies costs at most one slot.
"""
from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import redis

from core.queues import KEY_PREFIX, redis_connection

log = logging.getLogger("terapage.scheduler")


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    target: str
    every: int
    func: Callable[[], object]

    def slot(self, now: float) -> int:
        return math.floor(now / self.every)

    def slot_key(self, now: float) -> str:
        return f"{KEY_PREFIX}periodic:{self.name}:{self.slot(now)}"


def resolve(target: str) -> Callable[[], object]:
    module_name, _, attr = target.partition(":")
    if not attr:
        module_name, _, attr = target.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def load_tasks(entries: list[tuple[str, str, int]] | None = None) -> list[PeriodicTask]:
    """Resolve the registry; a listed target that does not import stops the start, loudly."""
    if entries is None:
        from jobs.periodic import PERIODIC
        entries = PERIODIC
    names = [name for name, _, _ in entries]
    if len(names) != len(set(names)):
        raise ValueError(f"duplicate periodic task names in {names}")
    tasks = []
    for name, target, every in entries:
        if int(every) < 1:
            raise ValueError(f"periodic task {name}: interval must be at least 1 second")
        tasks.append(PeriodicTask(name, target, int(every), resolve(target)))
    return tasks


class Scheduler:
    def __init__(self, tasks: list[PeriodicTask], connection: redis.Redis | None = None,
                 app=None, tick_seconds: float = 30):
        self.tasks = tasks
        self.connection = connection or redis_connection()
        self.app = app
        self.tick_seconds = tick_seconds
        self.stop_event = threading.Event()

    def claim(self, task: PeriodicTask, now: float) -> bool:
        """True for exactly one scheduler per task and slot."""
        # The key outlives its slot, so a late tick in the same slot still finds it.
        ttl_ms = int(task.every * 2000) + 1000
        return bool(self.connection.set(task.slot_key(now), str(now), nx=True, px=ttl_ms))

    def tick(self, now: float | None = None) -> list[str]:
        """Call every task whose slot nobody has claimed yet; return the names called."""
        now = time.time() if now is None else now
        called = []
        for task in self.tasks:
            try:
                if not self.claim(task, now):
                    continue
            except redis.RedisError:
                log.exception("scheduler: cannot reach Redis to claim %s", task.name)
                return called
            called.append(task.name)
            try:
                if self.app is not None:
                    with self.app.app_context():
                        try:
                            task.func()
                        finally:
                            from core.extensions import db
                            db.session.remove()
                else:
                    task.func()
            except Exception:  # one failing task must not stop the others or the loop
                log.exception("periodic task %s (%s) failed", task.name, task.target)
        return called

    def run_forever(self) -> None:
        log.info("scheduler: %d periodic task(s), tick every %ss", len(self.tasks), self.tick_seconds)
        while not self.stop_event.is_set():
            started = time.monotonic()
            self.tick()
            self.stop_event.wait(max(0.0, self.tick_seconds - (time.monotonic() - started)))
        log.info("scheduler: stopped")

    def stop(self) -> None:
        self.stop_event.set()
