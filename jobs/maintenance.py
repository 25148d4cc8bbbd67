"""Housekeeping tasks of the queue layer itself."""
from __future__ import annotations

import time

from core.queues import KEY_PREFIX, redis_connection

HEARTBEAT_KEY = f"{KEY_PREFIX}scheduler:heartbeat"


def record_heartbeat() -> float:
    """Note that a scheduler is alive (an operations page can show how long ago it ticked)."""
    now = time.time()
    redis_connection().set(HEARTBEAT_KEY, repr(now), ex=24 * 3600)
    return now


def last_heartbeat() -> float | None:
    value = redis_connection().get(HEARTBEAT_KEY)
    return float(value) if value else None
