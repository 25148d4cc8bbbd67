import pytest

from sync.validate import (INVALID_EMAIL, INVALID_PHONE, normalize_email, normalize_phone,
                           phone_region, region_for_country)


def test_email_is_trimmed_and_keyed_case_folded():
    result = normalize_email("  Kim.Park@Example.CO.UK ")
    assert result.email == "Kim.Park@example.co.uk"
    assert result.key == "kim.park@example.co.uk"
    assert result.flag is None


def test_email_is_stored_in_nfc():
    decomposed = "jo\u0308rg@example.org"
    result = normalize_email(decomposed)
    assert result.email == "j\u00f6rg@example.org"
    assert result.raw == decomposed


def test_full_width_look_alike_is_flagged_not_repaired():
    result = normalize_email("\uff4bim@example.com")
    assert result.email is None and result.key is None
    assert result.flag.code == INVALID_EMAIL
    assert "look-alike" in result.flag.reason


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_email_is_missing_not_invalid(blank):
    result = normalize_email(blank)
    assert result.email is None and result.flag is None and not result.valid


@pytest.mark.parametrize("value, region", [
    ("United Kingdom", "GB"), ("UK", "GB"), ("gb", "GB"), ("Deutschland", "DE"),
    ("Germany", "DE"), ("US", "US"), ("United States", "US"), ("USA", "US"),
    (" united  states ", "US"), ("Royaume-Uni", "GB"),
])
def test_country_values_map_to_regions(value, region):
    assert region_for_country(value) == region


def test_unknown_country_falls_back_to_default_region():
    assert region_for_country("Atlantis") is None
    assert phone_region("Atlantis", "us") == "US"
    assert phone_region(None, None) is None
    assert phone_region("Deutschland", "US") == "DE"


def test_phone_parsed_in_the_records_country():
    result = normalize_phone("030 901820", phone_region("Deutschland", "US"))
    assert result.e164 == "+4930901820"
    assert result.key == "+4930901820"


def test_junk_phone_is_flagged_with_raw_kept():
    result = normalize_phone("call reception", "US")
    assert result.e164 is None and result.key is None
    assert result.raw == "call reception"
    assert result.flag.code == INVALID_PHONE and result.flag.reason
