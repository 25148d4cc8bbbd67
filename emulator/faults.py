"""Fault injection for tests. Off unless asked for; rules are per org.

A rule is a JSON object. Common keys:

* ``type`` (required), one of
  ``error`` (answer ``status`` 500 / 503 with the matching Salesforce error body),
  ``limit_exceeded`` (403 REQUEST_LIMIT_EXCEEDED), ``invalid_locator`` (400 INVALID_QUERY_LOCATOR on
  a query-more call), ``slow`` (sleep ``seconds`` then answer normally), ``page_timeout`` (a query
  page that sleeps ``seconds``, default 30, longer than any sane client timeout), ``truncate_page``
  (a query page whose body is cut off mid-JSON), ``done_without_next`` (a query page saying
  ``done: false`` with no ``nextRecordsUrl``), ``expire_sessions`` (expire every session of the
  call's org now, then answer that call 401 INVALID_SESSION_ID, as if the token had lapsed mid-run;
  refresh tokens keep working).
* ``org``: org key (default: every org).
* ``nth``: fire on the Nth matching call after the rule was added (1-based); ``from_call``: fire on
  every matching call from the Nth on; ``share``: fire on that fraction of matching calls (seeded
  by ``seed``); none of them: fire on every matching call.
* ``times``: stop after firing this many times (``nth`` implies 1).
* ``page``: for query rules, which page (1 = the first ``query`` response, 2 = the first
  ``nextRecordsUrl`` fetch ...); default any page the rule's type applies to.
* ``path``: only calls whose path contains this text.

``POST /__emulator/expire-sessions`` does the same as an ``expire_sessions`` rule at once, without a call.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

TYPES = {"error", "limit_exceeded", "invalid_locator", "slow", "page_timeout", "truncate_page",
         "done_without_next", "expire_sessions"}
QUERY_TYPES = {"invalid_locator", "page_timeout", "truncate_page", "done_without_next"}


class FaultError(ValueError):
    pass


@dataclass
class Rule:
    spec: dict
    seen: int = 0
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def type(self) -> str:
        return self.spec["type"]

    def applies(self, org_key: str, path: str, page: int | None) -> bool:
        s = self.spec
        if s.get("org") not in (None, org_key):
            return False
        if s.get("path") and s["path"] not in path:
            return False
        if self.type in QUERY_TYPES:
            if page is None:
                return False
            if self.type == "invalid_locator" and page < 2:
                return False
            if s.get("page") is not None and int(s["page"]) != page:
                return False
        return True

    def fire(self) -> bool:
        s = self.spec
        self.seen += 1
        times = s.get("times", 1 if "nth" in s else None)
        if times is not None and self.fired >= int(times):
            return False
        if "nth" in s:
            hit = self.seen == int(s["nth"])
        elif "from_call" in s:
            hit = self.seen >= int(s["from_call"])
        elif "share" in s:
            hit = self.rng.random() < float(s["share"])
        else:
            hit = True
        if hit:
            self.fired += 1
        return hit

    def public(self) -> dict:
        return {**self.spec, "seen": self.seen, "fired": self.fired}


def validate(spec: dict) -> dict:
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise FaultError(f"fault type must be one of {sorted(TYPES)}")
    def number(key, kind=int, default=None):
        value = spec.get(key, default)
        try:
            if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return kind(value)
        except (TypeError, ValueError):
            raise FaultError(f"{key} must be a number, not {value!r}") from None

    if spec["type"] == "error" and number("status", default=503) not in (500, 502, 503):
        raise FaultError("error faults answer 500, 502 or 503")
    for k in ("nth", "from_call", "times", "page"):
        if k in spec and number(k) < 1:
            raise FaultError(f"{k} must be >= 1")
    if "share" in spec and not 0 <= number("share", float) <= 1:
        raise FaultError("share must be within 0..1")
    for k in ("seconds", "seed"):
        if k in spec:
            number(k, float)
    return dict(spec)


class Faults:
    def __init__(self):
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(self, spec: dict) -> dict:
        spec = validate(spec)
        rule = Rule(spec, rng=random.Random(spec.get("seed", 0)))
        with self._lock:
            self._rules.append(rule)
        return rule.public()

    def clear(self, org_key: str | None = None):
        with self._lock:
            self._rules = [r for r in self._rules if org_key is not None and r.spec.get("org") not in (None, org_key)]

    def list(self) -> list[dict]:
        with self._lock:
            return [r.public() for r in self._rules]

    def check(self, org_key: str, path: str, kinds: set[str], page: int | None = None) -> list[dict]:
        """Rules of the given kinds that fire for this call (each matching rule counts the call)."""
        out = []
        with self._lock:
            for r in self._rules:
                if r.type in kinds and r.applies(org_key, path, page) and r.fire():
                    out.append(r.spec)
        return out
