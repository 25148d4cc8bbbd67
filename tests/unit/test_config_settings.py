"""Every setting config.py reads is used: a setting nothing reads is a knob that silently does
nothing (RUN_LOCK_SECONDS was read and documented, while the run lock used 4 × WORKER_LOST_AFTER_SECONDS)."""
from __future__ import annotations

import re
from pathlib import Path

import config

ROOT = Path(__file__).resolve().parents[2]
# Consumed by Flask and its extensions, not by our code.
LIBRARY_PREFIXES = ("SESSION_COOKIE_", "REMEMBER_COOKIE_", "WTF_CSRF_", "SQLALCHEMY_")
LIBRARY_NAMES = {"SECRET_KEY", "TESTING", "PERMANENT_SESSION_LIFETIME"}
OURS = ("auth", "bench", "core", "emulator", "integrations", "invite", "jobs", "messages", "models", "operations",
        "participants", "research", "salesforce", "scripts", "services", "sync", "templates", "wizard", "workspace")


def _our_text() -> str:
    parts = []
    for package in OURS:
        for path in (ROOT / package).rglob("*"):
            if path.suffix in (".py", ".html") and path.is_file():
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
    parts.append((ROOT / "wsgi.py").read_text())
    return "\n".join(parts)


def _read_from_the_environment() -> list[str]:
    """The Config class's settings whose value comes from the environment (NAME = _int("ENV", ...))."""
    source = (ROOT / "config.py").read_text()
    body = source.split("class Config:", 1)[1].split("\nclass ", 1)[0]
    return re.findall(r"^    ([A-Z][A-Z0-9_]+)(?::[^=]+)? = _(?:str|int|bool|list)\(", body, re.M)


def test_every_setting_config_reads_is_used_somewhere():
    text = _our_text()
    names = _read_from_the_environment()
    assert "WORKER_LOST_AFTER_SECONDS" in names and "SECRET_KEY" in names
    unused = [n for n in names
              if n not in LIBRARY_NAMES and not n.startswith(LIBRARY_PREFIXES)
              and not re.search(rf"\b{n}\b", text)]
    assert unused == [], f"settings read by config.py that nothing uses: {unused}"


def test_the_readme_documents_no_setting_that_config_does_not_read():
    readme = (ROOT / "README.md").read_text()
    config_text = (ROOT / "config.py").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, re.M)
    assert documented
    missing = [n for n in documented if f'"{n}"' not in config_text]
    assert missing == [], f"README documents settings config.py does not read: {missing}"


def test_a_new_workspace_starts_with_the_configured_daily_invite_cap(app, monkeypatch):
    from services import accounts
    monkeypatch.setitem(app.config, "DAILY_INVITE_CAP", 7)
    assert accounts.create_workspace("Capped").daily_invite_cap == 7
