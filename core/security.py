"""Who may call which view: every endpoint declares its requirement, one hook enforces it.

Declare the requirement on the view function (below ``@bp.route``)::

    from core.security import login_required, public, requires, signed_in

    @bp.get("/login")
    @public                           # anyone, signed in or not
    def login(): ...

    @bp.post("/logout")
    @signed_in                        # signed in; no workspace needed (logout, switcher)
    def logout(): ...

    @bp.get("/studies")
    @login_required                   # a member of the current workspace, any role
    def studies(): ...

    @bp.get("/admin/configuration/integrations/salesforce/connect")
    @requires("manage_integrations")  # or "manage_imports", or "admin"
    def salesforce_connect(): ...

The decorators only *declare*; ``enforce_access`` (installed by ``core.web.register_hooks`` as a
``before_request`` hook, after CSRF) does the checking for every request, so a view cannot
declare one thing and check another. An endpoint that declares nothing is refused for everyone
(fail closed) and ``tests/app/test_roles.py`` names it. A whole blueprint may be declared public
in ``PUBLIC_BLUEPRINTS`` (the participant invitation pages, ``invite``).

Outcomes: anonymous on a protected page → redirect to the login page (htmx: 401 with
``HX-Redirect``); signed in without the permission → 403; signed in but not a member of any
workspace → the "no workspace" page.

The same requirements are written out in ``docs/roles.md`` (role × route table);
``python -m core.security`` prints the table rows from the URL map.
"""
from __future__ import annotations

from typing import Callable

from flask import abort, current_app, g, redirect, request, url_for
from flask_login import current_user

from core.extensions import db, login_manager

PUBLIC = "public"
SIGNED_IN = "signed_in"
MEMBER = "member"
MANAGE_IMPORTS = "manage_imports"
MANAGE_INTEGRATIONS = "manage_integrations"
ADMIN = "admin"
REQUIREMENTS = (PUBLIC, SIGNED_IN, MEMBER, MANAGE_IMPORTS, MANAGE_INTEGRATIONS, ADMIN)
PERMISSIONS = (MANAGE_IMPORTS, MANAGE_INTEGRATIONS, ADMIN)

# Endpoints that are not our view functions but are public all the same.
PUBLIC_ENDPOINTS = {"static"}
# Blueprints whose every endpoint is public (participants answer invitations without an account).
PUBLIC_BLUEPRINTS = {"invite"}

ACCESS_ATTR = "_terapage_access"

# The people the role × route table speaks of, in column order.
ROLE_COLUMNS = ("anonymous", "researcher", "researcher + manage_imports",
                "researcher + manage_integrations", "admin")


def _declare(view: Callable, requirement: str) -> Callable:
    if requirement not in REQUIREMENTS:
        raise ValueError(f"unknown requirement {requirement!r}; use one of {REQUIREMENTS}")
    setattr(view, ACCESS_ATTR, requirement)
    return view


def public(view: Callable) -> Callable:
    """Anyone may call this view, signed in or not."""
    return _declare(view, PUBLIC)


def signed_in(view: Callable) -> Callable:
    """Any signed-in person, with or without a workspace (logout, workspace switcher)."""
    return _declare(view, SIGNED_IN)


def login_required(view: Callable) -> Callable:
    """A signed-in member of the current workspace, any role."""
    return _declare(view, MEMBER)


def requires(permission: str) -> Callable[[Callable], Callable]:
    """A member of the current workspace holding ``permission`` ("manage_imports",
    "manage_integrations" or "admin"); admins hold every permission. Others get 403."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; use one of {PERMISSIONS}")

    def decorator(view: Callable) -> Callable:
        return _declare(view, permission)

    return decorator


def requirement_for(app, endpoint: str) -> str | None:
    """The declared requirement of an endpoint, or None when it declares nothing."""
    if endpoint in PUBLIC_ENDPOINTS:
        return PUBLIC
    blueprint = endpoint.rsplit(".", 1)[0] if "." in endpoint else None
    if blueprint in PUBLIC_BLUEPRINTS:
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, ACCESS_ATTR, None) if view is not None else None


def allowed(requirement: str | None, role: str) -> bool:
    """Whether a person in one of ``ROLE_COLUMNS`` may call a view with ``requirement``."""
    if requirement == PUBLIC:
        return True
    if requirement is None or role == "anonymous":
        return False
    if requirement in (SIGNED_IN, MEMBER):
        return True
    if role == "admin":
        return True
    if requirement == ADMIN:
        return False
    return role == f"researcher + {requirement}"


def membership_allows(membership, requirement: str) -> bool:
    if requirement in (SIGNED_IN, PUBLIC):
        return True
    if membership is None:
        return False
    if requirement == MEMBER:
        return True
    return membership.has(requirement)


def can(permission: str) -> bool:
    """For templates and views: does the current member hold ``permission``?"""
    membership = g.get("membership")
    return membership is not None and membership.has(permission)


def enforce_access():
    """``before_request``: refuse the request unless the endpoint's requirement is met."""
    from core.tenancy import load_membership

    endpoint = request.endpoint
    if endpoint is None:  # no route matched: let Flask answer 404/405
        return None
    requirement = requirement_for(current_app, endpoint)
    if requirement == PUBLIC:
        if current_user.is_authenticated and endpoint != "static":
            load_membership()
        return None
    if not current_user.is_authenticated:
        return _to_login()
    membership = load_membership()
    if requirement is None:
        current_app.logger.error("endpoint %s declares no access requirement; refused", endpoint)
        abort(403)
    if requirement == SIGNED_IN:
        return None
    if membership is None:
        return redirect(url_for("auth.no_workspace"))
    if not membership_allows(membership, requirement):
        abort(403)
    return None


def _to_login():
    from core.web import is_htmx

    target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if is_htmx():
        response = current_app.response_class("", status=401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def safe_next(target: str | None) -> str | None:
    """A same-site path to go back to after login, or None (never an absolute URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@login_manager.user_loader
def _load_user(user_id: str):
    from models import User

    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return user if user is not None and user.is_active else None


def role_table_rows(app) -> list[tuple[str, str, str, list[bool]]]:
    """(endpoint, methods, requirement, allowed per ROLE_COLUMNS) for every endpoint."""
    methods: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    rows = []
    for endpoint in sorted(methods):
        requirement = requirement_for(app, endpoint) or "UNDECLARED"
        rows.append((endpoint, ", ".join(sorted(methods[endpoint])), requirement,
                     [allowed(requirement, role) for role in ROLE_COLUMNS]))
    return rows


def role_table_markdown(app) -> str:
    header = "| Endpoint | Methods | Requirement | " + " | ".join(ROLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (3 + len(ROLE_COLUMNS))]
    for endpoint, methods, requirement, flags in role_table_rows(app):
        cells = ["yes" if flag else "no" for flag in flags]
        lines.append(f"| `{endpoint}` | {methods} | {requirement} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - prints the table for docs/roles.md
    from core import create_app

    print(role_table_markdown(create_app("test")))
