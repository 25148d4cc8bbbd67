"""services.plans without Salesforce: drafts, the stepper, fingerprints, consent voiding,
to_filter_group and to_spec."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.extensions import db
from models import ImportPlan, SalesforceConnection
from models.types import utcnow
from salesforce.soql import FilterGroup, FilterRow
from services import plans as plan_service
from sync.plan import Action, LeavingPolicy
from tests.app.wizard_support import make_admin

MAPPING = {"fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
                      "phone": ["Phone", "MobilePhone"], "company": ["Account.Name"], "segment": ["Persona__c"],
                      "consent": ["Consent_Status__c"], "external_id": ["Id"]},
           "country": ["MailingCountry"], "attributes": [{"name": "Tier", "path": "Account.Customer_Tier__c"}],
           "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Opted In", "Granted"],
                            "opted_out": ["Opted Out", "Withdrawn"], "opt_out_flags": ["HasOptedOutOfEmail"]}}
FILTERS = {"op": "AND", "items": [
    {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"},
    {"op": "OR", "items": [
        {"field": "Account.Customer_Tier__c", "operator": "equals", "value": "Enterprise"},
        {"field": "Persona__c", "operator": "any_of", "value": ["Designer", "Engineer"]}]},
    {"field": "Id", "operator": "in_campaign", "value": "701000000000001AAA"}]}


@pytest.fixture
def plan(app):
    ws, user = make_admin()
    conn = SalesforceConnection(workspace_id=ws.id, name="Production", login_url="https://login.salesforce.com",
                                org_id="00D5g0000000001EAA", status="connected")
    db.session.add(conn)
    db.session.commit()
    return plan_service.create_draft(ws, conn, user)


def _states(plan, current="object"):
    return {s.key: s.state for s in plan_service.stepper(plan, current)}


def test_draft_and_stepper_states(app, plan):
    assert (plan.status, plan.wizard_step, plan.mapping, plan.filters) == ("draft", "object", {}, {})
    assert _states(plan) == {"connect": "done", "object": "current", "mapping": "locked", "filters": "locked",
                             "preview": "locked", "schedule": "locked"}
    assert plan_service.save_object(plan, "Contact", ["Contact"]) == {}
    assert _states(plan, "mapping") == {"connect": "done", "object": "done", "mapping": "current",
                                        "filters": "locked", "preview": "locked", "schedule": "locked"}
    plan.mapping = MAPPING
    plan_service.mark_reached(plan, "filters")
    assert _states(plan, "filters")["mapping"] == "done" and _states(plan, "filters")["preview"] == "locked"
    # An invalid earlier step locks everything after it, even steps reached before.
    plan.mapping = {"fields": {"email": ["Email"]}}
    assert plan_service.step_errors(plan, "mapping") == {
        "external_id": "Map the External Source ID (the record ID) so updates find the same participant."}
    assert _states(plan, "object")["mapping"] == "open" and _states(plan, "object")["filters"] == "locked"
    assert plan_service.reachable(plan, "mapping") and not plan_service.reachable(plan, "filters")
    # A connection needing reconnect locks every step after Connect.
    plan.mapping = MAPPING
    plan_service.plan_connection(plan).status = "needs_reconnect"
    assert _states(plan, "connect") == {"connect": "current", **{k: "locked" for k in
                                                                 ("object", "mapping", "filters", "preview", "schedule")}}
    assert plan_service.stepper(None, "connect")[1].state == "locked"


def test_registered_step_checks_gate_the_following_steps(app, plan, monkeypatch):
    monkeypatch.setattr(plan_service, "_STEP_CHECKS", {})
    plan.object_name, plan.mapping, plan.wizard_step = "Contact", MAPPING, "schedule"
    assert plan_service.reachable(plan, "schedule")
    plan_service.register_step_check("filters", lambda p: {"filters": "bad row"})
    assert not plan_service.reachable(plan, "preview") and plan_service.reachable(plan, "filters")
    with pytest.raises(ValueError):
        plan_service.register_step_check("nope", lambda p: {})


def test_draft_needs_a_connection_of_the_same_workspace(app, plan):
    other_ws, _ = make_admin("Beta")
    with pytest.raises(ValueError):
        plan_service.create_draft(other_ws, plan_service.plan_connection(plan))


def test_fingerprint_covers_object_mapping_filters_and_consent_also_action_and_target(app, plan):
    plan.object_name, plan.mapping, plan.filters = "Contact", MAPPING, FILTERS
    fp, cfp = plan_service.fingerprint(plan), plan_service.consent_fingerprint(plan)
    assert len(fp) == 64 and int(fp, 16) >= 0
    plan.name, plan.schedule = "Renamed", "daily"
    assert plan_service.fingerprint(plan) == fp and plan_service.consent_fingerprint(plan) == cfp
    plan.action = "invite_study"
    assert plan_service.fingerprint(plan) == fp and plan_service.consent_fingerprint(plan) != cfp
    cfp2 = plan_service.consent_fingerprint(plan)
    plan.target_study_id = 7
    assert plan_service.consent_fingerprint(plan) != cfp2
    plan.filters = {"op": "AND", "items": []}
    assert plan_service.fingerprint(plan) != fp


def test_apply_change_resets_cursor_and_voids_consent(app, plan):
    plan.object_name, plan.mapping, plan.filters, plan.action = "Contact", MAPPING, FILTERS, "invite_study"
    plan.cursor_at, plan.cursor_fingerprint = utcnow(), "abc"
    plan.consent_confirmed_at, plan.consent_confirmation_text = utcnow(), "I confirm these contacts may be invited."
    plan.consent_fingerprint = plan_service.consent_fingerprint(plan)
    before = plan_service.snapshot(plan)
    plan.target_study_id = 3  # target changed: consent void, cursor kept (the records read are the same)
    plan_service.apply_change(plan, before)
    assert plan.consent_confirmed_at is None and plan.consent_fingerprint is None
    assert plan.cursor_fingerprint == "abc"
    before = plan_service.snapshot(plan)
    plan.filters = {"op": "AND", "items": [FILTERS["items"][0]]}
    plan_service.apply_change(plan, before)
    assert plan.cursor_at is None and plan.cursor_fingerprint is None


def test_to_filter_group_matches_the_stored_shape(app, plan):
    assert plan_service.to_filter_group(plan) is None
    plan.filters = FILTERS
    assert plan_service.to_filter_group(plan) == FilterGroup("AND", (
        FilterRow("MailingCountry", "equals", "United Kingdom"),
        FilterGroup("OR", (FilterRow("Account.Customer_Tier__c", "equals", "Enterprise"),
                           FilterRow("Persona__c", "any_of", ["Designer", "Engineer"]))),
        FilterRow("Id", "in_campaign", "701000000000001AAA")))


def test_to_spec_builds_the_engine_plan(app, plan):
    ws = plan_service.plan_connection(plan)
    from models import Workspace
    workspace = db.session.get(Workspace, plan.workspace_id)
    from models import Study
    studies = [Study(workspace_id=workspace.id, name=n) for n in ("One", "Two")]
    db.session.add_all(studies)
    db.session.flush()
    plan.object_name, plan.mapping, plan.filters = "Contact", MAPPING, FILTERS
    plan.action, plan.target_study_id, plan.leaving_policy = "invite_study", studies[0].id, "archive"
    plan.excluded_record_ids = ["003000000000001"]
    plan.consent_confirmed_at, plan.consent_confirmation_text = utcnow(), "I confirm."
    plan.consent_fingerprint = plan_service.consent_fingerprint(plan)
    spec = plan_service.to_spec(plan, workspace, cursor_field="LastModifiedDate", look_back=timedelta(minutes=2))
    assert spec.org_id == "00D5g0000000001EAA" and spec.object_name == "Contact" and spec.plan_id == plan.id
    m = spec.mapping
    assert (m.first_name, m.last_name, m.email, m.phone) == (("FirstName",), ("LastName",), ("Email",),
                                                              ("Phone", "MobilePhone"))
    assert (m.company, m.segments, m.country, m.external_id) == (("Account.Name",), ("Persona__c",),
                                                                 ("MailingCountry",), "Id")
    assert m.attributes == (("Tier", "Account.Customer_Tier__c"),)
    c = spec.consent
    assert (c.path, c.opted_in_values, c.opted_out_values, c.opt_out_flags) == (
        "Consent_Status__c", ("Opted In", "Granted"), ("Opted Out", "Withdrawn"), ("HasOptedOutOfEmail",))
    assert spec.action is Action.INVITE_STUDY and spec.target_id == f"study:{studies[0].id}"
    assert spec.invite_confirmation == "I confirm."
    assert spec.leaving_policy is LeavingPolicy.ARCHIVE and spec.default_region == "GB"
    assert spec.cursor_field == "LastModifiedDate" and spec.look_back == timedelta(minutes=2)
    assert spec.excluded_ids == frozenset({"003000000000001AAA"})
    assert '"MailingCountry"' in spec.filters
    # A confirmation given for another target does not reach the engine.
    plan.target_study_id = studies[1].id
    assert plan_service.to_spec(plan, workspace, cursor_field="SystemModstamp").invite_confirmation is None
    other, _ = make_admin("Beta")
    with pytest.raises(ValueError):
        plan_service.to_spec(plan, other)
    assert ws.org_id == spec.org_id
