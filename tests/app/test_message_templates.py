"""Message templates: merge fields, defaults, escaping, the HTML allow-list, editing and preview."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.extensions import db
from models import AuditEvent, MessageTemplate, Participant, Study
from services import invitations
from services import templates_merge as merge
from tests.support.web import csrf_token, make_world, sign_in

VALUES = {"first_name": "Zoë", "study_name": "Checkout study", "researcher_name": "Ada Lovelace",
          "deadline": "14 March 2031", "accept_link": "https://app.example/invite/T0K",
          "unsubscribe_link": "https://app.example/unsubscribe/U1"}


# --- pure rendering ---------------------------------------------------------------------------------

def test_default_study_invitation_fills_every_field_in_both_parts():
    rendered = merge.render(merge.default_template("study"), VALUES)
    assert rendered.subject == "You're invited: Checkout study"
    assert rendered.text.startswith("Hi Zoë,\n\nAda Lovelace would like to invite you to take part in a research "
                                    "study, Checkout study.\n")
    assert "https://app.example/invite/T0K\n" in rendered.text
    assert "Please reply by 14 March 2031." in rendered.text
    assert rendered.text.rstrip().endswith("To stop receiving research invitations from us: "
                                           "https://app.example/unsubscribe/U1")
    assert '<a href="https://app.example/invite/T0K">See the details and reply</a>' in rendered.html
    assert '<a href="https://app.example/unsubscribe/U1">Stop receiving research invitations</a>' in rendered.html
    assert "{{" not in rendered.text + rendered.html + rendered.subject


def test_defaults_exist_for_tasks_communities_and_reminders():
    task = merge.render(merge.default_template("activity"), {**VALUES, "task_name": "Diary week 1"})
    assert task.subject == "You're invited: Diary week 1"
    assert "take part in a research task, Diary week 1." in task.text
    community = merge.render(merge.default_template("community", "reminder"), {**VALUES, "community_name": "Panel"})
    assert community.subject == "Reminder: you're invited to Panel"
    assert "A quick reminder: Ada Lovelace invited you to join our research community, Panel." in community.text
    for target_type in ("study", "activity", "community"):
        for kind in merge.KINDS:
            template = merge.default_template(target_type, kind)
            assert merge.check(template.subject, template.body_text, template.body_html, target_type) == []


def test_merged_values_are_escaped_in_html_and_kept_verbatim_in_text():
    hostile = {**VALUES, "first_name": '<script>alert(1)</script>"&', "study_name": "A\r\nBcc: x@evil.example"}
    rendered = merge.render(merge.default_template("study"), hostile)
    assert "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;,</p>" in rendered.html
    assert "<script>" not in rendered.html
    assert rendered.text.startswith('Hi <script>alert(1)</script>"&,')
    assert rendered.subject == "You're invited: A Bcc: x@evil.example"  # one header line, no injection


def test_a_value_inside_an_attribute_cannot_break_out():
    template = merge.Template("s", "{{accept_link}} {{unsubscribe_link}}",
                              '<a href="{{accept_link}}">go</a> {{unsubscribe_link}}')
    rendered = merge.render(template, {**VALUES, "accept_link": 'https://x.example/" onclick="steal()'})
    assert '<a href="https://x.example/&quot; onclick=&quot;steal()">go</a>' in rendered.html


def test_the_html_allow_list_drops_script_handlers_styles_and_bad_links():
    dirty = ('<p onclick="x()" style="color:red">Hi <b>there</b><script>alert(1)</script></p>'
             '<a href="javascript:alert(1)">bad</a><a href="https://ok.example/" target="_blank">ok</a>'
             '<a href="{{accept_link}}">reply</a><img src=x onerror=alert(1)><style>p{}</style>'
             '<iframe src="https://evil.example"></iframe><!-- note --><ul><li>one<li>two</ul><em>open')
    assert merge.sanitize_html(dirty) == (
        '<p>Hi <b>there</b></p><a>bad</a><a href="https://ok.example/">ok</a>'
        '<a href="{{accept_link}}">reply</a><ul><li>one<li>two</li></li></ul><em>open</em>')


def test_templates_have_no_expressions_attribute_access_or_unknown_fields():
    problems = merge.check("Hi {{ participant.email }}", "{{accept_link}} {{unsubscribe_link}} {{ config }}",
                           None, "study")
    assert problems == ["Subject: unknown merge field {{participant.email}}", "Text: unknown merge field {{config}}"]
    rendered = merge.render(merge.Template("{{ config }}", "{{ participant.__class__ }} {{first_name}}", None),
                            VALUES)
    assert rendered.subject == ""  # an unknown name is no value of ours: nothing, never the app's config
    assert rendered.text == "{{ participant.__class__ }} Zoë"
    assert merge.check("s", "no links here", "<p>{{accept_link}}</p>", "community") == [
        "Text: include {{accept_link}} so the person can reply.",
        "Text: include {{unsubscribe_link}}: every message must let the person opt out.",
        "HTML: include {{unsubscribe_link}}: every message must let the person opt out.",
    ]
    assert merge.check("s", "{{task_name}} {{accept_link}} {{unsubscribe_link}}", None, "study") == [
        "Text: unknown merge field {{task_name}}"]


def test_a_template_without_html_gets_one_made_from_its_text():
    template = merge.Template("s", "Hi {{first_name}} & co,\nline two\n\n{{accept_link}}\n\n{{unsubscribe_link}}", None)
    assert merge.render(template, VALUES).html == (
        "<p>Hi Zoë &amp; co,<br>\nline two</p>\n"
        '<p><a href="https://app.example/invite/T0K">https://app.example/invite/T0K</a></p>\n'
        '<p><a href="https://app.example/unsubscribe/U1">https://app.example/unsubscribe/U1</a></p>')


# --- editing pages ------------------------------------------------------------------------------------

def _researcher(app):
    world = make_world("Alpha")
    client = app.test_client()
    sign_in(client, world["users"]["researcher"], world["workspace_id"])
    return world, client, csrf_token(client)


def test_the_study_page_links_to_its_messages_and_shows_the_default(app):
    world, client, _ = _researcher(app)
    study_id = world["ids"]["study"]
    page = client.get(f"/studies/{study_id}").get_data(as_text=True)
    assert f'href="/studies/{study_id}/messages/invitation"' in page
    page = client.get(f"/studies/{study_id}/messages/invitation").get_data(as_text=True)
    assert "Showing the default wording" in page
    assert 'value="You&#39;re invited: {{study_name}}"' in page
    # The preview uses a real participant of the workspace (Pat, who is invited to the study).
    assert re.search(r'<dd id="preview-subject">You&#39;re invited: Alpha study</dd>', page)
    assert "Hi Pat," in page
    for kind, path in (("activity", "activities"), ("community", "communities")):
        target_id = world["ids"][kind]
        assert f'href="/{path}/{target_id}/messages/invitation"' in client.get(f"/{path}/{target_id}").get_data(
            as_text=True)
        assert client.get(f"/{path}/{target_id}/messages/reminder").status_code == 200


def test_a_researcher_saves_a_template_which_is_audited_and_used(app):
    world, client, token = _researcher(app)
    study_id = world["ids"]["study"]
    form = {"csrf_token": token, "subject": "Join {{study_name}}, {{first_name}}",
            "body_text": "Dear {{first_name}}, reply: {{accept_link}}. Stop: {{unsubscribe_link}}",
            "body_html": '<p onmouseover="x()">Dear {{first_name}}</p><a href="{{accept_link}}">Reply</a>'
                         '<script>x()</script><a href="{{unsubscribe_link}}">Stop</a>'}
    response = client.post(f"/studies/{study_id}/messages/invitation", data=form)
    assert response.status_code == 302 and response.headers["Location"] == f"/studies/{study_id}/messages/invitation"
    row = db.session.scalar(select(MessageTemplate))
    assert (row.target_key, row.kind, row.subject) == (f"study:{study_id}", "invitation",
                                                       "Join {{study_name}}, {{first_name}}")
    assert row.body_html == ('<p>Dear {{first_name}}</p><a href="{{accept_link}}">Reply</a>'
                             '<a href="{{unsubscribe_link}}">Stop</a>')
    assert row.updated_by_id == world["users"]["researcher"].id
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "message_template.saved"))
    assert (event.subject_type, event.subject_id, event.detail) == ("study", str(study_id), {"kind": "invitation"})
    template = invitations.template_for(world["workspace_id"], f"study:{study_id}", "invitation")
    assert template.saved and template.subject == row.subject
    page = client.get(f"/studies/{study_id}/messages/invitation").get_data(as_text=True)
    assert "This study has its own invitation message." in page
    assert '<dd id="preview-subject">Join Alpha study, Pat</dd>' in page

    client.post(f"/studies/{study_id}/messages/invitation/reset", data={"csrf_token": token})
    assert db.session.scalar(select(MessageTemplate)) is None
    assert not invitations.template_for(world["workspace_id"], f"study:{study_id}", "invitation").saved


def test_a_template_with_problems_is_not_saved_and_says_why(app):
    world, client, token = _researcher(app)
    study_id = world["ids"]["study"]
    response = client.post(f"/studies/{study_id}/messages/invitation",
                           data={"csrf_token": token, "subject": "Hi {{ workspace.name }}",
                                 "body_text": "Hello {{first_name}}"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Subject: unknown merge field {{workspace.name}}" in html
    assert "Text: include {{accept_link}} so the person can reply." in html
    assert db.session.scalar(select(MessageTemplate)) is None


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: all@evil.example", "Hi\nBcc: all@evil.example",
                                     "Hi\rBcc: all@evil.example", "Hi\u2028Bcc: all@evil.example"])
def test_a_subject_with_a_line_break_is_refused_with_a_field_error(app, subject):
    """Header injection: a CR or LF in the subject would add headers; the form says so on the field."""
    world, client, token = _researcher(app)
    study_id = world["ids"]["study"]
    body = "Dear {{first_name}}, reply: {{accept_link}}. Stop: {{unsubscribe_link}}"
    response = client.post(f"/studies/{study_id}/messages/invitation",
                           data={"csrf_token": token, "subject": subject, "body_text": body})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    field = re.search(r'<div class="field has-error">\s*<label for="subject">.*?</div>', html, re.DOTALL)
    assert field, "the subject field is not marked in error"
    assert "Write the subject on one line" in field.group(0)
    assert db.session.scalar(select(MessageTemplate)) is None
    # The same subject without the break is saved: the refusal was the line break, nothing else.
    response = client.post(f"/studies/{study_id}/messages/invitation",
                           data={"csrf_token": token, "subject": "Hi Bcc: all@evil.example", "body_text": body})
    assert response.status_code == 302
    assert db.session.scalar(select(MessageTemplate)).subject == "Hi Bcc: all@evil.example"


def test_the_service_refuses_a_subject_with_a_line_break_too(app):
    world = make_world("Alpha")
    study = db.session.get(Study, world["ids"]["study"])
    with pytest.raises(invitations.TemplateError) as raised:
        invitations.save_template(study, "invitation", subject="Hi\r\nBcc: x@evil.example",
                                  body_text="{{accept_link}} {{unsubscribe_link}}", body_html=None)
    assert raised.value.problems == [merge.SUBJECT_LINE_BREAK]
    assert db.session.scalar(select(MessageTemplate)) is None


def test_preview_escapes_a_real_participants_values(app):
    world, client, token = _researcher(app)
    study = db.session.get(Study, world["ids"]["study"])
    person = Participant(workspace_id=world["workspace_id"], first_name="<img src=x onerror=alert(1)>",
                         email="evil@alpha.example", email_key="evil@alpha.example", consent_status="opted_in")
    db.session.add(person)
    db.session.commit()
    response = client.post(f"/studies/{study.id}/messages/invitation/preview",
                           data={"csrf_token": token, "participant_id": person.id, "subject": "For {{first_name}}",
                                 "body_text": "Hi {{first_name}} {{accept_link}} {{unsubscribe_link}}",
                                 "body_html": "<p>Hi {{first_name}}</p>"},
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="preview">')
    assert '<div class="message-html" id="preview-html"><p>Hi &lt;img src=x onerror=alert(1)&gt;</p></div>' in html
    assert "<img" not in html.replace("&lt;img", "")
    assert "HTML: include {{accept_link}} so the person can reply." in html
    # Another workspace's participant cannot be previewed.
    beta = make_world("Beta")
    other = client.post(f"/studies/{study.id}/messages/invitation/preview",
                        data={"csrf_token": token, "participant_id": beta["ids"]["participant"], "subject": "s",
                              "body_text": "t"})
    assert other.status_code == 404
