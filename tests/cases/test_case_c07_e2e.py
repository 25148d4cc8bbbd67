"""C07 end to end: a 15-character ID pasted into "Id equals" keeps its case and previews only Mei."""
from tests.conftest import load_case
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import filter_form, soql_shown, text_of


def test_c07_id_filter_previews_only_mei(wiz):
    case = load_case("C07")
    for r in case["input"]["records_from_api"]:
        wiz.create("Contact", {k: v for k, v in r.items() if k not in ("attributes", "Id")}, record_id=r["Id"])
    plan = wiz.plan()
    rows = [(r["field"], r["op"], r["value"]) for r in case["input"]["user_filter"]["rows"]]
    html = text_of(wiz.post(f"/wizard/plans/{plan.id}/filters/count", filter_form(rows), htmx=True))
    where = soql_shown(html, "soql-where")
    assert where in case["expected"]["filter_where_clause_one_of"]
    for bad in case["expected"]["filter_never_contains"]:
        assert bad not in html
    assert soql_shown(html, "match-count") == "1"
    assert wiz.post(f"/wizard/plans/{plan.id}/filters", filter_form(rows)).status_code == 303
    preview = text_of(wiz.get(f"/wizard/plans/{plan.id}/preview"))
    shown = [r["Id"] for r in case["input"]["records_from_api"] if f'id="preview-{r["Id"]}"' in preview]
    assert shown == case["expected"]["filter_preview_ids"]
