"""Unbound extensions; ``core.create_app`` binds them to an application.

``db`` is built here. The web-only extensions (``migrate``, ``csrf``, ``login_manager``,
``htmx``) are built on first use (``from core.extensions import csrf`` works as before): an RQ
worker, whose app is created with ``create_app(worker=True)``, never imports Flask-Migrate (and
with it Alembic, ~8 MB of memory in every work horse), Flask-WTF, Flask-Login or Flask-HTMX.
"""
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


def _migrate():
    from flask_migrate import Migrate
    return Migrate()


def _csrf():
    from flask_wtf.csrf import CSRFProtect
    return CSRFProtect()


def _login_manager():
    from flask_login import LoginManager
    return LoginManager()


def _htmx():
    from flask_htmx import HTMX
    return HTMX()


_WEB_ONLY = {"migrate": _migrate, "csrf": _csrf, "login_manager": _login_manager, "htmx": _htmx}


def __getattr__(name: str):
    """The web-only extensions, each built once, on first use (PEP 562)."""
    factory = _WEB_ONLY.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = factory()
    return value
