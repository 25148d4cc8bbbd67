"""Script payloads in Salesforce data (names, company, attributes, emails in outcomes) and in
invitation templates render escaped on every page that shows them: the pool, the participant's
page, a run's outcomes and its live tail, the lookup, the invitation page and the message preview
(merge fields and the template's own HTML). The wizard's preview of Salesforce records is covered
with data read from the emulator."""
from __future__ import annotations

import pytest

from core.extensions import db
from models import Participant, RunOutcome, StudyParticipant
from tests.support.web import make_world, post, sign_in
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import text_of

SCRIPT = '<script>alert("xss")</script>'
IMG = '"><img src=x onerror=alert(1)>'
SVG = "</title><svg/onload=alert(2)>"
PAYLOADS = (SCRIPT, IMG, SVG)
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;"


def assert_inert(html: str, where: str) -> None:
    for payload in PAYLOADS:
        assert payload not in html, f"{where} renders {payload!r} unescaped"
    for marker in ("<script>alert", "<img src=x", "<svg/onload", "onerror=alert(1)>"):
        assert marker not in html, f"{where} contains {marker!r}"


@pytest.fixture
def hostile(app):
    world = make_world("Alpha")
    ws = world["workspace_id"]
    person = Participant(workspace_id=ws, first_name=SCRIPT, last_name=IMG, email="x@evil.example",
                         email_key="x@evil.example", company=SVG, segments=[SCRIPT],
                         attributes={"Tier": SCRIPT, IMG: SVG}, consent_status="opted_in")
    db.session.add(person)
    db.session.flush()
    db.session.add(StudyParticipant(workspace_id=ws, study_id=world["ids"]["study"], participant_id=person.id))
    db.session.add_all([
        RunOutcome(workspace_id=ws, run_id=world["ids"]["run"], seq=1, object_name="Contact",
                   record_id="003000000000002AAA", participant_id=person.id, outcome="imported",
                   reason=SCRIPT, email="x@evil.example"),
        RunOutcome(workspace_id=ws, run_id=world["ids"]["run"], seq=2, object_name="Contact",
                   record_id="003000000000003AAA", outcome="skipped", reason=f"Invalid email {IMG}",
                   email=SCRIPT + "@evil.example", detail={"flags": [{"code": "invalid_email", "reason": SVG}]}),
    ])
    db.session.commit()
    client = app.test_client()
    sign_in(client, world["users"]["admin"], ws)
    return world, person, client


def test_salesforce_data_renders_escaped_on_every_page_that_shows_it(hostile):
    world, person, client = hostile
    run = world["ids"]["run"]
    pages = {
        "pool": "/participants/",
        "pool search": "/participants/?q=%3Cscript%3E",
        "participant": f"/participants/{person.id}",
        "participant's runs": f"/operations/participants/{person.id}/runs",
        "run outcomes": f"/operations/runs/{run}",
        "run outcomes, skipped": f"/operations/runs/{run}?outcome=skipped",
        "run tail": f"/operations/runs/{run}/tail?after=0",
        "lookup by email": "/operations/lookup?q=x%40evil.example",
        "lookup by payload": "/operations/lookup?q=%3Cscript%3Ealert",
        "study": f"/studies/{world['ids']['study']}",
    }
    shown = 0
    for where, url in pages.items():
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, f"{where}: {response.status_code}"
            html = response.get_data(as_text=True)
            assert_inert(html, where)
            shown += ESCAPED_SCRIPT in html or "&lt;script&gt;" in html
    # The payload was really on the pages (escaped), not merely absent.
    assert shown >= 10
    assert ESCAPED_SCRIPT in client.get(f"/participants/{person.id}").get_data(as_text=True)


def test_invitation_templates_and_merged_values_render_escaped_in_the_preview(hostile):
    world, person, client = hostile
    study = world["ids"]["study"]
    response = post(client, f"/studies/{study}/messages/invitation/preview", {
        "subject": f"Hi {{{{first_name}}}} {SCRIPT}",
        "body_text": f"Hello {{{{first_name}}}} {IMG}",
        "body_html": f"<p onclick=\"alert(3)\">Hello {{{{first_name}}}}</p>{SCRIPT}{IMG}"
                     f"<a href=\"javascript:alert(4)\">x</a><iframe src=\"https://evil.example\"></iframe>{SVG}",
    }, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert_inert(html, "message preview")
    for marker in ("onclick", "javascript:alert", "<iframe", "alert(3)"):
        assert marker not in html, f"message preview contains {marker!r}"
    assert "Hello" in html and "&lt;script&gt;" in html  # the merged first name, shown as text


def test_invitation_page_shows_hostile_values_escaped(hostile):
    world, _person, client = hostile
    html = client.get(f"/invitations/{world['ids']['invitation']}").get_data(as_text=True)
    assert_inert(html, "invitation page")


def test_the_wizard_preview_of_salesforce_records_is_escaped(wiz):
    acct = wiz.create("Account", {"Name": SVG})
    wiz.create("Contact", {"FirstName": SCRIPT, "LastName": IMG, "Email": "p@example.org", "AccountId": acct,
                           "MailingCountry": SCRIPT})
    wiz.create("Contact", {"FirstName": IMG, "LastName": SCRIPT, "Email": SCRIPT})
    plan = wiz.plan(step="preview")
    for htmx in (False, True):
        response = wiz.get(f"/wizard/plans/{plan.id}/preview", htmx=htmx)
        html = text_of(response)
        assert response.status_code == 200, html[:500]
        assert_inert(html, "wizard preview")
        assert "&lt;script&gt;" in html
