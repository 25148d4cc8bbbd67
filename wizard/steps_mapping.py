"""Step 3: Mapping. Salesforce fields → participant fields, custom attributes and consent.

One form, several buttons (``action``): save (default), add_attribute, remove_attribute:<i>,
consent_values (re-offer the values of the chosen consent field) and preview (a few records
read through the mapping). Without JavaScript each is a plain post that re-renders the form
with what was typed; htmx posts the same form and swaps the panel.
"""
from __future__ import annotations

from flask import request

from core.security import requires
from core.tenancy import current_workspace
from models import ImportPlan
from services import catalog
from services import plans as plan_service
from wizard import bp, load_plan, render_step, step_done

PREVIEW_ROWS = 5


def _values_from_mapping(mapping: dict) -> dict:
    """The stored mapping as the form's values (select name → path)."""
    fields = (mapping or {}).get("fields") or {}
    values: dict = {}
    for key, _, _ in plan_service.PARTICIPANT_FIELDS:
        paths = fields.get(key) or []
        values[key] = paths[0] if paths else ""
        if key in plan_service.FALLBACK_FIELDS:
            values[f"{key}_fallback"] = paths[1] if len(paths) > 1 else ""
    country = (mapping or {}).get("country") or []
    values["country"] = country[0] if country else ""
    values["attributes"] = [(a.get("name", ""), a.get("path", "")) for a in (mapping or {}).get("attributes") or []]
    rule = (mapping or {}).get("consent_rule") or {}
    values["consent_in"] = list(rule.get("opted_in") or [])
    values["consent_out"] = list(rule.get("opted_out") or [])
    values["opt_out_flags"] = list(rule.get("opt_out_flags") or [])
    values[plan_service.CONSENT_SHOWN_FOR] = values["consent"]
    return values


# What the form echoes back is bounded whatever is posted: a value longer than any Salesforce
# field path or attribute name is cut (the validation still sees it is too long), and rows or
# values beyond what a mapping may hold are not read (one request must not render a huge page).
_MAX_ECHO = 300


def _clip(value: str) -> str:
    return value.strip()[:_MAX_ECHO + 1]


def _values_from_form(form) -> dict:
    values: dict = {}
    for key, _, _ in plan_service.PARTICIPANT_FIELDS:
        values[key] = _clip(form.get(key, ""))
        if key in plan_service.FALLBACK_FIELDS:
            values[f"{key}_fallback"] = _clip(form.get(f"{key}_fallback", ""))
    values["country"] = _clip(form.get("country", ""))
    limit = plan_service.MAX_ATTRIBUTES + 1  # one more: the empty row to fill in
    names, paths = form.getlist("attr_name"), form.getlist("attr_path")
    rows = max(len(names), len(paths))
    values["attributes"] = [(_clip(names[i]) if i < len(names) else "", _clip(paths[i]) if i < len(paths) else "")
                            for i in range(min(rows, limit))]
    values["attributes_dropped"] = max(0, rows - limit)
    most = plan_service.MAX_CONSENT_VALUES + 1
    # (a free-text consent field's values come typed one per line in one textarea)
    longest = (plan_service.MAX_CONSENT_VALUE + 2) * most
    values["consent_in"] = [v[:longest] for v in form.getlist("consent_in")[:most]]
    values["consent_out"] = [v[:longest] for v in form.getlist("consent_out")[:most]]
    values["opt_out_flags"] = [_clip(v) for v in form.getlist("opt_out_flags")[:most]]
    if plan_service.CONSENT_SHOWN_FOR in form:
        values[plan_service.CONSENT_SHOWN_FOR] = _clip(form.get(plan_service.CONSENT_SHOWN_FOR, ""))
    return values


def _consent_values_for_field(values: dict, fields) -> None:
    """The opted in / opted out values the form shows belong to the consent field it shows:
    when the field changed since they were shown, the new field's values are offered instead
    (services.plans.reoffered_consent_values); the old field's never stay."""
    consent = values.get("consent") or ""
    if plan_service.consent_field_changed(values, consent):
        values["consent_in"], values["consent_out"] = plan_service.reoffered_consent_values(
            fields, consent, values.get(plan_service.CONSENT_SHOWN_FOR), values["consent_in"], values["consent_out"])
    elif consent and not plan_service.consent_values(fields, consent):
        values["consent_in"] = plan_service.typed_values(values["consent_in"])
        values["consent_out"] = plan_service.typed_values(values["consent_out"])
    values[plan_service.CONSENT_SHOWN_FOR] = consent


def _data(values: dict) -> dict:
    """Form values → what services.plans.validate_mapping reads."""
    data = {k: v for k, v in values.items() if k not in ("attributes", "attributes_dropped")}
    data["attr_name"] = [n for n, _ in values["attributes"]]
    data["attr_path"] = [p for _, p in values["attributes"]]
    return data


@bp.route("/wizard/plans/<int:plan_id>/mapping", methods=["GET", "POST"])
@requires("manage_imports")
def mapping(plan_id: int):
    plan = load_plan(plan_id, "mapping")
    if not isinstance(plan, ImportPlan):
        return plan
    connection = plan_service.plan_connection(plan)
    fields, reason = catalog.field_catalog_or_reason(connection, plan.object_name)
    if fields is None:
        return render_step(plan, "mapping", "wizard/_step_mapping.html", sf_error=reason, catalog=None,
                           values=_values_from_mapping(plan.mapping), errors={})
    errors: dict = {}
    preview_rows = None
    preview_error = None
    if request.method == "POST":
        values = _values_from_form(request.form)
        action = request.form.get("action", "save")
        if values.get("attributes_dropped"):
            errors["attributes"] = (f"At most {plan_service.MAX_ATTRIBUTES} custom attributes: "
                                    f"the {values['attributes_dropped']:,} rows after them were not kept.")
        if action == "add_attribute":
            if len(values["attributes"]) < plan_service.MAX_ATTRIBUTES:
                values["attributes"].append(("", ""))
            else:
                errors["attributes"] = f"At most {plan_service.MAX_ATTRIBUTES} custom attributes."
        elif action.startswith("remove_attribute:"):
            index = action.split(":", 1)[1]
            if index.isascii() and index.isdigit() and int(index) < len(values["attributes"]):
                del values["attributes"][int(index)]  # never a negative index (from the end)
        elif action == "preview":
            mapping_, found = plan_service.validate_mapping(_data(values), fields)
            errors = {**found, **errors}
            if not errors:
                preview_rows, preview_error = plan_service.preview_mapping(
                    plan, mapping_, fields, current_workspace(), limit=PREVIEW_ROWS)
        elif action == "save" and not errors:
            errors = plan_service.save_mapping(plan, _data(values), fields)
            if not errors:
                return step_done(plan, "mapping")
    else:
        stored = plan.mapping or {}
        values = _values_from_mapping(stored if stored.get("fields") else plan_service.suggested_mapping(fields))
    _consent_values_for_field(values, fields)
    if (not values["attributes"] or any(values["attributes"][-1])) and len(values["attributes"]) <= plan_service.MAX_ATTRIBUTES:
        values["attributes"].append(("", ""))  # one empty row to fill in, while there is room
    consent_path = values.get("consent")
    return render_step(
        plan, "mapping", "wizard/_step_mapping.html", errors=errors, catalog=fields, values=values,
        participant_fields=plan_service.PARTICIPANT_FIELDS,
        choices={key: fields.compatible_fields(key) for key, _, _ in plan_service.PARTICIPANT_FIELDS},
        country_choices=[c for c in fields.choices if c.field.type in ("string", "picklist")],
        attribute_choices=[c for c in fields.choices if not c.field.is_compound],
        consent_options=plan_service.consent_values(fields, consent_path),
        flag_choices=plan_service.opt_out_flag_choices(fields),
        preview_rows=preview_rows, preview_error=preview_error, sf_error=None)
