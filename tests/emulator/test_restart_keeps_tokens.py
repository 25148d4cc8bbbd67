"""A restart on the same state dir with keep-data keeps the org: its records and edits, the refresh
tokens it issued and the access tokens until they expire (run.sh restarts the demo org this way)."""
import time

from emulator.testing import EmulatorServer


def _refresh(emu, refresh_token):
    return emu.http_session().post(emu.token_url, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": emu.client_id, "client_secret": emu.client_secret})


def _me(emu, access_token):
    return emu.http_session().get(f"{emu.url}/services/oauth2/userinfo",
                                  headers={"Authorization": f"Bearer {access_token}"})


def test_restart_with_keep_data_keeps_tokens_and_edits(tmp_path):
    first = EmulatorServer(state_dir=tmp_path, session_lifetime=3).start()
    try:
        token = first.token_for("admin@acme.example")
        revoked = first.token_for("admin@acme.example")
        assert first.http_session().post(f"{first.url}/services/oauth2/revoke",
                                         data={"token": revoked["refresh_token"]}).status_code == 200
        cid = first.create("Contact", {"LastName": "Before", "Email": "keep@example.org"})
        first.update("Contact", cid, {"LastName": "Edited"})
        client = (first.client_id, first.client_secret)
        assert _me(first, token["access_token"]).status_code == 200
    finally:
        first.stop()

    second = EmulatorServer(state_dir=tmp_path, session_lifetime=3, keep_data=True).start()
    try:
        assert (second.client_id, second.client_secret) == client
        assert second.get(cid)["LastName"] == "Edited"                       # edits survive
        me = _me(second, token["access_token"])                              # access token still valid
        assert me.status_code == 200 and me.json()["preferred_username"] == "admin@acme.example"
        r = _refresh(second, token["refresh_token"])                         # refresh token still refreshes
        assert r.status_code == 200, r.text
        fresh_access = r.json()["access_token"]
        assert _me(second, fresh_access).status_code == 200
        bad = _refresh(second, revoked["refresh_token"])                     # revocations survive too
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
        time.sleep(3.2)                                                      # ... until the session expires
        assert _me(second, token["access_token"]).status_code == 403
    finally:
        second.stop()

    # the same tokens carry over a further restart; the expired one stays expired
    third = EmulatorServer(state_dir=tmp_path, session_lifetime=3, keep_data=True).start()
    try:
        assert _me(third, token["access_token"]).status_code == 403
        assert _refresh(third, token["refresh_token"]).status_code == 200
    finally:
        third.stop()


def test_restart_without_keep_data_starts_a_new_org(tmp_path):
    first = EmulatorServer(state_dir=tmp_path).start()
    try:
        token = first.token_for("admin@acme.example")
        cid = first.create("Contact", {"LastName": "Gone"})
    finally:
        first.stop()
    second = EmulatorServer(state_dir=tmp_path, client_id=first.client_id,
                            client_secret=first.client_secret).start()
    try:
        assert second.get(cid) is None
        r = _refresh(second, token["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    finally:
        second.stop()
