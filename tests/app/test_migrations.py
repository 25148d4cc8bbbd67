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
