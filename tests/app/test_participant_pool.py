"""The pool: search by name/email/phone/company, filters, status, pagination, htmx table swap."""
from __future__ import annotations

import re

from core.extensions import db
from models import Participant
from services.participants_pool import PoolFilter, pool_query, segments_in_use
from tests.support.web import make_world, sign_in

PEOPLE = [
    # first, last, email, phone e164, company, segments, consent, status
    ("Jane", "Doe", "jane@acme.example", "+447700900001", "Acme Ltd", ["B2B", "Enterprise"], "opted_in", "active"),
    ("John", "Smith", "john@globex.example", "+14155550100", "Globex", ["Consumer"], "opted_out", "active"),
    ("Mary", "Jane", "mary@initech.example", None, "Initech", ["B2B"], "unknown", "active"),
    ("Staged", "Person", "staged@acme.example", None, "Acme Ltd", ["B2B"], "opted_in", "staged"),
    ("Gone", "Person", "gone@acme.example", None, "Acme Ltd", [], "opted_in", "archived"),
    ("Per_cent", "100%", "pct@x.example", None, None, ["50%"], "unknown", "active"),
]


def _people(workspace_id):
    for first, last, email, phone, company, segments, consent, status in PEOPLE:
        db.session.add(Participant(workspace_id=workspace_id, first_name=first, last_name=last, email=email,
                                   email_key=email, phone_e164=phone, phone_key=phone, phone_raw=phone,
                                   company=company, segments=segments, consent_status=consent, status=status))
    db.session.commit()


def _names(workspace_id, **kwargs):
    rows = db.session.scalars(pool_query(workspace_id, PoolFilter(**kwargs))).all()
    return sorted(p.first_name for p in rows)


def test_search_and_filters(app):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    ws = alpha["workspace_id"]
    _people(ws)
    _people(beta["workspace_id"])  # same people in another workspace never show up
    assert _names(ws, q="jane") == ["Jane", "Mary"]                 # first or last name, any case
    assert _names(ws, q="jane doe") == ["Jane"]                     # every word must match
    assert _names(ws, q="globex.example") == ["John"]               # email
    assert _names(ws, q="initech") == ["Mary"]                      # company
    assert _names(ws, q="+1 415 555 0100") == ["John"]              # phone typed with spaces
    assert _names(ws, q="07700 900001") == ["Jane"]                 # national format
    assert _names(ws, q="100%") == ["Per_cent"]                     # LIKE wildcards are literal
    assert _names(ws, q="_") == ["Per_cent"]
    assert _names(ws, segment="B2B") == ["Jane", "Mary", "Pat"]
    assert _names(ws, segment="Enterprise") == ["Jane"]
    assert _names(ws, segment="B2") == []                           # whole values only
    assert _names(ws, consent="opted_out") == ["John"]
    assert _names(ws, segment="B2B", consent="opted_in") == ["Jane", "Pat"]
    assert _names(ws, status="staged") == ["Staged"]
    assert _names(ws, status="archived") == ["Gone"]
    assert segments_in_use(ws) == ["50%", "B2B", "Consumer", "Enterprise"]


def test_unknown_filter_values_are_dropped():
    f = PoolFilter.from_args({"consent": "'; DROP", "status": "deleted", "q": "  x  "})
    assert f == PoolFilter(q="x", consent="", status="active")


def test_pool_page_paginates_and_htmx_swaps_only_the_table(app):
    world = make_world("Alpha")
    for i in range(60):
        db.session.add(Participant(workspace_id=world["workspace_id"], first_name=f"Person{i:02d}",
                                   email_key=f"p{i}@x.example", email=f"p{i}@x.example", segments=["Panel"]))
    db.session.commit()
    client = app.test_client()
    sign_in(client, world["users"]["researcher"], world["workspace_id"])
    page1 = client.get("/participants/?segment=Panel").get_data(as_text=True)
    assert "60 participants" in page1 and "Page 1 of 3" in page1
    assert 'href="/participants/?page=2&amp;segment=Panel"' in page1
    page3 = client.get("/participants/?segment=Panel&page=3", headers={"HX-Request": "true"})
    html = page3.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="pool-results">') and "<nav class=\"mainnav\"" not in html
    assert len(re.findall(r"/participants/\d+\"", html)) == 10
    assert "Page 3 of 3" in html
    # Past the last page: an empty page, not an error.
    assert client.get("/participants/?page=99").status_code == 200
    live = client.get("/participants/?q=Person05", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "1 participant<" in live and "Person05" in live


def test_participant_page_shows_sources_invitations_and_memberships(app):
    world = make_world("Alpha")
    client = app.test_client()
    sign_in(client, world["users"]["researcher"], world["workspace_id"])
    html = client.get(f"/participants/{world['ids']['participant']}").get_data(as_text=True)
    for text in ("pat@alpha.example", "+442079460000", "Alpha Ltd", "B2B", "opted in", "tier", "Enterprise",
                 "Salesforce", "00D000000000001EAA", "Contact", "003000000000001AAA", "Production",
                 "Alpha study", "Alpha diary", "Alpha panel", "study: Alpha study"):
        assert text in html, text


def test_pool_fragment_reads_no_segment_list_and_counts_on_the_table(app):
    """The table fragment (htmx) sends no segment scan; the whole page lists the segments; the
    count is the same as the filtered rows."""
    from sqlalchemy import event
    world = make_world("Alpha")
    ws = world["workspace_id"]
    _people(ws)
    client = app.test_client()
    sign_in(client, world["users"]["researcher"], ws)
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        html = client.get("/participants/?q=acme", headers={"HX-Request": "true"}).get_data(as_text=True)
        fragment_sql = list(statements)
        statements.clear()
        page = client.get("/participants/").get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert not any("json_each" in s or "jsonb_array_elements" in s for s in fragment_sql)
    assert any("json_each" in s or "jsonb_array_elements" in s for s in statements)
    assert '<p class="count" id="pool-count">1 participant</p>' in html  # Jane (Staged is not active)
    assert '<option value="Enterprise"' in page and re.search(r'id="pool-count">\d+ participants</p>', page)


def test_a_search_counts_at_most_the_cap_and_says_there_are_more(app, monkeypatch):
    from services import participants_pool
    world = make_world("Gamma")
    ws = world["workspace_id"]
    db.session.add_all([Participant(workspace_id=ws, first_name=f"Sam{n}", email=f"sam{n}@x.example",
                                    email_key=f"sam{n}@x.example", status="active") for n in range(7)])
    db.session.commit()
    monkeypatch.setattr(participants_pool, "SEARCH_COUNT_CAP", 4)
    stmt = pool_query(ws, PoolFilter(q="sam"))
    page = participants_pool.paginate(stmt, page=1, per_page=3, count_cap=4)
    assert (page.total, page.capped, len(page.items)) == (4, True, 3)
    last = participants_pool.paginate(stmt, page=99, per_page=3, count_cap=4)  # past the cap: its last page
    assert (last.page, len(last.items)) == (2, 3)
    exact = participants_pool.paginate(stmt, page=1, per_page=3, count_cap=10)
    assert (exact.total, exact.capped) == (7, False)
    client = app.test_client()
    sign_in(client, world["users"]["researcher"], ws)
    html = client.get("/participants/?q=sam", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "4+ participants" in html and "add a word to narrow the search" in html
    html = client.get("/participants/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "8 participants" in html  # no search: the exact count (7 + the world's Pat)
