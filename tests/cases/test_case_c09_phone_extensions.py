"""C09 (pure part): extensions are kept apart from the E.164 digits."""
from sync.validate import normalize_phone
from tests.conftest import load_case


def test_c09_main_numbers_parse_with_separate_extensions():
    case = load_case("C09")
    region = case["input"]["default_region"]
    for record in case["input"]["records_without_email"]:
        result = normalize_phone(record["Phone"], region)
        expected = case["expected"]["parsed"][record["Id"]]
        assert (result.e164, result.extension) == (expected["e164"], expected["extension"])
        assert result.flag is None


def test_c09_extra_parse_checks():
    case = load_case("C09")
    for check, expected in zip(case["input"]["extra_parse_checks"],
                               case["expected"]["extra_parse_checks"], strict=True):
        result = normalize_phone(check["value"], check["default_region"])
        assert (result.e164, result.extension) == (expected["e164"], expected["extension"])


def test_c09_glued_forms_are_never_produced():
    case = load_case("C09")
    never = set(case["expected"]["never_stored_as"])
    keys = []
    for record in case["input"]["records_without_email"]:
        result = normalize_phone(record["Phone"], "US")
        assert result.e164 not in never
        keys.append(result.key)
    assert keys == ["+12015550123;ext=42", "+12015550123;ext=42", "+12015550123;ext=43",
                    "+12015550123"]
