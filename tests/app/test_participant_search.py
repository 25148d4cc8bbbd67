"""The pool's search on ``Participant.search_text`` (one LIKE a row) finds exactly what the six
ILIKEs over the columns found, on SQLite and PostgreSQL, and the generated column follows every
write: the sink's bulk INSERT and its UPDATE, an edit through the ORM, a plain SQL UPDATE."""
from __future__ import annotations

import pytest
from sqlalchemy import and_, or_, select, text

from core.extensions import db
from models import Participant
from models.participants import SEARCH_COLUMNS
from services.participants_pool import PoolFilter, _like, pool_query
from tests.support.web import make_world

pytestmark = pytest.mark.db

PEOPLE = [
    # first, last, email, company, phone_raw, phone_e164, status
    ("Jane", "Doe", "jane@acme.example", "Acme Ltd", "+44 7700 900001", "+447700900001", "active"),
    ("JOHN", "smith", "John.Smith@Globex.example", "Globex", None, None, "active"),
    ("Élodie", "Straße", "elodie@x.example", "Café Ünïcode", None, None, "active"),
    ("Per_cent", "100%", "pct@x.example", None, None, None, "active"),
    ("Back", "Sla\\sh", "bs@x.example", "A\\B", None, None, "active"),
    (None, None, "only-email@x.example", None, "(020) 7946 0000", None, "active"),
    ("Staged", "Doe", "staged@acme.example", "Acme Ltd", None, None, "staged"),
]

# Words and searches whose answers the old six-column search is the reference for.
SEARCHES = ["jane", "JANE", "jAnE dOe", "doe", "acme", "ACME LTD", "globex.EXAMPLE", "john.smith",
            "élodie", "ÉLODIE", "straße", "STRASSE", "café", "ünïcode", "ÜNÏCODE", "100%", "%", "_",
            "per_", "per%cent", "\\", "sla\\sh", "a\\b", "+44", "7700", "900001", "(020)", "7946",
            "only-email", "x.example", "e@x", "janedoe", "doejane", "jane@acme.example acme",
            "ltd+44", "jane doe acme 7700", "nobody"]


def _people(workspace_id: int) -> None:
    for first, last, email, company, raw, e164, status in PEOPLE:
        db.session.add(Participant(workspace_id=workspace_id, first_name=first, last_name=last, email=email,
                                   email_key=email.lower(), company=company, phone_raw=raw, phone_e164=e164,
                                   phone_key=e164, status=status))
    db.session.commit()


def _found(workspace_id: int, q: str, status: str = "active") -> list[int]:
    return sorted(db.session.scalars(pool_query(workspace_id, PoolFilter(q=q, status=status))
                                     .with_only_columns(Participant.id)).all())


def _reference(workspace_id: int, q: str, status: str = "active") -> list[int]:
    """The search before search_text: every word in one of the columns, by ILIKE (on SQLite
    ``lower(x) LIKE lower(y)``, with lower() folding every letter: core.db)."""
    def contains(column, term):
        return column.ilike(_like(term), escape="\\")
    words = [or_(*(contains(getattr(Participant, name), term) for name in SEARCH_COLUMNS)) for term in q.split()]
    stmt = select(Participant.id).where(Participant.workspace_id == workspace_id, Participant.status == status,
                                        and_(*words))
    return sorted(db.session.scalars(stmt).all())


def _ids_by_first_name(workspace_id: int) -> dict:
    return {p.first_name: p.id for p in db.session.scalars(
        select(Participant).where(Participant.workspace_id == workspace_id))}


def test_the_search_finds_what_the_six_column_search_found(app):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    ws = alpha["workspace_id"]
    _people(ws)
    _people(beta["workspace_id"])
    for q in SEARCHES:
        assert _found(ws, q) == _reference(ws, q), q
    assert _found(ws, "doe", status="staged") == _reference(ws, "doe", status="staged") != []


def test_case_wildcards_columns_and_workspaces(app):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    ws = alpha["workspace_id"]
    _people(ws)
    _people(beta["workspace_id"])
    ids = _ids_by_first_name(ws)
    jane, john, pct, back = ids["Jane"], ids["JOHN"], ids["Per_cent"], ids["Back"]
    assert _found(ws, "JANE") == _found(ws, "jane") == [jane]          # any case, either side
    assert _found(ws, "smith JOHN") == [john]                           # every word must match
    assert _found(ws, "globex.EXAMPLE") == [john]
    assert _found(ws, "%") == [pct] and _found(ws, "100%") == [pct]     # LIKE wildcards are literal
    assert _found(ws, "_") == [pct] and _found(ws, "per%cent") == []
    assert _found(ws, "\\") == [back] and _found(ws, "a\\b") == [back]  # and so is the escape character
    assert _found(ws, "janedoe") == [] and _found(ws, "ltd+44") == []   # never across two columns
    assert _found(ws, "(020)") == [ids[None]]                           # phone as typed in Salesforce
    # The same people in the other workspace are never found from this one.
    assert set(_found(beta["workspace_id"], "jane")).isdisjoint(_found(ws, "jane"))
    # Every letter's case is ignored, not only ASCII ones (SQLite's own lower() folds ASCII only).
    assert _found(ws, "ÉLODIE") == _found(ws, "élodie") == _found(ws, "éLoDiE") == [ids["Élodie"]]


def test_search_text_is_the_columns_lower_cased(app):
    ws = make_world("Alpha")["workspace_id"]
    _people(ws)
    jane = db.session.scalar(select(Participant).where(Participant.workspace_id == ws,
                                                       Participant.first_name == "Jane"))
    assert jane.search_text == "jane doe jane@acme.example acme ltd +44 7700 900001 +447700900001"
    only = db.session.scalar(select(Participant.search_text).where(Participant.email == "only-email@x.example"))
    assert only == "  only-email@x.example  (020) 7946 0000 "


def test_search_text_follows_a_sync_update_an_orm_edit_and_an_sql_update(app):
    from datetime import datetime, timezone

    from sync.mapping import SourceRef
    from tests.support.sinks import fresh_sink
    from sync.sink import (NewParticipant, NewParticipantRef, PageChanges, ParticipantUpdate,
                           ParticipantValues, RecordOutcome, SourceLinkWrite)

    workspace, plan, run, sink = fresh_sink("pool")
    ws = workspace.id
    ref = SourceRef("00DDn00000Org1AAA", "Contact", "003Dn0000000001AAA")
    new = NewParticipantRef(1)
    created = PageChanges(page_number=1, fingerprint="f1")
    created.creates.append(NewParticipant(new, ParticipantValues(
        first_name="Ada", last_name="Lovelace", email="ada@engine.example", email_key="ada@engine.example",
        company="Analytical Engines")))
    created.links.append(SourceLinkWrite(ref, new, "h1", None))
    created.outcomes.append(RecordOutcome(ref, ref.record_id, "imported", None, new))
    created.counts = {"imported": 1}
    pid = sink.commit_page(created)[new]   # the sink's bulk INSERT
    db.session.commit()
    assert _found(ws, "LOVELACE") == [pid] and _found(ws, "analytical") == [pid]

    updated = PageChanges(page_number=2, fingerprint="f1", cursor=datetime(2024, 5, 1, tzinfo=timezone.utc))
    updated.updates.append(ParticipantUpdate(pid, ParticipantValues(last_name="Byron", company="Difference Co",
                                                                    phone="+447700900123",
                                                                    phone_key="+447700900123")))
    updated.links.append(SourceLinkWrite(ref, pid, "h2", None))
    updated.outcomes.append(RecordOutcome(ref, ref.record_id, "updated", None, pid))
    updated.counts = {"updated": 1}
    sink.commit_page(updated)              # the sink's UPDATE
    db.session.commit()
    db.session.expire_all()
    assert _found(ws, "lovelace") == [] and _found(ws, "analytical") == []
    assert _found(ws, "BYRON") == [pid] and _found(ws, "difference") == [pid] and _found(ws, "900123") == [pid]
    assert db.session.get(Participant, pid).search_text == \
        "ada byron ada@engine.example difference co  +447700900123"

    person = db.session.get(Participant, pid)  # an edit through the ORM
    person.first_name, person.email = "Augusta", "Augusta@Example.org"
    db.session.commit()
    assert _found(ws, "ada@engine") == [] and _found(ws, "augusta@example.ORG") == [pid]
    assert person.search_text.startswith("augusta byron augusta@example.org ")

    db.session.execute(text("UPDATE participants SET company = 'Royal Society', phone_raw = '0207 946 0000' "
                            "WHERE id = :id"), {"id": pid})
    db.session.commit()
    assert _found(ws, "difference") == [] and _found(ws, "royal") == [pid] and _found(ws, "0207") == [pid]
    assert _found(ws, "byron royal 0207") == _reference(ws, "byron royal 0207") == [pid]


def test_a_capped_search_page_is_the_same_page_as_the_plain_paging(app):
    """The capped search reads the ids of the first matches once for its page and its count: each
    page holds what plain LIMIT/OFFSET paging of the same query holds, in the same order."""
    from services import participants_pool
    ws = make_world("Gamma")["workspace_id"]
    for n in range(30):
        db.session.add(Participant(workspace_id=ws, first_name=f"Sam{n}" if n % 3 else f"Other{n}",
                                   email=f"p{n}@x.example", email_key=f"p{n}@x.example"))
    db.session.commit()
    stmt = pool_query(ws, PoolFilter(q="SAM"))
    every = db.session.scalars(stmt).all()
    assert len(every) == 20 and [p.id for p in every] == sorted((p.id for p in every), reverse=True)
    for page in (1, 2, 3):
        capped = participants_pool.paginate(stmt, page=page, per_page=4, count_cap=10)
        plain = db.paginate(stmt, page=page, per_page=4, error_out=False, count=False)
        assert [p.id for p in capped.items] == [p.id for p in plain.items] != []
        assert (capped.total, capped.capped, capped.pages) == (10, True, 3)
    last = participants_pool.paginate(stmt, page=9, per_page=4, count_cap=10)  # past the cap: its last page
    assert (last.page, [p.id for p in last.items]) == (3, [p.id for p in every[8:12]])
    exact = participants_pool.paginate(stmt, page=5, per_page=4, count_cap=50)
    assert (exact.total, exact.capped, [p.id for p in exact.items]) == (20, False, [p.id for p in every[16:20]])
    assert participants_pool.paginate(stmt, page=6, per_page=4, count_cap=50).items == []
