"""Sync jobs (queue "sync") and the periodic tasks that start them; ``flask sync`` commands.

Each entry point looks its rows up by id and calls one service.
"""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from services import runs, schedules


def run_sync(run_id: int) -> str:
    """Execute one queued sync run (``services.runs.execute``); returns its status."""
    return runs.execute(run_id).status


def enqueue_due_plans() -> list[int]:
    """Periodic: queue a run of every plan whose schedule is due."""
    return schedules.enqueue_due_plans()


def sweep_lost_runs() -> list[int]:
    """Periodic: runs whose worker died become interrupted ("worker lost")."""
    return runs.sweep_lost_runs()


def enqueue_reconciliations() -> list[int]:
    """Periodic: queue the daily reconciliation of every active plan that is due one."""
    return schedules.enqueue_reconciliations()


@click.group("sync")
def cli() -> None:
    """Run and list Salesforce syncs."""


@cli.command("run")
@click.argument("plan_id", type=int)
@click.option("--reconcile", is_flag=True, help="a full reconciliation instead of an incremental run")
@with_appcontext
def run_command(plan_id: int, reconcile: bool) -> None:
    """Run one plan now, in this process, and print its summary."""
    try:
        run = runs.run_inline(plan_id, kind="reconcile" if reconcile else "sync")
    except LookupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(runs.summary_line(run))
    if run.status == "failed":
        sys.exit(1)


@cli.command("list")
@with_appcontext
def list_command() -> None:
    """Every plan with its last run."""
    for plan, run in runs.last_runs():
        last = (f"last run {run.id} {run.status}" + (f" ({run.reason})" if run.reason else "")
                if run else "never run")
        next_at = plan.next_run_at.strftime("%Y-%m-%d %H:%M UTC") if plan.next_run_at else "-"
        click.echo(f"{plan.id}\t{plan.name}\t{plan.status}\t{plan.schedule}\tnext {next_at}\t{last}")
