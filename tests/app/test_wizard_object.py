"""Step 2, Object: the objects the connected user can query, with what each offers, searchable,
cached per connection and refreshed on demand; the stepper around it."""
from __future__ import annotations

import re

import pytest

from core.extensions import db
from models import DescribeCache, ImportPlan
from salesforce.client import SalesforceClient
from services import catalog
from services import plans as plan_service
from tests.app.wizard_support import add_member, emulator, make_admin, seed_connection, use_emulator, web_client
from tests.support.web import csrf_token

STANDARD_FIRST = ["Lead", "Contact", "CampaignMember", "Account"]


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        server.create("Contact", {"LastName": "Doe", "Email": "doe@example.org"})
        yield server


@pytest.fixture
def setup(app, emu, monkeypatch):
    use_emulator(app, emu, monkeypatch)
    ws, user = make_admin()
    conn = seed_connection(ws, emu)
    plan = plan_service.create_draft(ws, conn, user)
    return ws, user, conn, plan, web_client(app, user, ws)


@pytest.fixture
def calls(monkeypatch):
    seen = []
    for name in ("describe", "describe_global", "record_counts"):
        real = getattr(SalesforceClient, name)

        def counted(self, *a, _real=real, _name=name, **kw):
            seen.append(_name)
            return _real(self, *a, **kw)

        monkeypatch.setattr(SalesforceClient, name, counted)
    return seen


def _rows(html):
    return re.findall(r'<tr data-object="([^"]+)"', html)


def test_objects_standard_first_then_custom_with_capabilities(app, setup):
    _ws, _user, conn, _plan, _client = setup
    rows = catalog.list_objects(conn)
    names = [r.name for r in rows]
    assert names[:4] == STANDARD_FIRST
    custom = [r.name for r in rows if r.custom]
    assert custom == sorted(custom, key=str.lower) and names[-len(custom):] == custom
    assert {"Research_Participant__c", "Panel_Member__c", "Customer_Profile__c", "Community_Member__c"} <= set(custom)
    by = {r.name: r for r in rows}
    contact = by["Contact"]
    assert contact.email_fields == ("Email",) and "Phone" in contact.phone_fields
    assert "Consent_Status__c" in contact.consent_fields and "HasOptedOutOfEmail" in contact.consent_fields
    assert contact.source_id_fields == ("Id",) and contact.last_modified_field == "SystemModstamp"
    account = by["Account"]
    assert account.email_fields == () and account.consent_fields == ()
    assert by["Research_Participant__c"].source_id_fields == ("Id", "External_Id__c")
    # Counts are Salesforce's estimate; where it keeps none (objects without rows): "unknown".
    assert contact.record_count == 1 and contact.count_label == "1"
    assert by["Lead"].record_count is None and by["Lead"].count_label == "unknown"
    assert by["User"].record_count == 3 and by["User"].count_label == "3"


def test_object_page_lists_the_columns(app, setup):
    _ws, _user, _conn, plan, client = setup
    html = client.get(f"/wizard/plans/{plan.id}/object").get_data(as_text=True)
    assert _rows(html)[:4] == STANDARD_FIRST
    contact = html.split('<tr data-object="Contact">')[1].split("</tr>")[0]
    assert '<td class="count">1</td>' in contact and "SystemModstamp" in contact
    lead = html.split('<tr data-object="Lead">')[1].split("</tr>")[0]
    assert '<td class="count">unknown</td>' in lead
    assert re.search(r'class="cap-email"><span class="yes"', contact)
    assert re.search(r'class="cap-consent"><span class="yes"', contact)
    account = html.split('<tr data-object="Account">')[1].split("</tr>")[0]
    assert re.search(r'class="cap-email"><span class="no">No', account)
    user_row = html.split('<tr data-object="User">')[1].split("</tr>")[0]
    assert '<td class="count">3</td>' in user_row
    for words in ("Records (estimate)", "Last modified field", "Email", "Phone", "Consent", "Source ID"):
        assert words in html


def test_search_by_label_or_api_name_with_htmx_partial(app, setup):
    _ws, _user, _conn, plan, client = setup
    partial = client.get(f"/wizard/plans/{plan.id}/object?q=panel",
                         headers={"HX-Request": "true", "HX-Target": "object-rows"})
    html = partial.get_data(as_text=True)
    assert html.lstrip().startswith('<table class="table" id="object-rows">') and "<html" not in html
    assert _rows(html) == ["Panel_Member__c"]
    assert "HX-Push-Url" not in partial.headers
    assert _rows(client.get(f"/wizard/plans/{plan.id}/object?q=__c").get_data(as_text=True)) == [
        "Community_Member__c", "Customer_Profile__c", "Panel_Member__c", "Research_Participant__c"]
    assert _rows(client.get(f"/wizard/plans/{plan.id}/object?q=CAMPAIGNMEMBER").get_data(as_text=True)) == [
        "CampaignMember"]
    none = client.get(f"/wizard/plans/{plan.id}/object?q=zzz").get_data(as_text=True)
    assert "No object matches “zzz”" in none


def test_describes_cached_per_connection_and_refreshed_on_demand(app, setup, calls):
    _ws, _user, conn, plan, client = setup
    client.get(f"/wizard/plans/{plan.id}/object")
    first = len(calls)
    assert calls.count("describe_global") == 1 and calls.count("describe") >= 10
    client.get(f"/wizard/plans/{plan.id}/object")
    assert len(calls) == first  # all from DescribeCache
    assert db.session.scalar(db.select(db.func.count()).select_from(DescribeCache)
                             .where(DescribeCache.connection_id == conn.id)) >= 12
    response = client.post(f"/wizard/plans/{plan.id}/object", data={"csrf_token": csrf_token(client),
                                                                    "action": "refresh"})
    assert response.status_code == 200
    assert calls.count("describe_global") == 2


def test_choose_object_moves_to_mapping_and_unlocks_it(app, setup):
    _ws, _user, _conn, plan, client = setup
    assert client.get(f"/wizard/plans/{plan.id}/mapping").headers["Location"].endswith(f"/wizard/plans/{plan.id}/object")
    html = client.get(f"/wizard/plans/{plan.id}/object").get_data(as_text=True)
    assert 'data-step="mapping" data-state="locked"' in html and 'data-step="object" data-state="current"' in html
    assert 'data-step="connect" data-state="done"' in html
    bad = client.post(f"/wizard/plans/{plan.id}/object", data={"csrf_token": csrf_token(client),
                                                               "object_name": "Opportunity"})
    assert bad.status_code == 422
    assert "Opportunity is not an object this connection can import from." in bad.get_data(as_text=True)
    long = client.post(f"/wizard/plans/{plan.id}/object", data={"csrf_token": csrf_token(client),
                                                                "object_name": "X" * 10_000})
    assert long.status_code == 422 and "X" * 81 not in long.get_data(as_text=True)  # not echoed whole
    assert "X" * 80 + "… is not an object" in long.get_data(as_text=True)
    good = client.post(f"/wizard/plans/{plan.id}/object", data={"csrf_token": csrf_token(client),
                                                                "object_name": "contact"})
    assert good.status_code == 303 and good.headers["Location"].endswith(f"/wizard/plans/{plan.id}/mapping")
    db.session.expire_all()
    saved = db.session.get(ImportPlan, plan.id)
    assert saved.object_name == "Contact" and saved.wizard_step == "mapping"


def test_htmx_post_follows_to_the_next_panel_and_pushes_its_url(app, setup):
    _ws, _user, _conn, plan, client = setup
    response = client.post(f"/wizard/plans/{plan.id}/object",
                           data={"csrf_token": csrf_token(client), "object_name": "Lead"},
                           headers={"HX-Request": "true", "HX-Target": "wizard"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and 'id="stepper"' in html
    assert response.headers["HX-Push-Url"] == f"/wizard/plans/{plan.id}/mapping"
    assert "HX-Request" in response.headers["Vary"]
    assert "3. Map Salesforce fields to Terapage participant fields" in html


def test_htmx_error_answers_200_with_the_error_on_the_field(app, setup):
    _ws, _user, _conn, plan, client = setup
    response = client.post(f"/wizard/plans/{plan.id}/object", data={"csrf_token": csrf_token(client)},
                           headers={"HX-Request": "true", "HX-Target": "wizard"})
    assert response.status_code == 200
    assert "Choose the Salesforce object to import from." in response.get_data(as_text=True)


def test_changing_the_object_resets_mapping_and_filters(app, setup):
    _ws, _user, _conn, plan, _client = setup
    plan_service.save_object(plan, "Contact", ["Contact", "Lead"])
    plan.mapping = {"fields": {"email": ["Email"], "external_id": ["Id"]}}
    plan.filters = {"op": "AND", "items": [{"field": "Email", "operator": "is_not_empty"}]}
    plan.excluded_record_ids = ["003000000000001AAA"]
    plan.wizard_step = "preview"
    db.session.commit()
    assert plan_service.save_object(plan, "Contact", ["Contact", "Lead"]) == {}
    assert plan.mapping["fields"]["email"] == ["Email"]  # the same object keeps everything
    assert plan_service.save_object(plan, "Lead", ["Contact", "Lead"]) == {}
    db.session.expire_all()
    plan = db.session.get(ImportPlan, plan.id)
    assert (plan.object_name, plan.mapping, plan.filters, plan.excluded_record_ids) == ("Lead", {}, {}, [])
    assert plan.wizard_step == "mapping"


def test_new_plan_step_one_and_permissions(app, setup):
    ws, _user, conn, _plan, client = setup
    html = client.get(f"/wizard/new?connection={conn.id}").get_data(as_text=True)
    assert "Acme Research" in html and "00D5g0000000001EAA" in html and "Use Production" in html
    assert 'data-step="connect" data-state="current"' in html and 'data-step="object" data-state="locked"' in html
    created = client.post("/wizard/new", data={"csrf_token": csrf_token(client), "connection": conn.id})
    assert created.status_code == 303 and re.search(r"/wizard/plans/\d+/object$", created.headers["Location"])
    researcher = web_client(app, add_member(ws, "r@alpha.example"), ws)
    assert researcher.get("/wizard/new").status_code == 403
    assert researcher.get(f"/wizard/plans/{_plan.id}/object").status_code == 403
    other_ws, other = make_admin("Beta")
    assert web_client(app, other, other_ws).get(f"/wizard/plans/{_plan.id}/object").status_code == 404


def test_disconnected_connection_locks_the_steps(app, setup):
    _ws, _user, conn, plan, client = setup
    conn.status = "disconnected"
    db.session.commit()
    response = client.get(f"/wizard/plans/{plan.id}/object")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/wizard/plans/{plan.id}/connect")
    html = client.get(f"/wizard/plans/{plan.id}/connect").get_data(as_text=True)
    assert "disconnected" in html and "Use Production" not in html


def test_changing_the_object_of_an_active_plan_makes_it_a_draft_and_run_now_is_refused(app, setup):
    from datetime import datetime, timedelta, timezone
    from models import SyncRun
    _ws, _user, _conn, plan, client = setup
    plan_service.save_object(plan, "Contact", ["Contact", "Lead"])
    plan.mapping = {"fields": {"email": ["Email"], "external_id": ["Id"]}}
    plan.filters = {"op": "AND", "items": [{"field": "Email", "operator": "is_not_empty"}]}
    plan.status, plan.wizard_step = "active", "schedule"
    plan.next_run_at = datetime.now(timezone.utc) + timedelta(hours=1)
    db.session.commit()
    # the same object keeps the plan active
    assert plan_service.save_object(plan, "Contact", ["Contact", "Lead"]) == {}
    assert plan.status == "active" and plan.next_run_at is not None
    # Back to the object step in the browser, another object
    response = client.post(f"/wizard/plans/{plan.id}/object",
                           data={"csrf_token": csrf_token(client), "object_name": "Lead"})
    assert response.status_code in (200, 303)
    db.session.expire_all()
    plan = db.session.get(ImportPlan, plan.id)
    assert (plan.object_name, plan.status, plan.next_run_at, plan.mapping) == ("Lead", "draft", None, {})
    # the Imports page offers no Run now, and a posted one is refused with a message
    page = client.get("/operations/").get_data(as_text=True)
    assert "Run now" not in page
    before = db.session.query(SyncRun).count()
    response = client.post(f"/operations/plans/{plan.id}/run", data={"csrf_token": csrf_token(client)},
                           follow_redirects=True)
    assert "is a draft" in response.get_data(as_text=True)
    assert db.session.query(SyncRun).count() == before
