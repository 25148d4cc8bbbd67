"""Incremental runs end to end: creations, updates, deletions, opt-outs (also those the filter
excludes) and records that stop matching; a plan edit resets the cursor; the reconciliation
catches parent changes, missing records and deletions older than the recycle bin."""
import pytest
from sqlalchemy import select

from core.extensions import db
from models import ImportPlan, Invitation, Participant, RunOutcome, Study, SyncRun
from services import runs
from tests.integration.sync_support import (CONTACT_MAPPING, drain, fresh, make_connection, make_plan,
                                            make_workspace, org, participant_count, participant_for, put,
                                            rconn, source_for, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
UK_NOT_OPTED_OUT = {"op": "AND", "items": [
    {"field": "HasOptedOutOfEmail", "operator": "equals", "value": False},
    {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]}


def sync(app, rconn, plan, **kw) -> SyncRun:
    run = runs.request_run(plan, **kw)
    drain(app, rconn)
    return fresh(SyncRun, run.id)


def contact(org, name, seconds, **fields):
    return put(org, "Contact", {"FirstName": name, "LastName": "Test", "Email": f"{name.lower()}@example.org",
                                "MailingCountry": "United Kingdom", "HasOptedOutOfEmail": False,
                                "SystemModstamp": stamp(seconds), **fields})


def test_incremental_creates_updates_deletes_opt_outs_and_leavers(app, rconn, org):
    ids = {name: contact(org, name, i) for i, name in enumerate(["Ann", "Bob", "Cat", "Dan", "Eve"])}
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace), filters=UK_NOT_OPTED_OUT,
                     leaving_policy="archive")
    first = sync(app, rconn, plan)
    assert (first.status, first.imported, first.full_read) == ("succeeded", 5, True)
    study = Study(workspace_id=workspace.id, name="Diary study")
    db.session.add(study)
    db.session.flush()
    invitation = Invitation(workspace_id=workspace.id, participant_id=participant_for(ids["Cat"]).id,
                            target_type="study", target_key=f"study:{study.id}", study_id=study.id,
                            status="pending")
    db.session.add(invitation)
    db.session.commit()

    ids["Fay"] = contact(org, "Fay", 10)                                   # created
    org.update("Contact", ids["Ann"], {"FirstName": "Anna"})              # updated
    org.delete("Contact", ids["Bob"])                                     # deleted
    org.update("Contact", ids["Cat"], {"HasOptedOutOfEmail": True})       # opted out: the filter excludes it
    org.update("Contact", ids["Dan"], {"MailingCountry": "France"})       # no longer matches
    second = sync(app, rconn, plan)
    assert (second.status, second.reason, second.full_read) == ("succeeded", None, False)
    assert (second.fetched, second.imported, second.updated, second.unchanged, second.left) == (6, 1, 4, 1, 3)
    assert participant_count(workspace.id) == 6
    assert participant_for(ids["Ann"]).first_name == "Anna"
    assert participant_for(ids["Fay"]).status == "active"
    states = {name: source_for(ids[name]).source_state for name in ids}
    assert states == {"Ann": "active", "Bob": "deleted", "Cat": "opted_out", "Dan": "no_longer_matching",
                      "Eve": "active", "Fay": "active"}
    people = {name: participant_for(ids[name]) for name in ids}
    assert {n: (p.status, p.consent_status) for n, p in people.items()} == {
        "Ann": ("active", "unknown"), "Bob": ("archived", "unknown"), "Cat": ("archived", "opted_out"),
        "Dan": ("archived", "unknown"), "Eve": ("active", "unknown"), "Fay": ("active", "unknown")}
    invitation = fresh(Invitation, invitation.id)
    assert (invitation.status, invitation.withdrawn_reason) == ("withdrawn", "Opted out in Salesforce; policy: archive")
    reasons = dict(db.session.execute(select(RunOutcome.record_id, RunOutcome.reason)
                                      .where(RunOutcome.run_id == second.id)).all())
    assert reasons[ids["Bob"]] == "Deleted in Salesforce; policy: archive"
    assert reasons[ids["Dan"]] == "No longer matches the plan's filters; policy: archive"

    third = sync(app, rconn, plan)  # nothing changed: the leavers are not handled twice
    assert (third.status, third.fetched, third.updated, third.left) == ("succeeded", 1, 0, 0)
    assert third.unchanged == 1


def test_opt_out_within_the_filter_marks_consent_and_keeps_policy(app, rconn, org):
    a = contact(org, "Ann", 0)
    contact(org, "Bob", 1)
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace), leaving_policy="keep")
    assert sync(app, rconn, plan).imported == 2
    org.update("Contact", a, {"HasOptedOutOfEmail": True})
    run = sync(app, rconn, plan)
    assert (run.status, run.updated, run.left) == ("succeeded", 1, 1)
    person = participant_for(a)
    assert (person.status, person.consent_status) == ("active", "opted_out")
    assert source_for(a).source_state == "opted_out"


def test_plan_edit_resets_the_cursor_and_reads_everything(app, rconn, org):
    for i, name in enumerate(["Ann", "Bob", "Cat"]):
        contact(org, name, i, Department="Design")
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace))
    assert sync(app, rconn, plan).imported == 3
    again = sync(app, rconn, plan)
    assert (again.full_read, again.fetched) == (False, 1)
    plan = fresh(ImportPlan, plan.id)
    plan.mapping = {**CONTACT_MAPPING, "fields": {**CONTACT_MAPPING["fields"], "segment": ["Department"]}}
    db.session.commit()
    edited = sync(app, rconn, plan)
    assert (edited.status, edited.full_read, edited.fetched, edited.updated) == ("succeeded", True, 3, 3)
    assert edited.cursor_before is None
    assert db.session.execute(select(Participant.segments)).scalars().all() == [["Design"]] * 3
    assert fresh(ImportPlan, plan.id).cursor_at.isoformat() == "2024-05-01T00:00:02+00:00"


def test_reconciliation_catches_parent_changes_missing_records_and_purged_deletions(app, rconn, org):
    acme = put(org, "Account", {"Name": "Acme Labs"})
    x = contact(org, "Xia", 0, AccountId=acme)
    y = contact(org, "Yan", 5)
    z = contact(org, "Zed", 6)
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace), leaving_policy="mark_opted_out")
    assert sync(app, rconn, plan).imported == 3
    org.update("Account", acme, {"Name": "Acme Research"})   # the Contact's SystemModstamp stays
    late = contact(org, "Lou", 1)                             # loaded with a timestamp behind the cursor
    with org.state.store.write_lock:                          # purged: gone from the recycle bin too
        org.state.store.db.execute("DELETE FROM records WHERE id = ?", (y,))
    incremental = sync(app, rconn, plan)
    assert (incremental.fetched, incremental.updated, incremental.imported) == (1, 0, 0)
    assert participant_for(x).company == "Acme Labs"

    reconcile = sync(app, rconn, plan, kind="reconcile")
    assert (reconcile.status, reconcile.kind, reconcile.full_read) == ("succeeded", "reconcile", True)
    assert (reconcile.fetched, reconcile.imported, reconcile.updated, reconcile.unchanged, reconcile.left) == \
        (4, 1, 2, 1, 1)
    assert reconcile.reason == "Salesforce has 3 matching records; 3 were linked before reconciliation; 1 left"
    assert participant_for(x).company == "Acme Research"
    assert participant_for(late) is not None
    assert source_for(y).source_state == "deleted"
    assert participant_for(y).consent_status == "opted_out"
    reason = db.session.execute(select(RunOutcome.reason).where(
        RunOutcome.run_id == reconcile.id, RunOutcome.record_id == y)).scalar_one()
    assert reason == ("No longer exists in Salesforce (deleted, and gone from the recycle bin); "
                      "policy: mark_opted_out")
    plan = fresh(ImportPlan, plan.id)
    assert plan.last_reconciled_at is not None
    assert plan.cursor_at.isoformat() == "2024-05-01T00:00:06+00:00"  # never moved backwards
    assert participant_for(z).consent_status == "unknown"


def test_filter_edit_full_read_handles_links_the_new_filters_exclude(app, rconn, org):
    ann = contact(org, "Ann", 0, Department="Design")
    bob = contact(org, "Bob", 1, Department="Sales")
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace), leaving_policy="archive")
    assert sync(app, rconn, plan).imported == 2
    plan = fresh(ImportPlan, plan.id)
    plan.filters = {"op": "AND", "items": [{"field": "Department", "operator": "equals", "value": "Design"}]}
    db.session.commit()
    edited = sync(app, rconn, plan)
    assert (edited.status, edited.full_read, edited.fetched, edited.updated, edited.left) == (
        "succeeded", True, 2, 2, 1)
    assert source_for(bob).source_state == "no_longer_matching"
    assert (participant_for(bob).status, participant_for(ann).status) == ("archived", "active")
