"""C04 end to end: "Persona any of" becomes INCLUDES and the preview shows the right records
from the emulator; Sb keeps both of its values."""
import re
from html import unescape as html_unescape

from core.extensions import db
from models import ImportPlan
from services import previews
from tests.conftest import load_case
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import filter_form, soql_shown, text_of


def test_c04_includes_preview_from_the_emulator(wiz):
    case = load_case("C04")
    for r in case["input"]["records"]:
        fields = {k: v for k, v in r.items() if k not in ("attributes", "Id")}
        wiz.create("Contact", fields, record_id=r["Id"])
    ids = {r["Id"][-4:-3]: r["Id"] for r in case["input"]["records"]}  # a, b, c, d
    plan = wiz.plan()
    expected_where = {"any_of_designer": ("Persona__c INCLUDES ('Designer')", "ab"),
                      "any_of_designer_engineer": ("Persona__c INCLUDES ('Designer','Engineer')", "abc")}
    for f in case["input"]["filters"]:
        where, letters = expected_where[f["name"]]
        rows = [(r["field"], r["op"].replace(" ", "_"), r["value"]) for r in f["rows"]]
        shown = text_of(wiz.post(f"/wizard/plans/{plan.id}/filters/count", filter_form(rows), htmx=True))
        assert soql_shown(shown, "soql-where") == where
        assert not re.search(r"Persona__c (=|!=|LIKE|IN \(|NOT IN)", html_unescape(shown))
        r = wiz.post(f"/wizard/plans/{plan.id}/filters", filter_form(rows))
        assert r.status_code == 303
        html = text_of(wiz.get(f"/wizard/plans/{plan.id}/preview"))
        previewed = {rid for rid in ids.values() if f'id="preview-{rid}"' in html}
        assert previewed == {ids[x] for x in letters}, f["name"]
    db.session.expire_all()
    plan = db.session.get(ImportPlan, plan.id)
    ctx = previews.plan_context(plan)
    page = previews.first_page(plan, ctx.spec, ctx.client, ctx.where)
    sb = next(row for row in page.rows if row.record_id == ids["b"])
    assert sb.segments == ("Researcher", "Designer")
