"""The REST API under /services/data: versions, describes, query paging, records, limits."""
from __future__ import annotations

import json
import re
from datetime import timedelta

from flask import Blueprint, Response, current_app, request

from . import ids as idlib
from .clock import parse_sf_datetime, sf_datetime
from .schema import catalog as cat
from .state import EmulatorState, Session
from .store import RecordError

bp = Blueprint("rest", __name__)

MIN_VERSION, MAX_VERSION = 20, 64
DEFAULT_BATCH = 2000
_VERSION_RE = re.compile(r"^v(\d+)\.0$")
_LOCATOR_RE = re.compile(r"^(0r8[0-9A-Za-z]{15})-(\d+)$")
JSON_CT = "application/json;charset=UTF-8"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def st() -> EmulatorState:
    return current_app.config["EMULATOR"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields=None):
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self):
        item = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


def NOT_FOUND():
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def version_label(n: int) -> str:
    idx = n - 59
    season = ["Winter", "Spring", "Summer"][idx % 3]
    year = 24 + idx // 3
    return f"{season} '{year:02d}"


def versions() -> list[dict]:
    return [{"label": version_label(n), "url": f"/services/data/v{n}.0", "version": f"{n}.0"}
            for n in range(MIN_VERSION, MAX_VERSION + 1)]


def json_response(body, status=200, headers=None) -> Response:
    return Response(_dumps(body), status=status, headers=headers or {}, content_type=JSON_CT)


@bp.route("/services/data", methods=["GET"])
@bp.route("/services/data/", methods=["GET"])
def list_versions():
    return json_response(versions())


@bp.route("/services/data/<path:rest>", methods=["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"])
def api(rest: str):
    s = st()
    session: Session | None = None
    usage = None
    try:
        parts = [p for p in rest.split("/") if p != ""]
        m = _VERSION_RE.match(parts[0]) if parts else None
        if not m or not MIN_VERSION <= int(m.group(1)) <= MAX_VERSION:
            raise NOT_FOUND()
        version = f"{m.group(1)}.0"
        session = authenticate()
        org = session.org
        if not org.api_enabled:
            raise ApiError(403, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization.")
        path = "/services/data/" + rest
        fired = s.faults.check(org.key, path, {"error", "slow", "limit_exceeded", "expire_sessions"})
        if any(rule["type"] == "expire_sessions" for rule in fired):
            s.expire_sessions(org.key)
            session = None   # no Sforce-Limit-Info on a 401, as for any lapsed token
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        for rule in fired:
            if rule["type"] == "slow":
                _sleep(s, float(rule.get("seconds", 1)))
        ok, usage = s.count_call(org.key)
        for rule in fired:
            if rule["type"] == "limit_exceeded":
                ok = False
            elif rule["type"] == "error":
                status = int(rule.get("status", 503))
                if status == 503:
                    raise ApiError(503, "SERVER_UNAVAILABLE", "Server Unavailable")
                raise ApiError(status, "UNKNOWN_EXCEPTION",
                               "An unexpected error occurred. Please include this ErrorId if you contact "
                               "support: 1234567890-12345 (-1234567890)")
        if not ok:
            usage = max(usage or 0, s.api_usage[org.key])
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        resp = dispatch(session, version, parts[1:])
    except ApiError as e:
        resp = json_response(e.body(), e.status)
    except RecordError as e:
        resp = json_response(e.body(), e.status)
    if session is not None:
        used = usage if usage is not None else s.api_usage.get(session.org.key, 0)
        resp.headers["Sforce-Limit-Info"] = f"api-usage={used}/{s.config.api_limit}"
    return resp


def authenticate() -> Session:
    auth = request.headers.get("Authorization", "")
    if not auth:
        raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
    parts = auth.split(None, 1)
    if len(parts) != 2 or parts[0].lower() not in ("bearer", "oauth"):
        raise ApiError(401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
    sess = st().session_for(parts[1].strip())
    if sess is None:
        raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
    return sess


def allow(*methods):
    if request.method not in methods and not (request.method == "HEAD" and "GET" in methods):
        raise ApiError(405, "METHOD_NOT_ALLOWED",
                       f"HTTP Method '{request.method}' not allowed. Allowed are {','.join(methods)}")


def dispatch(sess: Session, version: str, parts: list[str]) -> Response:
    view = st().store.view(sess.org.key, sess.user, version, st().url)
    if not parts:
        allow("GET")
        return json_response(resources(sess, version))
    head = parts[0]
    if head == "sobjects":
        if len(parts) == 1:
            allow("GET")
            return describe_global(view, version)
        return sobjects(sess, view, version, parts[1:])
    if head in ("query", "queryAll"):
        allow("GET")
        if len(parts) == 1:
            return query(sess, view, version, head == "queryAll")
        if len(parts) == 2:
            return query_more(sess, view, version, parts[1])
        raise NOT_FOUND()
    if head == "limits":
        allow("GET")
        if len(parts) == 1:
            return limits(sess)
        if len(parts) == 2 and parts[1] == "recordCount":
            return record_count(sess, view)
    raise NOT_FOUND()


def resources(sess: Session, version: str) -> dict:
    base = f"/services/data/v{version}"
    names = ["tooling", "metadata", "eclair", "folders", "prechatForms", "contact-tracing", "chatter", "tabs",
             "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search",
             "smartdatadiscovery", "identity", "composite", "parameterizedSearch", "fingerprint", "theme",
             "nouns", "domino", "event", "serviceTemplates", "recent", "connect", "licensing", "limits",
             "process", "dedupe", "async-queries", "query", "match", "emailConnect", "compactLayouts",
             "knowledgeManagement", "sobjects", "actions", "support", "jobs", "ui-api", "payments", "consent",
             "scheduling", "localizedvalue", "mobile"]
    out = {n: f"{base}/{n}" for n in names}
    out["identity"] = st().identity_url(sess.user)
    return out


def describe_global(view, version) -> Response:
    b = cat.base()["global"]
    entries = []
    for name in view.catalog.names():
        d = view.describe(name)
        entries.append(cat.global_entry(d))
    return json_response({"encoding": b.get("encoding", "UTF-8"), "maxBatchSize": b.get("maxBatchSize", 200),
                          "sobjects": entries})


def sobjects(sess, view, version, parts) -> Response:
    d = view.describe(parts[0])
    if d is None:
        raise NOT_FOUND()
    name = d["name"]
    if len(parts) == 1:
        allow("GET", "POST")
        if request.method == "POST":
            return create_record(sess, name)
        recent = []
        return json_response({"objectDescribe": cat.global_entry(d), "recentItems": recent})
    sub = parts[1]
    if len(parts) == 2 and sub == "describe":
        allow("GET")
        return json_response(d)
    if len(parts) == 2 and sub in ("updated", "deleted"):
        allow("GET")
        return updated_deleted(sess, name, sub)
    if len(parts) == 2:
        allow("GET", "PATCH", "DELETE")
        return record(sess, view, version, d, sub)
    raise NOT_FOUND()


def _body() -> dict:
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except ValueError as e:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: was expecting a JSON value ({e})")
    if not isinstance(data, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of object from a non-object value")
    return data


def _check_visible(sess, obj: str, values: dict):
    hidden = {h.lower() for h in sess.user.hidden_fields.get(obj, set())}
    for k in values:
        if k.lower() in hidden:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{k}' on sobject of type {obj}")


def create_record(sess, name) -> Response:
    values = _body()
    _check_visible(sess, name, values)
    rid = st().store.insert(sess.org.key, name, values, user_id=sess.user.id)
    return json_response({"id": rid, "success": True, "errors": []}, 201)


def record(sess, view, version, d, raw_id) -> Response:
    name = d["name"]
    rid = idlib.normalize(raw_id)
    if rid is None or view.object_for_id(rid) != name:
        raise NOT_FOUND()
    store = st().store
    if request.method == "PATCH":
        values = _body()
        _check_visible(sess, name, values)
        store.update(sess.org.key, name, rid, values, user_id=sess.user.id)
        return Response(status=204)
    if request.method == "DELETE":
        store.delete(sess.org.key, name, rid)
        return Response(status=204)
    rec = store.get(sess.org.key, rid)
    if rec is None:
        raise NOT_FOUND()
    wanted = request.args.get("fields")
    fields = [f["name"] for f in d["fields"]]
    if wanted:
        by_lower = {f.lower(): f for f in fields}
        sel = []
        for w in wanted.split(","):
            w = w.strip()
            if w.lower() not in by_lower:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{w}' on sobject of type {name}")
            sel.append(by_lower[w.lower()])
        fields = sel
    out = {"attributes": {"type": name, "url": f"/services/data/v{version}/sobjects/{name}/{rid}"}}
    for f in fields:
        out[f] = rec.get(f)
    return json_response(out)


def batch_size() -> int:
    opts = request.headers.get("Sforce-Query-Options", "")
    m = re.search(r"batchSize\s*=\s*(\d+)", opts)
    if not m:
        return DEFAULT_BATCH
    return max(200, min(2000, int(m.group(1))))


def _soql():
    from .soql import SoqlError, execute, parse  # the SOQL engine is a separate package
    return SoqlError, execute, parse


def query(sess, view, version, query_all: bool) -> Response:
    SoqlError, execute, parse = _soql()
    text = request.args.get("q", "")
    if not text.strip():
        raise ApiError(400, "MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    try:
        res = execute(parse(text), view, include_deleted=query_all, now=st().clock.now())
    except SoqlError as e:
        raise ApiError(e.status, e.error_code, e.message)
    if res.is_count:
        return json_response({"totalSize": res.total_size, "done": True, "records": []})
    if res.aggregate_records is not None:
        recs = res.aggregate_records
        return json_response({"totalSize": len(recs), "done": True, "records": recs})
    ids = res.ids
    cursor = None
    if len(ids) > batch_size():
        cursor = st().new_cursor(sess.org.key, sess.user, res, ids, query_all)
    return render_page(sess, version, res, ids, 0, cursor)


def query_more(sess, view, version, token: str) -> Response:
    m = _LOCATOR_RE.match(token)
    if not m:
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    cursor = st().cursor(m.group(1), sess.org.key)
    if cursor is None:
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    start = int(m.group(2))
    if start > len(cursor.ids):
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return render_page(sess, version, cursor.result, cursor.ids, start, cursor)


def render_page(sess, version, res, ids, start: int, cursor) -> Response:
    s = st()
    n = batch_size()
    chunk = ids[start:start + n]
    end = start + len(chunk)
    path = request.path
    # page 1 is the query response itself; page k starts at row (k-1) * batch size, so a retried
    # page keeps its number and a rule for "page 3" fires again on every retry of page 3
    page_no = 1 + start // n
    fired = s.faults.check(sess.org.key, path, {"invalid_locator", "page_timeout", "truncate_page",
                                                "done_without_next"}, page=page_no)
    kinds = {r["type"]: r for r in fired}
    if "invalid_locator" in kinds:
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    if "page_timeout" in kinds:
        _sleep(s, float(kinds["page_timeout"].get("seconds", 30)))
    body = {"totalSize": res.total_size, "done": end >= len(ids)}
    if not body["done"]:
        body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor.locator}-{end}"
    if "done_without_next" in kinds:
        body["done"] = False
        body.pop("nextRecordsUrl", None)
    texts = res.render_json(chunk)
    if texts is None:
        body["records"] = res.render(chunk)
        text = _dumps(body)
    else:  # records already JSON (built by the store): splice them in as the last key
        body["records"] = []
        text = _dumps(body)[:-2] + ",".join(texts) + "]}"
    if "truncate_page" in kinds:
        text = text[: max(1, len(text) // 2)]
    return Response(text, 200, content_type=JSON_CT)


def _sleep(s, seconds: float) -> None:
    """A fault's delay; cut short when the server stops (it then answers 503 without touching
    the store, which is closing)."""
    if s.stopping.wait(seconds):
        raise ApiError(503, "SERVER_UNAVAILABLE", "Server Unavailable")


def limits(sess) -> Response:
    s = st()
    used = s.api_usage[sess.org.key]
    lim = s.config.api_limit
    body = {
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "ConcurrentSyncReportRuns": {"Max": 20, "Remaining": 20},
        "DailyApiRequests": {"Max": lim, "Remaining": max(0, lim - used)},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DailyBulkApiRequests": {"Max": 10000, "Remaining": 10000},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyDurableGenericStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
        "DailyDurableStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
        "DailyGenericStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
        "DailyStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
        "DailyWorkflowEmails": {"Max": 390, "Remaining": 390},
        "DataStorageMB": {"Max": 1024, "Remaining": 1000},
        "DurableStreamingApiConcurrentClients": {"Max": 20, "Remaining": 20},
        "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        "HourlyAsyncReportRuns": {"Max": 1200, "Remaining": 1200},
        "HourlyDashboardRefreshes": {"Max": 200, "Remaining": 200},
        "HourlyDashboardResults": {"Max": 5000, "Remaining": 5000},
        "HourlyDashboardStatuses": {"Max": 999999999, "Remaining": 999999999},
        "HourlyODataCallout": {"Max": 10000, "Remaining": 10000},
        "HourlySyncReportRuns": {"Max": 500, "Remaining": 500},
        "HourlyTimeBasedWorkflow": {"Max": 50, "Remaining": 50},
        "MassEmail": {"Max": 10, "Remaining": 10},
        "SingleEmail": {"Max": 15, "Remaining": 15},
        "StreamingApiConcurrentClients": {"Max": 20, "Remaining": 20},
    }
    return json_response(body)


def record_count(sess, view) -> Response:
    counts = st().store.counts(sess.org.key)
    wanted = request.args.get("sObjects")
    if wanted:
        names = []
        for w in wanted.split(","):
            d = view.describe(w.strip())
            if d is not None:
                names.append(d["name"])
    else:
        names = sorted(counts)
    out = [{"count": counts[n], "name": n} for n in names if counts.get(n)]
    return json_response({"sObjects": out})


def _window_param(name: str):
    raw = request.args.get(name)
    if not raw:
        raise ApiError(400, "MISSING_ARGUMENT", f"Missing argument: {name}")
    try:
        return parse_sf_datetime(raw)
    except ValueError:
        raise ApiError(400, "INVALID_DATE_FORMAT", f"{name}: invalid date format: {raw}")


def updated_deleted(sess, name: str, kind: str) -> Response:
    start = _window_param("start").replace(second=0)
    end = _window_param("end").replace(second=0)
    now = st().clock.now()
    if start >= end:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate by more than one minute")
    limit_days = 30 if kind == "updated" else 15
    if start < now - timedelta(days=limit_days):
        raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than "
                       f"{limit_days} days ago")
    end = min(end, now.replace(second=0))
    covered = sf_datetime(end)
    store = st().store
    if kind == "updated":
        ids = store.updated_ids(sess.org.key, name, sf_datetime(start), covered)
        if len(ids) > 600000:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. Narrow the date range.")
        return json_response({"ids": ids, "latestDateCovered": covered})
    rows = store.deleted_records(sess.org.key, name, sf_datetime(start), covered)
    earliest = sf_datetime((now - timedelta(days=15)).replace(second=0))
    return json_response({"deletedRecords": [{"id": i, "deletedDate": d} for i, d in rows],
                          "earliestDateAvailable": earliest, "latestDateCovered": covered})
