"""The RQ worker imports only what a job needs: its app (``create_app(worker=True)``) has no
web-only extensions and registers the blueprints only when a URL is first built, and
simple-salesforce comes without zeep/lxml (its SOAP Metadata API, which the product never uses).
Each check runs in a fresh interpreter, since this test process has imported everything."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("zeep", "lxml", "alembic", "flask_migrate", "flask_wtf", "wtforms", "flask_htmx")
BLUEPRINT_MODULES = ("wizard", "auth.views", "participants.views", "operations.views", "invite.views")


def _run(code: str) -> dict:
    env = {**os.environ, "TERAPAGE_ENV": "test", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_worker_app_and_a_sync_job_import_no_web_layer_zeep_or_alembic():
    found = _run(f"""
import json, sys
from core import create_app
app = create_app("test", {{"SQLALCHEMY_DATABASE_URI": "sqlite://"}}, worker=True)
import jobs.worker, jobs.sync, services.runs, services.reconcile, services.sync_sink, services.connections
before = [m for m in {HEAVY + BLUEPRINT_MODULES!r} if m in sys.modules]
from flask import url_for
with app.test_request_context(base_url="https://app.example"):
    link = url_for("operations.run_detail", run_id=3, _external=True)
after = [m for m in {BLUEPRINT_MODULES!r} if m in sys.modules]
print(json.dumps({{"before": before, "link": link, "after": after,
                  "has_db": "sqlalchemy" in app.extensions}}))
""")
    assert found["before"] == []
    assert found["has_db"]
    # the first URL built (an incident's or an invitation's link) registers the blueprints
    assert found["link"] == "https://app.example/operations/runs/3"
    assert set(found["after"]) == set(BLUEPRINT_MODULES)


def test_the_web_app_is_unchanged():
    found = _run("""
import json
from core import create_app
app = create_app("test", {"SQLALCHEMY_DATABASE_URI": "sqlite://"})
print(json.dumps({"ext": sorted(app.extensions), "bps": sorted(app.blueprints)}))
""")
    assert {"migrate", "csrf", "sqlalchemy"} <= set(found["ext"])
    assert {"auth", "wizard", "operations"} <= set(found["bps"])


def test_simple_salesforce_without_zeep_until_the_metadata_api_is_used():
    found = _run("""
import json, sys
import requests
from salesforce.client import Salesforce, SalesforceClient
loaded = "zeep" in sys.modules or "lxml" in sys.modules
sf = Salesforce(instance_url="https://x.my.salesforce.com", session_id="t", session=requests.Session())
api = sf.mdapi
print(json.dumps({"loaded": loaded, "mdapi": type(api).__module__ + "." + type(api).__name__,
                  "zeep_now": "zeep" in sys.modules}))
""")
    assert found["loaded"] is False
    assert found["mdapi"] == "simple_salesforce.metadata.SfdcMetadataApi"  # the real one, on first use
    assert found["zeep_now"] is True


def test_malloc_arenas_are_limited_on_glibc_and_left_alone_with_zero():
    import platform
    import subprocess
    import sys

    from jobs.worker import limit_malloc_arenas

    assert limit_malloc_arenas(0) is False  # 0: glibc's default, nothing asked
    if platform.libc_ver()[0] != "glibc":
        return
    # In a child process, so this test process keeps its own malloc settings.
    out = subprocess.run([sys.executable, "-c", "from jobs.worker import limit_malloc_arenas as f; print(f(1))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_run_worker_applies_the_configured_arena_limit(monkeypatch):
    import jobs.worker as worker

    asked = []
    monkeypatch.setattr(worker, "limit_malloc_arenas", asked.append)

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(worker, "load_tasks", stop)

    class App:
        config = {"WORKER_MALLOC_ARENA_MAX": 3}

        def app_context(self):
            import contextlib
            return contextlib.nullcontext()

    monkeypatch.setattr(worker, "redis_connection", lambda: None)
    try:
        worker.run_worker(App(), with_scheduler=False)
    except Stop:
        pass
    assert asked == [3]
