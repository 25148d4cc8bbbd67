"""Step 4, Filters, through the web app against the emulator: plain form posts (no JavaScript),
the exact SOQL shown, the live count, rows added and removed, the describe as the only source of
field names."""
import re

from core.extensions import db
from models import ImportPlan
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import filter_form, soql_shown, text_of


def url(plan, suffix=""):
    return f"/wizard/plans/{plan.id}/filters{suffix}"


def test_get_offers_describe_fields_parents_picklists_and_campaigns_never_compound(wiz):
    wiz.create("Campaign", {"Name": "Spring panel"})
    plan = wiz.plan()
    html = text_of(wiz.get(url(plan)))
    assert 'value="MailingCountry"' in html and 'value="Account.Customer_Tier__c"' in html
    assert 'value="Account.Type"' in html
    assert 'value="MailingAddress"' not in html
    assert "Campaign membership" in html
    assert 'hx-trigger="input changed delay:500ms"' in html
    # picklist values offered from the describe once a picklist field is chosen (no JS: refresh)
    r = wiz.post(url(plan), filter_form([("Account.Customer_Tier__c", "equals", None)], action="refresh"))
    assert r.status_code == 200
    assert '<option value="Enterprise"' in text_of(r) and '<option value="Mid-Market"' in text_of(r)
    r = wiz.post(url(plan), filter_form([("__campaign__", "in_campaign", None)], action="refresh"))
    assert "Spring panel" in text_of(r)


def test_exact_soql_shown_and_live_count_from_the_emulator(wiz):
    for country, email in (("United Kingdom", "a@x.example"), ("United Kingdom", None), ("Germany", "c@x.example")):
        wiz.create("Contact", {"LastName": "P", "MailingCountry": country, "Email": email})
    plan = wiz.plan()
    form = filter_form([("MailingCountry", "equals", "United Kingdom"), ("Email", "is_not_empty", None)])
    r = wiz.post(url(plan, "/count"), form, htmx=True)
    html = text_of(r)
    assert r.status_code == 200 and "<html" not in html  # the fragment only
    assert soql_shown(html, "soql-where") == "MailingCountry = 'United Kingdom' AND Email != null"
    assert soql_shown(html, "soql-count") == ("SELECT COUNT() FROM Contact WHERE MailingCountry = 'United Kingdom' "
                                              "AND Email != null")
    query = soql_shown(html, "soql-query")
    assert query.startswith("SELECT Id, SystemModstamp, ") and query.endswith(
        " FROM Contact WHERE MailingCountry = 'United Kingdom' AND Email != null ORDER BY SystemModstamp, Id")
    assert soql_shown(html, "match-count") == "1"
    # an OR group, one level deep
    form = filter_form([("MailingCountry", "equals", "Germany"), ("Email", "is_empty", None, 1),
                        ("LastName", "starts_with", "P", 1)], groups={1: "OR"})
    html = text_of(wiz.post(url(plan, "/count"), form, htmx=True))
    assert soql_shown(html, "soql-where") == "MailingCountry = 'Germany' AND (Email = null OR LastName LIKE 'P%')"
    assert soql_shown(html, "match-count") == "1"


def test_save_stores_the_architecture_shape_and_moves_to_the_preview(wiz):
    plan = wiz.plan()
    form = filter_form([("MailingCountry", "equals", "United Kingdom"),
                        ("Account.Customer_Tier__c", "equals", "Enterprise", 1),
                        ("Persona__c", "any_of", ["Designer", "Engineer"], 1)], groups={1: "OR"})
    r = wiz.post(url(plan), form)
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/wizard/plans/{plan.id}/preview")
    db.session.expire_all()
    saved = db.session.get(ImportPlan, plan.id)
    assert saved.filters == {"op": "AND", "items": [
        {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"},
        {"op": "OR", "items": [
            {"field": "Account.Customer_Tier__c", "operator": "equals", "value": "Enterprise"},
            {"field": "Persona__c", "operator": "any_of", "value": ["Designer", "Engineer"]}]}]}
    assert saved.wizard_step == "preview"
    # reload shows the saved rows
    html = text_of(wiz.get(url(plan)))
    assert 'value="United Kingdom"' in html and "Group 1" in html


def test_add_and_remove_rows_and_groups_without_javascript(wiz):
    plan = wiz.plan()
    base = [("MailingCountry", "equals", "United Kingdom"), ("LastName", "equals", "Doe")]
    html = text_of(wiz.post(url(plan), filter_form(base, action="add_row-0")))
    assert 'name="rows-2-field"' in html and 'name="rows-3-field"' not in html
    html = text_of(wiz.post(url(plan), filter_form(base, action="add_group")))
    assert 'name="groups-1-op"' in html and 'name="rows-2-group" value="1"' in html
    html = text_of(wiz.post(url(plan), filter_form(base, action="remove_row-0")))
    assert 'value="Doe"' in html and 'value="United Kingdom"' not in html
    grouped = base + [("Email", "is_empty", None, 1)]
    html = text_of(wiz.post(url(plan), filter_form(grouped, groups={1: "OR"}, action="remove_group-1")))
    assert 'name="groups-1-op"' not in html and 'name="rows-2-field"' not in html
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).filters == {}  # nothing saved by these buttons
    crafted = text_of(wiz.post(url(plan), filter_form(base, groups={99: "OR"}, action="refresh")))
    assert 'name="groups-1-op"' not in crafted  # a group number past MAX_GROUPS makes no empty groups


def test_unknown_field_or_wrong_operator_is_an_error_on_that_row_and_nothing_is_sent(wiz, monkeypatch):
    plan = wiz.plan()
    calls = []
    from salesforce.client import SalesforceClient
    real_count = SalesforceClient.count
    monkeypatch.setattr(SalesforceClient, "count", lambda self, soql: calls.append(soql) or real_count(self, soql))
    form = filter_form([("LastName", "equals", "Doe"), ("Secret__c", "equals", "x"),
                        ("Persona__c", "contains", "Des")])
    r = wiz.post(url(plan), form)
    assert r.status_code == 422
    html = text_of(r)
    assert 'id="rows-1-error"' in html and "is not a field of Contact" in html
    assert 'id="rows-2-error"' in html and "doesn" in html and 'id="rows-0-error"' not in html
    r = wiz.post(url(plan, "/count"), form, htmx=True)
    assert "no query is sent" in text_of(r)
    assert calls == []
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).filters == {}


def test_another_workspace_cannot_reach_the_plan(wiz):
    from tests.support.web import make_world
    other = make_world("Other")
    foreign = ImportPlan(workspace_id=other["workspace_id"], connection_id=other["ids"]["connection"],
                         object_name="Contact", wizard_step="filters")
    db.session.add(foreign)
    db.session.commit()
    assert wiz.get(f"/wizard/plans/{foreign.id}/filters").status_code == 404
    assert wiz.post(f"/wizard/plans/{foreign.id}/filters/count", filter_form([])).status_code == 404


def test_a_field_or_operator_change_redraws_only_the_rows_with_every_posted_value(wiz):
    """htmx posts the whole form (hx-include) with action=refresh and HX-Target filter-rows; the
    answer is the rows region re-rendered from the posted state (plus the count out of band),
    never the whole panel, so what was typed into any Value survives the change."""
    plan = wiz.plan()
    html = text_of(wiz.get(url(plan)))
    field_select = re.search(r'<select id="f-rows-0-field"[^>]*>', html).group(0)
    assert 'hx-target="#filter-rows"' in field_select and 'hx-include="#filters-form"' in field_select
    assert 'hx-target="#wizard"' not in field_select
    operator_select = re.search(r'<select id="f-rows-0-operator"[^>]*>', html).group(0)
    assert 'hx-target="#filter-rows"' in operator_select and 'hx-include="#filters-form"' in operator_select

    # row 0's field changed from LastName to FirstName after "Ali" was typed; row 1 has a value too
    form = filter_form([("FirstName", "equals", "Ali"), ("MailingCountry", "contains", " King")], action="refresh")
    r = wiz.post(url(plan), form, htmx=True, headers={"HX-Target": "filter-rows"})
    html = text_of(r)
    assert r.status_code == 200
    assert html.lstrip().startswith('<div id="filter-rows">')
    assert 'id="wizard-body"' not in html and 'class="stepper' not in html and "<html" not in html
    assert re.search(r'name="rows-0-value" type="text" value="Ali"', html)
    assert re.search(r'name="rows-1-value" type="text" value=" King"', html)  # spaces kept (C05)
    assert re.search(r'<option value="FirstName" selected>', html)
    assert 'id="filter-count" aria-live="polite" hx-swap-oob="true"' in html
    assert soql_shown(html, "soql-where") == "FirstName = 'Ali' AND MailingCountry LIKE '% King%'"

    # operator to "is empty" and back: the value typed before is still there
    form = filter_form([("FirstName", "is_empty", "Ali")], action="refresh")
    html = text_of(wiz.post(url(plan), form, htmx=True, headers={"HX-Target": "filter-rows"}))
    assert '<input type="hidden" name="rows-0-value" value="Ali">' in html
    assert soql_shown(html, "soql-where") == "FirstName = null"
    form = filter_form([("FirstName", "equals", "Ali")], action="refresh")
    html = text_of(wiz.post(url(plan), form, htmx=True, headers={"HX-Target": "filter-rows"}))
    assert re.search(r'name="rows-0-value" type="text" value="Ali"', html)

    # to a picklist field: the typed text stays selected (marked), not silently dropped
    form = filter_form([("Account.Customer_Tier__c", "equals", "Gold")], action="refresh")
    html = text_of(wiz.post(url(plan), form, htmx=True, headers={"HX-Target": "filter-rows"}))
    assert '<option value="Gold" selected>Gold (not a value of this field)</option>' in html

    # without JavaScript the same post answers the whole page with the same values
    r = wiz.post(url(plan), filter_form([("FirstName", "equals", "Ali"), ("LastName", "is_empty", "Doe")],
                                        action="refresh"))
    html = text_of(r)
    assert r.status_code == 200 and "<html" in html
    assert re.search(r'name="rows-0-value" type="text" value="Ali"', html)
    assert '<input type="hidden" name="rows-1-value" value="Doe">' in html
    # and saving stores no value for "is empty"
    r = wiz.post(url(plan), filter_form([("FirstName", "equals", "Ali"), ("LastName", "is_empty", "Doe")]))
    assert r.status_code == 303
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).filters["items"][1] == \
        {"field": "LastName", "operator": "is_empty", "value": None}


def test_a_value_past_salesforces_limit_is_a_row_error_and_nothing_is_sent(wiz, monkeypatch):
    plan = wiz.plan()
    calls = []
    from salesforce.client import SalesforceClient
    monkeypatch.setattr(SalesforceClient, "count", lambda self, soql: calls.append(soql))
    form = filter_form([("LastName", "equals", "x" * 100_000)])
    assert "no query is sent" in text_of(wiz.post(url(plan, "/count"), form, htmx=True))
    r = wiz.post(url(plan), form)
    assert r.status_code == 422
    assert 'id="rows-0-error"' in text_of(r) and "100,000 characters long" in text_of(r)
    assert "4,000 characters" in text_of(r)
    assert calls == []
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).filters == {}


def test_a_failed_count_shows_the_classified_reason_never_the_raw_error(wiz, monkeypatch):
    import requests
    from salesforce.client import SalesforceClient
    from salesforce.errors import classify
    plan = wiz.plan()
    raw = "HTTPSConnectionPool(host='acme.my.salesforce.com'): Max retries exceeded with url: /services/data/v60.0/query?q=SELECT"

    def refuse(self, soql):
        raise classify(requests.exceptions.ConnectionError(raw))

    monkeypatch.setattr(SalesforceClient, "count", refuse)
    html = text_of(wiz.post(url(plan, "/count"), filter_form([("LastName", "equals", "Doe")]), htmx=True))
    assert "Could not reach Salesforce." in html
    assert "HTTPSConnectionPool" not in html and "/services/data" not in html


def test_stepper_states_headings_in_the_guides_words_and_the_css_that_styles_them(wiz):
    from pathlib import Path
    plan = wiz.plan(step="filters")
    html = text_of(wiz.get(url(plan)))
    assert "4. Add filters and preview matched records" in html
    stepper = html[html.index('<nav class="stepper"'):html.index("</nav>", html.index('<nav class="stepper"'))]
    states = dict(re.findall(r'data-step="(\w+)" data-state="(\w+)"', stepper))
    assert states == {"connect": "done", "object": "done", "mapping": "done", "filters": "current",
                      "preview": "locked", "schedule": "locked"}
    assert 'class="stepper-list"' in stepper and "style=" not in stepper
    # one number per step (the list's own markers are off in the CSS), a check for done steps
    assert stepper.count('class="step-number"') == 6 and stepper.count("✓") == 3
    css = (Path(__file__).resolve().parents[2] / "static/css/app.css").read_text()
    for rule in (".stepper-list {", ".step-done", ".step-current", ".step-open", ".step-locked",
                 "list-style: none", "white-space: pre-wrap; overflow-wrap: anywhere", ".table-scroll"):
        assert rule in css, rule
    schedule = wiz.plan(step="schedule")
    assert "Import, sync, and invite participants" in text_of(wiz.get(f"/wizard/plans/{schedule.id}/schedule"))


def _count_salesforce_calls(monkeypatch) -> list:
    from salesforce.client import SalesforceClient
    calls: list = []
    real = SalesforceClient._call

    def _call(self, fn, **kw):
        calls.append(fn)
        return real(self, fn, **kw)
    monkeypatch.setattr(SalesforceClient, "_call", _call)
    return calls


def test_the_panel_renders_without_asking_salesforce_and_loads_the_count_on_its_own(wiz, monkeypatch):
    """The step's panel (htmx GET) sends nothing to Salesforce once the describe and the campaigns
    are cached: the SOQL is there at once, the count comes from its own request (hx-trigger=load)."""
    wiz.create("Campaign", {"Name": "Spring panel"})
    for country in ("United Kingdom", "United Kingdom", "Germany"):
        wiz.create("Contact", {"LastName": "P", "MailingCountry": country})
    plan = wiz.plan(filters={"op": "AND", "items": [
        {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]})
    wiz.get(url(plan), htmx=True)  # the first visit reads the describe and the campaigns
    calls = _count_salesforce_calls(monkeypatch)
    r = wiz.get(url(plan), htmx=True)
    html = text_of(r)
    assert r.status_code == 200 and calls == []
    assert "Campaign membership" in html  # the cached campaign list
    assert soql_shown(html, "soql-where") == "MailingCountry = 'United Kingdom'"
    assert soql_shown(html, "match-count") is None and 'id="match-count-pending"' in html
    loader = re.search(r'<section class="card" id="filter-count"[^>]*>', html).group(0)
    assert f'hx-post="/wizard/plans/{plan.id}/filters/count"' in loader and 'hx-trigger="load"' in loader
    assert 'hx-include="#filters-form"' in loader and 'hx-swap="outerHTML"' in loader
    # what the loader posts: the form as rendered
    form = filter_form([("MailingCountry", "equals", "United Kingdom")], action="")
    html = text_of(wiz.post(url(plan, "/count"), form, htmx=True))
    assert soql_shown(html, "match-count") == "2" and 'hx-trigger="load"' not in html
    assert len(calls) == 1  # the count, and no Campaign query
    # a whole page (no JavaScript) still shows the count inline
    html = text_of(wiz.get(url(plan)))
    assert soql_shown(html, "match-count") == "2" and 'hx-trigger="load"' not in html


def test_campaigns_are_asked_again_after_their_cache_time(wiz, monkeypatch):
    from datetime import timedelta
    from models import DescribeCache
    from services import catalog
    wiz.create("Campaign", {"Name": "Spring panel"})
    plan = wiz.plan()
    assert "Spring panel" in text_of(wiz.post(url(plan), filter_form(
        [("__campaign__", "in_campaign", None)], action="refresh")))
    wiz.create("Campaign", {"Name": "Autumn panel"})
    r = wiz.post(url(plan), filter_form([("__campaign__", "in_campaign", None)], action="refresh"))
    assert "Autumn panel" not in text_of(r)  # still the cached list
    row = db.session.scalar(db.select(DescribeCache).where(DescribeCache.object_name == catalog.CAMPAIGNS_KEY))
    row.fetched_at = row.fetched_at - catalog.CAMPAIGNS_TTL - timedelta(seconds=1)
    db.session.commit()
    r = wiz.post(url(plan), filter_form([("__campaign__", "in_campaign", None)], action="refresh"))
    assert "Autumn panel" in text_of(r) and "Spring panel" in text_of(r)


def test_a_parent_salesforce_refuses_to_describe_is_not_asked_for_again(wiz, monkeypatch):
    """A lookup target whose describe Salesforce refuses (NotFound, with no describeGlobal cached
    to say it is not queryable) is remembered: the next render asks Salesforce nothing, and the
    object step's Refresh asks again."""
    from models import DescribeCache
    from salesforce.client import SalesforceClient
    from salesforce.errors import NotFound
    from services import catalog
    plan = wiz.plan()
    wiz.get(url(plan), htmx=True)
    db.session.execute(db.delete(DescribeCache).where(DescribeCache.object_name.in_([catalog.GLOBAL_KEY, "Account"])))
    db.session.commit()
    real = SalesforceClient.describe
    refused: list = []

    def describe(self, name):
        if name == "Account":
            refused.append(name)
            raise NotFound("no Account here", code="NOT_FOUND")
        return real(self, name)
    monkeypatch.setattr(SalesforceClient, "describe", describe)
    calls = _count_salesforce_calls(monkeypatch)
    html = text_of(wiz.get(url(plan), htmx=True))
    assert 'value="Account.Type"' not in html and 'value="MailingCountry"' in html
    assert refused == ["Account"]
    row = db.session.scalar(db.select(DescribeCache).where(DescribeCache.object_name == "Account"))
    assert row.payload == {catalog.UNAVAILABLE: "NotFound"}
    calls.clear()
    html = text_of(wiz.get(url(plan), htmx=True))
    assert calls == [] and refused == ["Account"]
    assert 'value="Account.Type"' not in html and 'value="MailingCountry"' in html
    assert catalog.cached_cursor_field(wiz.connection, "Account") is None
    monkeypatch.setattr(SalesforceClient, "describe", real)
    catalog.refresh(wiz.connection)
    assert 'value="Account.Type"' in text_of(wiz.get(url(plan), htmx=True))


def test_reloading_the_step_keeps_rules_added_but_not_saved(wiz):
    plan = wiz.plan(filters={"op": "AND", "items": [
        {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]})
    # the panel's own count request (the saved rules as rendered) leaves no draft
    wiz.post(url(plan, "/count"), filter_form([("MailingCountry", "equals", "United Kingdom")], action=""), htmx=True)
    html = text_of(wiz.get(url(plan)))
    assert 'id="filters-unsaved"' not in html and 'name="rows-1-field"' not in html
    # a rule added (htmx, as the button does), then a value typed (the live count)
    rows = [("MailingCountry", "equals", "United Kingdom"), ("", "", None)]
    wiz.post(url(plan), filter_form(rows, action="add_row-0"), htmx=True)
    rows = [("MailingCountry", "equals", "United Kingdom"), ("LastName", "starts_with", "Do")]
    wiz.post(url(plan, "/count"), filter_form(rows, action=""), htmx=True)
    for htmx in (False, True):  # a reload (whole page) and the panel
        html = text_of(wiz.get(url(plan), htmx=htmx))
        assert 'id="filters-unsaved"' in html
        assert re.search(r'name="rows-1-field"[^>]*>.*?<option value="LastName" selected', html, re.S)
        assert 'name="rows-1-value" type="text" value="Do"' in html
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).filters["items"] == [
        {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]  # nothing saved
    # saving stores them and drops the draft
    r = wiz.post(url(plan), filter_form(rows))
    assert r.status_code == 303
    db.session.expire_all()
    saved = db.session.get(ImportPlan, plan.id)
    assert saved.filters_draft is None and len(saved.filters["items"]) == 2
    html = text_of(wiz.get(url(plan)))
    assert 'id="filters-unsaved"' not in html and 'value="Do"' in html


def test_a_picked_field_without_an_operator_takes_the_one_shown_selected(wiz):
    """Picking a field in a new row posts no operator yet; the operator list shows its first
    operator selected, so that is the operator checked and sent (not "unknown operator ''")."""
    wiz.create("Contact", {"LastName": "P", "FirstName": "Ann", "MailingCountry": "United Kingdom"})
    plan = wiz.plan()
    html = text_of(wiz.post(url(plan, "/count"), filter_form([("FirstName", "", "Ann")]), htmx=True))
    assert "unknown operator" not in html
    assert soql_shown(html, "soql-where") == "FirstName = 'Ann'"
    r = wiz.post(url(plan), filter_form([("FirstName", "", "Ann")]))
    assert r.status_code == 303
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).filters == {"op": "AND", "items": [
        {"field": "FirstName", "operator": "equals", "value": "Ann"}]}
