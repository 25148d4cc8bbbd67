"""``run(plan, source, sink, log)``: stream pages, map, validate, resolve identity, commit.

Per page: map every record; one batched lookup by source links; records whose source hash is
unchanged stop there (no validation, no writes); the rest are validated and looked up in one
more batched call by email and phone keys; each record gets exactly one outcome with a reason;
then one ``sink.commit_page`` writes the page in one transaction together with the new cursor.
Records without a link that the plan skipped before with the same source hash (its skip memory,
answered by the first lookup) are not validated again either: they are skipped for the reason
remembered, once identity confirms their remembered keys still match nobody.
A bad record never stops the run; a source error stops it with a definite status.
"""
from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from sync import cursor as cursors
from sync import validate, verdicts
from sync.errors import (SinkConflict, SourceAuthFailed, SourceBrokenPaging, SourceError,
                         SourceLimitReached, SourceQueryError, SourceTransient)
from sync.identity import PageIdentity
from sync.mapping import MappedRecord, SourceRef, map_record
from sync.plan import Consent, Plan
from sync.sink import (EXCLUDED, FAILED, IMPORTED, INVITED, OUTCOMES, SKIPPED, UNCHANGED,
                       UPDATED, Departure, InvitationWrite, Log, Lookup, LookupResult,
                       NewParticipant, PageChanges, ParticipantUpdate, ParticipantValues,
                       RecordOutcome, Sink, SkipMemory, SourceLinkWrite)

# What a remembered skip (SkipMemory.rules) was decided by: the skip rules of this module (bump
# the number when _not_importable or what it relies on changes) and the validators' versions.
# Remembered skips decided by other rules are validated again.
SKIP_RULES = f"skip rules 1; {validate.VALIDATORS}"

SUCCEEDED = "succeeded"
PARTIAL = "partial"
FAILED_RUN = "failed"

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    status: str  # succeeded, partial, failed
    reason: str | None
    counts: dict[str, int]  # per outcome, plus "invited" and "fetched"
    pages: int  # pages committed
    cursor: datetime | None  # the cursor after the last committed page
    fingerprint: str
    started_at: datetime
    finished_at: datetime
    error: str | None = None  # the source error's class name, e.g. "SourceLimitReached"
    needs_reconnect: bool = False

    @property
    def fetched(self) -> int:
        return self.counts.get("fetched", 0)


@dataclass
class _RecordWrites:
    outcome: RecordOutcome
    creates: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    links: list = field(default_factory=list)
    departures: list = field(default_factory=list)
    invitations: list = field(default_factory=list)
    remember: bool = False  # a skip the plan remembers (SkipMemory)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def run(plan: Plan, source: Iterable, sink: Sink, log: Log, *,
        cursor: datetime | None = None,
        clock: Callable[[], datetime] = _utcnow,
        validation_processes: int = 0,
        parallel_min_records: int | None = None) -> RunSummary:
    """Run ``plan`` over ``source`` (pages of records) into ``sink``.

    ``cursor`` is the saved cursor the source's query was built from (None for a full read;
    see ``sync.cursor.resume_from``). The cursor committed with each page never moves backwards
    and never past the newest timestamp of a committed page.

    ``validation_processes``: helper processes that validate part of each big page while this
    one validates the rest (``sync.parallel``; 0: everything in process). The results are the
    same either way; the helpers live as long as this call.
    """
    parallel = None
    frozen = _freeze_long_lived_objects()
    if validation_processes > 0:
        from sync.parallel import DEFAULT_MIN_RECORDS, ParallelValidation
        parallel = ParallelValidation(validation_processes, min_records=(
            parallel_min_records if parallel_min_records is not None else DEFAULT_MIN_RECORDS))
    try:
        return _Run(plan, sink, log, cursor, parallel).execute(source, clock)
    finally:
        if parallel is not None:
            parallel.close()
        if frozen:
            gc.unfreeze()


def _freeze_long_lived_objects() -> bool:
    """Keep the cyclic garbage collector off the objects that existed before the run.

    A run allocates a few objects per record (mapped records, outcomes, rows), which sets off
    the collector every 700 allocations, and each of its full collections walked every object of
    the process: the application, its modules, SQLAlchemy's and phonenumbers' metadata (0.3 - 0.5 s
    of the worker's time per 10,000 records, measured). ``gc.freeze()`` moves what exists now to a
    generation the collector never walks; the run's own objects are still collected as before
    (memory stays flat), and ``gc.unfreeze()`` at the end hands the old ones back to it. Nothing
    is frozen when the collector is off or a run in this process already froze the heap.
    """
    if not gc.isenabled() or gc.get_freeze_count():
        return False
    gc.freeze()
    return True


class _Run:
    def __init__(self, plan: Plan, sink: Sink, log: Log, start_cursor: datetime | None,
                 parallel=None):
        self.plan = plan
        self.parallel = parallel
        self.invites = bool(plan.action.invites and plan.target_id)
        self.consent_known = plan.consent.configured
        self.sink = sink
        self.log = log
        self.cursor = start_cursor
        self.counts: Counter[str] = Counter({name: 0 for name in OUTCOMES + (INVITED,)})
        self.counts["fetched"] = 0
        self.pages = 0

    def execute(self, source: Iterable, clock: Callable[[], datetime]) -> RunSummary:
        started = clock()
        status, reason, error = SUCCEEDED, None, None
        pages = iter(source)
        while True:
            try:
                records = next(pages)
            except StopIteration:
                break
            except SourceError as exc:
                status, reason = self._status_for(exc)
                error = type(exc).__name__
                self.log.event(f"Stopped after {self.pages} pages: {reason}", level="warning")
                break
            records = list(records)
            self.counts["fetched"] += len(records)
            if not self._commit(records):
                status, reason = FAILED_RUN, ("Another sync wrote the same people at the same "
                                              "time; this page will be retried on the next run")
                break
        if status == SUCCEEDED and self.counts[FAILED]:
            reason = f"{self.counts[FAILED]} records failed; see their reasons"
        return RunSummary(
            status=status, reason=reason, counts=dict(self.counts), pages=self.pages,
            cursor=self.cursor, fingerprint=self.plan.fingerprint, started_at=started,
            finished_at=clock(), error=error,
            needs_reconnect=error == SourceAuthFailed.__name__)

    def _status_for(self, exc: SourceError) -> tuple[str, str]:
        if isinstance(exc, SourceLimitReached):
            return PARTIAL, SourceLimitReached.default_reason
        if isinstance(exc, SourceAuthFailed):
            return FAILED_RUN, exc.message
        if isinstance(exc, SourceQueryError):
            return FAILED_RUN, f"Salesforce refused the query: {exc.message}"
        if isinstance(exc, SourceBrokenPaging):
            return FAILED_RUN, exc.message
        if isinstance(exc, SourceTransient):
            # Pages already committed stay; the next run resumes from the cursor.
            status = PARTIAL if self.pages else FAILED_RUN
            return status, (exc.message if exc.message.startswith("Salesforce unavailable")
                            else f"Salesforce unavailable: {exc.message}")
        return FAILED_RUN, exc.message

    def _commit(self, records: list) -> bool:
        """Process and commit one page; on a uniqueness conflict look it up again once."""
        for attempt in (1, 2):
            changes = self._process_page(self.pages + 1, records)
            try:
                self.sink.commit_page(changes)
            except SinkConflict as exc:
                self.log.event(f"Page {changes.page_number} conflicted with another run "
                               f"({exc}); looking it up again", level="warning")
                if attempt == 2:
                    return False
                continue
            self.pages += 1
            self.cursor = changes.cursor
            self.counts.update(changes.counts)
            remembered = sum(1 for o in changes.outcomes if o.remembered)
            note = (f" ({remembered} skipped as before, not validated again)"
                    if remembered else "")
            self.log.event(f"Page {changes.page_number} committed: {len(records)} records{note}",
                           counts=changes.counts, remembered=remembered)
            return True
        return False

    # -- one page ---------------------------------------------------------------------------

    def _process_page(self, number: int, records: list) -> PageChanges:
        plan = self.plan
        changes = PageChanges(page_number=number, fingerprint=plan.fingerprint)
        changes.cursor = cursors.advance(self.cursor, cursors.newest(records, plan.cursor_field))
        invite_target = ((plan.action, plan.target_id)
                         if plan.action.invites and plan.target_id else None)

        mapped: list[MappedRecord] = []
        for raw in records:
            try:
                record = map_record(plan, raw)
            except Exception as exc:  # one unreadable record never stops the run
                changes.outcomes.append(RecordOutcome(
                    None, _raw_id(raw), FAILED, f"The record could not be read: {exc}"))
                continue
            if record.record_id in plan.excluded_ids:
                changes.outcomes.append(RecordOutcome(
                    record.ref, record.record_id, EXCLUDED, verdicts.REMOVED_IN_PREVIEW))
                continue
            mapped.append(record)

        refs = {r.ref for r in mapped} | {p for r in mapped for p in r.person_refs}
        known = self.sink.lookup(Lookup(refs=frozenset(refs), invite_target=invite_target,
                                        skips=frozenset(r.ref for r in mapped)))

        links = [known.links.get(record.ref) for record in mapped]
        unchanged = [link is not None and link.source_hash == record.source_hash
                     for record, link in zip(mapped, links)]
        # A record skipped before with the same source hash (so the same plan) and rules: its
        # validation would give the same verdict, so it is not validated again (_still_skipped).
        memos = [_same_skip(known.skips.get(record.ref), record) if link is None else None
                 for record, link in zip(mapped, links)]
        points = None
        if self.parallel is not None:
            points = self.parallel.contact_points(
                [record for record, same, memo in zip(mapped, unchanged, memos)
                 if not same and memo is None], plan.default_region)
        points_of = iter(points or ())
        pending: list[tuple[MappedRecord, validate.CheckedRecord | None, SkipMemory | None]] = []
        forget: dict[SourceRef, None] = {}  # records decided anew that the plan remembered
        for record, link, same, memo in zip(mapped, links, unchanged, memos):
            if same:
                changes.outcomes.append(RecordOutcome(
                    record.ref, record.record_id, UNCHANGED, verdicts.ALREADY_IMPORTED_UNCHANGED,
                    link.participant_id))
                continue
            if memo is not None:
                pending.append((record, None, memo))
                continue
            computed = next(points_of, None)
            try:
                if computed is not None:  # validated by a helper process (sync.parallel)
                    checked = validate.check_record(record, plan.mapping.required,
                                                    plan.default_region, contact_points=computed)
                else:
                    checked = validate.check_record(record, plan.mapping.required,
                                                    plan.default_region)
            except Exception as exc:
                changes.outcomes.append(RecordOutcome(
                    record.ref, record.record_id, FAILED, f"Validation failed: {exc}",
                    email=_raw_email(record)))
                if record.ref in known.skips:
                    forget[record.ref] = None
                continue
            pending.append((record, checked, None))

        if pending:
            emails = {(c.email.key if c else m.email_key) for _, c, m in pending} - {None}
            phones = {(c.phone.key if c else m.phone_key) for _, c, m in pending} - {None}
            if emails or phones:
                known.merge(self.sink.lookup(Lookup(
                    email_keys=frozenset(emails), phone_keys=frozenset(phones),
                    invite_target=invite_target)))

        identity = PageIdentity(known)
        remember: dict[SourceRef, SkipMemory] = {}
        for record, checked, memo in pending:
            if memo is not None:
                checked = self._still_skipped(record, memo, identity, changes, forget)
                if checked is None:
                    continue
            try:
                writes = self._decide(record, checked, identity, known)
            except Exception as exc:
                logger.exception("record %s failed", record.record_id)
                writes = _RecordWrites(RecordOutcome(
                    record.ref, record.record_id, FAILED, f"Processing failed: {exc}",
                    flags=checked.flags, **_contact_points(checked)))
            changes.creates += writes.creates
            changes.updates += writes.updates
            changes.links += writes.links
            changes.departures += writes.departures
            changes.invitations += writes.invitations
            changes.outcomes.append(writes.outcome)
            if record.ref in known.skips:
                forget[record.ref] = None
            if writes.remember:
                o = writes.outcome
                remember[record.ref] = SkipMemory(
                    record.ref, record.source_hash, SKIP_RULES, o.reason or "", o.flags,
                    o.email, o.email_key, o.phone_key)
            else:
                remember.pop(record.ref, None)
        linked = {w.ref for w in changes.links}
        changes.remember = [m for ref, m in remember.items() if ref not in linked]
        # A record remembered again needs no forgetting first: the sink replaces its memory.
        changes.forget = [ref for ref in forget if ref not in remember or ref in linked]

        counts = Counter(o.outcome for o in changes.outcomes)
        counts[INVITED] = sum(1 for o in changes.outcomes if o.invited)
        changes.counts = dict(counts)
        return changes

    def _still_skipped(self, record: MappedRecord, memo: SkipMemory, identity: PageIdentity,
                       changes: PageChanges,
                       forget: dict[SourceRef, None]) -> validate.CheckedRecord | None:
        """Repeat a remembered skip (None), or validate the record after all (its check).

        A remembered skip was decided for a record identity matched to nobody; its verdict is a
        function of the record and the plan (both in the source hash) as long as that holds. So
        identity is asked again with the remembered keys: when the record now resolves to a
        participant (an earlier record of the page, another plan or a converted lead's contact
        brought in someone with its email or phone), it is validated and decided as usual.
        """
        if identity.resolve(record, memo.email_key, memo.phone_key).participant is None:
            changes.outcomes.append(RecordOutcome(
                record.ref, record.record_id, SKIPPED, memo.reason, flags=memo.flags,
                email=memo.email, email_key=memo.email_key, phone_key=memo.phone_key,
                remembered=True))
            return None
        try:
            return validate.check_record(record, self.plan.mapping.required,
                                         self.plan.default_region)
        except Exception as exc:
            changes.outcomes.append(RecordOutcome(
                record.ref, record.record_id, FAILED, f"Validation failed: {exc}",
                email=_raw_email(record)))
            forget[record.ref] = None
            return None

    def _decide(self, record: MappedRecord, checked: validate.CheckedRecord,
                identity: PageIdentity, known: LookupResult) -> _RecordWrites:
        plan = self.plan
        email_key, phone_key = checked.email.key, checked.phone.key
        found = identity.resolve(record, email_key, phone_key)
        values = self._values(record, checked)

        def outcome(kind: str, reason: str | None, participant=None, invited=False):
            return RecordOutcome(record.ref, record.record_id, kind, reason, participant,
                                 invited, checked.flags, **_contact_points(checked))

        def link(participant) -> SourceLinkWrite:
            return SourceLinkWrite(record.ref, participant, record.source_hash,
                                   record.timestamp, checked.flags)

        # A skipped (or failed) record is never linked to anyone and updates no one: its
        # outcome names no participant, it writes no source link.
        if found.conflict:
            return _RecordWrites(outcome(SKIPPED, found.conflict))
        if found.duplicate_of:
            # The same person as an earlier record of the page (same email, or the same phone
            # with no email on either side): merged into that participant, whose values (the
            # first record's) are kept. Linked, so never "skipped".
            identity.link_duplicate(record, found.participant)
            return _RecordWrites(
                outcome(UNCHANGED, verdicts.duplicate_in_set(found.duplicate_of, found.matched_by),
                        found.participant),
                links=[link(found.participant)])

        if found.participant is None:
            reason = self._not_importable(record, checked)
            if reason:
                # Decided by the record and the plan alone (nobody matched): remembered.
                return _RecordWrites(outcome(SKIPPED, reason), remember=True)
            new = identity.new_participant()
            identity.claim(new, record, email_key, phone_key)
            suppressed = _suppressed(checked, None, known)
            values, note = _consent_outranked(values, suppressed, None)
            writes = _RecordWrites(outcome(IMPORTED, note, new),
                                   creates=[NewParticipant(new, values)], links=[link(new)])
            self._maybe_invite(record, checked, new, None, known, writes, suppressed)
            return writes

        participant = found.participant
        current = known.participants.get(participant)
        via = (verdicts.ALREADY_IMPORTED_CHANGED if found.by_own_link
               else verdicts.matched_existing(found.matched_by))
        if record.deleted or record.merged_into:
            kind = "merged" if record.merged_into else "deleted"
            reason = (f"Merged into {record.merged_into} in Salesforce" if record.merged_into
                      else "Deleted in Salesforce")
            if not found.by_own_link:
                # Never linked: it cannot leave; nothing to import either.
                return _RecordWrites(outcome(SKIPPED, reason))
            reason += f"; policy: {plan.leaving_policy.value}"
            return _RecordWrites(
                outcome(UPDATED, reason, participant), links=[link(participant)],
                departures=[Departure(record.ref, participant, kind, plan.leaving_policy, reason)])
        identity.claim(participant, record, email_key, phone_key)
        if record.person_kind == "converted_lead" and not found.by_own_link:
            # The person continues as the Contact: link the lead, keep the contact's values.
            return _RecordWrites(
                outcome(UNCHANGED, f"Converted lead; the person continues as "
                                   f"{record.person_refs[0]}", participant),
                links=[link(participant)])
        suppressed = _suppressed(checked, current, known)
        values, note = _consent_outranked(values, suppressed, current)
        reason = "; ".join(r for r in (via, note) if r) or None
        writes = _RecordWrites(outcome(UPDATED, reason, participant),
                               updates=[ParticipantUpdate(participant, values)],
                               links=[link(participant)])
        if record.consent == Consent.OPTED_OUT and not found.by_own_link:
            # Opted out, matched to someone by email/phone: the opt-out is written with the
            # values, but a record never linked cannot "leave the plan" (no departure).
            writes.outcome = outcome(UPDATED, f"{via}; opted out in Salesforce", participant)
            return writes
        if record.consent == Consent.OPTED_OUT and (current is None
                                                    or current.consent != Consent.OPTED_OUT):
            reason = f"Opted out in Salesforce; policy: {plan.leaving_policy.value}"
            writes.departures.append(Departure(record.ref, participant, "opted_out",
                                               plan.leaving_policy, reason))
            writes.outcome = outcome(UPDATED, reason, participant)
            return writes
        self._maybe_invite(record, checked, participant, current, known, writes, suppressed)
        return writes

    def _not_importable(self, record: MappedRecord, checked: validate.CheckedRecord) -> str | None:
        if record.deleted or record.merged_into:
            return "Deleted in Salesforce"
        if record.consent == Consent.OPTED_OUT:
            return "Opted out in Salesforce"
        missing = checked.missing_required
        if missing:
            return "; ".join(f.reason for f in missing)
        if not checked.contactable:
            parts = [f.reason for f in (checked.email.flag, checked.phone.flag) if f]
            return " ".join(parts + ["No valid email or phone number."])
        return None

    def _values(self, record: MappedRecord, checked: validate.CheckedRecord) -> ParticipantValues:
        consent_known = self.consent_known
        return ParticipantValues(
            first_name=record.first_name, last_name=record.last_name,
            email=checked.email.email, email_key=checked.email.key,
            phone=checked.phone.e164, phone_extension=checked.phone.extension,
            phone_key=checked.phone.key, company=record.company,
            segments=record.segments, attributes=record.attributes,
            consent=record.consent if consent_known else None,
            consent_evidence=record.consent_evidence if consent_known else ())

    def _maybe_invite(self, record, checked, participant, current, known: LookupResult,
                      writes: _RecordWrites, suppressed: str | None = None) -> None:
        plan = self.plan
        if not self.invites:
            return
        why_not = None
        if not plan.invite_confirmation:
            why_not = verdicts.NOT_CONFIRMED
        elif record.consent != Consent.OPTED_IN:
            why_not = f"consent is {record.consent.value.replace('_', ' ')}"
        elif not checked.email.valid:
            why_not = "no valid email"
        elif suppressed:
            why_not = suppressed
        elif current is not None and current.archived:
            why_not = "the participant is archived"
        elif current is not None and current.invited:
            why_not = "already invited"
        if why_not:
            note = f"Not invited: {why_not}"
            old = writes.outcome.reason
            writes.outcome = _replace(writes.outcome, reason=f"{old}; {note}" if old else note)
            return
        writes.invitations.append(InvitationWrite(
            participant, plan.action, plan.target_id, record.consent, record.consent_evidence,
            plan.invite_confirmation, record.ref))
        writes.outcome = _replace(writes.outcome, invited=True)


def _suppressed(checked: validate.CheckedRecord, current, known: LookupResult) -> str | None:
    """Why the person is on the do-not-contact list (by the record's keys or the participant's
    own, which an email changed in Salesforce would otherwise escape), or None."""
    if not known.suppressed_email_keys and not known.suppressed_phone_keys:
        return None
    emails = {checked.email.key, getattr(current, "email_key", None)} - {None}
    phones = {checked.phone.key, getattr(current, "phone_key", None)} - {None}
    if emails & known.suppressed_email_keys:
        return "the email is suppressed"
    if phones & known.suppressed_phone_keys:
        return "the phone number is suppressed"
    return None


def _consent_outranked(values: ParticipantValues, suppressed: str | None,
                       current) -> tuple[ParticipantValues, str | None]:
    """A suppressed person stays opted out whatever Salesforce says: an unsubscribe (or an admin's
    do-not-contact entry) made in the product outranks the CRM. (values to write, outcome note)."""
    if not suppressed or values.consent is None or values.consent == Consent.OPTED_OUT:
        return values, None
    kept = current is not None and current.consent == Consent.OPTED_OUT
    note = f"consent {'kept' if kept else 'set to'} opted out: on the suppression list"
    return replace(values, consent=Consent.OPTED_OUT), note


def _replace(outcome: RecordOutcome, **changes: Any) -> RecordOutcome:
    return replace(outcome, **changes)


def _contact_points(checked: validate.CheckedRecord) -> dict[str, str | None]:
    """The record's raw email and its valid keys, stored on every outcome whatever it is."""
    raw = checked.email.raw
    return {"email": str(raw)[:320] if raw not in (None, "") else None,
            "email_key": checked.email.key, "phone_key": checked.phone.key}


def _raw_email(record: MappedRecord) -> str | None:
    raw = record.email
    return str(raw)[:320] if raw not in (None, "") else None


def _same_skip(memo: SkipMemory | None, record: MappedRecord) -> SkipMemory | None:
    """``memo`` when it still holds for ``record`` (same source hash, same rules), else None."""
    if memo is not None and memo.source_hash == record.source_hash and memo.rules == SKIP_RULES:
        return memo
    return None


def _raw_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("Id")
        return str(value) if value is not None else None
    return None
