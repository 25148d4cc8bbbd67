"""Load Salesforce CLI data-tree files and plans into an org.

Everything passed in one call is one import: every record gets its Id first, then ``@referenceId``
values are resolved against all of them, so refs into the same file or a later file work (as the
current CLI's deferral does), nested children get their parent lookup, and a parent-relationship
object such as ``"RecordType": {"Name": "food"}`` becomes ``RecordTypeId``. Objects and fields that
the org doesn't have get describes synthesised from the data (see :mod:`emulator.synth`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import synth
from .store import Store

_REF_PATTERN = re.compile(r"^@(\w+Ref\d+)$")
_ANY_REF = re.compile(r"^@([\w\-]+)$")


class LoadError(ValueError):
    pass


class UnresolvableRefsError(LoadError):
    pass


@dataclass
class Pending:
    obj: str
    ref: str | None
    values: dict
    source: str
    parent: tuple[str, str] | None = None      # (lookup field, parent referenceId key)
    lookups: dict = field(default_factory=dict)  # field -> {"type", values...}: parent-relationship objects
    id: str = ""


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as e:
        raise LoadError(f"cannot read {path}: {e}") from e


def expand(paths: list[str]) -> list[Path]:
    """Plan files become their data files in plan order; data files stay as they are."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        data = _read(path)
        if isinstance(data, list):
            for step in data:
                if not isinstance(step, dict) or "files" not in step:
                    raise LoadError(f"{path}: plan steps need 'files'")
                for f in step["files"]:
                    name = f["file"] if isinstance(f, dict) else f
                    out.append(path.parent / name)
        elif isinstance(data, dict) and "records" in data:
            out.append(path)
        else:
            raise LoadError(f"{path}: neither a plan (JSON array) nor a data file ({{'records': [...]}})")
    return out


def _collect(records: list, source: str, pending: list[Pending], parent: tuple[str, str] | None = None):
    for rec in records:
        attrs = rec.get("attributes") or {}
        obj = attrs.get("type")
        if not obj:
            raise LoadError(f"{source}: a record has no attributes.type")
        item = Pending(obj, attrs.get("referenceId"), {}, source, parent)
        pending.append(item)
        for key, value in rec.items():
            if key == "attributes":
                continue
            if isinstance(value, dict) and isinstance(value.get("records"), list):
                item.ref = item.ref or f"_nested_parent_{len(pending)}"
                _collect(value["records"], source, pending, parent=(key, item.ref))
            elif isinstance(value, dict) and "attributes" in value:
                item.lookups[key] = value
            else:
                item.values[key] = value


def load_paths(store: Store, org: str, paths: list[str]) -> dict[str, int]:
    files = expand(paths)
    pending: list[Pending] = []
    for f in files:
        data = _read(f)
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise LoadError(f"{f}: not a data file")
        _collect(data["records"], f.name, pending)
    return load_records(store, org, pending)


def load_records(store: Store, org: str, pending: list[Pending]) -> dict[str, int]:
    catalog = store.catalog(org)
    by_ref: dict[str, Pending] = {}
    for p in pending:
        if p.ref:
            by_ref[p.ref] = p

    # nested children: the parent's child relationship names the lookup field
    for p in pending:
        if p.parent is None:
            continue
        rel_name, parent_ref = p.parent
        parent = by_ref[parent_ref]
        pd = catalog.get(parent.obj)
        fld = None
        if pd is not None:
            rel = next((r for r in pd["childRelationships"]
                        if (r["relationshipName"] or "").lower() == rel_name.lower()
                        and r["childSObject"].lower() == p.obj.lower()), None)
            fld = rel["field"] if rel else None
        fld = fld or (parent.obj[:-3] + "__c" if parent.obj.endswith("__c") else parent.obj + "Id")
        p.values[fld] = "@" + parent_ref

    # every @ref must resolve before anything is written
    problems = []
    for p in pending:
        for k, v in p.values.items():
            if isinstance(v, str):
                m = _ANY_REF.match(v)
                if m and m.group(1) in by_ref:
                    continue
                if _REF_PATTERN.match(v) or (m and v.startswith("@") and v[1:].endswith("Ref")):
                    problems.append(f"{v} in {p.source} ({p.obj}.{k})")
    if problems:
        raise UnresolvableRefsError("Unresolvable references: " + "; ".join(sorted(set(problems))[:20]))

    # schema first: create or extend describes for what the data carries
    synth.ensure_schema(store, org, pending, by_ref)

    # ids up front, by object key prefix
    order: list[str] = []
    per_obj: dict[str, list[Pending]] = {}
    for p in pending:
        d = catalog.get(p.obj)
        p.obj = d["name"]
        if p.obj not in per_obj:
            order.append(p.obj)
        per_obj.setdefault(p.obj, []).append(p)
    for obj, items in per_obj.items():
        ids = store.new_ids(org, catalog.get(obj)["keyPrefix"], len(items))
        for p, rid in zip(items, ids):
            p.id = rid

    # parent-relationship objects (RecordType by Name ...): find or create the parent, set <Key>Id
    for p in pending:
        for key, value in p.lookups.items():
            p.values[synth.lookup_field_name(catalog.get(p.obj), key)] = synth.find_or_create_parent(
                store, org, p.obj, value)

    now = store.clock.now()
    user_id = store.orgs[org].users[0].id
    counts: dict[str, int] = {}
    for obj in order:
        d = catalog.get(obj)
        fields = {f["name"].lower(): f["name"] for f in d["fields"]}
        rows = []
        for p in per_obj[obj]:
            values = {}
            for k, v in p.values.items():
                if isinstance(v, str):
                    m = _ANY_REF.match(v)
                    if m and m.group(1) in by_ref:
                        v = by_ref[m.group(1)].id
                values[fields.get(k.lower(), synth.canonical_name(k))] = v
            if obj == "CampaignMember":
                store.insert(org, obj, values, record_id=p.id, validate=False, now=now)
                continue
            rows.append(store.prepare(org, d, values, now=now, user_id=user_id, record_id=p.id, validate=False))
        if rows:
            store.bulk_insert(org, obj, rows)
        counts[obj] = len(per_obj[obj])
    return counts
