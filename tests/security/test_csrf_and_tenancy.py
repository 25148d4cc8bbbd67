"""Every POST route refuses a missing CSRF token; every route given another workspace's id answers 404.

Both walk ``app.url_map``, so routes added later are covered without touching this file (a
route whose URL variable is unknown fails in ``tests.support.web.url_args`` with its name).
"""
from __future__ import annotations
import pytest

from flask import url_for

from tests.support.web import ID_ARGS, csrf_token, make_world, sign_in, url_args


def _rules(app, method):
    return [r for r in sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
            if method in r.methods and r.endpoint != "static"]


def _url(app, rule, ids):
    with app.test_request_context():
        return url_for(rule.endpoint, **url_args(rule, ids))


def test_there_are_routes_to_walk(app):
    assert _rules(app, "POST"), "no POST route found: the walk below would prove nothing"
    assert [r for r in app.url_map.iter_rules() if set(r.arguments) & set(ID_ARGS)]


def _public_forms(world) -> dict[str, tuple[str, str]]:
    """The participant answer forms, exempt from the session's CSRF check because they carry a
    token bound to their signed link: endpoint -> (a real link's URL, the form token it carries)."""
    from core.extensions import db
    from models import Invitation, Participant
    from services import invitations

    invitation = db.session.get(Invitation, world["ids"]["invitation"])
    person = db.session.get(Participant, world["ids"]["participant"])
    respond, unsubscribe = invitations.respond_token(invitation), invitations.unsubscribe_token(person, invitation)
    return {"invite.respond": (f"/invite/{respond}", invitations.form_token(respond, "respond")),
            "invite.unsubscribe": (f"/unsubscribe/{unsubscribe}", invitations.form_token(unsubscribe, "unsubscribe"))}


def test_every_post_route_refuses_a_missing_csrf_token(app):
    from core.extensions import csrf

    world = make_world("Alpha")
    public_forms = _public_forms(world)
    # A view exempt from the session check must be one whose own token this walk checks below.
    exempt = {f"{app.view_functions[r.endpoint].__module__}.{app.view_functions[r.endpoint].__name__}": r.endpoint
              for r in _rules(app, "POST")}
    assert not csrf._exempt_blueprints, "a whole blueprint is exempt from CSRF"
    assert {exempt.get(view, view) for view in csrf._exempt_views} == set(public_forms), (
        "views exempt from the session CSRF check without a token of their own checked here")
    checked_public = set()
    for signed_in in (False, True):
        client = app.test_client()
        if signed_in:
            sign_in(client, world["users"]["admin"], world["workspace_id"])
        for rule in _rules(app, "POST"):
            url = _url(app, rule, world["ids"])
            if rule.endpoint in public_forms:
                # Refused for the form's own token, on a real link (a bad link is a 404 first).
                url, _good = public_forms[rule.endpoint]
            response = client.post(url, data={"anything": "x"})
            assert response.status_code == 400, f"POST {url} without a token answered {response.status_code}"
            assert "expired" in response.get_data(as_text=True)
            # A token in a header that is not the session's is refused too.
            response = client.post(url, headers={"X-CSRFToken": "forged"})
            assert response.status_code == 400, f"POST {url} with a forged token answered {response.status_code}"
            if rule.endpoint in public_forms:
                # The session's own token is no key to a participant form, nor a forged one.
                for token in ([csrf_token(client)] if signed_in else []) + ["forged"]:
                    response = client.post(url, data={"csrf_token": token})
                    assert response.status_code == 400, f"POST {url} with {token!r} answered {response.status_code}"
                checked_public.add(rule.endpoint)
    assert checked_public == set(public_forms)
    # The forms' own tokens are accepted (no cookie needed): the refusals above were the token's.
    browser = app.test_client(use_cookies=False)
    url, good = public_forms["invite.respond"]
    assert browser.post(url, data={"csrf_token": good, "answer": "decline"}).status_code == 200
    url, good = public_forms["invite.unsubscribe"]
    assert browser.post(url, data={"csrf_token": good}).status_code == 200


def test_an_htmx_request_with_the_header_token_passes_csrf(app):
    world = make_world("Alpha")
    client = app.test_client()
    sign_in(client, world["users"]["admin"], world["workspace_id"])
    token = csrf_token(client)
    response = client.post("/communities/new", data={"name": "Panel"},
                           headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code in (200, 302), response.status_code


def test_every_route_with_another_workspaces_id_answers_404(app):
    alpha = make_world("Alpha")
    beta = make_world("Beta")
    client = app.test_client()
    sign_in(client, alpha["users"]["admin"], alpha["workspace_id"])
    token = csrf_token(client)
    from core.extensions import db
    from models import Participant
    beta_person = db.session.get(Participant, beta["ids"]["participant"])
    # Words only Beta's rows hold ("Beta" itself may be typed by anyone, e.g. in a flash message).
    beta_words = [beta_person.email, beta_person.last_name, beta_person.company, "Beta study", "Beta panel",
                  "Beta diary", "Beta contacts", "no@beta.example", "ops@beta.example",
                  *(u.email for u in beta["users"].values())]
    checked = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not set(rule.arguments) & set(ID_ARGS):
            continue
        # Beta's ids for every id variable (other variables keep valid values).
        url = _url(app, rule, beta["ids"])
        own = _url(app, rule, alpha["ids"])
        for method in sorted(rule.methods & {"GET", "POST"}):
            if method == "GET":
                response = client.get(url)
                assert client.get(own).status_code != 404, f"GET {own}: own object not found"
            else:
                response = client.post(url, data={"csrf_token": token})
            assert response.status_code == 404, (
                f"{method} {url} ({rule.endpoint}) with Beta's ids answered {response.status_code} to Alpha's admin")
            body = response.get_data(as_text=True)
            assert not [w for w in beta_words if w in body], f"{method} {url} shows Beta's data"
            checked += 1
    assert checked >= 10


def test_beta_rows_are_untouched_after_alphas_walk(app):
    """POSTs with another workspace's ids changed nothing there."""
    from core.extensions import db
    from models import AuditEvent, StudyParticipant

    alpha = make_world("Alpha")
    beta = make_world("Beta")
    client = app.test_client()
    sign_in(client, alpha["users"]["admin"], alpha["workspace_id"])
    token = csrf_token(client)
    client.post(f"/studies/{beta['ids']['study']}/add-participants",
                data={"csrf_token": token, "participant_id": str(beta["ids"]["participant"])})
    client.post(f"/studies/{alpha['ids']['study']}/add-participants",
                data={"csrf_token": token, "participant_id": str(beta["ids"]["participant"])})
    assert db.session.query(StudyParticipant).filter_by(participant_id=beta["ids"]["participant"]).count() == 1
    assert db.session.query(AuditEvent).filter_by(workspace_id=beta["workspace_id"]).count() == 0


# --- ids out of the database's integer range ------------------------------------------------------

HUGE = "99999999999999999999"  # 20 digits: past int8, SQLite and psycopg overflow on it


@pytest.mark.parametrize("path", [
    "/operations/runs/{id}", "/operations/runs/{id}/tail", "/operations/runs/{id}/outcomes.csv",
    "/operations/plans/{id}/runs", "/operations/connections/{id}", "/operations/participants/{id}/runs",
    "/studies/{id}", "/activities/{id}", "/wizard/plans/{id}/object", "/wizard/plans/{id}/filters",
    "/wizard/plans/{id}/schedule",
])
def test_an_id_out_of_the_integer_range_is_404(app, path):
    from tests.support.web import make_world, sign_in
    world = make_world("Huge")
    client = app.test_client()
    sign_in(client, world["users"]["admin"], world["workspace_id"])
    for value in (HUGE, str(2**31), str(2**63)):
        response = client.get(path.format(id=value))
        assert response.status_code == 404, (path, value, response.status_code)


def test_ids_in_workspace_skips_ids_out_of_range(app):
    from core.tenancy import ids_in_workspace
    from models import Participant
    from tests.support.web import make_world, sign_in
    world = make_world("Huge")
    client = app.test_client()
    sign_in(client, world["users"]["admin"], world["workspace_id"])
    with app.test_request_context():
        from flask_login import login_user
        login_user(world["users"]["admin"])
        from flask import session
        session["workspace_id"] = world["workspace_id"]
        assert ids_in_workspace(Participant, [HUGE, str(world["ids"]["participant"]), "x"]) == \
            [world["ids"]["participant"]]


@pytest.mark.db  # on PostgreSQL too: its integer range and its refusal of NUL in text are the point
def test_every_get_route_survives_huge_numbers_and_nul_characters(app):
    """Walks every GET route: each ID in the path out of range (404), and query strings with huge
    numbers and a NUL where pages, cursors and searches are read (never a 500)."""
    world = make_world("Alpha")
    client = app.test_client()
    sign_in(client, world["users"]["admin"], world["workspace_id"])
    huge_ids = {key: int(HUGE) for key in ID_ARGS.values()}
    checked = 0
    for rule in _rules(app, "GET"):
        if set(rule.arguments) & set(ID_ARGS):
            url = _url(app, rule, {**world["ids"], **huge_ids})
            response = client.get(url)
            assert response.status_code == 404, (url, response.status_code)
        url = _url(app, rule, world["ids"])
        for query in (f"page={HUGE}&after={HUGE}&id={HUGE}&connection={HUGE}&participant_id={HUGE}",
                      "q=a%00b&page=%00"):
            response = client.get(f"{url}?{query}")
            assert response.status_code < 500, (url, query, response.status_code)
        checked += 1
    assert checked >= 30
