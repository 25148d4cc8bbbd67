"""A DatabaseSink over a fresh workspace, plan and running run, for tests that write pages."""
from __future__ import annotations

from core.extensions import db
from models import ImportPlan, SyncRun, Workspace
from services.sync_sink import ActionTarget, DatabaseSink


def fresh_sink(action: str = "pool", make_target=None):
    """(workspace, plan, run, sink). ``make_target(workspace)`` returns the plan's extra fields
    for its target (e.g. a community's id) once the workspace exists."""
    workspace = Workspace(name="W", default_phone_region="GB")
    db.session.add(workspace)
    db.session.flush()
    plan = ImportPlan(workspace_id=workspace.id, object_name="Contact", action=action,
                      **(make_target(workspace) if make_target else {}))
    db.session.add(plan)
    db.session.flush()
    run = SyncRun(workspace_id=workspace.id, plan_id=plan.id, status="running")
    db.session.add(run)
    db.session.commit()
    sink = DatabaseSink(workspace_id=workspace.id, plan_id=plan.id, run_id=run.id, connection_id=None,
                        target=ActionTarget.for_plan(plan))
    return workspace, plan, run, sink
