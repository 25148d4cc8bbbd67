"""C10 (pure part): international prefixes, trunk zeros, missing '+', no region."""
import pytest

from sync.validate import INVALID_PHONE, normalize_phone
from tests.conftest import load_case

CASE = load_case("C10")


@pytest.mark.parametrize("row", CASE["expected"]["results"],
                         ids=lambda r: f"{r['value']}|{r['default_region']}")
def test_c10_row(row):
    result = normalize_phone(row["value"], row["default_region"])
    assert result.e164 == row["e164"]
    assert result.raw == row["value"]
    if row["flag"] is None:
        assert result.flag is None
        assert result.key == row["e164"]
    else:
        assert result.flag.code == INVALID_PHONE
        assert result.flag.raw == row["value"]
        assert result.flag.reason
        assert result.key is None


def test_c10_never_stored_values():
    produced = {normalize_phone(row["value"], row["default_region"]).e164
                for row in CASE["input"]["cases"]}
    assert produced.isdisjoint(CASE["expected"]["never_stored"])


def test_c10_no_region_says_country_code_needed():
    result = normalize_phone("201-555-0123", None)
    assert "needs a country code" in result.flag.reason
