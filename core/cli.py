"""Command-line commands: ``flask seed-demo``, ``flask worker``, ``flask embedded-redis``.

Other parts add their own commands or groups (e.g. ``flask sync run``) by listing them in
``COMMAND_MODULES`` below as "module:attribute" (a click command or group); ``register`` adds
each. A listed module that does not import stops the app from starting, loudly.
"""
from __future__ import annotations

import importlib
import os
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

COMMAND_MODULES: list[str] = [
    "jobs.sync:cli",  # flask sync run PLAN_ID / flask sync list
]

DEMO_ADMIN_EMAIL = "admin@example.org"
DEMO_RESEARCHER_EMAIL = "researcher@example.org"
# Fixed, documented demo passwords (README): the demo data is for a local machine only.
DEMO_ADMIN_PASSWORD = "demo-admin-pass"
DEMO_RESEARCHER_PASSWORD = "demo-researcher-pass"
DEMO_WORKSPACE = "Demo Research"


def register(app: Flask) -> None:
    for command in (seed_demo, worker, embedded_redis):
        app.cli.add_command(command)
    for spec in COMMAND_MODULES:
        module_name, _, attr = spec.partition(":")
        app.cli.add_command(getattr(importlib.import_module(module_name), attr))


# --- flask worker -----------------------------------------------------------------------------

@click.command("worker")
@click.option("--queues", default="sync,default,mail", show_default=True, help="comma-separated queue names")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@click.option("--no-scheduler", is_flag=True, help="do not run the periodic scheduler")
@click.option("--simple", is_flag=True, help="run jobs in the worker process instead of a forked horse")
@click.option("--max-jobs", type=int, default=None)
def worker(queues: str, burst: bool, no_scheduler: bool, simple: bool, max_jobs: int | None) -> None:
    """Run an RQ worker on the queues, with the periodic scheduler.

    This process has loaded the whole web app (the CLI needs it to find this command), and every
    work horse RQ forks would carry it. So it becomes ``python -m jobs.worker`` with the same
    arguments and environment (``os.execv``: same process id, same signals), whose app is the
    worker's own (``create_app(worker=True)``, settings from the same environment)."""
    argv = [sys.executable, "-m", "jobs.worker", "--queues", queues]
    argv += ["--burst"] if burst else []
    argv += ["--no-scheduler"] if no_scheduler else []
    argv += ["--simple"] if simple else []
    argv += ["--max-jobs", str(max_jobs)] if max_jobs is not None else []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


# --- flask embedded-redis ---------------------------------------------------------------------

@click.command("embedded-redis")
@with_appcontext
def embedded_redis() -> None:
    """Run the shared embedded redis-server in the foreground (used by ./run.sh).

    Prints "REDIS_URL=unix://..." first; other processes of this checkout find it by itself too.
    """
    from core.queues import embedded_server_argv

    argv, url = embedded_server_argv(current_app.config["STATE_DIR"])
    click.echo(f"REDIS_URL={url}", err=False)
    sys.stdout.flush()
    os.execv(argv[0], argv)


# --- flask seed-demo --------------------------------------------------------------------------

FIRST = ["Amara", "Ben", "Chloe", "Dev", "Elif", "Farah", "George", "Hana", "Isaac", "Jun", "Kofi",
         "Lena", "Mateo", "Nia", "Oscar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Victor",
         "Wen", "Yusuf", "Zoe"]
LAST = ["Okafor", "Hughes", "Martin", "Patel", "Yilmaz", "Khan", "Evans", "Sato", "Cohen", "Li",
        "Mensah", "Fischer", "Garcia", "Brown", "Larsen", "Sharma", "Walsh", "Silva", "Haddad",
        "Aziz", "Nair", "Novak", "Zhang", "Demir", "Clarke"]
COMPANIES = ["Northwind Traders", "Contoso Ltd", "Fabrikam", "Tailspin Toys", "Litware"]
SEGMENTS = [["customer"], ["customer", "beta"], ["prospect"], ["customer", "enterprise"], ["partner"]]
CONSENTS = ["opted_in", "opted_in", "opted_in", "unknown", "opted_out"]


def seed_demo_data() -> dict:
    """Create the demo data unless it exists (idempotent); return what the demo consists of."""
    from core.extensions import db
    from models import (ROLE_ADMIN, ROLE_RESEARCHER, Activity, Community, Membership, Participant,
                        Study, Workspace)
    from services import accounts, research

    admin = (accounts.find_user(DEMO_ADMIN_EMAIL)
             or accounts.create_user(DEMO_ADMIN_EMAIL, "Demo Admin", DEMO_ADMIN_PASSWORD))
    researcher = (accounts.find_user(DEMO_RESEARCHER_EMAIL)
                  or accounts.create_user(DEMO_RESEARCHER_EMAIL, "Demo Researcher", DEMO_RESEARCHER_PASSWORD))
    workspace = Workspace.query.filter_by(name=DEMO_WORKSPACE).order_by(Workspace.id).first()
    if workspace is None:
        workspace = accounts.create_workspace(DEMO_WORKSPACE, default_phone_region="GB", timezone="Europe/London")
    # Existing memberships are left as they are (an admin may have changed them in the app). The
    # researcher holds neither grantable permission: integrations are read-only for them.
    for user, role in ((admin, ROLE_ADMIN), (researcher, ROLE_RESEARCHER)):
        if not Membership.query.filter_by(user_id=user.id, workspace_id=workspace.id).first():
            accounts.add_member(user, workspace, role)

    study = Study.query.filter_by(workspace_id=workspace.id, name="Customer onboarding interviews").first()
    if study is None:
        study = research.create_study(workspace, actor=admin, name="Customer onboarding interviews", status="open",
                                      description="How new customers experience their first month.")
    if not Activity.query.filter_by(study_id=study.id, name="Kick-off survey").first():
        research.create_activity(study, actor=admin, name="Kick-off survey", kind="survey",
                                 description="Ten questions before the first interview.")
    if not Community.query.filter_by(workspace_id=workspace.id, name="Product panel").first():
        research.create_community(workspace, actor=admin, name="Product panel",
                                  description="Customers who agreed to give feedback every month.")

    for i, (first, last) in enumerate(zip(FIRST, LAST)):
        email = f"{first}.{last}@example.com"
        if Participant.query.filter_by(workspace_id=workspace.id, email_key=email.lower()).first():
            continue
        e164 = f"+447700900{100 + i:03d}"  # Ofcom's range reserved for drama: never a real line
        db.session.add(Participant(
            workspace_id=workspace.id, first_name=first, last_name=last, email=email,
            email_key=email.lower(), phone_raw=f"07700 900{100 + i:03d}", phone_e164=e164,
            phone_key=e164, company=COMPANIES[i % len(COMPANIES)], segments=SEGMENTS[i % len(SEGMENTS)],
            consent_status=CONSENTS[i % len(CONSENTS)], attributes={"plan": ["free", "pro", "team"][i % 3]}))
    db.session.commit()
    return {"workspace": workspace, "admin": admin, "researcher": researcher, "study": study,
            "participants": Participant.query.filter_by(workspace_id=workspace.id).count()}


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Create the demo workspace, its two users, a study and a participant pool (idempotent)."""
    result = seed_demo_data()
    click.echo(f"Demo workspace: {result['workspace'].name} ({result['participants']} participants)")
    click.echo(f"  admin:      {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}")
    click.echo(f"  researcher: {DEMO_RESEARCHER_EMAIL} / {DEMO_RESEARCHER_PASSWORD}")
