"""Fixtures shared by every suite.

The shared reference data (protocol fixtures, sample data sets, real-world cases) lives outside
the repository. Tests find it through one setting, ``SHARED_DIR`` (default ``../shared`` next to
the repository root), and fail, never skip, when it is missing.
"""
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Shared fixtures kept in their own modules.
pytest_plugins = ["tests.conftest_smtp"]

SHARED_DIR = Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared")).resolve()


def shared_path(*parts: str) -> Path:
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared reference data missing: {path} (set SHARED_DIR)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


def load_case(case_id: str) -> dict:
    return json.loads(shared_path("cases", f"{case_id}.json").read_text())


@pytest.fixture
def case():
    return load_case


# --- the application database -------------------------------------------------------------
# Suites that use the ``app`` fixture are marked ``db`` and run twice in CI: on SQLite (a file,
# so worker subprocesses can share it) and on PostgreSQL (``TEST_DATABASE_URL``).

def pytest_collection_modifyitems(config, items):
    for item in items:
        if "app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def _app(database_url):
    from core import create_app
    from core.extensions import db

    application = create_app("test", {"SQLALCHEMY_DATABASE_URI": database_url})
    with application.app_context():
        db.session.remove()
        db.drop_all()
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _empty_all_tables(db) -> None:
    db.session.remove()
    engine = db.engine
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        else:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for t in tables:
                conn.exec_driver_sql(f'DELETE FROM "{t}"')
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


@pytest.fixture
def app(_app):
    """The application with an empty database, inside an application context."""
    from core.extensions import db

    with _app.app_context():
        _empty_all_tables(db)
        yield _app
        db.session.remove()


@pytest.fixture
def client(app):
    # Failed sign-ins are counted in Redis (services.sign_in_limits), which outlives a test.
    from services import sign_in_limits

    sign_in_limits.clear_all()
    return app.test_client()
