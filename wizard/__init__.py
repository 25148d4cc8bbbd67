"""The setup wizard: connect, choose an object, map, filter, preview, schedule and invite.

Routes (blueprint ``wizard``, no URL prefix)
--------------------------------------------
=============================================  ===========================  ======================
URL                                            endpoint                     module (owner)
=============================================  ===========================  ======================
GET/POST /integrations/salesforce/connect      wizard.connect               connect.py (W1)
GET  /integrations/salesforce/callback         wizard.callback              connect.py (W1)
POST /integrations/salesforce/<id>/reconnect   wizard.reconnect             connect.py (W1)
POST /integrations/salesforce/<id>/disconnect  wizard.disconnect            connect.py (W1)
GET/POST /wizard/new[?connection=<id>]         wizard.new                   connect.py (W1) step 1
GET/POST /wizard/plans/<id>/connect            wizard.connect_step          connect.py (W1) step 1
GET/POST /wizard/plans/<id>/object             wizard.object                steps_object.py (W1)
GET/POST /wizard/plans/<id>/mapping            wizard.mapping               steps_mapping.py (W1)
GET/POST /wizard/plans/<id>/filters            wizard.filters               steps_filters.py (W2)
GET/POST /wizard/plans/<id>/preview            wizard.preview               steps_preview.py (W2)
GET/POST /wizard/plans/<id>/schedule           wizard.schedule              steps_schedule.py (W2)
=============================================  ===========================  ======================

Every step endpoint is named after its step key (``services.plans.STEPS``), takes ``plan_id``,
and is declared ``@requires("manage_imports")`` (connect/reconnect/disconnect:
``manage_integrations``). A step module that is not there yet gets a placeholder view at its
URL so the stepper never links to nothing; W2's modules replace it by existing.

How a step view is written (see steps_object.py for a complete one)::

    from wizard import bp, load_plan, render_step, step_done

    @bp.route("/wizard/plans/<int:plan_id>/filters", methods=["GET", "POST"])
    @requires("manage_imports")
    def filters(plan_id):
        plan = load_plan(plan_id, "filters")      # 404 other workspace; redirects to the first
                                                  # open step when this one is locked
        if not isinstance(plan, ImportPlan): return plan   # (that redirect)
        errors = {}
        if request.method == "POST":
            errors = plan_steps.save_filters(plan, ...)
            if not errors:
                return step_done(plan, "filters")   # 303 to the next step (htmx follows it)
        return render_step(plan, "filters", "wizard/_step_filters.html", errors=errors,
                           partials={"filter-count": "wizard/_filter_count.html"}, ...)

``render_step(plan, step, body, *, partials=None, status=None, **ctx)`` renders
``wizard/page.html`` (base layout + ``#wizard``) for a normal request, ``wizard/_panel.html``
(the stepper + the step body, swapped into ``#wizard``) for an htmx request, or, when the htmx
request's ``HX-Target`` is a key of ``partials``, just that partial (live counts, rows,
searches). A POST with errors answers 422 to a plain form post (the browser shows the page) and
200 to htmx (htmx 2 does not swap 4xx). Panels answer with ``HX-Push-Url`` so the address bar
follows the step after a POST-redirect. ``Vary: HX-Request`` always.

Templates: a step body is ``templates/wizard/_step_<key>.html`` and receives ``plan``,
``steps`` (the stepper, ``services.plans.StepState`` list), ``step`` (current key),
``step_url(key)``, ``errors`` and the view's context. Forms are plain posts that htmx enhances::

    <form method="post" action="{{ step_url('filters') }}" hx-post="{{ step_url('filters') }}"
          hx-target="#wizard" hx-swap="innerHTML">
      <input type="hidden" name="csrf_token" value="{{ csrf_token() }}"> ...

and use ``{% from "wizard/_macros.html" import field_error, select_field %}`` for errors
shown on their field. Links between steps: ``hx-get`` + ``hx-target="#wizard"`` +
``hx-push-url="true"`` with an ``href`` to the same URL (works without JavaScript).

Services: ``services.plans`` (drafts, steps 1–3 saves, stepper, fingerprints, ``to_spec``,
``to_filter_group``; W2's saves go to ``services/plan_steps.py`` and register their step checks
with ``services.plans.register_step_check``), ``services.catalog`` (objects, describes,
``field_catalog(connection, object_name)``), ``services.connections`` (OAuth, ``client_for``).
"""
from __future__ import annotations

import importlib

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for

from core.extensions import htmx
from core.security import requires
from core.tenancy import get_in_workspace_or_404
from core.web import is_htmx
from models import ImportPlan
from services import plans as plan_service

bp = Blueprint("wizard", __name__)

STEP_MODULES = {"connect": "wizard.connect", "object": "wizard.steps_object",
                "mapping": "wizard.steps_mapping", "filters": "wizard.steps_filters",
                "preview": "wizard.steps_preview", "schedule": "wizard.steps_schedule"}
STEP_ENDPOINTS = {"connect": "wizard.connect_step", "object": "wizard.object", "mapping": "wizard.mapping",
                  "filters": "wizard.filters", "preview": "wizard.preview", "schedule": "wizard.schedule"}


def step_url(plan: ImportPlan, step: str) -> str:
    return url_for(STEP_ENDPOINTS[step], plan_id=plan.id)


def load_plan(plan_id: int, step: str):
    """The plan (404 for another workspace's), or a redirect to the furthest open step when
    ``step`` is locked (a bookmark of a later step, or an edit that invalidated one)."""
    plan = get_in_workspace_or_404(ImportPlan, plan_id)
    if plan_service.reachable(plan, step):
        return plan
    target = "connect"
    for key, _ in plan_service.STEPS:
        if plan_service.reachable(plan, key):
            target = key
    return redirect(step_url(plan, target), code=303)


def step_done(plan: ImportPlan, step: str):
    """After a successful save: on to the next step (303, so a reload never re-posts)."""
    following = plan_service.next_step(step) or step
    return redirect(step_url(plan, following), code=303)


def render_step(plan: ImportPlan | None, step: str, body: str, *, partials: dict | None = None,
                status: int | None = None, errors: dict | None = None, **ctx):
    errors = errors or {}
    if status is None:
        status = 422 if errors and request.method == "POST" and not is_htmx() else 200
    context = {
        "plan": plan, "step": step, "body": body, "errors": errors,
        "steps": plan_service.stepper(plan, step),
        "step_url": (lambda key: step_url(plan, key)) if plan is not None else (lambda key: url_for("wizard.new")),
        **ctx,
    }
    target = htmx.target if is_htmx() else None
    if partials and target in partials:
        response = make_response(render_template(partials[target], **context), status)
    elif is_htmx():
        response = make_response(render_template("wizard/_panel.html", **context), status)
        if request.method == "GET" and not errors:
            response.headers["HX-Push-Url"] = request.full_path.rstrip("?")
    else:
        response = make_response(render_template("wizard/page.html", **context), status)
    response.vary.add("HX-Request")
    return response


def _placeholder(step: str):
    """A step whose module has not landed yet: its URL exists and says so."""
    @requires("manage_imports")
    def view(plan_id: int):
        plan = load_plan(plan_id, step)
        if not isinstance(plan, ImportPlan):
            return plan
        return render_step(plan, step, "wizard/_step_pending.html")

    view.__name__ = step
    bp.add_url_rule(f"/wizard/plans/<int:plan_id>/{step}", endpoint=step, view_func=view, methods=["GET"])


def _load_step_modules() -> None:
    for step, module in STEP_MODULES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            if step in ("filters", "preview", "schedule"):
                _placeholder(step)
            else:
                raise


_load_step_modules()

__all__ = ["bp", "load_plan", "render_step", "step_done", "step_url", "abort"]
