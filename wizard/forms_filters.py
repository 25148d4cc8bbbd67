"""The filters form (step 4) as plain posted fields, so it works without JavaScript.

Field names::

    op                      AND | OR           how the top-level rows and groups combine
    groups-K-op             AND | OR           nested group K (K >= 1)
    rows-N-group            0 | K              0 = top level
    rows-N-field            a path from the describe, or "__campaign__"
    rows-N-operator         an operator key (equals, any_of, ...)
    rows-N-value            one value (text, date, number, campaign ID); for "any of" on a
                            text field several values separated by commas
    rows-N-values           several values (multi-select of picklist values)
    action                  save | refresh | add_row-K | add_group | remove_row-N | remove_group-K

Nothing here is trusted: every field path and operator is checked against the describe by
``services.plan_steps.check_filters`` before any SOQL exists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from services.plan_steps import (CAMPAIGN_FIELD, MAX_GROUPS, MAX_ROWS, MULTI_VALUE_OPERATORS,
                                 NO_VALUE_OPERATORS, FilterRowState, FilterState, GroupState,
                                 normalize_operator)

_ROW_KEY = re.compile(r"^rows-(\d{1,3})-field$")
_GROUP_KEY = re.compile(r"^groups-(\d{1,2})-op$")


@dataclass
class FilterAction:
    kind: str  # save, refresh, add_row, add_group, remove_row, remove_group
    index: int | None = None


def parse_action(value: str | None) -> FilterAction:
    text = (value or "save").strip()
    kind, _, index = text.partition("-")
    if kind not in ("save", "refresh", "add_row", "add_group", "remove_row", "remove_group"):
        return FilterAction("refresh")
    try:
        return FilterAction(kind, int(index) if index else None)
    except ValueError:
        return FilterAction("refresh")


def _op(value) -> str:
    return "OR" if str(value or "").strip().upper() == "OR" else "AND"


def parse_filter_form(form) -> FilterState:
    """The posted rows as a ``FilterState`` (group 0 = top level), in posted row order."""
    indices = sorted({int(m.group(1)) for key in form.keys() if (m := _ROW_KEY.match(key))})[:MAX_ROWS]
    group_keys = {k for key in form.keys() if (m := _GROUP_KEY.match(key)) and (k := int(m.group(1))) <= MAX_GROUPS}
    rows_by_group: dict[int, list[FilterRowState]] = {}
    for n in indices:
        try:
            group = max(0, min(MAX_GROUPS, int(form.get(f"rows-{n}-group") or 0)))
        except ValueError:
            group = 0
        rows_by_group.setdefault(group, []).append(_row(form, n))
    count = max([0, *group_keys, *rows_by_group]) + 1
    state = FilterState(op=_op(form.get("op")), groups=[])
    for k in range(count):
        state.groups.append(GroupState(op=_op(form.get(f"groups-{k}-op")) if k else "AND",
                                       rows=rows_by_group.get(k, [])))
    return state


def _row(form, n: int) -> FilterRowState:
    field = (form.get(f"rows-{n}-field") or "").strip()
    operator = normalize_operator(form.get(f"rows-{n}-operator") or "")
    if field == CAMPAIGN_FIELD:
        operator = "in_campaign"
    chosen = [v for v in form.getlist(f"rows-{n}-values") if v != ""]
    # Text is kept exactly as typed (leading and trailing spaces are part of a value: case C05);
    # escaping, not trimming, is what makes it safe.
    text = form.get(f"rows-{n}-value")
    text = text if isinstance(text, str) else ""
    if operator in NO_VALUE_OPERATORS:
        # Not part of the filter, but kept as typed: changing the operator back brings it back.
        return FilterRowState(field, operator, text or (", ".join(chosen) if chosen else None))
    if operator in MULTI_VALUE_OPERATORS:
        if chosen:
            value = chosen
        elif operator == "in_campaign":
            value = text.strip()
        else:
            value = [v.strip() for v in text.split(",") if v.strip()]
        return FilterRowState(field, operator, value)
    return FilterRowState(field, operator, chosen[0] if chosen and not text else text)


def apply_action(state: FilterState, action: FilterAction) -> None:
    """Add or remove rows and groups (the no-JavaScript buttons; htmx posts the same)."""
    if action.kind == "add_row":
        k = action.index or 0
        if 0 <= k < len(state.groups) and len(state.rows) < MAX_ROWS:
            state.groups[k].rows.append(FilterRowState())
    elif action.kind == "add_group":
        if len(state.groups) <= MAX_GROUPS and len(state.rows) < MAX_ROWS:
            state.groups.append(GroupState("OR", [FilterRowState()]))
    elif action.kind == "remove_row" and action.index is not None:
        rows = state.rows
        if 0 <= action.index < len(rows):
            target = rows[action.index]
            for g in state.groups:
                g.rows = [r for r in g.rows if r is not target]
    elif action.kind == "remove_group" and action.index:
        if 0 < action.index < len(state.groups):
            del state.groups[action.index]
