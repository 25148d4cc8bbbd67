"""Describes synthesised from loaded data, for objects and fields the org doesn't define.

Types are inferred from the values and the names: ``@refs`` make references (to the type of the
referenced records, so Guest_Review__c.Contact__c -> Contact with relationship Contact__r),
booleans, numbers, dates, datetimes, times, e-mail / phone / URL by name, multi-select picklists
from ``a;b`` values, picklists from few repeated short values, long text areas from long values.
"""
from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache

from .schema import catalog as cat

STANDARD_PREFIXES = {"Opportunity": "006", "Case": "500", "Task": "00T", "Event": "00U",
                     "AccountContactRelation": "07k", "RecordType": "012", "Product2": "01t", "Asset": "02i",
                     "Individual": "0PK", "Contract": "800", "Order": "801", "Pricebook2": "01s"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_REF = re.compile(r"^@([\w\-]+)$")
_PICKLIST_HINTS = ("status", "type", "category", "level", "stage", "source", "industry", "rating", "priority",
                   "reason", "origin", "tier", "interest", "gender", "salutation")
_CURRENCY_HINTS = ("price", "amount", "cost", "revenue", "msrp", "budget", "fee")
_EXTRA_STANDARD = ["CloseDate", "StageName", "Amount", "Probability", "Subject", "Status", "Priority", "Origin",
                   "Reason", "Type", "WhatId", "WhoId", "ActivityDate", "ContactId", "AccountId", "ParentId",
                   "Description", "NumberOfEmployees", "AnnualRevenue", "BudgetedCost", "ActualCost",
                   "ExpectedRevenue", "IsActive", "StartDate", "EndDate", "Roles", "IsDirect", "Name",
                   "DeveloperName", "SobjectType", "RecordTypeId", "CaseNumber", "SuppliedEmail", "ForecastCategoryName"]


@lru_cache(maxsize=1)
def _known_names() -> dict[str, str]:
    names = {}
    for d in cat.base()["describes"].values():
        for f in d["fields"]:
            names.setdefault(f["name"].lower(), f["name"])
    for n in _EXTRA_STANDARD:
        names.setdefault(n.lower(), n)
    return names


def canonical_name(key: str) -> str:
    """API-name casing for a field written in any case in a data file."""
    known = _known_names().get(key.lower())
    if known:
        return known
    suffix = ""
    m = re.search(r"(__c|__r|__s|__Latitude__s|__Longitude__s)$", key, re.I)
    if m:
        suffix = m.group(0)
        key = key[: -len(suffix)]
        suffix = {"__c": "__c", "__r": "__r", "__s": "__s"}.get(suffix.lower(), suffix)
    parts = key.split("_")
    return "_".join(p[:1].upper() + p[1:] for p in parts) + suffix


def lookup_field_name(describe: dict, key: str) -> str:
    for f in describe["fields"]:
        if f["type"] == "reference" and (f["relationshipName"] or "").lower() == key.lower():
            return f["name"]
    return key[:-3] + "__c" if key.lower().endswith("__r") else canonical_name(key) + "Id"


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) or (isinstance(v, str) and _NUMBER.match(v))


def infer_field(name: str, values: list, ref_targets: list[str]) -> dict:
    n = name.lower()
    label = cat.label_for(name)
    if ref_targets:
        targets = sorted(set(ref_targets))
        rel = name[:-3] + "__r" if name.endswith("__c") else (name[:-2] if name.endswith("Id") else None)
        return cat.reference_field(name, targets, label.removesuffix(" ID") if not name.endswith("__c") else label,
                                   rel)
    vals = [v for v in values if v is not None and v != ""]
    if "__latitude__s" in n or "__longitude__s" in n:
        return cat.make_field(name, "double", label, precision=18, scale=15)
    if vals and all(isinstance(v, bool) for v in vals):
        return cat.make_field(name, "boolean", label)
    if "email" in n:
        return cat.make_field(name, "email", label)
    if "phone" in n or "mobile" in n or n.endswith("fax") or n.endswith("fax__c"):
        return cat.make_field(name, "phone", label)
    if "url" in n or "website" in n or "picture" in n or "photo" in n:
        return cat.make_field(name, "url", label)
    identifier = re.search(r"(^|_)(external_?)?id(__c)?$|number|code|zip|postal|sku|vin", n)
    if identifier and vals and all(isinstance(v, str) for v in vals):
        return cat.make_field(name, "string", label, length=255, externalId="external" in n,
                              idLookup="external" in n)
    if vals and all(_num(v) for v in vals):
        if any(h in n for h in _CURRENCY_HINTS):
            return cat.make_field(name, "currency", label, precision=18, scale=2)
        scale = max((len(str(v).split(".")[1]) if "." in str(v) else 0) for v in vals)
        return cat.make_field(name, "double", label, precision=18, scale=min(scale, 8))
    strs = [str(v) for v in vals]
    if strs and all(_DATE.match(s) for s in strs):
        return cat.make_field(name, "date", label)
    if strs and all(_DATETIME.match(s) for s in strs):
        return cat.make_field(name, "date" if n.endswith("date") else "datetime", label)
    if strs and all(_TIME.match(s) for s in strs):
        return cat.make_field(name, "time", label)
    longest = max((len(s) for s in strs), default=0)
    if any(";" in s for s in strs) and longest < 1000 and all(len(p) <= 80 for s in strs for p in s.split(";")):
        options = sorted({p for s in strs for p in s.split(";") if p})
        return cat.make_field(name, "multipicklist", label, picklistValues=cat.picklist_values(options),
                              groupable=False, sortable=False)
    distinct = sorted(set(strs))
    if strs and longest <= 40 and (any(h in n for h in _PICKLIST_HINTS) and len(distinct) <= 40
                                   or (len(distinct) <= 12 and len(strs) >= 3 * len(distinct))):
        return cat.make_field(name, "picklist", label, picklistValues=cat.picklist_values(distinct))
    if longest > 255 or "description" in n or "comment" in n or "\n" in "".join(strs):
        return cat.make_field(name, "textarea", label, length=32768 if name.endswith("__c") else 32000)
    return cat.make_field(name, "string", label, length=255)


def _new_describe(catalog, name: str) -> dict:
    if name == "RecordType":
        return cat.new_object("RecordType", "012", "Record Type", owner=False, fields=[
            cat.name_field("Record Type Name", 80),
            cat.make_field("DeveloperName", "string", "Record Type Name", length=80),
            cat.make_field("SobjectType", "picklist", "SObject Type Name"),
            cat.make_field("IsActive", "boolean", "Active"),
            cat.make_field("Description", "string", length=255),
        ])
    if name.endswith("__c"):
        return cat.custom_object(name, catalog.next_custom_prefix())
    prefix = STANDARD_PREFIXES.get(name) or catalog.next_custom_prefix()
    return cat.new_object(name, prefix)


def ensure_schema(store, org: str, pending: list, by_ref: dict) -> list[str]:
    """Create or extend describes so every object and field in ``pending`` exists. Returns changed objects."""
    catalog = store.catalog(org)
    values: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    refs: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    lookups: dict[str, dict[str, str]] = defaultdict(dict)
    canonical_obj: dict[str, str] = {}
    for p in pending:
        obj = canonical_obj.setdefault(p.obj.lower(), p.obj)
        for k, v in p.values.items():
            m = _REF.match(v) if isinstance(v, str) else None
            if m and m.group(1) in by_ref:
                refs[obj][k].append(by_ref[m.group(1)].obj)
            else:
                values[obj][k].append(v)
        for k, v in p.lookups.items():
            lookups[obj][k] = v["attributes"]["type"]
    changed: set[str] = set()
    for parent_type in {t for m in lookups.values() for t in m.values()}:
        if catalog.get(parent_type) is None:
            catalog.put(_new_describe(catalog, parent_type))
            changed.add(parent_type)
    for obj in canonical_obj.values():
        d = catalog.get(obj)
        if d is None:
            d = _new_describe(catalog, obj)
            catalog.put(d)
            changed.add(d["name"])
        existing = {f["name"].lower() for f in d["fields"]}
        children = {(r["relationshipName"] or "").lower() for r in d["childRelationships"]}
        keys = {k.lower(): k for k in list(values[obj]) + list(refs[obj])}
        for low, key in keys.items():
            if low in existing or low in children:
                continue
            name = canonical_name(key)
            if name.lower() in existing:
                continue
            targets = [catalog.get(t)["name"] if catalog.get(t) else t for t in refs[obj].get(key, [])]
            new = infer_field(name, values[obj].get(key, []), targets)
            cat._replace_or_append(d["fields"], new)
            existing.add(name.lower())
            changed.add(d["name"])
        for key, parent_type in lookups[obj].items():
            fname = lookup_field_name(d, key)
            if fname.lower() not in existing:
                rel = key if not key.endswith("__c") else key[:-3] + "__r"
                cat._replace_or_append(d["fields"], cat.reference_field(fname, [catalog.get(parent_type)["name"]],
                                                                        cat.label_for(key), rel))
                existing.add(fname.lower())
                changed.add(d["name"])
    for name in list(changed):
        catalog.link_children(name)
        d = catalog.get(name)
        for f in d["fields"]:
            for t in f["referenceTo"]:
                if catalog.get(t) is not None:
                    changed.add(catalog.get(t)["name"])
    catalog._index()
    for name in changed:
        store.save_describe(org, catalog.get(name))
    return sorted(changed)


def find_or_create_parent(store, org: str, child_obj: str, value: dict) -> str:
    ptype = store.catalog(org).get(value["attributes"]["type"])["name"]
    match = {k: v for k, v in value.items() if k != "attributes"}
    if ptype == "RecordType":
        match.setdefault("SobjectType", child_obj)
    for rec in store.scan(org, ptype, False):
        if all(str(rec.get(canonical_name(k), "")).lower() == str(v).lower() for k, v in match.items()):
            return rec["Id"]
    fields = {canonical_name(k): v for k, v in match.items()}
    if ptype == "RecordType":
        fields.setdefault("DeveloperName", re.sub(r"\W+", "_", str(fields.get("Name", "Type"))))
        fields.setdefault("IsActive", True)
    return store.insert(org, ptype, fields, validate=False)
