"""``python -m emulator serve``: one ready line, ca.pem and connected-app.json, data options, help."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]


def test_serve_writes_state_and_prints_one_ready_line(tmp_path):
    plan = shared_path("fixtures", "sfdx-data", "easy-spaces-lwc", "Plan1.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", "--state-dir", str(tmp_path),
         "--data", str(plan), "--generate", "50", "--seed", "3", "--auto-approve",
         "--callback-url", "http://localhost:*/cb", "--api-limit", "1000", "--session-lifetime", "15m"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("emulator ready https://127.0.0.1:") and line.endswith(f"state={tmp_path}")
        url = line.split()[2]
        app = json.loads((tmp_path / "connected-app.json").read_text())
        assert app["instance_url"] == app["login_url"] == url
        assert app["client_id"].startswith("3MVG9") and app["client_secret"] and app["admin_key"]
        assert app["callback_urls"] == ["http://localhost:*/cb"] and app["auto_approve"] is True
        assert app["session_lifetime_seconds"] == 900 and app["api_limit"] == 1000
        users = {u["username"]: u for u in app["users"]}
        assert users["restricted@acme.example"]["org"] == "production"
        assert {o["key"] for o in app["orgs"]} == {"production", "sandbox", "personaccounts", "noapi"}
        s = requests.Session()
        s.trust_env = False
        s.verify = str(tmp_path / "ca.pem")
        r = s.get(url + "/services/oauth2/authorize", allow_redirects=False, params={
            "response_type": "code", "client_id": app["client_id"], "redirect_uri": "http://localhost:8000/cb",
            "state": "xyz"})
        assert r.status_code == 302 and "state=xyz" in r.headers["Location"]
        code = r.headers["Location"].split("code=")[1].split("&")[0]
        token = s.post(url + "/services/oauth2/token", data={
            "grant_type": "authorization_code", "code": requests.utils.unquote(code),
            "redirect_uri": "http://localhost:8000/cb"}, auth=(app["client_id"], app["client_secret"])).json()
        q = s.get(url + "/services/data/v62.0/query", params={"q": "SELECT COUNT() FROM Lead"},
                  headers={"Authorization": "Bearer " + token["access_token"]})
        assert q.json()["totalSize"] > 11   # 11 from the plan plus the generated leads
        assert q.headers["Sforce-Limit-Info"] == "api-usage=1/1000"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # the CA survives a restart, so a browser that trusted it keeps trusting it
    ca = (tmp_path / "ca.pem").read_text()
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--port", "0", "--state-dir", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("emulator ready")
        assert (tmp_path / "ca.pem").read_text() == ca
        assert json.loads((tmp_path / "connected-app.json").read_text())["client_id"] == app["client_id"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_help_documents_the_options():
    out = subprocess.run([sys.executable, "-m", "emulator", "serve", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    # every option issue 3 names: address, state, data, connected app, users, session lifetime, API limit
    for opt in ("--host", "--port", "--state-dir", "--data", "--generate", "--seed", "--org", "--keep-data",
                "--client-id", "--client-secret", "--callback-url", "--any-callback", "--auto-approve",
                "--default-user", "--password", "--session-lifetime", "--api-limit", "--fault",
                "restricted@acme.example", "API_DISABLED_FOR_ORG"):
        assert opt in out, opt
    for fault in ("error", "limit_exceeded", "invalid_locator", "slow", "page_timeout", "truncate_page",
                  "done_without_next", "/__emulator/expire-sessions"):
        assert fault in out, fault
    assert "--default-user DEFAULT_USER\n                        user --auto-approve signs in as" in out


def _serve(tmp_path, *args):
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--port", "0", "--state-dir", str(tmp_path),
                             *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("emulator ready https://"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, line.split()[2]


def test_serve_loads_both_sample_plans_generates_and_applies_cli_options_and_faults(tmp_path):
    """From the command line: coral-cloud and easy-spaces-lwc plans, --generate N --seed S, connected-app
    options, --default-user with --auto-approve, and a --fault rule; driven through authlib and simple-salesforce."""
    from authlib.integrations.requests_client import OAuth2Session
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import SalesforceGeneralError
    from emulator.testing import EmulatorServer

    sfdx = ("fixtures", "sfdx-data")
    plans = [shared_path(*sfdx, "coral-cloud", "data-plan.json"), shared_path(*sfdx, "easy-spaces-lwc", "Plan1.json"),
             shared_path(*sfdx, "easy-spaces-lwc", "Plan2.json")]
    proc, url = _serve(tmp_path, "--data", *map(str, plans), "--generate", "120", "--seed", "7",
                       "--client-id", "3MVG9cliTestClient", "--client-secret", "cli-secret-123",
                       "--default-user", "integration@acme.example", "--password", "pw-from-cli",
                       "--auto-approve", "--fault", '{"type":"error","status":503,"nth":3}')
    try:
        app = json.loads((tmp_path / "connected-app.json").read_text())
        assert (app["client_id"], app["client_secret"]) == ("3MVG9cliTestClient", "cli-secret-123")
        assert {u["password"] for u in app["users"]} == {"pw-from-cli"}
        http = requests.Session()
        http.trust_env = False
        http.verify = str(tmp_path / "ca.pem")
        client = OAuth2Session(app["client_id"], app["client_secret"], scope="api refresh_token id",
                               redirect_uri="http://127.0.0.1:5000/cb", code_challenge_method="S256")
        client.verify, client.trust_env = str(tmp_path / "ca.pem"), False
        verifier = "v" * 50
        auth_url, _ = client.create_authorization_url(app["authorize_url"], code_verifier=verifier)
        r = http.get(auth_url, allow_redirects=False)
        assert r.status_code == 302
        token = client.fetch_token(app["token_url"], authorization_response=r.headers["Location"],
                                   code_verifier=verifier)
        integration = next(u for u in app["users"] if u["username"] == "integration@acme.example")
        assert token["id"].endswith("/" + integration["user_id"])
        sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], version="62.0",
                        session=http)
        reviews = sf.query("SELECT Id, Contact__r.Email, Experience__r.Name FROM Guest_Review__c")   # call 1
        assert reviews["totalSize"] == 10
        assert all(r["Contact__r"]["Email"] and r["Experience__r"]["Name"] for r in reviews["records"])
        res = sf.query("SELECT Id, Contact__r.Account.Name, Market__r.Name FROM Reservation__c")    # call 2
        assert res["totalSize"] == 2 and all(r["Contact__r"]["Account"]["Name"] for r in res["records"])
        with pytest.raises(SalesforceGeneralError) as e:                                             # call 3
            sf.restful("")
        assert e.value.status == 503
        generated = sf.query_all("SELECT Id, Email, Phone FROM Contact ORDER BY Id", include_deleted=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # the same plans and seed in-process give the same org, record for record
    with EmulatorServer(data=plans, generate=120, seed=7) as same:
        again = same.salesforce().query_all("SELECT Id, Email, Phone FROM Contact ORDER BY Id", include_deleted=True)
    assert generated["records"] == again["records"]
    with EmulatorServer(data=plans) as plans_only:
        assert generated["totalSize"] > plans_only.count("Contact", include_deleted=True) + 50   # + generated people


def test_every_fault_type_from_the_command_line(tmp_path):
    """Each --fault type given on the command line fires as described, through requests and
    simple-salesforce; rules are kept apart by path and page."""
    import time
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import (SalesforceExpiredSession, SalesforceGeneralError,
                                              SalesforceMalformedRequest, SalesforceRefusedRequest)
    from emulator.faults import TYPES

    rules = [{"type": "error", "status": 500, "nth": 1, "path": "/limits"},
             {"type": "error", "status": 503, "nth": 1, "path": "/sobjects/Lead/describe"},
             {"type": "limit_exceeded", "nth": 1, "path": "/sobjects/Contact/describe"},
             {"type": "slow", "seconds": 0.3, "nth": 1, "path": "/sobjects/Account/describe"},
             {"type": "done_without_next", "page": 1, "times": 1},
             {"type": "invalid_locator", "page": 2, "times": 1},
             {"type": "truncate_page", "page": 3, "times": 1},
             {"type": "page_timeout", "page": 4, "seconds": 1, "times": 1},
             {"type": "expire_sessions", "nth": 1, "path": "/sobjects/Campaign/describe"}]
    assert {r["type"] for r in rules} == TYPES
    args = []
    for r in rules:
        args += ["--fault", json.dumps(r)]
    proc, url = _serve(tmp_path, "--generate", "2000", "--seed", "4", "--auto-approve", *args)
    try:
        app = json.loads((tmp_path / "connected-app.json").read_text())
        http = requests.Session()
        http.trust_env = False
        http.verify = str(tmp_path / "ca.pem")
        listed = http.get(url + "/__emulator/faults", headers={"X-Emulator-Admin-Key": app["admin_key"]}).json()
        assert [{k: v for k, v in r.items() if k not in ("seen", "fired")} for r in listed["rules"]] == rules
        r = http.get(url + "/services/oauth2/authorize", allow_redirects=False, params={
            "response_type": "code", "client_id": app["client_id"], "redirect_uri": "http://127.0.0.1:5000/cb"})
        code = requests.utils.unquote(r.headers["Location"].split("code=")[1].split("&")[0])
        token = http.post(url + "/services/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:5000/cb"},
            auth=(app["client_id"], app["client_secret"])).json()
        sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], version="62.0",
                        session=http)

        with pytest.raises(SalesforceGeneralError) as e:
            sf.limits()
        assert (e.value.status, e.value.content[0]["errorCode"]) == (500, "UNKNOWN_EXCEPTION")
        with pytest.raises(SalesforceGeneralError) as e:
            sf.Lead.describe()
        assert (e.value.status, e.value.content[0]["errorCode"]) == (503, "SERVER_UNAVAILABLE")
        with pytest.raises(SalesforceRefusedRequest) as e:
            sf.Contact.describe()
        assert e.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        t = time.monotonic()
        sf.Account.describe()
        assert time.monotonic() - t >= 0.3

        small = {"Sforce-Query-Options": "batchSize=200"}
        soql = "SELECT Id FROM Contact"
        first = sf.query(soql, headers=small)                                          # query 1, page 1
        assert first["done"] is False and "nextRecordsUrl" not in first
        first = sf.query(soql, headers=small)                                          # query 2
        with pytest.raises(SalesforceMalformedRequest) as e:                           # its page 2
            sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=small)
        assert e.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
        page = sf.query(soql, headers=small)                                           # query 3
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=small)    # page 2
        with pytest.raises(ValueError):                                                # page 3, cut off
            sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=small)
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=small)    # page 3 again
        with pytest.raises(requests.exceptions.ReadTimeout):                           # page 4 hangs
            http.get(url + page["nextRecordsUrl"], timeout=0.3, headers={
                "Authorization": "Bearer " + token["access_token"], **small})

        with pytest.raises(SalesforceExpiredSession):
            sf.Campaign.describe()
        with pytest.raises(SalesforceExpiredSession):
            sf.restful("")
        fresh = http.post(url + "/services/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=(app["client_id"], app["client_secret"])).json()
        Salesforce(instance_url=url, session_id=fresh["access_token"], version="62.0", session=http).restful("")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("args,message", [
    (["--fault", "notjson"], "argument --fault: not JSON"),
    (["--fault", '{"type":"bogus"}'], "argument --fault: fault type must be one of"),
    (["--fault", '{"type":"error","nth":"x"}'], "argument --fault: nth must be a number"),
    (["--session-lifetime", "5x"], "argument --session-lifetime: '5x' is not a lifetime"),
])
def test_bad_options_are_usage_errors_not_tracebacks(tmp_path, args, message):
    out = subprocess.run([sys.executable, "-m", "emulator", "serve", "--port", "0", "--state-dir", str(tmp_path),
                          *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
