"""The plan's skip memory on the database (skipped_sources): a record skipped before, read again
with the same source hash, is skipped for the same reason without validation; a changed record,
a changed mapping or a participant now owning its email is validated again; rows are a
workspace's and a plan's own, and go with the plan, with the record's link and with a full read
that no longer returns the record."""
import random
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import ImportPlan, Participant, RunOutcome, SkippedSource, SyncRun, Workspace
from services import runs
from services.sync_sink import ActionTarget, DatabaseSink
from sync.engine import run as run_engine
from sync.fakes import ListLog, PagedSource
from sync.plan import ConsentRule, Mapping, Plan
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace,
                                            org, outcomes, put, rconn, stamp)
from tests.support.spies import contact, skipped_set, validated  # noqa: F401  (validated: a fixture)

pytestmark = [pytest.mark.db]
__all__ = ["org", "rconn"]

ORG = "00DDn00000Org1AAA"
CONSENT = ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",),
                      opted_out_values=("Withdrawn",), opt_out_flags=("HasOptedOutOfEmail",))


def spec(plan_row, **kw):
    kw = {"consent": CONSENT, "mapping": Mapping(required=("last_name",)), **kw}
    return Plan(org_id=ORG, object_name="Contact", plan_id=plan_row.id, **kw)


def new_workspace(name="W"):
    workspace = Workspace(name=name, default_phone_region="GB")
    db.session.add(workspace)
    db.session.commit()
    return workspace


def new_plan(workspace):
    plan = ImportPlan(workspace_id=workspace.id, object_name="Contact", action="pool")
    db.session.add(plan)
    db.session.commit()
    return plan


def sync(plan_row, plan_spec, records, sink_class=DatabaseSink, page_size=2000):
    """One run of ``plan_spec`` over ``records`` into the database; (run row, its outcomes)."""
    run = SyncRun(workspace_id=plan_row.workspace_id, plan_id=plan_row.id, status="running")
    db.session.add(run)
    db.session.commit()
    sink = sink_class(workspace_id=plan_row.workspace_id, plan_id=plan_row.id, run_id=run.id,
                      connection_id=None, target=ActionTarget.for_plan(plan_row))
    summary = run_engine(plan_spec, PagedSource(records, page_size=page_size), sink, ListLog())
    assert summary.status == "succeeded", summary.reason
    db.session.get(SyncRun, run.id).status = "succeeded"
    db.session.commit()
    db.session.expire_all()
    rows = db.session.execute(select(RunOutcome).where(RunOutcome.run_id == run.id)
                              .order_by(RunOutcome.seq)).scalars().all()
    return db.session.get(SyncRun, run.id), rows


def memory(plan_row):
    """The plan's remembered skips by record ID."""
    db.session.expire_all()
    return {row.record_id: row for row in db.session.execute(
        select(SkippedSource).where(SkippedSource.plan_id == plan_row.id)).scalars()}


def all_rows():
    db.session.expire_all()
    return db.session.execute(select(SkippedSource)).scalars().all()




def test_a_skipped_record_read_again_is_not_validated_again(app, validated):
    workspace = new_workspace()
    plan = new_plan(workspace)
    records = skipped_set()
    first, before = sync(plan, spec(plan), records)
    assert (first.fetched, first.skipped, first.imported) == (5, 4, 1)
    assert len(validated) == 5
    rows = memory(plan)
    assert set(rows) == {r["Id"] for r in records} - {records[3]["Id"]}
    opted_out = rows[records[2]["Id"]]
    assert (opted_out.workspace_id, opted_out.plan_id, opted_out.run_id) == (workspace.id, plan.id, first.id)
    assert (opted_out.reason, opted_out.email_key) == ("Opted out in Salesforce", "p00003@example.org")
    assert opted_out.source_hash and opted_out.rules.startswith("skip rules 1; email-validator ")
    assert [f["code"] for f in rows[records[0]["Id"]].flags] == ["invalid_email", "no_contact_point"]

    validated.clear()
    second, after = sync(plan, spec(plan), records)
    assert validated == []
    assert (second.fetched, second.skipped, second.unchanged) == (5, 4, 1)
    old = {o.record_id: o for o in before}
    for outcome in after:
        if outcome.outcome != "skipped":
            continue
        was = old[outcome.record_id]
        # the run log says why, as the run that decided it did, with its flags and contact points
        assert (outcome.reason, outcome.email, outcome.email_key, outcome.phone_key) == (
            was.reason, was.email, was.email_key, was.phone_key)
        assert outcome.detail == {**(was.detail or {}), "remembered": True}
    assert db.session.execute(select(func.count()).select_from(Participant)).scalar_one() == 1
    assert set(memory(plan)) == set(rows)  # nothing rewritten
    assert {r.run_id for r in memory(plan).values()} == {first.id}


def test_a_changed_record_is_validated_again_imported_and_forgotten(app, validated):
    workspace = new_workspace()
    plan = new_plan(workspace)
    records = skipped_set()
    first, _ = sync(plan, spec(plan), records)
    changed = [dict(r) for r in records]
    changed[0]["Email"] = "sam@example.org"  # now valid
    changed[1]["Phone"] = "123"  # still nothing valid: skipped again, remembered anew
    validated.clear()
    second, outcomes = sync(plan, spec(plan), changed)
    assert sorted(validated) == sorted([records[0]["Id"], records[1]["Id"]])
    assert (second.imported, second.skipped, second.unchanged) == (1, 3, 1)
    rows = memory(plan)
    assert records[0]["Id"] not in rows
    assert rows[records[1]["Id"]].run_id == second.id and rows[records[2]["Id"]].run_id == first.id
    by_id = {o.record_id: o for o in outcomes}
    assert by_id[records[0]["Id"]].outcome == "imported"
    assert not (by_id[records[1]["Id"]].detail or {}).get("remembered")
    assert by_id[records[2]["Id"]].detail == {"remembered": True}


def test_a_changed_mapping_validates_the_remembered_skips_again(app, validated):
    workspace = new_workspace()
    plan = new_plan(workspace)
    records = skipped_set()
    sync(plan, spec(plan), records)
    hashes = {k: r.source_hash for k, r in memory(plan).items()}
    validated.clear()
    edited, outcomes = sync(plan, spec(plan, mapping=Mapping()), records)  # nothing required now
    # every one of them (and the linked one, its hash changed too)
    assert sorted(validated) == sorted([*hashes, records[3]["Id"]])
    assert (edited.imported, edited.skipped, edited.updated) == (1, 3, 1)  # record 5 now imports
    assert not any((o.detail or {}).get("remembered") for o in outcomes)
    rows = memory(plan)
    assert set(rows) == set(hashes) - {records[4]["Id"]}
    assert all(rows[k].source_hash != hashes[k] for k in rows)


def test_rows_are_a_workspaces_own(app, validated):
    first_ws, second_ws = new_workspace("A"), new_workspace("B")
    a, b = new_plan(first_ws), new_plan(second_ws)
    records = skipped_set()
    sync(a, spec(a), records)
    validated.clear()
    run, _ = sync(b, spec(b), records)
    assert len(validated) == 5 and run.skipped == 4
    assert {r.workspace_id for r in memory(b).values()} == {second_ws.id}
    assert len(all_rows()) == 8


def test_a_record_linked_by_another_plan_is_not_consulted_and_goes_at_the_next_full_read(app, validated):
    from types import SimpleNamespace

    from models import RunSeenRecord
    from services.reconcile import forget_stale_skips
    workspace = new_workspace()
    strict, lenient = new_plan(workspace), new_plan(workspace)
    no_last_name = [contact(5, LastName=None)]
    assert sync(strict, spec(strict), no_last_name)[0].skipped == 1
    assert set(memory(strict)) == {no_last_name[0]["Id"]}
    assert sync(lenient, spec(lenient, mapping=Mapping()), no_last_name)[0].imported == 1
    assert memory(lenient) == {}
    # the strict plan now finds the record linked: validated and updated, never skipped
    validated.clear()
    run, _ = sync(strict, spec(strict), no_last_name)
    assert (run.updated, run.skipped) == (1, 0) and validated == [no_last_name[0]["Id"]]
    # its row stays (a lookup asks the memory only of records without a link) until the plan's
    # next full read, which forgets it with those of records it did not read
    assert set(memory(strict)) == {no_last_name[0]["Id"]}
    sync(strict, spec(strict), [contact(6, LastName=None), contact(7, LastName=None)])
    assert len(memory(strict)) == 3
    db.session.add_all([RunSeenRecord(run_id=run.id, record_id=contact(n)["Id"]) for n in (5, 6)])
    db.session.commit()
    assert forget_stale_skips(spec(strict), SimpleNamespace(workspace_id=workspace.id, plan_id=strict.id),
                              SimpleNamespace(run_id=run.id)) == 2
    assert set(memory(strict)) == {contact(6)["Id"]}


def test_a_remembered_skip_whose_email_now_belongs_to_someone_is_decided_again(app, validated):
    workspace = new_workspace()
    plan = new_plan(workspace)
    record = contact(3, Consent_Status__c="Withdrawn")
    assert sync(plan, spec(plan), [record])[0].skipped == 1
    db.session.add(Participant(workspace_id=workspace.id, email="p00003@example.org",
                               email_key="p00003@example.org", consent_status="opted_in"))
    db.session.commit()
    validated.clear()
    run, outcomes = sync(plan, spec(plan), [record])
    assert validated == [record["Id"]]
    # never linked by the plan: the opt-out is written, but it does not "leave the plan"
    assert run.updated == 1 and run.left == 0
    assert outcomes[0].reason == "Matched an existing participant by email; opted out in Salesforce"
    assert db.session.execute(select(Participant.consent_status)).scalar_one() == "opted_out"
    assert all_rows() == []


def test_deleting_the_plan_deletes_its_remembered_skips(app):
    from services.operations import delete_plan
    workspace = new_workspace()
    plan, other = new_plan(workspace), new_plan(workspace)
    sync(plan, spec(plan), skipped_set())
    sync(other, spec(other), skipped_set())
    assert len(all_rows()) == 8
    delete_plan(db.session.get(ImportPlan, plan.id), None)
    assert {r.plan_id for r in all_rows()} == {other.id} and len(all_rows()) == 4


class ForgetfulSink(DatabaseSink):
    """The database sink answering no remembered skips: the engine as it was without them."""

    def lookup(self, query):
        return super().lookup(replace(query, skips=frozenset()))


def _messy(rng: random.Random, n: int) -> dict:
    emails = [None, f"p{n}@example.org", f"shared{rng.randrange(3)}@example.org",
              "Sam <sam@example.org>", "nobody@"]
    phones = [None, "+1 201 555 01{:02d}".format(rng.randrange(4)), "12", "020 7946 0{:03d}".format(n)]
    return contact(n, Email=rng.choice(emails), Phone=rng.choice(phones),
                   LastName=rng.choice([f"Person{n}", None]),
                   Consent_Status__c=rng.choice(["Granted", "Withdrawn", None]),
                   IsDeleted=rng.choice([False] * 6 + [True]))


def test_runs_decide_the_same_with_and_without_the_memory(app):
    rng = random.Random(11)
    records = [_messy(rng, n) for n in range(1, 61)]
    remembering, forgetful = new_plan(new_workspace("A")), new_plan(new_workspace("B"))
    reused = 0
    for round_ in range(4):
        plan_spec = dict(mapping=Mapping()) if round_ == 3 else {}
        page_size = rng.choice([9, 25, 60])
        _, mine = sync(remembering, spec(remembering, **plan_spec), records, page_size=page_size)
        _, theirs = sync(forgetful, spec(forgetful, **plan_spec), records, ForgetfulSink, page_size)
        reused += sum(1 for o in mine if (o.detail or {}).get("remembered"))

        def decided(rows):
            return [(o.record_id, o.outcome, o.reason, o.email, o.email_key, o.phone_key,
                     {k: v for k, v in (o.detail or {}).items() if k != "remembered"} or None,
                     o.participant_id is None) for o in rows]

        assert decided(mine) == decided(theirs)
        for k in rng.sample(range(len(records)), 6):
            records[k] = _messy(rng, k + 1)
    assert reused > 0

    def people(workspace_id):
        return sorted(db.session.execute(select(
            Participant.email_key, Participant.phone_key, Participant.last_name,
            Participant.consent_status, Participant.status).where(
            Participant.workspace_id == workspace_id)).all(), key=repr)

    assert people(remembering.workspace_id) == people(forgetful.workspace_id)


# --- end to end: runs of a plan against the emulator ------------------------------------------


def _sync(app, rconn, plan) -> SyncRun:
    run = runs.request_run(plan)
    drain(app, rconn)
    return fresh(SyncRun, run.id)


@pytest.mark.redis
def test_incremental_runs_read_skipped_records_again_without_validating_them(app, rconn, org, validated):
    """The look-back re-reads the records sharing the cursor's SystemModstamp: those skipped
    before are not validated again; a changed one is; the run log still says why."""
    ids = [put(org, "Contact", {"FirstName": f"P{n}", "LastName": "Test", "Email": email,
                                "HasOptedOutOfEmail": False, "SystemModstamp": stamp(5)})
           for n, email in enumerate(["ok1@example.org", "not an email", None, "ok2@example.org"])]
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace))
    first = _sync(app, rconn, plan)
    assert (first.status, first.imported, first.skipped) == ("succeeded", 2, 2)
    assert set(memory(plan)) == {ids[1], ids[2]}

    validated.clear()
    again = _sync(app, rconn, plan)  # the same stamp as the cursor: all four read again
    assert (again.full_read, again.fetched, again.unchanged, again.skipped) == (False, 4, 2, 2)
    assert validated == []
    logged = {o.record_id: o for o in outcomes(again.id)}
    assert logged[ids[2]].reason == "No valid email or phone number."
    assert logged[ids[2]].detail["remembered"] is True
    assert "not an email" in (logged[ids[1]].email or "") and logged[ids[1]].detail["flags"]

    org.update("Contact", ids[1], {"Email": "fixed@example.org"})
    validated.clear()
    third = _sync(app, rconn, plan)
    assert validated == [ids[1]]
    assert (third.imported, third.skipped) == (1, 1)
    assert set(memory(plan)) == {ids[2]}


@pytest.mark.redis
def test_a_full_read_forgets_the_skips_it_no_longer_reads(app, rconn, org):
    design, sales = (put(org, "Contact", {"FirstName": "P", "LastName": "Test", "Email": None,
                                          "Department": department, "SystemModstamp": stamp(i)})
                     for i, department in enumerate(["Design", "Sales"]))
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace))
    assert _sync(app, rconn, plan).skipped == 2
    assert set(memory(plan)) == {design, sales}
    plan = fresh(ImportPlan, plan.id)
    plan.filters = {"op": "AND", "items": [
        {"field": "Department", "operator": "equals", "value": "Design"}]}
    db.session.commit()
    edited = _sync(app, rconn, plan)  # new filters: a full read, which no longer returns Sales
    assert (edited.full_read, edited.fetched, edited.skipped) == (True, 1, 1)
    assert set(memory(plan)) == {design}


def test_the_run_log_page_says_a_skip_was_skipped_again(app, client):
    from tests.support.web import make_world, sign_in
    world = make_world("Alpha")
    run = SyncRun(workspace_id=world["workspace_id"], plan_id=world["ids"]["plan"], status="succeeded")
    db.session.add(run)
    db.session.flush()
    for seq, detail in enumerate(({"remembered": True}, None), start=1):
        db.session.add(RunOutcome(workspace_id=run.workspace_id, run_id=run.id, seq=seq,
                                  object_name="Contact", record_id=f"003Dn0000000{seq:03d}AAA",
                                  outcome="skipped", reason="No valid email or phone number.",
                                  detail=detail))
    db.session.commit()
    sign_in(client, world["users"]["researcher"], world["workspace_id"])
    page = client.get(f"/operations/runs/{run.id}").get_data(as_text=True)
    # one reason per row; the remembered one says it is skipped (again), and why
    assert page.count("Skipped again: unchanged since an earlier run skipped it "
                      "(No valid email or phone number)") == 1
    assert page.count("No valid email or phone number.") == 1
    assert "not checked again" not in page


def test_a_first_import_asks_the_skip_memory_nothing(app):
    """No plan of the workspace remembers anything yet: the pages' lookups and new links cost
    no statement on skipped_sources; the skips are stored, one INSERT a page."""
    from sqlalchemy import event
    workspace = new_workspace()
    plan = new_plan(workspace)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "skipped_sources" in statement:
            statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        first, _ = sync(plan, spec(plan), skipped_set() + [contact(n) for n in range(6, 30)],
                        page_size=10)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert (first.skipped, first.imported) == (4, 25)
    assert statements == ["SELECT", "INSERT"]  # does the plan remember any? page 1's skips
    assert len(memory(plan)) == 4


def test_records_keyed_by_a_long_external_id_are_not_remembered(app, validated):
    workspace = new_workspace()
    plan = new_plan(workspace)
    long_id = "EXT-" + "9" * 30  # an external ID field, longer than a Salesforce ID
    records = [contact(1, Email=None, External__c=long_id)]
    plan_spec = spec(plan, mapping=Mapping(external_id="External__c"))
    assert sync(plan, plan_spec, records)[0].skipped == 1
    assert memory(plan) == {}
    validated.clear()
    assert sync(plan, plan_spec, records)[0].skipped == 1
    assert len(validated) == 1  # validated again, as without the memory
