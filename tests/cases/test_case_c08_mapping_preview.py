"""C08 (end to end): Contacts with and without an Account, Company mapped from Account.Name in
the wizard; the mapping preview shows the company, or nothing for the null parent."""
from __future__ import annotations

import re

import pytest

from services import plans as plan_service
from tests.app.wizard_support import emulator, make_admin, seed_connection, use_emulator, web_client
from tests.conftest import load_case
from tests.support.web import csrf_token

CASE = load_case("C08")


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        records = CASE["input"]["records"]
        ids = {}
        for record in records:
            fields = {k: record[k] for k in ("FirstName", "LastName", "Email")}
            if record["Account"]:
                fields["AccountId"] = server.create("Account", {"Name": record["Account"]["Name"]})
            ids[server.create("Contact", fields)] = record["Id"]
        server.case_ids = ids  # emulator id -> the case's id
        yield server


def test_c08_mapping_preview_shows_empty_for_the_null_parent(app, emu, monkeypatch):
    use_emulator(app, emu, monkeypatch)
    ws, user = make_admin()
    plan = plan_service.create_draft(ws, seed_connection(ws, emu), user)
    client = web_client(app, user, ws)
    token = csrf_token(client)
    chose = client.post(f"/wizard/plans/{plan.id}/object", data={"csrf_token": token, "object_name": "Contact"})
    assert chose.status_code == 303
    page = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    assert re.search(r'<option value="Account.Name" selected>', page)  # the suggested Company
    response = client.post(f"/wizard/plans/{plan.id}/mapping", data={
        "csrf_token": token, "first_name": "FirstName", "last_name": "LastName", "email": "Email",
        "company": CASE["input"]["mapping"]["Company"], "external_id": "Id", "action": "preview"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    table = html.split('id="mapping-preview"')[1].split("</table>")[0]
    rows = re.findall(r'<tr data-record="([^"]+)">(.*?)</tr>', table, re.S)
    assert len(rows) == CASE["expected"]["preview_rows"]
    companies = {}
    for record_id, cells in rows:
        companies[emu.case_ids[record_id]] = re.search(r'<td class="company">(.*?)</td>', cells, re.S).group(1)
    expected = {k: (v or "") for k, v in CASE["expected"]["company"].items()}
    assert companies == expected
    for junk in CASE["expected"]["company_never_rendered_as"]:
        assert junk not in companies.values()
        assert all(junk not in cells for _, cells in rows)
