"""Which hosts we will send a researcher (and our client secret) to.

The OAuth flow posts the connected app's consumer secret to the login host, so a typed My Domain
URL is checked against an allow-list before any request: Salesforce's login and test hosts, the
My Domain host patterns, and hosts named in configuration (the local emulator). Anything else —
another scheme, user info, a path, an IP address, a lookalike such as
``login.salesforce.com.evil.com`` — raises ``LoginHostNotAllowed``.
"""
from __future__ import annotations

import re
from typing import Iterable

PRODUCTION_LOGIN = "https://login.salesforce.com"
SANDBOX_LOGIN = "https://test.salesforce.com"

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LOGIN_HOST_RES = (
    re.compile(r"^login\.salesforce\.com$"),
    re.compile(r"^test\.salesforce\.com$"),
    re.compile(rf"^{_LABEL}\.my\.salesforce\.com$"),
    re.compile(rf"^{_LABEL}\.sandbox\.my\.salesforce\.com$"),  # acme--uat.sandbox.my.salesforce.com
    re.compile(rf"^{_LABEL}\.develop\.my\.salesforce\.com$"),
    re.compile(rf"^{_LABEL}\.scratch\.my\.salesforce\.com$"),
)
# Instance hosts returned as instance_url: My Domain hosts, plus legacy pods (na1.salesforce.com).
_INSTANCE_HOST_RES = _LOGIN_HOST_RES + (re.compile(rf"^{_LABEL}\.salesforce\.com$"),)

_HOSTPORT_RE = re.compile(r"^(?P<host>[a-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?$")


class LoginHostNotAllowed(ValueError):
    """The URL is not a Salesforce login host we accept. ``str(exc)`` is shown to the user."""


def _split(url: str) -> tuple[str, int | None]:
    """(host, port) of an https URL that is only a scheme and a host, or raise."""
    if not isinstance(url, str):
        raise LoginHostNotAllowed("Enter your My Domain address, like https://yourcompany.my.salesforce.com.")
    text = url.strip()
    if not text:
        raise LoginHostNotAllowed("Enter your My Domain address, like https://yourcompany.my.salesforce.com.")
    if any(ord(c) < 33 or ord(c) > 126 for c in text) or "\\" in text or "%" in text:
        raise LoginHostNotAllowed("The address contains characters a Salesforce address never has.")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if ":" in text.split("/")[0] and not _HOSTPORT_RE.match(text.split("/")[0].lower()):
            raise LoginHostNotAllowed("Salesforce addresses start with https://.")
        scheme, rest = "https", text
    if scheme.lower() != "https":
        raise LoginHostNotAllowed("Salesforce sign-in only works over https://.")
    if rest.endswith("/"):
        rest = rest[:-1]
    if any(c in rest for c in "/?#"):
        raise LoginHostNotAllowed("Enter only the address of your My Domain, without a path.")
    if "@" in rest:
        raise LoginHostNotAllowed("The address must not contain a user name or password.")
    m = _HOSTPORT_RE.match(rest.lower())
    if not m or not m.group("host") or m.group("host").endswith(".") or ".." in m.group("host"):
        raise LoginHostNotAllowed("That is not a valid host name.")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise LoginHostNotAllowed("That is not a valid port.")
    return m.group("host"), port


def _normalize_extra(extra_hosts: Iterable[str] | None) -> set[tuple[str, int | None]]:
    out = set()
    for entry in extra_hosts or ():
        entry = (entry or "").strip().lower()
        if not entry:
            continue
        if "://" in entry:
            entry = entry.split("://", 1)[1]
        entry = entry.rstrip("/")
        m = _HOSTPORT_RE.match(entry)
        if m:
            out.add((m.group("host"), int(m.group("port")) if m.group("port") else None))
    return out


def _allowed(host: str, port: int | None, patterns, extra_hosts) -> bool:
    for extra_host, extra_port in _normalize_extra(extra_hosts):
        # "host" allows any port on that host; "host:port" only that port.
        if host == extra_host and (extra_port is None or extra_port == (port or 443)):
            return True
    if port not in (None, 443):
        return False
    return any(p.match(host) for p in patterns)


def _url(host: str, port: int | None) -> str:
    return f"https://{host}" + (f":{port}" if port not in (None, 443) else "")


def normalize_login_url(env: str, mydomain_url: str | None = None,
                        extra_hosts: Iterable[str] | None = ()) -> str:
    """The login base URL (``https://host[:port]``, no trailing slash) for an environment:
    ``production`` → login.salesforce.com, ``sandbox`` → test.salesforce.com, ``mydomain`` → the
    typed URL once it passes the allow-list (a missing ``https://`` is added)."""
    env = (env or "").strip().lower()
    if env == "production":
        return PRODUCTION_LOGIN
    if env == "sandbox":
        return SANDBOX_LOGIN
    if env != "mydomain":
        raise LoginHostNotAllowed("Choose production, sandbox or a My Domain address.")
    host, port = _split(mydomain_url or "")
    if not _allowed(host, port, _LOGIN_HOST_RES, extra_hosts):
        raise LoginHostNotAllowed(
            f"{host} is not a Salesforce login address. Use your My Domain address, like "
            "https://yourcompany.my.salesforce.com (sandboxes: "
            "https://yourcompany--sandboxname.sandbox.my.salesforce.com).")
    return _url(host, port)


def is_allowed_login_url(url: str, extra_hosts: Iterable[str] | None = ()) -> bool:
    try:
        host, port = _split(url)
    except LoginHostNotAllowed:
        return False
    return _allowed(host, port, _LOGIN_HOST_RES, extra_hosts)


def check_instance_url(url: str, extra_hosts: Iterable[str] | None = ()) -> str:
    """Validate the ``instance_url`` of a token response (where REST calls and the access token
    will go) and return it normalized; raise ``LoginHostNotAllowed`` otherwise."""
    host, port = _split(url)
    if not _allowed(host, port, _INSTANCE_HOST_RES, extra_hosts):
        raise LoginHostNotAllowed(f"{host} is not a Salesforce instance address.")
    return _url(host, port)
