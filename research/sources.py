"""Where "Add participants" can take people from: one tab per source.

Today there is the participant pool. The Salesforce source plugs in by registering a tab whose
page shows the same tabs (``{% include "research/_add_source_tabs.html" %}``, with
``sources``, ``active_source``, ``kind`` and ``target`` in the context)::

    from research.sources import AddSource, register_source
    register_source(AddSource("salesforce", "Salesforce",
        lambda kind, target: url_for("wizard.add_from_salesforce", target_kind=kind, target_id=target.id)))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import url_for


@dataclass(frozen=True)
class AddSource:
    key: str
    label: str
    url: Callable[[str, object], str]  # (kind: "study" | "activity" | "community", target) -> URL


def _pool_url(kind: str, target) -> str:
    return url_for(f"research.{kind}_add_participants", **{f"{kind}_id": target.id})


SOURCES: list[AddSource] = [AddSource("pool", "Participant pool", _pool_url)]


def register_source(source: AddSource) -> None:
    if any(s.key == source.key for s in SOURCES):
        return
    SOURCES.append(source)


def tabs(kind: str, target) -> list[tuple[AddSource, str]]:
    return [(source, source.url(kind, target)) for source in SOURCES]
