"""Finding the linked records that left: the leaving pass of every incremental run and the
daily reconciliation.

A filtered incremental query never returns a record that was deleted, merged away, or changed so
that it no longer matches the plan's filters (an opt-out the filter excludes, a country change).
So after the main read:

* leaving pass (incremental runs): candidates are this plan's linked records that Salesforce
  deleted since the cursor (``queryAll ... WHERE IsDeleted = true AND SystemModstamp >= bound``),
  plus those changed since the cursor *without* the filters that the filtered read did not
  return;
* reconciliation (runs of kind "reconcile", daily): a full read through the engine (missing
  records are imported, parent fields such as Account.Name refreshed: those never move the
  child's SystemModstamp), and every linked record of the plan the full read did not return is a
  candidate, which also catches deletions older than the recycle bin.

Each candidate is read by Id through queryAll and classified: not returned at all -> deleted
(purged); ``IsDeleted`` -> deleted, or merged when it has a MasterRecordId; opted out by the
plan's consent rule -> opted out; otherwise -> no longer matching. The sink then applies the
plan's leaving policy (keep / mark opted out / archive): source state marked, consent updated,
open invitations withdrawn. Records whose link already carries that state are left alone.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, exists, func, select

from core.extensions import db
from models import ParticipantSource, RunSeenRecord, SkippedSource
from models.participants import SOURCE_ACTIVE
from salesforce.soql import and_conditions, build_count_query, build_query, is_record_id
from services.sync_source import id_query, read_all
from sync import cursor as cursors
from sync.mapping import SourceRef, evaluate_consent
from sync.plan import Consent, Plan
from sync.sink import UPDATED, Departure, PageChanges, RecordOutcome

MERGEABLE = ("Contact", "Lead", "Account")
ID_BATCH = 200
LEAVERS_CHUNK = 2000  # leavers handled (and committed) per chunk


def count_query(spec: Plan, where: str) -> str:
    return build_count_query(spec.object_name, where)


def _linked(workspace_id: int, plan_id: int, spec: Plan, ids: Iterable[str] | None = None):
    """(record_id, participant_id, source_state) of the plan's links (all, or among ``ids``)."""
    query = select(ParticipantSource.record_id, ParticipantSource.participant_id,
                   ParticipantSource.source_state).where(
        ParticipantSource.workspace_id == workspace_id, ParticipantSource.plan_id == plan_id,
        ParticipantSource.org_id == spec.org_id, ParticipantSource.object_name == spec.object_name)
    if ids is None:
        return list(db.session.execute(query))
    found = []
    ids = list(ids)
    for start in range(0, len(ids), 500):
        found += db.session.execute(query.where(ParticipantSource.record_id.in_(ids[start:start + 500])))
    return found


def linked_count(workspace_id: int, plan_id: int, spec: Plan) -> int:
    return db.session.execute(select(func.count()).select_from(ParticipantSource).where(
        ParticipantSource.workspace_id == workspace_id, ParticipantSource.plan_id == plan_id,
        ParticipantSource.object_name == spec.object_name,
        ParticipantSource.source_state == SOURCE_ACTIVE)).scalar_one()


def _ids(page) -> list[str]:
    return [r["Id"] for r in page if isinstance(r.get("Id"), str)]


class _Leavers:
    """Collects the plan's active links among candidate IDs and hands them to ``_handle`` a chunk
    at a time, so neither the candidates nor the leavers of a big run are all held at once. A
    handled link is no longer active (the sink marks its source state), so a record that turns up
    again in a later chunk is not handled twice."""

    def __init__(self, client, spec: Plan, sink, page_size: int):
        self.client, self.spec, self.sink, self.page_size = client, spec, sink, page_size
        self.pending: dict[str, object] = {}
        self.left = 0

    def add_candidates(self, ids: Iterable[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if i not in self.pending]
        if ids:
            self.add_links(_linked(self.sink.workspace_id, self.sink.plan_id, self.spec, ids))

    def add_links(self, rows) -> None:
        for row in rows:
            if row.source_state == SOURCE_ACTIVE:
                self.pending[row.record_id] = row
        if len(self.pending) >= LEAVERS_CHUNK:
            self.flush()

    def flush(self) -> int:
        if self.pending:
            links, self.pending = list(self.pending.values()), {}
            self.left += _handle(self.client, self.spec, self.sink, links, self.page_size)
        return self.left


def leaving_pass(client, spec: Plan, where: str, start, sink, seen, page_size: int) -> int:
    """Handle the plan's linked records that left since ``start``; return how many.

    ``seen`` is the run's store of the record IDs its main read returned (services.runs._SeenIds:
    rows in the database, asked a page of IDs at a time through ``seen.unseen(ids)``)."""
    since = cursors.where_clause(spec.cursor_field, start, spec.look_back)
    leavers = _Leavers(client, spec, sink, page_size)
    for page in read_all(client, build_query(spec.object_name, ["Id"], and_conditions("IsDeleted = true", since)),
                         include_deleted=True, batch_size=page_size):
        leavers.add_candidates(_ids(page))
    if where:
        for page in read_all(client, build_query(spec.object_name, ["Id"], since), batch_size=page_size):
            leavers.add_candidates(seen.unseen(_ids(page)))
    return leavers.flush()


def reconcile_linked(client, spec: Plan, sink, seen, page_size: int) -> int:
    """After a full read: every active link of the plan that the read did not return.

    The links are found by SQL (an anti-join against the run's seen-record rows), read in keyset
    chunks ordered by record ID, so neither side is ever held whole in memory."""
    leavers = _Leavers(client, spec, sink, page_size)
    after = ""
    while True:
        query = select(ParticipantSource.record_id, ParticipantSource.participant_id,
                       ParticipantSource.source_state).where(
            ParticipantSource.workspace_id == sink.workspace_id, ParticipantSource.plan_id == sink.plan_id,
            ParticipantSource.org_id == spec.org_id, ParticipantSource.object_name == spec.object_name,
            ParticipantSource.source_state == SOURCE_ACTIVE, ParticipantSource.record_id > after,
            ~exists().where(RunSeenRecord.run_id == seen.run_id,
                            RunSeenRecord.record_id == ParticipantSource.record_id),
        ).order_by(ParticipantSource.record_id).limit(LEAVERS_CHUNK)
        rows = list(db.session.execute(query))
        db.session.commit()  # end the read transaction before the chunk's own writes
        if not rows:
            break
        after = rows[-1].record_id
        leavers.add_links(rows)
        leavers.flush()
    return leavers.flush()


def forget_stale_skips(spec: Plan, sink, seen) -> int:
    """After a full read: forget the plan's remembered skips of records the read did not return
    (deleted in Salesforce, outside the plan's filters since they or the filters changed, another
    object's after the plan changed) and of records linked since (by another plan: this plan's
    runs forget theirs as they link them). Two DELETEs, anti-joined against the run's seen-record
    rows and joined to the links; the plan's lock keeps its other runs from writing meanwhile."""
    mine = (SkippedSource.workspace_id == sink.workspace_id, SkippedSource.plan_id == sink.plan_id)
    gone = db.session.execute(delete(SkippedSource).where(*mine, exists().where(
        ParticipantSource.workspace_id == SkippedSource.workspace_id,
        ParticipantSource.org_id == SkippedSource.org_id,
        ParticipantSource.object_name == SkippedSource.object_name,
        ParticipantSource.record_id == SkippedSource.record_id,
    )).execution_options(synchronize_session=False)).rowcount
    if spec.mapping.external_id == "Id":  # the seen rows hold Ids, the memory the external IDs
        gone += db.session.execute(delete(SkippedSource).where(*mine, ~exists().where(
            RunSeenRecord.run_id == seen.run_id, RunSeenRecord.record_id == SkippedSource.record_id,
        )).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return gone


def _handle(client, spec: Plan, sink, links, page_size: int) -> int:
    if not links:
        return 0
    fields = ["Id", "IsDeleted"] + (["MasterRecordId"] if spec.object_name in MERGEABLE else [])
    fields += [p for p in spec.consent.paths() if not spec.is_campaign_member]
    if spec.is_campaign_member:
        fields += [f"{parent}.{p}" for parent in ("Contact", "Lead") for p in spec.consent.paths()]
        fields += ["ContactId"]
    fields = list(dict.fromkeys(fields))
    by_id = {row.record_id: row for row in links if is_record_id(row.record_id)}
    found: dict[str, dict] = {}
    ids = sorted(by_id)
    for start in range(0, len(ids), ID_BATCH):
        soql = id_query(spec.object_name, fields, ids[start:start + ID_BATCH])
        for page in read_all(client, soql, include_deleted=True, batch_size=page_size):
            for record in page:
                found[record["Id"]] = record
    changes = PageChanges(page_number=0, fingerprint=spec.fingerprint)
    for record_id in ids:
        kind, reason = _classify(spec, found.get(record_id))
        reason = f"{reason}; policy: {spec.leaving_policy.value}"
        ref = SourceRef(spec.org_id, spec.object_name, record_id)
        participant = by_id[record_id].participant_id
        changes.departures.append(Departure(ref, participant, kind, spec.leaving_policy, reason))
        changes.outcomes.append(RecordOutcome(ref, record_id, UPDATED, reason, participant))
    changes.counts = {UPDATED: len(changes.outcomes)}
    changes.cursor = None  # the cursor is the main read's business
    sink.commit_page(changes)
    return len(changes.departures)


def _classify(spec: Plan, record: dict | None) -> tuple[str, str]:
    if record is None:
        return "deleted", "No longer exists in Salesforce (deleted, and gone from the recycle bin)"
    if record.get("IsDeleted") is True:
        master = record.get("MasterRecordId")
        if master:
            return "merged", f"Merged into {master} in Salesforce"
        return "deleted", "Deleted in Salesforce"
    person = record
    if spec.is_campaign_member:
        person = record.get("Contact") if record.get("ContactId") else record.get("Lead")
    consent, _ = evaluate_consent(spec.consent, person)
    if consent is Consent.OPTED_OUT:
        return "opted_out", "Opted out in Salesforce"
    return "no_longer_matching", "No longer matches the plan's filters"
