"""Filters as the wizard edits them, their checks, the schedule's next run and the API estimate."""
from datetime import datetime, timezone

import pytest

from salesforce.describe import FieldCatalog, ObjectDescribe
from services.plan_steps import (CAMPAIGN_FIELD, FilterRowState, FilterState, GroupState, StepError,
                                 api_estimate, check_filters, filter_state_from_json, group_from_json,
                                 parse_daily_time)


def f(name, type_, **kw):
    return {"name": name, "label": kw.pop("label", name), "type": type_, "filterable": True, **kw}


CONTACT = ObjectDescribe.from_json({"name": "Contact", "label": "Contact", "fields": [
    f("Id", "id"), f("FirstName", "string"), f("LastName", "string"), f("Email", "email"),
    f("MailingAddress", "address", filterable=False), f("MailingCity", "string", compoundFieldName="MailingAddress"),
    f("MailingCountry", "string", compoundFieldName="MailingAddress"),
    f("Persona__c", "multipicklist", picklistValues=[{"value": v, "label": v, "active": True}
                                                     for v in ("Researcher", "Designer", "Engineer")]),
    f("LastModifiedDate", "datetime"),
    f("AccountId", "reference", referenceTo=["Account"], relationshipName="Account", label="Account ID"),
]})
ACCOUNT = ObjectDescribe.from_json({"name": "Account", "label": "Account", "fields": [
    f("Id", "id"), f("Name", "string"), f("Type", "picklist"), f("Customer_Tier__c", "picklist")]})
CATALOG = FieldCatalog(CONTACT, {"Account": ACCOUNT})

ARCH_EXAMPLE = {"op": "AND", "items": [
    {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"},
    {"op": "OR", "items": [
        {"field": "Account.Customer_Tier__c", "operator": "equals", "value": "Enterprise"},
        {"field": "Persona__c", "operator": "any_of", "value": ["Designer", "Engineer"]}]},
    {"field": "Id", "operator": "in_campaign", "value": "701Dn000001AbCdIAK"},
]}


def test_the_architecture_example_gives_the_exact_where_clause():
    check = check_filters(ARCH_EXAMPLE, CATALOG)
    assert check.ok
    assert check.where == ("MailingCountry = 'United Kingdom' AND (Account.Customer_Tier__c = 'Enterprise' "
                           "OR Persona__c INCLUDES ('Designer','Engineer')) AND Id IN (SELECT ContactId FROM "
                           "CampaignMember WHERE CampaignId = '701Dn000001AbCdIAK')")


def test_editable_state_round_trip_keeps_display_order_equal_to_row_index():
    state = filter_state_from_json(ARCH_EXAMPLE)
    assert [r.field for r in state.rows] == ["MailingCountry", CAMPAIGN_FIELD, "Account.Customer_Tier__c",
                                             "Persona__c"]
    data = state.to_json()
    assert data["items"][1] == {"field": "Id", "operator": "in_campaign", "value": "701Dn000001AbCdIAK"}
    assert check_filters(data, CATALOG).where.endswith("OR Persona__c INCLUDES ('Designer','Engineer'))")
    again = filter_state_from_json(data)
    assert [r.field for r in again.rows] == [r.field for r in state.rows]


def test_each_wrong_row_gets_its_own_error_and_no_where():
    state = FilterState("AND", [GroupState("AND", [
        FilterRowState("MailingCity", "equals", "Berlin"),
        FilterRowState("MailingAddress", "equals", "Berlin"),
        FilterRowState("Nope__c", "equals", "x"),
        FilterRowState("Persona__c", "contains", "Des"),
    ])])
    check = check_filters(state.to_json(), CATALOG)
    assert check.where == ""
    assert set(check.errors) == {1, 2, 3}
    assert "compound" in check.errors[1]
    assert "not a field" in check.errors[2]


def test_campaign_membership_under_or_is_refused_on_its_row():
    data = {"op": "AND", "items": [
        {"field": "Email", "operator": "is_not_empty"},
        {"op": "OR", "items": [{"field": "LastName", "operator": "equals", "value": "A"},
                               {"field": "Id", "operator": "in_campaign", "value": "701Dn000001AbCdIAK"}]}]}
    check = check_filters(data, CATALOG)
    assert check.errors == {2: "campaign membership can't be combined with OR in Salesforce"}


def test_legacy_rows_and_groups_shape_is_read():
    legacy = {"op": "AND", "rows": [{"field": "Email", "operator": "is_not_empty"}],
              "groups": [{"op": "OR", "rows": [{"field": "LastName", "operator": "equals", "value": "A"},
                                               {"field": "LastName", "operator": "equals", "value": "B"}]}]}
    assert check_filters(legacy, CATALOG).where == "Email != null AND (LastName = 'A' OR LastName = 'B')"
    assert group_from_json({}) is None and check_filters({}, CATALOG).where == ""


LONDON = "Europe/London"


def next_run(schedule, daily_time, tz, now):
    """services.schedules.compute_next_run, as the schedule step calls it (unsaved rows)."""
    from models import ImportPlan, Workspace
    from services.schedules import compute_next_run
    return compute_next_run(ImportPlan(schedule=schedule, daily_time=daily_time), Workspace(timezone=tz), now)


@pytest.mark.parametrize("now, expected", [
    # winter: 07:30 London is 07:30 UTC
    (datetime(2024, 1, 10, 6, 0, tzinfo=timezone.utc), datetime(2024, 1, 10, 7, 30, tzinfo=timezone.utc)),
    (datetime(2024, 1, 10, 8, 0, tzinfo=timezone.utc), datetime(2024, 1, 11, 7, 30, tzinfo=timezone.utc)),
    # summer: 07:30 London is 06:30 UTC
    (datetime(2024, 7, 10, 6, 0, tzinfo=timezone.utc), datetime(2024, 7, 10, 6, 30, tzinfo=timezone.utc)),
    # across the spring change (31 March 2024): the wall-clock time is kept
    (datetime(2024, 3, 30, 8, 0, tzinfo=timezone.utc), datetime(2024, 3, 31, 6, 30, tzinfo=timezone.utc)),
])
def test_daily_time_in_the_workspace_time_zone_gives_next_run_in_utc(now, expected):
    got = next_run("daily", "07:30", LONDON, now)
    assert got == expected and got.tzinfo is not None


def test_other_schedules_and_daily_time_parsing():
    now = datetime(2024, 1, 10, 6, 0, 30, tzinfo=timezone.utc)
    assert next_run("hourly", None, LONDON, now) == datetime(2024, 1, 10, 7, 0, 30, tzinfo=timezone.utc)
    assert next_run("manual", None, LONDON, now) is None
    assert next_run("daily", "23:00", "America/New_York", now) == datetime(2024, 1, 11, 4, 0, tzinfo=timezone.utc)
    assert parse_daily_time("7:05").strftime("%H:%M") == "07:05"
    for bad in ("7pm", "", "25:00", "07:5"):
        with pytest.raises(StepError):
            parse_daily_time(bad)


def test_api_estimate():
    assert api_estimate(0, "manual").per_run == 3
    e = api_estimate(4001, "hourly")
    assert (e.pages, e.per_run, e.per_day) == (3, 5, 120)
    assert api_estimate(2000, "daily").per_day == 3
    assert api_estimate(None, "once").text.startswith("unknown")
