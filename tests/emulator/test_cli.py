"""``python -m emulator serve``: one ready line, ca.pem and connected-app.json, data options, help."""
import json
import subprocess
import sys
from pathlib import Path

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
    for opt in ("--state-dir", "--data", "--generate", "--seed", "--callback-url", "--auto-approve",
                "--session-lifetime", "--api-limit", "--fault", "restricted@acme.example"):
        assert opt in out
