"""C05: filter values are escaped exactly as simple-salesforce's format_soql / :like do."""
import json

import pytest

from salesforce.describe import FieldCatalog, ObjectDescribe
from salesforce.soql import FilterGroup, FilterRow, build_where
from tests.conftest import load_case, shared_path


def _describe(name):
    return ObjectDescribe.from_json(json.loads(shared_path("fixtures", "salesforce", f"describe-{name}.json").read_text()))


@pytest.fixture(scope="module")
def catalog():
    return FieldCatalog(_describe("Contact"), {"Account": _describe("Account")})


@pytest.mark.parametrize("name", ["apostrophe", "like_wildcards", "trailing_backslash_then_second_row", "newline"])
def test_exact_where_clause(catalog, name):
    case = load_case("C05")
    flt = next(f for f in case["input"]["filters"] if f["name"] == name)
    group = FilterGroup("AND", tuple(FilterRow(r["field"], r["op"], r["value"]) for r in flt["rows"]))
    assert build_where(group, catalog) == case["expected"][name]["where_clause"]
