"""C05 end to end: escaped values through the filters step and the preview, against the emulator."""
from tests.conftest import load_case
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import filter_form, soql_shown, text_of


def _rows(f):
    return [(r["field"], r["op"].replace(" ", "_"), r["value"]) for r in f["rows"]]


def test_c05_escaping_end_to_end(wiz):
    case = load_case("C05")
    filters = {f["name"]: f for f in case["input"]["filters"]}
    expected = case["expected"]
    obrien = wiz.create("Contact", {"LastName": "O'Brien", "Email": "ob@x.example"})
    accounts = {}
    for r in case["input"]["records_for_like_case"]:
        name = r["Account"]["Name"]
        accounts[name] = wiz.create("Account", {"Name": name})
        wiz.create("Contact", {"LastName": "Promo", "AccountId": accounts[name]}, record_id=r["Id"])
    plan = wiz.plan()
    count_url = f"/wizard/plans/{plan.id}/filters/count"

    # 1. O'Brien: exact WHERE, and the query runs
    html = text_of(wiz.post(count_url, filter_form(_rows(filters["apostrophe"])), htmx=True))
    assert soql_shown(html, "soql-where") == expected["apostrophe"]["where_clause"]
    assert "refused" not in html and soql_shown(html, "match-count") == "1"
    assert wiz.post(f"/wizard/plans/{plan.id}/filters", filter_form(_rows(filters["apostrophe"]))).status_code == 303
    assert f'id="preview-{obrien}"' in text_of(wiz.get(f"/wizard/plans/{plan.id}/preview"))

    # 2. LIKE wildcards are literals: only "Promo 50%_off Ltd" previews
    html = text_of(wiz.post(count_url, filter_form(_rows(filters["like_wildcards"])), htmx=True))
    assert soql_shown(html, "soql-where") == expected["like_wildcards"]["where_clause"]
    wiz.post(f"/wizard/plans/{plan.id}/filters", filter_form(_rows(filters["like_wildcards"])))
    preview = text_of(wiz.get(f"/wizard/plans/{plan.id}/preview"))
    shown = [r["Id"] for r in case["input"]["records_for_like_case"] if f'id="preview-{r["Id"]}"' in preview]
    assert shown == expected["like_wildcards"]["preview_ids"]

    # 3. a trailing backslash and an injection attempt stay literals: nothing matches, no error
    r = wiz.post(count_url, filter_form(_rows(filters["trailing_backslash_then_second_row"])), htmx=True)
    html = text_of(r)
    assert r.status_code == 200
    assert soql_shown(html, "soql-where") == expected["trailing_backslash_then_second_row"]["where_clause"]
    assert soql_shown(html, "match-count") == "0" and "refused" not in html
    r = wiz.post(f"/wizard/plans/{plan.id}/filters", filter_form(_rows(filters["trailing_backslash_then_second_row"])))
    assert r.status_code == 303
    preview = wiz.get(f"/wizard/plans/{plan.id}/preview")
    assert preview.status_code == 200 and 'id="preview-0' not in text_of(preview)
    assert "No records match these filters." in text_of(preview)

    # 4. a newline inside the value
    html = text_of(wiz.post(count_url, filter_form(_rows(filters["newline"])), htmx=True))
    assert soql_shown(html, "soql-where") == expected["newline"]["where_clause"]
