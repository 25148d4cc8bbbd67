"""Helpers for tests of the web app: sign in, CSRF tokens, and a workspace full of objects.

``make_world(name)`` builds a workspace with one person per role column of docs/roles.md and one
row of every workspace-owned kind, and returns their ids keyed the way URL rules name them
(``study_id`` ...). Tests that walk ``app.url_map`` fill URL variables from it, so a new route
is covered as soon as its variable names are listed in ``ID_ARGS`` (ids of workspace rows) or
``OTHER_ARGS`` (anything else). A route using a name listed in neither makes those tests fail
with the name, rather than be skipped.
"""
from __future__ import annotations

import re
from datetime import timedelta

from werkzeug.security import generate_password_hash

from core.extensions import db
from models import (Activity, ActivityParticipant, Community, CommunityMember, ImportPlan, Invitation, Membership,
                    OutboxMessage, Participant, ParticipantSource, SalesforceConnection, Study, StudyParticipant,
                    SuppressionEntry, SyncRun, User, Workspace)
from models.types import utcnow

PASSWORD = "correct horse battery"
# A cheap hash for the many people tests create; the login tests use services.accounts (the real cost).
_CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")

ROLE_PEOPLE = {  # docs/roles.md column -> (role, manage_imports, manage_integrations)
    "researcher": ("researcher", False, False),
    "researcher + manage_imports": ("researcher", True, False),
    "researcher + manage_integrations": ("researcher", False, True),
    "admin": ("admin", False, False),
}

# URL variable -> key of make_world()["ids"]. Add yours when a route takes a new kind of id.
ID_ARGS = {
    "participant_id": "participant",
    "study_id": "study",
    "activity_id": "activity",
    "community_id": "community",
    "entry_id": "suppression_entry",
    "connection_id": "connection",
    "membership_id": "membership",
    "message_id": "outbox_message",
    "run_id": "run",
    "plan_id": "plan",
    "invitation_id": "invitation",
    "source_id": "participant_source",
}
# URL variables that are not ids of workspace rows: a valid value to use in walks.
OTHER_ARGS: dict[str, str] = {
    "filename": "css/app.css",
    "kind": "invitation",  # message kind of the messages blueprint
    "token": "not-a-signed-token",  # the participant pages' signed link (invite blueprint)
}


def make_world(name: str) -> dict:
    """A workspace with people of every role and one object of every kind; ids keyed for URLs."""
    ws = Workspace(name=name, default_phone_region="GB", timezone="Europe/London")
    db.session.add(ws)
    db.session.flush()
    slug = re.sub(r"\W+", "", name.lower())
    users, memberships = {}, {}
    for column, (role, imports, integrations) in ROLE_PEOPLE.items():
        key = column.replace(" + ", "_")
        user = User(email=f"{key}@{slug}.example", name=f"{column} of {name}", password_hash=_CHEAP_HASH)
        db.session.add(user)
        db.session.flush()
        membership = Membership(user_id=user.id, workspace_id=ws.id, role=role, can_manage_imports=imports,
                                can_manage_integrations=integrations)
        db.session.add(membership)
        users[column], memberships[column] = user, membership
    db.session.flush()
    now = utcnow()
    participant = Participant(workspace_id=ws.id, first_name="Pat", last_name=f"of {name}",
                              email=f"pat@{slug}.example", email_key=f"pat@{slug}.example",
                              phone_raw="+44 20 7946 0000", phone_e164="+442079460000", phone_key="+442079460000",
                              company=f"{name} Ltd", segments=["B2B"], consent_status="opted_in",
                              attributes={"tier": "Enterprise"})
    connection = SalesforceConnection(workspace_id=ws.id, name="Production", login_url="https://login.salesforce.com",
                                      org_id="00D000000000001EAA", status="connected", sf_username=f"ops@{slug}.example")
    study = Study(workspace_id=ws.id, name=f"{name} study")
    community = Community(workspace_id=ws.id, name=f"{name} panel")
    db.session.add_all([participant, connection, study, community])
    db.session.flush()
    activity = Activity(workspace_id=ws.id, study_id=study.id, name=f"{name} diary", kind="diary")
    plan = ImportPlan(workspace_id=ws.id, connection_id=connection.id, name=f"{name} contacts", object_name="Contact")
    source = ParticipantSource(workspace_id=ws.id, participant_id=participant.id, connection_id=connection.id,
                               org_id=connection.org_id, object_name="Contact", record_id="003000000000001AAA",
                               source_timestamp=now - timedelta(hours=1))
    entry = SuppressionEntry(workspace_id=ws.id, email=f"no@{slug}.example", email_key=f"no@{slug}.example")
    db.session.add_all([activity, plan, source, entry])
    db.session.flush()
    run = SyncRun(workspace_id=ws.id, plan_id=plan.id, status="succeeded", started_at=now, finished_at=now,
                  imported=1)
    invitation = Invitation(workspace_id=ws.id, participant_id=participant.id, target_type="study",
                            target_key=f"study:{study.id}", study_id=study.id, consent_evidence={"consent": "opted_in"})
    db.session.add_all([run, invitation,
                        StudyParticipant(workspace_id=ws.id, study_id=study.id, participant_id=participant.id),
                        ActivityParticipant(workspace_id=ws.id, activity_id=activity.id, participant_id=participant.id),
                        CommunityMember(workspace_id=ws.id, community_id=community.id, participant_id=participant.id)])
    db.session.flush()
    message = OutboxMessage(workspace_id=ws.id, to_addr=participant.email, subject=f"Invitation from {name}",
                            body_text="Hello", invitation_id=invitation.id)
    db.session.add(message)
    db.session.commit()
    ids = {"participant": participant.id, "study": study.id, "activity": activity.id, "community": community.id,
           "suppression_entry": entry.id, "connection": connection.id,
           "membership": memberships["researcher"].id, "outbox_message": message.id, "run": run.id,
           "plan": plan.id, "invitation": invitation.id, "participant_source": source.id}
    return {"workspace": ws, "workspace_id": ws.id, "users": users, "memberships": memberships, "ids": ids}


def sign_in(client, user, workspace_id: int | None = None) -> None:
    """Sign ``user`` in without the login form (the login tests use the form)."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
        if workspace_id is not None:
            session["workspace_id"] = workspace_id


_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')
_FORM_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client) -> str:
    """A valid CSRF token for the client's session (read from a page, as a browser would)."""
    response = client.get("/login", follow_redirects=True)
    html = response.get_data(as_text=True)
    match = _TOKEN.search(html)
    assert match, f"no csrf-token meta on {response.request.path}"
    return match.group(1)


def login(client, email: str, password: str = PASSWORD, **extra):
    """Sign in through the login form, with the token the form carries."""
    html = client.get("/login").get_data(as_text=True)
    match = _FORM_TOKEN.search(html)
    token = (match.group(1) or match.group(2)) if match else ""
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, **extra})


def post(client, url: str, data=None, **kwargs):
    """POST with the session's CSRF token in the form."""
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client))
    return client.post(url, data=data, **kwargs)


def url_args(rule, ids: dict) -> dict:
    """Values for every variable of ``rule`` from a world's ids; AssertionError names unknown ones."""
    values = {}
    for name in rule.arguments:
        if name in ID_ARGS:
            values[name] = ids[ID_ARGS[name]]
        elif name in OTHER_ARGS:
            values[name] = OTHER_ARGS[name]
        else:
            raise AssertionError(f"route {rule.rule} ({rule.endpoint}) has URL variable {name!r}: add it to "
                                 f"tests/support/web.py ID_ARGS (workspace row ids) or OTHER_ARGS")
    return values
