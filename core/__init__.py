"""Application factory."""
from __future__ import annotations

import importlib
import logging

from flask import Flask

from config import config_for
from core import db as _db_settings
from core.crypto import init_cipher
from core.extensions import db

log = logging.getLogger(__name__)


class WorkerFlask(Flask):
    """The RQ worker's app (``create_app(worker=True)``): the web blueprints, their forms and
    templates' helpers are imported only when something first reads the URL map (a mail or
    incident link built with ``url_for`` or ``url_map.bind``). A sync job never does on its
    normal path, so its work horse does not carry the web layer."""

    _blueprints_pending = False

    @property
    def url_map(self):
        if self._blueprints_pending:
            self._blueprints_pending = False
            _register_blueprints(self)
        return self.__dict__["url_map"]

    @url_map.setter
    def url_map(self, value):
        self.__dict__["url_map"] = value


def create_app(config_name: str | None = None, overrides: dict | None = None, *,
               worker: bool = False) -> Flask:
    """The application. ``worker=True``: the RQ worker's app (``python -m jobs.worker``,
    ``flask worker``): the same settings, database, token cipher and models, without the web-only
    extensions (CSRF, login, htmx, migrations), the web hooks and the CLI, and with the blueprints
    registered on first use of the URL map (see ``WorkerFlask``)."""
    cfg = config_for(config_name)
    settings = cfg.finalize() if not overrides or "SQLALCHEMY_DATABASE_URI" not in overrides else None
    app = (WorkerFlask if worker else Flask)(__name__, template_folder="../templates", static_folder="../static",
                                             instance_relative_config=False)
    from core.request_values import DbIntConverter
    app.url_map.converters["int"] = DbIntConverter  # before any route is added
    if settings is None:
        # Overrides supply the database; only check the remaining secrets.
        settings = {k: getattr(cfg, k) for k in dir(cfg) if k.isupper()}
    app.config.update(settings)
    if overrides:
        app.config.update(overrides)
    for required in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEY", "SQLALCHEMY_DATABASE_URI"):
        if not app.config.get(required):
            raise RuntimeError(f"missing required setting {required}")

    _db_settings.configure_sqlite(app.config["SQLITE_BUSY_TIMEOUT_MS"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # psycopg prepares a statement run five times; PostgreSQL may then keep one generic plan
        # for it, chosen while the tables were small (a sync's first pages): a sequential scan
        # that a 100k import then repeats for every page (10k: 2,360 records/s, 100k: 356).
        # Custom plans are planned with each call's values and the tables' current size.
        options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
        connect_args = dict(options.get("connect_args") or {})
        connect_args["options"] = " ".join(
            filter(None, [connect_args.get("options"), "-c plan_cache_mode=force_custom_plan"]))
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "connect_args": connect_args}
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
            "connect_args": {"timeout": app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000},
        }
    init_cipher(app.config["TOKEN_ENCRYPTION_KEY"])

    db.init_app(app)
    import models  # noqa: F401  (register every table on the metadata)
    if worker:
        app._blueprints_pending = True
        return app

    if not app.config.get("PUBLIC_BASE_URL"):
        log.warning("PUBLIC_BASE_URL is not set: invitation and reminder emails cannot be sent "
                    "(their links need the app's public address); ./run.sh sets it for the demo")
    from core.extensions import csrf, htmx, login_manager, migrate
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    _register_blueprints(app)
    _register_cli(app)
    _register_hooks(app)
    return app


def _register_blueprints(app: Flask) -> None:
    for spec in _blueprint_specs():
        module_name, attr = spec.split(":")
        app.register_blueprint(getattr(importlib.import_module(module_name), attr))


def _blueprint_specs():
    from core.blueprints import BLUEPRINTS
    return BLUEPRINTS


def _register_cli(app: Flask) -> None:
    from core.cli import register
    register(app)


def _register_hooks(app: Flask) -> None:
    from core.web import register_hooks

    register_hooks(app)
