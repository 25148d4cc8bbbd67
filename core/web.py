"""Web plumbing every blueprint shares: page-or-fragment rendering, security headers, error pages.

Page or fragment from one URL::

    from core.web import render

    @bp.get("/participants")
    @login_required
    def pool():
        ...
        return render("participants/pool.html", "participants/_pool_table.html", page=page)

``render`` answers with the fragment when htmx asked (``HX-Request``), except for boosted
requests and history restores, which need the whole page; it always sends
``Vary: HX-Request`` so caches never hand the fragment to a full page load. The page template
includes the fragment (``{% include "participants/_pool_table.html" %}``), so each piece of
markup exists once; fragments (``_*.html``) never extend ``base.html``.

Other helpers: ``is_htmx()`` (a non-boosted htmx request), ``redirect_to(endpoint, **values)``
(a plain redirect, or ``HX-Redirect`` for htmx so the browser loads the whole page).

``register_hooks(app)`` (called by ``create_app``) installs: the access hook from
``core.security``, security headers on every response (CSP ``default-src 'self'``, no inline
script or style anywhere; nosniff; X-Frame-Options DENY; Referrer-Policy same-origin; HSTS when
cookies are secure; ``Cache-Control: no-store`` on pages), the 400 page for a missing or
expired CSRF token, the 403/404/405 pages, and the template globals ``current_workspace``,
``current_membership``, ``can(permission)`` and ``user_memberships()``.
"""
from __future__ import annotations

from flask import Flask, flash, g, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from core.extensions import htmx

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; frame-ancestors 'none'")


def is_htmx() -> bool:
    """An htmx request that wants a fragment (not boosted, not a history restore)."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(template_page: str, fragment: str | None = None, status: int = 200, **ctx):
    """The page, or ``fragment`` when htmx asked for it; always ``Vary: HX-Request``."""
    name = fragment if fragment and is_htmx() else template_page
    response = make_response(render_template(name, **ctx), status)
    response.vary.add("HX-Request")
    return response


def redirect_to(endpoint: str, **values):
    """Redirect after a POST; htmx requests get ``HX-Redirect`` (a full page load)."""
    target = url_for(endpoint, **values)
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    from flask import current_app

    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.endpoint != "static" and response.mimetype == "text/html":
        # Pages hold personal data: keep them out of shared and back-button caches.
        headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(template: str, status: int, **ctx):
    # Errors from htmx requests still come back whole: htmx 2 does not swap 4xx bodies, and a
    # full page is what a person sees after a normal navigation.
    response = make_response(render_template(template, **ctx), status)
    response.vary.add("HX-Request")
    return response


# Per-request caches kept on ``g`` (by us, Flask-Login and Flask-WTF).
_REQUEST_CACHES = ("membership", "_login_user", "csrf_token")


def _fresh_request_state():
    # ``g`` belongs to the application context, and a request reuses one that is already pushed
    # (tests, scripts driving the test client): drop what a previous request cached there, so
    # one person's user, membership or CSRF token never carries over to the next request.
    for name in _REQUEST_CACHES:
        g.pop(name, None)


def _refuse_nul():
    """A value with a NUL character (0x00) would fail its statement on PostgreSQL (text cannot
    hold it): the request is refused, saying which field, before anything reads it."""
    from core.request_values import nul_in_request
    field = nul_in_request(request)
    if field is not None:
        return _error_page("errors/400.html", 400, message=(
            f"The field “{field}” contains a NUL character (\\0), which no field accepts. "
            "Remove it and try again."))
    return None


def register_hooks(app: Flask) -> None:
    from core import security, tenancy

    app.before_request(_fresh_request_state)
    app.before_request(_refuse_nul)
    app.before_request(security.enforce_access)
    app.after_request(_security_headers)

    @app.errorhandler(CSRFError)
    def _csrf_error(error):
        # Invitation pages are answered by participants, not by people signed in to Terapage.
        return _error_page("errors/400_csrf.html", 400, reason=error.description,
                           public=request.blueprint == "invite")

    @app.errorhandler(403)
    def _forbidden(_error):
        return _error_page("errors/403.html", 403)

    @app.errorhandler(404)
    def _not_found(_error):
        return _error_page("errors/404.html", 404)

    @app.errorhandler(405)
    def _not_allowed(_error):
        return _error_page("errors/405.html", 405)

    from core.labels import field_words, status_label, value_words
    app.add_template_filter(status_label, "status_label")
    app.add_template_filter(field_words, "field_words")
    app.add_template_filter(value_words, "value_words")
    from sync.verdicts import SITUATION_LABELS, TOTAL_LABELS, flag_notes, run_reason
    app.add_template_global(TOTAL_LABELS, "total_labels")  # the preview's totals, in the run log's words
    app.add_template_global(SITUATION_LABELS, "situation_labels")
    app.add_template_global(run_reason, "run_reason")  # a run log row's one reason
    app.add_template_global(flag_notes, "flag_notes")  # its field problems the reason doesn't say

    @app.context_processor
    def _globals():
        return {
            "current_membership": g.get("membership"),
            "current_workspace": g.membership.workspace if g.get("membership") else None,
            "can": security.can,
            "user_memberships": tenancy.user_memberships,
        }


__all__ = ["render", "is_htmx", "redirect_to", "register_hooks", "flash"]
