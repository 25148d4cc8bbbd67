"""Invitation jobs (queue "mail") and the periodic invitations tick.

The send jobs are enqueued with RQ retries (``services.invitations.enqueue_send``); the last
attempt (no retries left) is the one that marks the invitation failed. A per-invitation lock
keeps a duplicate job from sending while another is mid-send. A failed invitation is not the
end: the periodic tick sends it again later (``services.invitations.release_failed``).
"""
from __future__ import annotations

from rq import get_current_job

from core.queues import run_lock
from services import invitations

LOCK_SECONDS = 300


def _final_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def send_invitation(invitation_id: int) -> str:
    lock = run_lock(f"invitation:{invitation_id}", ttl=LOCK_SECONDS)
    if not lock.acquire():
        return "busy"
    try:
        return invitations.send(invitation_id, final_attempt=_final_attempt())
    finally:
        lock.release()


def send_reminder(invitation_id: int, number: int) -> str:
    lock = run_lock(f"invitation:{invitation_id}", ttl=LOCK_SECONDS)
    if not lock.acquire():
        return "busy"
    try:
        return invitations.send_reminder(invitation_id, number, final_attempt=_final_attempt())
    finally:
        lock.release()


def tick() -> dict:
    """Periodic: expire, claim and queue due reminders, queue pending sends within the daily cap."""
    result = invitations.tick()
    return {"expired": result.expired, "reminders": len(result.reminders), "stopped": result.stopped,
            "sends": len(result.sends), "retried": result.retried}
