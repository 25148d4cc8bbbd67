"""C07 (SOQL part): a pasted 15-character ID keeps its case in the filter."""
import json

from salesforce.describe import FieldCatalog, ObjectDescribe
from salesforce.soql import FilterGroup, FilterRow, build_where, to_18_char_id
from tests.conftest import load_case, shared_path


def test_id_filter_keeps_case():
    case = load_case("C07")
    contact = ObjectDescribe.from_json(
        json.loads(shared_path("fixtures", "salesforce", "describe-Contact.json").read_text()))
    rows = tuple(FilterRow(r["field"], r["op"], r["value"]) for r in case["input"]["user_filter"]["rows"])
    sql = build_where(FilterGroup("AND", rows), FieldCatalog(contact))
    assert sql in case["expected"]["filter_where_clause_one_of"]
    for lowered in case["expected"]["filter_never_contains"]:
        assert lowered not in sql


def test_15_to_18_checksums():
    case = load_case("C07")
    for short, full in case["input"]["checksum_reference"].items():
        assert to_18_char_id(short) == full
    assert to_18_char_id(case["input"]["user_filter"]["rows"][0]["value"]) == case["expected"]["stored_source_ids"][0]
