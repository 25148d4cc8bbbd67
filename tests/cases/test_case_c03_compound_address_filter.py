"""C03: a compound address field is never offered as a filter and a crafted row is refused."""
import pytest

from salesforce.describe import FieldCatalog, ObjectDescribe
from salesforce.soql import FilterError, FilterGroup, FilterRow, build_where
from tests.conftest import load_case


def _catalog(case):
    fields = case["input"]["describe_fields_fragment"]
    return FieldCatalog(ObjectDescribe.from_json({"name": case["input"]["object"], "label": "Contact",
                                                  "fields": fields}))


def _group(post):
    return FilterGroup("AND", tuple(FilterRow(r["field"], r["op"], r["value"]) for r in post["rows"]))


def test_filter_choices():
    case = load_case("C03")
    paths = [c.path for c in _catalog(case).filter_choices()]
    assert not set(case["expected"]["filter_field_choices_exclude"]) & set(paths)
    assert set(case["expected"]["filter_field_choices_include"]) <= set(paths)


def test_crafted_post_gets_a_row_error_and_no_soql():
    case = load_case("C03")
    post = next(p for p in case["input"]["filter_posts"] if p["name"] == "crafted_post_bypassing_ui")
    with pytest.raises(FilterError) as err:
        build_where(_group(post), _catalog(case))
    assert err.value.row_index == case["expected"]["crafted_post_bypassing_ui"]["form_error_on_row"]
    assert "compound" in err.value.message


def test_component_field_filter():
    case = load_case("C03")
    post = next(p for p in case["input"]["filter_posts"] if p["name"] == "component_field")
    assert build_where(_group(post), _catalog(case)) == case["expected"]["component_field"]["where_clause"]
