"""``flask db upgrade`` builds the whole schema on an empty database, and it matches the models.

Runs on the database of the phase (SQLite, or PostgreSQL through TEST_DATABASE_URL), in a database
of its own so it never touches the tables of the ``app`` fixture. When this fails after a model
change, generate a migration: ``flask db migrate -m "what changed"`` (see CONTRIBUTING in README).
"""
import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.db


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"test_migrations_{os.getpid()}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# Alembic cannot compare a generated column's expression with PostgreSQL's rewritten form of it
# (it warns and moves on); the next test checks what search_text's expression computes.
@pytest.mark.filterwarnings("ignore:Computed default on participants.search_text cannot be modified")
def test_upgrade_on_an_empty_database_matches_the_models(empty_database_url):
    from flask_migrate import upgrade

    from core import create_app
    from core.extensions import db

    app = create_app("test", {"SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        assert sa.inspect(db.engine).get_table_names() == []
        upgrade()
        with db.engine.connect() as conn:
            from models.types import include_object_for
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": include_object_for(conn.dialect.name)})
            diff = compare_metadata(context, db.metadata)
            tables = set(sa.inspect(conn).get_table_names())
        db.session.remove()
        db.engine.dispose()
    assert diff == [], ("the models differ from the migrations; run "
                        "`flask db migrate -m \"...\"` and commit the new file in migrations/versions:\n"
                        + "\n".join(map(str, diff)))
    assert set(db.metadata.tables) | {"alembic_version"} == tables


def test_search_text_migration_fills_the_rows_already_there_and_goes_back(empty_database_url):
    """9a4f2c6e8b13 adds participants.search_text to a table with rows: each row gets its value,
    later writes keep it, the trigram index moves to it (PostgreSQL), and the downgrade restores
    the six-column index."""
    from flask_migrate import downgrade, upgrade

    from core import create_app
    from core.extensions import db

    app = create_app("test", {"SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision="a3f9c2e71b58")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO workspaces (id, name, timezone, daily_invite_cap) "
                                 "VALUES (1, 'W', 'UTC', 100)"))
            conn.execute(sa.text(
                "INSERT INTO participants (workspace_id, first_name, last_name, email, company, phone_raw, "
                "phone_e164, consent_status, status) VALUES (1, 'Jane', 'DOE', 'Jane@Acme.example', 'Acme Ltd', "
                "'+44 7700 900001', '+447700900001', 'unknown', 'active'), "
                "(1, NULL, NULL, 'only@x.example', NULL, NULL, NULL, 'unknown', 'active')"))
        upgrade()
        postgresql = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT email, search_text FROM participants ORDER BY id")).all()
            assert rows == [("Jane@Acme.example", "jane doe jane@acme.example acme ltd +44 7700 900001 +447700900001"),
                            ("only@x.example", "  only@x.example   ")]
            conn.execute(sa.text("UPDATE participants SET company = 'Globex' WHERE email = 'only@x.example'"))
            assert conn.execute(sa.text("SELECT search_text FROM participants WHERE email = 'only@x.example'")
                                ).scalar_one() == "  only@x.example globex  "
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("participants")}
        assert ("ix_participants_search_text" in indexes) is postgresql
        assert "ix_participants_search" not in indexes
        downgrade(revision="a3f9c2e71b58")
        with db.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("participants")}
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("participants")}
            count = conn.execute(sa.text("SELECT count(*) FROM participants")).scalar_one()
        assert "search_text" not in columns and count == 2
        assert ("ix_participants_search" in indexes) is postgresql and "ix_participants_search_text" not in indexes
        upgrade()
        db.session.remove()
        db.engine.dispose()
