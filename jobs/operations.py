"""Operations jobs: the incident sweep, the token health check and the outcome purge.

The periodic entries (jobs.periodic) only enqueue; the work runs on a worker ("default" queue),
so a slow Salesforce or SMTP server never stalls the scheduler tick. A fixed job id per task
keeps at most one of each queued.
"""
from __future__ import annotations

from core.queues import enqueue
from services import notifications, operations, outcome_retention


def _enqueue_once(func: str, job_id: str) -> str:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from core.queues import redis_connection

    try:
        job = Job.fetch(job_id, connection=redis_connection())
        if job.get_status(refresh=True) in ("queued", "started", "deferred", "scheduled"):
            return job_id
    except NoSuchJobError:
        pass
    return enqueue(func, queue="default", job_id=job_id, result_ttl=60, failure_ttl=24 * 3600).id


def enqueue_incident_sweep() -> str:
    """Periodic (every minute): mail unreported incidents, close recovered ones."""
    return _enqueue_once("jobs.operations:sweep_incidents", "operations-sweep-incidents")


def enqueue_token_checks() -> str:
    """Periodic: check each connected org's token (warns before a scheduled sync would fail)."""
    return _enqueue_once("jobs.operations:check_tokens", "operations-check-tokens")


def enqueue_outcome_purge() -> str:
    """Periodic: delete record outcomes older than OUTCOME_RETENTION_DAYS."""
    return _enqueue_once("jobs.operations:purge_outcomes", "operations-purge-outcomes")


def sweep_incidents() -> dict:
    return notifications.sweep()


def check_tokens() -> dict:
    return operations.check_tokens()


def purge_outcomes() -> int:
    return outcome_retention.purge_old_outcomes()
