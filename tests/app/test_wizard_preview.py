"""Step 5, Preview, against emulator records: verdicts from the engine run dry, removals stored on
the plan and restored, totals from the background job (run directly, and once through a real RQ
worker on the real Redis)."""
import os
import re

import pytest
import redis

from core.extensions import db
from models import ImportPlan, Participant, ParticipantSource, PreviewTotals
from services import previews
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import text_of

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def url(plan, suffix=""):
    return f"/wizard/plans/{plan.id}/preview{suffix}"


def row_html(html, record_id):
    m = re.search(rf'<tr id="preview-{record_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert m, f"no preview row for {record_id}"
    return m.group(1)


@pytest.fixture
def people(wiz):
    """Six contacts in the UK filter, one outside it, and what Terapage already knows."""
    c = {}
    uk = {"MailingCountry": "United Kingdom", "Consent_Status__c": "Opted In"}
    c["good"] = wiz.create("Contact", {**uk, "FirstName": "Ann", "LastName": "Good", "Email": "ann@x.example",
                                       "Phone": "020 7946 0018 ext. 42"})
    c["bad_email"] = wiz.create("Contact", {**uk, "FirstName": "Ben", "LastName": "Bad",
                                            "Email": "Ben Bad <ben@x.example>", "Phone": "12345"})
    c["dup"] = wiz.create("Contact", {**uk, "FirstName": "Ann", "LastName": "Again", "Email": "ANN@x.example"})
    c["no_consent"] = wiz.create("Contact", {**uk, "Consent_Status__c": None, "FirstName": "Cat", "LastName": "Nc",
                                             "Email": "cat@x.example"})
    c["existing"] = wiz.create("Contact", {**uk, "FirstName": "Dan", "LastName": "Known", "Email": "dan@x.example"})
    c["imported"] = wiz.create("Contact", {**uk, "FirstName": "Eve", "LastName": "Linked", "Email": "eve@x.example"})
    c["elsewhere"] = wiz.create("Contact", {"MailingCountry": "Germany", "LastName": "Far", "Email": "f@x.example"})
    ws = wiz.workspace.id
    dan = Participant(workspace_id=ws, first_name="Dan", email="dan@x.example", email_key="dan@x.example")
    eve = Participant(workspace_id=ws, first_name="Eve", email="eve@x.example", email_key="eve@x.example")
    db.session.add_all([dan, eve])
    db.session.flush()
    db.session.add(ParticipantSource(workspace_id=ws, participant_id=eve.id, connection_id=wiz.connection.id,
                                     org_id=wiz.org_id, object_name="Contact", record_id=c["imported"]))
    db.session.commit()
    return c


def uk_plan(wiz, **kw):
    return wiz.plan(step="preview", filters={"op": "AND", "items": [
        {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]}, **kw)


def test_first_page_shows_each_records_verdict(wiz, people):
    plan = uk_plan(wiz)
    r = wiz.get(url(plan))
    assert r.status_code == 200
    html = text_of(r)
    assert html.count('<tr id="preview-') == 6 and people["elsewhere"] not in html
    good = row_html(html, people["good"])
    assert "ann@x.example" in good and "valid" in good
    assert "020 7946 0018 ext. 42 → +442079460018 ext. 42" in good and "Will be imported" in good
    bad = row_html(html, people["bad_email"])
    assert "Ben Bad &lt;ben@x.example&gt;" in bad and "12345" in bad
    assert "No valid email or phone number." in bad
    assert f"Unchanged: duplicate within the set (same email as {people['good']})" in row_html(html, people["dup"])
    assert "Consent missing" in row_html(html, people["no_consent"])
    assert "Consent missing" not in good
    assert "Will be updated: matched an existing participant by email" in row_html(html, people["existing"])
    assert "Will be updated: already imported" in row_html(html, people["imported"])
    # nothing was written by the preview
    assert db.session.query(Participant).filter_by(workspace_id=wiz.workspace.id).count() == 3  # incl. world's Pat
    assert db.session.query(ParticipantSource).filter_by(workspace_id=wiz.workspace.id).count() == 2


def test_remove_and_restore_rows_with_plain_posts(wiz, people):
    plan = uk_plan(wiz)
    r = wiz.post(url(plan), {"action": "remove", "record_id": [people["bad_email"], people["dup"]]})
    assert r.status_code == 302 and r.headers["Location"].endswith(url(plan))
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).excluded_record_ids == [people["bad_email"], people["dup"]]
    html = text_of(wiz.get(url(plan)))
    assert "Removed in the preview" in row_html(html, people["bad_email"])
    assert f'name="restore_id" value="{people["dup"]}"' in html
    wiz.post(url(plan), {"restore_id": people["dup"]})
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).excluded_record_ids == [people["bad_email"]]
    r = wiz.post(url(plan), {"action": "continue"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/wizard/plans/{plan.id}/schedule")


def test_crafted_record_ids_are_refused_with_a_message_and_never_break_the_plan(wiz, people):
    plan = uk_plan(wiz)
    bad_checksum = people["good"][:15] + ("AAA" if people["good"][15:] != "AAA" else "BBB")
    r = wiz.post(url(plan), {"action": "remove", "record_id": [bad_checksum, "<script>alert(1)</script>",
                                                                 people["dup"]]})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).excluded_record_ids == [people["dup"]]  # only the real one
    html = text_of(wiz.get(url(plan)))
    assert "is not a record ID of this preview" in html and "<script>alert(1)" not in html
    assert html.count('<tr id="preview-') == 6  # the preview still works
    # A value stored before the wizard refused such input no longer breaks the plan's spec.
    stored = db.session.get(ImportPlan, plan.id)
    stored.excluded_record_ids = [bad_checksum, people["dup"]]
    db.session.commit()
    spec = previews.plan_context(stored).spec
    assert spec.excluded_ids == frozenset({people["dup"]})
    assert text_of(wiz.get(url(plan))).count('<tr id="preview-') == 6


def test_totals_job_counts_the_whole_set_and_is_cached_per_plan_version(wiz, people):
    plan = uk_plan(wiz)
    spec = previews.plan_context(plan).spec
    row = previews.request_totals(plan, spec, enqueue_job=False)
    assert row.status == "queued"
    previews.compute_totals(row.id)
    db.session.expire_all()
    row = db.session.get(PreviewTotals, row.id)
    assert row.status == "done" and row.estimate_total == 6 and row.processed == 6
    t = row.totals
    assert (t["total"], t["will_import"], t["already_imported"]) == (6, 2, 1)  # Ann, Cat new
    assert (t["invalid_email"], t["invalid_phone"], t["duplicate_in_set"], t["duplicate_existing"]) == (1, 1, 1, 1)
    assert t["consent_missing"] == 1 and t["excluded"] == 0
    # the same version answers from the cache; a removal is a new version
    assert previews.request_totals(plan, spec, enqueue_job=False).id == row.id
    wiz.post(url(plan), {"action": "remove", "record_id": [people["good"]]})
    db.session.expire_all()
    plan = db.session.get(ImportPlan, plan.id)
    again = previews.request_totals(plan, previews.plan_context(plan).spec, enqueue_job=False)
    assert again.id != row.id
    previews.compute_totals(again.id)
    db.session.expire_all()
    t = db.session.get(PreviewTotals, again.id).totals
    # without Ann the duplicate "ANN@" is new, and the removal is counted
    assert (t["excluded"], t["will_import"], t["duplicate_in_set"]) == (1, 2, 0)


def test_progress_panel_polls_until_done_then_stops(wiz, people):
    plan = uk_plan(wiz)
    row = previews.request_totals(plan, previews.plan_context(plan).spec, enqueue_job=False)
    html = text_of(wiz.get(url(plan, f"/totals?id={row.id}"), htmx=True))
    assert 'hx-trigger="every 1s"' in html and "<progress" in html
    previews.compute_totals(row.id)
    html = text_of(wiz.get(url(plan, f"/totals?id={row.id}"), htmx=True))
    assert "hx-trigger" not in html and 'id="t-total">6<' in html


def test_totals_through_a_real_rq_worker(app, wiz, people):
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc})", pytrace=False)
    conn.flushdb()
    old = app.config.get("REDIS_URL")
    app.config["REDIS_URL"] = REDIS_URL
    try:
        plan = uk_plan(wiz)
        html = text_of(wiz.get(url(plan)))  # the page queues the job
        assert 'id="preview-totals"' in html
        row = db.session.query(PreviewTotals).filter_by(plan_id=plan.id).one()
        assert row.status == "queued"
        from jobs.worker import make_worker
        make_worker(app, ["default"], connection=conn, simple=True).work(burst=True)
        db.session.expire_all()
        row = db.session.get(PreviewTotals, row.id)
        assert row.status == "done" and row.totals["total"] == 6
    finally:
        app.config["REDIS_URL"] = old
        conn.flushdb()
        conn.close()


def test_an_empty_result_says_so_once(wiz, people):
    plan = wiz.plan(step="preview", filters={"op": "AND", "items": [
        {"field": "MailingCountry", "operator": "equals", "value": "Atlantis"}]})
    for htmx in (False, True):
        html = text_of(wiz.get(url(plan), htmx=htmx))
        assert html.count("No records match these filters.") == 1
        assert "Showing the first 0" not in html and 'id="preview-table"' not in html
    html = text_of(wiz.get(url(uk_plan(wiz)), htmx=True))
    assert "Showing the first 6 matching records." in html and "No records match" not in html
