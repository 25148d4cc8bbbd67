"""Sign-in, hashed passwords, sign-out, the workspace switcher, CSRF on the login form."""
from __future__ import annotations

from sqlalchemy import text

from core.extensions import db
from models import User
from services import accounts
from tests.support.web import csrf_token, login, make_world, post, sign_in

SECRET = "s3cret-horse-battery"


def _admin(name="Acme"):
    user = accounts.create_user("Ada@Example.org", "Ada", SECRET)
    workspace = accounts.create_workspace(name)
    accounts.add_member(user, workspace, "admin")
    return user, workspace


def test_login_with_the_form_and_land_on_the_dashboard(app, client):
    _admin()
    response = login(client, "ada@example.org", SECRET)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "Acme" in page.get_data(as_text=True)


def test_passwords_are_stored_only_as_hashes(app):
    _admin()
    user = db.session.scalar(db.select(User))
    assert user.password_hash != SECRET and user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert user.check_password(SECRET) and not user.check_password(SECRET + "x")
    # Nowhere in the users table does the password appear.
    for row in db.session.execute(text("SELECT * FROM users")):
        assert all(SECRET not in str(value) for value in row)


def test_wrong_password_and_unknown_email_get_the_same_answer(app, client):
    _admin()
    wrong = login(client, "ada@example.org", "nope-nope-nope")
    unknown = login(client, "nobody@example.org", SECRET)
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "do not match an account" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_inactive_people_cannot_sign_in(app, client):
    user, _ = _admin()
    user.active = False
    db.session.commit()
    assert login(client, "ada@example.org", SECRET).status_code == 200
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(app, client):
    _admin()
    response = client.post("/login", data={"email": "ada@example.org", "password": SECRET})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_anonymous_goes_to_login_and_comes_back(app, client):
    _admin()
    response = client.get("/studies?x=1")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    response = login(client, "ada@example.org", SECRET, next="/studies?x=1")
    assert response.headers["Location"] == "/studies?x=1"


def test_login_never_redirects_off_site(app, client):
    _admin()
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = login(client, "ada@example.org", SECRET, next=target)
        assert response.headers["Location"] == "/", target
        client.post("/logout", data={"csrf_token": csrf_token(client)})


def test_htmx_requests_of_signed_out_people_get_hx_redirect(app, client):
    response = client.get("/participants/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_logout_needs_post_with_token(app, client):
    _admin()
    login(client, "ada@example.org", SECRET)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert post(client, "/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_people_in_several_workspaces_switch_between_them(app, client):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    user = alpha["users"]["admin"]
    accounts.add_member(user, beta["workspace"], "researcher")
    sign_in(client, user, alpha["workspace_id"])
    page = client.get("/").get_data(as_text=True)
    assert "Switch workspace" in page and "Beta" in page
    response = post(client, "/workspace/switch", {"workspace_id": beta["workspace_id"], "next": "/studies"})
    assert response.status_code == 302 and response.headers["Location"] == "/studies"
    assert "Beta study" in client.get("/studies").get_data(as_text=True)
    # Now a researcher in Beta: admin pages answer 403.
    assert client.get("/admin/members").status_code == 403
    # Alpha's study (an id of the other workspace) is 404 while Beta is current.
    assert client.get(f"/studies/{alpha['ids']['study']}").status_code == 404


def test_switching_to_a_workspace_you_are_not_in_is_404(app, client):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    sign_in(client, alpha["users"]["admin"], alpha["workspace_id"])
    assert post(client, "/workspace/switch", {"workspace_id": beta["workspace_id"]}).status_code == 404
    assert "Alpha" in client.get("/").get_data(as_text=True)


def test_a_session_pointing_at_a_foreign_workspace_falls_back_to_ones_own(app, client):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    sign_in(client, alpha["users"]["researcher"], beta["workspace_id"])
    page = client.get("/").get_data(as_text=True)
    assert "Alpha" in page and "Beta study" not in page


def test_people_without_a_workspace_see_the_no_workspace_page(app, client):
    accounts.create_user("solo@example.org", "Solo", SECRET)
    login(client, "solo@example.org", SECRET)
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/no-workspace"
    assert "not a member of any workspace" in client.get("/no-workspace").get_data(as_text=True)


# --- the sign-in brake (services.sign_in_limits) -------------------------------------------

def test_an_account_is_locked_after_repeated_failures_even_with_the_right_password(app, client):
    _admin()
    app.config.update(LOGIN_MAX_FAILURES=3)
    try:
        for _ in range(3):
            assert "do not match an account" in login(client, "ada@example.org", "wrong-guess-1").get_data(as_text=True)
        locked = login(client, "ADA@example.org ", SECRET)  # the same account however it is typed
        assert locked.status_code == 429
        assert "Too many failed sign-ins. Try again in 15 minutes." in locked.get_data(as_text=True)
        assert 800 < int(locked.headers["Retry-After"]) <= 900
        assert client.get("/").status_code == 302  # not signed in
    finally:
        app.config.update(LOGIN_MAX_FAILURES=5)


def test_unknown_emails_lock_out_the_same_way_so_the_answer_reveals_nothing(app, client):
    app.config.update(LOGIN_MAX_FAILURES=2)
    try:
        for _ in range(2):
            assert login(client, "nobody@example.org", "x" * 10).status_code == 200
        assert login(client, "nobody@example.org", "x" * 10).status_code == 429
    finally:
        app.config.update(LOGIN_MAX_FAILURES=5)


def test_a_correct_password_forgets_the_accounts_failures(app, client):
    _admin()
    app.config.update(LOGIN_MAX_FAILURES=3)
    try:
        for _ in range(2):
            login(client, "ada@example.org", "wrong-guess-2")
        assert login(client, "ada@example.org", SECRET).status_code == 302
        assert client.get("/").status_code == 200
        client.post("/logout", data={"csrf_token": csrf_token(client)})
        for _ in range(2):  # two more failures: still under the limit because the count restarted
            login(client, "ada@example.org", "wrong-guess-3")
        assert login(client, "ada@example.org", SECRET).status_code == 302
    finally:
        app.config.update(LOGIN_MAX_FAILURES=5)


def test_one_address_trying_many_accounts_is_stopped(app, client):
    _admin()
    app.config.update(LOGIN_MAX_FAILURES_PER_ADDRESS=4)
    try:
        for n in range(4):
            assert login(client, f"guess{n}@example.org", "wrong-guess-4").status_code == 200
        # even a real account with its right password is refused from that address for now
        assert login(client, "ada@example.org", SECRET).status_code == 429
    finally:
        app.config.update(LOGIN_MAX_FAILURES_PER_ADDRESS=30)
