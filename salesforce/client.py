"""REST client: simple-salesforce in direct-session mode, with our error classes, one refresh on
an expired session, bounded backoff for transient failures, lazy paging and API-usage tracking.

Retry policy, in one place:
* expired session (401) → ``token_refresher()`` once, rebuild, repeat the call once; a second
  401, or ``NeedsReconnect`` from the refresher, propagates;
* daily limit (403 REQUEST_LIMIT_EXCEEDED) → raised at once, no sleep, no further call;
* transient (5xx, timeouts, connection errors, cut-off bodies) → up to ``retries`` more tries,
  sleeping ``backoff`` seconds between them, for idempotent calls only (never a create);
* everything else → raised at once.
"""
from __future__ import annotations

import re
import sys
import time
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import requests


def _import_salesforce_without_zeep():
    """simple-salesforce's ``Salesforce`` without loading zeep and lxml at import.

    Its package imports ``simple_salesforce.metadata`` (the SOAP Metadata API, built on zeep and
    lxml: ~7 MB in every process, every RQ work horse included) only to name ``SfdcMetadataApi``,
    which ``Salesforce.mdapi`` builds on first use. We never use the Metadata API (REST only), so
    that module is stood in for by one whose ``SfdcMetadataApi`` imports the real one when called.
    Where simple-salesforce was imported before us, it is used as it is.
    """
    name = "simple_salesforce.metadata"
    if "simple_salesforce" not in sys.modules and name not in sys.modules:
        stand_in = types.ModuleType(name, "simple-salesforce's Metadata API, imported on first use")

        def SfdcMetadataApi(*args, **kwargs):  # noqa: N802 - the class name it stands for
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
            import importlib
            real = importlib.import_module(name)
            return real.SfdcMetadataApi(*args, **kwargs)

        stand_in.SfdcMetadataApi = SfdcMetadataApi
        sys.modules[name] = stand_in
    from simple_salesforce import Salesforce
    return Salesforce


Salesforce = _import_salesforce_without_zeep()

from .describe import ObjectDescribe, ObjectSummary
from .soql import is_record_id
from .errors import BrokenPaging, SalesforceError, SessionExpired, Transient, classify

T = TypeVar("T")

DEFAULT_API_VERSION = "62.0"
DEFAULT_BACKOFF = (0.5, 1.0, 2.0)
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NEXT_URL_RE = re.compile(r"^/services/data/v\d+\.\d+/query(All)?/[A-Za-z0-9]+-\d+/?$")
_USAGE_RE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


class _TimeoutSession(requests.Session):
    """A session with a default timeout: simple-salesforce passes none on most calls."""

    def __init__(self, timeout: Any):
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, **kwargs)


def make_session(ca_file: str | None = None, timeout: Any = (5, 60)) -> requests.Session:
    """A requests session trusting ``ca_file`` when given. ``REQUESTS_CA_BUNDLE`` would override
    ``session.verify`` (stack-notes §0), so environment trust is switched off in that case."""
    session = _TimeoutSession(timeout)
    if ca_file:
        session.verify = ca_file
        session.trust_env = False
    return session


@dataclass(frozen=True)
class Page:
    records: list[dict]
    total_size: int
    done: bool
    page_number: int
    next_records_url: str | None = None


@dataclass(frozen=True)
class OrgInfo:
    name: str
    is_sandbox: bool
    organization_type: str | None


class SalesforceClient:
    def __init__(self, instance_url: str, access_token: str, *, api_version: str = DEFAULT_API_VERSION,
                 ca_file: str | None = None, timeout: Any = (5, 60),
                 token_refresher: Callable[[], str] | None = None, retries: int = 3,
                 backoff: Sequence[float] = DEFAULT_BACKOFF, sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None):
        self.instance_url = instance_url.rstrip("/")
        self.api_version = api_version
        self.token_refresher = token_refresher
        self.retries = max(0, int(retries))
        self.backoff = tuple(backoff) or (0.0,)
        self.sleep = sleep
        self.session = session if session is not None else make_session(ca_file, timeout)
        self.session.hooks.setdefault("response", []).append(self._on_response)
        self.calls_made = 0
        self.api_usage: tuple[int, int] | None = None
        self.refreshes = 0
        self._connect(access_token)

    # --- plumbing -------------------------------------------------------------------------

    def _connect(self, access_token: str) -> None:
        self.access_token = access_token
        self._sf = Salesforce(instance_url=self.instance_url, session_id=access_token,
                              session=self.session, version=self.api_version)

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.calls_made += 1
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            m = _USAGE_RE.search(info)
            if m:
                self.api_usage = (int(m.group(1)), int(m.group(2)))

    def _call(self, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        refreshed = False
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified right here, once
                err = classify(exc)
                if isinstance(err, SessionExpired) and self.token_refresher is not None and not refreshed:
                    refreshed = True
                    self.refreshes += 1
                    try:
                        new_token = self.token_refresher()
                    except Exception as refresh_exc:  # noqa: BLE001 - NeedsReconnect propagates
                        refresh_err = classify(refresh_exc)
                        if refresh_err is refresh_exc:
                            raise
                        raise refresh_err from refresh_exc
                    self._connect(new_token)
                    continue
                if err.retryable and idempotent and attempt < self.retries:
                    self.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
                    attempt += 1
                    continue
                if err is exc:
                    raise
                raise err from exc

    @staticmethod
    def _check_name(name: str) -> str:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"not a Salesforce object name: {name!r}")
        return name

    @staticmethod
    def _check_id(record_id: str) -> str:
        if not is_record_id(record_id):
            raise ValueError(f"not a Salesforce record ID: {record_id!r}")
        return record_id

    # --- metadata -------------------------------------------------------------------------

    def ping(self) -> bool:
        """A cheap authenticated call (the resource list of the API version)."""
        self._call(lambda: self._sf.restful(""))
        return True

    def describe_global(self) -> list[ObjectSummary]:
        result = self._call(lambda: self._sf.describe()) or {}
        return [ObjectSummary.from_json(s) for s in result.get("sobjects", [])]

    def describe(self, name: str) -> ObjectDescribe:
        self._check_name(name)
        return ObjectDescribe.from_json(self._call(lambda: self._sf.restful(f"sobjects/{name}/describe")))

    def record_counts(self, names: Iterable[str]) -> dict[str, int | None]:
        """Salesforce's cached record-count estimate per object; None where it keeps none
        (objects with no rows, or none counted yet): shown as "unknown", never guessed."""
        wanted = [self._check_name(n) for n in names]
        counts: dict[str, int | None] = {n: None for n in wanted}
        by_lower = {n.lower(): n for n in wanted}
        for start in range(0, len(wanted), 50):
            chunk = wanted[start:start + 50]
            result = self._call(lambda: self._sf.restful("limits/recordCount",
                                                         params={"sObjects": ",".join(chunk)})) or {}
            for entry in result.get("sObjects", []):
                key = by_lower.get(str(entry.get("name", "")).lower())
                if key is not None and isinstance(entry.get("count"), int):
                    counts[key] = entry["count"]
        return counts

    def limits(self) -> dict:
        result = self._call(lambda: self._sf.restful("limits/")) or {}
        daily = result.get("DailyApiRequests")
        if isinstance(daily, Mapping) and "Max" in daily and "Remaining" in daily:
            self.api_usage = (int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"]))
        return result

    def organization(self) -> OrgInfo:
        result = self._call(lambda: self._sf.query("SELECT Name, IsSandbox, OrganizationType FROM Organization LIMIT 1"))
        records = result.get("records") or []
        if not records:
            raise SalesforceError("no Organization record", code="NO_ORGANIZATION")
        rec = records[0]
        return OrgInfo(name=rec.get("Name") or "", is_sandbox=bool(rec.get("IsSandbox")),
                       organization_type=rec.get("OrganizationType"))

    # --- queries --------------------------------------------------------------------------

    def count(self, soql: str) -> int:
        """``SELECT COUNT() FROM ...`` → the number (Salesforce puts it in totalSize)."""
        result = self._call(lambda: self._sf.query(soql))
        total = result.get("totalSize") if isinstance(result, Mapping) else None
        if not isinstance(total, int):
            raise BrokenPaging("the count answer had no totalSize", code="INVALID_RESPONSE")
        return total

    def query_pages(self, soql: str, *, include_deleted: bool = False, batch_size: int = 2000) -> Iterator[Page]:
        """Pages of up to ``batch_size`` records, fetched lazily by following nextRecordsUrl.

        A page that claims more (``done: false``) without a next link is yielded, then
        ``BrokenPaging`` is raised; a later page that never arrives after the retries raises
        ``BrokenPaging``; an expired locator raises ``QueryLocatorInvalid``.
        """
        if not 200 <= batch_size <= 2000:
            raise ValueError("batch_size must be between 200 and 2000")
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        result = self._call(lambda: self._sf.query(soql, include_deleted=include_deleted, headers=headers))
        page_number = 1
        while True:
            page = self._page(result, page_number)
            yield page
            if page.done:
                return
            if not page.next_records_url:
                raise BrokenPaging(f"page {page_number} said more records follow but gave no link to them",
                                   code="MISSING_NEXT_RECORDS_URL")
            next_url = page.next_records_url
            try:
                result = self._call(lambda: self._sf.query_more(next_url, identifier_is_url=True, headers=headers))
            except Transient as exc:
                raise BrokenPaging(f"page {page_number + 1} never arrived after {self.retries + 1} attempts "
                                   f"({exc.reason})", code="PAGE_NEVER_ARRIVED", status=exc.status) from exc
            page_number += 1

    @staticmethod
    def _page(result: Any, page_number: int) -> Page:
        if (not isinstance(result, Mapping) or not isinstance(result.get("records"), list)
                or not isinstance(result.get("done"), bool)):
            raise BrokenPaging(f"page {page_number} was not a query result", code="INVALID_RESPONSE")
        next_url = result.get("nextRecordsUrl") or None
        if next_url is not None and not _NEXT_URL_RE.match(str(next_url)):
            # simple-salesforce appends it to the host verbatim; never send the token elsewhere.
            raise BrokenPaging(f"page {page_number} had an unexpected next link", code="INVALID_NEXT_RECORDS_URL")
        total = result.get("totalSize")
        return Page(records=list(result["records"]), total_size=total if isinstance(total, int) else 0,
                    done=result["done"], page_number=page_number, next_records_url=next_url)

    # --- writes (tests and demo data) -----------------------------------------------------

    def create(self, object_name: str, data: Mapping[str, Any]) -> str:
        """Create a record; returns its ID. Never retried (a retry could create it twice)."""
        self._check_name(object_name)
        result = self._call(lambda: getattr(self._sf, object_name).create(dict(data)), idempotent=False)
        return result["id"]

    def update(self, object_name: str, record_id: str, data: Mapping[str, Any]) -> None:
        self._check_name(object_name)
        self._check_id(record_id)
        self._call(lambda: getattr(self._sf, object_name).update(record_id, dict(data)))

    def delete(self, object_name: str, record_id: str) -> None:
        self._check_name(object_name)
        self._check_id(record_id)
        self._call(lambda: getattr(self._sf, object_name).delete(record_id))
