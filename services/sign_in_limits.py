"""Failed sign-ins, counted in Redis, so a password cannot be guessed at full speed.

Two counters, each over a sliding-by-expiry window of ``LOGIN_LOCKOUT_SECONDS``:

* per account (the normalised email, hashed so Redis never holds the address): after
  ``LOGIN_MAX_FAILURES`` failures that email cannot sign in from anywhere until the window ends;
* per client address: after ``LOGIN_MAX_FAILURES_PER_ADDRESS`` failures (any emails) that
  address cannot sign in at all, which stops one machine walking through many accounts.

Unknown emails count like known ones, so the lockout answer reveals nothing about which accounts
exist. A correct password clears the account's counter (not the address's). The check runs
*before* the password is checked, so a locked account costs no hashing either.

If Redis cannot be reached, sign-in is not blocked (the failure is logged): the limit is a
brake on guessing, and the rest of the product already needs Redis to run jobs.
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError

from core.queues import redis_connection
from services.accounts import normalize_login_email

log = logging.getLogger(__name__)

_PREFIX = "signin-failures"


@dataclass(frozen=True)
class Lockout:
    retry_after: int  # seconds

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


def _keys(email: str, address: str | None) -> tuple[str, str]:
    digest = hashlib.sha256(normalize_login_email(email).encode()).hexdigest()
    return f"{_PREFIX}:account:{digest}", f"{_PREFIX}:address:{address or 'unknown'}"


def _limits() -> tuple[int, int, int]:
    cfg = current_app.config
    return (cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"],
            cfg["LOGIN_LOCKOUT_SECONDS"])


def lockout(email: str, address: str | None) -> Lockout | None:
    """The lockout in force for this email or client address, if any."""
    per_account, per_address, window = _limits()
    account_key, address_key = _keys(email, address)
    try:
        conn = redis_connection()
        pipe = conn.pipeline(transaction=False)
        pipe.get(account_key).ttl(account_key).get(address_key).ttl(address_key)
        account_count, account_ttl, address_count, address_ttl = pipe.execute()
    except RedisError:
        log.warning("sign-in limits not checked: Redis unavailable", exc_info=True)
        return None
    waits = []
    if int(account_count or 0) >= per_account:
        waits.append(account_ttl if account_ttl and account_ttl > 0 else window)
    if int(address_count or 0) >= per_address:
        waits.append(address_ttl if address_ttl and address_ttl > 0 else window)
    return Lockout(max(waits)) if waits else None


def record_failure(email: str, address: str | None) -> None:
    """Count one failed sign-in against the email and the client address."""
    _, _, window = _limits()
    try:
        pipe = redis_connection().pipeline(transaction=True)
        for key in _keys(email, address):
            pipe.set(key, 0, ex=window, nx=True)  # the window starts at the first failure
            pipe.incr(key)                        # (INCR keeps the expiry)
        pipe.execute()
    except RedisError:
        log.warning("failed sign-in not counted: Redis unavailable", exc_info=True)


def record_success(email: str) -> None:
    """A correct password: the account's failures are forgotten."""
    account_key, _ = _keys(email, None)
    try:
        redis_connection().delete(account_key)
    except RedisError:
        log.warning("sign-in failures not cleared: Redis unavailable", exc_info=True)


def clear_all() -> None:
    """Forget every counter (tests; an operator after an incident)."""
    conn = redis_connection()
    for key in conn.scan_iter(f"{_PREFIX}:*", count=500):
        conn.delete(key)
