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
    assert ("Will be updated: already imported; changed in Salesforce since the last run"
            in row_html(html, people["imported"]))
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
    # the run's counters: Ann and Cat new; Dan matched by email, Eve already imported; Ann's
    # duplicate merged; Ben has no valid email or phone. Each record counted once.
    assert {k: t[k] for k in ("total", "imported", "updated", "unchanged", "skipped", "failed",
                              "excluded", "invited", "left")} == {
        "total": 6, "imported": 2, "updated": 2, "unchanged": 1, "skipped": 1, "failed": 0,
        "excluded": 0, "invited": 0, "left": 0}
    assert (t["updated.matched_existing"], t["updated.already_imported"], t["unchanged.duplicate_in_set"]) == (1, 1, 1)
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
    assert (t["excluded"], t["imported"], t.get("unchanged.duplicate_in_set", 0)) == (1, 2, 0)
    assert sum(t[k] for k in ("imported", "updated", "unchanged", "excluded", "skipped", "failed")) == t["total"]


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


def test_preview_totals_predict_the_first_runs_counters(wiz, people):
    """The totals right before a run (a full read) are the counters the run ends with: the same
    categories, the same counting; and the run log gives each row its reason."""
    from models import RunOutcome
    from services import runs

    plan = uk_plan(wiz, status="active")
    row = previews.request_totals(plan, previews.plan_context(plan).spec, enqueue_job=False)
    previews.compute_totals(row.id)
    db.session.expire_all()
    t = db.session.get(PreviewTotals, row.id).totals
    run = runs.run_inline(plan.id)
    assert run.status == "succeeded", run.reason
    counters = {k: getattr(run, k) or 0 for k in ("imported", "updated", "unchanged", "skipped", "failed",
                                                  "excluded", "invited", "left")}
    assert counters == {k: t[k] for k in counters}
    assert run.fetched == t["total"] == 6
    reasons = {o.record_id: o.reason for o in db.session.query(RunOutcome).filter_by(run_id=run.id)}
    assert reasons[people["imported"]] == "Already imported; changed in Salesforce since the last run"
    assert reasons[people["existing"]] == "Matched an existing participant by email"


def test_totals_say_when_they_were_counted_and_count_again(wiz, people):
    plan = uk_plan(wiz)
    row = previews.request_totals(plan, previews.plan_context(plan).spec, enqueue_job=False)
    previews.compute_totals(row.id)
    html = text_of(wiz.get(url(plan, f"/totals?id={row.id}"), htmx=True))
    assert 'id="totals-counted-at"' in html and 'id="count-again"' in html
    # "Count again" (htmx): a new count of the same version, whose panel polls until done
    r = wiz.post(url(plan, "/totals/count-again"), {}, htmx=True)
    assert r.status_code == 200
    html = text_of(r)
    again = db.session.query(PreviewTotals).filter_by(plan_id=plan.id).order_by(PreviewTotals.id.desc()).first()
    assert again.id != row.id and again.status == "queued" and again.fingerprint == row.fingerprint
    assert f"/totals?id={again.id}" in html and 'hx-trigger="every 1s"' in html
    # asked again while it counts: the same count, not another one
    wiz.post(url(plan, "/totals/count-again"), {}, htmx=True)
    assert db.session.query(PreviewTotals).filter_by(plan_id=plan.id).count() == 2
    # a plain post goes back to the step
    previews.compute_totals(again.id)
    r = wiz.post(url(plan, "/totals/count-again"), {})
    assert r.status_code in (302, 303) and r.headers["Location"].endswith(url(plan))


def test_totals_are_counted_again_when_the_first_page_disagrees(wiz, people):
    """A record changed in Salesforce so that it now matches: the first page shows 7 records, the
    cached totals counted 6; the page says so and counts again."""
    plan = uk_plan(wiz)
    row = previews.request_totals(plan, previews.plan_context(plan).spec, enqueue_job=False)
    previews.compute_totals(row.id)
    html = text_of(wiz.get(url(plan)))
    assert "counting again" not in html and 'id="t-total">6<' in html  # agrees: the cache answers
    wiz.create("Contact", {"MailingCountry": "United Kingdom", "FirstName": "New", "LastName": "Comer",
                           "Email": "new@x.example"})
    html = text_of(wiz.get(url(plan)))
    assert "Showing the first 7 matching records." in html
    assert 'id="totals-recounting"' in html and 'hx-trigger="every 1s"' in html
    latest = db.session.query(PreviewTotals).filter_by(plan_id=plan.id).order_by(PreviewTotals.id.desc()).first()
    assert latest.id != row.id
    previews.compute_totals(latest.id)
    db.session.expire_all()
    assert db.session.get(PreviewTotals, latest.id).totals["total"] == 7
    html = text_of(wiz.get(url(plan)))
    assert 'id="totals-recounting"' not in html and 'id="t-total">7<' in html
