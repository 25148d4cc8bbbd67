"""The emulator's clock: real time plus an adjustable offset, at Salesforce's one-second resolution."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone


def sf_datetime(dt: datetime) -> str:
    """Salesforce's datetime rendering: UTC, milliseconds always ``.000``, offset ``+0000``."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ".000+0000"


def parse_sf_datetime(text: str) -> datetime:
    """Accepts the Salesforce rendering and ISO-8601 forms (``Z``, ``+hh:mm``, ``+hhmm``, fractions)."""
    t = text.strip().replace(" ", "+") if "T" in text else text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    if len(t) >= 5 and t[-5] in "+-" and t[-3] != ":" and t[-4:].isdigit():
        t = t[:-2] + ":" + t[-2:]
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def sf_date(d: date) -> str:
    return d.strftime("%Y-%m-%d")


class Clock:
    def __init__(self):
        self._offset = timedelta()
        self._frozen: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            base = self._frozen if self._frozen is not None else datetime.now(timezone.utc) + self._offset
        return base.replace(microsecond=0)

    def advance(self, seconds: float):
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def set(self, when: datetime | None, frozen: bool = False):
        """Jump to ``when`` (None: back to real time); frozen keeps time still until moved again."""
        with self._lock:
            if when is None:
                self._offset, self._frozen = timedelta(), None
                return
            when = when.astimezone(timezone.utc)
            if frozen:
                self._frozen = when
            else:
                self._frozen = None
                self._offset = when - datetime.now(timezone.utc)

    def state(self) -> dict:
        return {"now": sf_datetime(self.now()), "frozen": self._frozen is not None,
                "offset_seconds": self._offset.total_seconds()}
