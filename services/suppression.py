"""The do-not-contact list: add one, upload a CSV, remove; every change is audited.

Emails and phones are normalised with the sync engine's rules (``sync.validate``) so a
suppressed address matches the keys participants are stored under.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import or_, select

from core.extensions import db
from models import SuppressionEntry, Workspace
from services import audit
from sync.validate import email_key as key_of_email, normalize_email, normalize_phone

MAX_UPLOAD_ROWS = 50_000


class SuppressionError(ValueError):
    """The input cannot go on the list (shown to the person with the reason). ``field``: the
    input it is about ("email" or "phone"), when it is about one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass
class UploadResult:
    added: int = 0
    already: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def normalise(workspace: Workspace, email: str | None, phone: str | None) -> tuple[str | None, str | None, str | None]:
    """(email as stored, email key, phone key) or SuppressionError with the reason."""
    email = (email or "").strip() or None
    phone = (phone or "").strip() or None
    if not email and not phone:
        raise SuppressionError("Give an email address or a phone number.")
    email_value = email_key = phone_key = None
    if email:
        result = normalize_email(email)
        if not result.valid:
            raise SuppressionError(f"Email {email!r}: {result.flag.reason if result.flag else 'not valid'}", "email")
        email_value, email_key = result.email, result.key
    if phone:
        result = normalize_phone(phone, workspace.default_phone_region)
        if not result.valid:
            raise SuppressionError(f"Phone {phone!r}: {result.flag.reason if result.flag else 'not valid'}", "phone")
        phone_key = result.key
    return email_value, email_key, phone_key


def find(workspace_id: int, email_key: str | None, phone_key: str | None) -> SuppressionEntry | None:
    conditions = []
    if email_key:
        conditions.append(SuppressionEntry.email_key == email_key)
    if phone_key:
        conditions.append(SuppressionEntry.phone_key == phone_key)
    if not conditions:
        return None
    return db.session.scalar(select(SuppressionEntry).where(SuppressionEntry.workspace_id == workspace_id,
                                                            or_(*conditions)).limit(1))


def _add(workspace: Workspace, email, phone, reason, source, actor) -> tuple[SuppressionEntry, bool]:
    email_value, email_key, phone_key = normalise(workspace, email, phone)
    existing = find(workspace.id, email_key, phone_key)
    if existing is not None:
        return existing, False
    entry = SuppressionEntry(workspace_id=workspace.id, email=email_value, email_key=email_key,
                             phone_key=phone_key, reason=(reason or "").strip()[:300] or None, source=source,
                             created_by_id=getattr(actor, "id", None))
    db.session.add(entry)
    db.session.flush()
    audit.record(workspace.id, actor, "suppression.added", "suppression_entry", entry.id,
                 email=email_value, phone=phone_key, reason=entry.reason, source=source)
    return entry, True


def add_entry(workspace: Workspace, *, email: str | None = None, phone: str | None = None,
              reason: str | None = None, source: str = "manual", actor=None) -> tuple[SuppressionEntry, bool]:
    """Put one email and/or phone on the list; (entry, False) when it was already there."""
    entry, created = _add(workspace, email, phone, reason, source, actor)
    db.session.commit()
    return entry, created


def add_for_participant(workspace: Workspace, participant, *, reason: str | None = None,
                        source: str = "unsubscribe", actor=None) -> tuple[SuppressionEntry | None, bool]:
    """Put a participant on the list by the keys they are stored (and matched) under, so the
    sink and the send-time check find them: their email key and phone key. An email that
    email-validator refuses is still listed under its key (the person asked not to be contacted;
    validating it again would drop them). (None, False) when the participant has no email or
    phone at all (their consent, opted out by the caller, is then what stops messages).
    Flushed, not committed."""
    raw_email = (participant.email or "").strip() or None
    email_value, key = raw_email, participant.email_key
    if raw_email:
        checked = normalize_email(raw_email)
        if checked.valid:
            email_value, key = checked.email, key or checked.key
        else:
            key = key or key_of_email(raw_email)
    phone = participant.phone_key
    if not key and not phone:
        return None, False
    existing = find(workspace.id, key, phone)
    if existing is not None:
        return existing, False
    entry = SuppressionEntry(workspace_id=workspace.id, email=(email_value or "")[:320] or None, email_key=key,
                             phone_key=phone, reason=(reason or "").strip()[:300] or None, source=source,
                             created_by_id=getattr(actor, "id", None))
    db.session.add(entry)
    db.session.flush()
    audit.record(workspace.id, actor, "suppression.added", "suppression_entry", entry.id,
                 email=entry.email, phone=phone, reason=entry.reason, source=source, participant_id=participant.id)
    return entry, True


def upload_csv(workspace: Workspace, data: bytes, *, actor=None) -> UploadResult:
    """Read a CSV with the header ``email,phone,reason`` (either of email/phone may be absent).

    Good rows are kept even when others are bad; bad rows are reported with their line number
    in the file (the header is line 1)."""
    result = UploadResult()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SuppressionError("The file is not UTF-8 text; save it as CSV UTF-8 and upload it again.")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    headers = {(h or "").strip().lower(): h for h in (reader.fieldnames or [])}
    if "email" not in headers and "phone" not in headers:
        raise SuppressionError("The first line must be a header with an email and/or phone column "
                               "(and optionally reason).")
    seen = 0
    for row in reader:
        line = reader.line_num
        seen += 1
        if seen > MAX_UPLOAD_ROWS:
            result.errors.append((line, f"Stopped: a file may have at most {MAX_UPLOAD_ROWS} rows."))
            break

        def value(name):
            key = headers.get(name)
            return (row.get(key) or "").strip() if key is not None else ""

        email, phone, reason = value("email"), value("phone"), value("reason")
        if not email and not phone:
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                result.errors.append((line, "No email or phone on this line."))
            continue
        try:
            with db.session.begin_nested():
                _entry, created = _add(workspace, email, phone, reason, "csv", actor)
        except SuppressionError as exc:
            result.errors.append((line, str(exc)))
            continue
        if created:
            result.added += 1
        else:
            result.already += 1
    audit.record(workspace.id, actor, "suppression.csv_uploaded", "suppression_list", None,
                 added=result.added, already=result.already, bad_rows=len(result.errors))
    db.session.commit()
    return result


def remove_entry(entry: SuppressionEntry, *, actor=None) -> None:
    audit.record(entry.workspace_id, actor, "suppression.removed", "suppression_entry", entry.id,
                 email=entry.email, phone=entry.phone_key, reason=entry.reason)
    db.session.delete(entry)
    db.session.commit()


def entries(workspace_id: int, q: str | None = None):
    stmt = select(SuppressionEntry).where(SuppressionEntry.workspace_id == workspace_id)
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(or_(SuppressionEntry.email_key.like(like), SuppressionEntry.phone_key.like(like),
                              SuppressionEntry.reason.ilike(like)))
    return stmt.order_by(SuppressionEntry.id.desc())
