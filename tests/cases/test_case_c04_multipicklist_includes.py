"""C04: "any of" on a multi-select picklist becomes INCLUDES, never =, LIKE or IN."""
import json
import re

import pytest

from salesforce.describe import FieldCatalog, ObjectDescribe
from salesforce.soql import FilterGroup, FilterRow, build_where, operators_for
from tests.conftest import load_case, shared_path


@pytest.fixture(scope="module")
def catalog():
    case = load_case("C04")
    contact = json.loads(shared_path("fixtures", "salesforce", "describe-Contact.json").read_text())
    contact["fields"].append({**case["input"]["describe_field"], "label": "Persona", "custom": True,
                              "filterable": True})
    return FieldCatalog(ObjectDescribe.from_json(contact))


@pytest.mark.parametrize("name", ["any_of_designer", "any_of_designer_engineer"])
def test_where_clause(catalog, name):
    case = load_case("C04")
    flt = next(f for f in case["input"]["filters"] if f["name"] == name)
    group = FilterGroup("AND", tuple(FilterRow(r["field"], r["op"], r["value"]) for r in flt["rows"]))
    sql = build_where(group, catalog)
    assert sql == case["expected"][name]["where_clause"]
    for forbidden in case["expected"]["never_generated_for_Persona__c"]:
        assert not re.search(rf"Persona__c\s+{re.escape(forbidden)}\s", sql)


def test_operators_offered_never_generate_eq_like_or_in(catalog):
    field = catalog.resolve("Persona__c").field
    for op in operators_for(field):
        if op in ("is_empty", "is_not_empty"):
            continue  # "= null" is the only way to test for no selection
        sql = build_where(FilterGroup("AND", (FilterRow("Persona__c", op, ["Designer"]),)), catalog)
        assert not re.search(r"Persona__c\s+(=|!=|LIKE|IN)\s", sql), sql
