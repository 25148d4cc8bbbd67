"""Outgoing email behind one small interface.

Every message is recorded in ``OutboxMessage`` first. With ``MAIL_SMTP_HOST`` set it is then
sent over SMTP (STARTTLS and login when configured); without it the embedded outbox is the
delivery: the row is marked sent with transport "outbox" and admins read it in the app.
A failure is written on the row (status "failed", the error text) and raised as ``MailError``
so a job can retry it (``deliver(message_id)`` sends an existing row again).

Headers are one line each: a line break (CR, LF or another line end) in a subject is replaced
by a space before the message is recorded or built, and a recipient address holding one is
refused (``MailError``), so no caller can add headers through a value (header injection).
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app

from core.extensions import db
from models import OutboxMessage
from models.types import utcnow

SMTP_TIMEOUT_SECONDS = 30
# The line ends of str.splitlines: any of them in a header value would end the header there.
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(value: str | None) -> str:
    """A header value with every line break replaced by a space."""
    return _LINE_BREAK.sub(" ", value or "")


class MailError(RuntimeError):
    """The message could not be sent; the outbox row says why. ``permanent``: sending it again
    cannot work (the mail server refused the recipient with a 5xx answer, or the address cannot
    be written into a header): retrying would only hammer the server and hurt the sender."""

    def __init__(self, message: str, outbox_id: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.outbox_id = outbox_id
        self.permanent = permanent


def is_permanent(exc: BaseException) -> bool:
    """A refusal no retry can change: every recipient refused with a 5xx code (a 4xx is "try
    later"), or an address refused before sending (a line break in it)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [answer[0] for answer in exc.recipients.values() if answer]
        return bool(codes) and all(500 <= int(code) < 600 for code in codes)
    return isinstance(exc, ValueError)


def send_mail(to: str, subject: str, text: str, html: str | None = None,
              workspace_id: int | None = None, invitation_id: int | None = None) -> OutboxMessage:
    """Record and send one message; return its outbox row (status "sent")."""
    if _LINE_BREAK.search(to or ""):
        raise MailError("refused: the recipient address contains a line break (CR or LF)", permanent=True)
    message = OutboxMessage(workspace_id=workspace_id, invitation_id=invitation_id, to_addr=to,
                            subject=one_line(subject), body_text=text, body_html=html, status="queued",
                            transport=_transport())
    db.session.add(message)
    db.session.commit()
    return _deliver(message)


def deliver(message_id: int) -> OutboxMessage:
    """Send (again) a recorded message that is not sent yet; a sent one is left alone."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        raise MailError(f"no outbox message {message_id}")
    if message.status == "sent":
        return message
    message.transport = _transport()
    return _deliver(message)


def recent_outbox(workspace_id: int | None, limit: int = 50) -> list[OutboxMessage]:
    """The newest messages of a workspace (``None``: messages that belong to no workspace)."""
    query = OutboxMessage.query.filter(OutboxMessage.workspace_id.is_(None) if workspace_id is None
                                       else OutboxMessage.workspace_id == workspace_id)
    return query.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit).all()


def _transport() -> str:
    return "smtp" if current_app.config.get("MAIL_SMTP_HOST") else "outbox"


def build_email(message: OutboxMessage) -> EmailMessage:
    cfg = current_app.config
    email = EmailMessage()
    email["From"] = cfg["MAIL_FROM"]
    if _LINE_BREAK.search(message.to_addr or ""):
        raise ValueError("the recipient address contains a line break (CR or LF)")
    email["To"] = message.to_addr
    email["Subject"] = one_line(message.subject)  # rows recorded before subjects were checked
    domain = cfg["MAIL_FROM"].rsplit("@", 1)[-1].strip(" >") or None
    email["Message-ID"] = make_msgid(idstring=f"outbox{message.id}", domain=domain)
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


def _deliver(message: OutboxMessage) -> OutboxMessage:
    try:
        if message.transport == "smtp":
            _send_smtp(build_email(message))
    except (smtplib.SMTPException, OSError, socket.timeout, ValueError) as exc:
        message.status = "failed"
        message.error = f"{type(exc).__name__}: {exc}"[:4000]
        db.session.commit()
        raise MailError(message.error, outbox_id=message.id, permanent=is_permanent(exc)) from exc
    message.status = "sent"
    message.error = None
    message.sent_at = utcnow()
    db.session.commit()
    return message


def _send_smtp(email: EmailMessage) -> None:
    cfg = current_app.config
    with smtplib.SMTP(cfg["MAIL_SMTP_HOST"], cfg["MAIL_SMTP_PORT"], timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        smtp.ehlo()
        if cfg.get("MAIL_SMTP_STARTTLS"):
            # Verify the server's certificate against the system store (SSL_CERT_FILE honoured).
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if cfg.get("MAIL_SMTP_USERNAME"):
            smtp.login(cfg["MAIL_SMTP_USERNAME"], cfg.get("MAIL_SMTP_PASSWORD") or "")
        smtp.send_message(email)
