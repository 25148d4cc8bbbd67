"""Binding a parsed query to the org's describes: names resolved, types checked."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .errors import error_at, malformed
from .nodes import CountCall, FieldPath, FieldsCall, Query, SubQuery

MAX_RELATIONSHIP_DEPTH = 5

_NO_COLUMN = ("No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, "
              "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
              "describe call for the appropriate names.")
_NO_RELATIONSHIP = ("Didn't understand relationship '{name}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.")
_NO_CHILD_RELATIONSHIP = ("Didn't understand relationship '{name}' in FROM part of query call. If you are "
                          "attempting to use a custom relationship, be sure to append the '__r' after the custom "
                          "relationship name. Please reference your WSDL or the describe call for the "
                          "appropriate names.")
_NO_TYPE = ("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure "
            "to append the '__c' after the entity name. Please reference your WSDL or the describe call for "
            "the appropriate names.")


class ObjectInfo:
    """One describe, indexed by lower-case field and relationship names."""

    def __init__(self, describe: dict):
        self.describe = describe
        self.name: str = describe["name"]
        self.fields = {f["name"].lower(): f for f in describe.get("fields", [])}
        self.parents = {f["relationshipName"].lower(): f for f in describe.get("fields", [])
                        if f.get("type") == "reference" and f.get("relationshipName")}
        self.children = {c["relationshipName"].lower(): c for c in describe.get("childRelationships", [])
                         if c.get("relationshipName")}


class Schema:
    def __init__(self, ds):
        self.ds = ds
        self._cache: dict[str, Optional[ObjectInfo]] = {}

    def get(self, name: str) -> Optional[ObjectInfo]:
        key = name.lower()
        if key not in self._cache:
            d = self.ds.describe(name)
            self._cache[key] = ObjectInfo(d) if d else None
        return self._cache[key]


@dataclass
class Step:
    """One parent hop: the reference field on the current object and the objects it can point to."""
    ref_field: str          # canonical reference field name, e.g. "AccountId"
    relationship: str       # canonical relationship name, e.g. "Account"
    targets: list[str]      # canonical object names; several for polymorphic lookups


@dataclass
class BoundPath:
    written: str
    steps: list[Step]
    name: str               # canonical name of the final field
    field: dict             # describe entry of the final field
    pos: tuple

    @property
    def key(self) -> tuple:
        return tuple(s.relationship.lower() for s in self.steps) + (self.name.lower(),)


@dataclass
class BoundChild:
    relationship: str       # canonical child relationship name, the key in the parent record
    child_field: str        # reference field on the child pointing at the parent
    query: "BoundQuery"


@dataclass
class BoundQuery:
    query: Query
    obj: ObjectInfo
    columns: list = field(default_factory=list)   # BoundPath | BoundChild, in SELECT order
    count_all: bool = False                        # SELECT COUNT()
    aggregates: list = field(default_factory=list)  # COUNT(field) items: BoundPath
    order_by: list = field(default_factory=list)    # (BoundPath, descending, nulls_last)


def bind(query: Query, schema: Schema, *, parent: Optional[ObjectInfo] = None) -> BoundQuery:
    text = query.text
    if parent is None:
        obj = schema.get(query.sobject)
        if obj is None:
            raise error_at("INVALID_TYPE", text, query.sobject_pos, _NO_TYPE.format(name=query.sobject))
    else:
        rel = parent.children.get(query.sobject.lower())
        obj = schema.get(rel["childSObject"]) if rel else None
        if obj is None:
            raise error_at("INVALID_TYPE", text, query.sobject_pos,
                           _NO_CHILD_RELATIONSHIP.format(name=query.sobject))
    bound = BoundQuery(query, obj)
    seen: dict[tuple, str] = {}
    plain_fields = []
    for item in query.select:
        if isinstance(item, CountCall):
            if item.field is None:
                bound.count_all = True
            else:
                bound.aggregates.append(resolve_path(item.field, obj, schema, text))
            continue
        if isinstance(item, FieldsCall):
            # every field the user can see (field-level security already hid the others), in the
            # describe's order; STANDARD and CUSTOM split them by the describe's "custom" flag
            for f in obj.describe["fields"]:
                if item.kind != "ALL" and bool(f.get("custom")) != (item.kind == "CUSTOM"):
                    continue
                path = BoundPath(f["name"], [], f["name"], f, item.pos)
                if path.key in seen:
                    raise error_at("INVALID_FIELD", text, item.pos, f"duplicate field selected: {f['name']}")
                seen[path.key] = f["name"]
                bound.columns.append(path)
            plain_fields.append(item)
            continue
        if isinstance(item, SubQuery):
            if parent is not None:
                raise malformed(text, item.pos, "Nesting of child relationship queries is not supported")
            rel = obj.children.get(item.query.sobject.lower())
            child = bind(item.query, schema, parent=obj)
            key = ("(child)", item.query.sobject.lower())
            if key in seen:
                raise error_at("INVALID_FIELD", text, item.pos,
                               f"duplicate field selected: {item.query.sobject}")
            seen[key] = item.query.sobject
            bound.columns.append(BoundChild(rel["relationshipName"], rel["field"], child))
            continue
        path = resolve_path(item, obj, schema, text)
        if path.key in seen:
            raise error_at("INVALID_FIELD", text, item.pos, f"duplicate field selected: {item.text}")
        seen[path.key] = item.text
        bound.columns.append(path)
        plain_fields.append(item)
    if bound.aggregates and plain_fields:
        first = plain_fields[0]
        raise malformed(text, first.pos, f"Field must be grouped or aggregated: {first.text}")
    for o in query.order_by:
        path = resolve_path(o.field, obj, schema, text)
        if path.field.get("type") in ("address", "location") or path.field.get("sortable") is False:
            raise error_at("INVALID_FIELD", text, o.field.pos,
                           f"field '{path.name}' can not be sorted in a query call")
        bound.order_by.append((path, o.descending, o.nulls_last))
    return bound


def resolve_path(fp: FieldPath, obj: ObjectInfo, schema: Schema, text: str) -> BoundPath:
    parts = list(fp.parts)
    # "SELECT Contact.Name FROM Contact" names the queried object first; Salesforce allows it.
    if len(parts) > 1 and parts[0].lower() == obj.name.lower() and parts[0].lower() not in obj.parents:
        parts = parts[1:]
    if len(parts) - 1 > MAX_RELATIONSHIP_DEPTH:
        raise malformed(text, fp.pos, "SOQL statements cannot query more than 5 levels of relationships")
    current = [obj]
    steps: list[Step] = []
    for hop in parts[:-1]:
        ref = None
        for o in current:
            ref = o.parents.get(hop.lower())
            if ref:
                break
        if ref is None:
            raise error_at("INVALID_FIELD", text, fp.pos, _NO_RELATIONSHIP.format(name=hop))
        targets = [t for t in (schema.get(n) for n in ref.get("referenceTo") or []) if t is not None]
        if not targets:
            raise error_at("INVALID_FIELD", text, fp.pos, _NO_RELATIONSHIP.format(name=hop))
        steps.append(Step(ref["name"], ref["relationshipName"], [t.name for t in targets]))
        current = targets
    last = parts[-1]
    for o in current:
        f = o.fields.get(last.lower())
        if f is not None:
            return BoundPath(fp.text, steps, f["name"], f, fp.pos)
    entity = current[0].name
    raise error_at("INVALID_FIELD", text, fp.pos, _NO_COLUMN.format(name=last, entity=entity))
