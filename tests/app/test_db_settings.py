"""Settings the app applies at start: database session settings, warnings for missing ones."""
import pytest
from sqlalchemy import text

from core import create_app


def test_postgresql_connections_plan_each_statement_with_its_values():
    app = create_app("test", {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@127.0.0.1:1/x",
                              "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": "-c work_mem=8MB"}}})
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"]
    assert options == "-c work_mem=8MB -c plan_cache_mode=force_custom_plan"  # the caller's kept


@pytest.mark.db
def test_the_setting_reaches_the_server(app):
    from core.extensions import db
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    assert db.session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"


def test_a_web_app_without_public_base_url_warns_at_start(caplog):
    with caplog.at_level("WARNING", logger="core"):
        create_app("test", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "PUBLIC_BASE_URL": None})
    assert "PUBLIC_BASE_URL is not set" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="core"):
        create_app("test", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "PUBLIC_BASE_URL": "https://x.example"})
    assert "PUBLIC_BASE_URL" not in caplog.text
