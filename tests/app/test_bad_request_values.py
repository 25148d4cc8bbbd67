"""Request values no form or link would send, refused with a clear answer and never a 500: numbers
beyond a 32-bit INTEGER column (IDs in the path and in query strings, page numbers, caps), NUL
characters (PostgreSQL text cannot hold them), overlong names. Runs on SQLite and PostgreSQL."""
import pytest

from core.extensions import db
from models import ImportPlan
from tests.support.web import csrf_token, make_world, sign_in
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import text_of

pytestmark = pytest.mark.db
HUGE = "9" * 30
BIG = str(2**31)  # one past PostgreSQL's integer


@pytest.fixture
def researcher(app):
    world = make_world("Alpha")
    client = app.test_client()
    sign_in(client, world["users"]["admin"], world["workspace_id"])
    return client, world


@pytest.mark.parametrize("url", [
    f"/participants/?page={HUGE}", f"/participants/?page={BIG}", f"/suppression?page={HUGE}",
    f"/admin/outbox?page={HUGE}", "/operations/runs/{run}?after=" + HUGE, "/operations/runs/{run}/tail?after=" + HUGE,
    "/wizard/plans/{plan}/preview/totals?id=" + HUGE,
])
def test_huge_numbers_in_query_strings_fall_back_to_their_default(researcher, url):
    client, world = researcher
    r = client.get(url.format(**world["ids"]))
    assert r.status_code in (200, 302, 303, 404), (url, r.status_code)


@pytest.mark.parametrize("url", ["/participants/" + HUGE, "/participants/" + BIG, "/studies/" + HUGE,
                                 "/operations/runs/" + HUGE, "/wizard/plans/" + HUGE + "/mapping"])
def test_huge_ids_in_the_path_are_not_found(researcher, url):
    client, _ = researcher
    assert client.get(url).status_code == 404


def test_switching_to_a_huge_workspace_id_is_refused_like_any_other(researcher):
    client, world = researcher
    r = client.post("/workspace/switch", data={"workspace_id": HUGE, "csrf_token": csrf_token(client)})
    assert r.status_code == 404  # not a workspace of yours, as for any unknown ID


@pytest.mark.parametrize("method,url,data", [
    ("get", "/participants/?q=a%00b", None),
    ("get", "/suppression?q=%00", None),
    ("post", "/login", {"email": "a\x00@example.org", "password": "x"}),
])
def test_a_nul_character_is_refused_naming_the_field(app, researcher, method, url, data):
    client, _ = researcher
    if data is not None:
        data = {**data, "csrf_token": csrf_token(client)}
    r = getattr(client, method)(url, data=data)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "contains a NUL character" in html and ("“q”" in html or "“email”" in html)


def test_caps_beyond_an_integer_column_and_overlong_names_are_field_errors(wiz):
    plan = wiz.plan(step="schedule")
    url = f"/wizard/plans/{plan.id}/schedule"
    base = {"schedule": "manual", "action_choice": "pool", "leaving_policy": "keep", "step_action": "save",
            "name": "UK contacts"}
    r = wiz.post(url, {**base, "per_run_api_cap": HUGE, "per_day_api_cap": "9999999999"})
    html = text_of(r)
    assert r.status_code in (200, 422) and html.count("A cap is at most 2,147,483,647 API calls") == 2
    r = wiz.post(url, {**base, "name": "n" * 10_000})
    assert r.status_code in (200, 422) and "A name is at most 200 characters." in text_of(r)
    db.session.expire_all()
    saved = db.session.get(ImportPlan, plan.id)
    assert saved.per_run_api_cap is None and saved.name != "n" * 200  # nothing half-saved
