"""The emulator's own control endpoints under /__emulator (faults, clock, limits, records).

Guarded by the admin key from connected-app.json in the ``X-Emulator-Admin-Key`` header. An OAuth
access token is never accepted here, so a product bug can't reach these endpoints.
"""
from __future__ import annotations

import hmac
import json

from flask import Blueprint, Response, current_app, request

from .clock import parse_sf_datetime
from .faults import FaultError
from .state import EmulatorState
from .store import RecordError

bp = Blueprint("admin", __name__, url_prefix="/__emulator")


def st() -> EmulatorState:
    return current_app.config["EMULATOR"]


def _json(body, status=200):
    return Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8")


@bp.before_request
def guard():
    key = request.headers.get("X-Emulator-Admin-Key", "")
    if not key or not hmac.compare_digest(key, st().config.admin_key):
        return _json({"error": "forbidden", "error_description": "admin key required (X-Emulator-Admin-Key)"}, 403)
    return None


class BadBody(Exception):
    pass


def _body():
    """The request's JSON whatever its Content-Type (``curl -d`` sends form encoding): None when
    there is no body; a body that is not JSON is a 400, never silently ignored."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadBody(f"the body is not JSON: {exc}") from None


def _payload() -> dict:
    data = _body()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadBody("the body must be a JSON object")
    return data


def _org(data) -> str:
    key = data.get("org") or request.args.get("org") or "production"
    if key not in st().orgs:
        raise KeyError(key)
    return key


@bp.errorhandler(KeyError)
def unknown(e):
    return _json({"error": "not_found", "error_description": f"unknown {e.args[0]!r}"}, 404)


@bp.errorhandler(BadBody)
def bad_body(e):
    return _json({"error": "invalid_request", "error_description": str(e)}, 400)


@bp.errorhandler(ValueError)
@bp.errorhandler(TypeError)
def bad_value(e):
    return _json({"error": "invalid_request", "error_description": f"a value has the wrong type or form: {e}"}, 400)


@bp.errorhandler(FaultError)
def bad_fault(e):
    return _json({"error": "invalid_fault", "error_description": str(e)}, 400)


@bp.errorhandler(RecordError)
def record_error(e):
    return _json(e.body(), e.status)


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults():
    f = st().faults
    if request.method == "POST":
        data = _body()
        if data is None:
            raise BadBody("send a fault rule (a JSON object), a list of rules, or {\"rules\": [...]}")
        rules = data if isinstance(data, list) else (data.get("rules") if isinstance(data, dict) and "rules" in data
                                                    else [data])
        added = [f.add(r) for r in rules]
        return _json({"added": added, "rules": f.list()}, 201)
    if request.method == "DELETE":
        f.clear(request.args.get("org"))
    return _json({"rules": f.list()})


@bp.post("/expire-sessions")
def expire_sessions():
    return _json({"expired": st().expire_sessions(_payload().get("org"))})


@bp.post("/reset-limits")
def reset_limits():
    data = _payload()
    st().reset_limits(data.get("org"), int(data.get("used", 0)))
    return _json({"api_usage": st().api_usage, "api_limit": st().config.api_limit})


@bp.route("/clock", methods=["GET", "POST"])
def clock():
    c = st().clock
    data = _payload()
    if "advance" in data:
        c.advance(float(data["advance"]))
    if "set" in data:
        c.set(parse_sf_datetime(data["set"]) if data["set"] else None, frozen=bool(data.get("frozen")))
    return _json(c.state())


@bp.post("/records/<obj>")
def create(obj):
    data = _payload()
    org = _org(data)
    rid = st().store.insert(org, obj, data.get("fields", {}), validate=bool(data.get("validate", False)))
    return _json({"id": rid}, 201)


@bp.route("/records/<obj>/<rid>", methods=["PATCH", "DELETE"])
def change(obj, rid):
    data = _payload()
    org = _org(data)
    store = st().store
    if request.method == "DELETE":
        store.delete(org, obj, rid)
    else:
        store.update(org, obj, rid, data.get("fields", {}), validate=bool(data.get("validate", False)))
    return Response(status=204)


@bp.post("/records/<rid>/touch")
def touch(rid):
    rec = st().store.system_touch(_org(_payload()), rid)
    return _json({"id": rec["Id"], "SystemModstamp": rec["SystemModstamp"]})


@bp.post("/convert-lead/<rid>")
def convert(rid):
    data = _payload()
    return _json(st().store.convert_lead(_org(data), rid, contact_id=data.get("contact_id"),
                                         account_id=data.get("account_id")))


@bp.get("/state")
def state():
    s = st()
    return _json({"url": s.url, "clock": s.clock.state(), "api_usage": s.api_usage,
                  "faults": s.faults.list(), "cursors": len(s.cursors),
                  "cursor_fills_pending": s.store.pending_fills(),
                  "counts": {k: s.store.counts(k) for k in s.orgs}})
