from core.extensions import db
from models import Participant, Workspace


def test_email_key_is_unique_per_workspace_not_across(app):
    a, b = Workspace(name="A"), Workspace(name="B")
    db.session.add_all([a, b])
    db.session.flush()
    db.session.add_all([Participant(workspace_id=a.id, email_key="x@example.org"),
                        Participant(workspace_id=b.id, email_key="x@example.org")])
    db.session.commit()
    db.session.add(Participant(workspace_id=a.id, email_key="x@example.org"))
    import sqlalchemy.exc
    try:
        db.session.commit()
    except sqlalchemy.exc.IntegrityError:
        db.session.rollback()
    else:  # pragma: no cover - the assertion below reports it
        raise AssertionError("duplicate email key in one workspace was accepted")
    assert Participant.query.filter_by(email_key="x@example.org").count() == 2
