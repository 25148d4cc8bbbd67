"""C12 (pure part): plausible-looking but invalid emails are flagged, never repaired or keyed."""
from sync.validate import INVALID_EMAIL, normalize_email
from tests.conftest import load_case

CASE = load_case("C12")
RECORDS = {r["Id"]: r for r in CASE["input"]["records"]}


def test_c12_invalid_emails_are_flagged_with_a_reason():
    for record_id in CASE["expected"]["invalid_email_flag"]:
        raw = RECORDS[record_id]["Email"]
        result = normalize_email(raw)
        assert result.email is None and result.key is None
        assert result.flag.code == INVALID_EMAIL
        assert result.flag.raw == raw
        assert len(result.flag.reason) > 10


def test_c12_valid_email():
    for record_id, email in CASE["expected"]["valid"].items():
        result = normalize_email(RECORDS[record_id]["Email"])
        assert result.email == email and result.key == email and result.flag is None


def test_c12_never_stored_or_keyed():
    never = set(CASE["expected"]["never_stored_or_used_as_dedup_key"])
    for record in CASE["input"]["records"]:
        result = normalize_email(record["Email"])
        assert result.email not in never and result.key not in never
