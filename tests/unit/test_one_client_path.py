"""One construction path for Salesforce clients: services.connections builds them (client_for, and
the connect flow's first call); no other application module constructs a SalesforceClient or
refreshes a token with its own reading of the settings."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = ("services", "wizard", "jobs", "operations", "integrations", "participants", "invite", "core")


def test_only_services_connections_builds_salesforce_clients():
    offenders = []
    for package in APPLICATION:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() == "services/connections.py":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"\bSalesforceClient\(|\brefresh_access_token\(", text):
                offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []
