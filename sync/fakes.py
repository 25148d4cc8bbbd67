"""Stand-ins for tests and benchmarks: a lazily paged source and generated records.

``PagedSource`` behaves like the client layer's source adapter: it applies the incremental
lower bound (``>=``, with look-back), orders by the cursor field then Id, serves pages of up to
``page_size`` records, and raises the engine's ``Source*`` errors on the pages told to fail.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone

from sync.cursor import DEFAULT_LOOK_BACK, lower_bound, parse_datetime
from sync.ids import checksum

C13_START = datetime(2024, 5, 1, tzinfo=timezone.utc)


def sf_datetime(instant: datetime) -> str:
    """Salesforce's wire format: ``2024-05-01T00:33:19.000+0000``."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def generated_contact(n: int, start: datetime = C13_START) -> dict:
    """Record ``n`` of the generated set used by cases C13, C16 and C17."""
    record_id = f"003Dn00000{n:05d}"
    record_id += checksum(record_id)
    return {
        "attributes": {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{record_id}"},
        "Id": record_id,
        "FirstName": "Test",
        "LastName": f"Person{n}",
        "Email": f"p{n:05d}@example.org",
        "Consent_Status__c": "Granted",
        "SystemModstamp": sf_datetime(start + timedelta(seconds=n - 1)),
    }


def generated_contacts(count: int, start: datetime = C13_START) -> list[dict]:
    return [generated_contact(n, start) for n in range(1, count + 1)]


class PagedSource:
    def __init__(self, records: Sequence[dict], *, page_size: int = 2000,
                 cursor: datetime | None = None, look_back: timedelta = DEFAULT_LOOK_BACK,
                 cursor_field: str = "SystemModstamp",
                 failures: dict[int, Exception] | None = None):
        self.records = records
        self.page_size = page_size
        self.bound = lower_bound(cursor, look_back)
        self.cursor_field = cursor_field
        self.failures = failures or {}
        self.pages_served = 0
        self.requests = 0  # including the failed ones

    def _matching(self) -> list[dict]:
        def stamp(record):
            return parse_datetime(record[self.cursor_field])

        rows = [r for r in self.records if self.bound is None or stamp(r) >= self.bound]
        return sorted(rows, key=lambda r: (stamp(r), r["Id"]))

    def __iter__(self) -> Iterator[list[dict]]:
        rows = self._matching()
        for number, start in enumerate(range(0, len(rows), self.page_size), start=1):
            self.requests += 1
            if number in self.failures:
                raise self.failures[number]
            self.pages_served += 1
            yield [dict(r) for r in rows[start:start + self.page_size]]


class ListLog:
    """A Log that keeps its events (for tests)."""

    def __init__(self):
        self.events: list[tuple[str, str, dict]] = []

    def event(self, message: str, *, level: str = "info", **data) -> None:
        self.events.append((level, message, data))
