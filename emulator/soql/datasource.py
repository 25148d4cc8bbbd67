"""What the SOQL engine needs from a store, and a small in-memory store for tests."""
from __future__ import annotations

from typing import Iterable, Iterator, Optional, Protocol, runtime_checkable


@runtime_checkable
class DataSource(Protocol):
    api_version: str  # e.g. "62.0", used in attributes.url

    def describe(self, name: str) -> Optional[dict]:
        """sObject describe for a case-insensitive name, only fields the user may see; None if unknown."""

    def scan(self, name: str, include_deleted: bool) -> Iterator[dict]:
        """Every stored record of the object, as JSON-native dicts with canonical keys. A stream."""

    def get_many(self, name: str, ids: list[str]) -> dict[str, dict]:
        """Records by 18-character Id; missing ids are left out."""

    def object_for_id(self, record_id: str) -> Optional[str]:
        """Object name for an Id, by key prefix."""


class MemoryDataSource:
    """Describes and records held in dicts. Records must carry an 18-character "Id"."""

    def __init__(self, describes: Iterable[dict], records: Optional[dict[str, list[dict]]] = None,
                 api_version: str = "62.0"):
        self.api_version = api_version
        self._describes = {d["name"].lower(): d for d in describes}
        self._records: dict[str, dict[str, dict]] = {}
        self._prefixes = {d["keyPrefix"]: d["name"] for d in self._describes.values() if d.get("keyPrefix")}
        for name, rows in (records or {}).items():
            for row in rows:
                self.add(name, row)

    def add(self, name: str, record: dict) -> None:
        canon = self._describes[name.lower()]["name"]
        self._records.setdefault(canon.lower(), {})[record["Id"]] = record

    def describe(self, name: str) -> Optional[dict]:
        return self._describes.get(name.lower())

    def scan(self, name: str, include_deleted: bool) -> Iterator[dict]:
        for rec in self._records.get(name.lower(), {}).values():
            if include_deleted or not rec.get("IsDeleted"):
                yield rec

    def get_many(self, name: str, ids: list[str]) -> dict[str, dict]:
        table = self._records.get(name.lower(), {})
        return {i: table[i] for i in ids if i in table}

    def object_for_id(self, record_id: str) -> Optional[str]:
        return self._prefixes.get((record_id or "")[:3])
