"""Killing a real ``flask worker`` the way a dying machine would."""
from __future__ import annotations

import os
import signal
import time


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_worker(worker) -> None:
    """SIGKILL the worker, its scheduler and its work horse at once, as a machine or container dying
    would. RQ puts the work horse in a process group of its own (os.setpgrp), so killing the
    worker's group alone would leave the horse running the job to its end."""
    doomed = _descendants(worker.pid)
    os.killpg(worker.pid, signal.SIGKILL)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.wait(timeout=10)
    for pid in doomed:
        _wait_dead(pid)


def _dead(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not _dead(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still alive {timeout}s after SIGKILL")
        time.sleep(0.02)
