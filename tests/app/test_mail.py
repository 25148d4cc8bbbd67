"""core.mail against a real SMTP server (aiosmtpd), and the embedded outbox."""
import ssl

import pytest
import trustme

from core.extensions import db
from core.mail import MailError, deliver, recent_outbox, send_mail
from models import OutboxMessage, Workspace


@pytest.fixture
def workspace(app):
    ws = Workspace(name="Mail")
    db.session.add(ws)
    db.session.commit()
    return ws


def use_smtp(monkeypatch, app, server, **extra):
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", server.host)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", server.port)
    for key, value in extra.items():
        monkeypatch.setitem(app.config, key, value)


def test_without_smtp_the_outbox_records_the_message_as_sent(app, workspace):
    message = send_mail("p@example.com", "Hello", "Plain body", html="<p>Hi</p>", workspace_id=workspace.id)
    row = db.session.get(OutboxMessage, message.id)
    assert (row.status, row.transport, row.error) == ("sent", "outbox", None)
    assert row.sent_at is not None and row.body_html == "<p>Hi</p>"


def test_smtp_delivers_text_and_html_to_a_real_server(app, workspace, smtp_server, monkeypatch):
    use_smtp(monkeypatch, app, smtp_server)
    message = send_mail("Zoë <zoe@example.com>", "Kick-off survey", "Text part", html="<b>HTML part</b>",
                        workspace_id=workspace.id)
    assert (message.status, message.transport) == ("sent", "smtp")
    [received] = smtp_server.messages
    assert received["Subject"] == "Kick-off survey"
    assert received["From"] == app.config["MAIL_FROM"]
    assert smtp_server.envelopes[0].rcpt_tos == ["zoe@example.com"]
    assert received.get_body(("plain",)).get_content().strip() == "Text part"
    assert received.get_body(("html",)).get_content().strip() == "<b>HTML part</b>"
    assert received["Message-ID"]


def test_starttls_and_login(app, workspace, smtp_server_factory, monkeypatch, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # the client trusts only this CA
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        seen.append((auth_data.login, auth_data.password))
        if auth_data.login == b"mailer" and auth_data.password == b"s3cret":
            return AuthResult(success=True)
        # An explicit message: aiosmtpd 1.4.6 otherwise leaves a failed AUTH unanswered.
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

    server = smtp_server_factory(tls_context=server_ctx, require_starttls=True, authenticator=authenticator,
                                 auth_require_tls=True, auth_required=True)
    use_smtp(monkeypatch, app, server, MAIL_SMTP_STARTTLS=True, MAIL_SMTP_USERNAME="mailer",
             MAIL_SMTP_PASSWORD="s3cret")
    message = send_mail("p@example.com", "Secure", "Body", workspace_id=workspace.id)
    assert message.status == "sent"
    assert seen == [(b"mailer", b"s3cret")]
    assert [m["Subject"] for m in server.messages] == ["Secure"]

    monkeypatch.setitem(app.config, "MAIL_SMTP_PASSWORD", "wrong")
    with pytest.raises(MailError, match="535"):
        send_mail("p@example.com", "Secure 2", "Body", workspace_id=workspace.id)
    assert len(server.messages) == 1


def test_failure_is_recorded_and_raised_and_deliver_retries(app, workspace, smtp_server, monkeypatch):
    from tests.conftest_smtp import free_port

    use_smtp(monkeypatch, app, smtp_server)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", free_port())  # nobody listens there
    with pytest.raises(MailError) as raised:
        send_mail("p@example.com", "Retry me", "Body", workspace_id=workspace.id)
    row = db.session.get(OutboxMessage, raised.value.outbox_id)
    assert row.status == "failed" and row.transport == "smtp"
    assert "Connection refused" in row.error or "ConnectionRefusedError" in row.error

    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)
    assert deliver(row.id).status == "sent"
    assert deliver(row.id).status == "sent"  # a sent message is not sent twice
    assert [m["Subject"] for m in smtp_server.messages] == ["Retry me"]
    assert OutboxMessage.query.count() == 1


def test_a_refused_recipient_fails_the_message(app, workspace, smtp_server, monkeypatch):
    use_smtp(monkeypatch, app, smtp_server)
    smtp_server.reject_recipients.add("ghost@example.com")
    with pytest.raises(MailError):
        send_mail("ghost@example.com", "Nobody", "Body", workspace_id=workspace.id)
    row = OutboxMessage.query.one()
    assert row.status == "failed" and "550" in row.error


def test_recent_outbox_is_newest_first_and_scoped_to_the_workspace(app, workspace):
    other = Workspace(name="Other")
    db.session.add(other)
    db.session.commit()
    for i in range(3):
        send_mail(f"p{i}@example.com", f"Message {i}", "Body", workspace_id=workspace.id)
    send_mail("q@example.com", "Other workspace", "Body", workspace_id=other.id)
    assert [m.subject for m in recent_outbox(workspace.id, limit=2)] == ["Message 2", "Message 1"]
    assert [m.subject for m in recent_outbox(other.id, limit=10)] == ["Other workspace"]


def test_a_line_break_in_the_subject_never_reaches_the_headers(app, workspace, smtp_server, monkeypatch):
    """Defence in depth behind the template check: whatever a caller passes, the subject stays one
    header line (the break becomes a space) and no header is added."""
    use_smtp(monkeypatch, app, smtp_server)
    message = send_mail("p@example.com", "Hello\r\nBcc: all@evil.example\nX-Evil: 1", "Body",
                        workspace_id=workspace.id)
    assert message.subject == "Hello  Bcc: all@evil.example X-Evil: 1"
    [received] = smtp_server.messages
    assert received["Bcc"] is None and received["X-Evil"] is None
    assert received["Subject"] == "Hello  Bcc: all@evil.example X-Evil: 1"
    assert smtp_server.envelopes[0].rcpt_tos == ["p@example.com"]


def test_a_row_recorded_with_a_line_break_is_sent_on_one_line(app, workspace, smtp_server, monkeypatch):
    row = OutboxMessage(workspace_id=workspace.id, to_addr="p@example.com", subject="Old\r\nBcc: x@evil.example",
                        body_text="Body", status="failed", transport="smtp")
    db.session.add(row)
    db.session.commit()
    use_smtp(monkeypatch, app, smtp_server)
    assert deliver(row.id).status == "sent"
    [received] = smtp_server.messages
    assert received["Bcc"] is None and received["Subject"] == "Old  Bcc: x@evil.example"


def test_a_recipient_with_a_line_break_is_refused_before_anything_is_recorded(app, workspace):
    with pytest.raises(MailError, match="line break"):
        send_mail("p@example.com\r\nBcc: all@evil.example", "Hi", "Body", workspace_id=workspace.id)
    assert OutboxMessage.query.count() == 0
