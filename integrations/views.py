"""The integrations catalogue and the Salesforce integration page (connections and their status).

Everyone in the workspace sees connection status (read-only); Connect, Reconnect and Disconnect
need "manage integrations". The OAuth connect flow itself (POST of the connect form, the
callback, reconnect, disconnect) belongs to the connection engineer's views.
"""
from __future__ import annotations

from flask import Blueprint, current_app, url_for
from sqlalchemy import func

from core.extensions import db
from core.labels import status_label
from core.security import login_required, requires
from core.tenancy import scoped
from core.web import render
from integrations.forms import ConnectForm, label_environments
from models import SalesforceConnection
from models.integrations import CONNECTION_CONNECTED

bp = Blueprint("integrations", __name__, url_prefix="/admin/configuration/integrations")


def _salesforce_summary() -> dict:
    rows = dict(db.session.execute(
        scoped(SalesforceConnection, SalesforceConnection.status, func.count()).group_by(SalesforceConnection.status)
    ).all())
    total = sum(rows.values())
    connected = rows.get(CONNECTION_CONNECTED, 0)
    if total == 0:
        status, label = "not_connected", "Not connected"
    elif connected == total:
        status, label = "connected", f"Connected ({connected} org{'s' if connected != 1 else ''})"
    elif rows.get("needs_reconnect"):
        status, label = "needs_reconnect", status_label("needs_reconnect")
    else:
        status, label = "disconnected", "Disconnected" if connected == 0 else f"{connected} of {total} connected"
    return {"status": status, "label": label, "total": total}


def connect_url() -> str:
    """Where Connect goes: the connect flow's page when it is installed, else this blueprint's form."""
    if "wizard.connect" in current_app.view_functions:
        return url_for("wizard.connect")
    return url_for("integrations.salesforce_connect")


@bp.get("/")
@login_required
def catalogue():
    integrations = [{
        "key": "salesforce",
        "name": "Salesforce",
        "description": "Import participants from Leads, Contacts, Campaign Members, Accounts or custom objects, "
                       "and keep them synced for invitations, tasks and communities.",
        **_salesforce_summary(),
    }]
    return render("integrations/catalogue.html", integrations=integrations, connect_url=connect_url())


@bp.get("/salesforce")
@login_required
def salesforce():
    connections = db.session.scalars(scoped(SalesforceConnection).order_by(SalesforceConnection.name)).all()
    return render("integrations/salesforce.html", connections=connections, summary=_salesforce_summary(),
                  connect_url=connect_url())


@bp.get("/salesforce/connect")
@requires("manage_integrations")
def salesforce_connect():
    """The Connect form, for when the connect flow (``wizard.connect``, which also handles the
    POST and the OAuth callback) is not installed; Connect buttons link there when it is."""
    return render("integrations/salesforce_connect.html", form=label_environments(ConnectForm()))
