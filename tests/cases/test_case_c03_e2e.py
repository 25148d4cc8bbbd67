"""C03 end to end: the filters step never offers MailingAddress; a crafted form post with it comes
back with the error on that row, no SOQL sent to Salesforce and no server error; the component
field gives MailingCity = 'Berlin'."""
from salesforce.client import SalesforceClient
from tests.conftest import load_case
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import filter_form, soql_shown, text_of


def _rows(post):
    return [(r["field"], r["op"].replace(" ", "_"), r["value"]) for r in post["rows"]]


def test_c03_through_the_wizard(wiz, monkeypatch):
    case = load_case("C03")
    posts = {p["name"]: p for p in case["input"]["filter_posts"]}
    plan = wiz.plan()
    url = f"/wizard/plans/{plan.id}/filters"
    html = text_of(wiz.get(url))
    for path in case["expected"]["filter_field_choices_exclude"]:
        assert f'<option value="{path}"' not in html
    for path in case["expected"]["filter_field_choices_include"]:
        assert f'<option value="{path}"' in html

    sent = []
    for name in ("count", "query_pages"):
        real = getattr(SalesforceClient, name)
        monkeypatch.setattr(SalesforceClient, name,
                            lambda self, soql, *a, _real=real, **kw: sent.append(soql) or _real(self, soql, *a, **kw))
    crafted = wiz.post(url, filter_form(_rows(posts["crafted_post_bypassing_ui"])))
    expected = case["expected"]["crafted_post_bypassing_ui"]
    assert crafted.status_code == 422  # re-rendered with errors, not a server error
    body = text_of(crafted)
    assert f'id="rows-{expected["form_error_on_row"]}-error"' in body and "compound field" in body
    live = wiz.post(f"{url}/count", filter_form(_rows(posts["crafted_post_bypassing_ui"])), htmx=True)
    assert live.status_code == 200 and "no query is sent" in text_of(live)
    assert sent == [] and expected["soql_sent_to_salesforce"] is False

    good = wiz.post(f"{url}/count", filter_form(_rows(posts["component_field"])), htmx=True)
    assert soql_shown(text_of(good), "soql-where") == case["expected"]["component_field"]["where_clause"]
    assert sent == ["SELECT COUNT() FROM Contact WHERE MailingCity = 'Berlin'"]
