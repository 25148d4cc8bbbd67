"""The role × route table: docs/roles.md, the views' declarations and the answers all agree."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import url_for

from core.security import ROLE_COLUMNS, allowed, requirement_for
from tests.support.web import csrf_token, make_world, sign_in, url_args

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def parse_roles_doc() -> dict[str, dict]:
    """docs/roles.md rows: endpoint -> {methods, requirement, allowed: {column: bool}}."""
    table = {}
    lines = (ROOT / "docs" / "roles.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| Endpoint"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[3:] == list(ROLE_COLUMNS), f"docs/roles.md columns {columns[3:]} != {ROLE_COLUMNS}"
    for line in lines:
        match = ROW.match(line)
        if not match:
            continue
        cells = [c.strip() for c in match.group(2).split("|")]
        endpoint = match.group(1)
        assert endpoint not in table, f"{endpoint} appears twice in docs/roles.md"
        assert all(c in ("yes", "no") for c in cells[2:]), f"{endpoint}: cells must be yes/no: {cells[2:]}"
        table[endpoint] = {"methods": {m.strip() for m in cells[0].split(",") if m.strip()},
                           "requirement": cells[1],
                           "allowed": dict(zip(ROLE_COLUMNS, (c == "yes" for c in cells[2:])))}
    return table


def _doc_row(table, endpoint):
    if endpoint in table:
        return table[endpoint]
    blueprint = endpoint.rsplit(".", 1)[0]
    return table.get(f"{blueprint}.*")


def url_map_endpoints(app) -> dict[str, set[str]]:
    methods: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return methods


def test_every_endpoint_declares_its_requirement(_app):
    undeclared = [e for e in url_map_endpoints(_app) if requirement_for(_app, e) is None]
    assert not undeclared, ("these endpoints declare no requirement (use @public, @signed_in, "
                            f"@login_required or @requires(...) from core.security): {undeclared}")


def test_docs_table_matches_the_url_map(_app):
    table = parse_roles_doc()
    endpoints = url_map_endpoints(_app)
    problems = []
    for endpoint, methods in sorted(endpoints.items()):
        row = _doc_row(table, endpoint)
        if row is None:
            problems.append(f"missing row for {endpoint} (run `python -m core.security`)")
            continue
        declared = requirement_for(_app, endpoint)
        if row["requirement"] != declared:
            problems.append(f"{endpoint}: docs say {row['requirement']}, the view declares {declared}")
        if endpoint in table and row["methods"] != methods:
            problems.append(f"{endpoint}: docs list methods {sorted(row['methods'])}, URL map has {sorted(methods)}")
        for column in ROLE_COLUMNS:
            if row["allowed"][column] != allowed(declared, column):
                problems.append(f"{endpoint}: column {column!r} says {row['allowed'][column]}, "
                                f"requirement {declared} means {allowed(declared, column)}")
    for endpoint in table:
        if endpoint.endswith(".*"):
            continue
        if endpoint not in endpoints:
            problems.append(f"docs/roles.md lists {endpoint}, which is not in the URL map")
    assert not problems, "\n".join(problems)


def _rules(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        yield rule


@pytest.mark.parametrize("column", ("anonymous",) + tuple(c for c in ROLE_COLUMNS if c != "anonymous"))
def test_every_route_answers_each_role_as_the_table_says(app, column):
    """Sign in as the column's person and call every route (GET, and POST with a valid token)."""
    world = make_world("Alpha")
    table = parse_roles_doc()
    client = app.test_client()
    if column != "anonymous":
        sign_in(client, world["users"][column], world["workspace_id"])
    token = csrf_token(client)
    wrong = []
    for rule in _rules(app):
        row = _doc_row(table, rule.endpoint)
        assert row is not None, f"{rule.endpoint} has no row in docs/roles.md (run `python -m core.security`)"
        expected = row["allowed"][column]
        with app.test_request_context():
            url = url_for(rule.endpoint, **url_args(rule, world["ids"]))
        for method in sorted(rule.methods & {"GET", "POST"}):
            if rule.endpoint == "auth.logout" or (rule.endpoint == "workspace.switch" and method == "POST"):
                continue  # would end or change the session the walk relies on; tested in test_auth
            if method == "GET":
                response = client.get(url)
            else:
                response = client.post(url, data={"csrf_token": token})
            refused_login = response.status_code in (301, 302) and "/login" in response.headers.get("Location", "")
            refused = response.status_code == 403 or refused_login
            if expected and refused:
                wrong.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, expected allowed")
            if not expected:
                want = "login redirect" if column == "anonymous" else "403"
                ok = refused_login if column == "anonymous" else response.status_code == 403
                if not ok:
                    wrong.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, expected {want}")
            if response.status_code >= 500:
                wrong.append(f"{method} {url} ({rule.endpoint}): server error {response.status_code}")
    assert not wrong, f"as {column}:\n" + "\n".join(wrong)
